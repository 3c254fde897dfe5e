"""What I2X finds of a planted shortcut (issue 23), scored against the marker's known cells.

Reads finished ``i2x run --shortcut ...`` output directories (one per seed) and writes
``bench/results/shortcut.json`` and the side-by-side table ``bench/results/shortcut.md``. Per run:

* **Which layer can show it.** On the held-out b-images with the marker (``b_only``), how many are taken for a, and
  how many stay so when the marker's own cells (and, at 7×7, its 3×3 neighbourhood) are zeroed at each candidate
  layer of the final model.
* **The marker prototype**: the prototype with the largest IoU with the marker's cells at the explained layer;
  its share of cells on marked images, IoU, and whether it is a driver of a, a reliance edge (RELIES_ON) of a
  with its formation checkpoint, uncertain for (a, b), and first in ``sample_evidence`` (the per-sample deletions)
  of the marked b-test-images taken for a.
* **Ranks, side by side**: its rank for class a under I2X drivers (the pooled fit's β among the class's tested
  prototypes, and among the reported drivers), reliance (held-out effect), and plain final saliency (the mass of
  the final checkpoint's saliency on it), and the first checkpoint at which each ranked it in the top 5 (drivers:
  the step's own class fit, by z; reliance: the drop of a's confidence when it is deleted at that checkpoint;
  saliency: that checkpoint's saliency mass).

Usage: ``python bench/shortcut.py RUN_DIR [RUN_DIR ...] [--layers block1 block2.2 block2 block3]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from i2x_plugin.checks.faithfulness import Deleter, static_prototypes
from i2x_plugin.checks.reliance import sample_reliance, split_class
from i2x_plugin.checks.shortcut import marker_overlap
from i2x_plugin.improve.curation import training_assignments
from i2x_plugin.runs.run_data import load_run_data
from i2x_plugin.runs.saved_run import load_saved_run, read_run_files
from i2x_plugin.training.checkpoints import default_load_func
from i2x_plugin.training.shortcut import held_out_versions, layer_mask, predictions

RESULTS = Path(__file__).resolve().parent / "results"
TOP = 5


def _layer_size(model, layer: str, image: torch.Tensor) -> tuple[int, int]:
    from i2x_plugin.adapters import resolve_layer

    module, _ = resolve_layer(model, layer)
    out = []
    handle = module.register_forward_hook(lambda _m, _i, o: out.append(o.shape[-2:]))
    with torch.no_grad():
        model(image[None])
    handle.remove()
    return tuple(int(v) for v in out[0])


def layer_deletions(model, images: torch.Tensor, labels: np.ndarray, spec, layers: list[str]) -> dict:
    """b→a confusions on the marked b-images, and what is left of them with the marker's cells zeroed per layer."""
    before = predictions(model, images) == spec.a
    out = {"b_images": int(len(images)), "taken_for_a": int(before.sum())}
    mask = spec.mask(*images.shape[-2:])
    for layer in layers:
        size = _layer_size(model, layer, images[0])
        cells = layer_mask(mask, size)
        variants = {"marker cells": cells}
        if size[0] <= 7:
            dilated = torch.nn.functional.max_pool2d(torch.as_tensor(cells, dtype=torch.float32)[None, None], 3, 1, 1)
            variants["marker cells + neighbours"] = dilated[0, 0].numpy() > 0
        for name, chosen in variants.items():
            assignments = np.broadcast_to(chosen.astype(np.int64), (len(images),) + size).copy()
            deleter = Deleter(model, layer, images, labels, assignments, "zero")
            after = deleter.logits(np.arange(len(images)), [1]).argmax(1).numpy() == spec.a
            out[f"{layer} ({size[0]}×{size[1]}), {name}"] = {
                "cells": int(chosen.sum()), "taken_for_a": int((after & before).sum()),
                "remaining": round(float((after & before).sum() / max(before.sum(), 1)), 3)}
    return out


def _rank(order: list[int], k: int) -> int | None:
    return order.index(k) + 1 if k in order else None


def first_top(rankings: list[list[int]], k: int, offset: int = 0) -> int | None:
    """The first index (plus ``offset``) whose ranking has ``k`` in its top 5."""
    return next((t + offset for t, order in enumerate(rankings) if k in order[:TOP]), None)


