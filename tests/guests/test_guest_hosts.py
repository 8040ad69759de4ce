"""examples/two-hosts-guests through the command line: two hosts of real.xml emulated by
QEMU guests with Debian's stock kernel, configured through their agents over forwarded
loopback ports; the VMs' link has 10 Mbit/s, 20 ms latency, 2 ms jitter and 0.1 % loss
(NetEm) and the network crosses the hosts on an 802.1Q trunk.

The two guests boot once for the module (booting costs most of the time under TCG); the
tests run in order: what apply built (CLI, agents, doctor, exec, status, re-apply); the
Python API's exec and popen in the guests' VMs; ``netmanager verify`` at every level,
measured from inside the guests, then a second tenant with the same addresses beside it
and a port plugged across into the first's bridge, a leak verify must catch; a failure
injected at a spread of kernel steps inside host1's guest while a second topology
is applied, which must leave both hosts exactly as they were; then host2's guest killed
(SIGKILL to QEMU) while the hosts commit: host1 is rolled back, and destroy copes with the
dead guest and leaves nothing behind.  Kernel state is read inside the guests with
``ip -j``, ``tc -j``, ``bridge -j``, ``iptables-save`` and ``ebtables-save``, not through
netmanager.

Everything has this test's own namespace prefix and state directory; the finalizer powers
off the guests (QEMU by PID) and deletes the namespaces, also when a test fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from netmanager.apply import topology
from netmanager.apply.prepare import prepare
from netmanager.apply.records import records
from netmanager.cli.main import main
from netmanager.errors import NetmanagerError
from netmanager.guests import hosts
from netmanager.verify.connectivity import GUEST_BUSY_PRESSURE
from tests import kernelstate
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


@dataclass
class Grid:
    prefix: str
    directory: Path
    before: dict[str, Any]  # this machine's namespaces and links before anything
    pids: list[int]


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grid]:
    directory = tmp_path_factory.mktemp("guest-hosts")
    with own_guest_hosts("q", directory / "state") as prefix:
        (REAL.parent / "snmp.toml").chmod(0o600)  # git keeps no mode: the agents insist
        before = kernelstate.snapshot(prefix)
        assert main(["apply", *TWO]) == 0
        pids = [info.pid for _, info in sorted(hosts.guests().items())]
        yield Grid(prefix, directory, before, pids)


def _rtts(output: str) -> list[float]:
    return [float(m) for m in re.findall(r"time=([0-9.]+) ms", output)]


def _snapshot(host: str) -> dict[str, Any]:
    """A guest host's kernel state, read inside it with ip, tc, bridge and the *-save tools."""
    guest = hosts.guest_of(host)
    assert guest is not None, f"guest {host} is not running"

    def run(argv: list[str], netns: str | None) -> str:
        return guest.run(argv, netns=netns, timeout=60, check=True).stdout

    try:
        return kernelstate.host_snapshot(run)
    finally:
        guest.disconnect()


def _both() -> dict[str, dict[str, Any]]:
    """Both guest hosts' kernel state, read at the same time (one control channel each)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {h: pool.submit(_snapshot, h) for h in ("host1", "host2")}
        return {h: f.result() for h, f in futures.items()}


SECOND = """<?xml version="1.0" encoding="UTF-8"?>
<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="second">
  <network name="lan2" cidr="10.30.0.0/24" encap="vlan">
    <shaping bandwidth="5Mbit" latency="5ms"/>
  </network>
  <vm name="vmb1" host="host1"><interface network="lan2" ip="10.30.0.1"/></vm>
  <vm name="vmb2" host="host2"><interface network="lan2" ip="10.30.0.2"/></vm>
