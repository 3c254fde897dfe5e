"""The example answers' wording: a direction is stated only for a β that passed its test."""

from i2x_plugin.graph.answers import _deletion_sentence, _direction, _evidence


def test_a_significant_beta_says_which_way_it_moves_the_confidence():
    assert _direction(0.3, 0.01, 0.05) == ": more saliency on it raises the confidence in that class."
    assert _direction(-0.3, 0.01, 0.05) == ": more saliency on it lowers the confidence in that class."


def test_a_beta_that_noise_explains_gets_no_direction():
    assert _direction(0.3, 0.51, 0.05) == "."
    assert _direction(0.3, None, 0.05) == "."
    assert _evidence(0.51, 0.05) == "q = 0.51, not distinguishable from noise at q ≤ 0.05"
    assert _evidence(0.01, 0.05) == "q = 0.01" and _evidence(None, 0.05) == "not tested"


def test_a_reliance_q_below_the_floor_is_shown_as_a_bound():
    """The sample's deletion answer shows a class-level q below 1e-6 as "< 1e-06", like every other q."""
    row = {"deletionPrototypes": [12], "deletionNames": ["P12"], "deletionPredictedDrops": [0.131],
           "deletionRunnerUpDrops": [-0.261], "deletionQs": [2.8e-08], "deletionFormedAt": [8], "predicted": 9,
           "runnerUp": 4}
    sentence = _deletion_sentence(row, [str(c) for c in range(10)], 0.05)
    assert "P12 (confidence in 9 −0.131, in 4 +0.261; class-level edge toward 9: q < 1e-06, formed at checkpoint 8)" \
        in sentence
