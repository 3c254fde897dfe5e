"""Step 8 of I2X, calibrated: every claim of the structured explanation with the evidence it rests on.

Each claim kind keeps the paper's intent (method.md step 8) and is decided by a test against the
permutation null of whole trajectories within class (:mod:`.significance`), with Benjamini–Hochberg control
of the false discovery rate over the claims of one kind in a run (q ≤ ``I2XConfig.fdr_q``; each kind is
its own FDR family):

* **driver** of class c: β[k, c] of class c's own fit, pooled over all steps, is significantly positive.
  Its ``first_step`` is the first step whose own fit is significant at ``step_alpha`` / (T−1) (Bonferroni
  over the steps: a spurious early date has probability ≤ ``step_alpha`` under the null).
* **separator** of (a, b) favouring a: on the a ∪ b fits, β[k, a] > 0 > β[k, b] *on average* from some
  step to the last (≥ ``min_separator_steps`` steps), tested as a sequence (:func:`.significance.suffix_scan`);
  its onset is descriptive (the window with the strongest evidence).
* **uncertain** between a confused pair (a, b): the sign of β[k, a] − β[k, b] flips between significant
  steps more often than the trajectory permutations do (:func:`.significance.flip_count_p`).
* **shared / specialised**: significantly positive in ≥ ``shared_fraction`` of class c's tested
  learning-pattern groups / in some group and more than in another (claim-level tests, then BH:
  :func:`shared_and_specialised`).

Measured before this change on the default run (mnist-5k, K = 32), noise shuffled within class gave as
many claims as the real run; now noise gives none (see ``ClaimCounts`` and bench/results/core.json).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.stats import norm
from threadpoolctl import threadpool_limits

from .claim_types import Claims, Driver, GroupSummary, Separator, SharedPrototype, UncertainPrototype
from .config import I2XConfig
from .distributed import available_cores
from .ridge import RidgeFit, StrataStatistics, ridge_fit, step_class_statistics, step_fits, stratum_statistics
from .significance import (
    benjamini_hochberg,
    count_flips,
    flip_count_p,
    shuffle_trajectories,
    suffix_scan,
    suffix_scan_p,
    within_strata_permutations,
)


def class_pairs(num_classes: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(num_classes) for b in range(a + 1, num_classes)]


def most_confused_pairs(final_confusion: np.ndarray, top: int) -> list[tuple[int, int]]:
    """The ``top`` pairs with most a↔b confusions at the final checkpoint (none with zero)."""
    c = final_confusion.shape[0]
    scored = [(final_confusion[a, b] + final_confusion[b, a], (a, b)) for a, b in class_pairs(c)]
    scored = sorted((s for s in scored if s[0] > 0), key=lambda s: -s[0])
    return [pair for _, pair in scored[:top]]


# --- fits ------------------------------------------------------------------------------------------------


def _own_columns(shape: tuple[int, ...], num_classes: int) -> np.ndarray:
    """Column index c for a scope axis of classes: ``(*shape, C, 1)``."""
    return np.broadcast_to(np.arange(num_classes)[:, None], shape + (num_classes, 1))


def _pair_fits(stats: StrataStatistics, pairs: list[tuple[int, int]], alpha: float,
               chunk: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step and pair, β[k, a] and β[k, b] of the a ∪ b fit and their z: ``(T-1, P, K, 2)`` float32 each;
    and the null correlation of each β between steps under trajectory permutations ``(T-1, T-1, P, K, 2)``.

    Chunked over pairs so memory stays O(T·chunk·n·K) at C = 100."""
    steps, k = stats.n.shape[0], stats.k
    beta = np.zeros((steps, len(pairs), k, 2), dtype=np.float32)
    z = np.zeros_like(beta)
    corr = np.zeros((steps, steps, len(pairs), k, 2), dtype=np.float32)
    for start in range(0, len(pairs), chunk):
        block = np.array(pairs[start : start + chunk])
        columns = np.broadcast_to(block, (steps,) + block.shape)
        fit, cov = step_fits(stats[:, block], alpha, columns, per_prototype=True)
        beta[:, start : start + len(block)], z[:, start : start + len(block)] = fit.beta, fit.score()
        cov = np.moveaxis(cov, (1, 2), (0, 1))  # (T, T, P, K, 2)
        sd = np.sqrt(np.maximum(np.einsum("tt...->t...", cov), 0.0))
        outer = sd[:, None] * sd[None]
        corr[:, :, start : start + len(block)] = np.where(outer > 0, cov / np.where(outer > 0, outer, 1.0),
                                                           np.eye(steps).reshape((steps, steps, 1, 1, 1)))
    return beta, z, corr


