"""Recording checkpoints during training and loading them back, in the shape of Captum's TracInCP.

``checkpoints`` is a directory, a list of paths, or any iterable of paths; each is loaded into one
model instance with ``checkpoints_load_func(model, path)``. The recorder writes ``state_dict`` files
plus a JSON sidecar (epoch, step, train loss) so the sweep can label checkpoints.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Union

import torch
from torch import nn

from ..atomic import atomic_open, write_text

CheckpointsType = Union[str, Path, Iterable[Union[str, Path]]]
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
OPTIMIZER_SUFFIX = ".optimizer"  # beside a checkpoint: its optimiser state (not a checkpoint itself)


@dataclass(frozen=True)
class CheckpointInfo:
    """Where a checkpoint lives and what the recorder knew when it was written."""

    path: Path
    index: int
    epoch: float | None = None
    step: int | None = None
    train_loss: float | None = None
    recording: str | None = None  # the id of the CheckpointRecorder series that wrote it

    @property
    def name(self) -> str:
        return self.path.stem


class CheckpointRecorder:
    """Write checkpoints from your own training loop.

    Files are ``<prefix>-0000.pt``, ``<prefix>-0001.pt``, ... with a JSON sidecar (epoch, step,
    train loss and the id of this recording), each written atomically.

    A directory that already holds ``<prefix>-NNNN.pt`` files is refused (``FileExistsError``),
    so an earlier run is never overwritten nor mixed into this one. ``resume=True`` continues that
    recording instead (training resumed from its last checkpoint): the numbering goes on after its
    highest index and the new files join its series.

    >>> recorder = CheckpointRecorder("ckpts")
    >>> for epoch in range(3):
    ...     loss = train_one_epoch(model)
    ...     recorder.save(model, epoch=epoch + 1, step=global_step, train_loss=loss)
    """

    def __init__(self, directory: str | Path, prefix: str = "ckpt", resume: bool = False):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.saved: list[CheckpointInfo] = []
        pattern = re.compile(rf"{re.escape(prefix)}-(\d+)\.pt")
        existing = sorted((int(m.group(1)), p) for p in self.directory.iterdir() if (m := pattern.fullmatch(p.name)))
        self.recording: str | None = secrets.token_hex(6)
        self._next = 0
        if existing:
            first, last = existing[0][1].name, existing[-1][1].name
            if not resume:
                raise FileExistsError(
                    f"{self.directory} already holds {len(existing)} checkpoints of an earlier recording ({first} .. "
                    f"{last}). Record into an empty directory, or pass resume=True to continue that recording "
                    f"(numbering goes on at {prefix}-{existing[-1][0] + 1:04d}).")
            self._next = existing[-1][0] + 1
            self.recording = _read_meta(existing[-1][1]).get("recording")  # None for files of an older recorder

    def save(self, model: nn.Module, epoch: float | None = None, step: int | None = None,
             train_loss: float | None = None, lr: float | None = None,
             optimizer: torch.optim.Optimizer | None = None) -> CheckpointInfo:
        """Save ``model.state_dict()`` (on CPU) with its metadata; returns what was written.

        ``lr`` (the learning rate in force) and ``optimizer`` (its state goes to ``<name>.optimizer``)
        let fine-tuning continue from this checkpoint where training stopped (``i2x improve``).
        """
        index = self._next
        path = self.directory / f"{self.prefix}-{index:04d}.pt"
        if path.exists():
            raise FileExistsError(f"{path} appeared while recording (another recorder on the same directory?); "
                                  "not overwriting it.")
        state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        info = CheckpointInfo(path, index, epoch, step, None if train_loss is None else float(train_loss),
                              self.recording)
        meta = {"epoch": epoch, "step": step, "train_loss": info.train_loss, "recording": self.recording}
        if lr is not None:
            meta["lr"] = float(lr)
        # The sidecars first: a checkpoint file never exists without its metadata.
        write_text(path.with_suffix(".json"), json.dumps(meta))
        if optimizer is not None:
            with atomic_open(path.with_suffix(OPTIMIZER_SUFFIX)) as f:
                torch.save(optimizer.state_dict(), f)
        with atomic_open(path) as f:
            torch.save(state, f)
        self._next += 1
        self.saved.append(info)
        return info

    @staticmethod
    def should_save(step: int, log_spaced_early: int = 0) -> bool:
        """True at log-spaced early steps (1, 2, 4, … < ``log_spaced_early``): cheap extra resolution."""
        return 0 < step < log_spaced_early and (step & (step - 1)) == 0


def _read_meta(path: Path) -> dict:
    meta_path = path.with_suffix(".json")
    return json.loads(meta_path.read_text()) if meta_path.is_file() else {}


def _check_one_recording(directory: Path, infos: list[CheckpointInfo]) -> None:
    """A directory's checkpoints must come from one recording: never sweep two runs as one."""
    groups: dict[str | None, list[str]] = {}
    for info in infos:
        groups.setdefault(info.recording, []).append(info.path.name)
    if len(groups) > 1:
        parts = [f"{len(names)} {'without a recorder sidecar' if rec is None else f'of recording {rec}'} "
                 f"({names[0]} .. {names[-1]})" for rec, names in groups.items()]
        raise ValueError(f"{directory} mixes checkpoints of several runs: {'; '.join(parts)}. Sweeping them as one "
                         "training run would be meaningless. Move each run to its own directory, or pass the "
                         "checkpoint paths of one run as a list.")


