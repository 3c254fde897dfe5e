"""Step 9 of I2X, second half: targeted fine-tuning schedules and the comparison table.

From the final checkpoint, each schedule fine-tunes a fresh copy for one epoch per stage:
``full``, ``curated``, ``full->full``, ``curated->curated``, the I2X-guided ``curated->full`` (one
epoch without the selected samples, then one on the full set) and its control ``random->full`` (the
same number of samples of the same classes removed at random, redrawn per seed). Which samples are
"curated" away is the selection variant (``variant``, V0–V4, :mod:`i2x_plugin.improve.selection`); how every
schedule fine-tunes (optimiser, learning rate, carried optimiser state, seeded epoch orders shared by
all schedules of a seed) is :mod:`i2x_plugin.improve.finetune`.

Evaluation on a held-out test split that must not share an image with the training set: accuracy,
the targeted pair's confusions (a→b plus b→a), the a-vs-b loss and margin on a ∪ b, mean ± sample std
over seeds, and paired comparisons of ``curated->full`` against ``random->full`` and ``full->full``
(per-seed differences; t-test, Wilcoxon and sign test from 5 seeds on). The verdict says plainly when
the I2X-guided schedule did not help.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from torch import nn

from ..atomic import write_text
from ..training.checkpoints import LoadFunc, default_load_func
from .curation import CurationSet, PairSelection, choose_target
from ..training.data import ImageDataset
from .finetune import (FineTuneConfig, ImproveError, ScheduleRun, check_disjoint, check_trainable, epoch_order,
                       evaluate, fine_tune, resolve_lr, scored_run)
from .stats import MIN_SEEDS, mean_std, paired
from ..runs.saved_run import SavedRunError, final_checkpoint, read_run_files
from .selection import DEFAULT_VARIANT, VARIANTS, Variant, pair_signals, random_control, select
from ..method.structure import StructuredExplanation

__all__ = ["SCHEDULES", "ImproveConfig", "ImproveError", "ImproveResult", "ScheduleRun", "epoch_order", "improve",
           "run_schedules", "check_disjoint", "evaluate"]

SCHEDULES: dict[str, tuple[str, ...]] = {
    "full": ("full",),
    "curated": ("curated",),
    "full->full": ("full", "full"),
    "curated->curated": ("curated", "curated"),
    "curated->full": ("curated", "full"),
    "random->full": ("random", "full"),
}
GUIDED, BASELINE, CONTROL = "curated->full", "full->full", "random->full"


class ImproveConfig(FineTuneConfig):
    """Settings of step 9: the pair, the selection variant and its cap, and the fine-tuning runs."""

    pair: tuple[int, int] | None = Field(None, description="Target this class pair; None = chosen by pair_selection.")
    pair_selection: PairSelection = Field(
        "most_confused", description="(D) 'most_confused': the pair with most probe confusions among pairs with "
        "uncertain prototypes; 'top_uncertain': the pair of the highest-scoring uncertain prototype.")
    variant: Variant = Field(DEFAULT_VARIANT, description="Which samples the curated epoch leaves out: "
                             + "; ".join(f"{k}: {v}" for k, v in VARIANTS.items()) + ".")
    cap: float = Field(0.1, gt=0, lt=1, description="V1–V4: at most this fraction of each class is removed.")
    common_ratio: float = Field(2.0, ge=1, description="V2: presence rates in a and b within this factor.")
    rare_fraction: float = Field(0.5, gt=0, le=1, description="V2: held by fewer than this share of all images.")
    num_prototypes: int = Field(1, ge=1, description="(D) V0: how many of the pair's top uncertain prototypes.")
    min_positions: int | Literal["auto"] = Field(
        1, description="V0: a sample 'contains' a prototype at ≥ this many map positions (paper: 1). 'auto' (D): the "
        "smallest count that removes at most max_removed_fraction of each targeted class (training data only).")
    max_removed_fraction: float = Field(0.5, gt=0, le=1, description="Bound used by min_positions='auto'.")
    seeds: int = Field(5, ge=2, description=f"Fine-tuning seeds (p-values from {MIN_SEEDS} on).")
    first_seed: int = Field(0, ge=0, description="Seeds are first_seed, first_seed+1, ...")
    schedules: tuple[str, ...] = Field(tuple(SCHEDULES), description="Schedules to run (names in SCHEDULES).")
    feature_batch_size: int = Field(256, ge=1, description="Batch size when assigning training samples to prototypes.")

    @field_validator("schedules")
    @classmethod
    def _known_schedules(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in value if s not in SCHEDULES]
        if unknown or not value:
            raise ValueError(f"unknown schedule(s) {unknown or value}; choose from {', '.join(SCHEDULES)}.")
        return tuple(dict.fromkeys(value))

    @field_validator("min_positions")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("min_positions must be ≥ 1 or 'auto'.")
        return value

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))

    @classmethod
    def from_file(cls, path: str | Path) -> "ImproveConfig":
        """Read a YAML (``.yaml``/``.yml``) or JSON file; unknown or mistyped fields raise pydantic's error."""
        path = Path(path)
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            return cls.model_validate(yaml.safe_load(text) or {})
        return cls.model_validate_json(text)