def _group_fits(x: np.ndarray, y: np.ndarray, labels: np.ndarray, group_labels: np.ndarray, min_samples: int,
                alpha: float) -> tuple[np.ndarray, RidgeFit, int]:
    """Fits of every non-noise group with ≥ ``min_samples`` samples: keys ``(G, 3)``, the fit (β[k, c] of the
    group's class), and how many groups were too small to test."""
    keys, fits, too_small = [], [], 0
    for t in range(len(x)):
        ids = np.where(group_labels[t] >= 0, labels * (group_labels[t].max() + 1) + group_labels[t], -1)
        found, sizes = np.unique(ids[ids >= 0], return_counts=True)
        tested = found[sizes >= min_samples]
        too_small += int((sizes < min_samples).sum())
        if not len(tested):
            continue
        strata = np.searchsorted(tested, ids)
        strata = np.where(np.isin(ids, tested), strata, len(tested))
        stats = stratum_statistics(x[t], y[t], strata, len(tested))
        per_class = tested // (group_labels[t].max() + 1)
        fits.append(ridge_fit(stats, alpha, columns=per_class[:, None], per_prototype=True))
        keys += [(t, int(c), int(i % (group_labels[t].max() + 1))) for c, i in zip(per_class, tested)]
    if not fits:
        k = x.shape[2]
        empty = np.zeros((0, k, 1))
        return np.zeros((0, 3), dtype=np.int64), RidgeFit(empty, empty, empty, np.zeros(0), empty), too_small
    fit = RidgeFit(*(np.concatenate([getattr(f, name) for f in fits])
                     for name in ("beta", "null_sd", "null_k3", "n", "statistic")))
    return np.array(keys, dtype=np.int64), fit, too_small


# --- claims ----------------------------------------------------------------------------------------------


def find_drivers(driver_fit: RidgeFit, class_p: np.ndarray, saliency_share: np.ndarray, tested: np.ndarray,
                 q_level: float, step_alpha: float) -> tuple[list[Driver], np.ndarray]:
    """Drivers from the pooled class fits ``(C, K, 1)``: every significantly positive β, ranked by the share of
    the class's final saliency on the prototype ``(C, K)``. The per-step one-sided p-values ``class_p``
    ``(T-1, C, K)`` of the class's own fits date their first step: the first at ``step_alpha`` / (T−1)
    (Bonferroni over the steps; unadjusted, 8 steps at 0.05 gave a spurious early step 34 % of the time).

    (D) Why this ranking: the test says a prototype's saliency growth raised the class's confidence during
    training; the share says how much the final model looks at it. On the default run the top 5 drivers
    ranked by β beat 95 % of matched random prototype sets in a deletion test for 1 of 10 classes (mean
    confidence drop 0.11, plain saliency's top 5: 0.69); ranked by final saliency share, for 4 of 10 (0.20).
    docs/method.md and docs/limits.md say what that leaves.
    """
    beta, z = driver_fit.beta[..., 0], driver_fit.score()[..., 0]
    p = np.where(tested[:, None], driver_fit.upper_p()[..., 0], np.nan)
    q = benjamini_hochberg(p)
    drivers = []
    for c in np.flatnonzero(tested):
        hits = [k for k in np.argsort(-saliency_share[c], kind="stable") if q[c, k] <= q_level and beta[c, k] > 0]
        for rank, k in enumerate(hits):
            early = np.flatnonzero(class_p[:, c, k] <= step_alpha / len(class_p))
            drivers.append(Driver(int(c), int(k), float(beta[c, k]), float(z[c, k]), float(p[c, k]),
                                  float(q[c, k]), float(saliency_share[c, k]), rank,
                                  int(early[0]) if len(early) else None))
    return drivers, q


