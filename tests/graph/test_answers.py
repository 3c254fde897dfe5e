"""The example answers' wording: a direction is stated only for a β that passed its test."""

from i2x_plugin.graph.answers import _direction, _evidence


def test_a_significant_beta_says_which_way_it_moves_the_confidence():
    assert _direction(0.3, 0.01, 0.05) == ": more saliency on it raises the confidence in that class."
    assert _direction(-0.3, 0.01, 0.05) == ": more saliency on it lowers the confidence in that class."


def test_a_beta_that_noise_explains_gets_no_direction():
    assert _direction(0.3, 0.51, 0.05) == "."
    assert _direction(0.3, None, 0.05) == "."
    assert _evidence(0.51, 0.05) == "q = 0.51, not distinguishable from noise at q ≤ 0.05"
    assert _evidence(0.01, 0.05) == "q = 0.01" and _evidence(None, 0.05) == "not tested"
