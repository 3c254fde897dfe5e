"""The validated configuration of an I2X run (pydantic): every default the paper leaves open is a field.

Defaults marked (D) in ``shared/spec/method.md`` are ours; the field docs say which are the paper's.
The config is serialisable to JSON/YAML and stored on the graph's Run node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class I2XConfig(BaseModel):
    """Settings of the I2X sweep and of the structured explanation built from it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Step 2: abstract prototypes.
    k: int = Field(32, ge=2, le=32_768, description="Number of prototypes K (paper: 32 on MNIST, 128 on CIFAR-10); "
                   "at most 32,768, as assignments are stored as int16.")
    pca_components: int = Field(32, ge=1, description="(D) PCA keeps min(d, this) components before K-Means.")
    pca_max_rows: int = Field(200_000, ge=1000, description="(D) PCA and K-Means are fitted on at most this many random rows.")
    minibatch_kmeans_rows: int = Field(50_000, ge=1, description="Use MiniBatchKMeans when there are more rows than this.")
    # Step 3: saliency.
    target: Literal["label", "prediction"] = Field("label", description="(D) GradCAM target: the true label.")
    normalization: Literal["minmax", "max", "none"] = Field("minmax", description="(D) Per-image saliency normalisation.")
    batch_size: int = Field(256, ge=1, description="Probe images per saliency batch.")
    # Step 6: learning-pattern groups.
    min_cluster_size: int = Field(5, ge=2, description="(D) HDBSCAN min_cluster_size floor.")
    min_cluster_fraction: float = Field(0.01, ge=0, le=1, description="(D) ...or this fraction of the class's samples, if larger.")
    # Step 7: ridge.
    ridge_alpha: float = Field(1.0, gt=0, description="(D) Ridge λ; both sides centred (intercept fitted).")
    # Step 8: structure.
    top_prototypes: int = Field(5, ge=1, description="(D) How many top prototypes count as a class's (or group's) drivers.")
    shared_fraction: float = Field(
        0.75, gt=0, le=1,
        description="(D) Shared: positive and in the top prototypes of at least this fraction of the class's "
        "non-noise groups over all steps (the paper says 'every' group: 1.0). Specialised: in some groups only.",
    )
    noise_floor_quantile: float = Field(
        0.5, ge=0, lt=1, description="(D) |β| noise floor = this quantile of |β| over all pooled pair fits."
    )
    separation_confusion_fraction: float = Field(
        0.02, ge=0, le=1,
        description="(D) A pair is separated once its confusion count stays at or below this fraction of the "
        "pair's probe samples (at least 1) at every later checkpoint.",
    )
    uncertain_min_flips: int = Field(2, ge=1, description="(D) Sign flips of β[k,a]−β[k,b] that make k uncertain.")
    confused_pairs: int = Field(5, ge=1, description="(D) How many most-confused pairs (final checkpoint) to examine.")
    exemplars: int = Field(8, ge=1, description="Highest-intensity samples kept per prototype.")
    seed: int = Field(0, description="Seeds PCA/K-Means sampling and everything random in the run.")

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_file(cls, path: str | Path) -> "I2XConfig":
        """Read a JSON or YAML file; unknown or mistyped fields raise pydantic's ValidationError."""
        path = Path(path)
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
        return cls.model_validate(data)
