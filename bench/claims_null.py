"""The claims' tests against the trajectory null (issue 22): what the run claims, what noise claims, and
the level of each claim kind on serially correlated noise, for the code on the path (run it before and after
a change of the tests, e.g. with PYTHONPATH at an older checkout).

    .venv/bin/python bench/claims_null.py --run RUN_DIR --label after   ->  bench/results/claims_null.json

On a saved run (``RUN_DIR/explanation``, ``RUN_DIR/summary.json`` for the sweep's seconds):

* claim counts per kind, re-derived from the saved arrays;
* the counts on ``--draws`` shuffles of whole sample trajectories within class (one permutation for every
  step: the null that keeps each sample's serial dependence), and on shuffles drawn per step (the old null);
* how many separators a test at every step of the window (intersection–union) would keep;
* the share of separators whose own per-step pair fits show β[favoured] > 0 > β[other] at every step of
  the window, and the median share of such steps;
* the step-to-step correlation of ΔP within class, the pooled driver β's null variance under trajectory
  shuffles as a ratio to the per-step sum (closed form, when the code has it);
* the seconds of the claims with all their tests, and of one null draw, as ratios to the sweep.

On synthetic noise (``synthetic.serially_correlated_noise``: no link, serial dependence), ``--levels``
draws of each of two dependence shapes: the share of draws with at least one claim of a kind (under a
complete null that is the false discovery rate; target ≤ fdr_q = 0.05).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from i2x_plugin.method.claims import calibrated_claims, claim_counts, saliency_share
from i2x_plugin.method.config import I2XConfig
from i2x_plugin.method.ridge import standardize_delta_p
from i2x_plugin.method.significance import within_strata_permutations
from i2x_plugin.method.structure import StructuredExplanation
from i2x_plugin.training.synthetic import serially_correlated_noise

RESULTS = Path(__file__).parent / "results" / "claims_null.json"
SHAPES = {  # name: serially_correlated_noise arguments
    "persistent": dict(rho_x=0.8, rho_y=0.8, compete=True),  # any two steps correlate by 0.8; ΔŶ competes
    "alternating": dict(rho_x=0.0, rho_y=0.9, difference_x=True, compete=True),  # ΔP −0.5 to neighbours, ΔŶ +0.9
}


def _counts(claims) -> dict[str, int]:
    return claim_counts(claims)


def run_table(run: Path, draws: int) -> dict:
    e = StructuredExplanation.load(run / "explanation")
    x = standardize_delta_p(np.diff(e.intensities, axis=0).astype(np.float64))
    y = np.diff(e.confidences, axis=0).astype(np.float64)
    share = saliency_share(e.intensities[-1], e.presence, e.labels, e.num_classes)
    args = (e.labels, e.group_labels, e.confusion[-1], share, e.config)
    start = time.perf_counter()
    claims = calibrated_claims(x, y, *args)
    claims_s = time.perf_counter() - start
    rng = np.random.default_rng(12345)
    null = {"trajectory": [], "per_step": []}
    start = time.perf_counter()
    for draw in range(draws):
        perm = within_strata_permutations(e.labels, 1, rng)[0]
        null["trajectory"].append(_counts(calibrated_claims(x[:, perm], y, *args, seed=1000 + draw)))
    draw_s = (time.perf_counter() - start) / max(draws, 1)
    for draw in range(draws):
        per_step = np.stack([x[t, within_strata_permutations(e.labels, 1, rng)[0]] for t in range(len(x))])
        null["per_step"].append(_counts(calibrated_claims(per_step, y, *args, seed=2000 + draw)))
    holds = []
    for s in claims.separators:
        holds.append(len(s.steps) / (len(x) - s.first_step))
    summary = json.loads((run / "summary.json").read_text())
    sweep_s = summary["stage_seconds"]["explain.sweep"]
    return {
        "claims": _counts(claims),
        "null_draws": draws,
        "null_trajectory": {k: {"mean": float(np.mean([d[k] for d in null["trajectory"]])),
                                "max": int(max(d[k] for d in null["trajectory"]))} for k in null["trajectory"][0]},
        "null_per_step": {k: {"mean": float(np.mean([d[k] for d in null["per_step"]])),
                              "max": int(max(d[k] for d in null["per_step"]))} for k in null["per_step"][0]},
        "separators_holding_at_every_step": {"share": float(np.mean(np.array(holds) == 1.0)) if holds else None,
                                             "median_share_of_steps": float(np.median(holds)) if holds else None},
        "separators_if_tested_at_every_step": _every_step_separators(claims.z_pair, e.config),
        "step_correlation_of_delta_p": _step_correlation(x, e.labels),
        "driver_null_variance_ratio": _driver_variance_ratio(x, y, e.labels, e.config),
        "seconds_vs_sweep": {"claims_and_all_tests": round(claims_s / sweep_s, 4),
                             "one_null_draw": round(draw_s / sweep_s, 4),
                             "config_null_draws": e.config.null_draws,
                             "claims_plus_config_null_draws":
                                 round((claims_s + e.config.null_draws * draw_s) / sweep_s, 4)},
        "sweep_seconds": sweep_s,
    }


def _every_step_separators(z_pair: np.ndarray, config) -> int:
    """Separators if each were tested at every step of its window (intersection–union: the largest per-step
    p of both signs), on the last ``min_separator_steps`` steps at least, BH over all of them."""
    from scipy.stats import norm

    from i2x_plugin.method.significance import benjamini_hochberg

    z = z_pair.astype(np.float64)
    p = []
    for favours, other in ((0, 1), (1, 0)):
        per_step = np.maximum(norm.sf(z[..., favours]), norm.sf(-z[..., other]))  # (T, P, K)
        p.append(per_step[len(z) - config.min_separator_steps :].max(0))
    return int((benjamini_hochberg(np.stack(p)) <= config.fdr_q).sum())


def _step_correlation(x: np.ndarray, labels: np.ndarray) -> dict:
    """Correlation of ΔP between neighbouring steps, per (class, prototype, step): quartiles."""
    r = []
    for c in np.unique(labels):
        xc = x[:, labels == c]
        xc = xc - xc.mean(1, keepdims=True)
        num = (xc[:-1] * xc[1:]).sum(1)
        den = np.sqrt((xc[:-1] ** 2).sum(1) * (xc[1:] ** 2).sum(1))
        r.append((num / np.where(den > 0, den, np.nan)).ravel())
    r = np.concatenate(r)
    return {q: round(float(np.nanpercentile(r, p)), 3) for q, p in (("q25", 25), ("median", 50), ("q75", 75))}


def _driver_variance_ratio(x, y, labels, config) -> dict | None:
    from i2x_plugin.method.ridge import ridge_fit, step_class_statistics

    stats = step_class_statistics(x, y, labels, y.shape[2]).moveaxis(0, 1)
    columns = np.arange(y.shape[2])[:, None]
    try:
        trajectory = ridge_fit(stats, config.ridge_alpha, pool_axes=1, columns=columns, trajectory_axis=0)
    except TypeError:  # a version without the trajectory null
        return None
    steps = ridge_fit(stats, config.ridge_alpha, pool_axes=1, columns=columns)
    spread = steps.null_sd > 0
    ratio = (trajectory.null_sd[spread] / steps.null_sd[spread]) ** 2
    return {"median": round(float(np.median(ratio)), 3), "q95": round(float(np.percentile(ratio, 95)), 3),
            "max": round(float(ratio.max()), 3)}


def level_table(draws: int) -> dict:
    steps, per_class, k, classes = 8, 150, 16, 4
    config = I2XConfig(k=k, null_draws=0, confused_pairs=6)
    confusion = np.ones((classes, classes), int)
    out = {"steps": steps, "per_class": per_class, "k": k, "classes": classes, "draws": draws}
    for name, shape in SHAPES.items():
        any_claim, counts = {}, {}
        for draw in range(draws):
            x, y, labels = serially_correlated_noise(steps, per_class, k, classes, seed=draw, **shape)
            groups = np.zeros((steps, len(labels)), int)
            share = np.full((classes, k), 1 / k)
            found = _counts(calibrated_claims(x, y, labels, groups, confusion, share, config, seed=draw))
            for kind, count in found.items():
                any_claim.setdefault(kind, []).append(count > 0)
                counts.setdefault(kind, []).append(count)
        out[name] = {kind: {"share_of_draws_with_a_claim": float(np.mean(v)),
                            "mean_claims": float(np.mean(counts[kind]))} for kind, v in any_claim.items()}
    out["which_null_sees_it"] = _null_sees_it(steps, per_class, k, classes, config, confusion)
    return out


def _null_sees_it(steps, per_class, k, classes, config, confusion, draws: int = 5) -> dict:
    """The false claims the procedure makes on shuffles of one persistent-noise draw, shuffled per step
    (the old ``null_claim_counts``) or by whole trajectories: only the second keeps the serial dependence
    a procedure may mis-model, so only it can show that procedure's false claims."""
    x, y, labels = serially_correlated_noise(steps, per_class, k, classes, seed=0, **SHAPES["persistent"])
    groups, share = np.zeros((steps, len(labels)), int), np.full((classes, k), 1 / k)
    rng = np.random.default_rng(7)
    out = {}
    for mode in ("per_step", "trajectory"):
        total = {}
        for draw in range(draws):
            if mode == "trajectory":
                shuffled = x[:, within_strata_permutations(labels, 1, rng)[0]]
            else:
                shuffled = np.stack([x[t, within_strata_permutations(labels, 1, rng)[0]] for t in range(steps)])
            for kind, count in _counts(calibrated_claims(shuffled, y, labels, groups, confusion, share, config,
                                                         seed=draw)).items():
                total[kind] = total.get(kind, 0) + count
        out[mode] = {kind: v / draws for kind, v in total.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a run directory (explanation/, summary.json)")
    parser.add_argument("--label", required=True, help="key of this measurement in the results, e.g. before")
    parser.add_argument("--draws", type=int, default=10, help="null shuffles of the run")
    parser.add_argument("--levels", type=int, default=20, help="noise draws per dependence shape")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results[args.label] = {"run": run_table(args.run, args.draws), "serial_noise": level_table(args.levels)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results[args.label], indent=1))


if __name__ == "__main__":
    main()