def _natural_key(path: Path) -> list:
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", path.name)]


def resolve_checkpoints(checkpoints: CheckpointsType) -> list[CheckpointInfo]:
    """Turn a directory / list / iterable into ordered :class:`CheckpointInfo` with recorder metadata.

    A directory whose checkpoints come from several recordings (or from a recorder and elsewhere)
    raises instead of mixing two runs into one sweep; a list is taken as given.
    """
    if isinstance(checkpoints, (str, Path)):
        directory = Path(checkpoints)
        if not directory.is_dir():
            raise FileNotFoundError(f"Checkpoint directory {directory} does not exist.")
        paths = sorted((p for p in directory.iterdir() if p.suffix in CHECKPOINT_SUFFIXES), key=_natural_key)
        if not paths:
            others = sorted(p.name for p in directory.iterdir())[:5]
            raise ValueError(
                f"No checkpoint files ({', '.join(CHECKPOINT_SUFFIXES)}) in {directory}"
                + (f"; it holds {others}" if others else "; it is empty")
                + ". Record checkpoints with CheckpointRecorder or point at the right directory."
            )
    else:
        paths = [Path(p) for p in checkpoints]
    infos = []
    for index, path in enumerate(paths):
        if not path.is_file():
            raise FileNotFoundError(f"Checkpoint {path} does not exist.")
        meta = _read_meta(path)
        infos.append(CheckpointInfo(path, index, meta.get("epoch"), meta.get("step"), meta.get("train_loss"),
                                    meta.get("recording")))
    if isinstance(checkpoints, (str, Path)):
        _check_one_recording(Path(checkpoints), infos)
    if len(infos) < 2:
        raise ValueError(
            f"I2X needs at least 2 checkpoints to measure learning steps, got {len(infos)}. "
            "Save checkpoints at several points of training (e.g. every epoch)."
        )
    return infos


def default_load_func(model: nn.Module, path: str | Path) -> None:
    """Load a state dict (or a dict holding ``state_dict``/``model_state_dict``) strictly into ``model``.

    A checkpoint of another architecture raises a ValueError naming the first mismatched key.
    """
    device = next(model.parameters()).device
    state = torch.load(path, map_location=device, weights_only=True)
    if isinstance(state, dict):
        for key in ("state_dict", "model_state_dict"):
            if key in state and isinstance(state[key], dict):
                state = state[key]
                break
    own = model.state_dict()
    for key in own:
        if key not in state:
            raise ValueError(f"Checkpoint {path} does not fit the model: key {key!r} is missing. "
                             "Is it a checkpoint of another architecture?")
        if tuple(state[key].shape) != tuple(own[key].shape):
            raise ValueError(
                f"Checkpoint {path} does not fit the model: {key!r} has shape {tuple(state[key].shape)}, "
                f"the model expects {tuple(own[key].shape)}. Is it a checkpoint of another architecture?"
            )
    for key in state:
        if key not in own:
            raise ValueError(f"Checkpoint {path} does not fit the model: unexpected key {key!r}. "
                             "Is it a checkpoint of another architecture?")
    model.load_state_dict(state)


LoadFunc = Callable[[nn.Module, Union[str, Path]], None]


def checkpoint_lr(path: str | Path) -> float | None:
    """The learning rate recorded beside a checkpoint (``CheckpointRecorder.save(lr=...)``), else None."""
    meta = Path(path).with_suffix(".json")
    return json.loads(meta.read_text()).get("lr") if meta.is_file() else None


def optimizer_state_path(path: str | Path) -> Path | None:
    """Where the optimiser state saved with a checkpoint is, or None when none was saved."""
    state = Path(path).with_suffix(OPTIMIZER_SUFFIX)
    return state if state.is_file() else None
