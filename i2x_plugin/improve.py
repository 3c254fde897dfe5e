"""Step 9 of I2X, second half: targeted fine-tuning schedules and the paper's comparison table.

From the final checkpoint, each schedule fine-tunes a fresh copy for one epoch per stage:
``full``, ``curated``, ``full->full``, ``curated->curated`` and the I2X-guided ``curated->full``
(one epoch on the curated set, then one on the full set). Every schedule uses the same optimiser,
learning rate and batch-order rule, and a seed controls everything:

* epoch ``e`` of every schedule visits the training set in one seeded permutation (``seed``, ``e``);
  a curated epoch is that same permutation with the removed samples skipped;
* the optimiser is built fresh at the start of each schedule and kept across its stages;
* torch's RNG is seeded from (``seed``, ``e``) for every epoch (dropout, augmentation), locally: the caller's
  global RNG state is restored afterwards.

So ``full->full`` and ``curated->full`` see the very same second epoch, and a schedule that shares a
prefix with another (``full`` is the first stage of ``full->full``) reuses that prefix's model and
optimiser state instead of recomputing it (identical by construction).

Evaluation on a held-out test split that must not share an image with the training set: accuracy and
the targeted pair's confusions (a→b plus b→a), mean ± sample std over seeds, and a paired comparison
of ``curated->full`` against ``full->full`` (per-seed differences, paired t-test, sign test).
The verdict says plainly when the I2X-guided schedule did not help.
"""

from __future__ import annotations

import copy
import hashlib
import html
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from .atomic import atomic_open, write_text
from .checkpoints import LoadFunc, default_load_func
from .curation import (CurationSet, PairSelection, auto_min_positions, choose_target, curate,
                       training_assignments)
from .data import ImageDataset
from .structure import StructuredExplanation
from .training import seeded, train_epoch

SCHEDULES: dict[str, tuple[str, ...]] = {
    "full": ("full",),
    "curated": ("curated",),
    "full->full": ("full", "full"),
    "curated->curated": ("curated", "curated"),
    "curated->full": ("curated", "full"),
}
GUIDED, BASELINE = "curated->full", "full->full"


class ImproveError(ValueError):
    """Fine-tuning cannot run as asked; the message names the problem and the fix."""


