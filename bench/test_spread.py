"""The seed-to-seed spread of the figures the tests put thresholds on (issue 19: a threshold sits well outside it).

Each test that asserts a figure of a trained model and a fitted explanation (planted-shapes recovery, the
stability re-fits' overlap, the claims on a model trained on noise) is repeated here over ``--seeds`` seeds of
its data, weights and prototypes, and the distribution is written to bench/results/test_spread.json; the
tests' docstrings quote it.

    .venv/bin/python bench/test_spread.py --seeds 10
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from i2x_plugin import I2X, I2XConfig
from i2x_plugin.checks import run_stability
from i2x_plugin.training.data import ImageDataset
from i2x_plugin.training.models import SmallCNN
from i2x_plugin.training.synthetic import make_planted_shapes, score_planted_claims, train_planted_model
from i2x_plugin.training.loop import seeded, train_with_checkpoints

RESULTS = Path(__file__).resolve().parent / "results"


def planted_figures(seed: int) -> dict[str, float]:
    """tests/conftest.py's planted run with every seed set to ``seed``: planted recovery and stability."""
    shapes = make_planted_shapes(n_per_class=200, size=32, noise=0.05, seed=seed,
                                 brightness={"hstripes": 0.6, "vstripes": 0.6})
    with tempfile.TemporaryDirectory() as directory:
        model, recorder = train_planted_model(shapes, directory, seed=seed)
        e = I2X(model, "block3", config=I2XConfig(k=16, seed=seed)).explain(recorder.directory, shapes.data)
        score = score_planted_claims(shapes, e)["drivers"]
        tested = run_stability(e, model, shapes.data, kmeans_seeds=2, bootstraps=1).stability
    return {"drivers_precision": score["precision"], "drivers_recall": score["recall"],
            "stability_drivers_jaccard": tested.mean_jaccard["drivers"],
            "last_separated_is_planted_pair": float(e.learning_order[-1] == [0, 1])}


def noise_figures(seed: int) -> dict[str, float]:
    """tests/test_stability.py's model trained on pure noise with random labels, seeded ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    noise = ImageDataset("noise", torch.rand(600, 1, 16, 16, generator=generator),
                         torch.randint(0, 4, (600,), generator=generator), tuple("abcd"))
    with seeded(seed):
        model = SmallCNN(1, 4, pools=1)
    with tempfile.TemporaryDirectory() as directory:
        train_with_checkpoints(model, noise, directory, epochs=4, lr=3e-3, seed=seed)
        e = I2X(model, "block3", config=I2XConfig(k=12, faithfulness=False, null_draws=0, seed=seed)).explain(
            directory, noise)
        tested = run_stability(e, model, noise, kmeans_seeds=2, bootstraps=1)
    return {"claims": float(len(e.drivers) + len(e.separators) + len(e.uncertain)),
            "claims_after_stability_selection": float(len(tested.drivers) + len(tested.separators)
                                                      + len(tested.uncertain)),
            "stability_drivers_jaccard": tested.stability.mean_jaccard["drivers"]}


def describe(values: list[float]) -> dict[str, float | list[float]]:
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    return {"values": [round(float(x), 4) for x in v], "min": round(float(finite.min()), 4) if len(finite) else None,
            "median": round(float(np.median(finite)), 4) if len(finite) else None,
            "max": round(float(finite.max()), 4) if len(finite) else None, "nan": int((~np.isfinite(v)).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    out = {}
    for name, figures in (("planted", planted_figures), ("noise", noise_figures)):
        rows = []
        for seed in range(args.seeds):
            rows.append(figures(seed))
            print(name, seed, rows[-1], flush=True)
        out[name] = {key: describe([row[key] for row in rows]) for key in rows[0]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "test_spread.json").write_text(json.dumps({"seeds": args.seeds, **out}, indent=1))


if __name__ == "__main__":
    main()