def reliance_by_checkpoint(e, model, images: torch.Tensor, cls: int, rows: np.ndarray, run_dir: Path) -> list[list[int]]:
    """Per checkpoint: the prototypes present in ``rows`` ranked by the drop of ``cls``'s confidence on deletion."""
    present = np.flatnonzero(e.presence[rows].sum(0) > 0)
    out = []
    for info in e.checkpoints:
        path = Path(info.path) if Path(info.path).is_file() else run_dir / "checkpoints" / Path(info.path).name
        default_load_func(model, path)
        model.eval()
        deleter = Deleter(model, e.layer, images, e.labels, e.assignments, e.config.deletion)
        base = torch.softmax(deleter.logits(rows), 1)[:, cls]
        drops = {int(k): float((base - torch.softmax(deleter.logits(rows, [int(k)]), 1)[:, cls]).mean())
                 for k in present}
        out.append(sorted(drops, key=lambda k: (-drops[k], k)))
    return out


def score_run(run_dir: Path, layers: list[str]) -> dict:
    """Everything the module docstring lists, for one finished shortcut run."""
    run, files = load_saved_run(run_dir), read_run_files(run_dir)
    e, config, model = run.explanation, run.config, run.model
    spec, cfg = config.shortcut, e.config
    a, b = spec.a, spec.b
    labels = np.asarray(e.labels)
    marked = files.split["probe_marked"].astype(bool)
    cells = layer_mask(spec.mask(*run.probe.images.shape[-2:]), tuple(e.map_size))
    overlap = marker_overlap(e.assignments, marked, cells, e.k)
    k = overlap.best
    rows_a = np.flatnonzero(labels == a)

    drivers_a = [d for d in sorted(e.drivers, key=lambda d: d.rank) if d.cls == a]
    tested = [int(j) for j in np.argsort(-np.nan_to_num(e.beta_driver[a], nan=-np.inf), kind="stable")]
    driver = next((d for d in drivers_a if d.prototype == k), None)
    edges_a = sorted((x for x in e.reliance.edges if x.cls == a), key=lambda x: -x.effect) if e.reliance else []
    edge = next((x for x in edges_a if x.prototype == k), None)
    claimed = edge is not None and edge.q <= e.reliance.fdr_q and edge.effect - edge.random_effect >= e.reliance.min_effect
    uncertain = [u for u in e.uncertain if {u.a, u.b} == {a, b} and u.prototype == k]
    static_final = static_prototypes(e.intensities[-1], e.presence, rows_a, e.k)

    # Ranks per checkpoint (the step s of the fits ends at checkpoint s + 1).
    saliency_t = [static_prototypes(e.intensities[t], e.presence, rows_a, e.k) for t in range(len(e.checkpoints))]
    driver_t = [[int(j) for j in np.argsort(-np.nan_to_num(e.z_class[s, a], nan=-np.inf), kind="stable")]
                for s in range(len(e.checkpoints) - 1)]
    split = split_class(labels, a, cfg.reliance_held_out, 2 * cfg.faithfulness_samples, cfg.min_scope_samples, cfg.seed)
    reliance_t = reliance_by_checkpoint(e, model, run.probe.images, a, split[1], run_dir)

    # sample_evidence on the held-out b-images with the marker that the final model takes for a.
    test = load_run_data(config).test
    b_only = held_out_versions(test, spec)["b_only"]
    is_b = test.labels.numpy() == b
    images_b = b_only.data.images[is_b]
    taken = predictions(model, images_b) == a
    evidence = {"b_images": int(is_b.sum()), "taken_for_a": int(taken.sum())}
    if taken.any():
        chosen = images_b[taken]
        assignments = training_assignments(e, model, chosen)
        presence = np.stack([(assignments == j).sum((1, 2)) for j in range(e.k)], 1)
        deleter = Deleter(model, e.layer, chosen, np.full(len(chosen), b), assignments, cfg.deletion)
        per_sample = sample_reliance(SimpleNamespace(labels=np.full(len(chosen), b), k=e.k, presence=presence),
                                     deleter)
        firsts = [s.prototypes[0] if s.prototypes else -1 for s in per_sample]
        values, counts = np.unique(firsts, return_counts=True)
        evidence.update(holding_marker_prototype=int((presence[:, k] > 0).sum()),
                        named_first=round(float(np.mean(np.asarray(firsts) == k)), 3),
                        most_often_first={int(v): int(c) for v, c in zip(values, counts)})
    return {
        "run": str(run_dir), "seed": config.seed, "layer": e.layer, "map_size": list(e.map_size), "k": e.k,
        "shortcut": spec.model_dump(), "marker_cells": int(cells.sum()),
        "learnt": {"b_only_b_as_a": round(float(taken.mean()), 3),
                   "probe_accuracy_final": round(e.checkpoints[-1].accuracy, 4)},
        "layer_deletions": layer_deletions(model, images_b, np.full(len(images_b), b), spec, layers),
        "marker_prototype": {
            "prototype": k, "iou": round(float(overlap.iou[k]), 3), "on_marked": round(float(overlap.on_marked[k]), 3),
            "covers": round(float(overlap.covers[k]), 3),
            "top_iou": [[int(j), round(float(overlap.iou[j]), 3)] for j in np.argsort(-overlap.iou)[:3]],
            "driver_of_a": driver is not None, "driver_q": None if driver is None else driver.q,
            "driver_first_step": None if driver is None else driver.first_step,
            "reliance_claimed": bool(claimed), "reliance_q": None if edge is None else edge.q,
            "reliance_effect": None if edge is None else round(edge.effect, 4),
            "reliance_random_effect": None if edge is None else round(edge.random_effect, 4),
            "reliance_formed_at": None if edge is None else edge.formed_at,
            "uncertain_for_pair": bool(uncertain),
            "pair_confusions_probe": int(e.confusion[-1][a, b] + e.confusion[-1][b, a]),
        },
        "ranks": {
            "drivers_reported": _rank([d.prototype for d in drivers_a], k),
            "drivers_beta": _rank(tested, k),
            "reliance": _rank([x.prototype for x in edges_a], k),
            "saliency_final": _rank(static_final, k),
        },
        "first_top5_checkpoint": {
            "drivers": first_top(driver_t, k, offset=1), "reliance": first_top(reliance_t, k),
            "saliency": first_top(saliency_t, k),
        },
        "sample_evidence": evidence,
    }