def find_separators(beta_pair: np.ndarray, z_pair: np.ndarray, pairs: list[tuple[int, int]], tested: np.ndarray,
                    q_level: float, min_steps: int, corr_pair: np.ndarray | None = None) -> list[Separator]:
    """Separators from the per-step pair fits ``(T-1, P, K, 2)`` by a suffix scan of both directions, with the
    steps' null correlation ``corr_pair`` ``(T-1, T-1, P, K, 2)`` (default: independent steps)."""
    steps = beta_pair.shape[0]
    stats, onsets, p = [], [], []
    for favours, other in ((0, 1), (1, 0)):
        corr = (None, None) if corr_pair is None else (corr_pair[..., favours], corr_pair[..., other])
        statistic, onset = suffix_scan(z_pair[..., favours], z_pair[..., other], min_steps, *corr)  # (P, K)
        ok = np.array([tested[a] and tested[b] for a, b in pairs])[:, None]
        stats.append(statistic)
        onsets.append(onset)
        p.append(np.where(ok & np.isfinite(statistic), suffix_scan_p(statistic, steps, min_steps), np.nan))
    q = benjamini_hochberg(np.stack(p))
    out = []
    for d, (favours, other) in enumerate(((0, 1), (1, 0))):
        for i, k in zip(*np.nonzero(q[d] <= q_level)):
            a, b = pairs[i]
            start = int(onsets[d][i, k])
            window = beta_pair[start:, i, k]
            holds = (window[:, favours] > 0) & (window[:, other] < 0)
            out.append(Separator(a, b, int(k), (a, b)[favours], start, (start + np.flatnonzero(holds)).tolist(),
                                 float((window[:, favours] - window[:, other]).mean()), float(stats[d][i, k]),
                                 float(p[d][i, k]), float(q[d][i, k])))
    out.sort(key=lambda s: (s.a, s.b, s.q, s.prototype))
    return out


