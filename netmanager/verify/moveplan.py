"""A schedule's migrations (``<migrate>`` in ``<schedule>``), run by the manager as
Themis ran its plans of migrations.

The hosts' agents play a schedule's link changes from their own clocks; a migration
involves several hosts at once, so the manager runs them: ``netmanager schedule start``
(or ``apply --start-schedule``) starts a *driver* — this module run as a process of its
own, in a session of its own, so that the command returns — with the moves planned by
:func:`netmanager.compile.schedule.plan_moves` and the delay until the schedule's common
start.  At each move's time the driver runs ``netmanager migrate`` (through
:func:`netmanager.apply.migrate.migrate`, taking the apply lock as any apply does), or,
where the move names a ``peer``, measures it as ``migrate --measure --peer`` does (a
session directory per move: its CSV, figure and summary).  Each move ends as a row of
``moves.csv`` (its schedule time, how late it started, how long it took, from and to, the
outcome — ``ok`` or the error's code and message —, the downtime where measured, its line
in virtual.xml); a move that fails does not end the plan (the next one is asked from
where the VM is).

Files, in ``STATE_DIR/schedules/TOPOLOGY/`` (see :mod:`netmanager.apply.schedule`):
``moves.json`` (the plan, the driver's PID, its state), ``moves.csv``, ``moves.log``
(the driver's output), ``move-N/`` (a measured move's session).  ``schedule stop`` and
``destroy`` end the driver by its PID (SIGTERM): a move in progress finishes first, no
other starts.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netmanager.apply import schedule as schedules
from netmanager.compile.schedule import Move
from netmanager.errors import NetmanagerError
from netmanager.statedir import write_json

FIELDS = (
    "schedule_s",
    "late_ms",
    "seconds",
    "vm",
    "from",
    "to",
    "result",
    "downtime_ms",
    "source",
)


def start(
    real: str | Path, virtual: str | Path, topology: str, moves: Sequence[Move], delay_s: float
) -> int:
    """Start the driver of ``moves`` (their times after a start ``delay_s`` from now);
    its PID.  A driver of the topology's that still runs is ended first."""
    schedules.stop_moves(topology)
    directory = schedules.moves_dir(topology)
    directory.mkdir(parents=True, exist_ok=True)
    for old in (directory / "moves.csv", directory / "moves.log"):
        old.unlink(missing_ok=True)
    plan = {
        "topology": topology,
        "real": str(Path(real).resolve()),
        "virtual": str(Path(virtual).resolve()),
        "moves": [m.as_json() for m in moves],
        "created_unix": time.time(),
        "start_unix": time.time() + delay_s,
        "state": "starting",
        "pid": None,
    }
    write_json(directory / "moves.json", plan)
    with (directory / "moves.log").open("ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "netmanager.verify.moveplan",
                str(directory),
                str(round(delay_s * 1000)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    return proc.pid


def _update(directory: Path, **fields: Any) -> None:
    path = directory / "moves.json"
    doc = json.loads(path.read_text())
    doc.update(fields)
    write_json(path, doc)


def run(directory: Path, delay_ms: int) -> int:
    """The driver: each move at its time (see the module)."""
    start = time.monotonic() + delay_ms / 1000
    stopping = False

    def stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    doc = json.loads((directory / "moves.json").read_text())
    moves = [Move.from_json(m) for m in doc["moves"]]
    real, virtual = doc["real"], doc["virtual"]
    _update(directory, pid=os.getpid(), state="running")
    done = 0
    with (directory / "moves.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        f.flush()
        for number, move in enumerate(moves, start=1):
            while not stopping:
                left = start + move.at_us / 1e6 - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(left, 0.2))
            if stopping:
                break
            began = time.monotonic()
            late_ms = (began - start - move.at_us / 1e6) * 1000
            result, downtime, source = _one(
                real, virtual, doc["topology"], move, directory / f"move-{number}"
            )
            writer.writerow(
                {
                    "schedule_s": f"{move.at_us / 1e6:.3f}",
                    "late_ms": f"{late_ms:.1f}",
                    "seconds": f"{time.monotonic() - began:.3f}",
                    "vm": move.vm,
                    "from": source,
                    "to": move.to,
                    "result": result,
                    "downtime_ms": "" if downtime is None else f"{downtime:.1f}",
                    "source": move.origin,
                }
            )
            f.flush()
            done += 1
    _update(directory, state="stopped" if stopping else "finished", done=done)
    return 0


def _one(
    real: str, virtual: str, topology: str, move: Move, out: Path
) -> tuple[str, float | None, str]:
    """One move: (its outcome, its measured downtime in ms or None, the host it left:
    where the record has the VM, which a move before that failed may have left)."""
    from netmanager.apply.migrate import DEFAULT_PRECOPY, migrate
    from netmanager.apply.records import records

    record = records().get(topology)
    source = record.placement.get(move.vm, "?") if record is not None else "?"
    precopy = DEFAULT_PRECOPY if move.precopy else None
    try:
        if move.peer is None:
            migrate(real, virtual, move.vm, move.to, precopy=precopy)
            return "ok", None, source
        from netmanager.verify.migration import measure

        measured = measure(
            real, virtual, move.vm, move.to, peer=move.peer, repeat=1, out=out, precopy=precopy
        )
        return "ok", measured.runs[0].downtime_s * 1000, source
    except NetmanagerError as exc:
        first = exc.diagnostics[0]
        return f"{first.code} {first.message}", None, source
    except Exception as exc:
        return f"error {type(exc).__name__}: {exc}", None, source


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run a schedule's migrations (internal)")
    parser.add_argument("directory", type=Path)
    parser.add_argument("delay_ms", type=int)
    args = parser.parse_args(argv)
    return run(args.directory, args.delay_ms)


if __name__ == "__main__":
    sys.exit(main())
