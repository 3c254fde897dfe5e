"""The study plan of bench/improve.py: the YAML block of a plan file (bench/improve_plan.md), validated.

The plan file is the pre-registration *and* the configuration: the runner reads its first fenced
```yaml block, records the file's SHA-256 and the git commit that last changed it, and every cached
piece carries a fingerprint of the setting it was made for.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from i2x_plugin import I2XConfig
from i2x_plugin.improve.stats import MIN_SEEDS
from i2x_plugin.improve.selection import GUIDED_VARIANTS, VARIANTS
from i2x_plugin.method.structure import UncertainPrototype

REPO = Path(__file__).resolve().parent.parent
COMMITTED_PLAN = REPO / "bench" / "improve_plan.md"  # the only plan allowed to write bench/results/improve.json


class StudyError(RuntimeError):
    """The study cannot go on as planned; the message names the problem and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseTraining(_Strict):
    epochs: int = Field(ge=1)
    lr: float = Field(gt=0)
    final_lr: float = Field(gt=0, description="cosine decay per batch from lr to final_lr")
    batch_size: int = Field(64, ge=1)


class Gate(_Strict):
    seeds: int = Field(ge=2)
    max_std_pt: float = Field(gt=0)


class Setting(_Strict):
    name: str
    role: Literal["primary", "secondary"]
    dataset: str
    model: str
    pair: tuple[int, int] | None = None  # None: chosen per split on validation
    test_fraction: float | None = Field(None, gt=0, lt=1, description="None: the data set's own test split")
    validation_fraction: float = Field(gt=0, lt=1)
    split_seeds: list[int] = Field(min_length=1)
    base: BaseTraining
    probe_size: int | None = Field(None, ge=10)
    k: int = Field(ge=2)
    seeds: int = Field(ge=1)
    gate: Gate

    @property
    def key(self) -> str:
        return self.name.replace("/", "__")


class FineTuning(_Strict):
    optimizer_state: Literal["carry", "fresh"] = "carry"
    lr_multipliers: list[float] = Field(min_length=1)
    batch_size: int = Field(64, ge=1)


class Sensitivity(_Strict):
    optimizer_state: Literal["carry", "fresh"] = "fresh"
    lr: float = Field(gt=0)
    seeds: int = Field(ge=1)
    variants: list[str]
    settings: list[str]


