"""The structure rules that come from confusion counts (method.md step 8) and the saved explanation's format."""

import json

import numpy as np
import pytest

from i2x_plugin.method.structure import (
    ExplanationFormatError,
    StructuredExplanation,
    find_exemplars,
    learning_order,
    pair_separations,
)


def test_separation_checkpoint_is_first_from_which_confusion_stays_low():
    labels = np.repeat([0, 1, 2], 50)  # threshold = max(1, round(0.02 * 100)) = 2
    confusion = np.zeros((5, 3, 3), int)
    confusion[:, 0, 1] = [30, 10, 1, 5, 0]  # back above threshold at checkpoint 3, then separated at 4
    confusion[:, 1, 2] = [20, 0, 0, 0, 0]
    confusion[:, 0, 2] = [9, 9, 9, 9, 9]  # never separated
    seps = {(s.a, s.b): s for s in pair_separations(confusion, labels, [(0, 1), (0, 2), (1, 2)], 0.02)}
    assert seps[(0, 1)].separation_checkpoint == 4
    assert seps[(1, 2)].separation_checkpoint == 1
    assert seps[(0, 2)].separation_checkpoint is None
    assert learning_order(list(seps.values())) == [[1, 2], [0, 1], [0, 2]]


def test_an_explanation_saved_by_version_0_1_is_refused_with_the_fix(digits_run, tmp_path):
    """Explanations written before calibrated claims have no format_version and a noise floor."""
    directory = digits_run.explanation.save(tmp_path / "old")
    meta = json.loads((directory / "explanation.json").read_text())
    del meta["format_version"]
    meta["noise_floor"] = 0.01
    (directory / "explanation.json").write_text(json.dumps(meta))
    with pytest.raises(ExplanationFormatError, match="format 1, written by i2x-plugin 0.1.*Explain the run again"):
        StructuredExplanation.load(directory)


def test_exemplars_are_the_most_salient_samples_that_contain_the_prototype():
    assignments = np.array([[[0, 0], [1, 2]],
                            [[1, 1], [1, 1]],
                            [[2, 0], [2, 2]]])  # 3 samples, 2×2 cells; P3 is nowhere
    presence = np.array([[2, 1, 1, 0], [0, 4, 0, 0], [1, 0, 3, 0]])
    final = np.array([[0.5, 0.2, 0.9, 0.0],
                      [0.7, 0.6, 0.0, 0.8],  # P0 and P3 absent from sample 1: their intensities do not count
                      [0.5, 0.0, 0.4, 0.0]])
    got = [(x.prototype, x.sample, x.intensity, x.presence, x.box) for x in find_exemplars(final, presence, assignments, 2)]
    assert got == [(0, 0, 0.5, 2, [0, 0, 0, 1]), (0, 2, 0.5, 1, [0, 1, 0, 1]),  # a tie keeps probe order
                   (1, 1, 0.6, 4, [0, 0, 1, 1]), (1, 0, 0.2, 1, [1, 0, 1, 0]),
                   (2, 0, 0.9, 1, [1, 1, 1, 1]), (2, 2, 0.4, 3, [0, 0, 1, 1])]
    assert [(x.prototype, x.sample) for x in find_exemplars(final, presence, assignments, 1)] == [(0, 0), (1, 1), (2, 0)]
