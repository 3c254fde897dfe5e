"""Planted-shapes ground truth: precision and recall of each claim kind over seeds and both adapters.

    .venv/bin/python bench/planted.py [--seeds 5] [--alphas 0.1]   ->  bench/results/planted.json

Four texture classes; classes 0 and 1 share the bright ``solid`` block (synthetic.py). The expected
labels come from the masks the data was drawn with (``synthetic.score_planted_claims``).

Uncertain prototypes are only looked for in pairs still confused at the last explained checkpoint, and the
trained models end with 0 ↔ 1 fully separated; so uncertainty is also scored on the run's checkpoints up to
the last one at which 0 ↔ 1 is still confused (1 to 25 % of the pair's samples), chosen from the confusion
counts alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from i2x_plugin import I2X, I2XConfig  # noqa: E402
from i2x_plugin.training.synthetic import make_planted_shapes, score_planted_claims, train_planted_model  # noqa: E402

KINDS = ("drivers", "separators", "uncertain")


def _still_confused(confusion: np.ndarray, pair_samples: int) -> int | None:
    """The last checkpoint at which 0 ↔ 1 confusions are between 1 and 25 % of the pair's samples."""
    series = confusion[:, 0, 1] + confusion[:, 1, 0]
    hits = np.flatnonzero((series >= 1) & (series <= 0.25 * pair_samples))
    return int(hits[-1]) if len(hits) and hits[-1] >= 3 else None


def run(seeds: list[int], alphas: list[float], adapters: list[str]) -> dict:
    rows = []
    for seed in seeds:
        shapes = make_planted_shapes(n_per_class=200, size=32, noise=0.05, seed=seed,
                                     brightness={"hstripes": 0.6, "vstripes": 0.6})
        with tempfile.TemporaryDirectory() as tmp:
            model, recorder = train_planted_model(shapes, tmp, seed=seed)
            for adapter in adapters:
                for alpha in alphas:
                    config = I2XConfig(k=16, seed=seed, ridge_alpha=alpha, null_draws=0, faithfulness=False)
                    start = time.perf_counter()
                    i2x = I2X(model, "block3", adapter=adapter, config=config)
                    e = i2x.explain(recorder.directory, shapes.data)
                    score = score_planted_claims(shapes, e)
                    row = {"seed": seed, "adapter": adapter, "ridge_alpha": alpha,
                           "accuracy": e.checkpoints[-1].accuracy, **{kind: score[kind] for kind in KINDS}}
                    end = _still_confused(e.confusion, 400)
                    if end is not None:
                        prefix = i2x.explain([c.path for c in e.checkpoints[: end + 1]], shapes.data)
                        row["uncertain_while_confused"] = {"checkpoint": end, **score_planted_claims(shapes, prefix)[
                            "uncertain"]}
                    row["seconds"] = time.perf_counter() - start
                    rows.append(row)
                    print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for alpha in alphas:
        mine = [r for r in rows if r["ridge_alpha"] == alpha]
        for r in mine:
            r.setdefault("uncertain_while_confused", {"checkpoint": None, "claims": 0, "right": 0, "wrong": 0,
                                                      "undecided": 0, "precision": float("nan"),
                                                      "recall": float("nan")})
        summary[str(alpha)] = {kind: {
            **{n: int(sum(r[kind][n] for r in mine)) for n in ("claims", "right", "wrong", "undecided")},
            "precision": _share(sum(r[kind]["right"] for r in mine),
                                sum(r[kind]["right"] + r[kind]["wrong"] for r in mine)),
            "recall_mean": float(np.nanmean([r[kind]["recall"] for r in mine])),
            "runs_without_claims": int(sum(r[kind]["claims"] == 0 for r in mine)),
        } for kind in KINDS + ("uncertain_while_confused",)}
    return {"seeds": seeds, "adapters": adapters, "runs": rows, "summary": summary}


def _share(right: int, decided: int) -> float | None:
    """Precision over the decided claims; None when no claim was decided (not 0: nothing was wrong)."""
    return right / decided if decided else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--alphas", type=float, nargs="+", default=[I2XConfig().ridge_alpha])
    parser.add_argument("--adapters", nargs="+", default=["captum", "gradcam"])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "planted.json")
    args = parser.parse_args()
    result = run(list(range(args.seeds)), args.alphas, args.adapters)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
