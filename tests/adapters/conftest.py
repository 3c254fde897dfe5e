"""Fixtures for the adapter tests: a real SmallCNN trained for a few seconds on the 8×8 digits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import pytest
import torch
from torch import nn

from i2x_plugin.training.data import load_digits_8x8
from i2x_plugin.training.models import SmallCNN

DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
    ),
]


@dataclass(frozen=True)
class Trained:
    model: SmallCNN
    images: torch.Tensor  # (1797, 1, 8, 8) float in [0, 1]
    labels: torch.Tensor  # (1797,) int64
    accuracy: float


def all_hooks(model: nn.Module) -> dict[str, int]:
    """Count of every kind of module hook on every submodule (0 everywhere after a call)."""
    kinds = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return {
        f"{name or '<root>'}.{kind}": len(getattr(module, kind))
        for name, module in model.named_modules()
        for kind in kinds
        if len(getattr(module, kind, {}))
    }


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Run each adapter test on one intra-op thread (restored after).

    The test batches are tiny, so threads gain nothing; on a shared 2-core machine OpenMP
    contention makes multi-threaded calls 10x slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def trained() -> Trained:
    """SmallCNN (pools=1 → 4×4 map at ``block3``), 3 epochs of Adam on all digits, seeded.

    Trains on one thread (see ``_one_thread``).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train()
    finally:
        torch.set_num_threads(threads)


def _train() -> Trained:
    torch.manual_seed(0)
    data = load_digits_8x8()
    model = SmallCNN(pools=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(3):
        order = torch.randperm(len(data), generator=generator)
        for start in range(0, len(order), 32):
            idx = order[start : start + 32]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(data.images[idx]), data.labels[idx])
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(data.images).argmax(1) == data.labels).float().mean().item()
    assert accuracy > 0.8, f"the test model did not train (accuracy {accuracy:.3f})"
    return Trained(model, data.images, data.labels, accuracy)


@pytest.fixture
def model(trained: Trained) -> SmallCNN:
    """A fresh copy of the trained model per test, so state-changing tests stay independent."""
    copy = SmallCNN(pools=1)
    copy.load_state_dict(trained.model.state_dict())
    return copy.eval()


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    """"cpu", and "cuda" where a GPU is present (skipped otherwise)."""
    return request.param


@pytest.fixture
def hooks_of() -> Callable[[nn.Module], dict[str, int]]:
    """``hooks_of(model)``: the hooks left on any submodule (``{}`` when clean)."""
    return all_hooks


@pytest.fixture
def batch(trained: Trained) -> tuple[torch.Tensor, torch.Tensor]:
    """32 digits and their labels."""
    return trained.images[:32], trained.labels[:32]
