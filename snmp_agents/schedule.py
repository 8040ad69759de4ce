"""The schedule an agent plays: this host's share of a topology's timed runtime changes
(NETMANAGER-MIB's nmSchedule), made from the agent's own monotonic clock.

The manager writes the share as a JSON document in chunks (``nmScheduleChunkData``),
then ``nmScheduleOperation`` load (the steps checked: ports this host runs, values its
kernel has — nothing is played yet) and start with ``nmScheduleStartDelay``: the
schedule's time 0 is that many milliseconds after the request, on this host's clock, so
that neither the manager's latency nor the hosts' clocks (guests have no NTP) enter the
timing.  Each step (the steps of one time together) is a runtime change of the backend
(:meth:`~netmanager.host.kernelhost.KernelBackend.runtime`, kept as an override like any
other), made in the backend's thread; its actual time is when the kernel carries it.
A step starts as much ahead of its time as the recent steps took to reach the kernel, so
that the kernel carries it at its time.  Every step made is logged to
``schedule-log.csv`` in the agent's state directory (schedule time, actual time, lateness
— negative when early —, port, values, source line, result); a step that fails is logged
and the others go on.  stop plays no further step.
"""

from __future__ import annotations

import asyncio
import collections
import csv
import enum
import io
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pysnmp.proto import rfc1902

from netmanager.host.rows import PortKey
from netmanager.host.runtime import LOG_FIELDS, PortOverride
from netmanager.snmp import mib
from netmanager.snmp.tables import SetError
from snmp_agents.oidtree import Oid, Section, const, dynamic

log = logging.getLogger(__name__)

#: the most a loaded document may be (a million steps is some 100 MB: refused earlier)
MAX_DOCUMENT = 64 << 20
LOG_NAME = "schedule-log.csv"
LOG_HEADER = ",".join(LOG_FIELDS)
#: the last steps served as lines of the log (nmScheduleRecentTable)
RECENT_KEPT = 20
OPERATIONS = {1: "none", 2: "load", 3: "start", 4: "stop"}


class State(enum.IntEnum):
    empty = 1
    loaded = 2
    armed = 3
    running = 4
    finished = 5
    stopped = 6
    failed = 7


@dataclass(frozen=True)
class Step:
    at_us: int
    port: PortKey
    change: PortOverride
    source: str


def parse(document: bytes) -> tuple[str, list[Step]]:
    """(topology, steps in time order) of a loaded document; ValueError saying why not."""
    try:
        doc = json.loads(document.decode("utf-8"))
        topology = str(doc["topology"])
        known = {f.name for f in fields(PortOverride)} - {"base", "pairs"}
        steps = []
        for at_us, vm, network, values, source, *peer in doc["steps"]:
            unknown = set(values) - known
            if unknown:
                raise ValueError(f"unknown values {sorted(unknown)}")
            change = PortOverride(**values)
            if peer and peer[0]:  # one of the port's <link> pairs
                if change.up is not None:
                    raise ValueError("a <link> pair has no state of its own to take down")
                change = PortOverride(pairs=((str(peer[0]), change),))
            steps.append(Step(int(at_us), (topology, str(vm), str(network)), change, str(source)))
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not a schedule document: {exc}") from exc
    if any(b.at_us < a.at_us for a, b in itertools.pairwise(steps)):
        raise ValueError("the steps are not in time order")
    return topology, steps