class ImproveConfig(BaseModel):
    """Settings of step 9: which pair and prototypes, the curated-set threshold, and the fine-tuning runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pair: tuple[int, int] | None = Field(None, description="Target this class pair; None = chosen by pair_selection.")
    pair_selection: PairSelection = Field(
        "most_confused", description="(D) 'most_confused': the pair with most probe confusions among pairs with "
        "uncertain prototypes; 'top_uncertain': the pair of the highest-scoring uncertain prototype.")
    num_prototypes: int = Field(1, ge=1, description="(D) How many of the pair's top uncertain prototypes to use.")
    min_positions: int | Literal["auto"] = Field(
        1, description="A sample 'contains' a prototype at ≥ this many map positions (paper: 1). 'auto' (D): the "
        "smallest count that removes at most max_removed_fraction of each targeted class (training data only).")
    max_removed_fraction: float = Field(0.5, gt=0, le=1, description="Bound used by min_positions='auto'.")
    seeds: int = Field(5, ge=2, description="Fine-tuning seeds (paper: mean ± std over ≥ 5).")
    first_seed: int = Field(0, ge=0, description="Seeds are first_seed, first_seed+1, ...")
    schedules: tuple[str, ...] = Field(tuple(SCHEDULES), description="Schedules to run (names in SCHEDULES).")
    epochs_per_stage: int = Field(1, ge=1, description="Epochs per stage (paper: 1).")
    optimizer: Literal["adam", "sgd"] = Field("adam", description="(D) Optimiser, built fresh per schedule.")
    lr: float = Field(1e-3, gt=0, description="(D) Learning rate of every schedule.")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    weight_decay: float = Field(0.0, ge=0, description="Weight decay of every schedule.")
    batch_size: int = Field(64, ge=1, description="Training batch size of every schedule.")
    eval_batch_size: int = Field(512, ge=1, description="Batch size of the test evaluation.")
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
class ScheduleRun:
    """One fine-tuned model: its schedule, seed and test scores."""

    schedule: str
    seed: int
    accuracy: float  # test accuracy in [0, 1]
    a_to_b: int
    b_to_a: int
    checkpoint: str | None = None  # saved state_dict, when a save directory was given

    @property
    def confusions(self) -> int:
        return self.a_to_b + self.b_to_a


@dataclass(frozen=True)
class ImproveResult:
    """The comparison table: per-seed runs, mean ± std per schedule, the paired test, and the verdict."""

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
        """Per schedule: accuracy (%) and targeted confusions, mean ± sample std (ddof=1) over seeds."""
        out = {}
        for name in self.config.schedules:
            runs = self.of(name)
            if runs:
                out[name] = {"accuracy_pct": mean_std([100 * r.accuracy for r in runs]),
                             "confusions": mean_std([r.confusions for r in runs]), "seeds": [r.seed for r in runs]}
        return out

    def comparison(self) -> dict[str, Any] | None:
        """Paired curated->full vs full->full over seeds; None when either schedule was not run."""
        guided, base = {r.seed: r for r in self.of(GUIDED)}, {r.seed: r for r in self.of(BASELINE)}
        seeds = sorted(set(guided) & set(base))
        if not seeds:
            return None
        return {
            "seeds": seeds,
            "accuracy_pct": paired([100 * guided[s].accuracy for s in seeds], [100 * base[s].accuracy for s in seeds],
                                   higher_is_better=True),
            "confusions": paired([guided[s].confusions for s in seeds], [base[s].confusions for s in seeds],
                                 higher_is_better=False),
        }

    def verdict(self) -> dict[str, Any]:
        """Plain-language outcome of curated->full vs full->full (no spin: 'did not' when it did not)."""
        comp = self.comparison()
        if comp is None:
            return {"helped": None, "text": f"Not compared: run both {GUIDED} and {BASELINE}."}
        conf, acc = comp["confusions"], comp["accuracy_pct"]
        fewer, better = conf["mean_difference"] < 0, acc["mean_difference"] > 0
        n = len(comp["seeds"])

        def part(what: str, d: dict, good: bool, word_good: str, word_bad: str, unit: str) -> str:
            p = d["t_test_p"]
            sig = "n/a (all per-seed differences equal)" if p is None else f"{p:.3g}"
            return (f"{word_good if good else word_bad} {what}: {d['treatment']['mean']:.{2 if unit else 1}f}{unit} vs "
                    f"{d['control']['mean']:.{2 if unit else 1}f}{unit} (mean per-seed difference "
                    f"{d['mean_difference']:+.{2 if unit else 1}f}; {d['wins']} better / {d['losses']} worse / "
                    f"{d['ties']} tied over {n} seeds; paired t-test p = {sig}, sign test p = {d['sign_test_p']:.3g})")

        pair = self.pair_label
        lines = [part(f"the targeted {pair} confusions", conf, fewer, "reduced", "did not reduce", ""),
                 part("test accuracy", acc, better, "raised", "did not raise", "%")]
        significant = [d["t_test_p"] is not None and d["t_test_p"] < 0.05 for d in (conf, acc)]
        if fewer and better:
            head = f"{GUIDED} beat {BASELINE} on both the {pair} confusions and accuracy"
        elif not fewer and not better:
            head = f"{GUIDED} did NOT beat {BASELINE}: no fewer {pair} confusions and no higher accuracy"
        else:
            head = f"{GUIDED} vs {BASELINE} is mixed"
        if not any(significant):
            head += " (no difference significant at p < 0.05)"
        return {"helped": bool(fewer and better), "fewer_confusions": bool(fewer), "higher_accuracy": bool(better),
                "significant_confusions": significant[0], "significant_accuracy": significant[1],
                "text": head + ". curated->full " + "; it ".join(lines) + "."}

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "dataset": self.dataset, "model": self.model_name,
            "source_checkpoint": self.source_checkpoint, "train_size": self.train_size, "test_size": self.test_size,
            "config": self.config.model_dump(mode="json"), "curation": self.curation,
            "start": asdict(self.start), "table": self.table(), "comparison": self.comparison(),
            "verdict": self.verdict(), "runs": [asdict(r) for r in self.runs], "seconds": self.seconds,
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
        return (f"{self.dataset}, {self.model_name}: {self.config.seeds} seeds, test n = {self.test_size}. Curated set "
                f"removes {c['removed']} of {c['train_size']} training samples of classes {'/'.join(c['pair_names'])} "
                f"containing prototype(s) {c['prototypes']} at ≥ {c['min_positions']} position(s)"
                + (f" ({per_class})." if per_class else "."))

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


# --- statistics ----------------------------------------------------------------------------------------


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def mean_std(values: list[float]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof=1) over seeds, with the values."""
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
            "values": [float(v) for v in arr]}


