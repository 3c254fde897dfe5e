"""Scoring prototypes against a known marker: exact numbers on a hand-built assignment map."""

from __future__ import annotations

import numpy as np
import pytest

from i2x_plugin.checks.shortcut import marker_overlap


def test_overlap_share_iou_and_cover_are_the_counted_cells():
    assignments = np.zeros((4, 2, 2), dtype=np.int64)
    assignments[:2, 0, 0] = 1  # the two marked samples hold prototype 1 on the marker cell
    assignments[2, 1, 1] = 1  # and one unmarked sample holds it elsewhere
    marked = np.array([True, True, False, False])
    cells = np.array([[True, False], [False, False]])
    overlap = marker_overlap(assignments, marked, cells, k=3)
    assert overlap.best == 1
    assert overlap.cells.tolist() == [13, 3, 0]
    assert overlap.on_marked[1] == pytest.approx(2 / 3)
    assert overlap.iou[1] == pytest.approx(2 / 3)  # |{s0, s1}| / |{s0, s1, s2's cell}|
    assert overlap.covers[1] == 1.0 and overlap.covers[0] == 0.0
    assert overlap.iou[2] == 0.0


def test_overlap_refuses_a_mask_at_another_resolution():
    with pytest.raises(ValueError, match="give the mask at the explained layer"):
        marker_overlap(np.zeros((2, 7, 7), dtype=np.int64), np.ones(2, dtype=bool), np.zeros((14, 14), bool), 4)
