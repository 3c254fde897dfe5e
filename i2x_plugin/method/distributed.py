"""The I2X sweep sharded over ``torch.distributed`` ranks, launched by ``torchrun`` (or ``i2x run --nproc N``).

**What is sharded: the probe samples.** Rank r explains a contiguous block of the probe set at
*every* checkpoint; the blocks are cut at multiples of the batch size, so each rank runs exactly the
batches one process would have run, and the gathered arrays are those of one process. Sharding
by checkpoint instead would cap the speed-up at T ranks (T is often 5–50, fewer than the GPUs of a
few nodes) and leave ranks idle whenever T is not a multiple of their number; every rank would also
have to read the whole probe set T/R times. Sharding by sample scales to N / batch_size ranks, reads
each sample once per checkpoint in total, and shards the prototype assignment for free. Its cost is
that every rank loads every checkpoint (T loads per rank, small next to T·N/R saliency passes).

**What is not sharded.** The prototype fit: every rank reads the sampled feature rows of its own
block, rank 0 gathers them, fits PCA and K-Means once and broadcasts the centres. After the sweep,
rank 0 gathers the O(T·N·K + T·N·C) arrays and alone builds the structure, writes the graph and the
report.

**Failure.** Every stage that can fail on one rank runs inside :meth:`Ranks.checked`: the ranks
exchange their state at its end (and after every checkpoint of the sweep), so an error on one rank
makes every rank raise, with the same message, instead of leaving the others waiting. Ranks that
disagree on their inputs (checkpoint files, probe size, settings) fail in :meth:`Ranks.agree` before
any work. A rank that dies is noticed at the next exchange (the collective fails) or by ``torchrun``,
which stops the others; a hung rank by the process group's timeout.

Backends: gloo on CPU, nccl on CUDA (one GPU per process, ``cuda:LOCAL_RANK``). Across nodes use
``torchrun``'s own rendezvous flags (``--nnodes``, ``--rdzv-backend c10d``, ``--rdzv-endpoint``).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist


class DistributedError(RuntimeError):
    """Another rank failed, the ranks disagree, or the process layout does not fit the machine."""


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job (``rank`` of ``world_size``), and the few collectives I2X needs.

    With one process every method is a plain local call, so the single-process path is the same code.
    """

    rank: int = 0
    world_size: int = 1

    @classmethod
    def current(cls) -> "Ranks":
        """The default process group if one is initialised (``torchrun`` + ``init_process_group``), else one process."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def shard(self, n: int, unit: int) -> range:
        """This rank's contiguous block of ``range(n)``, cut at multiples of ``unit`` (at most one unit of imbalance)."""
        blocks = -(-n // unit)
        lo, hi = blocks * self.rank // self.world_size, blocks * (self.rank + 1) // self.world_size
        return range(min(lo * unit, n), min(hi * unit, n))

    @contextmanager
    def checked(self, stage: str) -> Iterator[None]:
        """Run a block on every rank; if it raises on any rank, it raises on every rank.

        The rank that failed re-raises its own exception; the others raise a :class:`DistributedError`
        carrying its message. Call :meth:`sync` inside the block at points every rank reaches the
        same number of times (e.g. after each checkpoint) to learn of a failure early.
        """
        if not self.distributed:
            yield
            return
        try:
            yield
        except Exception as err:
            self._exchange(stage, f"{type(err).__name__}: {err}")
            raise
        self._exchange(stage, None)

    def sync(self, stage: str) -> None:
        """An exchange point inside :meth:`checked`: raises at once if another rank has failed."""
        if self.distributed:
            self._exchange(stage, None)

    def _exchange(self, stage: str, failure: str | None) -> None:
        states = self.all_gather(failure, stage)
        failed = [(r, text) for r, text in enumerate(states) if text is not None]
        if failed and failure is None:
            rank, text = failed[0]
            raise DistributedError(f"rank {rank} of {self.world_size} failed while {stage}: {text}")

    def agree(self, facts: dict[str, Any], stage: str = "comparing the ranks' inputs") -> None:
        """Raise the same :class:`DistributedError` on every rank unless all ranks give equal ``facts``."""
        if not self.distributed:
            return
        everyone = self.all_gather(facts, stage)
        keys = sorted({key for f in everyone for key in f}, key=str)
        problems = [_disagreement(key, [f.get(key) for f in everyone]) for key in keys]
        problems = [p for p in problems if p]
        if problems:
            raise DistributedError("The ranks disagree: " + "; ".join(problems) + ". Every rank must see the same "
                                   "checkpoint files, the same probe data and the same settings.")

    # -- collectives (the default process group; a lost rank becomes a DistributedError) -------------------
    def all_gather(self, value: Any, stage: str = "exchanging state") -> list[Any]:
        if not self.distributed:
            return [value]
        out: list[Any] = [None] * self.world_size
        with self._collective(stage):
            dist.all_gather_object(out, value)
        return out

    def gather(self, value: Any, stage: str = "gathering results") -> list[Any] | None:
        """Every rank's ``value`` on rank 0 (in rank order); ``None`` elsewhere."""
        if not self.distributed:
            return [value]
        out: list[Any] | None = [None] * self.world_size if self.is_root else None
        with self._collective(stage):
            dist.gather_object(value, out, dst=0)
        return out

    def broadcast(self, value: Any, stage: str = "receiving rank 0's result") -> Any:
        """Rank 0's ``value`` on every rank."""
        if not self.distributed:
            return value
        box = [value if self.is_root else None]
        with self._collective(stage):
            dist.broadcast_object_list(box, src=0)
        return box[0]

    @contextmanager
    def _collective(self, stage: str) -> Iterator[None]:
        try:
            yield
        except RuntimeError as err:  # gloo: connection closed / timeout; nccl: DistBackendError
            raise DistributedError(f"lost contact with another rank while {stage}: it exited, was killed or hung "
                                   f"past the process group's timeout ({err}).") from err


def _disagreement(key: str, values: list[Any]) -> str | None:
    if all(v == values[0] for v in values):
        return None
    if all(isinstance(v, (list, tuple)) for v in values):
        lengths = [len(v) for v in values]
        if len(set(lengths)) > 1:
            return f"{key}: " + ", ".join(f"rank {r} has {n}" for r, n in enumerate(lengths))
        at = next(i for i in range(lengths[0]) if any(v[i] != values[0][i] for v in values))
        return f"{key} #{at}: " + ", ".join(f"rank {r} has {v[at]}" for r, v in enumerate(values))
    return f"{key}: " + ", ".join(f"rank {r} has {v}" for r, v in enumerate(values))


def file_digest(path: str | Path) -> str:
    """``name sha256:…`` of a checkpoint file, to check that every rank reads the same bytes."""
    path, digest = Path(path), hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{path.name} sha256:{digest.hexdigest()[:16]}"


# --- joining and launching a job -----------------------------------------------------------------------------


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_nproc(nproc: int, device: str | torch.device, flag: str = "--nproc") -> None:
    """Refuse more processes on this machine than it has devices for (one GPU, or at least one core, each)."""
    device = torch.device(device)
    if nproc < 1:
        raise DistributedError(f"{flag} {nproc}: give at least 1 process.")
    if nproc == 1:
        return
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if device.index is not None:
            raise DistributedError(f"--device {device} pins one GPU, but {nproc} processes each need their own; "
                                   "use --device cuda (process i uses cuda:LOCAL_RANK).")
        if nproc > count:
            raise DistributedError(f"{flag} {nproc} asks for one GPU per process, but this machine has {count} CUDA "
                                   f"device(s). Use {flag} {max(count, 1)} or fewer; add machines with torchrun "
                                   "--nnodes.")
    elif device.type == "cpu":
        cores = available_cores()
        if nproc > cores:
            raise DistributedError(f"{flag} {nproc} but only {cores} CPU core(s) are available to this process; "
                                   f"each process needs at least one. Use {flag} {cores} or fewer.")
    else:
        raise DistributedError(f"{flag} {nproc}: several processes need CPU cores or CUDA GPUs; device "
                               f"{device.type!r} is one device. Use {flag} 1.")


def rank_device(device: torch.device) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` for CUDA jobs, else ``device``."""
    if device.type == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


@contextmanager
def process_group(device: torch.device, timeout_s: float) -> Iterator[Ranks]:
    """Join the ``torchrun`` job described by the environment (``WORLD_SIZE`` > 1): gloo on CPU, nccl on CUDA.

    One process (no ``torchrun``), or a group the caller already initialised: nothing to do. Inside a
    job, SIGTERM (how ``torchrun`` stops the other ranks when one fails) raises a DistributedError, so
    the run records that it failed before the process ends.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        yield Ranks.current()
        return
    check_nproc(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), device, flag="--nproc-per-node")
    if device.type == "cuda":
        torch.cuda.set_device(rank_device(device))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(seconds=timeout_s))
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield Ranks.current()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        dist.destroy_process_group()


def _terminated(signum: int, _frame: Any) -> None:
    raise DistributedError("stopped by SIGTERM: torchrun stops every rank when one of them fails (see its log).")


def launch(argv: Sequence[str], nproc: int, device: str | torch.device) -> int:
    """Run ``i2x <argv>`` as ``nproc`` processes on this machine under ``torchrun --standalone``; its exit code.

    On CPU each process gets ``cores // nproc`` threads unless ``OMP_NUM_THREADS`` is set.
    """
    check_nproc(nproc, device)
    env = dict(os.environ)
    if torch.device(device).type == "cpu":
        env.setdefault("OMP_NUM_THREADS", str(max(1, available_cores() // nproc)))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "i2x_plugin.cli", *argv]
    with subprocess.Popen(command, env=env) as job:
        try:
            return job.wait()
        except KeyboardInterrupt:  # torchrun got the same Ctrl-C: let it stop its workers, then report it
            job.wait()
            raise
