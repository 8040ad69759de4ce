"""Transactions on guest hosts: a failure at a kernel step of a commit inside a guest
leaves every host as it was — checked inside the guests with ``ip -j``, ``tc -j``,
``bridge -j``, ``iptables-save`` and ``ebtables-save``, not through netmanager.

examples/two-hosts-guests is applied first (two guests); a second topology on the same
guests (its own VLAN, a shaped and delayed network) is then applied with the k-th kernel
step of host1's commit made to fail (the agent's ``inject-fault`` test hook), for k from
:data:`STEPS` until the apply goes through: every one of the first steps, then spread
further apart (each try costs about ten seconds under TCG).  The guest killed mid-apply
is in test_guest_hosts.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netmanager import agents, deploy, remote
from netmanager.errors import NetmanagerError
from netmanager.guests import hosts, qemu
from tests import kernelstate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REAL = str(EXAMPLES / "two-hosts-guests/real.xml")
FIRST = str(EXAMPLES / "two-hosts-guests/virtual.xml")
SECOND = """<?xml version="1.0" encoding="UTF-8"?>
<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="faults-b">
  <network name="lan2" cidr="10.30.0.0/24" encap="vlan">
    <shaping bandwidth="5Mbit" latency="5ms"/>
  </network>
  <vm name="vmb1" host="host1"><interface network="lan2" ip="10.30.0.1"/></vm>
  <vm name="vmb2" host="host2"><interface network="lan2" ip="10.30.0.2"/></vm>
</virtual>
"""
FAULT = "/run/netmanager/agent/inject-fault"  # the agent's state directory in the guest
STEPS = (0, 1, 2, 3, 4, 6, 9, 13, 18, 24, 31, 39, 48, 58, 69, 81, 94, 108, 123, 139, 156)

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, taps, QEMU)"),
    pytest.mark.skipif(
        shutil.which(qemu.QEMU) is None, reason=f"needs {qemu.QEMU} (Debian's qemu-system-x86)"
    ),
]


@pytest.fixture
def applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    prefix = f"nmf{uuid.uuid4().hex[:5]}"
    monkeypatch.setenv("NETMANAGER_NS_PREFIX", prefix)
    monkeypatch.setenv("NETMANAGER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv(
        "NETMANAGER_GUEST_CACHE",
        os.environ.get("NETMANAGER_GUEST_CACHE", "/var/cache/netmanager-tests/guests"),
    )
    second = tmp_path / "faults-b.xml"
    second.write_text(SECOND)
    try:
        remote.apply(deploy.prepare(REAL, FIRST))
        yield second
    finally:
        hosts.stop_guests()
        agents.stop_agents()
        for name in kernelstate.namespaces(prefix):
            subprocess.run(["ip", "netns", "del", name], check=False)


def _snapshot(host: str) -> dict[str, Any]:
    guest = hosts.guest_of(host)
    assert guest is not None, f"guest {host} is not running"

    def run(argv: list[str], netns: str | None) -> str:
        return guest.run(argv, netns=netns, timeout=60, check=True).stdout

    try:
        return kernelstate.host_snapshot(run)
    finally:
        guest.disconnect()


def _write(host: str, path: str, text: str) -> None:
    guest = hosts.guest_of(host)
    assert guest is not None
    try:
        guest.write_file(path, text, 0o600)
    finally:
        guest.disconnect()


def test_a_failure_at_any_step_inside_a_guest_rolls_every_host_back(applied: Path) -> None:
    before = {h: _snapshot(h) for h in ("host1", "host2")}
    failures = 0
    for k in STEPS:
        _write("host1", FAULT, str(k))
        try:
            remote.apply(deploy.prepare(REAL, applied))
        except NetmanagerError as exc:
            assert any(d.code == "E741" for d in exc.errors), exc
            assert "injected fault" in str(exc) or "commit failed" in str(exc), exc
            failures += 1
            after = {h: _snapshot(h) for h in ("host1", "host2")}
            assert after == before, f"step {k}: a host is not as it was"
            continue
        break  # k is past host1's last step: the apply went through
    else:
        pytest.fail("the apply never went through")
    assert failures >= 6  # namespaces, veths, bridge, VLAN, qdiscs, addresses ...
    # what went through is there: the second topology's VLAN sub-interface on host1
    links = _snapshot("host1")["root"]["links"]
    assert sum(1 for link in links if link["kind"] == "vlan") == 2