</virtual>
"""
FAULT = "/run/netmanager/agent/inject-fault"  # the agent's state directory in the guest
# a spread of steps, further apart each time (each try costs some twenty seconds under
# TCG on a busy machine; tests/test_apply.py and tests/snmp inject at every step on this
# machine's kernel): the first (nothing done on host1 yet), one in the middle (host1 has
# some twelve: a namespace, veths, bridge, VLAN, qdiscs, addresses ...: half of them
# done), then further apart until one is past host1's last
STEPS = (0, 6, 13, 18, 24, 32, 45, 64, 96, 128, 192, 256)


def test_what_apply_built_on_two_guest_hosts(
    grid: Grid, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = grid.prefix
    # two guests run, each with its agent on a loopback port of this machine
    assert main(["hosts", "status", "--json"]) == 0
    guests = json.loads(capsys.readouterr().out)
    assert [g["host"] for g in guests] == ["host1", "host2"]
    assert all(g["health"] == "ok" and g["agent"].startswith("127.0.0.1:") for g in guests)
    # doctor asks each guest host's own kernel: NetEm and 802.1Q there, not here
    assert main(["doctor", "--json"]) == 0
    doctor = json.loads(capsys.readouterr().out)
    assert sorted(doctor["hosts"]) == ["host1", "host2"]
    for doc in doctor["hosts"].values():
        found = {f["name"]: f["available"] for f in doc["features"]}
        assert found["netem"] and found["8021q"] and found["vxlan"], doc
    # the guests' underlay NICs are taps in the switch's namespace (nothing in the root's)
    switch = f"{prefix}s-sw1"
    taps = json.loads(
        subprocess.run(
            ["ip", "-n", switch, "-j", "-d", "link", "show", "type", "tun"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert len(taps) == 2 and all(t.get("master") == "br0" for t in taps)
    # built by the engine as the infrastructure's: marked, shaped (TBF), and a re-plan of
    # the infrastructure, which sees them, wants nothing changed
    assert sorted(t.get("ifalias", "") for t in taps) == [
        "nm:-:tap:host1:eth0",
        "nm:-:tap:host2:eth0",
    ]
    for tap in taps:
        qdiscs = json.loads(
            subprocess.run(
                ["tc", "-n", switch, "-j", "qdisc", "show", "dev", tap["ifname"], "root"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert [q["kind"] for q in qdiscs] == ["tbf"], qdiscs
    record = records()["two-hosts-guests"]
    assert topology.plan_infrastructure(record.infrastructure).empty

    # inside host1: the network on an 802.1Q sub-interface of the trunk, NetEm on the port
    guest = hosts.guest_of("host1")
    assert guest is not None
    try:
        links = json.loads(guest.run(["ip", "-j", "-d", "link"], check=True).stdout)
        vlans = [link for link in links if link.get("linkinfo", {}).get("info_kind") == "vlan"]
        assert [v["link"] for v in vlans] == ["eth0"]
        # the host's own NIC, built by its agent's engine as the infrastructure's
        (nic,) = [link for link in links if link["ifname"] == "eth0"]
        assert nic.get("ifalias") == "nm:-:underlay:host1:eth0" and "UP" in nic["flags"]
        qdiscs = json.loads(guest.run(["tc", "-j", "qdisc"], check=True).stdout)
        assert [q["kind"] for q in qdiscs if q["dev"] == "eth0" and q.get("root")] == ["tbf"]
        netem = [q for q in qdiscs if q["kind"] == "netem"]
        assert len(netem) == 1 and netem[0]["options"]["delay"]["delay"] == pytest.approx(0.02)
    finally:
        guest.disconnect()

    # vm1 reaches vm2 across the two guests, 20 ms each way (jitter 2 ms)
    capsys.readouterr()
    code = main(["exec", "vm1", "--", "ping", "-c", "10", "-i", "0.2", "-W", "2", "10.20.0.2"])
    out = capsys.readouterr().out
    rtts = _rtts(out)
    assert code == 0 and len(rtts) >= 8, out  # loss is 0.1 % each way
    assert min(rtts) >= 36.0, out
    assert sorted(rtts)[len(rtts) // 2] < 80.0, out

    # status comes from the agents inside the guests
    assert main(["status", "--json", *TWO]) == 0
    status = json.loads(capsys.readouterr().out)
    states = {vm["name"]: vm["interfaces"][0] for vm in status["vms"]}
    assert {n: i["state"] for n, i in states.items()} == {"vm1": "up", "vm2": "up"}
    assert states["vm1"]["link"]["rate_kbps"] == 10000
    assert states["vm1"]["link"]["delay_us"] == 20000

    # a re-apply changes nothing; --local cannot configure a guest
    assert main(["apply", "--json", *TWO]) == 0
    assert json.loads(capsys.readouterr().out)["changes"] == 0
    assert main(["apply", "--local", *TWO]) == 1
    assert "error[E709]" in capsys.readouterr().err


def _verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    capsys.readouterr()
    code = main(["verify", "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


def _by_kind(report: dict) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    out: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for check in report["checks"]:
        out.setdefault(check["kind"], []).append(check)
    return out


def test_python_api_in_vms_of_guest_hosts(grid: Grid, monkeypatch: pytest.MonkeyPatch) -> None:
    """netmanager.Testbed on the applied topology: status with the agents' view, exec and
    popen inside VMs that live in the guests (GuestProcess through the control channel),
    the state directory and prefix given to the testbed, not taken from the environment."""
    from netmanager import GuestProcess, Testbed

    testbed = Testbed(*TWO, state_dir=grid.directory / "state", ns_prefix=grid.prefix)
    monkeypatch.delenv("NETMANAGER_STATE_DIR")
    monkeypatch.delenv("NETMANAGER_NS_PREFIX")
    assert testbed.applied
    status = testbed.status()
    assert (status.vm("vm1").host, status.vm("vm2").host) == ("host1", "host2")
    link = status.vm("vm1").interface("lan").link
    assert link is not None and link.oper == "up" and link.delay_us == 20_000
    done = testbed.exec("vm1", ["ping", "-c2", "-W3", "10.20.0.2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert all(rtt > 38 for rtt in _rtts(done.stdout))  # 20 ms each way, through NetEm
    assert testbed.exec("vm2", ["ping", "-c1", "-W1", "10.20.0.9"]).returncode != 0
    shell = testbed.popen(
        "vm2", ["sh", "-c", "ip -br addr show eth0; echo oops >&2; exit 3"], text=True
    )
    assert isinstance(shell, GuestProcess)
    assert shell.wait(timeout=60) == 3
    out, err = shell.communicate()
    assert "10.20.0.2/24" in out and "oops" in out and err is None
    sleeper = testbed.popen("vm1", ["sleep", "300"])
    assert sleeper.poll() is None and sleeper.pid > 0
    sleeper.kill()
    assert sleeper.wait(timeout=30) != 0


def test_verify_every_level_inside_the_guests_and_a_leak_between_tenants(
    grid: Grid, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every level, on guests that have done little else yet (as a user's verify right
    after apply), then a second tenant beside the first.  The leak made by hand at the
    end leaves stale neighbour entries in the VMs: the tests after it do not need the
    VMs to reach each other."""
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

    # 10 Mbit/s both ways: UDP measures the shaper (TCP may be bounded by the loss).  This
    # module runs while the other workers keep this machine's two cores busy: a sender
    # inside a guest starved of CPU is no measurement, and verify says so (inconclusive,
    # with its reason) rather than failing.
    udp = [c for c in kinds["bandwidth"] if c["probe"] == "iperf3 udp"]
    assert len(udp) == 2 and all(c["passed"] for c in udp)
    for check in udp:
        if check["applicable"]:
            assert abs(check["measured"] - 1e7) <= 0.02 * 1e7, check
        else:
            assert "inconclusive" in check["detail"], check
    assert kinds["state"] and all(c["passed"] for c in kinds["state"])
    assert "inside guest host(s) host1, host2" in kinds["state"][0]["detail"]

    # a second tenant, same addresses, its own VLAN on the same guests: no leak
    tenant = grid.directory / "tenant.xml"
    tenant.write_text(TENANT)
    assert main(["apply", str(REAL), str(tenant)]) == 0
    both = [*TWO, str(tenant)]
    code, report = _verify(capsys, *both, "--only", "reachability,isolation")
    failures = [c for c in report["checks"] if not c["passed"]]
    assert not failures, json.dumps(failures, indent=1)
    assert set(report["topologies"]) == {"two-hosts-guests", "two-hosts-tenant"}

    # plug the tenant's vm1 port into the other topology's bridge inside host1: a leak
    # across the VLANs that verify must catch (ARP answers and frames from the other)
    applied = records()
    mine = applied["two-hosts-guests"].hosts["host1"].ports[0]
    theirs = applied["two-hosts-tenant"].hosts["host1"].ports[0]
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

    # the tenant goes (its port with it); the first topology and both guests stay
    assert main(["destroy", str(REAL), str(tenant)]) == 0
    assert sorted(hosts.guests()) == ["host1", "host2"]


