"""``netmanager schedule start|status|stop``: a topology's ``<schedule>`` played by its
hosts' agents (NETMANAGER-MIB's nmSchedule; see :mod:`snmp_agents.schedule`).

start compiles the schedule of virtual.xml against the topology as applied (its
placement: each step goes to the host of its VM), refuses what a host's kernel lacks
before anything starts (NetEm on a host emulated here), loads each host's share into its
agent, then tells every agent the delay until one common start (``lead_s`` from now): the
agents play their steps from their own monotonic clocks, so that neither the manager's
latency nor the hosts' clocks enter the timing.  status reads what each agent did and
what comes next; stop ends them.  Topologies applied with ``--local`` have no agent to
play a schedule: refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netmanager.apply.records import Record, applied_record
from netmanager.apply.runtime import _agent_clients
from netmanager.compile.schedule import Move, Step, compile_schedule, needs_netem, plan_moves
from netmanager.errors import ExitCode, Loc, NetmanagerError, single
from netmanager.host.runtime import LOG_FIELDS
from netmanager.inputs.model import Real, Virtual
from netmanager.statedir import read_json, state_dir

CHUNK = 1000  # bytes per nmScheduleChunkData
CHUNKS_PER_REQUEST = 1
STATES = {
    1: "empty",
    2: "loaded",
    3: "armed",
    4: "running",
    5: "finished",
    6: "stopped",
    7: "failed",
}
OPERATION = {"load": 2, "start": 3, "stop": 4}
#: how many of the last steps status shows, where it can read the log
RECENT = 5


class ScheduleFailed(NetmanagerError):
    exit_code = ExitCode.APPLY_FAILED


def _problem(
    code: str,
    message: str,
    hint: str = "",
    cls: type[NetmanagerError] = NetmanagerError,
    loc: Loc | None = None,
) -> NetmanagerError:
    return single(code, loc or Loc("netmanager"), message, hint, "schedule", cls)


@dataclass(frozen=True)
class HostSchedule:
    """What one host's agent says of its share."""

    host: str
    state: str
    topology: str
    steps: int
    done: int
    elapsed_ms: int
    next_ms: int
    late_max_ms: float
    last_error: str
    log: str
    #: the last steps made, from the log where it is a file of this machine (a host
    #: emulated here); () for another machine's
    recent: tuple[dict[str, str], ...] = ()

    def as_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["recent"] = list(self.recent)
        return out


def _record(topology: str) -> Record:
    record = applied_record(topology, "schedule")
    if record.transport != "agents":
        raise _problem(
            "E774",
            f"topology '{topology}' was applied with --local: a schedule is played by the "
            "hosts' agents",
            "apply it without --local",
        )
    return record


#: what starts a schedule's migrations: called with the moves and the delay in seconds
#: until the schedule's common start (see netmanager.verify.moveplan.start)
MovesStarter = Callable[[tuple[Move, ...], float], None]


def start(
    virtual: Virtual,
    *,
    lead_s: float = 1.0,
    real: Real | None = None,
    moves: MovesStarter | None = None,
) -> dict[str, int]:
    """Load and start the schedule of an applied topology; the steps per host.  Its
    migrations (``<migrate>``) are checked against ``real`` and handed to ``moves`` with
    the delay until the common start (E777 when there are some and no ``moves``)."""
    record = _record(virtual.topology)
    if virtual.schedule is None:
        raise _problem("E775", f"virtual.xml of '{virtual.topology}' has no <schedule>")
    missing = sorted({vm.name for vm in virtual.vms} - set(record.placement))
    if missing:
        raise _problem(
            "E775",
            f"VM '{missing[0]}' of virtual.xml is not applied",
            "netmanager apply virtual.xml first: the schedule follows the topology applied",
        )
    planned = plan_moves(virtual, record.placement)
    if planned and moves is None:
        raise _problem(
            "E777",
            f"the schedule of '{virtual.topology}' moves VMs: this caller cannot run them",
            "netmanager schedule start runs them (or Testbed.start_schedule)",
        )
    # a move's problem at its <migrate> element (the planned move names its line)
    where = {f"{Path(m.loc.file).name}:{m.loc.line}": m.loc for m in virtual.schedule.migrations}
    for move in planned:
        if real is not None and move.to not in real.host_by_name:
            raise _problem(
                "E777",
                f"<migrate> moves VM '{move.vm}' to host '{move.to}', which real.xml does not have",
                "nothing was started; hosts: " + ", ".join(sorted(real.host_by_name)),
                loc=where.get(move.origin),
            )
        if move.to == move.source:
            raise _problem(
                "E777",
                f"<migrate> moves VM '{move.vm}' to host '{move.to}', where the schedule "
                "has it then",
                "nothing was started; name another host",
                loc=where.get(move.origin),
            )
    steps = compile_schedule(virtual, record.placement)
    here = [h for h in needs_netem(steps) if record.hosts[h].dom0]
    if here:
        from netmanager.apply.prepare import local_features

        if "netem" not in local_features():
            raise _problem(
                "E776",
                f"the schedule sets a delay, jitter or loss on host '{here[0]}', emulated on "
                "this machine, whose kernel has no NetEm (sch_netem)",
                'nothing was started; guest hosts (hypervisor="guest") have it',
                ScheduleFailed,
            )
    documents = {host: _document(virtual.topology, found) for host, found in steps.items()}

    def at_start(delay_s: float) -> None:
        if planned and moves is not None:
            moves(planned, delay_s)

    asyncio.run(_start(record, documents, lead_s, at_start))
    return {h: len(found) for h, found in steps.items()}