class StudyPlan(_Strict):
    plan: str
    version: int
    results: str
    cache: str
    require_calibrated_explanation: bool = True
    variants: list[str] = Field(min_length=1)
    guided_variants: list[str]
    cap: float = Field(gt=0, lt=1)
    common_ratio: float = Field(ge=1)
    rare_fraction: float = Field(gt=0, le=1)
    alpha: float = Field(gt=0, lt=1)
    max_accuracy_drop_pt: float = Field(ge=0)
    min_seeds: int = Field(MIN_SEEDS, ge=MIN_SEEDS)
    fine_tuning: FineTuning
    sensitivity: Sensitivity | None = None
    settings: list[Setting] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> "StudyPlan":
        unknown = [v for v in self.variants + self.guided_variants if v not in VARIANTS]
        if unknown:
            raise ValueError(f"unknown variant(s) {unknown}; the variants are {', '.join(VARIANTS)}")
        if not set(self.guided_variants) <= set(GUIDED_VARIANTS) & set(self.variants):
            raise ValueError(f"guided_variants must be among the I2X-guided variants {GUIDED_VARIANTS} that are run")
        names = [s.name for s in self.settings]
        if len(set(names)) != len(names) or [s.role for s in self.settings].count("primary") != 1:
            raise ValueError("settings need unique names and exactly one primary setting")
        for s in self.settings:  # a comparison that claims significance needs enough paired seeds
            if s.seeds < self.min_seeds:
                raise ValueError(f"setting {s.name!r} has {s.seeds} fine-tuning seeds; a comparison that claims "
                                 f"significance needs ≥ {self.min_seeds}. Raise seeds.")
            if s.gate.seeds > s.seeds:
                raise ValueError(f"setting {s.name!r}: gate.seeds ({s.gate.seeds}) > seeds ({s.seeds})")
        if self.sensitivity is not None:
            if self.sensitivity.seeds < self.min_seeds:
                raise ValueError(f"the sensitivity arm has {self.sensitivity.seeds} seeds; its comparison needs "
                                 f"≥ {self.min_seeds}")
            missing = [n for n in self.sensitivity.settings if n not in names]
            if missing or not set(self.sensitivity.variants) <= set(self.variants):
                raise ValueError(f"the sensitivity arm names unknown settings {missing} or variants not run")
        return self

    @property
    def primary(self) -> Setting:
        return next(s for s in self.settings if s.role == "primary")

    def arms(self, setting: Setting) -> list[tuple[str, int, list[str]]]:
        """(arm, seeds, variants) of a setting: the main arm, and the sensitivity arm where planned."""
        arms = [("main", setting.seeds, self.variants)]
        if self.sensitivity is not None and setting.name in self.sensitivity.settings:
            arms.append(("sensitivity", self.sensitivity.seeds, self.sensitivity.variants))
        return arms

    def setting(self, name: str) -> Setting:
        return next(s for s in self.settings if s.name == name)

    def fingerprint(self, setting: Setting) -> dict:
        """What a setting's cache depends on: the plan's shared fields, the setting, torch and I2X's definitions."""
        shared = self.model_dump(mode="json", exclude={"settings", "results", "cache", "plan"})
        return {"plan": shared, "setting": setting.model_dump(mode="json"), "torch": torch.__version__,
                "i2x_config": I2XConfig().model_dump(mode="json"),
                "uncertain_fields": [f.name for f in dataclasses.fields(UncertainPrototype)]}


def calibrated_uncertain() -> bool:
    """Whether this version's uncertain prototypes carry the null test's q-value (issue 9)."""
    return any(f.name in ("q", "q_value") for f in dataclasses.fields(UncertainPrototype))


def read_plan(path: str | Path) -> tuple[StudyPlan, dict]:
    """The plan in ``path`` (its first ```yaml block) and where it came from (path, SHA-256, git commit)."""
    import yaml

    path = Path(path).resolve()
    if not path.is_file():
        raise StudyError(f"Plan file {path} does not exist; the pre-registered plan is {COMMITTED_PLAN}.")
    text = path.read_text()
    block = re.search(r"^```yaml\n(.*?)^```", text, re.S | re.M)
    if block is None:
        raise StudyError(f"{path} holds no ```yaml block with the study's settings (see {COMMITTED_PLAN}).")
    plan = StudyPlan.model_validate(yaml.safe_load(block.group(1)))
    commit = subprocess.run(["git", "log", "-1", "--format=%H", "--", str(path)], cwd=path.parent,
                            capture_output=True, text=True).stdout.strip() or None
    dirty = subprocess.run(["git", "status", "--porcelain", "--", str(path)], cwd=path.parent,
                           capture_output=True, text=True).stdout.strip()
    origin = {"path": str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path),
              "sha256": hashlib.sha256(text.encode()).hexdigest(), "commit": commit,
              "committed_unchanged": bool(commit) and not dirty, "version": plan.version}
    return plan, origin


def resolve(path: str) -> Path:
    """A plan path (results, cache) relative to the repository, or absolute."""
    p = Path(path)
    return p if p.is_absolute() else REPO / p


def check_results_path(plan_path: Path, results: Path) -> None:
    """Only the committed plan may write bench/results/improve.json (smoke plans write elsewhere)."""
    official = (REPO / "bench" / "results").resolve()
    if results.resolve().is_relative_to(official) and plan_path.resolve() != COMMITTED_PLAN:
        raise StudyError(f"Plan {plan_path} would write {results}: only {COMMITTED_PLAN.relative_to(REPO)} writes "
                         "under bench/results/. Point the plan's results and cache elsewhere (smoke runs).")


def dumps(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=False)
