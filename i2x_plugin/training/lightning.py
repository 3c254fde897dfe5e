"""Record I2X checkpoints from a Lightning ``Trainer`` (needs ``pip install lightning``).

>>> from i2x_plugin.training.lightning import I2XCheckpoints
>>> trainer = lightning.Trainer(max_epochs=5, callbacks=[I2XCheckpoints("ckpts", model_attr="model")])
>>> trainer.fit(module, train_loader)
>>> explanation = I2X(module.model, "block3").explain("ckpts", probe_data)

The callback writes through :class:`~i2x_plugin.training.checkpoints.CheckpointRecorder`: one file before
training, one after every epoch (and every ``every_n_train_steps`` steps, and at log-spaced early
steps if asked), with epoch, step and train loss. Only the global-zero process writes. Nothing else
in i2x-plugin imports this module, so lightning stays optional.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

try:
    import lightning as L
except ImportError as err:  # pragma: no cover - exercised by hiding lightning in a test
    raise ImportError("i2x_plugin.training.lightning needs the lightning package: pip install lightning "
                      "(or record checkpoints in your own loop with i2x_plugin.CheckpointRecorder).") from err
from torch import nn

from .checkpoints import CheckpointRecorder

__all__ = ["I2XCheckpoints"]


class I2XCheckpoints(L.Callback):
    """A Lightning callback that records the checkpoints I2X replays.

    Args:
        directory: where the checkpoints go; a directory with an earlier recording is refused unless
            ``resume`` (or the fit itself resumes from a Lightning checkpoint), see
            :class:`~i2x_plugin.training.checkpoints.CheckpointRecorder`.
        model_attr: the LightningModule attribute holding the classifier I2X explains (e.g. ``"model"``),
            so its checkpoints load into that plain ``nn.Module``; default: the LightningModule itself.
        every_n_train_steps: also save every this many optimiser steps (default: epochs only).
        log_spaced_early: also save at steps 1, 2, 4, … below this (early learning moves fastest).
        loss_key: the logged metric saved as ``train_loss`` (e.g. ``self.log("train_loss", loss)``).
        save_initial: save the weights before the first step (the untrained starting point).
        prefix, resume: as for :class:`~i2x_plugin.training.checkpoints.CheckpointRecorder`.
    """

    def __init__(self, directory: str | Path, model_attr: str | None = None, every_n_train_steps: int | None = None,
                 log_spaced_early: int = 0, loss_key: str = "train_loss", save_initial: bool = True,
                 prefix: str = "ckpt", resume: bool = False) -> None:
        if every_n_train_steps is not None and every_n_train_steps < 1:
            raise ValueError(f"every_n_train_steps must be at least 1, got {every_n_train_steps}.")
        self.directory, self.model_attr, self.prefix, self.resume = Path(directory), model_attr, prefix, resume
        self.every_n_train_steps, self.log_spaced_early = every_n_train_steps, log_spaced_early
        self.loss_key, self.save_initial = loss_key, save_initial
        self.recorder: CheckpointRecorder | None = None
        self._saved_step: int | None = None

    def _model(self, pl_module: L.LightningModule) -> nn.Module:
        if self.model_attr is None:
            return pl_module
        model = getattr(pl_module, self.model_attr, None)
        if not isinstance(model, nn.Module):
            raise ValueError(f"{type(pl_module).__name__}.{self.model_attr} is not an nn.Module; give model_attr the "
                             "attribute that holds the classifier (or None for the LightningModule itself).")
        return model

    def _save(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: float) -> None:
        if self.recorder is None or self._saved_step == trainer.global_step:
            return  # not rank zero, or these weights are saved already (a step save at an epoch's end)
        self._saved_step = trainer.global_step
        loss = trainer.callback_metrics.get(self.loss_key)
        self.recorder.save(self._model(pl_module), epoch=epoch, step=trainer.global_step,
                           train_loss=None if loss is None else float(loss))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._model(pl_module)  # a wrong model_attr fails before the first step
        if not trainer.is_global_zero:
            return
        resumed = trainer.ckpt_path is not None or trainer.global_step > 0
        self.recorder = CheckpointRecorder(self.directory, self.prefix, resume=self.resume or resumed)
        if self.save_initial and not resumed:
            self._save(trainer, pl_module, epoch=0)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step
        if (self.every_n_train_steps and step % self.every_n_train_steps == 0) or \
                CheckpointRecorder.should_save(step, self.log_spaced_early):
            self._save(trainer, pl_module, epoch=trainer.current_epoch + (batch_idx + 1) / trainer.num_training_batches)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer, pl_module, epoch=trainer.current_epoch + 1)
