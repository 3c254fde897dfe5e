"""``i2x run`` through the command line: a real small run end to end into the embedded graph server,
every kind of bad input, and Ctrl-C in the middle of the sweep."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import torch

from i2x_plugin.cli import main
from i2x_plugin.graph.questions import ask
from i2x_plugin.store import GraphStore

I2X = [sys.executable, "-m", "i2x_plugin.cli"]
SMALL = ["--dataset", "digits", "--epochs", "2", "--k", "8"]


def run_status(store_server, run_id: str) -> str | None:
    with GraphStore.embedded(store_server.data_dir) as store:
        rows = store.read("MATCH (r:Run {runId: $id}) RETURN r.status AS status", id=run_id)
    return rows[0]["status"] if rows else None


@pytest.fixture(scope="module")
def interrupted_then_complete(tmp_path_factory, store_server, digits_run):
    """Two real CLI runs into the session's embedded server: one stopped by Ctrl-C, then a full one.

    The first explains the shared digits checkpoints (no training) and gets SIGINT, sent to its whole
    process group as a terminal's Ctrl-C is, as soon as the sweep's progress bar appears. The second
    trains and runs end to end on the same server afterwards.
    """
    out = tmp_path_factory.mktemp("cli-runs")
    command = [*I2X, "run", "--dataset", "digits", "--checkpoints", str(digits_run.checkpoint_dir), "--k", "8",
               "--out", str(out), "--store-dir", str(store_server.data_dir), "--run-id", "cli-sigint"]
    # A suite started as a background job inherits SIGINT ignored, and so would the run; a terminal's run does not.
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a handler, not SIG_IGN, is reset by exec
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    err = bytearray()
    reader = threading.Thread(target=lambda: [err.extend(c) for c in iter(lambda: proc.stderr.read1(4096), b"")],
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + 300
    while b"I2X sweep" not in err and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert b"I2X sweep" in err, f"the sweep never started: {bytes(err[-2000:])!r}"
    os.killpg(proc.pid, signal.SIGINT)
    code = proc.wait(timeout=120)
    reader.join(timeout=10)
    interrupted = (code, err.decode(errors="replace"), run_status(store_server, "cli-sigint"))

    done = subprocess.run([*I2X, "run", *SMALL, "--out", str(out), "--store-dir", str(store_server.data_dir),
                           "--run-id", "cli-e2e"], capture_output=True, text=True, timeout=600)
    return out, interrupted, done


def test_ctrl_c_leaves_the_run_incomplete_and_the_next_run_fine(interrupted_then_complete, store_server):
    out, (code, err, status_after_stop), done = interrupted_then_complete
    assert code == 130 and "interrupted" in err
    summary = json.loads((out / "cli-sigint" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and "KeyboardInterrupt" in summary["error"]
    assert status_after_stop != "complete"
    assert store_server.status().running  # the graph server runs in its own session: untouched
    assert done.returncode == 0, done.stderr[-3000:]
    assert run_status(store_server, "cli-e2e") == "complete"
    assert run_status(store_server, "cli-sigint") != "complete"


def test_run_end_to_end_through_the_cli(interrupted_then_complete, store_server):
    out, _, done = interrupted_then_complete
    assert done.returncode == 0, done.stderr[-3000:]
    directory = out / "cli-e2e"
    text = done.stdout
    assert "I2X run cli-e2e: complete" in text
    assert str(directory / "report" / "index.html") in text
    assert "Three questions, answered by the graph" in text and "$ i2x ask learning_order --run cli-e2e" in text
    assert "Summary" in text and "total" in text
    for bar in ("training", "prototypes", "I2X sweep", "graph cli-e2e", "report"):
        assert bar in done.stderr, f"no progress bar for {bar}"
    summary = json.loads((directory / "summary.json").read_text())
    assert summary["status"] == "complete" and len(summary["answers"]) == 3
    # The store started and the graph was written in the background, each timed on its own.
    assert {"store", "store.background", "graph", "graph.background"} <= set(summary["stage_seconds"])
    with GraphStore.embedded(store_server.data_dir) as store:  # what the run printed is what the graph answers
        order = ask(store, "learning_order", run_id="cli-e2e").to_dicts()
        exemplars = ask(store, "prototype_exemplars", run_id="cli-e2e", k=0).to_dicts()
    assert summary["answers"][1]["rows"] == json.loads(json.dumps(order))
    # Exemplar samples point at their image files written beside the run.
    assert exemplars and all(r["imageUri"].startswith("file://") for r in exemplars)
    assert (directory / "samples" / f"sample-{exemplars[0]['sample']}.png").is_file()


def test_quiet_and_json_output(tmp_path, capsys, digits_run):
    given = ["--dataset", "digits", "--checkpoints", str(digits_run.checkpoint_dir), "--k", "8", "--store", "none",
             "--no-report", "--out", str(tmp_path)]
    assert main(["run", *given, "--run-id", "j", "--format", "json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["status"] == "complete" and result["report"] is None and result["store_uri"] is None
    assert "I2X sweep" not in captured.err  # no progress bars in JSON mode
    assert main(["run", *given, "--run-id", "q", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(tmp_path / "q") and captured.err == ""


# --- bad input -----------------------------------------------------------------------------------------


def cli_error(capsys, *argv: str) -> str:
    assert main(["run", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error:")
    return captured.err


def test_unknown_dataset_and_model_list_the_choices(capsys, tmp_path):
    err = cli_error(capsys, "--dataset", "imagenet", "--out", str(tmp_path))
    assert "unknown dataset 'imagenet'" in err and "mnist-5k" in err and "ImageFolder" in err
    err = cli_error(capsys, "--model", "vgg16", "--out", str(tmp_path))
    assert "unknown model 'vgg16'" in err and "small-cnn, resnet18" in err and "module:factory" in err
    assert not any(tmp_path.iterdir())


def test_checkpoint_directory_empty_or_foreign(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    assert "it is empty" in cli_error(capsys, *SMALL, "--checkpoints", str(tmp_path / "empty"), "--out",
                                      str(tmp_path / "o"))
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "weights.h5").write_text("keras")
    err = cli_error(capsys, *SMALL, "--checkpoints", str(tmp_path / "foreign"), "--out", str(tmp_path / "o"))
    assert "No checkpoint files" in err and "weights.h5" in err
    assert "does not exist" in cli_error(capsys, *SMALL, "--checkpoints", str(tmp_path / "nowhere"))


def test_config_file_with_unknown_or_mistyped_field(capsys, tmp_path):
    (tmp_path / "a.yaml").write_text("dataset: digits\nepochz: 3\n")
    err = cli_error(capsys, "--config", str(tmp_path / "a.yaml"))
    assert f"config file {tmp_path / 'a.yaml'}" in err and "epochz: Extra inputs are not permitted" in err
    (tmp_path / "b.json").write_text(json.dumps({"dataset": "digits", "i2x": {"k": "many"}}))
    err = cli_error(capsys, "--config", str(tmp_path / "b.json"))
    assert "i2x.k: Input should be a valid integer" in err and "'many'" in err
    err = cli_error(capsys, "--epochs", "0", "--out", str(tmp_path))
    assert "command line" in err and "epochs: Input should be greater than or equal to 1" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu(capsys, tmp_path):
    err = cli_error(capsys, *SMALL, "--device", "cuda", "--out", str(tmp_path))
    assert "no CUDA GPU" in err and "--device cpu" in err
    assert not any(tmp_path.iterdir())


def test_output_directory_not_writable(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    err = cli_error(capsys, *SMALL, "--out", str(blocker / "sub"))
    assert "Cannot write the run's output" in err and "--out" in err
    if os.geteuid() != 0:  # root writes anywhere: only the file-in-the-way case applies
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert "Cannot write" in cli_error(capsys, *SMALL, "--out", str(locked))


def _network() -> bool:
    try:
        socket.getaddrinfo("ossci-datasets.s3.amazonaws.com", 443)
        return True
    except OSError:
        return False


@pytest.mark.skipif(_network(), reason="this machine has network: the download would succeed")
def test_network_dataset_offline_explains_the_offline_choices(capsys, tmp_path):
    (tmp_path / "c.yaml").write_text(f"dataset: mnist\ndata_root: {tmp_path / 'data'}\nstore: none\n")
    err = cli_error(capsys, "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "o"), "--quiet")
    assert "Could not download mnist" in err and "digits, mnist-5k, or fashion-mnist" in err
    summary = json.loads(next((tmp_path / "o").glob("*/summary.json")).read_text())
    assert summary["status"] == "failed"
