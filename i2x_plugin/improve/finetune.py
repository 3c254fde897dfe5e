"""Fine-tuning from a checkpoint: seeded epoch orders, removal sets per epoch, pair-aware evaluation.

A *schedule* is a tuple of epoch kinds, e.g. ``("curated", "full")``. ``"full"`` visits the whole
training set; any other kind names a removal set, given as a keep mask per seed. Everything a seed
does is seeded, and the same for every schedule:

* epoch ``e`` of seed ``s`` visits the training set in one seeded permutation; an epoch with a removal
  set is that same permutation with the removed samples skipped;
* the torch RNG is reseeded from (``s``, ``e``) before every epoch (dropout, augmentation);
* a schedule that shares a prefix with another (``full`` is the first stage of ``full->full``)
  reuses that prefix's model and optimiser state instead of recomputing it (identical by construction).

The optimiser starts either fresh or from the state saved with the checkpoint (``optimizer_state=
"carry"``), at a fixed learning rate or at the one the checkpoint recorded (``lr="base"``): continuing
where training stopped, so one more full epoch does not by itself undo what training reached.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Literal, Mapping

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from ..atomic import atomic_open, write_text
from ..training.checkpoints import LoadFunc, checkpoint_lr, default_load_func, optimizer_state_path
from ..training.data import ImageDataset
from ..training.loop import seeded, train_epoch

Keep = Callable[[int], np.ndarray]  # seed -> (N,) keep mask of one removal set


class ImproveError(ValueError):
    """Fine-tuning cannot run as asked; the message names the problem and the fix."""


class FineTuneConfig(BaseModel):
    """How every schedule fine-tunes: optimiser, learning rate, optimiser state, batch sizes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    optimizer: Literal["adam", "sgd"] = Field("adam", description="(D) Optimiser of every schedule.")
    lr: float | Literal["base"] = Field(
        "base", description="Learning rate of every schedule; 'base' (D): the one recorded with the checkpoint "
        "(the base training's final learning rate).")
    optimizer_state: Literal["carry", "fresh"] = Field(
        "carry", description="(D) 'carry': start from the optimiser state saved with the checkpoint (continue "
        "where training stopped); 'fresh': a new optimiser (the paper's and the earlier rule).")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    weight_decay: float = Field(0.0, ge=0, description="Weight decay of every schedule.")
    batch_size: int = Field(64, ge=1, description="Training batch size of every schedule.")
    eval_batch_size: int = Field(512, ge=1, description="Batch size of evaluation.")
    epochs_per_stage: int = Field(1, ge=1, description="Epochs per stage of a schedule (paper: 1).")


@dataclass(frozen=True)
class ScheduleRun:
    """One fine-tuned model: its schedule, seed and scores on the evaluation split."""

    schedule: str
    seed: int
    accuracy: float  # in [0, 1]
    a_to_b: int
    b_to_a: int
    checkpoint: str | None = None  # saved state_dict, when a save directory was given
    pair_loss: float | None = None  # mean cross-entropy of the (a, b) two-logit softmax on images of a ∪ b
    pair_margin: float | None = None  # mean logit(true) − logit(other of the pair) on images of a ∪ b

    @property
    def confusions(self) -> int:
        return self.a_to_b + self.b_to_a


# --- checks --------------------------------------------------------------------------------------------


def image_hashes(images: torch.Tensor) -> np.ndarray:
    """A content hash per image (exact identity of the stored pixels)."""
    arr = images.detach().cpu().contiguous().numpy()
    return np.array([hashlib.blake2b(x.tobytes(), digest_size=16).hexdigest() for x in arr])


def check_disjoint(train: ImageDataset, test: ImageDataset, names: tuple[str, str] = ("training set", "test split"),
                   ) -> None:
    """Raise when ``test`` shares an image with ``train`` (compared by pixel content)."""
    shared = np.flatnonzero(np.isin(image_hashes(test.images), image_hashes(train.images)))
    if len(shared):
        raise ImproveError(
            f"The {names[1]} overlaps the {names[0]}: {len(shared)} of its {len(test)} images are also in the "
            f"{names[0]} (first positions {shared[:5].tolist()}). Evaluate on a held-out split carved without "
            "overlap (e.g. ImageDataset.split, stratified_indices, or the run's split.npz 'test' indices).")


