"""Ridge from per-stratum statistics: equal to scikit-learn, and an exact permutation null."""

import itertools

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from i2x_plugin.method.ridge import ridge_fit, standardize_delta_p, step_class_statistics, step_fits, stratum_statistics


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    steps, n, k, c = 3, 240, 5, 4
    x = rng.normal(size=(steps, n, k))
    y = x @ rng.normal(size=(k, c)) * 0.3 + rng.gamma(1.0, size=(steps, n, c))  # skewed noise, like ΔŶ
    labels = rng.integers(0, c, n)
    return x, y, labels, step_class_statistics(x, y, labels, c)


def _relative(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


def test_one_stratum_equals_scikit_learn_ridge(data):
    x, y, labels, stats = data
    rows = labels == 2
    reference = Ridge(alpha=0.3 * rows.sum(), fit_intercept=True).fit(x[1, rows], y[1, rows]).coef_.T
    assert _relative(ridge_fit(stats[1, 2], 0.3).beta, reference) < 1e-8


def test_pooled_scope_equals_ridge_on_rows_centred_per_stratum(data):
    """A class over all steps: each (step, class) stratum keeps its own intercept."""
    x, y, labels, stats = data
    rows = labels == 1
    xs = np.concatenate([x[t, rows] - x[t, rows].mean(0) for t in range(3)])
    ys = np.concatenate([y[t, rows] - y[t, rows].mean(0) for t in range(3)])
    reference = Ridge(alpha=0.5 * len(xs), fit_intercept=True).fit(xs, ys).coef_.T
    pooled = ridge_fit(stats[:, 1], 0.5, pool_axes=1)
    assert _relative(pooled.beta, reference) < 1e-8
    assert pooled.n == len(xs)


def test_batched_scopes_equal_one_at_a_time(data):
    _, _, _, stats = data
    batched = ridge_fit(stats, 0.2)
    for t, c in [(0, 0), (2, 3)]:
        np.testing.assert_allclose(batched.beta[t, c], ridge_fit(stats[t, c], 0.2).beta, rtol=1e-10)


def test_columns_and_contrasts_select_from_the_same_fit(data):
    _, _, _, stats = data
    full = ridge_fit(stats[0, 1], 0.1)
    assert np.allclose(ridge_fit(stats[0, 1], 0.1, columns=np.array([2, 0])).beta, full.beta[:, [2, 0]])
    contrast = np.array([[1.0, 0.0, -1.0, 0.0]])
    np.testing.assert_allclose(ridge_fit(stats[0, 1], 0.1, contrasts=contrast).beta[:, 0],
                               full.beta[:, 0] - full.beta[:, 2], rtol=1e-10)


def test_the_penalty_scales_with_the_scope_size():
    """The same relationship fitted on 20 or 2,000 rows is shrunk alike (λ = alpha · n)."""
    rng = np.random.default_rng(1)
    betas = []
    for n in (20, 2000):
        x = rng.normal(size=(n, 1))
        x = (x - x.mean()) / x.std()  # unit variance, as standardize_delta_p makes it
        stats = stratum_statistics(x, 2.0 * x, np.zeros(n, int), 1)
        betas.append(ridge_fit(stats[0], 1.0).beta[0, 0])
    assert betas[0] == pytest.approx(1.0) and betas[1] == pytest.approx(1.0)  # 2n / (n + 1.0·n)


def test_null_cumulants_are_exact_over_all_permutations():
    """Mean 0, variance and third cumulant of β over all 7! row permutations of a small skewed stratum."""
    rng = np.random.default_rng(2)
    n, k = 7, 2
    x, y = rng.normal(size=(n, k)), rng.exponential(size=(n, 1))
    fit = ridge_fit(stratum_statistics(x, y, np.zeros(n, int), 1)[0], 0.3)
    xs, ys = x - x.mean(0), y[:, 0] - y[:, 0].mean()
    weights = np.linalg.solve(xs.T @ xs + 0.3 * n * np.eye(k), xs.T)
    draws = np.stack([weights @ ys[list(p)] for p in itertools.permutations(range(n))])
    np.testing.assert_allclose(draws.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(draws.std(0), fit.null_sd[:, 0], rtol=1e-5)
    np.testing.assert_allclose(((draws - draws.mean(0)) ** 3).mean(0), fit.null_k3[:, 0], rtol=1e-4)


def _serial(rng, steps, n, k):
    """Rows that keep a sample's value across steps (correlation 0.64 between any two), skewed responses."""
    x = 0.8 * rng.normal(size=(1, n, k)) + 0.6 * rng.normal(size=(steps, n, k))
    y = rng.exponential(size=(1, n, 1)) + 0.5 * rng.exponential(size=(steps, n, 1))
    return x, y


def test_pooled_null_over_whole_trajectories_is_exact_over_all_permutations():
    """One permutation for every step (the trajectory null): the pooled β's variance and third cumulant
    over all 6! permutations of a class at 3 steps equal the closed form; the old sum of per-step
    variances (steps permuted independently) is 1.4× and 2.0× too small on these serially correlated rows."""
    rng = np.random.default_rng(7)
    steps, n, k = 3, 6, 2
    x, y = _serial(rng, steps, n, k)
    stats = step_class_statistics(x, y, np.zeros(n, int), 1).moveaxis(0, 1)
    fit = ridge_fit(stats, 0.3, pool_axes=1, trajectory_axis=0)
    draws = np.stack([ridge_fit(step_class_statistics(x[:, list(p)], y, np.zeros(n, int), 1).moveaxis(0, 1), 0.3,
                                pool_axes=1).beta for p in itertools.permutations(range(n))])
    np.testing.assert_allclose(draws.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(draws.std(0), fit.null_sd, rtol=1e-5)
    np.testing.assert_allclose(((draws - draws.mean(0)) ** 3).mean(0), fit.null_k3, rtol=1e-4, atol=1e-12)
    independent = ridge_fit(stats, 0.3, pool_axes=1)
    assert np.all(fit.null_sd**2 > 1.3 * independent.null_sd**2)


def test_step_covariance_is_exact_over_all_permutations():
    """β of a two-class fit at each of 3 steps, both classes' rows permuted with one permutation per class
    for every step: the covariance between steps over all 4!·3! permutations equals the closed form."""
    rng = np.random.default_rng(8)
    steps, n, k = 3, 7, 2
    x, y = _serial(rng, steps, n, k)
    y = np.concatenate([y, rng.normal(size=(steps, n, 1))], axis=2)
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    columns = np.broadcast_to(np.array([[0, 1]]), (steps, 1, 2))
    stats = step_class_statistics(x, y, labels, 2)[:, None]
    fit, cov = step_fits(stats, 0.2, columns)
    same = ridge_fit(stats, 0.2, pool_axes=1, columns=columns)
    np.testing.assert_allclose(fit.null_sd, same.null_sd, rtol=1e-10)
    np.testing.assert_allclose(fit.null_k3, same.null_k3, rtol=1e-10)
    cov = cov[0]  # (T, T, K, 2)
    draws = []
    for first in itertools.permutations(range(4)):
        for second in itertools.permutations(range(4, 7)):
            perm = list(first) + list(second)
            stats = step_class_statistics(x[:, perm], y, labels, 2)[:, None]
            draws.append(ridge_fit(stats, 0.2, pool_axes=1, columns=columns).beta[:, 0])
    draws = np.stack(draws)  # (draws, T, K, 2)
    centred = draws - draws.mean(0)
    np.testing.assert_allclose(np.einsum("btkj,bukj->tukj", centred, centred) / len(draws), cov, rtol=1e-5,
                               atol=1e-12)


def test_freedman_lane_null_is_exact_over_all_permutations():
    """Per-prototype test: permute the residuals of the ridge fit without prototype k, refit, take β_k. Its
    moments over all 7! permutations, and the observed statistic, equal the closed form (block inverse),
    once the stated degrees-of-freedom inflation (n − 1)/(n − 1 − d) of the variance is taken out."""
    rng = np.random.default_rng(9)
    n, k, lam = 7, 3, 0.3
    x = rng.normal(size=(n, k))
    x[:, 1] += 0.8 * x[:, 0]
    y = rng.exponential(size=(n, 1))
    fit = ridge_fit(stratum_statistics(x, y, np.zeros(n, int), 1)[0], lam, per_prototype=True)
    xs, ys = x - x.mean(0), y[:, 0] - y[:, 0].mean()
    full = np.linalg.solve(xs.T @ xs + lam * n * np.eye(k), xs.T)  # (K, n): β = full @ y
    hat = xs @ full
    inflate = (n - 1) / (n - 1 - (2 * np.trace(hat) - np.trace(hat @ hat)))
    for j in range(k):
        rest = np.delete(np.arange(k), j)
        others = xs[:, rest]
        reduced = others @ np.linalg.solve(others.T @ others + lam * n * np.eye(k - 1), others.T @ ys)
        residual = ys - reduced
        draws = np.array([full[j] @ (reduced + residual[list(p)]) for p in itertools.permutations(range(n))])
        shift = full[j] @ reduced  # the part of β_j the other prototypes explain: fixed under this null
        assert fit.statistic[j, 0] == pytest.approx(full[j] @ ys - shift, rel=1e-5)
        assert draws.std() * np.sqrt(inflate) == pytest.approx(fit.null_sd[j, 0], rel=1e-5)
        assert ((draws - shift) ** 3).mean() * inflate**1.5 == pytest.approx(fit.null_k3[j, 0], rel=1e-4, abs=1e-12)
        assert draws.mean() == pytest.approx(shift, abs=1e-12)


def test_freedman_lane_does_not_lend_a_correlated_neighbours_effect():
    """Prototypes correlated 0.6, the neighbour's effect 0.3, prototype 1 null, n = 1,000, 300 draws: share
    of p ≤ 0.05 for prototype 1 over seeds 0–9: shuffling whole rows 0.13–0.19 (0.37 at n = 4,000),
    Freedman–Lane 0.040–0.077 (0.07 at n = 4,000; least squares: 0.06, issue 22)."""
    rng = np.random.default_rng(0)
    rejected = {False: 0, True: 0}
    for _ in range(300):
        z = rng.normal(size=(1000, 2))
        x = np.column_stack([z[:, 0], 0.6 * z[:, 0] + 0.8 * z[:, 1]])
        stats = stratum_statistics(x, (0.3 * x[:, 0] + rng.normal(size=1000))[:, None], np.zeros(1000, int), 1)[0]
        for per_prototype in rejected:
            rejected[per_prototype] += ridge_fit(stats, 0.1, per_prototype=per_prototype).upper_p()[1, 0] <= 0.05
    assert rejected[True] / 300 <= 0.09 and rejected[False] / 300 >= 0.11


def test_freedman_lane_keeps_its_level_with_few_samples_per_prototype():
    """Freedman–Lane permutes fitted residuals, which are smaller than the errors by the fit's degrees of
    freedom; with 150 samples per class and K = 16 (8 steps correlated 0.8, no link) that made 6 % of p ≤ 0.05
    and a false driver (BH, q ≤ 0.05) in 4 of draws 0–19. With the df inflation: 4.4 %, none in 20."""
    from i2x_plugin.method.significance import benjamini_hochberg
    from i2x_plugin.training.synthetic import serially_correlated_noise

    false = 0
    for seed in range(20):
        x, y, labels = serially_correlated_noise(8, 150, 16, 4, rho_x=0.8, rho_y=0.8, seed=seed, compete=True)
        stats = step_class_statistics(x, y, labels, 4).moveaxis(0, 1)
        fit = ridge_fit(stats, 0.1, pool_axes=1, columns=np.arange(4)[:, None], trajectory_axis=0, per_prototype=True)
        false += bool(((benjamini_hochberg(fit.upper_p()) <= 0.05) & (fit.beta > 0)).any())
    assert false <= 1


def test_p_values_are_uniform_under_permutation():
    """Skewed responses: the three-moment p-value keeps its level where the normal tail would not."""
    rng = np.random.default_rng(3)
    n, k = 120, 4
    x = rng.normal(size=(n, k))
    y = rng.exponential(size=(n, 1)) ** 2  # heavily skewed
    p = []
    for _ in range(3000):
        stats = stratum_statistics(x, y[rng.permutation(n)], np.zeros(n, int), 1)
        p.append(ridge_fit(stats[0], 0.1).upper_p()[:, 0])
    p = np.concatenate(p)
    assert abs((p < 0.05).mean() - 0.05) < 0.01
    assert (p < 0.01).mean() < 0.016


def test_a_prototype_that_never_varies_has_no_null_spread_and_p_one():
    rng = np.random.default_rng(4)
    x = np.column_stack([rng.normal(size=50), np.zeros(50)])
    fit = ridge_fit(stratum_statistics(x, rng.normal(size=(50, 2)), np.zeros(50, int), 1)[0], 0.1)
    assert np.all(fit.null_sd[1] == 0) and np.all(fit.upper_p()[1] == 1.0) and np.all(fit.score()[1] == 0)


def test_standardising_divides_by_the_step_sd_and_keeps_constant_columns_zero():
    delta = np.zeros((2, 4, 2))
    delta[0, :, 0] = [1.0, -1.0, 3.0, -3.0]
    out = standardize_delta_p(delta)
    assert np.isclose(out[0, :, 0].std(), 1.0) and np.all(out[:, :, 1] == 0) and np.all(out[1] == 0)
