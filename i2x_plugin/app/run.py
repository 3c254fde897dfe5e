"""The main job, ``i2x run``: data → training with checkpoints → I2X → graph → report → answers.

>>> from i2x_plugin.app.run import RunConfig, run_main
>>> result = run_main(RunConfig(dataset="digits", epochs=2))
>>> result.report
PosixPath('i2x-out/20260101-120000-ab12/report/index.html')

:class:`RunConfig` is the whole job as one validated pydantic model (loadable from YAML/JSON with
:meth:`RunConfig.from_file`; an unknown or mistyped field is pydantic's error naming the field).
Bad input fails *before* any long stage starts, with an error naming the problem and the fix.

Data (defaults): the data set is split, stratified by class, into a training split and a held-out
test split (``test_fraction``; data sets that ship their own test set use it). The *probe set* that
I2X explains is the training split itself, because I2X explains how training formed the model and
the curated set of step 9 is made of training samples; when the training split has more than
``probe_size`` samples, a stratified subset of that size is used (it bounds the sweep's time and
the prototype fit's memory on large data sets).

Everything is written under ``out/<run_id>/``::

    config.yaml        the RunConfig of this run (run_id filled in)
    split.npz          train / test / probe indices into the loaded data set(s)
    checkpoints/       ckpt-0000.pt (before training), one per epoch, with JSON metadata
    explanation/       the StructuredExplanation (explanation.json + arrays.npz)
    report/index.html  the HTML report (PNGs beside it, also embedded)
    samples/           PNGs of the exemplar and misclassified probe samples (the graph's Sample.imageUri)
    summary.json       status, seconds per stage, metrics, the example answers

The graph store starts in the background as the run begins, while the data loads and the model
trains (the embedded server takes seconds to start); a store that cannot start or be reached stops
the run at the next stage boundary, before the sweep. Once explained, the run is written to the
store in the background while the held-out test and the report are computed, and the example
questions wait for it. Its Run node becomes ``complete`` only after every row is in. An interrupted
or failed run therefore never shows as ``complete``, and ``summary.json`` records its status
(``interrupted`` / ``failed``) and the error. ``stage_seconds`` holds the seconds the run spent in
(or waiting for) each stage; ``store.background`` and ``graph.background`` the seconds the store
start and the graph write took in the background.

Several processes (``i2x run --nproc N``, or ``torchrun ... -m i2x_plugin.cli run``): every rank
loads the data and explains its block of the probe set; rank 0 alone writes the output directory,
trains (when no checkpoints are given), starts the store and writes the graph, the report and
``summary.json`` (see :mod:`i2x_plugin.method.distributed`).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..checks.run import run_stability, with_faithfulness, with_reliance
from ..explain import I2X
from ..graph.answers import ExampleAnswer
from ..atomic import atomic_open, write_text
from .background import Background, RowsWritten, wait_for_graph, write_graph
from ..training.checkpoints import CheckpointInfo, default_load_func, resolve_checkpoints
from ..training.data import ImageDataset
from ..method.distributed import Ranks, process_group, rank_device
from ..training.models import build_model, default_feature_layer
from ..training.loop import seeded, train_with_checkpoints
from ..training.shortcut import describe_shortcut, shortcut_metrics

from ..runs.run_config import STORE_NONE, RunConfig, RunError, format_validation_error
from ..runs.run_data import RunData, load_run_data, stratified_indices

__all__ = ["RunConfig", "RunData", "RunError", "RunResult", "format_validation_error", "load_run_data", "run_main",
           "stratified_indices"]


@dataclass
class RunResult:
    """Where a finished run put everything, how long each stage took, and what it found."""

    run_id: str
    directory: Path
    status: str
    report: Path | None
    explanation_dir: Path
    checkpoints_dir: Path
    store_uri: str | None
    stage_seconds: dict[str, float]
    metrics: dict[str, Any]
    answers: list[ExampleAnswer] = field(default_factory=list)

    def summary_text(self) -> str:
        """What ``i2x run`` prints: where everything is, the example answers, and a summary table."""
        m, lines = self.metrics, []
        lines.append(f"\nI2X run {self.run_id}: {self.status}\n")
        lines.append("Where everything is")
        where = [("output", f"{self.directory}/"),
                 ("report", f"{self.report}  (open in a browser; works offline)" if self.report else "skipped"),
                 ("explanation", f"{self.explanation_dir}/  (StructuredExplanation.load)"),
                 ("checkpoints", f"{self.checkpoints_dir}/  ({m['checkpoints']} checkpoints)"),
                 ("graph", f"{self.store_uri}  runId={self.run_id}  (i2x ask --list)" if self.store_uri
                  else "skipped (--store none)")]
        lines += [f"  {k:<12} {v}" for k, v in where]
        if self.answers:
            lines.append("\nThree questions, answered by the graph")
            for i, a in enumerate(self.answers, 1):
                lines.append(f"  {i}. {a.question}")
                lines.append(f"     $ {a.command}")
                lines += [f"     {line}" for line in a.text.splitlines()]
        lines.append("\nSummary")
        lines.append(f"  {'stage':<28}{'seconds':>9}")
        for name, seconds in self.stage_seconds.items():
            if name != "total":
                label = f"  · {name.split('.', 1)[1]}" if "." in name else name
                label = "  · in the background" if name.endswith(".background") else label
                lines.append(f"  {label:<28}{seconds:>9.1f}")
        lines.append(f"  {'total':<28}{self.stage_seconds.get('total', 0.0):>9.1f}")
        probe, test = m["probe_accuracy"], m["test_accuracy"]
        lines.append(f"  accuracy      probe {100 * probe[0]:.1f}% → {100 * probe[-1]:.1f}% over {m['checkpoints']} "
                     f"checkpoints; held-out test {100 * test[-1]:.1f}% ({m['test_samples']} samples)")
        if m.get("shortcut"):
            lines.append(f"  shortcut      {describe_shortcut(m['shortcut'])}")
        processes = f", {m['processes']} processes" if m.get("processes", 1) > 1 else ""
        lines.append(f"  explained     {m['probe_samples']} probe samples, K={m['k']} prototypes at {m['layer']} "
                     f"({m['method']}{processes})")
        counts = m.get("claims")
        if counts:
            found = ", ".join(f"{counts['real'][k]} {k} (noise: {counts['null_mean'][k]:.1f})" for k in counts["real"])
            lines.append(f"  claims        {found}; q ≤ {m['fdr_q']:g} against a within-class trajectory permutation null")
            if m.get("unstable"):
                kept = ", ".join(f"{m[k]} {k}" for k in m["unstable"])
                dropped = sum(m["unstable"].values())
                lines.append(f"  reported      {kept}: the {dropped} others recur in fewer than "
                             f"{100 * m['selection_share']:.0f}% of the stability test's re-fits")
        lines.append("  first separated pairs: " + (", ".join(f"{a}↔{b}" for a, b in m["learning_order"][:5]) or "none"))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "directory": str(self.directory), "status": self.status,
            "report": str(self.report) if self.report else None, "explanation_dir": str(self.explanation_dir),
            "checkpoints_dir": str(self.checkpoints_dir), "store_uri": self.store_uri,
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()}, "metrics": self.metrics,
            "answers": [{"question": a.question, "command": a.command, "rows": a.rows, "text": a.text}
                        for a in self.answers],
        }


# --- checks that run before any long stage -------------------------------------------------------------


def resolve_device(name: str) -> torch.device:
    """A torch device that exists here, or a RunError saying which one does."""
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise RunError(f"Unknown device {name!r} ({err}). Use cpu, cuda, cuda:N or mps.") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise RunError(f"--device {name} was asked for, but PyTorch sees no CUDA GPU on this machine "
                           f"(torch {torch.__version__}, {build}). Use --device cpu.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RunError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                           f"(cuda:0..cuda:{torch.cuda.device_count() - 1}). Pick one of them or use --device cpu.")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise RunError(f"--device {name} was asked for, but Apple MPS is not available here. Use --device cpu.")
    return device


def prepare_output(out: Path, run_id: str) -> Path:
    """Create ``out/run_id`` and prove it is writable, or raise a RunError naming the directory."""
    directory = Path(out).expanduser() / run_id
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if any(directory.iterdir()):
            raise RunError(f"Output directory {directory} already holds files of an earlier run. Choose another "
                           "--run-id, another --out, or delete it.")
        probe = directory / ".i2x-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise RunError(f"Cannot write the run's output under {out} ({err.strerror or err}). "
                       "Choose a writable directory with --out.") from err
    return directory


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


# --- the job -------------------------------------------------------------------------------------------


class _Stages:
    """Seconds per stage, and one status line per stage on stderr unless quiet."""

    def __init__(self, verbose: bool):
        self.verbose, self.seconds = verbose, {}

    def ordered(self) -> dict[str, float]:
        """The seconds with each ``<stage>.background`` right after its stage."""
        out: dict[str, float] = {}
        for name, seconds in list(self.seconds.items()):
            if not name.endswith(".background"):
                out[name] = seconds
                if f"{name}.background" in self.seconds:
                    out[f"{name}.background"] = self.seconds[f"{name}.background"]
        return {**out, **self.seconds}  # and a background job whose stage never came

    @contextmanager
    def __call__(self, name: str, message: str) -> Iterator[None]:
        if self.verbose:
            print(f"[i2x] {message}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


@torch.no_grad()
def checkpoint_accuracy(model: torch.nn.Module, infos: list[CheckpointInfo], data: ImageDataset,
                        device: torch.device, batch_size: int = 512) -> list[float]:
    """Accuracy of every checkpoint on ``data`` (the held-out test split)."""
    out = []
    for info in infos:
        default_load_func(model, info.path)
        model.eval()
        correct = 0
        for start in range(0, len(data), batch_size):
            x = data.images[start : start + batch_size].to(device)
            correct += int((model(x).argmax(1).cpu() == data.labels[start : start + batch_size]).sum())
        out.append(correct / max(len(data), 1))
    return out


def _connect_store(config: RunConfig):
    from ..store import GraphStore

    return GraphStore.connect(config.store, config.store_dir, keep=config.keep_store)


def run_main(config: RunConfig, progress: bool = True, verbose: bool | None = None,
             on_stage: Callable[[str], None] | None = None) -> RunResult | None:
    """Run the whole job described by ``config``; see the module docstring for what is written where.

    ``progress`` shows tqdm bars on the long stages; ``verbose`` (default: as ``progress``) prints one
    line per stage. ``on_stage(name)`` is called as each stage starts (e.g. to cancel from a UI).

    Under ``torchrun`` (``WORLD_SIZE`` > 1) every rank runs this: rank 0 prepares the output, trains
    (the others wait, up to ``dist_timeout``), explains its shard of the probe set like every rank,
    then alone writes the graph, the report and the summary and returns the result; the other ranks
    return ``None``. Any rank's error fails every rank (see :mod:`i2x_plugin.method.distributed`).
    """
    device = resolve_device(config.device)
    with process_group(device, config.dist_timeout) as ranks:
        verbose = (progress if verbose is None else verbose) and ranks.is_root
        return _run(config, rank_device(device), ranks, progress and ranks.is_root, verbose, on_stage)


def _run(config: RunConfig, device: torch.device, ranks: Ranks, progress: bool, verbose: bool,
         on_stage: Callable[[str], None] | None) -> RunResult | None:
    stages = _Stages(verbose)
    started = time.perf_counter()

    def stage(name: str, message: str):
        if on_stage is not None:
            on_stage(name)
        return stages(name, message)

    # Fail fast: everything a user can get wrong is checked before the first long stage.
    run_id = ranks.broadcast(config.run_id or new_run_id(), "agreeing on the run id")
    config = config.updated(run_id=run_id)
    directory = Path(config.out).expanduser() / run_id
    with ranks.checked("checking the run's settings"):
        given_infos = resolve_checkpoints(config.checkpoints) if config.checkpoints is not None else None
        if ranks.is_root:
            directory = prepare_output(config.out, run_id)
            write_text(directory / "config.yaml", config.to_yaml())

    store = None
    summary: dict[str, Any] = {"run_id": run_id, "status": "running"}
    background = Background(stages.seconds)
    try:
        if config.store != STORE_NONE and ranks.is_root:
            if verbose:
                print(f"[i2x] starting the graph store ({config.store}) in the background", file=sys.stderr,
                      flush=True)
            background.submit("store", _connect_store, config)
        with stage("data", f"loading {config.dataset}"), ranks.checked("loading the data"):
            data = load_run_data(config)
            if ranks.is_root:
                with atomic_open(directory / "split.npz") as f:
                    np.savez(f, **data.split_arrays())
            image_size = int(data.train.images.shape[-1])
            with seeded(config.seed):  # the initial weights too: a run is reproducible from its config
                model = build_model(config.model, int(data.train.images.shape[1]), data.train.num_classes,
                                    image_size)
            layer = config.layer or default_feature_layer(model)
        with ranks.checked("starting the graph store"):
            background.check()

        if given_infos is None:
            checkpoints_dir = directory / "checkpoints"
            with stage("training", f"training {config.model} on {len(data.train)} samples for {config.epochs} "
                       f"epochs ({device})"), ranks.checked("training (rank 0)"):
                if ranks.is_root:
                    train_with_checkpoints(model, data.train, checkpoints_dir, epochs=config.epochs, lr=config.lr,
                                           batch_size=config.batch_size, seed=config.seed, device=device,
                                           progress=progress, threads=config.train_threads)
            with ranks.checked("reading the checkpoints rank 0 trained"):
                infos = resolve_checkpoints(checkpoints_dir)
        else:
            checkpoints_dir = Path(config.checkpoints)  # type: ignore[arg-type]
            infos = given_infos
            model.to(device)

        with ranks.checked("starting the graph store"):
            background.check()
        # The stability test's selection decides which claims are reported, so the deletion tests follow it.
        stability = config.stability and config.i2x.keep_maps
        i2x = I2X(model, layer, adapter=config.adapter, config=config.i2x.model_copy(
            update={"faithfulness": config.i2x.faithfulness and not stability}), method=config.method, device=device)
        processes = f", {ranks.world_size} processes" if ranks.distributed else ""
        with stage("explain", f"I2X on {len(data.probe)} probe samples × {len(infos)} checkpoints "
                   f"(K={config.i2x.k}, {i2x.method_name} at {layer}{processes})"):
            explanation = i2x.explain([i.path for i in infos], data.probe, class_names=data.train.class_names,
                                      sample_ids=data.probe_index, run_id=run_id, model_name=config.model,
                                      progress=progress)
            if explanation is None:  # not rank 0: its shard is on rank 0 now
                return None
            explanation.save(directory / "explanation")
        for name, seconds in i2x.timings.items():
            stages.seconds[f"explain.{name}"] = seconds
        if stability:
            default_load_func(model, infos[-1].path)
            with stage("stability", "stability test: re-fitting the prototypes and re-deriving the claims"):
                explanation = run_stability(explanation, model, data.probe, device)
            if config.i2x.faithfulness:
                with stage("faithfulness", "deletion tests of the reported claims on the final model"):
                    explanation = with_faithfulness(explanation, model.eval(), data.probe.images, device)
            explanation = dataclasses.replace(explanation, config=config.i2x)
        if config.i2x.reliance:
            default_load_func(model, infos[-1].path)
            with stage("reliance", "reliance: deleting each prototype on held-out samples of each class and pair, "
                       "and dating the significant edges over the checkpoints"):
                explanation = with_reliance(explanation, model.eval(), data.probe.images, device)
        if stability or config.i2x.reliance:  # the checks' results, saved once over the explain stage's save
            explanation.save(directory / "explanation")

        if "store" in background.jobs:
            with stage("store", "waiting for the graph store"):
                store = background.jobs["store"].result()
            if verbose:
                print("[i2x] writing the explanation graph in the background", file=sys.stderr, flush=True)
            written = RowsWritten()
            background.submit("graph", write_graph, store, explanation, data.probe, directory,
                              background.cancelled, written)

        with stage("test", f"test accuracy of {len(infos)} checkpoints on {len(data.test)} held-out samples"):
            test_accuracy = checkpoint_accuracy(model, infos, data.test, device)
            if config.shortcut is not None:  # the final model (checkpoint_accuracy loaded it last)
                shortcut = shortcut_metrics(model, data.test, config.shortcut, device)

        report_path = None
        if config.report:
            with stage("report", "writing the HTML report"):
                from ..report import exemplar_saliency, write_report

                default_load_func(model, infos[-1].path)
                saliency = exemplar_saliency(i2x.adapter, data.probe, explanation, device)
                report_path = write_report(explanation, data.probe, directory / "report", saliency=saliency,
                                           test_accuracy=test_accuracy, progress=progress)

        if "graph" in background.jobs:
            with stage("graph", "waiting for the explanation graph"):
                wait_for_graph(background.jobs["graph"], written, f"graph {run_id}", progress)

        answers: list[ExampleAnswer] = []
        if store is not None:
            with stage("questions", "asking the graph three example questions"):
                from ..graph.answers import example_answers

                answers = example_answers(store, explanation)
        metrics = {
            "probe_samples": len(data.probe), "train_samples": len(data.train), "test_samples": len(data.test),
            "checkpoints": len(infos), "k": explanation.k, "layer": layer, "method": explanation.method,
            "probe_accuracy": [round(c.accuracy, 4) for c in explanation.checkpoints],
            "test_accuracy": [round(a, 4) for a in test_accuracy],
            "uncertain": len(explanation.uncertain), "separators": len(explanation.separators),
            "drivers": len(explanation.drivers), "fdr_q": explanation.config.fdr_q,
            "claims": dataclasses.asdict(explanation.claim_counts) if explanation.claim_counts else None,
            "unstable": explanation.stability.unstable if explanation.stability else {},
            "selection_share": explanation.stability.selection_share if explanation.stability else None,
            "learning_order": explanation.learning_order[:10],
            "sweep_images_checkpoints": len(data.probe) * len(infos), "processes": ranks.world_size,
        }
        if config.shortcut is not None:
            metrics["shortcut"] = shortcut
        stages.seconds["total"] = time.perf_counter() - started
        result = RunResult(run_id, directory, "complete", report_path, directory / "explanation", checkpoints_dir,
                           store.uri if store is not None else None, stages.ordered(), metrics, answers)
        summary = result.to_dict()
        return result
    except BaseException as err:
        status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
        summary.update(status=status, error=f"{type(err).__name__}: {err}",
                       stage_seconds={k: round(v, 3) for k, v in stages.ordered().items()})
        raise
    finally:
        background.cancel()
        background.close()  # a graph write still running stops at its next batch, marked 'failed'
        if store is None and "store" in background.jobs and background.jobs["store"].exception() is None:
            store = background.jobs["store"].result()  # started, but the run stopped before using it
        if ranks.is_root:
            write_text(directory / "summary.json", json.dumps(summary, indent=1, default=str))
        if store is not None:
            store.close()
