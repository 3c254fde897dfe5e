"""i2x_plugin.training.lightning: checkpoints recorded from a real lightning.Trainer fit on the CPU, then explained."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

L = pytest.importorskip("lightning")

from i2x_plugin import I2X, I2XConfig  # noqa: E402
from i2x_plugin.training.checkpoints import default_load_func, resolve_checkpoints  # noqa: E402
from i2x_plugin.training.data import load_digits_8x8  # noqa: E402
from i2x_plugin.training.lightning import I2XCheckpoints  # noqa: E402
from i2x_plugin.training.models import SmallCNN  # noqa: E402
from i2x_plugin.training.loop import seeded  # noqa: E402


class Digits(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = SmallCNN(1, 10, pools=1, width=8)

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.model(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.Adam(self.parameters(), lr=3e-3)


def _fit(directory, epochs: int = 3, **options) -> Digits:
    data = load_digits_8x8().subset(range(600))
    loader = torch.utils.data.DataLoader(data.tensor_dataset(), batch_size=64, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    with seeded(0):
        module = Digits()
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[I2XCheckpoints(directory, model_attr="model", **options)])
    trainer.fit(module, loader)
    return module


def test_a_trainer_fit_records_checkpoints_that_i2x_explains(tmp_path):
    module = _fit(tmp_path / "ckpts")
    infos = resolve_checkpoints(tmp_path / "ckpts")
    assert [(i.epoch, i.step) for i in infos] == [(0, 0), (1, 10), (2, 20), (3, 30)]
    assert infos[0].train_loss is None and all(i.train_loss > 0 for i in infos[1:])
    assert infos[-1].train_loss < infos[1].train_loss
    final = SmallCNN(1, 10, pools=1, width=8)
    default_load_func(final, infos[-1].path)  # the plain classifier's keys, no "model." prefix
    assert all(torch.equal(a, b) for a, b in zip(final.state_dict().values(), module.model.state_dict().values()))
    probe = load_digits_8x8().subset(range(600, 800))
    e = I2X(module.model, "block3", config=I2XConfig(k=8)).explain(tmp_path / "ckpts", probe)
    assert len(e.checkpoints) == 4 and e.checkpoints[-1].accuracy > e.checkpoints[0].accuracy


def test_step_saves_and_a_used_directory(tmp_path):
    _fit(tmp_path / "ckpts", epochs=1, every_n_train_steps=5, log_spaced_early=4)
    steps = [i.step for i in resolve_checkpoints(tmp_path / "ckpts")]
    assert steps == [0, 1, 2, 5, 10]  # initial, log-spaced 1 and 2, every 5; the epoch end (10) saved once
    with pytest.raises(FileExistsError, match="already holds 5 checkpoints"):
        _fit(tmp_path / "ckpts", epochs=1)


def test_i2x_plugin_does_not_import_lightning_and_the_module_says_what_is_missing():
    code = ("import sys; import i2x_plugin, i2x_plugin.app.run, i2x_plugin.cli; assert 'lightning' not in sys.modules\n"
            "sys.modules['lightning'] = None\n"
            "try:\n    import i2x_plugin.training.lightning\nexcept ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "needs the lightning package: pip install lightning" in out.stdout