def check_trainable(model: nn.Module) -> list[nn.Parameter]:
    """The parameters fine-tuning will update; raise if there are none."""
    params = list(model.parameters())
    trainable = [p for p in params if p.requires_grad]
    if not params:
        raise ImproveError("The model cannot be fine-tuned: it has no parameters. Pass the trained classifier.")
    if not trainable:
        raise ImproveError(
            f"The model cannot be fine-tuned: all {len(params)} parameter tensors are frozen (requires_grad=False). "
            "Unfreeze the layers to fine-tune (e.g. model.requires_grad_(True)) before calling improve.")
    return trainable


# --- epochs --------------------------------------------------------------------------------------------


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch`` (0-based within a schedule) of run ``seed``: same for every schedule."""
    return 1_000_003 * (seed + 1) + epoch


def epoch_order(train_size: int, seed: int, epoch: int, keep: np.ndarray | None = None) -> torch.Tensor:
    """The seeded permutation of epoch ``epoch``; an epoch with a removal set keeps the order, skipping them."""
    order = torch.randperm(train_size, generator=torch.Generator().manual_seed(epoch_seed(seed, epoch)))
    return order if keep is None else order[torch.from_numpy(keep)[order]]


class _Loader:
    """A re-iterable batch source for :func:`train_epoch` (a fixed order, no DataLoader worker state)."""

    def __init__(self, data: ImageDataset, order: torch.Tensor, batch_size: int):
        self.data, self.order, self.batch_size = data, order, batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self.order), self.batch_size):
            index = self.order[start : start + self.batch_size]
            yield self.data.images[index], self.data.labels[index]

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)


def resolve_lr(config: FineTuneConfig, checkpoint: str | Path) -> float:
    """The learning rate fine-tuning uses: ``config.lr``, or the one recorded with ``checkpoint``."""
    if config.lr != "base":
        return float(config.lr)
    lr = checkpoint_lr(checkpoint)
    if lr is None:
        raise ImproveError(
            f"lr='base' needs the learning rate recorded with checkpoint {checkpoint} (its .json sidecar has none: "
            "it was not written by CheckpointRecorder.save(lr=...)). Pass a learning rate (--lr 1e-4).")
    return float(lr)


def make_optimizer(model: nn.Module, config: FineTuneConfig, checkpoint: str | Path) -> torch.optim.Optimizer:
    """The optimiser a schedule starts with (fresh or carried over from ``checkpoint``) at the resolved lr."""
    params = check_trainable(model)
    lr = resolve_lr(config, checkpoint)
    if config.optimizer == "adam":
        optimizer = torch.optim.Adam(params, lr=lr, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer_state == "carry":
        path = optimizer_state_path(checkpoint)
        if path is None:
            raise ImproveError(
                f"optimizer_state='carry' needs the optimiser state saved with checkpoint {checkpoint} (no "
                f"{Path(checkpoint).with_suffix('.optimizer').name} beside it; train_with_checkpoints and 'i2x run' "
                "save it with the final checkpoint). Use --optimizer-state fresh with a small --lr, or retrain.")
        state = torch.load(path, map_location=params[0].device, weights_only=True)
        saved_adam = all("betas" in group for group in state.get("param_groups", []))
        if saved_adam != (config.optimizer == "adam"):
            raise ImproveError(
                f"The optimiser state saved with {checkpoint} is {'Adam' if saved_adam else 'not Adam'}'s, but "
                f"optimizer={config.optimizer!r}: carry it with the optimiser training used, or use "
                "optimizer_state='fresh'.")
        optimizer.load_state_dict(state)
        for group in optimizer.param_groups:
            group["lr"] = lr  # the state's own lr is training's; fine-tuning runs at the resolved one
    return optimizer


# --- evaluation ----------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageDataset, pair: tuple[int, int], batch_size: int = 512,
             device: torch.device | str = "cpu") -> dict[str, float | int | None]:
    """Accuracy, the pair's a→b and b→a confusions, and the a-vs-b loss and margin on images of a ∪ b."""
    model.eval()
    logits = torch.cat([model(data.images[i : i + batch_size].to(device)).float().cpu()
                        for i in range(0, len(data), batch_size)])
    preds, y = logits.argmax(1), data.labels
    a, b = pair
    in_pair = (y == a) | (y == b)
    scores: dict[str, float | int | None] = {
        "accuracy": float((preds == y).float().mean()), "a_to_b": int(((y == a) & (preds == b)).sum()),
        "b_to_a": int(((y == b) & (preds == a)).sum()), "pair_loss": None, "pair_margin": None}
    if in_pair.any():
        two = logits[in_pair][:, [a, b]]
        target = (y[in_pair] == b).long()  # 0: a, 1: b
        scores["pair_loss"] = float(nn.functional.cross_entropy(two, target))
        sign = 1.0 - 2.0 * target.float()  # +1 for a, −1 for b
        scores["pair_margin"] = float((sign * (two[:, 0] - two[:, 1])).mean())
    return scores


