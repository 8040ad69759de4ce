"""A <schedule> played by the hosts' agents on examples/two-hosts: events (a network's
rate, a port down and up again, a repeated change) and a downlink trace of ten rows a
second, started with ``netmanager schedule start``; each host logs every step with its
actual time, the kernel ends as the last steps left it, and status says so."""

from __future__ import annotations

import csv
import json
import subprocess
import time
from pathlib import Path

import pytest

from netmanager.cli.main import main
from netmanager.kernel import features
from tests.test_apply import TWO

pytestmark = pytest.mark.privileged

SCHEDULE = """
  <schedule>
    <event at="0.2s" target="lan" bandwidth="20Mbit"/>
    <event at="0.5s" target="vm1:lan" state="down"/>
    <event at="0.8s" target="vm1" state="up"/>
    <event at="1s" every="100ms" count="3" target="vm1:lan" bandwidth="15Mbit"/>
    <trace target="vm2:lan" file="down.csv" direction="down" at="0.3s"/>
  </schedule>
</virtual>"""
TRACE = "time,bandwidth\n" + "".join(f"{i / 10:.1f},{11 + i}Mbit\n" for i in range(10))


def _rate(namespace: str, ifname: str) -> int:
    out = subprocess.run(
        ["ip", "netns", "exec", namespace, "tc", "-j", "qdisc", "show", "dev", ifname],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(next(q for q in json.loads(out.stdout) if q["kind"] == "tbf")["options"]["rate"])


def _vif(dom0: str) -> str:
    out = subprocess.run(
        ["ip", "-n", dom0, "-j", "link", "show"], capture_output=True, text=True, check=True
    )
    (vif,) = [
        link["ifname"]
        for link in json.loads(out.stdout)
        if link.get("ifalias", "").startswith("nm:two-hosts:port:")
    ]
    return vif


def test_a_schedule_is_played_on_time_by_the_agents(
    prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    virtual = tmp_path / "virtual.xml"
    virtual.write_text(Path(TWO[1]).read_text().replace("</virtual>", SCHEDULE))
    (tmp_path / "down.csv").write_text(TRACE)
    real = TWO[0]
    assert main(["apply", real, str(virtual)]) == 0
    try:
        capsys.readouterr()
        assert main(["schedule", "start", real, str(virtual), "--in", "0.5", "--json"]) == 0
        started = json.loads(capsys.readouterr().out)
        # host1: the network's rate, down, up, three repeats; host2: the rate, ten rows
        assert started["steps"] == {"host1": 6, "host2": 11}
        deadline = time.monotonic() + 30
        while True:
            code = main(["schedule", "status", real, str(virtual), "--json"])
            out, err = capsys.readouterr()
            assert code == 0, err
            hosts = {h["host"]: h for h in json.loads(out)["hosts"]}
            if all(h["state"] == "finished" for h in hosts.values()):
                break
            assert all(h["state"] in ("armed", "running") for h in hosts.values()), hosts
            assert time.monotonic() < deadline, hosts
            time.sleep(0.2)
        assert hosts["host1"]["done"] == 6 and hosts["host2"]["done"] == 11
        # the last steps, read from the log of a host emulated here
        assert [r["source"] for r in hosts["host2"]["recent"]] == [
            f"down.csv:{n}" for n in range(7, 12)
        ]
        assert main(["schedule", "status", real, str(virtual)]) == 0
        out = capsys.readouterr().out
        assert "host2: finished, 11/11 step(s)" in out and "(down.csv:11) ok" in out, out
        assert all(h["last_error"] == "" for h in hosts.values())
        # each step logged with its schedule and actual times, in order, on time
        with Path(hosts["host2"]["log"]).open() as log:
            rows = list(csv.DictReader(log))
        assert [float(r["schedule_ms"]) for r in rows] == [200.0] + [
            300.0 + 100 * i for i in range(10)
        ]
        # a step starts ahead by what the last ones took: it lands near its time, either
        # side (the bench measures how near; here only that it is this step's time)
        for r in rows:
            late = float(r["actual_ms"]) - float(r["schedule_ms"])
            assert abs(late - float(r["late_ms"])) < 0.01 and abs(late) < 500, r
        assert all(r["result"] == "ok" for r in rows)
        line = 1 + virtual.read_text().splitlines().index(
            '    <event at="0.2s" target="lan" bandwidth="20Mbit"/>'
        )
        assert rows[1]["source"] == "down.csv:2" and rows[0]["source"] == f"virtual.xml:{line}"
        # the kernel as the last steps left it: vm1 up at 15 Mbit/s both ways; vm2's
        # downlink at the trace's last rate, its uplink at the event's 20
        dom1, dom2 = f"{prefix}h-host1", f"{prefix}h-host2"
        assert _rate(dom1, _vif(dom1)) == 15_000_000 // 8
        assert _rate(dom2, _vif(dom2)) == 20_000_000 // 8
        vm1 = f"{prefix}v-two-hosts-vm1"
        out = subprocess.run(
            ["ip", "-n", vm1, "-j", "link", "show", "dev", "eth0"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "NO-CARRIER" not in json.loads(out.stdout)[0]["flags"]
        # status shows the values set at run time
        assert main(["status", "--json", real, str(virtual)]) == 0
        vms = {v["name"]: v for v in json.loads(capsys.readouterr().out)["vms"]}
        assert set(vms["vm2"]["interfaces"][0]["link"]["overrides"]) == {"rate"}
    finally:
        main(["destroy", real, str(virtual)])


def test_a_schedule_the_kernel_cannot_play_is_refused_before_it_starts(
    prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if "netem" in features.local_capabilities(tmp_path / "features.json"):
        pytest.skip("this kernel has NetEm: nothing to refuse")
    virtual = tmp_path / "virtual.xml"
    virtual.write_text(
        Path(TWO[1])
        .read_text()
        .replace(
            "</virtual>",
            '<schedule><event at="1s" target="lan" latency="20ms"/></schedule></virtual>',
        )
    )
    assert main(["apply", TWO[0], str(virtual)]) == 0
    try:
        capsys.readouterr()
        assert main(["schedule", "start", TWO[0], str(virtual)]) == 4
        assert "error[E776]" in capsys.readouterr().err
        assert main(["schedule", "status", TWO[0], str(virtual), "--json"]) == 0
        states = {h["state"] for h in json.loads(capsys.readouterr().out)["hosts"]}
        assert states == {"empty"}
    finally:
        main(["destroy", TWO[0], str(virtual)])


def test_examples_wan_schedule_starts_with_apply_and_stops(
    prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    example = Path(TWO[0]).parent.parent / "wan-schedule"
    real, virtual = str(example / "real.xml"), str(example / "virtual.xml")
    assert main(["apply", "--start-schedule", real, virtual]) == 0
    try:
        out = capsys.readouterr().out
        assert "schedule starts in 1 s: 57 on host1, 3 on host2 step(s)" in out, out
        assert main(["schedule", "status", real, virtual, "--json"]) == 0
        hosts = json.loads(capsys.readouterr().out)["hosts"]
        assert {h["state"] for h in hosts} <= {"armed", "running"}
        assert all(h["next_ms"] == 10_000 and h["topology"] == "wan-schedule" for h in hosts)
        assert main(["schedule", "stop", real, virtual]) == 0
        capsys.readouterr()
        assert main(["schedule", "status", real, virtual, "--json"]) == 0
        assert {h["state"] for h in json.loads(capsys.readouterr().out)["hosts"]} == {"stopped"}
    finally:
        main(["destroy", real, virtual])


PAIR_SCHEDULE = """<?xml version="1.0" encoding="UTF-8"?>
<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="sched-pairs">
  <network name="lan" cidr="10.23.0.0/24"><shaping bandwidth="10Mbit"/></network>
  <vm name="vm1" host="host1"><interface network="lan" ip="10.23.0.1"/></vm>
  <vm name="vm2" host="host2"><interface network="lan" ip="10.23.0.2"/></vm>
  <link a="vm1" b="vm2" bandwidth="2Mbit"/>
  <schedule>
    <event at="0.2s" target="vm1~vm2" bandwidth="4Mbit"/>
    <event at="0.4s" target="vm2~vm1" bandwidth="3Mbit"/>
  </schedule>
</virtual>
"""


def _pair_rate(dom0: str, vm: str) -> list[str]:
    """The HTB classes' rates (tc's text) of ``vm``'s port."""
    out = subprocess.run(
        ["ip", "-n", dom0, "-j", "link", "show"], capture_output=True, text=True, check=True
    )
    (vif,) = [
        link["ifname"]
        for link in json.loads(out.stdout)
        if link.get("ifalias", "").startswith(f"nm:sched-pairs:port:{vm}:")
    ]
    out = subprocess.run(
        ["ip", "netns", "exec", dom0, "tc", "class", "show", "dev", vif],
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(line.split(" rate ")[1].split()[0] for line in out.stdout.splitlines())


def test_a_schedule_changes_a_link_pair_at_both_ends(
    prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A scheduled change of a <link> pair: each host changes its port's class for the
    peer at the step's time, and logs it as the pair's."""
    virtual = tmp_path / "virtual.xml"
    virtual.write_text(PAIR_SCHEDULE)
    real = TWO[0]
    assert main(["apply", real, str(virtual)]) == 0
    try:
        dom1, dom2 = f"{prefix}h-host1", f"{prefix}h-host2"
        assert _pair_rate(dom1, "vm1") == _pair_rate(dom2, "vm2") == ["10Mbit", "2Mbit"]
        capsys.readouterr()
        assert main(["schedule", "start", real, str(virtual), "--in", "0.3", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["steps"] == {"host1": 2, "host2": 2}
        deadline = time.monotonic() + 30
        while True:
            assert main(["schedule", "status", real, str(virtual), "--json"]) == 0
            hosts = {h["host"]: h for h in json.loads(capsys.readouterr().out)["hosts"]}
            if all(h["state"] in ("finished", "failed") for h in hosts.values()):
                break
            assert time.monotonic() < deadline, hosts
            time.sleep(0.2)
        assert all(h["state"] == "finished" for h in hosts.values()), hosts
        assert _pair_rate(dom1, "vm1") == _pair_rate(dom2, "vm2") == ["10Mbit", "3Mbit"]
        with Path(hosts["host1"]["log"]).open() as log:
            rows = list(csv.DictReader(log))
        assert [r["values"] for r in rows] == [
            "rate_bps~vm2=4000000 rate_in_bps~vm2=4000000",
            "rate_bps~vm2=3000000 rate_in_bps~vm2=3000000",
        ]
    finally:
        main(["destroy", real, str(virtual)])
