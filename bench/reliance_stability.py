"""Issue 19 with issue 21: do two fits that differ only in the prototype seed claim the same reliance edges?

The default prototype fit (``pca_max_rows``, Lloyd K-Means) of one finished default run's final features is
repeated with the seeds of bench/stability.py's pairs; for each fit the final model's reliance relation is
measured (checks.reliance with the run's own seed, so the held-out halves and random cells are the same; without
the formation dates, which do not decide which edges are claimed) and the
claimed edges ``(prototype, class)`` of the two seeds of a pair are compared, prototypes matched by their
cells. Reported: mean Jaccard of the claimed edges and of each class's top-5 claimed edges by rank.

    .venv/bin/python bench/reliance_stability.py --run-dir i2x-out/RUN

Writes bench/results/reliance_stability.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from i2x_plugin import I2XConfig
from i2x_plugin.checks.reliance import reliance
from i2x_plugin.checks.stability import _jaccard, _renamed
from i2x_plugin.method.progress import prototype_intensity
from i2x_plugin.method.prototypes import extract_features, fit_prototypes, match_prototypes
from i2x_plugin.runs.saved_run import load_saved_run
from stability import SEED_PAIRS, TARGETS  # bench/stability.py

RESULTS = Path(__file__).resolve().parent / "results" / "reliance_stability.json"


def claimed_edges(run, fitted) -> tuple[set, set]:
    """The claimed reliance edges of the run's final model with the prototypes ``fitted``, and the top 5 of each
    class among them (by rank, chosen on the selection half)."""
    e = run.explanation
    final = prototype_intensity(torch.from_numpy(e.saliency_maps[-1].astype(np.float32)),
                                torch.from_numpy(fitted.assignments.astype(np.int64)), e.k).numpy()
    as_fit = dataclasses.replace(e, config=e.config.model_copy(update={"reliance_formation": False}),
                                 assignments=fitted.assignments, presence=fitted.presence(), intensities=final[None])
    edges = reliance(as_fit, run.model, run.probe.images).significant
    top = {(x.prototype, x.cls) for x in edges
           if sum(y.cls == x.cls and y.rank < x.rank for y in edges) < 5}
    return {(x.prototype, x.cls) for x in edges}, top


def _swap(keys: set) -> set:
    """(prototype, class) keys as (class, prototype), and back: ``_renamed`` renames the last entry."""
    return {key[::-1] for key in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args()
    run = load_saved_run(args.run_dir)
    e = run.explanation
    cfg = e.config.model_copy(update={"pca_max_rows": I2XConfig().pca_max_rows})  # today's default fit
    features = extract_features(run.model, e.layer, run.probe.images, cfg.batch_size)
    fits, edges = {}, {}
    for seed in sorted({s for pair in SEED_PAIRS for s in pair}):
        fits[seed] = fit_prototypes(features, e.k, cfg.pca_components, cfg.pca_max_rows, cfg.minibatch_kmeans_rows,
                                    seed, cfg.kmeans_inits)
        edges[seed] = claimed_edges(run, fits[seed])
        print(seed, len(edges[seed][0]), "claimed edges", flush=True)
    pairs = []
    for a, b in SEED_PAIRS:
        mapping, cells = match_prototypes(fits[a].assignments, fits[b].assignments, e.k)
        renamed = [_swap(_renamed(_swap(keys), mapping)) for keys in edges[b]]
        pairs.append({"pair": [a, b], "cells": round(cells, 3), "claimed": round(_jaccard(edges[a][0], renamed[0]), 3),
                      "top5": round(_jaccard(edges[a][1], renamed[1]), 3)})
    result = {"benchmark": __doc__.splitlines()[0], "run": str(args.run_dir), "pca_max_rows": cfg.pca_max_rows,
              "target": TARGETS["drivers"], "claimed_edges_per_seed": {s: len(v[0]) for s, v in edges.items()},
              "jaccard_mean": {kind: round(float(np.mean([p[kind] for p in pairs])), 3) for kind in ("claimed", "top5")},
              "pairs": pairs}
    RESULTS.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["jaccard_mean"]))


if __name__ == "__main__":
    main()
