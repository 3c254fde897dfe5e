"""p- and q-values below the floor are shown as "< 1e-6", one formatter for answers, report and graph."""

import math

from i2x_plugin.graph.answers import _evidence
from i2x_plugin.method.pvalues import P_FLOOR, floor_p, format_p


def test_values_below_the_floor_read_less_than_the_floor():
    assert format_p(9e-15, "q") == "q < 1e-06" and format_p(P_FLOOR) == "p < 1e-06"
    assert format_p(0.0031, "q") == "q = 0.0031" and format_p(2e-6) == "p = 2e-06"
    assert format_p(None, "q") == "q n/a" and format_p(math.nan) == "p n/a"


def test_the_graph_stores_the_floor_and_keeps_untested_values_absent():
    assert floor_p(1e-300) == P_FLOOR and floor_p(0.2) == 0.2
    assert floor_p(None) is None and math.isnan(floor_p(math.nan))


def test_an_answer_never_prints_digits_below_the_floor():
    """The demo's answer showed q = 9e-15 for a β of +0.002 (issue 22)."""
    assert _evidence(9e-15, 0.05) == "q < 1e-06"