def scored_run(schedule: str, seed: int, scores: Mapping[str, float | int | None],
               checkpoint: str | None = None) -> ScheduleRun:
    return ScheduleRun(schedule, seed, float(scores["accuracy"]), int(scores["a_to_b"]), int(scores["b_to_a"]),
                       checkpoint, scores.get("pair_loss"), scores.get("pair_margin"))


# --- schedules -----------------------------------------------------------------------------------------


def _state(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    return ({k: v.detach().clone() for k, v in model.state_dict().items()}, copy.deepcopy(optimizer.state_dict()))


def fine_tune(model: nn.Module, checkpoint: str | Path, train: ImageDataset, evaluation: ImageDataset,
              pair: tuple[int, int], schedules: Mapping[str, tuple[str, ...]], removals: Mapping[str, Keep],
              config: FineTuneConfig, seeds: list[int], load_func: LoadFunc = default_load_func,
              device: str | torch.device | None = None, save_dir: str | Path | None = None,
              progress: bool = False) -> list[ScheduleRun]:
    """Fine-tune from ``checkpoint`` with every schedule and seed; scores on ``evaluation``.

    ``removals[kind](seed)`` is the keep mask of the epochs of that kind. ``save_dir`` given: each model
    is saved as ``<schedule>-seed<s>.pt`` with a JSON sidecar (scores on ``evaluation``).
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    unknown = sorted({k for epochs in schedules.values() for k in epochs if k != "full" and k not in removals})
    if unknown:
        raise ImproveError(f"Schedules use epoch kinds {unknown} that have no removal set; give them in removals.")
    save_dir = Path(save_dir) if save_dir is not None else None
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
    iterate = seeds
    if progress:
        from tqdm.auto import tqdm

        iterate = tqdm(seeds, desc="fine-tuning seeds", unit="seed")
    runs = []
    for seed in iterate:
        masks: dict[str, np.ndarray] = {}
        cache: dict[tuple[str, ...], tuple[dict, dict]] = {}
        for name, stages in schedules.items():
            epochs = tuple(kind for kind in stages for _ in range(config.epochs_per_stage))
            done = max((n for n in range(1, len(epochs) + 1) if epochs[:n] in cache), default=0)
            load_func(model, checkpoint)
            optimizer = make_optimizer(model, config, checkpoint)
            if done:
                model_state, opt_state = cache[epochs[:done]]
                model.load_state_dict(model_state)
                optimizer.load_state_dict(copy.deepcopy(opt_state))
            for e in range(done, len(epochs)):
                kind = epochs[e]
                if kind != "full" and kind not in masks:
                    masks[kind] = np.asarray(removals[kind](seed), dtype=bool)
                order = epoch_order(len(train), seed, e, masks.get(kind))
                with seeded(epoch_seed(seed, e), device):
                    train_epoch(model, _Loader(train, order, config.batch_size), optimizer, device)
                cache[epochs[: e + 1]] = _state(model, optimizer)
            scores = evaluate(model, evaluation, pair, config.eval_batch_size, device)
            path = None
            if save_dir is not None:
                path = save_dir / f"{name.replace('->', '-')}-seed{seed}.pt"
                with atomic_open(path) as f:
                    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, f)
                write_text(path.with_suffix(".json"), json.dumps({
                    "schedule": name, "seed": seed, "fine_tuned_from": str(checkpoint), "epochs": len(epochs),
                    "pair": list(pair), **scores}))
            runs.append(scored_run(name, seed, scores, None if path is None else str(path)))
    model.eval()
    return runs