def pair_difference(x: np.ndarray, y: np.ndarray, labels: np.ndarray, pair: tuple[int, int], alpha: float,
                    perms: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """β[k, a] − β[k, b] of the a ∪ b fit per step, observed ``(T-1, K)``, and under the within-class permutations
    ``perms`` ``(B, n_a + n_b)`` of the pair's rows ``(B, T-1, K)`` (Monte Carlo: the rank test then needs no
    distribution shape). The same draws serve every step: each step's rank test is marginal."""
    a, b = pair
    rows = np.flatnonzero((labels == a) | (labels == b))
    xs, d = x[:, rows].astype(np.float32), (y[:, rows, a] - y[:, rows, b]).astype(np.float32)
    for c in (a, b):
        members = labels[rows] == c
        xs[:, members] -= xs[:, members].mean(1, keepdims=True)
        d[:, members] -= d[:, members].mean(1, keepdims=True)
    gram = xs.transpose(0, 2, 1) @ xs + alpha * len(rows) * np.eye(xs.shape[2], dtype=np.float32)
    weights = np.linalg.solve(gram, xs.transpose(0, 2, 1))  # (T-1, K, n)
    observed = np.einsum("tkn,tn->tk", weights, d)
    if perms is None:
        return observed, None
    null = np.einsum("tkn,tbn->btk", weights, d[:, perms], optimize=True)
    return observed, null


def find_uncertain(x: np.ndarray, y: np.ndarray, labels: np.ndarray, confused: list[tuple[int, int]],
                   tested: np.ndarray, config: I2XConfig, rng: np.random.Generator,
                   null_cache: dict[tuple[int, int], np.ndarray] | None = None) -> list[UncertainPrototype]:
    """Uncertain prototypes of the confused pairs: flips of β[k,a] − β[k,b] between significant steps, against
    the flips of the same statistic under ``n_permutations`` trajectory permutations (:func:`.flip_count_p`).

    ``null_cache`` keeps each pair's permutation draws for reuse on within-class shuffles of the same data,
    whose permutation distribution is the same (Sxx and ΔŶ do not change)."""
    rows, p = [], []
    for a, b in confused:
        if not (tested[a] and tested[b]):
            continue
        if null_cache is not None and (a, b) in null_cache:
            observed, _ = pair_difference(x, y, labels, (a, b), config.ridge_alpha)
            null = null_cache[(a, b)]
        else:
            members = labels[(labels == a) | (labels == b)]
            perms = within_strata_permutations(members, config.n_permutations, rng)
            observed, null = pair_difference(x, y, labels, (a, b), config.ridge_alpha, perms)
            if null_cache is not None:
                null_cache[(a, b)] = null
        sides, _, p_flips = flip_count_p(observed, null, config.step_alpha)
        for k in range(x.shape[2]):
            flips, at = count_flips(sides[:, k])
            significant = np.flatnonzero(sides[:, k])
            rows.append((a, b, k, flips, at, significant, sides[significant, k], np.abs(observed[significant, k])))
            p.append(p_flips[k])
    q = benjamini_hochberg(np.array(p))
    out = []
    for (a, b, k, flips, at, significant, signs, size), pv, qv in zip(rows, p, q):
        if qv <= config.fdr_q and flips > 0:
            magnitude = float(size.mean())
            out.append(UncertainPrototype(a, b, k, flips, at, significant.tolist(), signs.tolist(), magnitude,
                                          flips * magnitude, float(pv), float(qv)))
    out.sort(key=lambda u: (-u.score, u.a, u.b, u.prototype))
    return out


def shared_and_specialised(keys: np.ndarray, group_fit: RidgeFit, num_classes: int, q_level: float,
                           shared_fraction: float, top: int) -> tuple[list[SharedPrototype], dict, np.ndarray]:
    """Shared / specialised prototypes tested as claims, and each group's top significant prototypes.

    Per (class c, prototype k), from the one-sided p-values p_g of c's n tested groups (BH over all group
    fits only decides the descriptive ``groups``, ``fraction`` and each group's top prototypes):

    * **shared**, "positive in at least u = ⌈shared_fraction · n⌉ of the groups": the partial-conjunction
      p-value (n − u + 1) · p_(u) (Bonferroni's form, valid however the groups' tests depend on each other,
      as groups at different steps share samples);
    * **specialised**, "positive in some group *and* larger there than in another group of the same step"
      (positive evidence of a difference, not silence elsewhere): intersection–union,
      p = max(n · p_(1), D · min p_gh) over the D ordered same-step pairs,
      p_gh = Φ̄((β_g − β_h)/√(sd_g² + sd_h²))
      (the permutation null's sds stand in for the sampling sds: an approximation);
    * q-values are BH over the (class, prototype) claims of each kind, one FDR family per kind; a
      prototype shared by the class is not also called specialised.
    """
    beta, stat = group_fit.beta[..., 0], group_fit.tested[..., 0]
    p_group = group_fit.upper_p()[..., 0]
    q = benjamini_hochberg(p_group)
    significant = (q <= q_level) & (beta > 0)
    tops = {tuple(int(v) for v in key): [int(k) for k in np.argsort(-beta[g], kind="stable")
                                          if significant[g, k]][:top] for g, key in enumerate(keys)}
    k_all = beta.shape[1]
    p_claim = np.full((2, num_classes, k_all), np.nan)  # shared, specialised
    for c in range(num_classes):
        mine = np.flatnonzero(keys[:, 1] == c) if len(keys) else np.zeros(0, dtype=int)
        if not len(mine):
            continue
        n = len(mine)
        ordered = np.sort(p_group[mine], axis=0)
        u = max(int(np.ceil(shared_fraction * n - 1e-9)), 1)
        p_claim[0, c] = np.minimum((n - u + 1) * ordered[u - 1], 1.0)
        pairs = [(g, h) for g in mine for h in mine if g != h and keys[g, 0] == keys[h, 0]]
        if pairs:
            g, h = np.array(pairs).T
            sd = np.sqrt(group_fit.null_sd[g, :, 0] ** 2 + group_fit.null_sd[h, :, 0] ** 2)
            z = np.where(sd > 0, (stat[g] - stat[h]) / np.where(sd > 0, sd, 1.0), 0.0)
            p_diff = np.minimum(len(pairs) * norm.sf(z).min(0), 1.0)
            p_claim[1, c] = np.maximum(np.minimum(n * ordered[0], 1.0), p_diff)
        else:
            p_claim[1, c] = 1.0
    q_claim = np.stack([benjamini_hochberg(p_claim[0]), benjamini_hochberg(p_claim[1])])
    out = []
    for c in range(num_classes):
        mine = np.flatnonzero(keys[:, 1] == c) if len(keys) else np.zeros(0, dtype=int)
        for k in range(k_all):
            if not len(mine) or not significant[mine, k].any():
                continue
            kind = ("shared" if q_claim[0, c, k] <= q_level else
                    "specialised" if q_claim[1, c, k] <= q_level else None)
            if kind is None:
                continue
            where = mine[significant[mine, k]]
            out.append(SharedPrototype(c, int(k), kind, len(where) / len(mine),
                                       [[int(keys[g, 0]), int(keys[g, 2])] for g in where],
                                       float(q_claim[0 if kind == "shared" else 1, c, k])))
    return out, tops, q


def _summarise_groups(group_labels: np.ndarray, labels: np.ndarray, num_classes: int,
                      tops: dict[tuple[int, int, int], list[int]]) -> list[GroupSummary]:
    out = []
    for t in range(group_labels.shape[0]):
        for c in range(num_classes):
            ids, sizes = np.unique(group_labels[t, labels == c], return_counts=True)
            for g, size in zip(ids.tolist(), sizes.tolist()):
                out.append(GroupSummary(t, c, g, size, tops.get((t, c, g), []), (t, c, g) in tops))
    return out


def calibrated_claims(x: np.ndarray, y: np.ndarray, labels: np.ndarray, group_labels: np.ndarray,
                      final_confusion: np.ndarray, saliency_share: np.ndarray, config: I2XConfig,
                      seed: int | None = None, null_cache: dict | None = None) -> Claims:
    """Fit every scope from sufficient statistics and decide every claim against the permutation null.

    Args:
        x: ΔP standardised per step ``(T-1, N, K)`` (:func:`.ridge.standardize_delta_p`).
        y: ΔŶ ``(T-1, N, C)``.
        labels: true class per sample ``(N,)``; group_labels: HDBSCAN group per step and sample ``(T-1, N)``.
        final_confusion: ``(C, C)`` at the final checkpoint (chooses the pairs examined for uncertainty).
        saliency_share: ``(C, K)`` share of each class's final saliency on each prototype (ranks drivers;
            :func:`saliency_share`).
        config: alpha, q level, permutations, minimum scope size and the claim settings.
        seed: seeds the Monte Carlo permutations (default ``config.seed``).
        null_cache: permutation draws to reuse across within-class shuffles of the same data (see
            :func:`find_uncertain`).
    """
    with threadpool_limits(1, "blas"):  # hundreds of K×K solves: threads cost more than they give
        return _calibrated_claims(x, y, labels, group_labels, final_confusion, saliency_share, config, seed,
                                  null_cache)


def _calibrated_claims(x, y, labels, group_labels, final_confusion, saliency_share, config, seed,
                       null_cache) -> Claims:
    rng = np.random.default_rng(config.seed if seed is None else seed)
    num_classes = y.shape[2]
    pairs = class_pairs(num_classes)
    counts = np.bincount(labels, minlength=num_classes)
    tested = counts >= config.min_scope_samples
    skipped = [f"class {c}: {counts[c]} probe samples < min_scope_samples={config.min_scope_samples}; its class, "
               "pair and group fits are not tested (no driver, separator or uncertain claim involves it)"
               for c in np.flatnonzero(~tested)]
    stats = step_class_statistics(x, y, labels, num_classes)
    live = stats[:, tested]
    step_fit = ridge_fit(live, config.ridge_alpha, pool_axes=1)
    overall = ridge_fit(live.moveaxis(0, 1), config.ridge_alpha, pool_axes=2, trajectory_axis=1)
    class_fit = ridge_fit(stats, config.ridge_alpha, columns=_own_columns((len(x),), num_classes), per_prototype=True)
    driver_fit = ridge_fit(stats.moveaxis(0, 1), config.ridge_alpha, pool_axes=1,
                           columns=_own_columns((), num_classes), trajectory_axis=0, per_prototype=True)
    drivers, q_driver = find_drivers(driver_fit, class_fit.upper_p()[..., 0], saliency_share, tested,
                                     config.fdr_q, config.step_alpha)
    beta_pair, z_pair, corr_pair = _pair_fits(stats, pairs, config.ridge_alpha)
    separators = find_separators(beta_pair, z_pair, pairs, tested, config.fdr_q, config.min_separator_steps,
                                 corr_pair)
    confused = most_confused_pairs(final_confusion, config.confused_pairs)
    uncertain = find_uncertain(x, y, labels, confused, tested, config, rng, null_cache)
    keys, group_fit, too_small = _group_fits(x, y, labels, group_labels, config.min_scope_samples, config.ridge_alpha)
    if too_small:
        skipped.append(f"{too_small} learning-pattern groups have fewer than min_scope_samples="
                       f"{config.min_scope_samples} samples and were not tested (they appear with tested=false)")
    shared, tops, q_group = shared_and_specialised(keys, group_fit, num_classes, config.fdr_q,
                                                   config.shared_fraction, config.top_prototypes)
    two_sided = 2 * norm.sf(np.abs(overall.score()))
    return Claims(
        drivers=drivers, separators=separators, uncertain=uncertain, shared=shared,
        groups=_summarise_groups(group_labels, labels, num_classes, tops), skipped=skipped,
        beta_step=step_fit.beta, z_step=step_fit.score(), beta_overall=overall.beta,
        q_overall=benjamini_hochberg(two_sided), beta_class=class_fit.beta[..., 0],
        z_class=class_fit.score()[..., 0],
        beta_driver=driver_fit.beta[..., 0], q_driver=q_driver, beta_pair=beta_pair, z_pair=z_pair,
        beta_group_keys=keys, beta_group=group_fit.beta[..., 0], q_group=q_group,
    )


def saliency_share(intensities_final: np.ndarray, presence: np.ndarray, labels: np.ndarray,
                   num_classes: int) -> np.ndarray:
    """``(C, K)``: the share of class c's final saliency (intensity × cells, summed over its samples) on each
    prototype; 0 for a class without saliency."""
    mass = np.stack([(intensities_final[labels == c] * presence[labels == c]).sum(0) for c in range(num_classes)])
    total = mass.sum(1, keepdims=True)
    return np.where(total > 0, mass / np.where(total > 0, total, 1.0), 0.0)


def claim_counts(claims: Claims) -> dict[str, int]:
    shared = sum(s.kind == "shared" for s in claims.shared)
    return {"drivers": len(claims.drivers), "separators": len(claims.separators), "uncertain": len(claims.uncertain),
            "shared": shared, "specialised": len(claims.shared) - shared}


def null_claim_counts(x: np.ndarray, y: np.ndarray, labels: np.ndarray, group_labels: np.ndarray,
                      final_confusion: np.ndarray, saliency_share: np.ndarray, config: I2XConfig, draws: int,
                      shuffle: str = "class", null_cache: dict | None = None) -> list[dict[str, int]]:
    """Claim counts of the whole procedure on ΔP whose sample trajectories are shuffled within class
    (``shuffle="class"``) or across all samples (``"global"``), ``draws`` times: the false claims noise makes.

    (D) One permutation for every step keeps each sample's serial dependence, so this null does not share
    the per-step tests' model of it (a Stouffer window, a flip count or a pooled variance that assumed
    independent steps makes false claims here); shuffling each step on its own could not catch that.

    ``null_cache``: the permutation draws of the real data's :func:`calibrated_claims` (given the same cache);
    without it the real claims are derived once here to fill it."""
    rng = np.random.default_rng(config.seed + 1)
    strata = labels if shuffle == "class" else np.zeros_like(labels)
    cache = null_cache
    if cache is None:
        cache = {}
        calibrated_claims(x, y, labels, group_labels, final_confusion, saliency_share, config, null_cache=cache)
    shuffles = [shuffle_trajectories(x, strata, rng) for _ in range(draws)]  # drawn in order, then

    def counts(draw: int) -> dict[str, int]:  # derived side by side, one per core (the cache is only read now)
        return claim_counts(calibrated_claims(shuffles[draw], y, labels, group_labels, final_confusion,
                                              saliency_share, config, seed=config.seed + 1000 + draw,
                                              null_cache=cache if shuffle == "class" else None))

    # one process-wide BLAS limit around the threads, so that no thread's own limit is undone by another's exit
    with threadpool_limits(1, "blas"), ThreadPoolExecutor(max(1, min(draws, available_cores()))) as pool:
        return list(pool.map(counts, range(draws)))
