"""Issue 19, part 3: do two runs that differ only in the prototype seed make the same claims?

Follows bench/stability_plan.md (committed before any result): one default run's checkpoints, probe set
and saliency maps; for each route and run seed, the prototypes are fitted again and the claims re-derived
(the stability test's code path); two seeds' claims are compared with prototypes matched by their cells.

    .venv/bin/python bench/stability.py --run-dir i2x-out/RUN     # a finished default ``i2x run``

Writes bench/results/stability.json and stability.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from i2x_plugin.method.prototypes import Prototypes, extract_features, fit_prototypes, match_prototypes, nearest_prototype
from i2x_plugin.runs.saved_run import load_saved_run
from i2x_plugin.checks.stability import _IDENTITY, OVERLAPS, _jaccard, _refit_claims, _renamed, claim_keys, stability_test

RESULTS = Path(__file__).resolve().parent / "results"
MINIBATCH = {"minibatch_kmeans_rows": 50_000, "kmeans_inits": 3}  # i2x-plugin 0.1's prototype fit
ROUTES = {  # name -> I2XConfig fields, consensus members (route C)
    "A. MiniBatchKMeans, 3 inits (0.1)": (MINIBATCH, 1),
    "B. thorough (Lloyd K-Means, 10 inits)": ({"minibatch_kmeans_rows": 10**9, "kmeans_inits": 10}, 1),
    "B'. Lloyd K-Means, 3 inits (added after the plan: B's cost)": ({"minibatch_kmeans_rows": 10**9,
                                                                     "kmeans_inits": 3}, 1),
    "C. consensus of 5 MiniBatch fits": (MINIBATCH, 5),
    "E. Lloyd K-Means, 3 inits, on 50,000 cells (plan 2)": ({"minibatch_kmeans_rows": 10**9, "kmeans_inits": 3,
                                                            "pca_max_rows": 50_000}, 1),
    "E'. Lloyd K-Means, 3 inits, on 100,000 cells (plan 2)": ({"minibatch_kmeans_rows": 10**9, "kmeans_inits": 3,
                                                              "pca_max_rows": 100_000}, 1),
}
SEED_PAIRS = ((0, 1), (2, 3), (4, 5), (6, 7))
TARGETS = {"drivers": 0.7, "separators": 0.5, "uncertain": 0.5}


def consensus_fit(features, config, seed: int, members: int) -> Prototypes:
    """Route C: ``members`` fits (independent seeds) matched to the first by their cells; each cell takes its
    majority prototype and each centre is the mean of its cells."""
    fits = [fit_prototypes(features, config.k, config.pca_components, config.pca_max_rows,
                           config.minibatch_kmeans_rows, int(np.random.SeedSequence([seed, m]).generate_state(1)[0])
                           if m else seed, config.kmeans_inits) for m in range(members)]
    first = fits[0].assignments.reshape(-1)
    votes = np.zeros((len(first), config.k), dtype=np.int32)
    for fitted in fits:
        mapping, _ = match_prototypes(first, fitted.assignments, config.k)
        votes[np.arange(len(first)), mapping[fitted.assignments.reshape(-1).astype(np.int64)]] += 1
    majority = votes.argmax(1)
    reduced = fits[0].pca.transform(features.reshape(-1, features.shape[-1]))
    sums = np.zeros_like(fits[0].centers)
    np.add.at(sums, majority, reduced)
    counts = np.bincount(majority, minlength=config.k)[:, None]
    centers = np.where(counts > 0, sums / np.maximum(counts, 1), fits[0].centers)
    return Prototypes(fits[0].pca, centers, nearest_prototype(fits[0].pca, centers, features))


def fit_and_claim(explanation, features, config, seed: int, members: int = 1):
    """The run's sweep re-read with prototypes of ``config`` and ``seed``: (prototypes, claims, fit seconds)."""
    start = time.perf_counter()
    fitted = consensus_fit(features, config, seed, members) if members > 1 else fit_prototypes(
        features, explanation.k, config.pca_components, config.pca_max_rows, config.minibatch_kmeans_rows, seed,
        config.kmeans_inits)
    seconds = time.perf_counter() - start
    rows = np.arange(len(explanation.labels))
    claims, _ = _refit_claims(explanation, rows, fitted.assignments, fitted.presence())
    return fitted, claims, seconds


def selected(explanation, features, config, fitted, claims, seed: int, share: float):
    """Stability selection: the claims that recur in ≥ ``share`` of the stability test's re-fits of this fit."""
    as_run = dataclasses.replace(explanation, config=config.model_copy(update={"seed": seed}),
                                 assignments=fitted.assignments, presence=fitted.presence(), drivers=claims.drivers,
                                 separators=claims.separators, uncertain=claims.uncertain)
    start = time.perf_counter()
    _, recurrence = stability_test(as_run, features, config.stability_kmeans_seeds, config.stability_bootstraps, seed)
    seconds = time.perf_counter() - start
    keep = {kind: {key for key, r in recurrence[kind].items() if r >= share} for kind in recurrence}
    kept = {kind: [c for c in getattr(claims, kind) if _IDENTITY[kind](c) in keep[kind]] for kind in keep}
    return dataclasses.replace(claims, **kept), seconds


