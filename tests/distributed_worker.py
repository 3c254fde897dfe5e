"""Ranks that misbehave, for tests/method/test_distributed.py (run under torchrun, not collected by pytest).

``python -m torch.distributed.run --standalone --nproc-per-node 2 tests/distributed_worker.py SCENARIO CKPTS OUT``
explains the digits probe set on every rank, with rank 1's inputs changed by SCENARIO:
``fewer-samples`` (its probe set lacks the last sample), ``changed-checkpoint`` (its last checkpoint
has other weights under the same name) or ``hangs`` (it sleeps instead of explaining; the process
group's timeout is ``$I2X_TEST_TIMEOUT`` seconds). Each rank writes the error it raised to ``OUT/rank-R.txt``.

``dying_cnn`` is a model factory for ``i2x run --model tests.distributed_worker:dying_cnn``: on rank 1
the process exits abruptly (``os._exit``) at its 12th forward pass, in the middle of the sweep.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from i2x_plugin.training.models import SmallCNN


class _DyingCNN(SmallCNN):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if os.environ.get("RANK") == "1" and self.calls == 12:
            os._exit(17)
        return super().forward(x)


def dying_cnn(in_channels: int, num_classes: int) -> SmallCNN:
    return _DyingCNN(in_channels, num_classes, pools=1)


def main(scenario: str, checkpoints: Path, out: Path) -> int:
    import time
    from datetime import timedelta

    import torch.distributed as dist

    from i2x_plugin import I2X, I2XConfig
    from i2x_plugin.training.data import load_digits_8x8

    dist.init_process_group("gloo", timeout=timedelta(seconds=float(os.environ.get("I2X_TEST_TIMEOUT", "1800"))))
    rank = dist.get_rank()
    probe = load_digits_8x8().subset(range(1200, 1797), "digits-probe")
    paths = sorted(checkpoints.glob("*.pt"))
    if rank == 1 and scenario == "fewer-samples":
        probe = probe.subset(range(len(probe) - 1))
    if rank == 1 and scenario == "changed-checkpoint":
        state = torch.load(paths[-1])
        state["head.2.bias"] = state["head.2.bias"] + 1.0
        paths[-1] = out / "rank1" / paths[-1].name
        paths[-1].parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, paths[-1])
    if rank == 1 and scenario == "hangs":
        time.sleep(600)
    model = SmallCNN(1, 10, pools=1)
    try:
        I2X(model, "block3", config=I2XConfig(k=12, seed=0)).explain(paths, probe)
    except Exception as err:  # noqa: BLE001 - the test reads what each rank raised
        (out / f"rank-{rank}.txt").write_text(f"{type(err).__name__}: {err}")
        return 1
    finally:
        dist.destroy_process_group()
    (out / f"rank-{rank}.txt").write_text("no error")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])))
