"""``netmanager verify`` on examples/two-hosts-guests: VMs that live inside two QEMU guests
(stock kernel: NetEm, 802.1Q), probed, measured and observed from inside the guests.

Everything has this test's own namespace prefix and state directory; the finalizer powers
off the guests (QEMU by PID) and deletes the namespaces, also when a test fails.  No
assertion on wall-clock time: other guests may share the two cores.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from netmanager import deploy
from netmanager.cli import main
from netmanager.guests import hosts
from netmanager.verify.connectivity import GUEST_BUSY_PRESSURE
from tests.guests.conftest import GUEST_HOSTS, own_guest_hosts

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REAL = EXAMPLES / "two-hosts-guests/real.xml"
TWO = (str(REAL), str(EXAMPLES / "two-hosts-guests/virtual.xml"))

# a second tenant on the same two guests: its own network (its own VLAN on the trunk),
# the same addresses
TENANT = """<?xml version="1.0" encoding="UTF-8"?>
<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="two-hosts-tenant">
  <network name="lan" cidr="10.20.0.0/24" encap="auto"/>
  <vm name="vm1" host="host1"><interface network="lan" ip="10.20.0.1"/></vm>
  <vm name="vm2" host="host2"><interface network="lan" ip="10.20.0.2"/></vm>
</virtual>
"""

pytestmark = [
    *GUEST_HOSTS,
    pytest.mark.skipif(shutil.which("iperf3") is None, reason="needs iperf3"),
]


@pytest.fixture
def prefix(tmp_path: Path) -> Iterator[str]:
    with own_guest_hosts("w", tmp_path / "state") as prefix:
        (REAL.parent / "snmp.toml").chmod(0o600)  # git keeps no mode: the agents insist
        yield prefix


def _verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    capsys.readouterr()
    code = main(["verify", "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


def _by_kind(report: dict) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    out: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for check in report["checks"]:
        out.setdefault(check["kind"], []).append(check)
    return out


def test_verify_two_guest_hosts_and_a_leak_between_tenants(
    prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", *TWO]) == 0

    # every level, measured from inside the guests
    code, report = _verify(capsys, *TWO)
    kinds = _by_kind(report)
    failures = [c for c in report["checks"] if not c["passed"]]
    assert not failures, json.dumps(failures, indent=1)
    assert {c["src"] for c in kinds["reachability"]} == {"vm1", "vm2"}
    assert all(c["measured"] == "reachable" for c in kinds["reachability"])
    assert any(c["probe"] == "capture" for c in kinds["isolation"])
    assert [c["measured"] for c in kinds["path"]] == ["10.20.0.2", "10.20.0.1"]

    # 20 ms each way: the 10th percentile less the guests' own round trip and the
    # jitter's, within the guests' tolerance (inconclusive only where this machine's
    # CPUs were contended in every try)
    (latency,) = kinds["latency"]
    assert latency["configured"] == pytest.approx(40.0)
    assert latency["applicable"] or latency["extra"]["cpu_pressure"] >= GUEST_BUSY_PRESSURE
    assert latency["probe"] == "icmp rtt p10 - own p10"
    assert latency["extra"]["min"] > 34.0  # the delay is there, in both directions
    (loss,) = kinds["loss"]
    assert loss["applicable"] and loss["extra"]["sent"] == 2000

    # 10 Mbit/s both ways: UDP measures the shaper (TCP may be bounded by the loss)
    udp = [c for c in kinds["bandwidth"] if c["probe"] == "iperf3 udp"]
    assert len(udp) == 2 and all(c["applicable"] and c["passed"] for c in udp)
    assert all(abs(c["measured"] - 1e7) <= 0.02 * 1e7 for c in udp)
    assert kinds["state"] and all(c["passed"] for c in kinds["state"])
    assert "inside guest host(s) host1, host2" in kinds["state"][0]["detail"]

    # a second tenant, same addresses, its own VLAN on the same guests: no leak
    tenant = tmp_path / "tenant.xml"
    tenant.write_text(TENANT)
    assert main(["apply", str(REAL), str(tenant)]) == 0
    both = [*TWO, str(tenant)]
    code, report = _verify(capsys, *both, "--only", "reachability,isolation")
    failures = [c for c in report["checks"] if not c["passed"]]
    assert not failures, json.dumps(failures, indent=1)
    assert set(report["topologies"]) == {"two-hosts-guests", "two-hosts-tenant"}

    # plug the tenant's vm1 port into the other topology's bridge inside host1: a leak
    # across the VLANs that verify must catch (ARP answers and frames from the other)
    records = deploy.records()
    mine = records["two-hosts-guests"].hosts["host1"].ports[0]
    theirs = records["two-hosts-tenant"].hosts["host1"].ports[0]
    guest = hosts.guest_of("host1")
    assert guest is not None
    try:
        guest.run(["ip", "link", "set", theirs.vif, "master", mine.bridge], check=True)
    finally:
        guest.disconnect()
    code, report = _verify(capsys, *both, "--only", "reachability,isolation")
    assert code == 5 and not report["passed"]
    leaks = [c for c in report["checks"] if c["kind"] == "isolation" and not c["passed"]]
    assert leaks and any("two-hosts-tenant" in c["detail"] for c in leaks), leaks

    assert main(["destroy", str(REAL), str(tenant)]) == 0
    assert main(["destroy", *TWO]) == 0
    assert hosts.guests() == {}
