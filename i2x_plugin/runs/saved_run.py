"""A finished ``i2x run`` read back from its output directory: config, explanation, final model, probe set.

The checks of a saved run (``i2x stability``) need the model with its final weights and the very probe
set the run explained; both are rebuilt from ``config.yaml``, ``split.npz`` and the checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from ..training.checkpoints import default_load_func
from ..training.data import ImageDataset, load_dataset
from ..method.structure import StructuredExplanation


class SavedRunError(ValueError):
    """The directory is not a complete ``i2x run`` output, or its checkpoints are gone."""


@dataclass(frozen=True)
class RunFiles:
    """What a finished run wrote: its config, its explanation and its split (``train``, ``test``, ``probe``
    indices into the data set(s); ``separate_test_source``)."""

    directory: Path
    config: object  # RunConfig
    explanation: StructuredExplanation
    split: dict[str, np.ndarray]

    def final_checkpoint(self) -> Path:
        """The run's final checkpoint, also found beside the run when its directory was moved."""
        given = getattr(self.config, "checkpoints", None)
        return final_checkpoint(self.explanation, Path(given) if given is not None else self.directory / "checkpoints")


def final_checkpoint(explanation: StructuredExplanation, fallback_dir: Path | None) -> Path:
    """``explanation``'s final checkpoint, or the file of the same name in ``fallback_dir``."""
    path = Path(explanation.checkpoints[-1].path)
    if path.is_file():
        return path
    if fallback_dir is not None and (fallback_dir / path.name).is_file():
        return fallback_dir / path.name  # the run directory was moved: look beside it
    raise SavedRunError(f"The final checkpoint {path} of run {explanation.run_id!r} does not exist.")


def read_run_files(run_dir: str | Path) -> RunFiles:
    """Read ``run_dir`` (``OUT/RUN_ID`` of a finished ``i2x run``): config.yaml, split.npz, explanation/."""
    from .run_config import RunConfig

    run_dir = Path(run_dir)
    missing = [name for name in ("config.yaml", "split.npz", "explanation/explanation.json")
               if not (run_dir / name).exists()]
    if missing:
        raise SavedRunError(f"{run_dir} is not a complete 'i2x run' output directory (missing {', '.join(missing)}). "
                            "Point --run-dir at OUT/RUN_ID of a finished run.")
    with np.load(run_dir / "split.npz") as split:
        arrays = {name: split[name] for name in split.files}
    return RunFiles(run_dir, RunConfig.from_file(run_dir / "config.yaml"),
                    StructuredExplanation.load(run_dir / "explanation"), arrays)


@dataclass(frozen=True)
class SavedRun:
    directory: Path
    config: object  # RunConfig
    explanation: StructuredExplanation
    model: nn.Module  # with the final checkpoint loaded
    probe: ImageDataset


def load_saved_run(run_dir: str | Path) -> SavedRun:
    """Read ``run_dir`` with the final model and the probe set the run explained (for its checks)."""
    from ..training.models import build_model

    files = read_run_files(run_dir)
    config, explanation = files.config, files.explanation
    source = load_dataset(config.dataset, train=True, root=config.data_root)
    probe = source.subset(files.split["probe"], explanation.dataset)
    if getattr(config, "shortcut", None) is not None:  # the run explained its images with the planted marker
        from ..training.shortcut import stamp

        images = stamp(probe.images, files.split["probe_marked"], config.shortcut.mask(*probe.images.shape[-2:]),
                       config.shortcut.value)
        probe = ImageDataset(probe.name, images, probe.labels, probe.class_names)
    model = build_model(config.model, int(probe.images.shape[1]), len(explanation.class_names),
                        int(probe.images.shape[-1]))
    try:
        default_load_func(model, files.final_checkpoint())
    except SavedRunError as err:
        raise SavedRunError(f"{err} The checks need the final model.") from err
    return SavedRun(files.directory, config, explanation, model.eval(), probe)
