"""The main job through its Python API: the checks that fail fast, and real small runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from i2x_plugin import I2XConfig, StructuredExplanation
from i2x_plugin.app.run import (
    RunConfig,
    RunError,
    prepare_output,
    resolve_device,
    run_main,
)

SMALL = dict(dataset="digits", epochs=2, lr=1e-2, store="none", i2x=I2XConfig(k=8))


# --- fail fast ----------------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_says_so_and_suggests_cpu():
    with pytest.raises(RunError, match="no CUDA GPU.*--device cpu"):
        resolve_device("cuda")
    with pytest.raises(RunError, match="Unknown device 'gpu0'"):
        resolve_device("gpu0")


def test_output_directory_must_be_writable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(RunError, match="Cannot write the run's output under .*--out"):
        prepare_output(blocker, "run1")
    used = prepare_output(tmp_path, "run2")
    (used / "x").write_text("earlier run")
    with pytest.raises(RunError, match="already holds files"):
        prepare_output(tmp_path, "run2")


# --- real small runs -----------------------------------------------------------------------------------


def test_run_main_writes_everything(tmp_path):
    result = run_main(RunConfig(**SMALL, out=tmp_path, run_id="small"), progress=False)
    d = tmp_path / "small"
    assert result.status == "complete" and result.directory == d
    for name in ("config.yaml", "split.npz", "summary.json", "report/index.html", "explanation/explanation.json"):
        assert (d / name).is_file(), name
    assert len(list((d / "checkpoints").glob("*.pt"))) == 3  # before training + 2 epochs
    explanation = StructuredExplanation.load(d / "explanation")
    split = np.load(d / "split.npz")
    assert np.array_equal(explanation.sample_ids, split["probe"])
    assert RunConfig.from_file(d / "config.yaml").run_id == "small"
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["metrics"]["checkpoints"] == 3
    assert {"data", "training", "explain", "explain.sweep", "report", "total"} <= set(summary["stage_seconds"])
    assert result.store_uri is None and not result.answers
    assert "I2X run small: complete" in result.summary_text()
    # the stability test's selection came first, and the deletion tests tested the claims it kept
    assert explanation.stability.selection_share == 0.5 and explanation.config == SMALL["i2x"]
    assert all(d.recurrence >= 0.5 for d in explanation.drivers)
    top = {c: sorted(d.prototype for d in explanation.drivers if d.cls == c and d.rank < 5) for c in range(10)}
    for r in (r for r in explanation.faithfulness_results if r.kind == "drivers"):
        assert sorted(r.prototypes) == top[r.a]
    assert {"stability", "faithfulness"} <= set(summary["stage_seconds"])


def test_a_store_that_cannot_be_reached_stops_the_run_before_the_sweep(tmp_path):
    """The store connects in the background during training; its error stops the run at the next stage."""
    from i2x_plugin.store import StoreConnectionError

    config = RunConfig(**{**SMALL, "store": "bolt://127.0.0.1:9"}, out=tmp_path, run_id="no-store")
    with pytest.raises(StoreConnectionError, match="Cannot reach a Bolt server at bolt://127.0.0.1:9"):
        run_main(config, progress=False)
    summary = json.loads((tmp_path / "no-store" / "summary.json").read_text())
    assert summary["status"] == "failed" and "StoreConnectionError" in summary["error"]
    assert "store.background" in summary["stage_seconds"] and "explain" not in summary["stage_seconds"]


def test_run_main_on_existing_checkpoints_skips_training(tmp_path, digits_run):
    result = run_main(RunConfig(**SMALL, checkpoints=digits_run.checkpoint_dir, out=tmp_path, run_id="given",
                                report=False), progress=False)
    assert "training" not in result.stage_seconds
    assert result.checkpoints_dir == digits_run.checkpoint_dir
    assert result.metrics["checkpoints"] == len(digits_run.explanation.checkpoints)
    assert not (tmp_path / "given" / "checkpoints").exists()


def test_run_main_rejects_bad_checkpoint_dirs_before_any_work(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="it is empty"):
        run_main(RunConfig(**SMALL, checkpoints=tmp_path / "empty", out=tmp_path / "o"), progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="notes.txt"):
        run_main(RunConfig(**SMALL, checkpoints=tmp_path / "other", out=tmp_path / "o"), progress=False)
    assert not (tmp_path / "o").exists()  # nothing was written


def test_a_run_stopped_midway_is_recorded_as_such(tmp_path, digits_run):
    """An interrupt (here raised as the test stage starts) leaves status 'interrupted', not complete."""

    def stop_at(stage: str) -> None:
        if stage == "test":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_main(RunConfig(**SMALL, checkpoints=digits_run.checkpoint_dir, out=tmp_path, run_id="stopped"),
                 progress=False, on_stage=stop_at)
    summary = json.loads((tmp_path / "stopped" / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert "explain.sweep" in summary["stage_seconds"] and "report" not in summary["stage_seconds"]
    assert not (tmp_path / "stopped" / "report").exists()


def test_a_shortcut_run_records_its_marker_and_the_confusions_it_causes(tmp_path, digits_run):
    """Wiring of --shortcut (existing checkpoints, so no training): the marked samples in split.npz, the held-out
    versions' numbers in the summary, and a saved run's probe read back with its marker."""
    from i2x_plugin.runs.saved_run import load_saved_run
    from i2x_plugin.training.shortcut import ShortcutConfig

    config = RunConfig(**{**SMALL, "stability": False, "report": False}, checkpoints=digits_run.checkpoint_dir,
                       shortcut=ShortcutConfig(a=1, b=7, size=2), out=tmp_path, run_id="cut")
    result = run_main(config, progress=False)
    split = np.load(tmp_path / "cut" / "split.npz")
    run = load_saved_run(tmp_path / "cut")
    labels = run.explanation.labels
    assert np.array_equal(split["probe_marked"], labels == 1)
    assert float(run.probe.images[labels == 1][:, 0, :2, :2].min()) == 1.0
    cut = result.metrics["shortcut"]
    assert set(cut) == {"clean", "all", "b_only"} and cut["b_only"]["b_images"] == cut["clean"]["b_images"] > 0
    assert "held-out b-images taken for a" in result.summary_text()
