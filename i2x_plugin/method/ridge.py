"""Step 7 of I2X from per-stratum statistics: ridge β for every scope, and its exact permutation null.

Every fit scope of I2X (a step, a class at a step, a pair of classes, a class over all steps, a
learning-pattern group) is a union of *strata*: the samples of one class at one step (or of one group).
Per stratum we keep n, XᵀX, XᵀY and YᵀY centred on the stratum's means, with X = ΔP (standardised per
step) and Y = ΔŶ, so a fit over a scope is a sum and all fits are a few batched solves:

    β = (Σ_s Sxx_s + λ·n·I)⁻¹ Σ_s Sxy_s,   λ = ``alpha`` (relative), n = samples in the scope.

(D) Centring per stratum gives each class its own intercept, so a pooled β measures how a *sample's own*
saliency change moves its confidence change, never a difference between classes' average trajectories
(which a within-class permutation cannot test). (D) ΔP is standardised per step (its scale shrinks ~15×
over a default run) and λ scales with n, so the penalty means the same in a fit of 10 samples and one of
4,000: β is the confidence change per standard deviation of intensity change.
For a single stratum this is scikit-learn's ``Ridge(alpha=λ·n, fit_intercept=True)`` (tested to 1e-8).

The null: permuting the ΔP rows within each stratum leaves Sxx and Syy unchanged, so β[k, j] under the
null is a linear permutation statistic T = Σ_i w_i y_π(i), w = the rows of X(Sxx+λnI)⁻¹, with exact
cumulants (strata permuted independently, so they add):

    E T = 0,  Var T = Σw² Σy² / (n−1),  κ₃(T) = n/((n−1)(n−2)) · Σw³ Σy³.

β's null is a Pearson type III (shifted gamma) law with those three moments (Winkler et al. 2016's
three-moment approximation, here with exact moments). The normal tail alone (two moments) was
anti-conservative on the default run: 10 % of within-class shuffles gave a false driver at q = 0.05, against
5.0 % with the skew; P(p < 0.001) = 0.00125 instead of 0.00182 (60 shuffles × 320 class/prototype pairs).
``RidgeFit.score`` maps β to a normal score through that law.

Two refinements of that null (issue 22). (1) Whole trajectories: a scope pooled over steps (a class's
driver fit) is tested with one permutation for every step (``trajectory_axis``), whose exact cumulants
carry the cross-step terms (:func:`_trajectory_cumulants`); :func:`step_fits` gives the steps'
covariance for sequence statistics. (2) One prototype at a time (``per_prototype``): permuting whole rows
tests "no prototype matters", and ridge lends a correlated neighbour's effect to a null prototype
(correlation 0.6, neighbour effect 0.3, n = 4,000: 37 % rejections at 0.05); Freedman–Lane permutes the
residuals of the fit without the prototype instead (7 %; :func:`_freedman_lane`), in closed form from the
full fit, so it costs one more (m × K) product per stratum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import gamma, norm


def standardize_delta_p(delta_p: np.ndarray) -> np.ndarray:
    """ΔP divided by its standard deviation over all samples of the step, per prototype: ``(T-1, N, K)``.

    A prototype that never changes at a step (absent from every sample, say) stays 0.
    """
    sd = delta_p.std(axis=1, keepdims=True)
    return np.where(sd > 0, delta_p / np.where(sd > 0, sd, 1.0), 0.0)


_FIELDS = ("n", "sxx", "sxy", "syy", "xc", "yc")


@dataclass(frozen=True)
class StrataStatistics:
    """Per stratum: n, centred cross products, and the centred rows (zero-padded to the largest stratum;
    padding adds nothing to any sum). Leading axes index the strata."""

    n: np.ndarray  # (...,)
    sxx: np.ndarray  # (..., K, K)
    sxy: np.ndarray  # (..., K, C)
    syy: np.ndarray  # (..., C, C)
    xc: np.ndarray  # (..., m, K) float32
    yc: np.ndarray  # (..., m, C) float32

    @property
    def k(self) -> int:
        return self.sxx.shape[-1]

    def __getitem__(self, index) -> "StrataStatistics":
        return StrataStatistics(*(getattr(self, f)[index] for f in _FIELDS))

    def moveaxis(self, source: int, destination: int) -> "StrataStatistics":
        """The same strata with a leading axis moved (e.g. (step, class) → (class, step))."""
        return StrataStatistics(*(np.moveaxis(getattr(self, f), source, destination) for f in _FIELDS))

    def flatten(self) -> "StrataStatistics":
        """All leading axes as one."""
        lead = self.n.ndim
        return StrataStatistics(*(getattr(self, f).reshape((-1,) + getattr(self, f).shape[lead:]) for f in _FIELDS))


def stratum_statistics(x: np.ndarray, y: np.ndarray, strata: np.ndarray, num_strata: int) -> StrataStatistics:
    """Statistics of rows ``x`` ``(N, K)``, ``y`` ``(N, C)`` grouped by ``strata`` ``(N,)`` in [0, num_strata);
    rows of any other stratum id are ignored. An empty stratum has n = 0 and zeros."""
    k, c = x.shape[1], y.shape[1]
    sizes = np.bincount(strata[(strata >= 0) & (strata < num_strata)], minlength=num_strata)
    m = max(int(sizes.max(initial=0)), 1)
    xc, yc = np.zeros((num_strata, m, k), np.float32), np.zeros((num_strata, m, c), np.float32)
    sxx, sxy, syy = np.zeros((num_strata, k, k)), np.zeros((num_strata, k, c)), np.zeros((num_strata, c, c))
    for s in np.flatnonzero(sizes):
        rows = strata == s
        xs, ys = x[rows] - x[rows].mean(0), y[rows] - y[rows].mean(0)
        sxx[s], sxy[s], syy[s] = xs.T @ xs, xs.T @ ys, ys.T @ ys
        xc[s, : len(xs)], yc[s, : len(ys)] = xs, ys
    return StrataStatistics(sizes.astype(float), sxx, sxy, syy, xc, yc)


def step_class_statistics(x: np.ndarray, y: np.ndarray, labels: np.ndarray, num_classes: int) -> StrataStatistics:
    """Per (step, class) statistics of ``x`` ``(T-1, N, K)`` and ``y`` ``(T-1, N, C)``: leading axes ``(T-1, C)``."""
    per_step = [stratum_statistics(x[t], y[t], labels, num_classes) for t in range(len(x))]
    return StrataStatistics(*(np.stack([getattr(s, f) for s in per_step]) for f in _FIELDS))


@dataclass(frozen=True)
class RidgeFit:
    """β of one or many scopes with the first three cumulants of its within-stratum permutation null."""

    beta: np.ndarray  # (..., K, J)
    null_sd: np.ndarray  # (..., K, J)
    null_k3: np.ndarray  # (..., K, J) third cumulant
    n: np.ndarray  # (...,) samples per scope
    statistic: np.ndarray | None = None  # (..., K, J) what is tested, if not β (Freedman–Lane: a_kᵀ r_k)

    @property
    def tested(self) -> np.ndarray:
        return self.beta if self.statistic is None else self.statistic

    def upper_p(self) -> np.ndarray:
        """P(T_null ≥ T): one-sided p-value of a positive β (1 where the null has no spread)."""
        return np.where(self.null_sd > 0, _pearson3_sf(self.tested, self.null_sd, self.null_k3), 1.0)

    def score(self) -> np.ndarray:
        """β as a normal score under its null, Φ⁻¹(F_null(T)): N(0, 1) under the null, 0 without spread."""
        upper = _pearson3_sf(self.tested, self.null_sd, self.null_k3)
        lower = _pearson3_sf(-self.tested, self.null_sd, -self.null_k3)
        z = np.where(upper < lower, norm.isf(upper), -norm.isf(lower))
        return np.where(self.null_sd > 0, np.clip(z, -37.0, 37.0), 0.0)


def _pearson3_sf(t: np.ndarray, sd: np.ndarray, k3: np.ndarray) -> np.ndarray:
    """Upper tail of the Pearson type III law with mean 0, standard deviation ``sd``, third cumulant ``k3``;
    never below the normal tail: on its short side the gamma law ends at a finite bound (p = 0 beyond it)
    where the permutation distribution does not, so there the normal tail is kept."""
    safe_sd = np.where(sd > 0, sd, 1.0)
    skew = np.where(sd > 0, k3 / safe_sd**3, 0.0)
    out = norm.sf(t / safe_sd)
    skewed = np.abs(skew) > 1e-4  # below this the gamma law is the normal one to 1e-5
    if skewed.any():
        g, s, x = skew[skewed], safe_sd[skewed], t[skewed]
        shape, scale, loc = 4.0 / g**2, s * np.abs(g) / 2, -2.0 * s / np.abs(g)
        tail = np.where(g > 0, gamma.sf((x - loc) / scale, shape), gamma.cdf((-x - loc) / scale, shape))
        out[skewed] = np.maximum(tail, out[skewed])
    return out


def _penalised_inverse(sxx: np.ndarray, n: np.ndarray, alpha: float) -> np.ndarray:
    k = sxx.shape[-1]
    return np.linalg.inv(sxx + (alpha * np.maximum(n, 1))[..., None, None] * np.eye(k))


def ridge_fit(stats: StrataStatistics, alpha: float, pool_axes: int = 0,
              columns: np.ndarray | None = None, contrasts: np.ndarray | None = None,
              trajectory_axis: int | None = None, per_prototype: bool = False) -> RidgeFit:
    """Fit one scope per entry of the leading axes, pooling the last ``pool_axes`` stratum axes.

    Args:
        stats: statistics with leading axes ``(*scopes, *pooled)``.
        alpha: the relative ridge penalty (λ = alpha × n of the scope).
        pool_axes: how many trailing stratum axes are summed into each scope (0: one stratum per scope).
        columns: ``(*scopes, J)`` or ``(J,)`` class columns of β to return (default: all C).
        contrasts: ``(*scopes, J, C)`` or ``(J, C)`` weights turning β's C columns into J contrasts
            (e.g. β_a − β_b); overrides ``columns``. The null is exact for contrasts too.
        trajectory_axis: a pooled axis (0 = the first pooled one) whose strata hold the same samples in the
            same row order, one stratum per step (a class at every step). The null then permutes whole
            trajectories, one permutation for all those steps, and the cumulants carry the cross-step terms
            (:func:`_trajectory_cumulants`). Without it the strata are permuted independently.
        per_prototype: test each β[k] on its own (Freedman–Lane, :func:`_freedman_lane`) instead of "no
            prototype matters": the residuals of the fit without prototype k are permuted, so a correlated
            neighbour's effect is not lent to k. ``RidgeFit.statistic`` then holds what is tested.

    Returns:
        :class:`RidgeFit` of shape ``(*scopes, K, J)``.
    """
    axes = tuple(range(stats.n.ndim - pool_axes, stats.n.ndim))
    n_scope = stats.n.sum(axis=axes)
    inverse = _penalised_inverse(stats.sxx.sum(axis=axes), n_scope, alpha)
    c = stats.sxy.shape[-1]
    if contrasts is None:
        contrasts = np.eye(c)[np.arange(c) if columns is None else np.asarray(columns)]
    weights = np.broadcast_to(contrasts, n_scope.shape + contrasts.shape[-2:])
    beta = inverse @ stats.sxy.sum(axis=axes) @ np.swapaxes(weights, -1, -2)
    # Null cumulants per stratum (rows w = x A, responses v = y wᵀ), added over the pooled strata.
    expand = (Ellipsis,) + (None,) * pool_axes + (slice(None), slice(None))
    inverse_s, weights_s = inverse[expand], weights[expand]
    w, v, statistic = _rows(stats, inverse_s, weights_s, beta[expand], per_prototype)
    n = np.maximum(stats.n, 3.0)[..., None, None]
    if trajectory_axis is not None:
        at = stats.n.ndim - pool_axes + trajectory_axis  # that axis among w's leading axes
        n_t = np.moveaxis(np.maximum(stats.n, 3.0), at, -1)[..., 0]
        variance, k3 = _trajectory_cumulants(np.moveaxis(w, at, -3), np.moveaxis(v, at, -4), n_t)
        rest = tuple(range(n_scope.ndim, n_scope.ndim + pool_axes - 1))
        variance, k3 = variance.sum(axis=rest), k3.sum(axis=rest)
        units = n_scope / stats.n.shape[at]  # samples: a trajectory is one unit
    else:
        w2, v2 = w * w, v * v  # (not **3: numpy's float32 power is ~30× slower than products)
        variance = (w2.sum(-2)[..., :, None] * v2.sum(-3) / (n - 1)).sum(axis=axes)
        k3 = ((w2 * w).sum(-2)[..., :, None] * (v2 * v).sum(-3) * n / ((n - 1) * (n - 2))).sum(axis=axes)
        units = n_scope
    if per_prototype:
        statistic = statistic.sum(axis=axes)
        inflate = _residual_df_factor(stats.sxx.sum(axis=axes), inverse, units)[..., None, None]
        variance, k3 = variance * inflate, k3 * inflate**1.5
    return RidgeFit(beta, np.sqrt(np.maximum(variance, 0.0)), k3, n_scope, statistic)


def _residual_df_factor(sxx: np.ndarray, inverse: np.ndarray, units: np.ndarray) -> np.ndarray:
    """(units − 1) / (units − 1 − d), d = 2 tr(H) − tr(H²) of the ridge hat matrix: the residuals that
    Freedman–Lane permutes are smaller than the errors by the degrees of freedom the fit used, which makes
    the permutation variance too small where units / K is small. (D) Measured: 4 classes × 150 samples,
    K = 16, 8 serially correlated steps (correlation 0.8), no link: 6 % of the drivers' p ≤ 0.05 and 20 % of
    draws with a false driver without it; with it, see tests/test_ridge.py. Units are samples (whole
    trajectories when steps are pooled), so d is counted once per sample: conservative for i.i.d. rows."""
    h = sxx @ inverse
    d = 2 * np.trace(h, axis1=-2, axis2=-1) - np.einsum("...ij,...ji->...", h, h)
    return (units - 1) / np.maximum(units - 1 - d, 1.0)


def _rows(stats: StrataStatistics, inverse: np.ndarray, weights: np.ndarray, beta: np.ndarray,
          per_prototype: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per stratum, β's row weights w = x A ``(..., m, K)`` and the permuted responses ``(..., m, K', J)``
    (K' = 1: the same y for every prototype; K' = K: prototype k's Freedman–Lane residuals), and, for
    Freedman–Lane, each stratum's share of the tested statistic ``(..., K, J)``."""
    w = stats.xc @ inverse.astype(np.float32)
    v = stats.yc @ np.swapaxes(weights, -1, -2).astype(np.float32)  # (..., m, J)
    if not per_prototype:
        return w, v[..., :, None, :], None
    return (w,) + _freedman_lane(stats.xc, v, w, beta.astype(np.float32),
                                 np.diagonal(inverse, axis1=-2, axis2=-1).astype(np.float32))