def _document(topology: str, steps: tuple[Step, ...]) -> bytes:
    return json.dumps(
        {"topology": topology, "steps": [s.as_json() for s in steps]}, separators=(",", ":")
    ).encode()


async def _start(
    record: Record,
    documents: dict[str, bytes],
    lead_s: float,
    at_start: Callable[[float], None],
) -> None:
    from pysnmp.proto import rfc1902

    from netmanager.agentctl.client import AgentError
    from netmanager.snmp import mib

    hosts = sorted(documents)
    chosen = _agent_clients(record, hosts)
    chunk = (*mib.oid_of("nmScheduleChunkEntry"), 2)
    operation = (*mib.oid_of("nmScheduleOperation"), 0)
    delay = (*mib.oid_of("nmScheduleStartDelay"), 0)

    async def load(host: str) -> None:
        client = chosen[host]
        data = documents[host]
        pieces = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
        try:
            for number, piece in enumerate(pieces, start=1):
                await client.set([((*chunk, number), rfc1902.OctetString(piece))])
            await client.set([(operation, rfc1902.Integer32(OPERATION["load"]))])
        except AgentError as exc:
            raise _refused(host, await _error(client), exc) from exc

    async def go(host: str, at: float) -> None:
        client = chosen[host]
        ms = max(0, round((at - time.monotonic()) * 1000))
        try:
            await client.set(
                [
                    (delay, rfc1902.Unsigned32(ms)),
                    (operation, rfc1902.Integer32(OPERATION["start"])),
                ]
            )
        except AgentError as exc:
            raise _refused(host, await _error(client), exc) from exc

    for client in chosen.values():
        await client.open()
    try:
        loaded = await asyncio.gather(*(load(h) for h in hosts), return_exceptions=True)
        failed = [r for r in loaded if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
        at = time.monotonic() + lead_s
        started = await asyncio.gather(*(go(h, at) for h in hosts), return_exceptions=True)
        failed = [r for r in started if isinstance(r, BaseException)]
        if not failed:
            try:  # the migrations, from the same start
                at_start(at - time.monotonic())
            except (OSError, NetmanagerError) as exc:
                failed = [exc]
        if failed:
            # no half-started schedule: those that started stop
            await asyncio.gather(
                *(_operation(chosen[h], "stop") for h in hosts), return_exceptions=True
            )
            raise failed[0]
    finally:
        for client in chosen.values():
            client.close()


def _refused(host: str, why: str, exc: Exception) -> NetmanagerError:
    return _problem(
        "E776",
        f"host '{host}' refused the schedule: {why or exc}",
        "nothing was started",
        ScheduleFailed,
    )


async def _error(client: Any) -> str:
    from netmanager.snmp import mib

    try:
        (value,) = await client.get((*mib.oid_of("nmScheduleLastError"), 0))
        return bytes(value.asOctets()).decode("utf-8", "replace")
    except Exception:
        return ""


async def _operation(client: Any, name: str) -> None:
    from pysnmp.proto import rfc1902

    from netmanager.snmp import mib

    await client.set(
        [((*mib.oid_of("nmScheduleOperation"), 0), rfc1902.Integer32(OPERATION[name]))]
    )


def stop(topology: str) -> list[str]:
    """Stop the schedule on every host of an applied topology, and its migrations (a
    move in progress finishes); the hosts told."""
    record = _record(topology)
    stop_moves(topology)
    hosts = sorted(record.hosts)
    chosen = _agent_clients(record, hosts)

    async def run() -> None:
        for client in chosen.values():
            await client.open()
        try:
            await asyncio.gather(*(_operation(chosen[h], "stop") for h in hosts))
        finally:
            for client in chosen.values():
                client.close()

    asyncio.run(run())
    return hosts


def status(topology: str) -> list[HostSchedule]:
    """What each host's agent says of its schedule."""
    record = _record(topology)
    hosts = sorted(record.hosts)
    chosen = _agent_clients(record, hosts)
    from netmanager.snmp import mib

    names = [
        "nmScheduleState",
        "nmScheduleTopology",
        "nmScheduleSteps",
        "nmScheduleDone",
        "nmScheduleElapsed",
        "nmScheduleNext",
        "nmScheduleLateMax",
        "nmScheduleLastError",
        "nmScheduleLog",
    ]

    async def one(host: str) -> HostSchedule:
        client = chosen[host]
        async with client:
            values = await client.get(*((*mib.oid_of(n), 0) for n in names))
            # the last steps, as lines of the host's log (wherever the host is)
            lines = await client.walk(mib.oid_of("nmScheduleRecentRow"))

        def text(v: Any) -> str:
            return bytes(v.asOctets()).decode("utf-8", "replace")

        state, topo, steps, done, elapsed, nxt, late, error, log = values
        rows = csv.DictReader((text(v) for _, v in lines), fieldnames=LOG_FIELDS)
        recent = tuple(dict(r) for r in rows)[-RECENT:]
        return HostSchedule(
            host,
            STATES.get(int(state), str(int(state))),
            text(topo),
            int(steps),
            int(done),
            int(elapsed),
            int(nxt),
            int(late) / 1000,
            text(error),
            text(log),
            recent,
        )

    async def run() -> list[HostSchedule]:
        return list(await asyncio.gather(*(one(h) for h in hosts)))

    return asyncio.run(run())


# ------------------------------------------------------------------ the migrations


def moves_dir(topology: str) -> Path:
    """Where the driver of a topology's scheduled migrations keeps its plan, PID and log
    (see :mod:`netmanager.verify.moveplan`)."""
    return state_dir() / "schedules" / topology


def _driver_pid(topology: str) -> int | None:
    """The PID of the topology's migrations driver if it still runs (its command line
    checked: a PID used again by another process is not it)."""
    directory = moves_dir(topology)
    doc = read_json(directory / "moves.json")
    pid = doc.get("pid") if isinstance(doc, dict) else None
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if b"netmanager.verify.moveplan" not in cmdline or str(directory).encode() not in cmdline:
        return None
    return pid


def running_moves() -> list[str]:
    """The topologies whose migrations driver runs."""
    where = state_dir() / "schedules"
    if not where.is_dir():
        return []
    return sorted(d.name for d in where.iterdir() if _driver_pid(d.name) is not None)


def stop_moves(topology: str, wait_s: float = 0.0) -> bool:
    """End the topology's migrations driver (SIGTERM: a move in progress finishes, no
    other starts), waiting up to ``wait_s`` for it to end; whether one ran."""
    import os
    import signal

    pid = _driver_pid(topology)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and _driver_pid(topology) == pid:
        time.sleep(0.1)
    return True


@dataclass(frozen=True)
class MovesStatus:
    """What the driver of a topology's scheduled migrations did and does."""

    state: str  # starting, running, finished, stopped, or ended (it died)
    planned: int
    rows: tuple[dict[str, str], ...]
    #: the next move's schedule time and what it is, None when none is left
    next: dict[str, Any] | None
    directory: str

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "planned": self.planned,
            "done": len(self.rows),
            "moves": list(self.rows),
            "next": self.next,
            "directory": self.directory,
        }


def moves_status(topology: str) -> MovesStatus | None:
    """The topology's scheduled migrations (None: its schedule has none running or run)."""
    directory = moves_dir(topology)
    doc = read_json(directory / "moves.json")
    if not isinstance(doc, dict):
        return None
    rows: tuple[dict[str, str], ...] = ()
    with contextlib.suppress(OSError):
        rows = tuple(log_rows(directory / "moves.csv"))
    state = str(doc.get("state", "?"))
    if state in ("starting", "running") and _driver_pid(topology) is None:
        # no driver: it has not written its PID yet (just spawned), or it died
        young = time.time() - float(doc.get("created_unix", 0)) < 10
        state = "starting" if state == "starting" and young else "ended"
    planned = list(doc.get("moves", ()))
    left = planned[len(rows) :] if state in ("starting", "running") else []
    return MovesStatus(state, len(planned), rows, left[0] if left else None, str(directory))


def log_rows(path: str | Path) -> list[dict[str, str]]:
    """The rows of an agent's whole schedule log, a file of its state directory (a host
    emulated here; status reads the last ones of any host over SNMP)."""
    import csv

    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))
