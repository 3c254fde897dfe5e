"""Kept and transient servers: a command stops the server it started, unless asked to keep it, and never
stops one that another command still holds (i2x_plugin.store.lifecycle)."""

from __future__ import annotations

from pathlib import Path

from store_procs import gone, running

from i2x_plugin.cli import main
from i2x_plugin.store import EmbeddedServer, GraphStore
from i2x_plugin.store.lifecycle import Lease, live_leases


def test_transient_server_stops_with_its_last_holder(tmp_path: Path, capsys) -> None:
    first = GraphStore.embedded(tmp_path / "db", keep=False)
    second = GraphStore.embedded(tmp_path / "db", keep=False)  # another command on the same server
    status = EmbeddedServer(tmp_path / "db").status()
    assert status.running and not status.kept and second.server.pid == first.server.pid
    first.close()
    assert EmbeddedServer(tmp_path / "db").status().running, "stopped under a command that still holds it"
    second.close()
    assert not EmbeddedServer(tmp_path / "db").status().running and gone(tmp_path / "db")

    third = GraphStore.embedded(tmp_path / "db", keep=False)
    assert main(["store", "start", "--data-dir", str(tmp_path / "db")]) == 0  # the user asks to keep it
    assert "kept: runs until i2x store stop" in capsys.readouterr().out
    third.close()
    try:
        assert EmbeddedServer(tmp_path / "db").status().running
    finally:
        EmbeddedServer(tmp_path / "db").stop()
    assert gone(tmp_path / "db")


def test_a_lease_ends_with_its_process(tmp_path: Path) -> None:
    lease = Lease(tmp_path)
    assert live_leases(tmp_path) == 1
    (tmp_path / "leases" / "12345-dead.lease").write_text("12345")  # left by a process that died
    assert live_leases(tmp_path) == 1 and not (tmp_path / "leases" / "12345-dead.lease").exists()
    lease.release()
    assert live_leases(tmp_path) == 0


def test_run_and_ask_leave_no_jvm_unless_kept(tmp_path: Path, digits_run, capsys) -> None:
    db = tmp_path / "db"
    run = ["run", "--dataset", "digits", "--checkpoints", str(digits_run.checkpoint_dir), "--k", "8", "--no-report",
           "--out", str(tmp_path / "out"), "--store-dir", str(db)]
    assert main([*run, "--run-id", "gone"]) == 0
    assert "stopped again" in capsys.readouterr().out
    assert not EmbeddedServer(db).status().running and gone(db), "i2x run left the graph server running"

    assert main(["ask", "learning_order", "--store-dir", str(db)]) == 0
    assert "run: gone" in capsys.readouterr().out  # the graph outlived its server
    assert gone(db), "i2x ask left the graph server running"

    assert main([*run, "--run-id", "kept", "--keep-store"]) == 0
    try:
        assert "stopped again" not in capsys.readouterr().out
        assert EmbeddedServer(db).status().kept and running(db)
        assert main(["ask", "learning_order", "--store-dir", str(db)]) == 0
        assert running(db), "i2x ask stopped a server it did not start"
    finally:
        EmbeddedServer(db).stop()
    assert gone(db)