class ScheduleRunner:
    """Loads, starts and stops this host's schedule; serves nmSchedule."""

    def __init__(
        self,
        state_dir: Path,
        change: Callable[[dict[PortKey, PortOverride]], Awaitable[Any]],
        ports: Callable[[], set[PortKey]],
        netem: Callable[[], bool | None],
        warm: Callable[[list[PortKey]], Awaitable[float]] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.change = change
        #: before the first step: the ports' first change made as quick as the next ones
        self.warm = warm
        self.ports = ports
        self.netem = netem
        self.chunks: dict[int, bytes] = {}
        self.topology = ""
        self.steps: list[Step] = []
        self.state = State.empty
        self.done = 0
        self.late_max_us = 0
        self.last_error = ""
        self.zero: float | None = None  # the loop's time of the schedule's time 0
        #: how long a change has taken to reach the kernel lately (steps start that early)
        self.lead_s = 0.0
        self._task: asyncio.Task[None] | None = None
        self.section_changed: Callable[[], None] = lambda: None
        root = mib.oid_of("nmSchedule")
        self.root = root
        self.chunk_column = (*mib.oid_of("nmScheduleChunkEntry"), 2)
        self.oid_operation = (*mib.oid_of("nmScheduleOperation"), 0)
        self.oid_delay = (*mib.oid_of("nmScheduleStartDelay"), 0)
        self.delay_ms = 0
        #: the log's last lines (nmScheduleRecentTable)
        self.recent: collections.deque[str] = collections.deque(maxlen=RECENT_KEPT)

    @property
    def log_path(self) -> Path:
        return self.state_dir / LOG_NAME

    def owns(self, oid: Oid) -> bool:
        return oid[: len(self.root)] == self.root

    # -- SET ------------------------------------------------------------------------

    def handle_set(self, varbinds: Sequence[tuple[int, Oid, Any]]) -> None:
        """Chunks, the start delay and an operation (carried out last), checked first."""
        chunks: dict[int, bytes] = {}
        operation: tuple[int, str] | None = None
        delay: int | None = None
        n = len(self.chunk_column)
        for position, oid, value in varbinds:
            if oid[:n] == self.chunk_column and len(oid) == n + 1:
                if value.tagSet != rfc1902.OctetString.tagSet:
                    raise SetError("wrongType", position)
                if not 1 <= oid[-1] <= 100_000:
                    raise SetError("noCreation", position, "chunks are numbered 1 to 100000")
                chunk = bytes(value.asOctets())
                if len(chunk) > 1024:
                    raise SetError("wrongLength", position, "a chunk holds at most 1024 bytes")
                chunks[oid[-1]] = chunk
            elif oid == self.oid_operation:
                if value.tagSet != rfc1902.Integer32.tagSet:
                    raise SetError("wrongType", position)
                name = OPERATIONS.get(int(value))
                if name is None or name == "none":
                    raise SetError("wrongValue", position, "load(2), start(3) or stop(4)")
                operation = (position, name)
            elif oid == self.oid_delay:
                if value.tagSet != rfc1902.Unsigned32.tagSet:
                    raise SetError("wrongType", position)
                delay = int(value)
            else:
                raise SetError("notWritable", position)
        if chunks and self.state in (State.armed, State.running):
            raise self._refused(0, "the schedule plays: stop it first")
        self.chunks.update(chunks)
        if delay is not None:
            self.delay_ms = delay
        if operation is not None:
            position, name = operation
            if name == "load":
                self._load(position)
            elif name == "start":
                self._start(position)
            elif name == "stop":
                self._stop()
        self.section_changed()

    def _refused(self, position: int, why: str) -> SetError:
        self.last_error = why[:255]
        return SetError("inconsistentValue", position, why)

    def _load(self, position: int) -> None:
        if self.state in (State.armed, State.running):
            raise self._refused(position, "the schedule plays: stop it first")
        numbers = sorted(self.chunks)
        if numbers != list(range(1, len(numbers) + 1)):
            raise self._refused(position, "the chunks are not numbered 1, 2, ... without a gap")
        document = b"".join(self.chunks[i] for i in numbers)
        self.chunks = {}
        try:
            topology, steps = parse(document)
        except ValueError as exc:
            raise self._refused(position, str(exc)) from exc
        running = self.ports()
        unknown = sorted({s.port for s in steps} - running)
        if unknown:
            t, vm, network = unknown[0]
            raise self._refused(position, f"this host runs no port of VM '{vm}' in '{t}/{network}'")
        if self.netem() is False and any(s.change.needs_netem for s in steps):
            raise self._refused(
                position, "this host's kernel has no NetEm (sch_netem): no delay, jitter or loss"
            )
        self.topology, self.steps = topology, steps
        self.state = State.loaded
        self.done = 0
        self.late_max_us = 0
        self.last_error = ""
        self.zero = None

    def _start(self, position: int) -> None:
        if self.state not in (State.loaded, State.finished, State.stopped, State.failed):
            raise self._refused(position, f"nothing to start (the schedule is {self.state.name})")
        if not self.steps:
            raise self._refused(position, "the schedule has no step on this host")
        loop = asyncio.get_running_loop()
        self.zero = loop.time() + self.delay_ms / 1000
        self.done = 0
        self.late_max_us = 0
        self.lead_s = 0.0
        self.last_error = ""
        self.state = State.armed
        with self.log_path.open("w", newline="") as f:
            f.write(LOG_HEADER + "\n")
        self.recent.clear()
        self._task = loop.create_task(self._play())

    def _stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self.state in (State.armed, State.running):
            self.state = State.stopped

    async def _play(self) -> None:
        assert self.zero is not None
        loop = asyncio.get_running_loop()
        index = 0
        if self.warm is not None:
            try:
                self.lead_s = await self.warm(sorted({s.port for s in self.steps}))
            except Exception as exc:  # the steps are made all the same, only slower
                log.warning("schedule: warming up failed: %s", exc)
        try:
            while index < len(self.steps):
                at = self.steps[index].at_us
                batch = []
                while index < len(self.steps) and self.steps[index].at_us == at:
                    batch.append(self.steps[index])
                    index += 1
                # a change takes a while to reach the kernel: it starts that much early (the
                # recent changes' mean), so that the kernel carries it at its time
                wait = self.zero + at / 1e6 - self.lead_s - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                began = loop.time()
                self.state = State.running
                changes: dict[PortKey, PortOverride] = {}
                for step in batch:
                    kept = changes.get(step.port)
                    changes[step.port] = _merged(kept, step.change)
                result = "ok"
                try:
                    await self.change(changes)
                except Exception as exc:  # logged; the next steps go on
                    result = f"failed: {exc}"
                    self.last_error = str(exc)[:255]
                now = loop.time()
                self.lead_s = 0.7 * self.lead_s + 0.3 * (now - began)
                actual = now - self.zero
                late_us = round(actual * 1e6) - at  # negative: early
                self.late_max_us = max(self.late_max_us, late_us)
                self.done += len(batch)
                self._log(batch, at, actual, late_us, result)
                self.section_changed()
            self.state = State.failed if self.last_error else State.finished
        except asyncio.CancelledError:
            self.state = State.stopped
            raise
        finally:
            self.section_changed()

    def _log(
        self, batch: list[Step], at_us: int, actual_s: float, late_us: int, result: str
    ) -> None:
        out = io.StringIO()
        writer = csv.writer(out)
        for step in batch:
            values = " ".join(
                [
                    *(f"{k}={v}" for k, v in step.change.values().items()),
                    *(
                        f"{k}~{peer}={v}"
                        for peer, pair in step.change.pairs
                        for k, v in pair.values().items()
                    ),
                ]
            )
            writer.writerow(
                [
                    f"{at_us / 1000:.3f}",
                    f"{actual_s * 1000:.3f}",
                    f"{late_us / 1000:.3f}",  # negative: early
                    *step.port,
                    values,
                    step.source,
                    result,
                ]
            )
        self.recent.extend(out.getvalue().splitlines())
        try:
            with self.log_path.open("a", newline="") as f:
                f.write(out.getvalue())
        except OSError as exc:  # the step is made all the same
            log.warning("schedule log: %s", exc)

    # -- GET ------------------------------------------------------------------------

    def elapsed_ms(self) -> int:
        """Since time 0 (the event loop's clock is time.monotonic)."""
        if self.zero is None:
            return 0
        return int((time.monotonic() - self.zero) * 1000)

    def next_ms(self) -> int:
        if self.state not in (State.armed, State.running, State.loaded) or self.done >= len(
            self.steps
        ):
            return -1
        return self.steps[self.done].at_us // 1000

    def section(self) -> Section:
        values: dict[str, Callable[[], Any]] = {
            "nmScheduleOperation": lambda: 1,
            "nmScheduleStartDelay": lambda: self.delay_ms,
            "nmScheduleState": lambda: int(self.state),
            "nmScheduleTopology": lambda: self.topology.encode(),
            "nmScheduleSteps": lambda: len(self.steps),
            "nmScheduleDone": lambda: self.done,
            "nmScheduleElapsed": self.elapsed_ms,
            "nmScheduleNext": self.next_ms,
            "nmScheduleLateMax": lambda: min(self.late_max_us, 2**32 - 1),
            "nmScheduleLastError": lambda: self.last_error.encode("utf-8", "replace")[:255],
            "nmScheduleLog": lambda: str(self.log_path).encode()[:255],
        }
        scalars: list[tuple[Oid, Any]] = []
        objects: list[Oid] = [self.chunk_column]
        for name, fn in values.items():
            obj = mib.symbol(name)
            objects.append(tuple(obj.name))
            scalars.append(((*obj.name, 0), dynamic(_cloner(obj.syntax, fn))))
        row = tuple(mib.symbol("nmScheduleRecentRow").name)
        objects.append(row)
        scalars += [
            ((*row, i), const(rfc1902.OctetString(line.encode("utf-8", "replace")[:255])))
            for i, line in enumerate(self.recent, 1)
        ]
        return Section.build("schedule", self.root, scalars, objects)


def _cloner(syntax: Any, fn: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: syntax.clone(fn())


def _merged(kept: PortOverride | None, change: PortOverride) -> PortOverride:
    """Two steps of one port at one time: the later one's values over the earlier's (its
    pairs' likewise)."""
    if kept is None:
        return change
    pairs = dict(kept.pairs)
    for peer, pair in change.pairs:
        pairs[peer] = _merged(pairs.get(peer), pair)
    return PortOverride(**{**kept.values(), **change.values()}, pairs=tuple(sorted(pairs.items())))
