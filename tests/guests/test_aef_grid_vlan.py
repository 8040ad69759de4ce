"""examples/aef-grid-vlan: seed 002's grid on four guest hosts, a VLAN per network on the
hosts' 802.1Q trunks, and a backbone of 1 Mbit/s with 10 ms of latency each way between
the proxies.

The four guests boot once for the module (most of its time under TCG); the tests run in
order on them:

* what apply built, checked for real: each host carries one sub-interface of its trunk
  per network present there, with the VLAN ids of the site's range; a site spread over
  two hosts is one L2 network across the trunk; the proxies' round trip over the
  backbone is at least 20 ms; and another VLAN gets nothing — a VM given a route into
  another site's network on the same host (so that it tries at layer 2) still reaches
  nobody there;
* ``netmanager verify`` at every level (reachability, isolation with captures in all 32
  VMs, paths, latency, loss, the backbone's bandwidth, the state inside each guest):
  everything passes;
* ``destroy`` powers the guests off and returns only once their QEMU processes are gone.

Own namespace prefix and state directory; the finalizer powers the guests off, also when
a test fails.  No assertion on wall-clock time.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from netmanager.cli.main import main
from netmanager.guests import hosts
from netmanager.verify.connectivity import GUEST_BUSY_PRESSURE
from tests import kernelstate
from tests.guests.conftest import GUEST_HOSTS, own_guest_hosts

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REAL = EXAMPLES / "aef-grid-vlan/real.xml"
GRID = (str(REAL), str(EXAMPLES / "aef-grid-vlan/virtual.xml"))

pytestmark = [
    *GUEST_HOSTS,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("iperf3") is None, reason="needs iperf3"),
    pytest.mark.skipif(shutil.which("ping") is None, reason="needs ping"),
]


@dataclass
class Grid:
    prefix: str
    before: dict[str, Any]  # this machine's namespaces and links before anything
    pids: dict[str, int]  # QEMU of each guest host


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grid]:
    directory = tmp_path_factory.mktemp("aef-grid-vlan")
    with own_guest_hosts("v", directory / "state") as prefix:
        (REAL.parent / "snmp.toml").chmod(0o600)  # git keeps no mode: the agents insist
        before = kernelstate.snapshot(prefix)
        assert main(["apply", *GRID]) == 0
        pids = {host: info.pid for host, info in hosts.guests().items()}
        yield Grid(prefix, before, pids)


def _exec(capsys: pytest.CaptureFixture[str], vm: str, *command: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["exec", vm, "--", *command])
    return code, capsys.readouterr().out


def test_aef_grid_on_vlan_trunks(grid: Grid, capsys: pytest.CaptureFixture[str]) -> None:
    assert set(grid.pids) == {"host1", "host2", "host3", "host4"}

    # host1 carries site1, site2 and the backbone: three sub-interfaces of eth0
    guest = hosts.guest_of("host1")
    assert guest is not None
    try:
        links = json.loads(guest.run(["ip", "-j", "-d", "link"], check=True).stdout)
    finally:
        guest.disconnect()
    vlans = [link for link in links if link.get("linkinfo", {}).get("info_kind") == "vlan"]
    ids = sorted(v["linkinfo"]["info_data"]["id"] for v in vlans)
    assert len(ids) == 3 and len(set(ids)) == 3 and all(100 <= i <= 199 for i in ids)
    assert all(v["link"] == "eth0" and v.get("master") for v in vlans)

    # site 1 spans host3 and host1: one L2 network over the trunk
    code, out = _exec(capsys, "vmgrid101", "ping", "-c", "2", "-W", "2", "10.1.0.18")
    assert code == 0, out
    # the backbone: 10 ms each way between the proxies (host3 -> host1)
    code, out = _exec(capsys, "vmgridpeer1", "ping", "-c", "5", "-i", "0.2", "10.0.0.2")
    rtts = [float(m) for m in re.findall(r"time=([0-9.]+) ms", out)]
    assert code == 0 and len(rtts) == 5 and min(rtts) >= 19.0, out
    # no route between sites
    code, _ = _exec(capsys, "vmgrid101", "ping", "-c", "1", "-W", "1", "10.2.0.11")
    assert code != 0
    # another VLAN gets nothing: vmgrid108 (site 1, host1) sends straight onto its link
    # towards site 2's prefix, whose VMs vmgrid201.. sit on the same host in VLAN of their own
    code, out = _exec(capsys, "vmgrid108", "ip", "route", "add", "10.2.0.0/24", "dev", "eth0")
    assert code == 0, out
    code, out = _exec(capsys, "vmgrid108", "ping", "-c", "3", "-i", "0.3", "-W", "1", "10.2.0.11")
    assert code != 0 and " 0 received" in out, out
    code, out = _exec(capsys, "vmgrid108", "ip", "route", "del", "10.2.0.0/24", "dev", "eth0")
    assert code == 0, out


def test_verify_every_level_passes(grid: Grid, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code = main(["verify", "--json", *GRID])
    report = json.loads(capsys.readouterr().out)
    failures = [c for c in report["checks"] if not c["passed"]]
    assert code == 0 and report["passed"] and not failures, json.dumps(failures, indent=1)
    kinds: dict[str, list[dict[str, Any]]] = {}
    for check in report["checks"]:
        kinds.setdefault(check["kind"], []).append(check)
    assert set(kinds) == {
        "reachability", "isolation", "path", "latency", "loss", "bandwidth", "state"
    }  # fmt: skip
    assert {c["src"] for c in kinds["reachability"]} >= {"vmgridpeer1", "vmgrid101", "vmgrid308"}
    assert any(c["probe"] == "capture" for c in kinds["isolation"])

    # the backbone: judged on its 10th percentile less the guests' own round trip;
    # inconclusive only where this machine's CPUs were contended in every try
    (backbone,) = [c for c in kinds["latency"] if c["applicable"] or "inconclusive" in c["detail"]]
    assert backbone["src"] == "vmgridpeer1" and backbone["configured"] == pytest.approx(20.0)
    assert backbone["extra"]["own"]["min"] > 0
    if not backbone["applicable"]:
        assert backbone["extra"]["cpu_pressure"] >= GUEST_BUSY_PRESSURE, backbone
    # the unshaped sites report their round trip beyond the guests' own, not applicable
    assert all(not c["applicable"] for c in kinds["latency"] if c is not backbone)

    # 1 Mbit/s both ways across the backbone, TCP and UDP
    bandwidth = kinds["bandwidth"]
    assert {(c["src"], c["probe"]) for c in bandwidth} >= {
        ("vmgridpeer1", "iperf3 tcp"),
        ("vmgridpeer1", "iperf3 udp"),
    }
    assert all(c["configured"] == 1_000_000 for c in bandwidth)
    assert "inside guest host(s) host1, host2, host3, host4" in kinds["state"][0]["detail"]


def test_destroy_returns_when_the_guests_qemu_have_exited(grid: Grid) -> None:
    assert main(["destroy", *GRID]) == 0
    left = {host: pid for host, pid in grid.pids.items() if Path(f"/proc/{pid}").exists()}
    assert not left, f"QEMU still there when destroy returned: {left}"
    assert hosts.guests() == {}
    assert kernelstate.snapshot(grid.prefix) == grid.before
