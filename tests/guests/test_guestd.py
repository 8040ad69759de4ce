"""guestd over a socket pair instead of a virtio-serial port (no QEMU)."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from netmanager.guests import guestd


@pytest.fixture
def channel() -> Any:
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    daemon = guestd.Daemon(theirs.fileno())
    thread = threading.Thread(target=daemon.serve, daemon=True)
    thread.start()
    reader = ours.makefile("rb")

    def ask(message: dict[str, Any]) -> dict[str, Any]:
        ours.sendall(json.dumps(message).encode() + b"\n")
        answer: dict[str, Any] = json.loads(reader.readline())
        return answer

    yield ask
    daemon.stopping.set()
    thread.join()
    reader.close()
    ours.close()
    theirs.close()


def test_run_hello_write_read_and_errors(channel: Any, tmp_path: Path) -> None:
    answer = channel({"id": 1, "argv": [sys.executable, "-c", "print(input())"], "stdin": "x\n"})
    assert answer == {"id": 1, "rc": 0, "stdout": "x\n", "stderr": ""}
    assert channel({"id": 2, "op": "hello"})["hello"] == "guestd"
    assert channel({"id": 3, "argv": ["/nonexistent/tool"]})["rc"] == 127
    assert "error" in channel({"id": 4, "argv": "not a list"})
    slow = channel({"id": 5, "argv": ["sleep", "10"], "timeout": 0.2})
    assert slow["timeout"] is True and slow["rc"] != 0
    target = tmp_path / "sub" / "f.toml"
    assert channel({"id": 6, "op": "write", "path": str(target), "data": "a=1\n"})["id"] == 6
    assert target.read_text() == "a=1\n" and target.stat().st_mode & 0o777 == 0o600
    assert channel({"id": 7, "op": "read", "path": str(target)})["data"] == "a=1\n"
    missing = channel({"id": 8, "op": "read", "path": str(tmp_path / "none")})
    assert missing["missing"] is True and "data" not in missing
    assert "error" in channel({"id": 9, "op": "read", "path": str(tmp_path)})  # a directory


def test_spawn_poll_kill(channel: Any, tmp_path: Path) -> None:
    log = tmp_path / "spawn.log"
    pid = channel({"id": 1, "op": "spawn", "argv": ["sleep", "30"], "log": str(log)})["pid"]
    assert channel({"id": 2, "op": "poll", "pid": pid})["rc"] is None
    channel({"id": 3, "op": "kill", "pid": pid, "signal": 9})
    for _ in range(100):
        rc = channel({"id": 4, "op": "poll", "pid": pid})["rc"]
        if rc is not None:
            break
        threading.Event().wait(0.05)
    assert rc == -9
    assert "error" in channel({"id": 5, "op": "kill", "pid": os.getpid()})
