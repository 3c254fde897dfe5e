"""The seeded training loop: reproducible from its seed, and the caller's global RNG left alone."""

import torch

from i2x_plugin.training.checkpoints import resolve_checkpoints
from i2x_plugin.training.data import load_digits_8x8
from i2x_plugin.training.models import SmallCNN
from i2x_plugin.training.loop import seeded, train_with_checkpoints


def _train(directory) -> list[dict]:
    data = load_digits_8x8().subset(range(200))
    with seeded(3):
        model = SmallCNN(1, 10, pools=1, width=8)
    train_with_checkpoints(model, data, directory, epochs=1, seed=3)
    return [torch.load(i.path) for i in resolve_checkpoints(directory)]


def test_training_is_reproducible_and_leaves_the_global_rng_alone(tmp_path):
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    first = _train(tmp_path / "a")
    assert torch.equal(torch.get_rng_state(), before)
    second = _train(tmp_path / "b")
    for a, b in zip(first, second):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(first[0][k], first[-1][k]) for k in first[0])  # it did train
