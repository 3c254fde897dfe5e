"""Reproducible runs (issue 19): the same config gives the same bits at any thread count, trained weights included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from i2x_plugin import StructuredExplanation
from same_explanation import assert_same_explanation

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs_at_two_thread_counts(tmp_path_factory) -> dict[str, Path]:
    """``i2x run --dataset digits`` from scratch (training, sweep, claims, checks, stability) at 1 and 2 threads."""
    out = tmp_path_factory.mktemp("thread-counts")
    started = {}
    for threads in ("1", "2"):
        command = [sys.executable, "-m", "i2x_plugin.cli", "run", "--dataset", "digits", "--epochs", "3",
                   "--store", "none", "--no-report", "--out", str(out), "--run-id", f"threads-{threads}", "--quiet"]
        started[threads] = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            text=True, env={**os.environ, "OMP_NUM_THREADS": threads})
    for threads, process in started.items():
        _, err = process.communicate(timeout=900)
        assert process.returncode == 0, err[-3000:]
    return {threads: out / f"threads-{threads}" for threads in started}


def test_one_and_two_threads_train_the_same_weights(runs_at_two_thread_counts):
    one, two = (sorted((d / "checkpoints").glob("*.pt")) for d in runs_at_two_thread_counts.values())
    assert len(one) == len(two) == 4
    for a, b in zip(one, two):
        state_a, state_b = (torch.load(p, map_location="cpu", weights_only=True) for p in (a, b))
        assert state_a.keys() == state_b.keys()
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a), a.name


def test_one_and_two_threads_give_the_same_explanation(runs_at_two_thread_counts):
    one, two = (StructuredExplanation.load(d / "explanation") for d in runs_at_two_thread_counts.values())
    assert one.stability is not None and all(d.recurrence is not None for d in one.drivers)
    assert_same_explanation(one, two)
