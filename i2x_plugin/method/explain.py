"""The method's steps 2–8 in one class: :class:`Explainer`, under the :class:`~i2x_plugin.explain.I2X` facade.

It ties the steps together: checkpoints → prototypes of the final model → the streaming sweep over
checkpoints → deltas, groups and ridge β → claims tested against their null → the
:class:`StructuredExplanation`. The checks the config asks for (the faithfulness test) are run by the
facade, :class:`i2x_plugin.explain.I2X`, which users call; this stage knows nothing of them.

The probe data is read batch by batch (:mod:`i2x_plugin.method.probe`): memory holds the O(T·N·K + T·N·C)
arrays, the (N, h, w) assignments (and the kept saliency maps, ``keep_maps``), the prototype fit's
sample of feature rows and one batch of images. Under ``torchrun`` (an initialised default process
group) the work is sharded over the ranks by probe sample (:mod:`i2x_plugin.method.distributed`); rank 0
returns the explanation, the other ranks ``None``.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from captum.attr import LayerAttribution
from torch import nn

from ..adapters import CaptumAdapter, SaliencyAdapter, build_adapter, resolve_layer
from ..training.checkpoints import CheckpointInfo, CheckpointsType, LoadFunc, default_load_func, resolve_checkpoints
from .claim_types import ClaimCounts
from .claims import calibrated_claims, claim_counts, null_claim_counts, saliency_share
from .config import I2XConfig
from ..training.data import ImageDataset
from .distributed import Ranks, file_digest
from .probe import ProbeLike, ProbeSet
from .progress import Trajectory, learning_groups, sweep
from .prototypes import FeatureTap, Prototypes, check_k, stream_prototypes
from .ridge import standardize_delta_p
from .structure import CheckpointSummary, StructuredExplanation, build_structure


def as_image_dataset(data: ProbeLike, class_names: Iterable[str] | None = None) -> ImageDataset:
    """The probe data in memory, read and checked as :class:`~i2x_plugin.method.probe.ProbeSet` reads it.

    Only for what needs every image at once (:func:`~i2x_plugin.checks.run_faithfulness` and
    :func:`~i2x_plugin.checks.run_stability` on a saved run); :meth:`Explainer.explain` streams.
    """
    if isinstance(data, ImageDataset):
        return data
    probe = ProbeSet.from_data(data, class_names)
    probe.check_first_item()
    images, labels = probe.read(range(len(probe)))
    names = probe.class_names or tuple(str(c) for c in range(int(labels.max()) + 1))
    return ImageDataset(probe.name, images.float(), labels.long(), names)


class Explainer:
    """Structured explanations of why an image classifier looks where it looks, and how that formed in training
    (the method's steps 2–8; :class:`~i2x_plugin.explain.I2X` adds the checks its config asks for).

    Args:
        model: the classifier; checkpoints are loaded into this one instance in turn, and
            :meth:`explain` gives it back as it found it (weights, training flags, ``requires_grad``,
            device).
        layer: the spatial feature layer f (module or dotted name) where prototypes and GradCAM live.
        adapter: ``"captum"`` / ``"gradcam"`` (default: Captum ``LayerGradCam``), a
            :class:`~i2x_plugin.adapters.SaliencyAdapter` built on this ``model`` and ``layer``, or a
            Captum layer attribution object on them (e.g. ``LayerGradCam(model, model.block3)``),
            wrapped by :meth:`CaptumAdapter.from_attribution
            <i2x_plugin.adapters.CaptumAdapter.from_attribution>`: ReLU on its maps, then the
            config's per-image ``normalization``.
        config: :class:`I2XConfig`; defaults follow the paper where it is explicit.
        device: where the sweep runs (default: the model's device). The model is moved there
            during :meth:`explain` only.
    """

    def __init__(self, model: nn.Module, layer: str | nn.Module, adapter: Any = "captum",
                 config: I2XConfig | None = None, method: str | None = None,
                 device: str | torch.device | None = None):
        self.config = config or I2XConfig()
        self.model = model
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.layer, self.layer_name = resolve_layer(model, layer)
        self.adapter = self._adapter(adapter, method)
        self.method_name = self.adapter.method_name
        self.timings: dict[str, float] = {}  # seconds per stage of the last explain()

    def _adapter(self, adapter: Any, method: str | None) -> SaliencyAdapter:
        """Build, wrap or check the adapter: its maps must come from this model at this layer."""
        if isinstance(adapter, str):
            return build_adapter(adapter, self.model, self.layer_name, method)  # type: ignore[arg-type]
        if isinstance(adapter, LayerAttribution) and not isinstance(adapter, SaliencyAdapter):
            adapter = CaptumAdapter.from_attribution(adapter)
        if not isinstance(adapter, SaliencyAdapter):
            raise TypeError(
                f"adapter must be 'captum', 'gradcam', a SaliencyAdapter or a Captum layer attribution object, got "
                f"{type(adapter).__name__}. For pytorch-grad-cam use GradCamAdapter(model, layer, method).")
        if adapter.model is not self.model:
            raise ValueError(
                f"The adapter is built on another model instance ({_describe(adapter.model)}) than the one I2X "
                f"explains ({_describe(self.model)}): checkpoints would load into the second while the maps come "
                "from the first. Build the adapter on the model you pass to I2X.")
        if adapter.layer is not self.layer:
            raise ValueError(
                f"The adapter attributes at layer {adapter.layer_name!r}, but I2X's prototypes are at layer "
                f"{self.layer_name!r}: saliency and prototype assignments must come from the same layer. Build the "
                f"adapter at {self.layer_name!r}, or pass layer={adapter.layer_name!r} to I2X.")
        return adapter

    @contextmanager
    def _stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = time.perf_counter() - start

    def fit_prototypes(self, data: ProbeLike | torch.Tensor, progress: bool = False) -> Prototypes:
        """Step 2 on the model as it is now (load the final checkpoint first).

        ``data``: probe data (anything :meth:`explain` takes; read batch by batch), or images ``(N, C, H, W)``
        already in memory.
        """
        cfg = self.config
        with restored_model(self.model):
            self.model.to(self.device)
            if isinstance(data, torch.Tensor):
                from .prototypes import extract_features, fit_prototypes

                features = extract_features(self.model, self.layer, data, cfg.batch_size, self.device)
                return fit_prototypes(features, cfg.k, cfg.pca_components, cfg.pca_max_rows,
                                      cfg.minibatch_kmeans_rows, cfg.seed, cfg.kmeans_inits)
            probe = ProbeSet.from_data(data)
            shape = self._first_batch(probe)[1]
            check_k(cfg.k, len(probe), *shape[:2])
            with FeatureTap(self.model, self.layer, self.device) as tap:
                pca, centers, assignments, _ = stream_prototypes(tap, probe, range(len(probe)), shape, cfg,
                                                                 progress=progress)
        return Prototypes(pca, centers, assignments)

    def explain(
        self,
        checkpoints: CheckpointsType,
        dataset: ProbeLike,
        checkpoints_load_func: LoadFunc = default_load_func,
        class_names: Iterable[str] | None = None,
        sample_ids: np.ndarray | None = None,
        run_id: str | None = None,
        model_name: str | None = None,
        progress: bool = False,
    ) -> StructuredExplanation | None:
        """Run steps 2–8 over ``checkpoints`` (directory, list or iterable of paths) on the probe ``dataset``, then
        the checks the facade adds (:class:`~i2x_plugin.explain.I2X`: the faithfulness test).

        ``dataset``: an :class:`~i2x_plugin.training.data.ImageDataset`, ``(images, labels)`` tensors, a map-style
        ``Dataset`` of ``(image, label)`` items or a ``DataLoader`` over one (see :mod:`i2x_plugin.method.probe`).
        ``class_names`` (default: the dataset's) needs one name per model class; ``sample_ids`` (default:
        positions) one unique integer id per probe sample. The model is given back as it was found.
        Under ``torchrun`` call it on every rank: rank 0 returns the explanation, the others ``None``.
        """
        cfg = self.config
        self.timings = {}
        ranks = Ranks.current()
        with restored_model(self.model):
            self.model.to(self.device)
            with ranks.checked("checking the probe data and checkpoints"):
                probe = ProbeSet.from_data(dataset)
                infos = resolve_checkpoints(checkpoints)
                given_names = tuple(class_names) if class_names is not None else probe.class_names
                ids = _sample_ids(sample_ids, len(probe))
                facts = self._inspect(probe, infos, checkpoints_load_func, ranks.distributed)
            ranks.agree(facts)
            num_classes, shape = facts["classes"], facts["feature map"]
            names = _class_names(given_names, num_classes)
            check_k(cfg.k, len(probe), *shape[:2])
            shard = ranks.shard(len(probe), cfg.batch_size)
            with self._stage("prototypes"):
                checkpoints_load_func(self.model, infos[-1].path)
                with FeatureTap(self.model, self.layer, self.device) as tap:
                    pca, centers, assignments, labels = stream_prototypes(tap, probe, shard, shape, cfg, ranks,
                                                                          progress)
            self._check_labels(ranks.all_gather(_label_counts(labels, num_classes), "checking the labels"),
                               num_classes, names)
            with self._stage("sweep"), ranks.checked("running the sweep"):
                trajectory = sweep(self.model, self.adapter.attribute, infos, checkpoints_load_func,
                                   probe.batches(cfg.batch_size, shard), assignments, labels, cfg.k, num_classes,
                                   cfg.target, cfg.normalization, self.device, progress and ranks.is_root,
                                   on_checkpoint=lambda _: ranks.sync("running the sweep"), keep_maps=cfg.keep_maps)
        parts = ranks.gather((assignments, labels, trajectory), "gathering the sweep on rank 0")
        if parts is None:
            return None
        if len(parts) > 1:  # rank 0 of several: the shards in rank order are the probe set in order
            assignments, labels = (np.concatenate([part[i] for part in parts]) for i in (0, 1))
            trajectory = Trajectory.concatenate([part[2] for part in parts])
        del parts
        explanation = self._structure(probe, infos, checkpoints_load_func, trajectory,
                                      Prototypes(pca, centers, assignments), labels, names, ids, run_id, model_name)
        return self._checked(explanation, probe, infos[-1], checkpoints_load_func)

    def _checked(self, explanation: StructuredExplanation, probe: ProbeSet, final: CheckpointInfo,
                 checkpoints_load_func: LoadFunc) -> StructuredExplanation:
        """The explanation after the checks the facade above runs on it (rank 0 only); the method runs none."""
        return explanation

    def _structure(self, probe: ProbeSet, infos: list[CheckpointInfo], checkpoints_load_func: LoadFunc,
                   trajectory: Trajectory, prototypes: Prototypes, labels_np: np.ndarray, names: tuple[str, ...],
                   ids: np.ndarray, run_id: str | None, model_name: str | None) -> StructuredExplanation:
        """Steps 5–8 on the gathered sweep (rank 0 only)."""
        cfg, num_classes = self.config, len(names)
        presence = prototypes.presence()
        delta_p, delta_conf = trajectory.deltas()
        with self._stage("groups"):
            groups = learning_groups(delta_conf, labels_np, num_classes, cfg.min_cluster_size,
                                     cfg.min_cluster_fraction)
        x = standardize_delta_p(delta_p)
        share = saliency_share(trajectory.intensities[-1], presence, labels_np, num_classes)
        permutations: dict = {}  # the uncertain test's draws, reused by the null draws (same Sxx and ΔŶ)
        with self._stage("ridge"):  # every fit and every permutation test
            claims = calibrated_claims(x, delta_conf, labels_np, groups, trajectory.confusion[-1], share, cfg,
                                       null_cache=permutations)
        if cfg.null_draws:
            with self._stage("calibration"):  # the same procedure on noise, to report its false claims
                null = null_claim_counts(x, delta_conf, labels_np, groups, trajectory.confusion[-1], share, cfg,
                                         cfg.null_draws, null_cache=permutations)
                claims = dataclasses.replace(claims, counts=ClaimCounts(
                    claim_counts(claims), {k: float(np.mean([d[k] for d in null])) for k in null[0]},
                    {k: int(max(d[k] for d in null)) for k in null[0]}, cfg.null_draws))
        for line in claims.skipped:
            warnings.warn(f"I2X: {line}.", stacklevel=3)
        with self._stage("structure"):
            structure = build_structure(trajectory, claims, labels_np, prototypes.assignments, presence, cfg)
        accuracy = trajectory.accuracy
        return StructuredExplanation(
            run_id=run_id or uuid.uuid4().hex[:12],
            config=cfg,
            model_name=model_name or type(self.model).__name__,
            layer=self.layer_name,
            method=self.method_name,
            dataset=probe.name,
            class_names=list(names),
            map_size=list(prototypes.map_size),
            checkpoints=[CheckpointSummary(i.index, i.name, str(i.path), i.epoch, i.step, i.train_loss,
                                           float(accuracy[i.index])) for i in infos],
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            sample_ids=ids,
            labels=labels_np,
            assignments=prototypes.assignments,
            presence=presence,
            intensities=trajectory.intensities,
            confidences=trajectory.confidences,
            predictions=trajectory.predictions,
            confusion=trajectory.confusion,
            group_labels=groups,
            saliency_maps=trajectory.maps,
            prototypes=prototypes,
            faithfulness_results=[],
            **structure,
        )

    @torch.no_grad()
    def _first_batch(self, probe: ProbeSet) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """The first probe samples (the first item checked) and the explained layer's map shape ``(h, w, d)``."""
        probe.check_first_item()
        x = probe.read(range(min(2, len(probe))))[0].to(self.device)
        with FeatureTap(self.model, self.layer, self.device) as tap:
            return x, tuple(tap(x).shape[1:])  # type: ignore[return-value]

    @torch.no_grad()
    def _inspect(self, probe: ProbeSet, infos: list[CheckpointInfo], load_func: LoadFunc,
                 digests: bool) -> dict[str, Any]:
        """Check the first item and the first checkpoint (architecture mismatches early); what the ranks must agree on."""
        load_func(self.model, infos[0].path)
        x, shape = self._first_batch(probe)
        was_training = self.model.training
        self.model.eval()
        num_classes = int(self.model(x).shape[1])
        self.model.train(was_training)
        return {"probe samples": len(probe), "image shape": tuple(x.shape[1:]), "classes": num_classes,
                "class names": probe.class_names,
                "feature map": shape, "layer": self.layer_name, "settings": self.config.to_json(),
                "checkpoints": [file_digest(i.path) if digests else i.name for i in infos]}

    @staticmethod
    def _check_labels(counts: list[tuple[int | None, np.ndarray]], num_classes: int,
                      class_names: tuple[str, ...] | None) -> None:
        """Every label is a class of the model and every class has probe samples (counts from every rank)."""
        bad = [first for first, _ in counts if first is not None]
        if bad:
            raise ValueError(f"Label {bad[0]} is outside the model's {num_classes} classes (0..{num_classes - 1}). "
                             "Fix the probe labels or the model's output size.")
        present = np.sum([c for _, c in counts], axis=0)
        missing = np.flatnonzero(present == 0).tolist()
        if missing:
            names = [class_names[c] if class_names and c < len(class_names) else str(c) for c in missing]
            raise ValueError(f"Classes {names} have no samples in the probe set; every class needs probe samples "
                             "(use a stratified probe set).")


def _label_counts(labels: np.ndarray, num_classes: int) -> tuple[int | None, np.ndarray]:
    """The first label outside ``0..num_classes-1`` (or None) and the per-class counts of the others."""
    outside = (labels < 0) | (labels >= num_classes)
    first = int(labels[outside][0]) if outside.any() else None
    return first, np.bincount(labels[~outside], minlength=num_classes)


def _describe(model: nn.Module) -> str:
    return f"{type(model).__name__} at {id(model):#x}"


def _sample_ids(sample_ids: Any, n: int) -> np.ndarray:
    """One unique integer id per probe sample (they key the samples in the graph and the report)."""
    if sample_ids is None:
        return np.arange(n)
    ids = np.asarray(sample_ids)
    if ids.ndim != 1 or len(ids) != n:
        raise ValueError(f"sample_ids has shape {ids.shape} but the probe set has {n} samples; give one id per probe "
                         "sample, in the probe set's order.")
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"sample_ids must be integers (the samples' indices in their data set), got {ids.dtype}.")
    values, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"sample_ids are not unique ({int(values[counts > 1][0])} appears "
                         f"{int(counts.max())} times); each probe sample needs its own id.")
    return ids


