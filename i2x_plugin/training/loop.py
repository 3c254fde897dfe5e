"""A plain, seeded training loop that records checkpoints: what the demo, tests and benchmarks train with.

Seeds are local (:func:`seeded`): training is reproducible and the caller's global RNG state is left alone.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .checkpoints import CheckpointRecorder
from .data import ImageDataset


@contextmanager
def seeded(seed: int, device: str | torch.device = "cpu") -> Iterator[None]:
    """Seed torch's RNG for the body only (initial weights, dropout); the caller's RNG state is restored after.

    Library code never reseeds the global generators: the user's own random streams (and numpy's and
    Python's, which nothing here uses) go on as if I2X had not run. On CUDA the device's generator is
    forked and seeded too.
    """
    device = torch.device(device)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(seed)
        for index in cuda:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


@contextmanager
def fixed_threads(threads: int | None) -> Iterator[None]:
    """Run the body on ``threads`` intra-op torch threads (None: leave torch's setting); restored after.

    A convolution's weight gradient is a sum over the batch that torch splits between its threads, so the
    trained weights change with the thread count in their last bits, and training amplifies that (after 2
    epochs on mnist-5k the first layer's weights summed 5.741 on one thread and 5.708 on two). A fixed count
    makes the same config train the same weights on any machine of one CPU type, whatever ``OMP_NUM_THREADS``.
    """
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, device: torch.device,
                on_batch: Callable[[float], None] | None = None) -> float:
    """One pass over ``loader``; returns the mean training loss. ``on_batch(loss)`` follows each step."""
    model.train()
    total, count = 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        count += len(y)
        if on_batch is not None:
            on_batch(loss.item())
    model.eval()
    return total / max(count, 1)


def train_with_checkpoints(
    model: nn.Module,
    data: ImageDataset,
    directory: str | Path,
    epochs: int = 5,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
    save_initial: bool = True,
    progress: bool = False,
    final_lr: float | None = None,
    threads: int | None = 1,
) -> CheckpointRecorder:
    """Train with Adam, saving a checkpoint before training (if asked) and after every epoch.

    ``final_lr`` given: the learning rate decays per batch along a cosine from ``lr`` to ``final_lr``
    (training to convergence); otherwise it stays ``lr``. Each checkpoint records the learning rate
    in force, and the last one also the optimiser state, so fine-tuning can continue from it.
    ``threads``: the intra-op torch threads on the CPU (:func:`fixed_threads`; default 1, so the weights do
    not depend on the thread count; it costs about 2× the time of two threads on a free 2-core machine and
    nothing under load); None keeps torch's own setting.
    """
    device = torch.device(device)
    model.to(device)
    recorder = CheckpointRecorder(directory)
    loader = DataLoader(TensorDataset(data.images, data.labels), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = None if final_lr is None else torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=epochs * len(loader), eta_min=final_lr)
    if save_initial:
        recorder.save(model, epoch=0, step=0, lr=lr)
    from tqdm.auto import tqdm

    cpu_threads = threads if device.type == "cpu" else None
    with seeded(seed, device), fixed_threads(cpu_threads), tqdm(total=epochs * len(loader), desc="training",
                                                                unit="batch", disable=not progress) as bar:
        def on_batch(loss: float) -> None:
            if schedule is not None:
                schedule.step()
            bar.update()
            bar.set_postfix_str(f"epoch {epoch + 1}/{epochs}, loss {loss:.3f}", refresh=False)

        for epoch in range(epochs):
            loss = train_epoch(model, loader, optimizer, device, on_batch)
            recorder.save(model, epoch=epoch + 1, step=(epoch + 1) * len(loader), train_loss=loss,
                          lr=optimizer.param_groups[0]["lr"], optimizer=optimizer if epoch == epochs - 1 else None)
    model.eval()
    return recorder
