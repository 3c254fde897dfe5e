"""``RunConfig``: everything ``i2x run`` does, as one validated, serialisable pydantic model (YAML/JSON
with :meth:`RunConfig.from_file`; an unknown or mistyped field is pydantic's error naming the field)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..method.config import I2XConfig
from ..training.data import DATASET_CHOICES
from ..training.models import MODEL_CHOICES
from ..training.shortcut import ShortcutConfig

STORE_NONE = "none"
_DATASET_HELP = (
    "digits (offline, 8×8), mnist-5k (offline, the default), fashion-mnist (offline once "
    "'apt-get install dataset-fashion-mnist' is done), mnist and cifar10 (torchvision download: need network), "
    "or the path of an ImageFolder directory"
)


class RunError(RuntimeError):
    """A run cannot start or go on; the message names the problem and the fix."""


class RunConfig(BaseModel):
    """Everything ``i2x run`` does, as one validated, serialisable config."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field("mnist-5k", description=f"Data set: {_DATASET_HELP}.")
    data_root: Path = Field(Path("~/.cache/i2x/data"), description="Download folder of torchvision data sets.")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="Held-out test split (stratified) when the data set "
                                 "has no test set of its own.")
    probe_size: int | None = Field(5000, ge=10, description="At most this many training samples are explained "
                                   "(stratified subset); None = the whole training split.")
    model: str = Field("small-cnn", description=f"Model: {', '.join(MODEL_CHOICES)} or 'module:factory'.")
    layer: str | None = Field(None, description="Spatial feature layer to explain (default: the model's own choice, "
                              "else its last Conv2d).")
    checkpoints: Path | None = Field(None, description="Explain these existing checkpoints instead of training.")
    epochs: int = Field(8, ge=1, description="Training epochs; a checkpoint is saved before training and after each.")
    lr: float = Field(3e-3, gt=0, description="Adam learning rate.")
    batch_size: int = Field(64, ge=1, description="Training batch size.")
    train_threads: int | None = Field(1, ge=1, description="(D) Intra-op torch threads while training on the CPU: a "
                                      "fixed count makes the weights the same whatever OMP_NUM_THREADS or the core "
                                      "count (a convolution's gradient sums change with the thread split); None = "
                                      "torch's own setting (faster on many cores, not reproducible across them).")
    adapter: Literal["captum", "gradcam"] = Field("captum", description="Saliency library.")
    method: str | None = Field(None, description="Attribution class (default LayerGradCam for captum, GradCAM "
                               "for gradcam).")
    store: str = Field("embedded", description="Graph store: 'embedded', a bolt:// or neo4j:// URI (auth from "
                       "NEO4J_* variables), 'env' (NEO4J_URI), or 'none' to skip the graph.")
    store_dir: Path | None = Field(None, description="Data directory of the embedded store (default: the user "
                                   "data dir or $I2X_STORE_DIR).")
    keep_store: bool = Field(False, description="Keep the embedded store running after the run; by default a "
                             "store this run started is stopped at its end.")
    device: str = Field("cpu", description="Torch device: cpu, cuda, cuda:N, mps.")
    out: Path = Field(Path("i2x-out"), description="Output folder; the run writes to out/<run_id>/.")
    run_id: str | None = Field(None, description="Run id (default: time stamp + random suffix).")
    seed: int = Field(0, description="Seeds the split, the probe subset, the initial weights and training "
                      "(--seed also sets i2x.seed).")
    report: bool = Field(True, description="Write the HTML report.")
    stability: bool = Field(True, description="Run the stability test (i2x.stability_kmeans_seeds and "
                            "i2x.stability_bootstraps re-fits of the prototypes) so every claim carries how often it "
                            "recurs; 'i2x stability --run-dir' runs it on a saved run.")
    dist_timeout: float = Field(1800.0, gt=0, description="Under torchrun: seconds a rank waits for the others "
                                "before failing (it must cover rank 0's training when no checkpoints are given).")
    shortcut: ShortcutConfig | None = Field(None, description="Plant a shortcut (issue 23): a fixed marker stamped "
                                            "into a share of class a's training images (training.shortcut; CLI "
                                            "--shortcut a=3,b=8,rate=1.0). None: the data as loaded.")
    i2x: I2XConfig = Field(default_factory=I2XConfig, description="The I2X method's settings.")

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        if value in DATASET_CHOICES or Path(value).expanduser().is_dir():
            return value
        raise ValueError(f"unknown dataset {value!r}. Choose one of: {_DATASET_HELP}.")

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value in MODEL_CHOICES or ":" in value:
            return value
        raise ValueError(f"unknown model {value!r}. Choose one of: {', '.join(MODEL_CHOICES)}, "
                         "or 'package.module:factory' for your own model.")

    @field_validator("run_id")
    @classmethod
    def _safe_run_id(cls, value: str | None) -> str | None:
        if value is not None and (not value or not all(ch.isalnum() or ch in "-_." for ch in value)):
            raise ValueError(f"run id {value!r} may only use letters, digits, '-', '_' and '.'.")
        return value

    @classmethod
    def from_file(cls, path: str | Path) -> "RunConfig":
        """Read a YAML (``.yaml``/``.yml``) or JSON file; unknown or mistyped fields raise pydantic's error."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as err:
            raise RunError(f"Cannot read config file {path} ({err.strerror}).") from err
        try:
            if path.suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text) or {}
            else:
                data = json.loads(text)
        except Exception as err:  # noqa: BLE001 - yaml.YAMLError / json.JSONDecodeError: say which file
            raise RunError(f"Config file {path} is not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'JSON'}"
                           f": {err}") from err
        if not isinstance(data, dict):
            raise RunError(f"Config file {path} must hold a mapping of RunConfig fields, not {type(data).__name__}.")
        return cls.model_validate(data)

    def updated(self, **changes: Any) -> "RunConfig":
        """A validated copy with ``changes`` applied (``None`` values are ignored); ``k`` goes to ``i2x.k``
        and ``seed`` to both seeds (split and training, and I2X's PCA/K-Means), as ``--k`` / ``--seed`` do."""
        data = self.model_dump()
        i2x = dict(data.pop("i2x"))
        for key, value in changes.items():
            if value is None:
                continue
            if key in ("k", "seed"):
                i2x[key] = value
            if key != "k":
                data[key] = value
        return RunConfig.model_validate({**data, "i2x": i2x})

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def format_validation_error(error: Any) -> str:
    """pydantic's errors as ``field: message`` lines (``i2x.k: Input should be ...``)."""
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(config)"
        message = str(item["msg"]).removeprefix("Value error, ")
        given = item.get("input")
        extra = f" (got {given!r})" if item["type"] != "extra_forbidden" and not isinstance(given, dict) else ""
        lines.append(f"  {where}: {message}{extra}")
    return "\n".join(lines)
