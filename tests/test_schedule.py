"""Schedules in virtual.xml (pure): events, repeats and traces read, checked and compiled
into each host's timed steps (netmanager.compile.schedule)."""

from __future__ import annotations

from pathlib import Path

import pytest

import netmanager
from netmanager.compile.schedule import Move, Step, compile_schedule, needs_netem, plan_moves
from netmanager.inputs.model import LinkValues

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
REAL = EXAMPLES / "two-hosts" / "real.xml"

VIRTUAL = """<?xml version="1.0" encoding="UTF-8"?>
<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="sched">
  <network name="lan" cidr="10.20.0.0/24"><shaping bandwidth="10Mbit"/></network>
  <vm name="vm1" host="host1"><interface network="lan" ip="10.20.0.1"/></vm>
  <vm name="vm2" host="host2"><interface network="lan" ip="10.20.0.2"/></vm>
  <schedule>
    <event at="2s" target="lan" bandwidth="5Mbit"/>
    <event at="3s" every="500ms" count="3" target="vm1:lan" state="down"/>
    <event at="1s" every="1s" until="2s" target="vm2" loss="1%"/>
    <trace target="vm1:lan" file="cell.csv" direction="down" at="10s"/>
  </schedule>
</virtual>
"""
TRACE = "time,bandwidth,latency,loss\n0,8Mbit,20ms,\n0.1,,30ms,0.5%\n\n0.25,0,,\n"


def _load(tmp_path: Path) -> netmanager.Model:
    (tmp_path / "virtual.xml").write_text(VIRTUAL)
    (tmp_path / "cell.csv").write_text(TRACE)
    return netmanager.load(REAL, tmp_path / "virtual.xml")


def test_a_schedule_is_read_and_compiled_per_host(tmp_path: Path) -> None:
    model = _load(tmp_path)
    schedule = model.virtual.schedule
    assert schedule is not None
    assert [e.times(100) for e in schedule.events] == [
        [2_000_000],
        [3_000_000, 3_500_000, 4_000_000],
        [1_000_000, 2_000_000],
    ]
    (trace,) = schedule.traces
    assert [r.at_us for r in trace.rows] == [0, 100_000, 250_000]
    # a downlink trace: the rate towards the VM only; an empty cell leaves the value
    assert trace.rows[0].values == LinkValues(rate_bps=8_000_000, delay_us=20_000)
    assert trace.rows[1].values == LinkValues(delay_us=30_000, loss_ppm=5000)
    assert trace.rows[2].values == LinkValues(rate_bps=0)
    steps = compile_schedule(model.virtual, {"vm1": "host1", "vm2": "host2"})
    host1 = [(s.at_us, s.vm, s.source) for s in steps["host1"]]
    assert host1 == [
        (2_000_000, "vm1", "virtual.xml:7"),
        (3_000_000, "vm1", "virtual.xml:8"),
        (3_500_000, "vm1", "virtual.xml:8"),
        (4_000_000, "vm1", "virtual.xml:8"),
        (10_000_000, "vm1", "cell.csv:2"),
        (10_100_000, "vm1", "cell.csv:3"),
        (10_250_000, "vm1", "cell.csv:5"),
    ]
    assert [(s.at_us, s.source) for s in steps["host2"]] == [
        (1_000_000, "virtual.xml:9"),
        (2_000_000, "virtual.xml:7"),  # the same time: in the file's order
        (2_000_000, "virtual.xml:9"),
    ]
    assert steps["host1"][1].values == LinkValues(up=False)
    assert needs_netem(steps) == ["host1", "host2"]
    again = [Step.from_json(s.as_json()) for s in steps["host1"]]
    assert again == list(steps["host1"])


def test_a_topology_without_schedule_has_no_steps(tmp_path: Path) -> None:
    model = netmanager.load(REAL, EXAMPLES / "two-hosts" / "virtual.xml")
    assert model.virtual.schedule is None
    assert compile_schedule(model.virtual, {}) == {}


PAIRED = VIRTUAL.replace(
    "  <schedule>",
    '  <link a="vm1" b="vm2" bandwidth="2Mbit"/>\n  <schedule>\n'
    '    <event at="5s" target="vm2~vm1" bandwidth="4Mbit" latency="5ms"/>',
)