def paired(treatment: list[float], control: list[float], higher_is_better: bool) -> dict[str, Any]:
    """Per-seed differences treatment − control, paired t-test and sign test (two-sided, scipy)."""
    from scipy import stats

    t, c = np.asarray(treatment, float), np.asarray(control, float)
    diff = t - c
    good = diff > 0 if higher_is_better else diff < 0
    nonzero = diff != 0
    wins, losses = int((good & nonzero).sum()), int((~good & nonzero).sum())
    # All per-seed differences equal (or one seed): t is 0/0 or infinite; report no p-value rather than 1 or 0.
    t_p = _num(stats.ttest_rel(t, c).pvalue) if len(diff) > 1 and np.ptp(diff) > 0 else None
    sign_p = float(stats.binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0
    return {"treatment": mean_std(list(t)), "control": mean_std(list(c)), "differences": [float(d) for d in diff],
            "mean_difference": float(diff.mean()), "wins": wins, "losses": losses, "ties": int((~nonzero).sum()),
            "t_test_p": t_p, "sign_test_p": sign_p, "higher_is_better": higher_is_better}


# --- checks --------------------------------------------------------------------------------------------


def image_hashes(images: torch.Tensor) -> np.ndarray:
    """A content hash per image (exact identity of the stored pixels)."""
    arr = images.detach().cpu().contiguous().numpy()
    return np.array([hashlib.blake2b(x.tobytes(), digest_size=16).hexdigest() for x in arr])


def check_disjoint(train: ImageDataset, test: ImageDataset) -> None:
    """Raise when the test split shares an image with the training set (compared by pixel content)."""
    shared = np.flatnonzero(np.isin(image_hashes(test.images), image_hashes(train.images)))
    if len(shared):
        raise ImproveError(
            f"The test split overlaps the training set: {len(shared)} of its {len(test)} images are also training "
            f"images (first test positions {shared[:5].tolist()}). Evaluate on a held-out split "
            "(e.g. ImageDataset.split or the run's split.npz 'test' indices).")


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


# --- fine-tuning ---------------------------------------------------------------------------------------


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch`` (0-based within a schedule) of run ``seed``: same for every schedule."""
    return 1_000_003 * (seed + 1) + epoch


def epoch_order(train_size: int, seed: int, epoch: int, keep: np.ndarray | None = None) -> torch.Tensor:
    """The seeded permutation of epoch ``epoch``; a curated epoch keeps its order and skips removed samples."""
    order = torch.randperm(train_size, generator=torch.Generator().manual_seed(epoch_seed(seed, epoch)))
    return order if keep is None else order[torch.from_numpy(keep)[order]]


def _batches(data: ImageDataset, order: torch.Tensor, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        yield data.images[index], data.labels[index]


class _Loader:
    """A re-iterable batch source for :func:`train_epoch` (a fixed order, no DataLoader worker state)."""

    def __init__(self, data: ImageDataset, order: torch.Tensor, batch_size: int):
        self.data, self.order, self.batch_size = data, order, batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return _batches(self.data, self.order, self.batch_size)

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)


def make_optimizer(params: list[nn.Parameter], config: ImproveConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


@torch.no_grad()
def evaluate(model: nn.Module, test: ImageDataset, pair: tuple[int, int], batch_size: int = 512,
             device: torch.device | str = "cpu") -> tuple[float, int, int]:
    """Test accuracy and the pair's a→b and b→a confusion counts."""
    model.eval()
    preds = torch.cat([model(test.images[i : i + batch_size].to(device)).argmax(1).cpu()
                       for i in range(0, len(test), batch_size)])
    a, b = pair
    y = test.labels
    return (float((preds == y).float().mean()), int(((y == a) & (preds == b)).sum()),
            int(((y == b) & (preds == a)).sum()))


def _state(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    return ({k: v.detach().clone() for k, v in model.state_dict().items()}, copy.deepcopy(optimizer.state_dict()))


def run_schedules(model: nn.Module, checkpoint: str | Path, train: ImageDataset, test: ImageDataset,
                  curation: CurationSet, config: ImproveConfig | None = None,
                  load_func: LoadFunc = default_load_func, device: str | torch.device | None = None,
                  save_dir: str | Path | None = None, progress: bool = False,
                  seeds: list[int] | None = None) -> tuple[list[ScheduleRun], ScheduleRun]:
    """Fine-tune from ``checkpoint`` with every schedule and seed; returns (runs, the unchanged start's scores).

    ``save_dir`` given: each fine-tuned model is saved as ``<schedule>-seed<s>.pt`` with a JSON sidecar.
    ``seeds`` overrides ``config.seed_list`` (e.g. one seed at a time, to cache results per seed).
    """
    config = config or ImproveConfig()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    if len(curation.labels) != len(train) or not np.array_equal(curation.labels, train.labels.numpy()):
        raise ImproveError("The curated set was made for another training set (sizes or labels differ); make it with "
                           "curate(...) on this training set.")
    pair = curation.target.pair
    load_func(model, checkpoint)
    check_trainable(model)
    start = ScheduleRun("start", -1, *evaluate(model, test, pair, config.eval_batch_size, device))
    keep = curation.keep_mask
    save_dir = Path(save_dir) if save_dir is not None else None
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
    seeds = list(config.seed_list if seeds is None else seeds)
    if progress:
        from tqdm.auto import tqdm

        seeds = tqdm(seeds, desc="fine-tuning seeds", unit="seed")
    runs = []
    for seed in seeds:
        cache: dict[tuple[str, ...], tuple[dict, dict]] = {}
        for name in config.schedules:
            epochs = tuple(kind for kind in SCHEDULES[name] for _ in range(config.epochs_per_stage))
            done = max((n for n in range(1, len(epochs) + 1) if epochs[:n] in cache), default=0)
            load_func(model, checkpoint)
            optimizer = make_optimizer(check_trainable(model), config)
            if done:
                model_state, opt_state = cache[epochs[:done]]
                model.load_state_dict(model_state)
                optimizer.load_state_dict(copy.deepcopy(opt_state))
            for e in range(done, len(epochs)):
                order = epoch_order(len(train), seed, e, keep if epochs[e] == "curated" else None)
                with seeded(epoch_seed(seed, e), device):
                    train_epoch(model, _Loader(train, order, config.batch_size), optimizer, device)
                cache[epochs[: e + 1]] = _state(model, optimizer)
            scores = evaluate(model, test, pair, config.eval_batch_size, device)
            path = None
            if save_dir is not None:
                path = save_dir / f"{name.replace('->', '-')}-seed{seed}.pt"
                with atomic_open(path) as f:
                    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, f)
                write_text(path.with_suffix(".json"), json.dumps({
                    "schedule": name, "seed": seed, "fine_tuned_from": str(checkpoint), "epochs": len(epochs),
                    "accuracy": scores[0], "pair": list(pair), "a_to_b": scores[1], "b_to_a": scores[2]}))
            runs.append(ScheduleRun(name, seed, *scores, checkpoint=None if path is None else str(path)))
    model.eval()
    return runs, start


def improve(explanation: StructuredExplanation, model: nn.Module, train: ImageDataset, test: ImageDataset,
            config: ImproveConfig | None = None, checkpoint: str | Path | None = None,
            load_func: LoadFunc = default_load_func, device: str | torch.device | None = None,
            train_ids: np.ndarray | None = None, save_dir: str | Path | None = None,
            progress: bool = False) -> tuple[ImproveResult, CurationSet]:
    """The whole of step 9: target pair → curated set over ``train`` → schedules × seeds → table.

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
    target = choose_target(explanation, config.pair, config.num_prototypes, config.pair_selection)
    t0 = time.perf_counter()
    assignments = training_assignments(explanation, model, train.images, config.feature_batch_size, device)
    labels = train.labels.numpy()
    m = (auto_min_positions(target, assignments, labels, config.max_removed_fraction)
         if config.min_positions == "auto" else int(config.min_positions))
    curation = curate(target, assignments, labels, m, explanation.class_names, train_ids)
    t1 = time.perf_counter()
    runs, start = run_schedules(model, checkpoint, train, test, curation, config, load_func, device, save_dir, progress)
    t2 = time.perf_counter()
    result = ImproveResult(
        run_id=explanation.run_id, dataset=explanation.dataset.removesuffix("-probe"), model_name=explanation.model_name, config=config,
        curation=curation.summary(), start=start, runs=runs, train_size=len(train), test_size=len(test),
        seconds={"curation": t1 - t0, "fine_tuning": t2 - t1, "total": t2 - started},
        source_checkpoint=str(checkpoint))
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


def _final_checkpoint(explanation: StructuredExplanation, fallback_dir: Path | None) -> Path:
    path = Path(explanation.checkpoints[-1].path)
    if path.is_file():
        return path
    if fallback_dir is not None and (fallback_dir / path.name).is_file():
        return fallback_dir / path.name  # the run directory was moved: look beside it
    raise ImproveError(f"The final checkpoint {path} of run {explanation.run_id!r} does not exist. Pass it "
                       "explicitly (--checkpoint FILE).")


def inputs_from_run(run_dir: str | Path, checkpoint: str | Path | None = None) -> ImproveInputs:
    """Load a run written by ``i2x run``: config.yaml, split.npz, explanation/ and its checkpoints."""
    from .models import build_model
    from .run import RunConfig

    run_dir = Path(run_dir)
    missing = [name for name in ("config.yaml", "split.npz", "explanation/explanation.json")
               if not (run_dir / name).exists()]
    if missing:
        raise ImproveError(f"{run_dir} is not a complete 'i2x run' output directory (missing {', '.join(missing)}). "
                           "Point --run-dir at OUT/RUN_ID of a finished run, or give --explanation, --checkpoint, "
                           "--dataset and --model.")
    config = RunConfig.from_file(run_dir / "config.yaml")
    explanation = StructuredExplanation.load(run_dir / "explanation")
    from .data import load_dataset

    with np.load(run_dir / "split.npz") as split:
        train_index, test_index = split["train"], split["test"]
        separate = bool(split["separate_test_source"]) if "separate_test_source" in split else False
    source = load_dataset(config.dataset, train=True, root=config.data_root)
    test_source = load_dataset(config.dataset, train=False, root=config.data_root) if separate else source
    train, test = source.subset(train_index, f"{explanation.dataset}-train"), test_source.subset(test_index,
                                                                                                 f"{explanation.dataset}-test")
    model = build_model(config.model, int(train.images.shape[1]), train.num_classes, int(train.images.shape[-1]))
    final = Path(checkpoint) if checkpoint is not None else _final_checkpoint(
        explanation, Path(config.checkpoints) if config.checkpoints is not None else run_dir / "checkpoints")
    return ImproveInputs(explanation, model, final, train, test, np.asarray(train_index), config.store,
                         config.store_dir)


def inputs_from_files(explanation_dir: str | Path, checkpoint: str | Path | None, dataset: str, model_name: str,
                      test_fraction: float = 0.2, split_seed: int = 0) -> ImproveInputs:
    """Explicit inputs: an explanation directory, the final checkpoint, a data set and a model name.

    The training/test split is the main job's (``i2x run``'s stratified split with the same fraction and seed;
    data sets with their own test set use it).
    """
    from .models import build_model
    from .run import RunConfig, load_run_data

    explanation = StructuredExplanation.load(explanation_dir)
    data = load_run_data(RunConfig(dataset=dataset, model=model_name, test_fraction=test_fraction, seed=split_seed))
    model = build_model(model_name, int(data.train.images.shape[1]), data.train.num_classes,
                        int(data.train.images.shape[-1]))
    final = Path(checkpoint) if checkpoint is not None else _final_checkpoint(explanation, None)
    return ImproveInputs(explanation, model, final, data.train, data.test, np.asarray(data.train_index))
