"""apply of a network over 802.1Q with latency, end to end, on a kernel with 8021q and NetEm:
a VLAN sub-interface of each host's underlay in the network's bridge, NetEm below the TBF
of each port, the delay measured by ping; re-apply changes nothing, destroy leaves nothing.

This machine's kernel may lack them: then the test skips.  ``tests/guests/test_in_guest.py``
runs it inside a guest with a stock Debian kernel.  The kernel is read back through
``ip -j`` and ``tc -j``, never through netmanager.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netmanager.cli.main import main
from tests import kernelstate
from tests.kernel.helpers import kernel_has_link, kernel_has_qdisc

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to build namespaces"),
]

REAL = """<?xml version="1.0" encoding="UTF-8"?>
<real xmlns="urn:netmanager:real:1" version="1.0">
  <site name="lab">
    <vlan-range first="100" last="109"/>
    <vni-range first="5000" last="5099"/>
  </site>
  <switch name="sw1" site="lab"/>
  <host name="host1" site="lab" hypervisor="netns" cpus="4" memory="4GB" reserved-memory="512MB">
    <interface name="eth0" address="192.0.2.11/24" speed="1Gbit"/>
  </host>
  <host name="host2" site="lab" hypervisor="netns" cpus="4" memory="4GB" reserved-memory="512MB">
    <interface name="eth0" address="192.0.2.12/24" speed="1Gbit"/>
  </host>
  <link a="host1:eth0" b="sw1" capacity="1Gbit"/>
  <link a="host2:eth0" b="sw1" capacity="1Gbit"/>
</real>
"""

VIRTUAL = """<?xml version="1.0" encoding="UTF-8"?>
<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="slowlan">
  <network name="lan" cidr="10.21.0.0/24" encap="vlan">
    <shaping bandwidth="10Mbit" latency="LATENCY"/>
  </network>
  <vm name="vm1" host="host1">
    <interface network="lan" ip="10.21.0.1"/>
  </vm>
  <vm name="vm2" host="host2">
    <interface network="lan" ip="10.21.0.2"/>
  </vm>
</virtual>
"""


@pytest.fixture
def prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    prefix = f"nmt{uuid.uuid4().hex[:6]}"
    if not kernel_has_qdisc("netem", prefix):
        pytest.skip("this kernel has no sch_netem (tests/guests/test_in_guest.py runs this)")
    if not kernel_has_link(prefix, "link", "b0", "name", "x0", "type", "vlan", "id", "5"):
        pytest.skip("this kernel has no 802.1Q (tests/guests/test_in_guest.py runs this)")
    monkeypatch.setenv("NETMANAGER_NS_PREFIX", prefix)
    monkeypatch.setenv("NETMANAGER_STATE_DIR", str(tmp_path / "state"))
    try:
        yield prefix
    finally:
        for name in kernelstate.namespaces(prefix):
            subprocess.run(["ip", "netns", "del", name], check=False)


def _jrun(*argv: str) -> Any:
    return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


def _min_rtt_ms(namespace: str, address: str) -> float:
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, "ping", "-c", "4", "-i", "0.2", "-W", "2", address],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"= ([0-9.]+)/", result.stdout)
    assert result.returncode == 0 and found, result.stdout + result.stderr
    return float(found.group(1))


def test_a_vlan_network_with_latency_is_applied_and_destroyed(
    prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real, virtual = tmp_path / "real.xml", tmp_path / "virtual.xml"
    real.write_text(REAL)
    virtual.write_text(VIRTUAL.replace("LATENCY", "20ms"))
    files = [str(real), str(virtual)]
    before = kernelstate.snapshot(prefix)
    assert main(["apply", "--local", "--json", *files]) == 0, capsys.readouterr()
    assert json.loads(capsys.readouterr().out)["changes"] > 0

    for host in ("host1", "host2"):
        dom0 = f"{prefix}h-{host}"
        links = {link["ifname"]: link for link in _jrun("ip", "-n", dom0, "-j", "-d", "link")}
        vlans = [
            link for link in links.values() if link.get("linkinfo", {}).get("info_kind") == "vlan"
        ]
        assert len(vlans) == 1, sorted(links)
        vlan = vlans[0]
        assert 100 <= vlan["linkinfo"]["info_data"]["id"] <= 109
        assert vlan["link"] == "eth0"  # on the host's underlay interface
        bridge = links[vlan["master"]]
        assert bridge["linkinfo"]["info_kind"] == "bridge"
        ports = [
            name
            for name, link in links.items()
            if link.get("master") == bridge["ifname"] and name != vlan["ifname"]
        ]
        assert len(ports) == 1, ports
        qdiscs = {
            q["kind"]: q for q in _jrun("tc", "-n", dom0, "-j", "qdisc", "show", "dev", ports[0])
        }
        assert qdiscs["tbf"].get("root") and qdiscs["netem"]["parent"] == "1:1"
        assert qdiscs["netem"]["options"]["delay"]["delay"] == pytest.approx(0.02)

    # 20 ms towards each VM: at least 40 ms there and back
    assert _min_rtt_ms(f"{prefix}v-slowlan-vm1", "10.21.0.2") >= 40.0

    assert main(["apply", "--local", "--json", *files]) == 0
    assert json.loads(capsys.readouterr().out)["changes"] == 0

    virtual.write_text(VIRTUAL.replace("LATENCY", "5ms"))
    assert main(["apply", "--local", "--json", *files]) == 0
    assert json.loads(capsys.readouterr().out)["changes"] == 2  # a NetEm on each port
    assert 10.0 <= _min_rtt_ms(f"{prefix}v-slowlan-vm1", "10.21.0.2") < 40.0

    assert main(["destroy", *files]) == 0
    assert kernelstate.snapshot(prefix) == before
