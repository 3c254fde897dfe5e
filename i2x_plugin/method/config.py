"""The validated configuration of an I2X run (pydantic): every default the paper leaves open is a field.

Defaults marked (D) in ``shared/spec/method.md`` are ours; the field docs say which are the paper's.
The config is serialisable to JSON/YAML and stored on the graph's Run node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class I2XConfig(BaseModel):
    """Settings of the I2X sweep and of the structured explanation built from it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Step 2: abstract prototypes.
    k: int = Field(32, ge=2, le=32_768, description="Number of prototypes K (paper: 32 on MNIST, 128 on CIFAR-10); "
                   "at most 32,768, as assignments are stored as int16.")
    pca_components: int = Field(32, ge=1, description="(D) PCA keeps min(d, this) components before K-Means.")
    pca_max_rows: int = Field(200_000, ge=1000, description="(D) PCA and K-Means are fitted on at most this many random "
                              "rows (every row is then assigned). 100,000 kept the default run's claims as stable "
                              "at 0.41× the K-Means time but lost a planted class's shape (bench/stability_plan.md, "
                              "plan 2).")
    minibatch_kmeans_rows: int = Field(
        200_000, ge=1, description="(D) Use MiniBatchKMeans instead of full-batch K-Means when there are more rows "
        "than this. Full batch on the default run's 196k rows: two seeds' partitions agree on 81–89 % of the cells "
        "(MiniBatchKMeans: 68–73 %), so the claims recur more (bench/results/stability.md).")
    kmeans_inits: int = Field(3, ge=1, description="(D) K-Means initialisations; the fit with the least inertia is kept.")
    # Step 3: saliency.
    target: Literal["label", "prediction"] = Field("label", description="(D) GradCAM target: the true label.")
    normalization: Literal["minmax", "max", "sum", "none"] = Field(
        "minmax", description="(D) Per-image saliency normalisation, as the paper. Measured alternatives (default "
        "run and a SmallCNN trained on pure noise): 'none' (raw GradCAM) makes the drivers faithful (10/10 classes "
        "beat matched random sets) but only through the maps' overall magnitude, which couples every sample's "
        "saliency change to its confidence change whatever the model learnt: the noise model got 21–23 drivers "
        "(min–max: 0–4). 'sum' (share of the map's total) is honest on noise but faithful for 1/10. docs/method.md.")
    batch_size: int = Field(256, ge=1, description="Probe images per saliency batch.")
    # Step 6: learning-pattern groups.
    min_cluster_size: int = Field(10, ge=2, description="(D) HDBSCAN min_cluster_size floor; 10 = min_scope_samples, so "
                                  "every group is large enough to be tested.")
    min_cluster_fraction: float = Field(0.01, ge=0, le=1, description="(D) ...or this fraction of the class's samples, if larger.")
    # Step 7: ridge.
    ridge_alpha: float = Field(
        0.1, gt=0,
        description="(D) Ridge penalty relative to the fit's size: λ = ridge_alpha × n on ΔP standardised per step, "
        "so it means the same in every scope (chosen on the default run: docs/method.md).")
    # Step 8: structure, each claim tested against the permutation null (validation.md).
    fdr_q: float = Field(0.05, description="(D) False discovery rate: a claim is shown when its Benjamini–Hochberg "
                         "q-value over the claims of its kind in the run is at most this.")
    n_permutations: int = Field(200, description="(D) Monte Carlo permutations per stratum for the per-step "
                                "significance inside sequence statistics (uncertain prototypes); at least 20.")
    step_alpha: float = Field(0.05, gt=0, lt=1, description="(D) Two-sided level at which one step of a sequence "
                              "counts as significant (uncertain flips; a driver's first step: one-sided at step_alpha / steps).")
    min_scope_samples: int = Field(10, ge=3, description="(D) A fit scope (class, group) with fewer samples is not "
                                   "tested: it is listed in StructuredExplanation.skipped, never given silent zeros.")
    min_separator_steps: int = Field(2, ge=1, description="(D) A separator must hold over at least this many steps, "
                                     "from its onset to the last step.")
    null_draws: int = Field(5, ge=0, description="(D) Shuffles of whole ΔP trajectories within class on which "
                            "the whole procedure is rerun to report how many claims noise makes (0: skip).")
    top_prototypes: int = Field(5, ge=1, description="(D) How many significant prototypes a group summary lists.")
    shared_fraction: float = Field(
        0.75, gt=0, le=1,
        description="(D) Shared: significantly positive in at least this fraction of the class's tested learning-"
        "pattern groups over all steps (the paper says 'every' group: 1.0). Specialised: in some groups only.",
    )
    separation_confusion_fraction: float = Field(
        0.02, ge=0, le=1,
        description="(D) A pair is separated once its confusion count stays at or below this fraction of the "
        "pair's probe samples (at least 1) at every later checkpoint.",
    )
    confused_pairs: int = Field(5, ge=1, description="(D) How many most-confused pairs (final checkpoint) are "
                                "tested for uncertain prototypes.")
    exemplars: int = Field(8, ge=1, description="Highest-intensity samples kept per prototype.")
    keep_maps: bool = Field(True, description="Keep every checkpoint's saliency maps at the layer resolution "
                            "(T×N×h×w float32, 7 MB on the default run) in the explanation: the stability test "
                            "re-reads them for other prototypes.")
    # Faithfulness (validation.md §2): deletion tests on the final model.
    faithfulness: bool = Field(True, description="Test every claim group by deleting its prototypes at the explained "
                               "layer of the final model (StructuredExplanation.faithfulness_results).")
    deletion: Literal["zero", "mean"] = Field(
        "zero", description="(D) How deleted cells are filled: 0 ('nothing detected' after a ReLU) or the class's "
        "mean feature vector (removes the cells' information but not their average activation).")
    faithfulness_random_sets: int = Field(50, ge=20, description="(D) Random prototype sets, matched in count and "
                                          "covered area, each claim group is compared with.")
    faithfulness_samples: int = Field(200, ge=10, description="(D) At most this many samples (a seeded subset) per "
                                      "class or pair in the deletion tests.")
    # Reliance (issue 21): what the final model relies on, tested on held-out samples, and when it formed.
    reliance: bool = Field(True, description="Measure the final model's reliance of each class on each prototype "
                           "(deletion at the explained layer, cross-fitted; StructuredExplanation.reliance). "
                           "i2x run runs it after the stability test; checks.run_reliance runs it on a saved run.")
    reliance_held_out: float = Field(0.5, description="(D) Share of each class's probe samples held out: effects are "
                                     "ranked on the rest and tested on these. Strictly between 0 and 1.")
    reliance_random_draws: int = Field(8, ge=1, description="(D) Random cell deletions per sample (as many cells as "
                                       "the prototype covers in that sample) averaged into each edge's null.")
    reliance_min_effect: float = Field(
        0.01, ge=0, le=1, description="(D) A reliance edge is claimed when its q ≤ fdr_q and its effect beats the "
        "random cells' by at least this much confidence. Calibrated on SmallCNNs trained on shuffled digit labels "
        "(5 seeds): their edges with q ≤ 0.05 beat the random cells by at most 0.0003; real edges by 0.02–0.7.")
    reliance_formation: bool = Field(True, description="Date each significant reliance edge: its effect at every "
                                     "checkpoint and the first from which it stays significant at fdr_q / T.")
    pair_reliance: bool = Field(True, description="With reliance: the pair relations of the final model (margin "
                                "reliance of every pair with separators or among the confused_pairs most confused, "
                                "and the confusers of the most confused pairs; checks/pair_reliance.py).")
    pair_reliance_min_effect: float = Field(
        0.01, ge=0, le=1, description="(D) A margin-reliance or confuser edge is claimed when its q ≤ fdr_q and its "
        "effect beats the random cells' by at least this much confidence (calibrated like reliance_min_effect on "
        "SmallCNNs trained on shuffled digit labels; see checks/pair_reliance.py).")
    # Stability (validation.md §3): the claims re-derived with other prototypes.
    stability_kmeans_seeds: int = Field(2, ge=0, description="(D) Re-fits of the prototypes with other K-Means seeds "
                                        "in the stability test.")
    stability_bootstraps: int = Field(2, ge=0, description="(D) Re-fits on bootstrap resamples of the probe set in "
                                      "the stability test.")
    stability_selection: float | None = Field(
        0.5, description="(D) Stability selection: a driver, separator or uncertain claim is reported only if it "
        "recurs in at least this share of the stability test's re-fits (its recurrence is its evidence); None "
        "reports every claim that passed its null test. With 0.5, two runs that differ only in the prototype seed "
        "agree on drivers with Jaccard 0.71 instead of 0.64 (bench/results/stability.md).")
    seed: int = Field(0, description="Seeds PCA/K-Means sampling and everything random in the run.")

    @field_validator("n_permutations")
    @classmethod
    def _enough_permutations(cls, value: int) -> int:
        if value < 20:
            raise ValueError(f"n_permutations={value} is too few: with fewer than 20 permutations no step can be "
                             "significant at 5 % and p-values are meaningless. Use 200 (the default) or more.")
        return value

    @field_validator("fdr_q")
    @classmethod
    def _q_in_unit_interval(cls, value: float) -> float:
        if not 0 < value < 1:
            raise ValueError(f"fdr_q={value} must lie strictly between 0 and 1 (a false discovery rate, e.g. 0.05).")
        return value

    @field_validator("reliance_held_out")
    @classmethod
    def _held_out_in_open_interval(cls, value: float) -> float:
        if not 0 < value < 1:
            raise ValueError(f"reliance_held_out={value} must lie strictly between 0 and 1: the share of each class's "
                             "samples held out to test the reliance edges on (e.g. 0.5); the rest ranks them.")
        return value

    @field_validator("stability_selection")
    @classmethod
    def _share_in_unit_interval(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value <= 1:
            raise ValueError(f"stability_selection={value} must lie in (0, 1]: the share of the stability test's "
                             "re-fits a claim must recur in (e.g. 0.5), or null to report every claim.")
        return value

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
