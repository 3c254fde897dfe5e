"""``i2x store browser``: the connect details it prints, bad input, loopback only, and the lifecycle rule
(the bridge outlives its server and reaches the next one; a server started for the bridge never outlives it)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from store_procs import gone, running
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from i2x_plugin.cli import main
from i2x_plugin.store import EmbeddedServer, StoreBridgeError
from i2x_plugin.store.bridge import BRIDGE_MODULE, bridge_status, start_bridge
from i2x_plugin.store.lifecycle import free_port, pid_alive


def browser(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["store", "browser", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (from /proc/net/tcp and tcp6, no traffic)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


def test_browser_command_connect_details_reuse_and_stop(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "db")
    code, out, _ = browser(capsys, "--data-dir", db)  # the server is not running: it is started for the bridge
    assert code == 0, out
    port = int(re.search(r"Connect URL   bolt://localhost:(\d+)\n", out).group(1))
    creds = tmp_path / "db" / "credentials.json"
    assert "  Database      i2x " in out
    assert "  Username      i2x_reader   (read-only" in out
    assert f'  Password      the "reader" value in {creds}' in out
    assert "not neo4j://" in out and "The store stops with the bridge, once no command uses it." in out
    assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1 only
    assert not EmbeddedServer(db).status().kept

    code, again, _ = browser(capsys, "--data-dir", db)  # a second call reuses the running bridge
    assert code == 0 and again.startswith("A bridge for this store is already running")
    assert again.split("\n", 1)[1] == out
    assert main(["store", "status", "--data-dir", db]) == 0
    assert f"Browser bridge: bolt://localhost:{port}" in capsys.readouterr().out

    code, _, err = browser(capsys, "--data-dir", db, "--port", str(free_port()))
    assert code == 1 and f"already listens on port {port}" in err

    code, admin, warning = browser(capsys, "--data-dir", db, "--admin")
    assert code == 0 and "  Username      root   (administrator" in admin and '"root" value' in admin
    assert warning.startswith("warning:") and "Omit --admin" in warning

    pids = running(tmp_path / "db") + running(tmp_path / "db", BRIDGE_MODULE)
    assert len(pids) == 2
    assert main(["store", "stop", "--data-dir", db]) == 0
    assert capsys.readouterr().out.strip() == "bridge stopped; store stopped"
    assert not any(pid_alive(p, "i2x_plugin.store._") for p in pids)
    assert not (tmp_path / "db" / "bridge.json").exists()


def test_bad_requests_are_refused_before_anything_starts(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "db")
    code, _, err = browser(capsys, "--data-dir", db, "--host", "0.0.0.0")
    assert code == 1 and "Refusing to listen on 0.0.0.0" in err and "loopback addresses only" in err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = browser(capsys, "--data-dir", db, "--port", str(port))
    assert code == 1 and f"Bridge port {port} on 127.0.0.1 is already in use" in err and "--port" in err
    assert not EmbeddedServer(db).status().running and not running(tmp_path / "db")


def test_the_bridge_outlives_its_server_but_the_server_not_its_bridge(tmp_path: Path) -> None:
    db = tmp_path / "db"
    bridge = start_bridge(db)
    EmbeddedServer(db).stop()  # the server goes (stopped, crashed, killed)...
    assert gone(db)
    assert pid_alive(bridge.pid, BRIDGE_MODULE) and bridge_status(db).pid == bridge.pid  # ...the bridge stays
    with pytest.raises(InvalidStatus) as refused:  # and refuses Browser's WebSocket, saying what to do
        connect(f"ws://127.0.0.1:{bridge.port}", open_timeout=30)
    assert refused.value.response.status_code == 503
    assert b"not running: start it (i2x store start)" in refused.value.response.body

    again = start_bridge(db)  # i2x store browser again: a server for the same bridge, on the same port
    assert again.reused and (again.pid, again.port) == (bridge.pid, bridge.port) and running(db)
    os.kill(bridge.pid, signal.SIGKILL)  # the bridge dies without any chance to clean up...
    assert gone(db), "the server started for the bridge outlived it"  # ...and its server stops itself
    assert not EmbeddedServer(db).status().running


@pytest.mark.parametrize("host", ["192.0.2.1", "example.org", "::"])
def test_only_loopback_hosts(tmp_path: Path, host: str) -> None:
    with pytest.raises(StoreBridgeError, match="loopback addresses only"):
        start_bridge(tmp_path / "db", host=host)
    assert not (tmp_path / "db").exists()  # refused before the store was touched


def test_bridge_process_itself_refuses_a_non_loopback_host(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", BRIDGE_MODULE, "--data-dir", str(tmp_path), "--host", "0.0.0.0",
                           "--port", "0", "--bolt-port", "1", "--server-pid", "1"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "loopback addresses only" in done.stderr
    assert not any(tmp_path.iterdir())