def table(runs: list[dict]) -> str:
    """The side-by-side Markdown table of the runs."""
    lines = ["| seed | layer | marker prototype | IoU | on marked | driver of a | reliance edge (formed at) | "
             "uncertain (a, b) | sample_evidence first | rank: drivers β / reported | rank: reliance | "
             "rank: saliency | first top-5 ckpt: drivers / reliance / saliency | marked b→a kept after deleting the "
             "marker's cells |",
             "|" + "---|" * 14]
    for r in runs:
        m, rk, ft, ev = r["marker_prototype"], r["ranks"], r["first_top5_checkpoint"], r["sample_evidence"]
        own = next((v for key, v in r["layer_deletions"].items() if key.startswith(r["layer"] + " (")
                    and key.endswith("marker cells")), None)
        lines.append(
            f"| {r['seed']} | {r['layer']} ({r['map_size'][0]}×{r['map_size'][1]}) | P{m['prototype']} | {m['iou']:.2f} | "
            f"{m['on_marked']:.2f} | {'yes' if m['driver_of_a'] else 'no'} | "
            f"{'yes' if m['reliance_claimed'] else 'no'} ({m['reliance_formed_at']}) | "
            f"{'yes' if m['uncertain_for_pair'] else 'no'} | {ev.get('named_first', 'n/a')} of {ev['taken_for_a']} | "
            f"{rk['drivers_beta']} / {rk['drivers_reported']} | {rk['reliance']} | {rk['saliency_final']} | "
            f"{ft['drivers']} / {ft['reliance']} / {ft['saliency']} | "
            f"{'n/a' if own is None else own['remaining']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--layers", nargs="+", default=["block1", "block2.2", "block2", "block3"])
    parser.add_argument("--out", type=Path, default=RESULTS / "shortcut")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    runs = [score_run(d, args.layers) for d in args.runs]
    args.out.with_suffix(".json").write_text(json.dumps({"runs": runs}, indent=1, default=str))
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
