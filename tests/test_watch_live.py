"""netmanager status --watch on topologies applied for real, with traffic between the VMs:
through the hosts' agents (their IF-MIB counters) and with --local (the kernel's).

Each test runs in namespaces of its own (NETMANAGER_NS_PREFIX) and a state directory of
its own; it ends the processes it started by their PID and removes every namespace it
made, even when it fails.  The kernel's own counters are read with ``ip -s -j``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netmanager.cli.main import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TWO = (str(EXAMPLES / "two-hosts/real.xml"), str(EXAMPLES / "two-hosts/virtual.xml"))

#: a second topology beside two-hosts, with one VM that sends nothing
IDLE = """<?xml version="1.0" encoding="UTF-8"?>
<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="idle">
  <network name="quiet" cidr="10.30.0.0/24"/>
  <vm name="vm9" host="host2"><interface network="quiet" ip="10.30.0.9"/></vm>
</virtual>
"""

#: what iperf3 offers from vm1 to vm2 (the network is shaped to 10 Mbit/s)
OFFERED_BPS = 4_000_000

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to build namespaces"),
    pytest.mark.skipif(
        shutil.which("iperf3") is None, reason="needs iperf3 (scripts/install --dev)"
    ),
]


@contextlib.contextmanager
def udp_flow(prefix: str, seconds: float) -> Iterator[None]:
    """iperf3 UDP at OFFERED_BPS from vm1 to vm2 (two-hosts) for ``seconds``; both ends
    stopped by their PID on the way out."""
    vm1, vm2 = f"{prefix}v-two-hosts-vm1", f"{prefix}v-two-hosts-vm2"
    server = subprocess.Popen(
        ["ip", "netns", "exec", vm2, "iperf3", "-s", "-1", "-p", "5201"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(50):  # until the server listens
            listening = subprocess.run(
                ["ip", "netns", "exec", vm2, "ss", "-Hltn", "sport", "= :5201"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            if listening.strip():
                break
            time.sleep(0.1)
        flow = ["-u", "-b", str(OFFERED_BPS), "-t", str(seconds)]
        client = subprocess.Popen(
            ["ip", "netns", "exec", vm1, "iperf3", "-c", "10.20.0.2", "-p", "5201", *flow],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        time.sleep(1.0)  # the flow is under way
        assert client.poll() is None, client.stdout.read() if client.stdout else ""
        yield
    finally:
        for process in (client, server):
            if process is not None and process.poll() is None:
                process.kill()
            if process is not None:
                process.wait(timeout=10)


def _watch(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["status", "--watch", "--json", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _by_vm(sample: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["vm"]: p for p in sample["ports"]}


def _check_flow(samples: list[dict[str, Any]]) -> None:
    """vm1 sends OFFERED_BPS to vm2, nothing comes back, and every sample says so."""
    assert [s["sample"] for s in samples] == [1, 2, 3]
    for sample in samples:
        ports = _by_vm(sample)
        vm1, vm2 = ports["vm1"], ports["vm2"]
        assert vm1["oper"] == vm2["oper"] == "up", sample
        # frames are a little longer than iperf3's datagrams: within 0.5x and the shaping
        for rate in (vm1["tx_bps"], vm2["rx_bps"]):
            assert 0.5 * OFFERED_BPS < rate < 10_500_000, sample
        assert vm1["tx_pps"] > 100 and vm2["rx_pps"] > 100, sample
        # the other way: iperf3's idle control connection and ARP at most
        for rate in (vm1["rx_bps"], vm2["tx_bps"]):
            assert rate < 20_000, sample
        for port in sample["ports"]:
            if port["vm"] not in ("vm1", "vm2"):  # another topology's idle VM
                assert port["oper"] == "up" and port["rx_bps"] < 20_000, sample
                assert port["tx_bps"] < 20_000, sample


def _kernel(prefix: str, host: str, vif: str) -> dict[str, int]:
    """The VM's counters as the kernel gives them for its port's host side."""
    out = subprocess.run(
        ["ip", "-n", f"{prefix}h-{host}", "-s", "-j", "link", "show", "dev", vif],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stats = json.loads(out)[0]["stats64"]
    return {
        "rx_bytes": stats["tx"]["bytes"],
        "tx_bytes": stats["rx"]["bytes"],
        "rx_packets": stats["tx"]["packets"],
        "tx_packets": stats["rx"]["packets"],
    }


def _check_counters(
    prefix: str, capsys: pytest.CaptureFixture[str], seen: dict[str, Any], *args: str
) -> None:
    """Once the traffic is over: the counters a sample reports lie between what the kernel
    said just before the watch and just after it (``seen``: an earlier sample)."""
    time.sleep(0.5)
    ports = _by_vm(seen)
    before = {vm: _kernel(prefix, p["host"], p["port"]) for vm, p in ports.items()}
    (sample,) = _watch(capsys, "--count", "1", "--interval", "0.5", *args)
    after = {vm: _kernel(prefix, p["host"], p["port"]) for vm, p in ports.items()}
    for vm, port in _by_vm(sample).items():
        for key, value in before[vm].items():
            assert value <= port[key] <= after[vm][key], (vm, key, before, port, after)
    assert before["vm2"]["rx_bytes"] > 1_000_000  # the flow went through these counters


@pytest.mark.slow  # a traffic flow watched for seconds
def test_watch_through_agents_shows_the_flow(
    prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", *TWO]) == 0
    with udp_flow(prefix, seconds=8):
        samples = _watch(capsys, "--count", "3", "--interval", "0.5", *TWO)
    _check_flow(samples)
    for sample in samples:
        assert {h["source"].split()[0] for h in sample["hosts"].values()} == {"agent"}
        assert all(h["error"] is None and h["age_s"] < 5 for h in sample["hosts"].values())
    _check_counters(prefix, capsys, samples[-1], "--topology", "two-hosts")
    assert main(["destroy", *TWO]) == 0


def test_watch_of_local_topologies_reads_the_kernel(
    prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idle = tmp_path / "idle.xml"
    idle.write_text(IDLE)
    assert main(["apply", "--local", *TWO]) == 0
    assert main(["apply", "--local", TWO[0], str(idle)]) == 0
    with udp_flow(prefix, seconds=8):
        samples = _watch(capsys, "--count", "3", "--interval", "0.5")  # every topology
    _check_flow(samples)
    for sample in samples:
        assert {p["topology"] for p in sample["ports"]} == {"two-hosts", "idle"}
        assert {h["source"] for h in sample["hosts"].values()} == {"kernel"}
    _check_counters(prefix, capsys, samples[-1])
    # the table a person sees: one line per port, a column of topologies
    assert main(["status", "--watch", "--count", "1", "--interval", "0.2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[:3] == ["topology", "vm", "network"]
    assert [line.split()[:2] for line in table[2:5]] == [
        ["idle", "vm9"],
        ["two-hosts", "vm1"],
        ["two-hosts", "vm2"],
    ]
    assert main(["destroy", TWO[0], str(idle)]) == 0
    assert main(["destroy", *TWO]) == 0