def _freedman_lane(x: np.ndarray, y: np.ndarray, w: np.ndarray, beta: np.ndarray,
                   a_diag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Freedman–Lane residuals for every prototype at once, from the full fit alone.

    The ridge fit without prototype k has coefficients β − A[:, k] β_k / A_kk (A = (Sxx + λnI)⁻¹: the block
    inverse), so its residuals are r_k = e + w_k β_k / A_kk, with e the full fit's residuals and w_k the
    row weights of β_k. Permuting r_k (instead of y) and refitting moves β_k by the linear statistic
    Σ_i w_k[i] r_k[π(i)], whose observed value w_kᵀ r_k is what is tested: the part of y that the other
    prototypes (a correlated neighbour included) explain is held fixed, not permuted into k's null.

    Args: rows ``x`` ``(..., m, K)``, responses ``y`` ``(..., m, J)``, weights ``w`` ``(..., m, K)``, the
    fit's β ``(..., K, J)`` and diag(A) ``(..., K)``. Returns ``(r (..., m, K, J), w_kᵀ r_k (..., K, J))``.
    """
    residual = y - x @ beta  # (..., m, J); padding rows stay 0
    lift = beta / np.where(a_diag > 0, a_diag, 1.0)[..., :, None]  # (..., K, J)
    r = residual[..., :, None, :] + w[..., :, :, None] * lift[..., None, :, :]
    return r, np.einsum("...mk,...mkj->...kj", w, r)


def _trajectory_cumulants(w: np.ndarray, v: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Null variance and third cumulant of T = Σ_t Σ_i w_t[i] v_t[π(i)], one permutation π for all steps.

    ``w`` ``(..., T, m, K)`` and ``v`` ``(..., T, m, K', J)`` (K' = 1 or K: one response per prototype) are
    centred within the stratum, ``n`` ``(...)`` its
    size. T is a combinatorial statistic Σ_i d[i, π(i)] with d = Σ_t w_t v_tᵀ (rows and columns sum to 0),
    whose exact moments are Var T = Σ d² / (n−1) = Σ_{t,t'} (w_tᵀw_t')(v_tᵀv_t') / (n−1) and
    κ₃(T) = n/((n−1)(n−2)) Σ d³ = n/((n−1)(n−2)) Σ_{t,t',t''} (Σ_i w_t w_t' w_t'')(Σ_j v_t v_t' v_t'')
    (the one-step formulas, polarised; T³ terms instead of m² per entry). Returns ``(..., K, J)`` each.
    """
    wk = np.moveaxis(w, -1, -3).astype(np.float64)[..., None, :, :]  # (..., K, 1, T, m)
    vk = np.moveaxis(v, (-2, -1), (-4, -3)).astype(np.float64)  # (..., K', J, T, m)
    variance = (_step_moments(wk, 2) * _step_moments(vk, 2)).sum((-2, -1)) / (n - 1)[..., None, None]
    k3 = (_step_moments(wk, 3) * _step_moments(vk, 3)).sum((-2, -1)) * (n / ((n - 1) * (n - 2)))[..., None, None]
    return variance, k3


def _step_moments(a: np.ndarray, order: int) -> np.ndarray:
    """Σ_m a_t a_t' (order 2) or Σ_m a_t a_t' a_t'' (order 3) of ``a`` ``(..., T, m)`` as matrix products:
    ``(..., T, T)`` or ``(..., T·T, T)``."""
    if order == 2:
        return a @ np.swapaxes(a, -1, -2)
    steps = a.shape[-2]
    pairs = (a[..., :, None, :] * a[..., None, :, :]).reshape(a.shape[:-2] + (steps * steps, a.shape[-1]))
    return pairs @ np.swapaxes(a, -1, -2)


def step_fits(stats: StrataStatistics, alpha: float, columns: np.ndarray,
              per_prototype: bool = False) -> tuple[RidgeFit, np.ndarray]:
    """Per-step fits of some scopes and the null covariance between their steps under trajectory permutations.

    ``stats`` has leading axes ``(T, *scopes, S)``: scope fits at each step, each pooling S strata, where
    stratum ``[t, ..., s]`` holds the same samples in the same order at every step t (a class). One
    permutation for all steps makes β_t and β_t' of a scope covary:
    Cov = Σ_s (w_tᵀ w_t')(v_tᵀ v_t') / (n_s − 1), summed over the scope's strata (same notation as
    :func:`ridge_fit`). ``columns`` ``(T, *scopes, J)``: the class columns of β; ``per_prototype``: of the
    Freedman–Lane statistics instead (as in :func:`ridge_fit`).

    Returns:
        the fits, as ``ridge_fit(stats, alpha, pool_axes=1, columns=columns, per_prototype=...)`` gives them
        ``(T, *scopes, K, J)``, and the covariance ``(*scopes, T, T, K, J)`` (its step diagonal is null_sd²).
    """
    n_scope = stats.n.sum(-1)
    inverse = _penalised_inverse(stats.sxx.sum(-3), n_scope, alpha)
    weights = np.eye(stats.sxy.shape[-1])[np.asarray(columns)]  # (T, *scopes, J, C)
    beta = inverse @ stats.sxy.sum(-3) @ np.swapaxes(weights, -1, -2)
    w, v, statistic = _rows(stats, inverse[..., None, :, :], weights[..., None, :, :], beta[..., None, :, :],
                            per_prototype)  # (T, *scopes, S, m, K), (T, *scopes, S, m, K', J)
    n = np.maximum(stats.n, 3.0)[..., None, None]
    w2, v2 = w * w, v * v
    variance = (w2.sum(-2)[..., :, None] * v2.sum(-3) / (n - 1)).sum(-3)
    k3 = ((w2 * w).sum(-2)[..., :, None] * (v2 * v).sum(-3) * n / ((n - 1) * (n - 2))).sum(-3)
    statistic = None if statistic is None else statistic.sum(-3)
    if per_prototype:
        inflate = _residual_df_factor(stats.sxx.sum(-3), inverse, n_scope)[..., None, None]
        variance, k3 = variance * inflate, k3 * inflate**1.5
    fit = RidgeFit(beta, np.sqrt(np.maximum(variance, 0.0)), k3, n_scope, statistic)
    wk = np.moveaxis(w, [0, -1], [-2, -3])  # (*scopes, S, K, T, m): Gram matrices over steps as matmuls
    vk = np.moveaxis(v, [0, -3], [-2, -1])  # (*scopes, S, K', J, T, m)
    gram_w = (wk @ np.swapaxes(wk, -1, -2)).astype(np.float64)
    n_s = np.maximum(stats.n[0], 3.0)[..., None, None, None, None]
    gram_v = (vk @ np.swapaxes(vk, -1, -2)).astype(np.float64) / (n_s - 1)
    cov = (gram_w[..., :, None, :, :] * gram_v).sum(-5)  # (*scopes, K, J, T, T)
    return fit, np.moveaxis(cov, (-2, -1), (-4, -3))