def test_a_failure_at_any_step_inside_a_guest_rolls_every_host_back(grid: Grid) -> None:
    second = grid.directory / "faults.xml"
    second.write_text(SECOND)
    before = _both()
    failures = 0
    for k in STEPS:
        guest = hosts.guest_of("host1")
        assert guest is not None
        try:
            guest.write_file(FAULT, str(k), 0o600)
        finally:
            guest.disconnect()
        try:
            topology.apply(prepare(TWO[0], second))
        except NetmanagerError as exc:
            assert any(d.code == "E741" for d in exc.errors), exc
            assert "injected fault" in str(exc) or "commit failed" in str(exc), exc
            failures += 1
            after = _both()
            assert after == before, f"step {k}: a host is not as it was"
            continue
        break  # k is past host1's last step: the apply went through
    else:
        pytest.fail("the apply never went through")
    assert failures >= 2, failures  # the first step, and one after host1 has done half
    # what went through is there: the second topology's VLAN sub-interface on host1
    links = _snapshot("host1")["root"]["links"]
    assert sum(1 for link in links if link["kind"] == "vlan") == 2
    assert topology.destroy("second").changes > 0
    assert _both() == before


def test_a_guest_killed_mid_apply_then_destroy(grid: Grid) -> None:
    # a guest killed while the hosts commit another topology: host1 is rolled back
    host1_before = _snapshot("host1")
    second = grid.directory / "second.xml"
    second.write_text(SECOND)

    def kill_host2(event: str, host: str) -> None:
        if event == "committing" and host == "host2":
            os.kill(grid.pids[1], signal.SIGKILL)

    with pytest.raises(NetmanagerError) as err:
        topology.apply(prepare(TWO[0], second), hook=kill_host2, revert_s=60)
    assert any(d.code == "E741" for d in err.value.errors)
    assert _snapshot("host1") == host1_before
    assert sorted(hosts.guests()) == ["host1"]

    # destroy stops the guests and leaves nothing behind (host2's state went with it)
    assert main(["destroy", *TWO]) == 0
    assert hosts.guests() == {}
    for pid in grid.pids:
        assert (
            not Path(f"/proc/{pid}").exists()
            or b"qemu" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        )
    assert kernelstate.snapshot(grid.prefix) == grid.before
    assert kernelstate.namespaces(grid.prefix) == []
