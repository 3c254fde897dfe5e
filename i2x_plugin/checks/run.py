"""Running a check on an explanation and the model it explains: the user's entry points to the checks.

>>> from i2x_plugin.checks import run_faithfulness, run_stability
>>> results = run_faithfulness(explanation, final_model, probe_data)
>>> tested = run_stability(explanation, final_model, probe_data)   # a new explanation, stability filled in
>>> relied = run_reliance(explanation, final_model, probe_data)    # a new explanation, reliance filled in

Each takes the explanation and the model holding the run's final weights, with the run's probe set in the
same order (refused otherwise: :class:`~.faithfulness.FaithfulnessError`), and leaves the explanation as
it was: the faithfulness test returns its results, the stability test a new explanation carrying them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..method.evidence import FaithfulnessResult
from ..method.explain import as_image_dataset
from ..method.probe import ProbeLike
from ..method.prototypes import extract_features
from ..method.structure import StructuredExplanation
from ..training.data import ImageDataset
from .faithfulness import check_model_and_data, deletion_tests
from .pair_reliance import with_pair_relations
from .reliance import reliance
from .stability import tested_for_stability


@contextmanager
def final_model(explanation: StructuredExplanation, model: nn.Module, data: ProbeLike,
                device: str | torch.device | None) -> Iterator[tuple[ImageDataset, torch.device]]:
    """``model`` in eval mode (its mode restored after), checked to be this run's final model on its probe
    set (:func:`~.faithfulness.check_model_and_data`); yields the probe set and the device."""
    probe = as_image_dataset(data)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        check_model_and_data(explanation, model, probe.images, probe.labels.numpy(), device)
        yield probe, device
    finally:
        model.train(was_training)


def run_faithfulness(explanation: StructuredExplanation, model: nn.Module, data: ProbeLike,
                     device: str | torch.device | None = None, deletion: str | None = None,
                     random_sets: int | None = None) -> list[FaithfulnessResult]:
    """Deletion tests of every claim group on ``model``, which must hold the run's final weights.

    ``data`` is the run's probe set (an ImageDataset, ``(images, labels)`` or a map-style Dataset), in the
    same order. Settings default to the run's config. Groups too small to test are named in a warning.
    """
    with final_model(explanation, model, data, device) as (probe, device):
        return deletion_tests(explanation, model, probe.images, device, deletion, random_sets)[0]


def with_faithfulness(explanation: StructuredExplanation, model: nn.Module, images,
                      device: str | torch.device | None = None) -> StructuredExplanation:
    """``explanation`` with the deletion tests of its claims on ``model`` (the run's final weights, in eval mode)
    and its probe ``images``; the groups too small to test are added to ``skipped``."""
    results, skipped = deletion_tests(explanation, model, images, device)
    return dataclasses.replace(explanation, faithfulness_results=results,
                               skipped=explanation.skipped + [f"faithfulness: {line}" for line in skipped])


def run_stability(explanation: StructuredExplanation, model: nn.Module, data: ProbeLike,
                  device: str | torch.device | None = None, kmeans_seeds: int | None = None,
                  bootstraps: int | None = None) -> StructuredExplanation:
    """Re-fit the prototypes (other K-Means seeds, bootstrap resamples) and re-derive the claims.

    ``model`` holds the run's final weights and ``data`` is its probe set, in order. Returns a copy with
    ``stability`` set and each driver, separator and uncertain claim's ``recurrence`` filled in; with the
    config's ``stability_selection`` share, only the claims that recur at least that often are kept (and, if the
    explanation carried faithfulness results and the selection dropped claims, they are tested again).
    """
    cfg = explanation.config
    with final_model(explanation, model, data, device) as (probe, device):
        features = extract_features(model, explanation.layer, probe.images, cfg.batch_size, device)
        tested = tested_for_stability(explanation, features, kmeans_seeds, bootstraps)
        if explanation.faithfulness_results and sum(tested.stability.unstable.values()):
            # the deletion tests delete the reported claims: after the selection they are tested again
            tested = with_faithfulness(dataclasses.replace(tested, skipped=[
                line for line in tested.skipped if not line.startswith("faithfulness: ")]), model, probe.images, device)
    return tested


def with_reliance(explanation: StructuredExplanation, model: nn.Module, images,
                  device: str | torch.device | None = None, pairs: bool | None = None) -> StructuredExplanation:
    """``explanation`` with the final model's reliance relation (:mod:`.reliance`) on ``model`` (the run's final
    weights, in eval mode) and its probe ``images``, and its pair relations (:func:`with_pair_reliance`; ``pairs``
    defaults to the config's ``pair_reliance``); the classes and pairs too small to cross-fit go to ``skipped``."""
    wanted = explanation.config.pair_reliance if pairs is None else pairs
    result = reliance(explanation, model, images, device, dates=not wanted)
    if wanted:  # the class edges are dated in the pair relations' replay of the checkpoints: one replay for both
        result = with_pair_relations(result, explanation, model, images, device, date_class_edges=True)
    return dataclasses.replace(explanation, reliance=result,
                               skipped=explanation.skipped + [f"reliance: {line}" for line in result.skipped])


def with_pair_reliance(explanation: StructuredExplanation, model: nn.Module, images,
                       device: str | torch.device | None = None) -> StructuredExplanation:
    """``explanation`` (its reliance relation measured) with the pair relations of :mod:`.pair_reliance` added:
    margin reliance, confusers, their top sets and formation steps; the pairs skipped go to ``skipped``."""
    if explanation.reliance is None:
        raise ValueError("The pair relations extend the reliance relation: run with_reliance (or run_reliance) first.")
    result = with_pair_relations(explanation.reliance, explanation, model, images, device)
    added = result.skipped[len(explanation.reliance.skipped):]
    return dataclasses.replace(explanation, reliance=result,
                               skipped=explanation.skipped + [f"reliance: {line}" for line in added])


def run_reliance(explanation: StructuredExplanation, model: nn.Module, data: ProbeLike,
                 device: str | torch.device | None = None) -> StructuredExplanation:
    """What the final model relies on: every (prototype, class) deletion effect on held-out samples, with p/q
    against as many random cells, each class's top set against area-matched random sets and static saliency,
    and (``reliance_formation``) the checkpoint each significant edge formed at.

    ``model`` holds the run's final weights (it holds them again after the checkpoints are replayed) and ``data``
    is its probe set, in order. Returns a copy with ``reliance`` set.
    """
    with final_model(explanation, model, data, device) as (probe, device):
        return with_reliance(explanation, model, probe.images, device)
