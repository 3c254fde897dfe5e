"""Streaming benchmark: probe sets far larger than memory, explained from a lazily generated ``Dataset``.

Probe data: item i of :class:`LazyShapes` is a 3×512×512 float32 image (3 MiB) drawn on the fly from
seed i — the texture of class ``i % 10`` at a jittered place on a noisy 32×32 canvas, upsampled ×16 —
so nothing is stored. At 4N = 17,600 samples the images would need 51.6 GiB as float32, more than
twice this machine's 24 GiB. The model starts with a 16×16 average pool (512 → 32 pixels) followed
by the small CNN; its ``block3`` map is 16×16. Three checkpoints (before training, after each of two
epochs on 1,000 other generated images). K = 32, the default batch of 256 images (768 MiB).

Each N runs in its own process, so its peak RSS (``ru_maxrss``) is its own. Recorded per N: peak
RSS, RSS just before ``explain`` (imports, model, one item), seconds per stage, and the bytes of
the arrays that grow with N (the O(T·N·K + T·N·C) trajectory, the (N, h, w) assignments, the
presence counts). Target: peak RSS ≤ 3 GiB at 4N, and RSS growth from N to 4N of the order of those
arrays, not of the images.

Each pass over 4N moves 51.6 GiB of images through generation, collation and the model, and I2X
makes T + 2 passes (the prototype fit's sample, the assignment, one per checkpoint), so the run takes
a while: ``nice .venv/bin/python bench/stream.py`` → ``bench/results/stream.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

RESULTS = Path(__file__).resolve().parent / "results" / "stream.json"
N = 4_400
CHANNELS, SIZE, CANVAS = 3, 512, 32
T, K, CLASSES = 3, 32, 10
GIB = 1024**3


class LazyShapes(Dataset):
    """``n`` images generated on demand from their index: class ``i % 10``'s texture on a noisy canvas."""

    def __init__(self, n: int, seed: int = 0):
        from i2x_plugin.training.synthetic import SHAPES

        self.n, self.seed = n, seed
        self.textures = [SHAPES[name] for name in SHAPES]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        rng = np.random.default_rng((self.seed, i))
        label = i % CLASSES
        canvas = rng.normal(0.0, 0.15, (CHANNELS, CANVAS, CANVAS)).clip(0, 1).astype(np.float32)
        texture = self.textures[label % len(self.textures)]
        quadrant = label % 4
        r = (quadrant // 2) * 16 + int(rng.integers(0, 9))
        c = (quadrant % 2) * 16 + int(rng.integers(0, 9))
        canvas[:, r : r + 8, c : c + 8] = np.maximum(canvas[:, r : r + 8, c : c + 8], texture)
        scale = SIZE // CANVAS
        return torch.from_numpy(np.repeat(np.repeat(canvas, scale, 1), scale, 2)), label


def build_model() -> nn.Module:
    from i2x_plugin.training.models import SmallCNN

    return nn.Sequential(nn.AvgPool2d(SIZE // CANVAS), SmallCNN(CHANNELS, CLASSES, pools=1))


def train(directory: Path) -> None:
    """Three checkpoints: before training and after each of two epochs on 1,000 other generated images."""
    from i2x_plugin.training.checkpoints import CheckpointRecorder
    from i2x_plugin.training.loop import seeded, train_epoch

    with seeded(0):
        model = build_model()
    recorder = CheckpointRecorder(directory)
    loader = DataLoader(LazyShapes(1_000, seed=1), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    recorder.save(model, epoch=0)
    for epoch in range(T - 1):
        loss = train_epoch(model, loader, optimizer, torch.device("cpu"))
        recorder.save(model, epoch=epoch + 1, train_loss=loss)


def _rss_gib() -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", text, re.M).group(1)) * 1024 / GIB


def child(n: int, checkpoints: Path) -> dict:
    from i2x_plugin import I2X, I2XConfig

    probe = LazyShapes(n)
    model = build_model()
    i2x = I2X(model, "1.block3", config=I2XConfig(k=K, seed=0))
    probe[0]  # noqa: B018 - one item generated, as explain will
    before = _rss_gib()
    start = time.perf_counter()
    explanation = i2x.explain(checkpoints, probe)
    seconds = time.perf_counter() - start
    t, n_, k = explanation.intensities.shape
    h, w = explanation.map_size
    arrays = {"trajectory (T·N·K + T·N·C floats, T·N predictions)": t * n_ * (4 * k + 4 * CLASSES + 8),
              "assignments (N·h·w int16)": n_ * h * w * 2, "presence (N·K int32)": n_ * k * 4}
    return {
        "n": n, "images_gib_as_float32": round(n * CHANNELS * SIZE * SIZE * 4 / GIB, 2),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB, 3),
        "rss_before_explain_gib": round(before, 3), "explain_seconds": round(seconds, 1),
        "stage_seconds": {name: round(s, 1) for name, s in i2x.timings.items()},
        "growing_arrays_mib": {name: round(b / 2**20, 1) for name, b in arrays.items()},
        "final_probe_accuracy": round(explanation.checkpoints[-1].accuracy, 4),
        "map_size": [h, w], "checkpoints": t, "k": k,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", type=int)
    parser.add_argument("--checkpoints", type=Path)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.checkpoints)))
        return
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="i2x-bench-stream-") as tmp:
        checkpoints = Path(tmp) / "ckpts"
        start = time.perf_counter()
        train(checkpoints)
        train_s = time.perf_counter() - start
        runs = []
        for n in (N, 2 * N, 4 * N):
            out = subprocess.run([sys.executable, __file__, "--child", str(n), "--checkpoints", str(checkpoints)],
                                 capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]), flush=True)
    grown_rss = runs[-1]["peak_rss_gib"] - runs[0]["peak_rss_gib"]
    grown_arrays = (sum(runs[-1]["growing_arrays_mib"].values()) - sum(runs[0]["growing_arrays_mib"].values())) / 1024
    result = {
        "benchmark": "I2X.explain on a lazily generated probe Dataset (3×512×512 float32 images), N, 2N, 4N",
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
                    "load_average_before": load_before, "load_average_after": [round(x, 2) for x in os.getloadavg()],
                    "memory_limit_gib": 24},
        "setup": {"image": [CHANNELS, SIZE, SIZE], "model": "AvgPool2d(16) → SmallCNN(3, 10, pools=1), layer 1.block3",
                  "checkpoints": T, "k": K, "batch_size": 256, "training_seconds": round(train_s, 1)},
        "runs": runs,
        "target": {"peak_rss_gib_at_4n": 3.0, "met": runs[-1]["peak_rss_gib"] <= 3.0},
        "growth_n_to_4n": {"peak_rss_gib": round(grown_rss, 3), "growing_arrays_gib": round(grown_arrays, 3),
                           "images_gib": round(runs[-1]["images_gib_as_float32"] - runs[0]["images_gib_as_float32"], 1)},
    }
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
