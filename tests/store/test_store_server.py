"""The embedded ArcadeDB server: process lifecycle, data dir, ports, credentials, CLI."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from i2x_plugin.cli import main
from i2x_plugin.store import (
    EmbeddedServer,
    GraphStore,
    StoreDataDirError,
    StorePortInUseError,
    StoreStartError,
    default_data_dir,
)
from i2x_plugin.store.server import CREDENTIALS_FILE, STATE_FILE


def test_running_server_is_found_and_reused(store_server: EmbeddedServer) -> None:
    st = store_server.status()
    assert st.running and st.pid == store_server.pid and st.uri == store_server.uri
    assert st.uri.startswith("bolt://127.0.0.1:")
    again = EmbeddedServer(store_server.data_dir).start()
    assert (again.pid, again.uri) == (store_server.pid, store_server.uri)


def test_credentials_are_private_and_long(store_server: EmbeddedServer) -> None:
    path = store_server.data_dir / CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(store_server.auth[1]) >= 8 and store_server.auth[1] != store_server.reader_auth[1]


def test_restart_keeps_data_and_password(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "db").start()
    password = server.auth[1]
    try:
        with GraphStore.embedded(server.data_dir) as store:
            store.run_write("CREATE (n:Kept {name: $name})", name="survivor")
        assert server.stop()
        assert not server.status().running and not (server.data_dir / STATE_FILE).exists()
        server = EmbeddedServer(tmp_path / "db").start()
        assert server.auth[1] == password
        with GraphStore.embedded(server.data_dir) as store:
            assert store.read("MATCH (n:Kept) RETURN n.name AS name") == [{"name": "survivor"}]
    finally:
        server.stop()
    assert not server.stop()  # already stopped: nothing to do


def test_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(StorePortInUseError, match=rf"{port}.*omit it"):
            EmbeddedServer(tmp_path / "db", port=port).start()
    assert not EmbeddedServer(tmp_path / "db").status().running


def test_unwritable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    # A path under a regular file can never be created, even by root (chmod would not stop root).
    (tmp_path / "file").write_text("x")
    bad = tmp_path / "file" / "sub"
    with pytest.raises(StoreDataDirError, match="I2X_STORE_DIR") as err:
        EmbeddedServer(bad).start()
    assert str(bad) in str(err.value)


def test_data_dir_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("I2X_STORE_DIR", str(tmp_path / "x"))
    assert default_data_dir() == tmp_path / "x"
    assert EmbeddedServer().data_dir == tmp_path / "x"
    monkeypatch.delenv("I2X_STORE_DIR")
    assert default_data_dir().parts[-2:] == ("i2x-plugin", "arcadedb")


def test_server_that_dies_shows_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("I2X_STORE_HEAP", "not-a-size")  # the JVM refuses to start
    with pytest.raises(StoreStartError, match="server.log"):
        EmbeddedServer(tmp_path / "db", start_timeout=60).start()


def test_cli_store_status_and_stop(store_server: EmbeddedServer, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["store", "status", "--data-dir", str(store_server.data_dir)]) == 0
    assert store_server.uri in capsys.readouterr().out
    assert main(["store", "status", "--data-dir", str(tmp_path)]) == 3
    assert main(["store", "stop", "--data-dir", str(tmp_path)]) == 0
    assert "not running" in capsys.readouterr().out
