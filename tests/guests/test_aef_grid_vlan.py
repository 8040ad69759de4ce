"""examples/aef-grid-vlan: seed 002's grid on four guest hosts, a VLAN per network on the
hosts' 802.1Q trunks, and a backbone with 10 ms of latency each way between the proxies.

Checked for real: each host carries one sub-interface of its trunk per network present
there, with the VLAN ids of the site's range; a site spread over two hosts is one L2
network across the trunk; the proxies' round trip over the backbone is at least 20 ms;
and another VLAN gets nothing — a VM given a route into another site's network on the
same host (so that it tries at layer 2) still reaches nobody there.  (verify from inside
guests is tested on two-hosts-guests: right after the four guests' apply, with both cores
busy, a few of its ARP probes across the trunk can time out.)  Own namespace prefix
and state directory; the finalizer powers the guests off, also when a test fails.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from netmanager.cli import main
from netmanager.guests import hosts
from tests import kernelstate
from tests.guests.conftest import GUEST_HOSTS, own_guest_hosts

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GRID = (str(EXAMPLES / "aef-grid-vlan/real.xml"), str(EXAMPLES / "aef-grid-vlan/virtual.xml"))

pytestmark = GUEST_HOSTS


@pytest.fixture
def prefix(tmp_path: Path) -> Iterator[str]:
    with own_guest_hosts("v", tmp_path / "state") as prefix:
        yield prefix


def _exec(capsys: pytest.CaptureFixture[str], vm: str, *command: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["exec", vm, "--", *command])
    return code, capsys.readouterr().out


def test_aef_grid_on_vlan_trunks(prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = kernelstate.snapshot(prefix)
    assert main(["apply", "--json", *GRID]) == 0
    applied = json.loads(capsys.readouterr().out)
    assert set(applied["hosts"]) == {"host1", "host2", "host3", "host4"}

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

    assert main(["destroy", *GRID]) == 0
    assert hosts.guests() == {}
    assert kernelstate.snapshot(prefix) == before
