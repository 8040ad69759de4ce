"""The driver of a schedule's migrations as status and stop see it (no kernel): its
plan and rows read back, a driver that died said so, a PID that is another process's
never signalled."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netmanager.apply import schedule
from netmanager.compile.schedule import Move
from netmanager.verify import moveplan

MOVES = (
    Move(1_000_000, "api", "rack1", "spare", False, "client", "virtual.xml:33"),
    Move(3_000_000, "api", "spare", "rack1", False, "client", "virtual.xml:33"),
)


def _plan(directory: Path, **fields: object) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    doc = {
        "topology": "lab",
        "moves": [m.as_json() for m in MOVES],
        "created_unix": time.time(),
        "start_unix": time.time(),
        "state": "running",
        "pid": None,
        **fields,
    }
    (directory / "moves.json").write_text(json.dumps(doc))


def test_status_reads_the_plan_and_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETMANAGER_STATE_DIR", str(tmp_path))
    assert schedule.moves_status("lab") is None
    directory = schedule.moves_dir("lab")
    _plan(directory, state="finished")
    with (directory / "moves.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=moveplan.FIELDS)
        writer.writeheader()
        writer.writerow({n: "1" for n in moveplan.FIELDS} | {"result": "ok"})
    found = schedule.moves_status("lab")
    assert found is not None and found.state == "finished" and found.next is None
    assert found.as_json()["done"] == 1 and found.planned == 2
    # running, but its driver is gone (no PID of that command line): ended; what was
    # next is not
    _plan(directory, state="running", pid=os.getpid())
    found = schedule.moves_status("lab")
    assert found is not None and found.state == "ended" and found.next is None
    # a driver just spawned, before it wrote its PID: starting, the first move next
    _plan(directory, state="starting")
    (directory / "moves.csv").unlink()
    found = schedule.moves_status("lab")
    assert found is not None and found.state == "starting"
    assert found.next == MOVES[0].as_json()


def test_stop_signals_the_driver_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that is not the driver (its command line says so) is never signalled,
    even under the driver's PID; the driver itself is, and ends after its move."""
    monkeypatch.setenv("NETMANAGER_STATE_DIR", str(tmp_path))
    directory = schedule.moves_dir("lab")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _plan(directory, pid=other.pid)
        assert schedule.running_moves() == []
        assert schedule.stop_moves("lab") is False
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
    # a driver whose first move is far away: stop ends it before it starts one
    far = (Move(600_000_000, "api", "rack1", "spare", False, None, "virtual.xml:9"),)
    pid = moveplan.start("real.xml", "virtual.xml", "lab", far, 0.0)
    try:
        deadline = time.monotonic() + 20
        while schedule.running_moves() != ["lab"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert schedule.running_moves() == ["lab"]
        assert schedule.stop_moves("lab", wait_s=10.0) is True
        assert schedule.running_moves() == []
        found = schedule.moves_status("lab")
        assert found is not None and found.state == "stopped" and found.rows == ()
    finally:
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, 9)
        os.waitpid(pid, 0)
