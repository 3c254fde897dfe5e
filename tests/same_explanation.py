"""One assertion shared by the reproducibility and distributed tests: two explanations agree in every field."""

from __future__ import annotations

import dataclasses

import numpy as np

from i2x_plugin import StructuredExplanation

_OWN = {"run_id", "created_at", "prototypes"}  # a run's own name and time; prototypes: compared through their arrays


def assert_same_explanation(one: StructuredExplanation, two: StructuredExplanation) -> None:
    """Every array bit for bit, and every other field (claims with their p, q and recurrence, stability, checks)
    equal; checkpoint paths may differ (two runs write to two folders), nothing else may."""
    for name in StructuredExplanation._ARRAYS + ("saliency_maps",):
        a, b = getattr(one, name), getattr(two, name)
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_array_equal(b, a, err_msg=name)
    if one.prototypes is not None or two.prototypes is not None:
        np.testing.assert_array_equal(two.prototypes.centers, one.prototypes.centers, err_msg="prototype centres")
    for field in dataclasses.fields(StructuredExplanation):
        if field.name in _OWN or field.name in StructuredExplanation._ARRAYS + ("saliency_maps",):
            continue
        a, b = getattr(one, field.name), getattr(two, field.name)
        if field.name == "checkpoints":
            a, b = ([dataclasses.replace(c, path="") for c in x] for x in (a, b))
        assert b == a, field.name
