"""A topology's ``<schedule>`` as each host plays it (pure).

Every event (each of its repeats) and every row of every trace becomes a :class:`Step`:
a time after the schedule's start, one VM port (or one of its ``<link>`` pairs, by the
peer VM), the values to set there, and where it
comes from (``virtual.xml:LINE`` or ``trace.csv:LINE``, for the log users line up with
their application's).  A step goes to the host the VM is placed on; each host's steps
are in time order (steps at the same time in the order of the file).  The host's agent
runs them from its own monotonic clock once told when the start is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from netmanager.inputs.model import LinkValues, Virtual
from netmanager.inputs.validate import MAX_SCHEDULED, schedule_target


@dataclass(frozen=True)
class Step:
    at_us: int
    vm: str
    network: str
    values: LinkValues
    source: str
    #: the peer VM of the port's <link> pair the step changes ("": the port's own values)
    peer: str = ""

    def as_json(self) -> list[Any]:
        values = {f.name: getattr(self.values, f.name) for f in fields(self.values)}
        doc = [
            self.at_us,
            self.vm,
            self.network,
            {k: v for k, v in values.items() if v is not None},
            self.source,
        ]
        return [*doc, self.peer] if self.peer else doc

    @classmethod
    def from_json(cls, doc: list[Any]) -> Step:
        at_us, vm, network, values, source, *rest = doc
        known = {f.name for f in fields(LinkValues)}
        return cls(
            int(at_us),
            str(vm),
            str(network),
            LinkValues(**{k: v for k, v in dict(values).items() if k in known}),
            str(source),
            str(rest[0]) if rest else "",
        )


@dataclass(frozen=True)
class Move:
    """One scheduled migration as the manager runs it: ``at_us`` after the start, VM
    ``vm`` from host ``source`` (where the schedule has it then) to ``to``."""

    at_us: int
    vm: str
    source: str
    to: str
    precopy: bool
    peer: str | None
    origin: str  # virtual.xml:LINE

    def as_json(self) -> dict[str, Any]:
        return {
            "at_us": self.at_us,
            "vm": self.vm,
            "from": self.source,
            "to": self.to,
            "precopy": self.precopy,
            "peer": self.peer,
            "source": self.origin,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Move:
        peer = doc.get("peer")
        return cls(
            int(doc["at_us"]),
            str(doc["vm"]),
            str(doc["from"]),
            str(doc["to"]),
            bool(doc["precopy"]),
            None if peer is None else str(peer),
            str(doc["source"]),
        )


def plan_moves(virtual: Virtual, placement: Mapping[str, str]) -> tuple[Move, ...]:
    """The schedule's migrations in time order (the file's order at one time), each from
    where the moves before it leave the VM (``placement``: VM -> host at the start); a
    repeated one goes back and forth between its ``to`` and the host the VM left."""
    schedule = virtual.schedule
    if schedule is None or not schedule.migrations:
        return ()
    wanted: list[tuple[int, int, int, str]] = []  # (time, order, which, vm)
    for order, move in enumerate(schedule.migrations):
        if move.vm not in placement:
            continue  # validation reported it
        for repeat, at in enumerate(move.times()):
            wanted.append((at, order, repeat, move.vm))
    where = dict(placement)
    home: dict[tuple[int, str], str] = {}
    out = []
    for at, order, repeat, vm in sorted(wanted):
        move = schedule.migrations[order]
        source = where[vm]
        if repeat == 0:
            home[(order, vm)] = source
        to = move.to if repeat % 2 == 0 else home[(order, vm)]
        where[vm] = to
        out.append(
            Move(
                at,
                vm,
                source,
                to,
                move.precopy,
                move.peer,
                f"{_name(move.loc.file)}:{move.loc.line}",
            )
        )
    return tuple(out)


class _Placement:
    """Where each VM is at a time of the schedule, its moves counted."""

    def __init__(self, placement: Mapping[str, str], moves: tuple[Move, ...]) -> None:
        self.start = dict(placement)
        self.moves: dict[str, list[tuple[int, str]]] = {}
        for move in moves:
            self.moves.setdefault(move.vm, []).append((move.at_us, move.to))

    def at(self, vm: str, at_us: int) -> str:
        host = self.start[vm]
        for when, to in self.moves.get(vm, ()):
            if when > at_us:
                break
            host = to
        return host


def compile_schedule(virtual: Virtual, placement: Mapping[str, str]) -> dict[str, tuple[Step, ...]]:
    """Each host's steps (hosts with none left out); ``placement``: VM -> host at the
    start.  A step at or after a scheduled move of its VM goes to the host the VM moved
    to (made when the VM is there: one that comes before the move has finished fails,
    logged by that host)."""
    schedule = virtual.schedule
    if schedule is None:
        return {}
    where = _Placement(placement, plan_moves(virtual, placement))
    steps: list[tuple[int, int, str, Step]] = []  # (time, order, host, step)
    order = 0
    for event in schedule.events:
        ports = schedule_target(virtual, event.target)
        if isinstance(ports, str):  # validation reported it
            continue
        source = f"{_name(event.loc.file)}:{event.loc.line}"
        for at in event.times(MAX_SCHEDULED):
            for vm, network, peer in ports:
                order += 1
                step = Step(at, vm, network, event.values, source, peer)
                steps.append((at, order, where.at(vm, at), step))
    for trace in schedule.traces:
        ports = schedule_target(virtual, trace.target)
        if isinstance(ports, str):
            continue
        for row in trace.rows:
            at = trace.at_us + row.at_us
            source = f"{_name(row.loc.file)}:{row.loc.line}"
            for vm, network, peer in ports:
                order += 1
                step = Step(at, vm, network, row.values, source, peer)
                steps.append((at, order, where.at(vm, at), step))
    by_host: dict[str, list[Step]] = {}
    for _, _, host, step in sorted(steps, key=lambda s: (s[0], s[1])):
        by_host.setdefault(host, []).append(step)
    return {host: tuple(found) for host, found in sorted(by_host.items())}


def needs_netem(steps: Mapping[str, tuple[Step, ...]]) -> list[str]:
    """The hosts whose steps set a delay, jitter or loss."""
    return sorted(h for h, found in steps.items() if any(s.values.needs_netem for s in found))


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]