def agreement(fit_a, claims_a, fit_b, claims_b, k: int, top: int) -> dict[str, float]:
    mapping, cells = match_prototypes(fit_a.assignments, fit_b.assignments, k)
    out = {kind: _jaccard(claim_keys(claims_a, kind, top), _renamed(claim_keys(claims_b, kind, top), mapping))
           for kind in OVERLAPS}
    return {**out, "cells": cells}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--share", type=float, default=0.5, help="stability selection's recurrence share (route D)")
    parser.add_argument("--routes", default="A,B,B',C", help="comma-separated routes to (re)measure; the others "
                        "are kept from the results file")
    parser.add_argument("--select-on", default="B'", help="comma-separated routes stability selection (D) is "
                        "applied to")
    args = parser.parse_args()
    run = load_saved_run(args.run_dir)
    e = run.explanation
    features = extract_features(run.model, e.layer, run.probe.images, e.config.batch_size)
    summary = json.loads((args.run_dir / "summary.json").read_text())
    sweep_seconds = summary["stage_seconds"]["explain.sweep"]
    path = RESULTS / "stability.json"
    results = json.loads(path.read_text())["routes"] if path.is_file() else {}
    seeds = sorted({s for p in SEED_PAIRS for s in p})
    wanted = [name for name in ROUTES if name.split(".")[0] in args.routes.split(",")]
    select_on = args.select_on.split(",")
    for name in wanted + [n for n in ROUTES if n.split(".")[0] in select_on and n not in wanted]:
        fields, members = ROUTES[name]
        config = e.config.model_copy(update=fields)
        fits = {seed: fit_and_claim(e, features, config, seed, members) for seed in seeds}
        if name in wanted:
            results[name] = _summary(_agreements(fits, e), fits, lambda s: fits[s][2], sweep_seconds, args.run_dir)
            print(name, json.dumps(results[name]["jaccard_mean"]), "fit s", results[name]["fit_seconds_mean"],
                  flush=True)
        if name.split(".")[0] in select_on:
            chosen = {}
            for seed, (fitted, claims, seconds) in fits.items():
                kept, selection_seconds = selected(e, features, config, fitted, claims, seed, args.share)
                chosen[seed] = (fitted, kept, seconds + selection_seconds)
            label = f"D. stability selection (recurrence ≥ {args.share} of 4 re-fits) on {name.split('.')[0]}"
            results[label] = _summary(_agreements(chosen, e), chosen, lambda s: chosen[s][2], sweep_seconds,
                                      args.run_dir)
            print(label, json.dumps(results[label]["jaccard_mean"]), flush=True)
    out = {"benchmark": "two runs that differ only in the prototype seed (bench/stability_plan.md)",
           "run": str(args.run_dir), "sweep_seconds": sweep_seconds, "seed_pairs": SEED_PAIRS, "targets": TARGETS,
           "routes": results}
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    (RESULTS / "stability.md").write_text(_markdown(out))


def _agreements(fits, e) -> list[dict[str, float]]:
    return [agreement(fits[a][0], fits[a][1], fits[b][0], fits[b][1], e.k, e.config.top_prototypes)
            for a, b in SEED_PAIRS]


def _summary(pairs, fits, seconds_of, sweep_seconds, run_dir: Path) -> dict:
    seconds = float(np.mean([seconds_of(s) for s in fits]))
    counts = {s: {kind: len(getattr(fits[s][1], kind)) for kind in ("drivers", "separators", "uncertain")}
              for s in fits}
    return {"run": str(run_dir), "sweep_seconds": sweep_seconds, "jaccard_per_pair": pairs,
            "jaccard_mean": {kind: round(float(np.mean([p[kind] for p in pairs])), 3) for kind in pairs[0]},
            "claims_per_seed": counts, "fit_seconds_mean": round(seconds, 2),
            "fit_over_sweep": round(seconds / sweep_seconds, 3) if sweep_seconds else None}


def _markdown(out: dict) -> str:
    lines = ["# Two runs that differ only in the prototype seed (issue 19)", "",
             f"Plan: bench/stability_plan.md. Seed pairs {out['seed_pairs']}; mean Jaccard over the pairs "
             f"(targets: {out['targets']}). Cost: prototype fit (+ re-fits for D) seconds over the base run's sweep "
             f"({out['sweep_seconds']} s).", "",
             "| route | drivers | top drivers | separators | uncertain | cells agree | claims (d/s/u, seed 0) | "
             "fit ÷ sweep |", "|---|---|---|---|---|---|---|---|"]
    for name, r in out["routes"].items():
        j, c = r["jaccard_mean"], r["claims_per_seed"][0] if 0 in r["claims_per_seed"] else r["claims_per_seed"]["0"]
        lines.append(f"| {name} | {j['drivers']} | {j['top drivers']} | {j['separators']} | {j['uncertain']} | "
                     f"{j['cells']} | {c['drivers']}/{c['separators']}/{c['uncertain']} | {r['fit_over_sweep']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