def test_a_link_pair_is_a_target_at_both_of_its_ports(tmp_path: Path) -> None:
    model = _load(tmp_path)
    (tmp_path / "virtual.xml").write_text(PAIRED)
    model = netmanager.load(REAL, tmp_path / "virtual.xml")
    steps = compile_schedule(model.virtual, {"vm1": "host1", "vm2": "host2"})
    paired = {h: [s for s in found if s.peer] for h, found in steps.items()}
    assert [(s.at_us, s.vm, s.network, s.peer) for s in paired["host1"]] == [
        (5_000_000, "vm1", "lan", "vm2")
    ]
    assert [(s.vm, s.peer) for s in paired["host2"]] == [("vm2", "vm1")]
    assert paired["host1"][0].values == LinkValues(
        rate_bps=4_000_000, rate_in_bps=4_000_000, delay_us=5000
    )
    assert Step.from_json(paired["host1"][0].as_json()) == paired["host1"][0]
    # a pair has no state to take down; a pair virtual.xml does not give
    for event, needle in (
        ('<event at="1s" target="vm1~vm2" state="down"/>', "no state of its own"),
        ('<event at="1s" target="vm1~vm9" loss="1%"/>', "no VM 'vm9'"),
    ):
        text = (
            PAIRED.split("<schedule>")[0] + f"<schedule>\n    {event}\n  </schedule>\n</virtual>\n"
        )
        (tmp_path / "virtual.xml").write_text(text)
        with pytest.raises(netmanager.NetmanagerError) as caught:
            netmanager.load(REAL, tmp_path / "virtual.xml")
        assert [d.code for d in caught.value.diagnostics] == ["E224"]
        assert needle in caught.value.diagnostics[0].message
    unpaired = VIRTUAL.split("<schedule>")[0]
    text = (
        unpaired
        + '<schedule>\n    <event at="1s" target="vm1~vm2" loss="1%"/>\n  </schedule>\n</virtual>\n'
    )
    (tmp_path / "virtual.xml").write_text(text)
    with pytest.raises(netmanager.NetmanagerError) as caught:
        netmanager.load(REAL, tmp_path / "virtual.xml")
    assert "gives no <link> between 'vm1' and 'vm2'" in caught.value.diagnostics[0].message


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ('<event at="1s" target="lan"/>', "E220"),
        ('<event at="1s" every="1s" target="lan" loss="1%"/>', "E221"),
        ('<event at="1s" count="2" target="lan" loss="1%"/>', "E221"),
        ('<event at="1s" target="vm3" state="down"/>', "E224"),
        ('<event at="soon" target="lan" loss="1%"/>', "E201"),
        ('<event at="1s" target="lan" state="sideways"/>', "E114"),
        ('<trace target="lan" file="nothere.csv"/>', "E222"),
        ('<migrate at="1s" vm="vm9" to="host2"/>', "E224"),
        ('<migrate at="1s" vm="vm1" to="host2" peer="vm1"/>', "E224"),
        ('<migrate at="1s" vm="vm1" to="host2" every="2s"/>', "E221"),
        ('<migrate at="1s" vm="vm1" to="host2" count="2"/>', "E221"),
        ('<migrate at="1s" vm="vm1" to="host2" every="0s" count="2"/>', "E221"),
        ('<migrate vm="vm1" to="host2"/>', "E112"),
    ],
)
def test_a_bad_schedule_is_refused_at_its_line(tmp_path: Path, event: str, code: str) -> None:
    text = VIRTUAL.split("<schedule>")[0] + f"<schedule>\n    {event}\n  </schedule>\n</virtual>\n"
    (tmp_path / "virtual.xml").write_text(text)
    with pytest.raises(netmanager.NetmanagerError) as caught:
        netmanager.load(REAL, tmp_path / "virtual.xml")
    found = [(d.code, d.loc.line) for d in caught.value.diagnostics]
    assert (code, 7) in found, found


MOVES = VIRTUAL.replace(
    "  </schedule>",
    '    <migrate at="5s" every="4s" count="3" vm="vm1" to="host2" peer="vm2"/>\n'
    '    <migrate at="6s" vm="vm2" to="host1" precopy="false"/>\n'
    "  </schedule>",
)


def test_scheduled_moves_go_back_and_forth_and_the_steps_follow_the_vm(tmp_path: Path) -> None:
    """A repeated <migrate> moves the VM to its host and back (as Themis's plans); each
    move starts from where the ones before left the VM; a step of a VM goes to the host
    it is on at that time."""
    (tmp_path / "virtual.xml").write_text(MOVES)
    (tmp_path / "cell.csv").write_text(TRACE)
    model = netmanager.load(REAL, tmp_path / "virtual.xml")
    placement = {"vm1": "host1", "vm2": "host2"}
    moves = plan_moves(model.virtual, placement)
    assert [(m.at_us, m.vm, m.source, m.to, m.precopy, m.peer) for m in moves] == [
        (5_000_000, "vm1", "host1", "host2", True, "vm2"),
        (6_000_000, "vm2", "host2", "host1", False, None),
        (9_000_000, "vm1", "host2", "host1", True, "vm2"),
        (13_000_000, "vm1", "host1", "host2", True, "vm2"),
    ]
    assert {m.origin for m in moves} == {"virtual.xml:11", "virtual.xml:12"}
    assert [Move.from_json(m.as_json()) for m in moves] == list(moves)
    steps = compile_schedule(model.virtual, placement)
    # vm1's trace (10 s on) is played by host1, where vm1 is from 9 s to 13 s; vm2's
    # loss at 1 s and 2 s by host2, its rate at 2 s too (before vm2 moves at 6 s)
    assert [(s.at_us, s.vm) for s in steps["host1"] if s.at_us >= 5_000_000] == [
        (10_000_000, "vm1"),
        (10_100_000, "vm1"),
        (10_250_000, "vm1"),
    ]
    assert [(s.at_us, s.vm) for s in steps["host2"] if s.vm == "vm1"] == []
    # a VM moved twice at one time is refused at the second move's line
    twice = VIRTUAL.replace(
        "  </schedule>",
        '    <migrate at="5s" vm="vm1" to="host2"/>\n'
        '    <migrate at="5s" vm="vm1" to="host2"/>\n'
        "  </schedule>",
    )
    (tmp_path / "virtual.xml").write_text(twice)
    with pytest.raises(netmanager.NetmanagerError) as caught:
        netmanager.load(REAL, tmp_path / "virtual.xml")
    assert [(d.code, d.loc.line) for d in caught.value.diagnostics] == [("E226", 12)]