def _class_names(given: tuple[str, ...] | None, num_classes: int) -> tuple[str, ...]:
    """One name per model class: the given ones (their count must match), else the class indices."""
    if given is None:
        return tuple(str(c) for c in range(num_classes))
    if len(given) != num_classes:
        raise ValueError(f"class_names has {len(given)} names but the model has {num_classes} classes; give exactly "
                         f"one name per class, in class-index order (or none to use 0..{num_classes - 1}).")
    return tuple(str(name) for name in given)


@contextmanager
def restored_model(model: nn.Module) -> Iterator[None]:
    """Give ``model`` back as found: parameter and buffer values and devices, gradients, training flags and
    ``requires_grad`` are saved (a CPU copy of the weights) and restored on exit, even on error."""
    tensors = [(t, t.detach().to("cpu", copy=True), t.device) for t in (*model.parameters(), *model.buffers())]
    params = [(p, p.requires_grad, None if p.grad is None else (p.grad.detach().to("cpu", copy=True), p.grad.device))
              for p in model.parameters()]
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        with torch.no_grad():
            for tensor, saved, device in tensors:
                tensor.data = saved.to(device)
        for p, requires_grad, grad in params:
            p.requires_grad_(requires_grad)
            p.grad = None if grad is None else grad[0].to(grad[1])
        for m, training in modes:
            m.training = training