@dataclass(frozen=True)
class ImproveResult:
    """The comparison table: per-seed runs, mean ± std per schedule, the paired tests, and the verdict."""

    run_id: str
    dataset: str
    model_name: str
    config: ImproveConfig
    curation: dict[str, Any]
    start: ScheduleRun  # the final checkpoint itself, before fine-tuning (seed -1)
    runs: list[ScheduleRun]
    train_size: int
    test_size: int
    seconds: dict[str, float] = field(default_factory=dict)
    source_checkpoint: str = ""
    lr: float | None = None  # the learning rate every schedule used (config.lr resolved)

    @property
    def pair(self) -> tuple[int, int]:
        a, b = self.curation["pair"]
        return int(a), int(b)

    @property
    def pair_label(self) -> str:
        return "↔".join(self.curation["pair_names"])

    def of(self, schedule: str) -> list[ScheduleRun]:
        return sorted((r for r in self.runs if r.schedule == schedule), key=lambda r: r.seed)

    def table(self) -> dict[str, dict[str, Any]]:
        """Per schedule: accuracy (%), targeted confusions (and each direction), pair loss and margin, mean ± std."""
        out = {}
        for name in self.config.schedules:
            runs = self.of(name)
            if runs:
                row = {"accuracy_pct": mean_std([100 * r.accuracy for r in runs]),
                       "confusions": mean_std([r.confusions for r in runs]),
                       "a_to_b": mean_std([r.a_to_b for r in runs]), "b_to_a": mean_std([r.b_to_a for r in runs]),
                       "seeds": [r.seed for r in runs]}
                if all(r.pair_loss is not None for r in runs):
                    row["pair_loss"] = mean_std([r.pair_loss for r in runs])
                    row["pair_margin"] = mean_std([r.pair_margin for r in runs])
                out[name] = row
        return out

    def comparison(self, control: str = CONTROL) -> dict[str, Any] | None:
        """Paired curated->full vs ``control`` over seeds; None when either schedule was not run."""
        guided, base = {r.seed: r for r in self.of(GUIDED)}, {r.seed: r for r in self.of(control)}
        seeds = sorted(set(guided) & set(base))
        if not seeds:
            return None
        g, c = [guided[s] for s in seeds], [base[s] for s in seeds]
        out = {"control": control, "seeds": seeds,
               "accuracy_pct": paired([100 * r.accuracy for r in g], [100 * r.accuracy for r in c], True),
               "confusions": paired([r.confusions for r in g], [r.confusions for r in c], False)}
        if all(r.pair_loss is not None for r in g + c):
            out["pair_loss"] = paired([r.pair_loss for r in g], [r.pair_loss for r in c], False)
            out["pair_margin"] = paired([r.pair_margin for r in g], [r.pair_margin for r in c], True)
        return out

    def verdict(self) -> dict[str, Any]:
        """Plain-language outcome of curated->full vs random->full and vs full->full ('did not' when it did not)."""
        parts, out = [], {}
        for control in (CONTROL, BASELINE):
            comp = self.comparison(control)
            if comp is None:
                continue
            conf, acc = comp["confusions"], comp["accuracy_pct"]
            fewer = conf["mean_difference"] < 0
            tested = conf["significance"] == "tested"
            p = conf["t_test_p"]
            sig = (f"paired t-test p = {p:.3g}" if p is not None else "paired t-test n/a (all differences equal)"
                   ) if tested else conf["significance"]
            if tested:
                sig += "" if conf["wilcoxon_p"] is None else f", Wilcoxon p = {conf['wilcoxon_p']:.3g}"
            parts.append(
                f"vs {control.replace('->', '→')}: {'fewer' if fewer else 'not fewer'} {self.pair_label} confusions "
                f"({conf['treatment']['mean']:.1f} vs {conf['control']['mean']:.1f}, mean per-seed difference "
                f"{conf['mean_difference']:+.1f}, {conf['wins']} better / {conf['losses']} worse / {conf['ties']} tied "
                f"over {conf['n']} seeds; {sig}); accuracy {acc['treatment']['mean']:.2f}% vs "
                f"{acc['control']['mean']:.2f}% ({acc['mean_difference']:+.2f} points)")
            key = "random" if control == CONTROL else "full"
            out[f"fewer_than_{key}"] = bool(fewer)
            out[f"significant_vs_{key}"] = bool(tested and p is not None and p < 0.05)
            out[f"accuracy_vs_{key}_pt"] = acc["mean_difference"]
        if not parts:
            return {"helped": None, "text": f"Not compared: run {GUIDED} with {CONTROL} or {BASELINE}."}
        beat = [k for k in ("random", "full") if out.get(f"fewer_than_{k}") and out.get(f"significant_vs_{k}")]
        helped = (len(beat) == 2 and out["accuracy_vs_full_pt"] >= -0.1)
        arrow = (lambda name: name.replace("->", "→"))
        variant = self.curation.get("variant", "V0")
        head = (f"{arrow(GUIDED)} ({variant}) beat random removal and {arrow(BASELINE)} on the {self.pair_label} "
                "confusions" if helped else
                f"{arrow(GUIDED)} ({variant}) did NOT beat "
                + (" and ".join({"random": "random removal", "full": arrow(BASELINE)}[k] for k in ("random", "full")
                                if f"fewer_than_{k}" in out and k not in beat) or "the controls")
                + f" significantly on the {self.pair_label} confusions")
        return {"helped": bool(helped), **out, "text": head + ". " + "; ".join(parts) + "."}

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "dataset": self.dataset, "model": self.model_name,
            "source_checkpoint": self.source_checkpoint, "train_size": self.train_size, "test_size": self.test_size,
            "config": self.config.model_dump(mode="json"), "lr": self.lr, "curation": self.curation,
            "start": asdict(self.start), "table": self.table(), "comparison": self.comparison(),
            "comparison_full": self.comparison(BASELINE), "verdict": self.verdict(),
            "runs": [asdict(r) for r in self.runs], "seconds": self.seconds,
        }

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(self.to_dict(), indent=1))
        return path

    def rows(self) -> list[tuple[str, str, str]]:
        """(schedule, accuracy %, confusions) display rows, the final checkpoint first."""
        rows = [("start (final checkpoint)", f"{100 * self.start.accuracy:.2f}", f"{self.start.confusions}")]
        for name, row in self.table().items():
            acc, conf = row["accuracy_pct"], row["confusions"]
            epochs = len(SCHEDULES[name]) * self.config.epochs_per_stage
            rows.append((f"{name.replace('->', '→')} ({epochs} ep)",
                         f"{acc['mean']:.2f} ± {acc['std']:.2f}", f"{conf['mean']:.1f} ± {conf['std']:.2f}"))
        return rows

    def _caption(self) -> str:
        c = self.curation
        per_class = ", ".join(f"{name}: {v['removed']}/{v['of']}" for name, v in c.get("per_class", {}).items())
        rule = c.get("rule") or f"containing prototype(s) {c['prototypes']} at ≥ {c['min_positions']} position(s)"
        lr = "" if self.lr is None else f", lr {self.lr:.3g}, optimiser state {self.config.optimizer_state}"
        return (f"{self.dataset}, {self.model_name}: {self.config.seeds} seeds, test n = {self.test_size}{lr}. Curated "
                f"set ({c.get('variant', 'V0')}: {rule}) removes {c['removed']} of {c['train_size']} training samples "
                f"of classes {'/'.join(c['pair_names'])}" + (f" ({per_class})" if per_class else "")
                + "; random→full removes as many of each class at random.")

    def format_table(self) -> str:
        """The paper-style table as plain text, with the caption and the verdict."""
        head = ("schedule", "test accuracy %", f"{self.pair_label} confusions")
        rows = [head] + self.rows()
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [self._caption(), ""]
        for j, r in enumerate(rows):
            lines.append("  ".join(v.ljust(widths[i]) for i, v in enumerate(r)).rstrip())
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines + ["", self.verdict()["text"]])

    def to_markdown(self) -> str:
        lines = [f"**{self._caption()}**", "", f"| schedule | test accuracy % | {self.pair_label} confusions |",
                 "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in self.rows()]
        return "\n".join(lines + ["", self.verdict()["text"], ""])

    def to_html(self) -> str:
        """A small HTML fragment (table + verdict) the report can include."""
        esc = html.escape
        body = "".join(f"<tr><td>{esc(a)}</td><td>{esc(b)}</td><td>{esc(c)}</td></tr>" for a, b, c in self.rows())
        return (f'<div class="i2x-improve"><p>{esc(self._caption())}</p><table><thead><tr><th>schedule</th>'
                f"<th>test accuracy %</th><th>{esc(self.pair_label)} confusions</th></tr></thead><tbody>{body}"
                f"</tbody></table><p><strong>{esc(self.verdict()['text'])}</strong></p></div>\n")


def run_schedules(model: nn.Module, checkpoint: str | Path, train: ImageDataset, test: ImageDataset,
                  curation: CurationSet, config: ImproveConfig | None = None,
                  load_func: LoadFunc = default_load_func, device: str | torch.device | None = None,
                  save_dir: str | Path | None = None, progress: bool = False,
                  seeds: list[int] | None = None) -> tuple[list[ScheduleRun], ScheduleRun]:
    """Fine-tune from ``checkpoint`` with every schedule of ``config`` and seed; (runs, the unchanged start).

    ``curated`` epochs leave out ``curation``'s samples, ``random`` epochs :func:`random_control`'s (per seed).
    ``seeds`` overrides ``config.seed_list`` (e.g. one seed at a time, to cache results per seed).
    """
    config = config or ImproveConfig()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    if len(curation.labels) != len(train) or not np.array_equal(curation.labels, train.labels.numpy()):
        raise ImproveError("The curated set was made for another training set (sizes or labels differ); make it with "
                           "the selection (i2x_plugin.improve.selection.select) on this training set.")
    pair = curation.target.pair
    load_func(model, checkpoint)
    check_trainable(model)
    start = scored_run("start", -1, evaluate(model, test, pair, config.eval_batch_size, device))
    removals = {"curated": lambda seed: curation.keep_mask, "random": lambda seed: random_control(curation, seed).keep_mask}
    runs = fine_tune(model, checkpoint, train, test, pair, {name: SCHEDULES[name] for name in config.schedules},
                     removals, config, list(config.seed_list if seeds is None else seeds), load_func, device,
                     save_dir, progress)
    return runs, start


def improve(explanation: StructuredExplanation, model: nn.Module, train: ImageDataset, test: ImageDataset,
            config: ImproveConfig | None = None, checkpoint: str | Path | None = None,
            load_func: LoadFunc = default_load_func, device: str | torch.device | None = None,
            train_ids: np.ndarray | None = None, save_dir: str | Path | None = None,
            progress: bool = False) -> tuple[ImproveResult, CurationSet]:
    """The whole of step 9: target pair → the variant's curated set over ``train`` → schedules × seeds → table.

    Args:
        explanation: the structured explanation of the run (its fitted prototypes assign ``train``).
        model: the architecture of the run; ``checkpoint`` (default: the explanation's final one) is loaded.
        train, test: the run's training set and a held-out test split (checked disjoint by image content).
        train_ids: id of each training sample in its data set (written to the graph), default positions.
    """
    config = config or ImproveConfig()
    started = time.perf_counter()
    checkpoint = Path(checkpoint) if checkpoint is not None else Path(explanation.checkpoints[-1].path)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    check_disjoint(train, test)
    load_func(model.to(device), checkpoint)
    check_trainable(model)
    lr = resolve_lr(config, checkpoint)
    pair = config.pair or choose_target(explanation, None, config.num_prototypes, config.pair_selection).pair
    t0 = time.perf_counter()
    signals = pair_signals(explanation, model, train, (min(pair), max(pair)), config.variant in ("V1", "V2"),
                           config.feature_batch_size, device)
    curation = select(config.variant, explanation, signals, config.cap, config.min_positions, config.num_prototypes,
                      config.common_ratio, config.rare_fraction, explanation.class_names, train_ids,
                      config.max_removed_fraction)
    t1 = time.perf_counter()
    runs, start = run_schedules(model, checkpoint, train, test, curation, config, load_func, device, save_dir, progress)
    t2 = time.perf_counter()
    result = ImproveResult(
        run_id=explanation.run_id, dataset=explanation.dataset.removesuffix("-probe"), model_name=explanation.model_name,
        config=config, curation=curation.summary(), start=start, runs=runs, train_size=len(train),
        test_size=len(test), seconds={"curation": t1 - t0, "fine_tuning": t2 - t1, "total": t2 - started},
        source_checkpoint=str(checkpoint), lr=lr)
    return result, curation


# --- inputs from a saved run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ImproveInputs:
    """Everything :func:`improve` needs, loaded from a saved run (``i2x improve``)."""

    explanation: StructuredExplanation
    model: nn.Module
    checkpoint: Path
    train: ImageDataset
    test: ImageDataset
    train_ids: np.ndarray  # id of each training sample in its data set (same ids as the probe's sample_ids)
    store: str | None = None  # the run's graph store ("embedded", a URI, "none") when known
    store_dir: Path | None = None


def _explicit(err: SavedRunError) -> ImproveError:
    return ImproveError(f"{err} Or give the inputs explicitly: --checkpoint FILE, or --explanation, --checkpoint, "
                        "--dataset and --model.")


def inputs_from_run(run_dir: str | Path, checkpoint: str | Path | None = None) -> ImproveInputs:
    """Load a run written by ``i2x run``: config.yaml, split.npz, explanation/ and its checkpoints."""
    from ..training.data import load_dataset
    from ..training.models import build_model

    try:
        files = read_run_files(run_dir)
        final = Path(checkpoint) if checkpoint is not None else files.final_checkpoint()
    except SavedRunError as err:
        raise _explicit(err) from err
    config, explanation, split = files.config, files.explanation, files.split
    train_index, test_index = split["train"], split["test"]
    separate = bool(split["separate_test_source"]) if "separate_test_source" in split else False
    source = load_dataset(config.dataset, train=True, root=config.data_root)
    test_source = load_dataset(config.dataset, train=False, root=config.data_root) if separate else source
    train, test = source.subset(train_index, f"{explanation.dataset}-train"), test_source.subset(test_index,
                                                                                                 f"{explanation.dataset}-test")
    model = build_model(config.model, int(train.images.shape[1]), train.num_classes, int(train.images.shape[-1]))
    return ImproveInputs(explanation, model, final, train, test, np.asarray(train_index), config.store,
                         config.store_dir)


def inputs_from_files(explanation_dir: str | Path, checkpoint: str | Path | None, dataset: str, model_name: str,
                      test_fraction: float = 0.2, split_seed: int = 0) -> ImproveInputs:
    """Explicit inputs: an explanation directory, the final checkpoint, a data set and a model name.

    The training/test split is the main job's (``i2x run``'s stratified split with the same fraction and seed;
    data sets with their own test set use it).
    """
    from ..training.models import build_model
    from ..runs.run_config import RunConfig
    from ..runs.run_data import load_run_data

    explanation = StructuredExplanation.load(explanation_dir)
    data = load_run_data(RunConfig(dataset=dataset, model=model_name, test_fraction=test_fraction, seed=split_seed))
    model = build_model(model_name, int(data.train.images.shape[1]), data.train.num_classes,
                        int(data.train.images.shape[-1]))
    try:
        final = Path(checkpoint) if checkpoint is not None else final_checkpoint(explanation, None)
    except SavedRunError as err:
        raise _explicit(err) from err
    return ImproveInputs(explanation, model, final, data.train, data.test, np.asarray(data.train_index))
