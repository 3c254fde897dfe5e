"""The report's Reliance section (report/reliance.py) on the digits run with its reliance check run."""

from __future__ import annotations

import pytest

from i2x_plugin.checks import run_reliance
from i2x_plugin.report.reliance import reliance_section

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_section_shows_class_edges_pair_groups_and_confusers_with_their_counts(digits_run):
    e = run_reliance(digits_run.explanation, digits_run.load_final(), digits_run.probe)
    page = reliance_section(e)
    r = e.reliance
    margin = [s for s in r.pair_sets if s.kind == "margin"]
    confusers = [s for s in r.pair_sets if s.kind == "confuser"]
    assert f"margin reliance ({sum(s.passes for s in margin)} of {len(margin)} reported pair groups pass)" in page
    assert f"Confusers of the most confused pairs ({sum(s.passes for s in confusers)} of {len(confusers)} pass)" in page
    assert "beside the training dynamics (β)" in page
    x = min(r.significant, key=lambda x: (x.cls, x.rank))
    assert f"P{x.prototype} ({x.effect:.2f}, from {'—' if x.formed_at is None else x.formed_at})" in page
    for s in margin:
        assert ", ".join(f"P{k}" for k in s.test.prototypes) in page


def test_a_run_without_the_reliance_check_says_so(digits_run):
    assert "Not measured" in reliance_section(digits_run.explanation)
