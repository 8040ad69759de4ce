"""The agent's schedule runner (snmp_agents.schedule) against an in-memory backend: a
document loaded from chunks and checked (ports the host runs, types, order), played from
the loop's clock in time order with the steps of one time together, logged; stop ends it.
(The real thing, with agents and a kernel: tests/test_schedule_run.py.)"""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import pytest
from pysnmp.proto import rfc1902

from netmanager.host.runtime import PortOverride
from netmanager.snmp import mib
from netmanager.snmp.tables import SetError
from snmp_agents.schedule import ScheduleRunner, State, parse

PORTS = {("lab", "vm1", "lan"), ("lab", "vm2", "lan")}
CHUNK = (*mib.oid_of("nmScheduleChunkEntry"), 2)
OPERATION = (*mib.oid_of("nmScheduleOperation"), 0)
DELAY = (*mib.oid_of("nmScheduleStartDelay"), 0)


def _document(steps: list[list[object]]) -> bytes:
    return json.dumps({"topology": "lab", "steps": steps}).encode()


def _runner(tmp_path: Path, made: list[tuple[float, dict]]) -> ScheduleRunner:
    async def change(changes: dict) -> None:
        made.append((asyncio.get_running_loop().time(), dict(changes)))

    return ScheduleRunner(tmp_path, change, lambda: set(PORTS), lambda: None)


def _load(runner: ScheduleRunner, document: bytes) -> None:
    pieces = [document[i : i + 1000] for i in range(0, len(document), 1000)]
    runner.handle_set([(i, (*CHUNK, i + 1), rfc1902.OctetString(p)) for i, p in enumerate(pieces)])
    runner.handle_set([(0, OPERATION, rfc1902.Integer32(2))])


def test_a_document_is_checked_before_it_is_loaded(tmp_path: Path) -> None:
    runner = _runner(tmp_path, [])
    with pytest.raises(ValueError, match="not in time order"):
        parse(_document([[20, "vm1", "lan", {}, "a"], [10, "vm1", "lan", {}, "b"]]))
    with pytest.raises(ValueError, match="unknown values"):
        parse(_document([[10, "vm1", "lan", {"colour": 1}, "a"]]))
    with pytest.raises(SetError) as caught:
        runner.handle_set([(0, (*CHUNK, 1), rfc1902.Integer32(5))])
    assert caught.value.status == "wrongType"
    with pytest.raises(SetError) as caught:
        _load(runner, _document([[10, "vm9", "lan", {"up": False}, "v:3"]]))
    assert "no port of VM 'vm9'" in caught.value.message
    assert runner.state is State.empty and "vm9" in runner.last_error
    with pytest.raises(SetError):
        runner.handle_set([(0, OPERATION, rfc1902.Integer32(3))])  # nothing to start
    # a kernel known to lack NetEm (a real host's agent probes it at start): a delay is
    # refused when the share is loaded, not when its step comes; a rate is not
    netem: list[bool | None] = [False]
    runner = ScheduleRunner(tmp_path, _nothing, lambda: set(PORTS), lambda: netem[0])
    delay = _document(
        [[10, "vm1", "lan", {"rate_bps": 10**6}, "a"], [20, "vm1", "lan", {"delay_us": 5000}, "b"]]
    )
    with pytest.raises(SetError) as caught:
        _load(runner, delay)
    assert caught.value.status == "inconsistentValue" and "NetEm" in caught.value.message
    assert runner.state is State.empty
    _load(runner, _document([[10, "vm1", "lan", {"rate_bps": 10**6}, "a"]]))
    assert runner.state is State.loaded
    netem[0] = None  # not known (yet): the backend refuses when the step comes
    _load(runner, delay)
    assert runner.state is State.loaded


async def _nothing(changes: object) -> None:
    return None


def test_steps_are_played_in_order_from_the_start_and_logged(tmp_path: Path) -> None:
    made: list[tuple[float, dict]] = []
    runner = _runner(tmp_path, made)
    steps = [
        [100_000, "vm1", "lan", {"rate_bps": 5_000_000}, "virtual.xml:7"],
        [100_000, "vm2", "lan", {"rate_bps": 5_000_000}, "virtual.xml:7"],
        [200_000, "vm1", "lan", {"up": False}, "virtual.xml:8"],
        [300_000, "vm1", "lan", {"up": True}, "trace.csv:2"],
    ]

    async def scenario() -> float:
        _load(runner, _document(steps))
        assert runner.state is State.loaded and len(runner.steps) == 4
        runner.handle_set(
            [(0, DELAY, rfc1902.Unsigned32(50)), (1, OPERATION, rfc1902.Integer32(3))]
        )
        assert runner.state is State.armed and runner.next_ms() == 100
        zero = runner.zero
        assert zero is not None
        while runner.state is not State.finished:
            await asyncio.sleep(0.01)
        return zero

    zero = asyncio.run(scenario())
    # one change per time, the steps of one time together
    assert [sorted(c) for _, c in made] == [
        [("lab", "vm1", "lan"), ("lab", "vm2", "lan")],
        [("lab", "vm1", "lan")],
        [("lab", "vm1", "lan")],
    ]
    assert made[1][1][("lab", "vm1", "lan")] == PortOverride(up=False)
    assert all(t >= zero + 0.09 for t, _ in made)  # not before time 0 + the first step
    assert runner.done == 4 and runner.next_ms() == -1
    with (tmp_path / "schedule-log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["vm"], r["source"], r["result"]) for r in rows] == [
        ("vm1", "virtual.xml:7", "ok"),
        ("vm2", "virtual.xml:7", "ok"),
        ("vm1", "virtual.xml:8", "ok"),
        ("vm1", "trace.csv:2", "ok"),
    ]
    # served as the recent steps' table: the log's lines, oldest first
    section = runner.section()
    column = tuple(mib.symbol("nmScheduleRecentRow").name)
    served = [section.get((*column, i)) for i in range(1, 6)]
    lines = (tmp_path / "schedule-log.csv").read_text().splitlines()[1:]
    assert [bytes(e[1].asOctets()).decode() for e in served[:4] if e] == lines
    assert served[4] is None


def test_the_recent_steps_are_the_last_twenty(tmp_path: Path) -> None:
    runner = _runner(tmp_path, [])
    steps = [[i * 1000, "vm1", "lan", {"rate_bps": 10**6 + i}, f"t.csv:{i + 2}"] for i in range(30)]

    async def scenario() -> None:
        _load(runner, _document(steps))
        runner.handle_set([(0, OPERATION, rfc1902.Integer32(3))])
        while runner.state is not State.finished:
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert len(runner.recent) == 20
    assert [line.split(",")[7] for line in runner.recent] == [
        f"t.csv:{i + 2}" for i in range(10, 30)
    ]


def test_stop_plays_no_further_step(tmp_path: Path) -> None:
    made: list[tuple[float, dict]] = []
    runner = _runner(tmp_path, made)

    async def scenario() -> None:
        _load(runner, _document([[5_000_000, "vm1", "lan", {"up": False}, "v:3"]]))
        runner.handle_set([(0, OPERATION, rfc1902.Integer32(3))])
        await asyncio.sleep(0.05)
        runner.handle_set([(0, OPERATION, rfc1902.Integer32(4))])
        await asyncio.sleep(0.05)

    asyncio.run(scenario())
    assert runner.state is State.stopped and made == []
