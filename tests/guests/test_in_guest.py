"""One real guest under QEMU (TCG), a stock Debian kernel with NetEm and 802.1Q, booted
once for the module: first the guest itself (its kernel, its underlay NIC wired by a tap to
a namespace of the test, its agent on a loopback port, a second process attaching to it),
then the tests that skip on a kernel without NetEm and 802.1Q, run inside it.  Its root is
the host's ``/`` read-only over 9p, so the guest runs this very checkout with this very
interpreter.

The underlay tap lives in a namespace of the test (unique ``nmtg`` prefix) bridged with a
veth; addresses are 10.250.0.0/24, inside that namespace and the guest only.  The inner
pytest writes nothing into the checkout (no cache provider, no bytecode, its temporary
directories and JUnit report on the guest's tmpfs); the report is read back and every test
named in :data:`MUST_PASS` must have passed there, not skipped.  Finalizers stop QEMU by
its PID (the namespaces inside the guest go with it) and delete the test's namespace, also
when a test fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netmanager.guests import qemu
from netmanager.kernel import netns
from tests.guests.conftest import GuestImage, running
from tests.snmp.conftest import CREDENTIALS, READ_COMMUNITY, free_udp_port

pytestmark = pytest.mark.privileged

PROJECT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable  # the host's interpreter (a virtualenv's too), seen through 9p
WORK = "/tmp/inguest"  # on the guest's tmpfs
GUEST_TMPFS = ("/tmp", "/run", "/var/tmp", "/var/lib/netmanager")  # hide the host's there
UNDERLAY = "eth1"
GUEST_MAC = "52:54:00:fa:00:02"
HOST_ADDRESS = "10.250.0.1"
GUEST_ADDRESS = "10.250.0.2"
IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "/sbin/ip"
SNMPGET = ["snmpget", "-v2c", "-c", READ_COMMUNITY, "-t", "1", "-r", "0", "-OqvU"]
TC = "/usr/sbin/tc" if os.path.exists("/usr/sbin/tc") else "/sbin/tc"

# What runs inside; the first three skip on this machine's kernel ("no sch_netem", "no
# 802.1Q"), the two modules after them skip on it entirely.
INNER = (
    "tests/kernel/test_kernel_apply.py::test_netem_needs_a_kernel_with_netem",
    "tests/kernel/test_kernel_features.py::test_netem_below_the_egress_tbf",
    "tests/kernel/test_kernel_features.py::test_a_vlan_on_a_parent_link",
    "tests/kernel/test_kernel_netem_vlan.py",
    "tests/test_apply_netem_vlan.py",
    "tests/test_doctor.py",
)
MUST_PASS = {
    ("tests.kernel.test_kernel_apply", "test_netem_needs_a_kernel_with_netem"),
    ("tests.kernel.test_kernel_features", "test_netem_below_the_egress_tbf"),
    ("tests.kernel.test_kernel_features", "test_a_vlan_on_a_parent_link"),
    ("tests.kernel.test_kernel_netem_vlan", "test_netem_alone_then_below_a_tbf_then_gone"),
    ("tests.kernel.test_kernel_netem_vlan", "test_netem_parameters_are_read_back_exactly[loss]"),
    (
        "tests.kernel.test_kernel_netem_vlan",
        "test_netem_parameters_are_read_back_exactly[latency64]",
    ),
    ("tests.kernel.test_kernel_netem_vlan", "test_netem_below_htb_classes"),
    ("tests.kernel.test_kernel_netem_vlan", "test_a_bridge_per_vlan_across_two_hosts"),
    (
        "tests.kernel.test_kernel_netem_vlan",
        "test_netem_on_a_port_of_a_vlan_bridge_delays_what_crosses",
    ),
    ("tests.test_apply_netem_vlan", "test_a_vlan_network_with_latency_is_applied_and_destroyed"),
    ("tests.test_doctor", "test_doctor_agrees_with_the_kernel_about_netem"),
}
DOCTOR_MUST_FIND = ("netem", "8021q", "vxlan", "bridge_vlan_filtering", "iptables", "ebtables")


def _hidden_in_guest(path: Path) -> bool:
    return any(path == Path(d) or Path(d) in path.parents for d in GUEST_TMPFS)


def _env() -> dict[str, str]:
    return {
        "PYTHONPATH": str(PROJECT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": WORK,
        "NETMANAGER_STATE_DIR": f"{WORK}/state",
    }


@dataclass
class Booted:
    guest: qemu.Guest
    namespace: str
    port: int
    boot_log: list[str]


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory, guest_image: GuestImage) -> Iterator[Booted]:
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("needs /dev/net/tun")
    # the guest shows the project again over its tmpfs (a clone in /tmp): not the rest
    for path in (Path(sys.prefix).resolve(), Path(PYTHON).resolve()):
        if _hidden_in_guest(path) and not path.is_relative_to(PROJECT):
            pytest.skip(f"{path} is under a directory the guest covers with a tmpfs")
    name = f"nmtg{secrets.token_hex(3)}"
    home = netns.current_fd()
    ns_fd = netns.create(name, home)
    try:
        _wire_namespace(name)
        port = free_udp_port()
        spec = qemu.GuestSpec(
            name="guest1",
            kernel=guest_image.kernel,
            initramfs=guest_image.initramfs,
            run_dir=tmp_path_factory.mktemp("guest1"),
            memory_mib=384,
            agent_port=port,
            nics=(qemu.Nic(GUEST_MAC, name, f"{name}t0", UNDERLAY),),
            project_dir=PROJECT,
        )
        log: list[str] = []
        with running(spec, log) as guest:
            qemu.plug(name, f"{name}t0", master="br0")
            guest.run(["mkdir", "-p", WORK], check=True)
            yield Booted(guest, name, port, log)
    finally:
        os.close(ns_fd)
        os.close(home)
        netns.remove(name)


@pytest.fixture
def guest(booted: Booted) -> qemu.Guest:
    return booted.guest


def _wire_namespace(name: str) -> None:
    """br0 with the host end of a veth; the other end holds 10.250.0.1/24."""
    from pyroute2 import IPRoute

    def wire() -> None:
        with IPRoute() as ipr:
            ipr.link("add", ifname="br0", kind="bridge")
            ipr.link("add", ifname="vh", kind="veth", peer="vb")
            br0 = ipr.link_lookup(ifname="br0")[0]
            vb = ipr.link_lookup(ifname="vb")[0]
            vh = ipr.link_lookup(ifname="vh")[0]
            ipr.link("set", index=vb, master=br0, state="up")
            ipr.addr("add", index=vh, address=HOST_ADDRESS, prefixlen=24)
            for index in (vh, br0, ipr.link_lookup(ifname="lo")[0]):
                ipr.link("set", index=index, state="up")

    qemu.in_namespace(name, wire)


def test_the_guest_runs_the_debian_kernel(booted: Booted) -> None:
    release = booted.guest.run(["uname", "-r"], check=True).stdout.strip()
    assert release == booted.guest.spec.kernel.version
    assert release != os.uname().release
    assert any("guestd" in line for line in booted.boot_log)
    assert booted.guest.run(["hostname"], check=True).stdout.strip() == "guest1"


def test_netem_and_vlan_work_inside(booted: Booted) -> None:
    g = booted.guest
    g.run([TC, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "5ms"], check=True)
    qdiscs = json.loads(g.run([TC, "-j", "qdisc", "show", "dev", "lo"], check=True).stdout)
    assert qdiscs[0]["kind"] == "netem"
    g.run([TC, "qdisc", "del", "dev", "lo", "root"], check=True)
    vlan = f"{UNDERLAY}.10"
    g.run(
        [IP, "link", "add", "link", UNDERLAY, "name", vlan, "type", "vlan", "id", "10"], check=True
    )
    links = json.loads(g.run([IP, "-j", "-d", "link", "show", vlan], check=True).stdout)
    assert links[0]["linkinfo"]["info_kind"] == "vlan"
    g.run([IP, "link", "del", vlan], check=True)


def test_the_underlay_nic_has_its_name_and_carries_traffic(booted: Booted) -> None:
    g = booted.guest
    links = json.loads(g.run([IP, "-j", "link", "show", UNDERLAY], check=True).stdout)
    assert links[0]["address"] == GUEST_MAC
    g.run([IP, "addr", "add", f"{GUEST_ADDRESS}/24", "dev", UNDERLAY], check=True)
    g.run([IP, "link", "set", UNDERLAY, "up"], check=True)
    # from the guest to the test's namespace ...
    ping = g.run(["ping", "-c", "3", "-W", "2", HOST_ADDRESS], timeout=30)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    # ... and back, from inside the namespace
    back = subprocess.run(
        ["ip", "netns", "exec", booted.namespace, "ping", "-c", "2", "-W", "2", GUEST_ADDRESS],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert back.returncode == 0, back.stdout + back.stderr


def test_the_agent_is_reachable_on_a_loopback_port(
    booted: Booted, tool_env: dict[str, str]
) -> None:
    if shutil.which("snmpget") is None:
        pytest.skip("needs snmpget (Debian package snmp)")
    g = booted.guest
    g.write_file("/tmp/agent/snmp.toml", CREDENTIALS, 0o600)
    pid = g.spawn(
        [
            sys.executable,
            "-m",
            "snmp_agents.agent",
            "--backend",
            "memory",
            "--listen",
            "0.0.0.0:161",
            "--state-dir",
            "/tmp/agent/state",
            "--credentials",
            "/tmp/agent/snmp.toml",
            "--sys-name",
            "guest1",
        ],
        log="/tmp/agent/agent.log",
    )
    try:
        started = time.monotonic()
        answer = None
        while time.monotonic() - started < 60:
            if g.poll(pid) is not None:
                log = g.run(["cat", "/tmp/agent/agent.log"]).stdout
                pytest.fail(f"the agent exited inside the guest:\n{log}")
            result = subprocess.run(
                [*SNMPGET, f"udp:127.0.0.1:{booted.port}", "1.3.6.1.2.1.1.5.0"],
                capture_output=True,
                text=True,
                env=tool_env,
                timeout=30,
            )
            if result.returncode == 0:
                answer = result.stdout.strip()
                break
        assert answer is not None, g.run(["cat", "/tmp/agent/agent.log"]).stdout
        assert answer.strip('"') == "guest1"
        # nothing but the agent's answers leaves the management NIC
        assert g.run(["ping", "-c", "1", "-W", "1", "10.0.2.2"], timeout=20).returncode != 0
    finally:
        g.kill(pid)


def test_another_process_can_attach_by_the_record(booted: Booted) -> None:
    booted.guest.disconnect()
    other = qemu.attach(booted.guest.run_dir)
    assert other.pid == booted.guest.pid and other.alive()
    assert other.spec == booted.guest.spec
    assert other.run(["hostname"], check=True).stdout.strip() == "guest1"
    other.disconnect()
    assert booted.guest.run(["true"]).returncode == 0


def test_doctor_finds_netem_and_vlans_inside(guest: qemu.Guest) -> None:
    result = guest.run([PYTHON, "-m", "netmanager", "doctor", "--json"], env=_env(), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    features = {f["name"]: f for f in json.loads(result.stdout)["features"]}
    missing = {
        name: features.get(name, {}).get("detail", "not reported")
        for name in DOCTOR_MUST_FIND
        if not features.get(name, {}).get("available")
    }
    assert missing == {}


def test_what_skips_here_passes_inside(guest: qemu.Guest) -> None:
    report = f"{WORK}/junit.xml"
    argv = [
        PYTHON,
        "-m",
        "pytest",
        "-q",
        "-rA",
        "-p",
        "no:cacheprovider",
        # one process (the guest has one CPU), and none of the plugins these tests do
        # not use: under TCG, importing xdist and hypothesis took longer than some tests
        "-o",
        "addopts=",
        "-p",
        "no:xdist",
        "-p",
        "no:hypothesispytest",
        f"--rootdir={PROJECT}",
        "-c",
        str(PROJECT / "pyproject.toml"),
        f"--basetemp={WORK}/pytest",
        f"--junitxml={report}",
        *(f"{PROJECT}/{selection}" for selection in INNER),
    ]
    result = guest.run(argv, env=_env(), timeout=420)
    output = f"inner pytest exited {result.returncode}:\n{result.stdout[-6000:]}{result.stderr}"
    assert result.returncode == 0, output
    xml = guest.run(["cat", report], check=True).stdout
    outcomes = {}
    for case in ET.fromstring(xml).iter("testcase"):
        bad = [child.tag for child in case if child.tag in ("skipped", "failure", "error")]
        outcomes[(case.get("classname"), case.get("name"))] = bad[0] if bad else "passed"
    assert {k: v for k, v in outcomes.items() if v != "passed"} == {}, output
    assert MUST_PASS - set(outcomes) == set(), sorted(outcomes)
