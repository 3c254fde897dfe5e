"""The sweep sharded over torch.distributed ranks: two gloo processes on the CPU under torchrun, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from i2x_plugin import StructuredExplanation
from i2x_plugin.cli import main
from i2x_plugin.method.distributed import Ranks, available_cores
from i2x_plugin.app.run import RunConfig, run_main
from i2x_plugin.store import GraphStore
from same_explanation import assert_same_explanation

REPO = Path(__file__).resolve().parents[2]
I2X = [sys.executable, "-m", "i2x_plugin.cli"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]


def _run(command: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **env})


@pytest.fixture(scope="module")
def one_and_two_processes(digits_run, tmp_path_factory) -> tuple[StructuredExplanation, StructuredExplanation]:
    """The digits checkpoints explained by ``i2x run`` in this process, and by ``i2x run --nproc 2`` (gloo)."""
    out = tmp_path_factory.mktemp("dist-runs")
    settings = dict(dataset="digits", checkpoints=digits_run.checkpoint_dir, store="none", report=False, out=out)
    one = run_main(RunConfig(run_id="one", **settings), progress=False)
    two = _run([*I2X, "run", "--nproc", "2", "--dataset", "digits", "--checkpoints", str(digits_run.checkpoint_dir),
                "--store", "none", "--no-report", "--out", str(out), "--run-id", "two", "--quiet"])
    assert two.returncode == 0, two.stderr[-3000:]
    return StructuredExplanation.load(one.explanation_dir), StructuredExplanation.load(out / "two" / "explanation")


def test_two_gloo_processes_give_the_explanation_of_one(one_and_two_processes):
    """Bit for bit, every field: the ranks run one thread each, this process torch's default."""
    assert_same_explanation(*one_and_two_processes)


def test_shards_are_contiguous_batch_aligned_and_cover_every_sample():
    for n, unit, world in ((1438, 256, 2), (1000, 64, 3), (10, 256, 4), (0, 8, 2)):
        shards = [Ranks(r, world).shard(n, unit) for r in range(world)]
        assert [i for s in shards for i in s] == list(range(n))
        assert all(s.start % unit == 0 for s in shards if len(s))
        assert max(map(len, shards)) - min(map(len, shards)) <= unit


# --- bad input ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scenario, message", [
    ("fewer-samples", "The ranks disagree: probe samples: rank 0 has 597, rank 1 has 596."),
    ("changed-checkpoint", "The ranks disagree: checkpoints #6: rank 0 has ckpt-0006.pt sha256:"),  # the last one
])
def test_ranks_that_disagree_fail_at_once_with_one_message(digits_run, tmp_path, scenario, message):
    done = _run([*TORCHRUN, "tests/distributed_worker.py", scenario, str(digits_run.checkpoint_dir), str(tmp_path)])
    assert done.returncode != 0
    errors = {(tmp_path / f"rank-{r}.txt").read_text() for r in (0, 1)}
    assert len(errors) == 1, errors  # the same message on every rank
    assert message in errors.pop()


def test_a_rank_that_hangs_fails_the_others_by_the_timeout(digits_run, tmp_path):
    done = _run([*TORCHRUN, "tests/distributed_worker.py", "hangs", str(digits_run.checkpoint_dir), str(tmp_path)],
                I2X_TEST_TIMEOUT="5")
    assert done.returncode != 0
    assert "lost contact with another rank" in (tmp_path / "rank-0.txt").read_text()


def test_a_rank_that_dies_fails_the_run_and_no_run_is_complete(digits_run, store_server, tmp_path):
    """Rank 1 exits mid-sweep. Rank 0 says so in one of two ways, whichever comes first: its next collective
    fails ("lost contact"), or torchrun, having seen rank 1 exit, stops it with SIGTERM. On a quiet machine the
    collective wins; under load (a second test suite beside it) SIGTERM did, so both are accepted."""
    done = _run([*I2X, "run", "--nproc", "2", "--dataset", "digits", "--model", "tests.distributed_worker:dying_cnn",
                 "--checkpoints", str(digits_run.checkpoint_dir), "--store-dir", str(store_server.data_dir),
                 "--no-report", "--out", str(tmp_path), "--run-id", "dist-dies", "--quiet"])
    assert done.returncode != 0
    assert ("error (rank 0 of 2): lost contact with another rank while running the sweep" in done.stderr
            or "error (rank 0 of 2): stopped by SIGTERM: torchrun stops every rank when one of them fails"
            in done.stderr), done.stderr[-2000:]
    summary = (tmp_path / "dist-dies" / "summary.json").read_text()
    assert '"status": "failed"' in summary
    with GraphStore.embedded(store_server.data_dir) as store:
        statuses = store.read("MATCH (r:Run {runId: 'dist-dies'}) RETURN r.status AS status")
    assert all(row["status"] != "complete" for row in statuses)


def test_more_processes_than_cores_is_refused(capsys):
    cores = available_cores()
    assert main(["run", "--nproc", str(cores + 1), "--dataset", "digits", "--store", "none"]) == 2
    assert f"--nproc {cores + 1} but only {cores} CPU core(s) are available" in capsys.readouterr().err


def test_more_processes_than_gpus_is_refused(capsys):
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    nproc = max(gpus + 1, 2)
    assert main(["run", "--nproc", str(nproc), "--device", "cuda", "--dataset", "digits", "--store", "none"]) == 2
    assert f"--nproc {nproc} asks for one GPU per process, but this machine has {gpus} CUDA device(s)" in \
        capsys.readouterr().err
