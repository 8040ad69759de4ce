"""``netmanager migrate --measure``: what a migration does to the VM's network, measured
as Themis measured it (seed 004).

Each run starts a receiver in the migrating VM and, in a peer VM that shares a network
with it, a sender of a UDP stream at the chosen rate and of a 100 Hz echo
(:mod:`netmanager.verify.outageworker`), lets them run a moment, migrates the VM, lets
them run a moment more, and analyses what arrived (:mod:`netmanager.verify.outage`): the
network downtime (the longest gap), the packets lost, jitter, throughput over time and the
migration's own duration.  Repeated runs go back and forth between the two hosts (the
interval between them given); the session is written to a directory: a CSV of the runs, a
CSV and a figure per run, and a summary (min, median, p95, max).  Both workers run in
namespaces of this machine, so the migration's start and end (this process's monotonic
clock) are on the sender's clock.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netmanager import programs
from netmanager.apply.commit import Progress, quiet
from netmanager.apply.migrate import DEFAULT_PRECOPY, MigrateOutcome, Precopy, migrate
from netmanager.apply.records import Record, applied_record
from netmanager.errors import Loc, NetmanagerError, single
from netmanager.verify import outage

#: how long the stream runs before the migration and after it
SETTLE_S = 0.5
#: how long a worker may take to start (its sockets bound)
READY_S = 15.0


@dataclass(frozen=True)
class MeasuredMigrations:
    runs: tuple[outage.OutageRun, ...]
    migrations: tuple[MigrateOutcome, ...]
    directory: Path
    files: tuple[Path, ...]

    @property
    def summary(self) -> outage.OutageSummary:
        return outage.summarise(self.runs)

    def as_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "summary": self.summary.as_dict(),
            "runs": [
                {**r.row(), "from": m.source, "to": m.target}
                for r, m in zip(self.runs, self.migrations, strict=True)
            ],
            "files": [str(f) for f in self.files],
        }


def _problem(code: str, message: str, hint: str = "") -> NetmanagerError:
    return single(code, Loc("netmanager"), message, hint, "migrate")


def _spot(record: Record, vm: str, peer: str | None) -> tuple[str, str, str, str]:
    """(the VM's namespace, its address towards the peer, the peer, the peer's
    namespace): the peer is the one given, else the first VM by name that shares a
    network with it."""
    ports = [p for c in record.hosts.values() for p in c.ports]
    mine = {p.network: p for p in ports if p.vm == vm}
    if not mine:
        raise _problem("E780", f"topology '{record.topology}' has no VM '{vm}' with a port")
    others = sorted((p.vm, p.network) for p in ports if p.vm != vm and p.network in mine)
    if peer is not None:
        others = [(v, n) for v, n in others if v == peer]
    if not others:
        raise _problem(
            "E786",
            f"no VM shares a network with '{vm}'"
            + (f" as '{peer}' would" if peer is not None else ""),
            "the measurement needs a peer VM on one of its networks (--peer VM)",
        )
    peer_vm, network = others[0]
    port = mine[network]
    peer_port = next(p for p in ports if p.vm == peer_vm and p.network == network)
    return port.vm_namespace, str(port.ip.ip), peer_vm, peer_port.vm_namespace


def _inside(namespace: str, argv: list[str]) -> list[str]:
    return [programs.path("nsenter"), f"--net=/run/netns/{namespace}", *argv]


def _wait_ready(directory: Path, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + READY_S
    while not (directory / "ready").exists():
        if proc.poll() is not None:
            raise _problem("E786", f"the {what} of the measurement ended at its start")
        if time.monotonic() > deadline:
            raise _problem("E786", f"the {what} of the measurement did not start in time")
        time.sleep(0.02)


def _stop(directory: Path, proc: subprocess.Popen[bytes]) -> None:
    (directory / "stop").touch()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measure(
    real: str | Path,
    virtual: str | Path,
    vm: str,
    to: str,
    *,
    peer: str | None = None,
    rate_bps: float = 2e6,
    repeat: int = 1,
    interval_s: float = 1.0,
    out: Path | None = None,
    progress: Progress = quiet,
    base_dir: str | Path | None = None,
    on_run: Callable[[outage.OutageRun, MigrateOutcome], None] | None = None,
    precopy: Precopy | None = DEFAULT_PRECOPY,
) -> MeasuredMigrations:
    """Migrate ``vm`` ``repeat`` times, to ``to`` and back, each run measured (see the
    module); the session is written to ``out``."""
    from netmanager.inputs.loader import load

    if repeat < 1:
        raise _problem("E786", f"--repeat {repeat}: at least one run")
    topology = load(real, virtual, base_dir=base_dir).topology
    record = applied_record(topology, "migrate")
    home = record.placement.get(vm)
    if home is None:
        raise _problem("E780", f"topology '{topology}' has no VM '{vm}'")
    namespace, address, _, peer_namespace = _spot(record, vm, peer)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    directory = out or Path(f"migrate-{topology}-{vm}-{stamp}")
    work = directory / "workers"
    runs: list[outage.OutageRun] = []
    done: list[MigrateOutcome] = []
    for number in range(1, repeat + 1):
        if number > 1:
            time.sleep(interval_s)
        target = to if number % 2 == 1 else home
        session = secrets.token_hex(4)
        received, sent = work / f"run-{number}-receiver", work / f"run-{number}-sender"
        received.mkdir(parents=True, exist_ok=True)
        sent.mkdir(parents=True, exist_ok=True)
        python = sys.executable
        receiver = subprocess.Popen(
            _inside(
                namespace,
                outage.receive_argv(received, python=python, bind=address, session=session),
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        sender: subprocess.Popen[bytes] | None = None
        try:
            _wait_ready(received, receiver, "receiver")
            sender = subprocess.Popen(
                _inside(
                    peer_namespace,
                    outage.send_argv(
                        sent, address, python=python, rate_bps=rate_bps, session=session
                    ),
                ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _wait_ready(sent, sender, "sender")
            time.sleep(SETTLE_S)
            progress(f"run {number}: {vm} to {target}")
            began = time.monotonic()
            moved = migrate(real, virtual, vm, target, base_dir=base_dir, precopy=precopy)
            ended = time.monotonic()
            time.sleep(SETTLE_S)
        finally:
            if sender is not None:
                _stop(sent, sender)
            _stop(received, receiver)
        run = outage.analyse_files(
            sent / "result.json", received / "result.json", (began, ended), run=number
        )
        runs.append(run)
        done.append(moved)
        if on_run is not None:
            on_run(run, moved)
    files = outage.write_session(runs, directory)
    for control in (*work.rglob("ready"), *work.rglob("stop")):  # the workers' results stay
        control.unlink(missing_ok=True)
    return MeasuredMigrations(tuple(runs), tuple(done), directory, tuple(files))
