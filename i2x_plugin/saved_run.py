"""A finished ``i2x run`` read back from its output directory: config, explanation, final model, probe set.

The checks of a saved run (``i2x stability``) need the model with its final weights and the very probe
set the run explained; both are rebuilt from ``config.yaml``, ``split.npz`` and the checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from .checkpoints import default_load_func
from .data import ImageDataset, load_dataset
from .structure import StructuredExplanation


class SavedRunError(ValueError):
    """The directory is not a complete ``i2x run`` output, or its checkpoints are gone."""


@dataclass(frozen=True)
class SavedRun:
    directory: Path
    config: object  # RunConfig
    explanation: StructuredExplanation
    model: nn.Module  # with the final checkpoint loaded
    probe: ImageDataset


def load_saved_run(run_dir: str | Path) -> SavedRun:
    """Read ``run_dir`` (``OUT/RUN_ID`` of a finished ``i2x run``)."""
    from .models import build_model
    from .run_config import RunConfig

    run_dir = Path(run_dir)
    missing = [name for name in ("config.yaml", "split.npz", "explanation/explanation.json")
               if not (run_dir / name).exists()]
    if missing:
        raise SavedRunError(f"{run_dir} is not a complete 'i2x run' output directory (missing {', '.join(missing)}). "
                            "Point --run-dir at OUT/RUN_ID of a finished run.")
    config = RunConfig.from_file(run_dir / "config.yaml")
    explanation = StructuredExplanation.load(run_dir / "explanation")
    with np.load(run_dir / "split.npz") as split:
        probe_index = split["probe"]
    source = load_dataset(config.dataset, train=True, root=config.data_root)
    probe = source.subset(probe_index, explanation.dataset)
    model = build_model(config.model, int(probe.images.shape[1]), len(explanation.class_names),
                        int(probe.images.shape[-1]))
    final = Path(explanation.checkpoints[-1].path)
    if not final.is_file() and (run_dir / "checkpoints" / final.name).is_file():
        final = run_dir / "checkpoints" / final.name  # the run directory was moved
    if not final.is_file():
        raise SavedRunError(f"The final checkpoint {final} of run {explanation.run_id!r} does not exist; the checks "
                            "need the final model.")
    default_load_func(model, final)
    return SavedRun(run_dir, config, explanation, model.eval(), probe)
