"""Issue 21, part 3: how well does a first-order estimate match exact deletion?

For a finished default run (its checkpoints, probe set and reliance edges), at every checkpoint:
- exact: the edges' deletion effects as the run measured them (``effect_by_checkpoint``: the mean drop of the
  class's softmax confidence on its held-out samples when the prototype's cells are zeroed at the explained
  layer; the final effect of every edge);
- estimate: activation × gradient of that confidence at the layer, summed over the prototype's cells and the
  channels (the first-order Taylor drop of zeroing those cells), averaged over the same held-out samples. It
  needs one backward pass per checkpoint instead of one head pass per prototype and random draw. Its seconds
  are set against the run's exact dating of the same edges (``checks.reliance.formation``), timed in this
  process at the same time.
Compared: Pearson and Spearman correlation of the edges' effects (final checkpoint, all edges; and every
checkpoint of the dated edges), the overlap of each class's top 5 by effect, and the formation step the rule
"from here on at least half the final effect" gives on the estimate against the run's (which also asks p).

    .venv/bin/python bench/reliance_estimate.py --run-dir i2x-out/RUN   # a default ``i2x run``

Writes bench/results/reliance_estimate.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

from i2x_plugin.checks.reliance import HALF, formation, shuffled_cells, split_class
from i2x_plugin.adapters import resolve_layer
from i2x_plugin.runs.saved_run import load_saved_run
from i2x_plugin.training.checkpoints import default_load_func

RESULTS = Path(__file__).resolve().parent / "results" / "reliance_estimate.json"


def first_order_drops(model, layer, images, labels, assignments, k: int, batch_size: int) -> np.ndarray:
    """``(N, K)``: per sample, the first-order drop of its label's softmax confidence when prototype k's cells are
    zeroed at ``layer`` (Σ over those cells and the channels of activation × gradient)."""
    module, _ = resolve_layer(model, layer)
    captured = []
    handle = module.register_forward_hook(lambda _m, _i, out: captured.append(out))
    out = []
    try:
        for start in range(0, len(images), batch_size):
            captured.clear()
            x = images[start : start + batch_size]
            y = torch.as_tensor(labels[start : start + batch_size])
            confidence = torch.softmax(model(x), 1).gather(1, y[:, None]).sum()
            activation = captured[0]
            (gradient,) = torch.autograd.grad(confidence, activation)
            per_cell = (activation * gradient).sum(1).detach().numpy()  # (b, h, w)
            cells = assignments[start : start + batch_size].reshape(len(x), -1)
            drops = np.zeros((len(x), k))
            np.add.at(drops, (np.repeat(np.arange(len(x)), cells.shape[1]), cells.ravel()), per_cell.reshape(-1))
            out.append(drops)
    finally:
        handle.remove()
    return np.concatenate(out)


def dated_edges(result):
    return [x for x in result.edges if x.effect_by_checkpoint]


def held_halves(halves: dict) -> dict:
    return {c: h for c, h in halves.items() if not isinstance(h, str)}


def formed(series: np.ndarray) -> int | None:
    """The first checkpoint from which the effect stays at or above half its final value (the effect half of the
    run's rule; the run also asks p ≤ fdr_q / T)."""
    if series[-1] <= 0:
        return None
    failing = np.flatnonzero(series < HALF * series[-1])
    return int(failing[-1] + 1) if len(failing) else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args()
    run = load_saved_run(args.run_dir)
    e, cfg, model = run.explanation, run.explanation.config, run.model
    r = e.reliance
    labels = np.asarray(e.labels)
    halves = {c: split_class(labels, c, cfg.reliance_held_out, 2 * cfg.faithfulness_samples, cfg.min_scope_samples,
                             cfg.seed) for c in range(e.num_classes)}
    held = {c: h[1] for c, h in held_halves(halves).items()}
    rows = np.sort(np.concatenate(list(held.values())))
    images, assignments = run.probe.images[rows], np.asarray(e.assignments)[rows].astype(np.int64)
    position = {row: i for i, row in enumerate(rows)}
    threads = torch.get_num_threads()
    estimates, start = [], time.perf_counter()
    for info in e.checkpoints:
        default_load_func(model, info.path)
        model.eval()
        estimates.append(first_order_drops(model, e.layer, images, labels[rows], assignments, e.k, cfg.batch_size))
    seconds = time.perf_counter() - start
    default_load_func(model, e.checkpoints[-1].path)
    start = time.perf_counter()  # exact dating of the same edges, the run's code, in this process at this time
    torch.set_num_threads(1)
    formation(e, model, run.probe.images, dated_edges(r), held_halves(halves),
              shuffled_cells(np.asarray(e.assignments), cfg.reliance_random_draws, cfg.seed),
              r.formation_alpha, cfg.deletion, None, default_load_func)
    torch.set_num_threads(threads)
    exact_seconds = time.perf_counter() - start

    def estimate(t: int, k: int, c: int) -> float:
        return float(estimates[t][[position[i] for i in held[c]], k].mean())

    final = [(x.effect, estimate(-1, x.prototype, x.cls)) for x in r.edges]
    exact, approx = np.array(final).T
    dated = dated_edges(r)
    series = [(np.array(x.effect_by_checkpoint), np.array([estimate(t, x.prototype, x.cls)
                                                             for t in range(len(e.checkpoints))])) for x in dated]
    every = np.array([(a, b) for s, t in series for a, b in zip(s, t)])
    top = []
    for c in held:
        mine = [x for x in r.edges if x.cls == c]
        by_exact = {x.prototype for x in sorted(mine, key=lambda x: -x.effect)[:5]}
        by_estimate = {x.prototype for x in sorted(mine, key=lambda x: -estimate(-1, x.prototype, x.cls))[:5]}
        top.append(len(by_exact & by_estimate) / 5)
    dates = [(x.formed_at, formed(t), formed(s)) for x, (s, t) in zip(dated, series)]
    same_date = [a == b for a, b, _ in dates if a is not None]
    result = {
        "run": str(args.run_dir), "edges": len(r.edges), "dated_edges": len(dated), "checkpoints": len(e.checkpoints),
        "final_checkpoint": {"pearson": round(float(pearsonr(exact, approx).statistic), 3),
                             "spearman": round(float(spearmanr(exact, approx).statistic), 3),
                             "mean_exact": round(float(exact.mean()), 4), "mean_estimate": round(float(approx.mean()), 4)},
        "every_checkpoint_dated_edges": {"pearson": round(float(pearsonr(*every.T).statistic), 3),
                                         "spearman": round(float(spearmanr(*every.T).statistic), 3)},
        "top5_overlap_per_class_mean": round(float(np.mean(top)), 3),
        "formation_step_same_as_run": f"{sum(same_date)} of {len(same_date)}",
        "formation_step_same_as_exact_effect_rule": f"{sum(b == c for _, b, c in dates)} of {len(dates)}",
        "estimate_seconds_all_checkpoints": round(seconds, 2), "torch_threads": threads,
        "exact_formation_seconds_same_process": round(exact_seconds, 2),
        "estimate_over_exact_formation": round(seconds / exact_seconds, 2),
    }
    RESULTS.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
