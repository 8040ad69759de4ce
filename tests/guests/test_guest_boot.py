"""One real guest under QEMU (TCG): a stock Debian kernel with NetEm and 802.1Q, wired to a
namespace of the test by a tap, with its agent reachable on a loopback port.

The guest boots once for the module (about 10 s under TCG on 2 cores).  Its underlay tap
lives in a namespace of the test (unique ``nmtg`` prefix) bridged with a veth; addresses
are 10.250.0.0/24, inside that namespace and the guest only.  Finalizers stop QEMU by its
PID and delete the namespace, also when a test fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
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
UNDERLAY = "eth1"
GUEST_MAC = "52:54:00:fa:00:02"
HOST_ADDRESS = "10.250.0.1"
GUEST_ADDRESS = "10.250.0.2"
IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "/sbin/ip"
SNMPGET = ["snmpget", "-v2c", "-c", READ_COMMUNITY, "-t", "1", "-r", "0", "-OqvU"]
TC = "/usr/sbin/tc" if os.path.exists("/usr/sbin/tc") else "/sbin/tc"


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
            agent_port=port,
            nics=(qemu.Nic(GUEST_MAC, name, f"{name}t0", UNDERLAY),),
            project_dir=PROJECT,
        )
        log: list[str] = []
        with running(spec, log) as guest:
            qemu.plug(name, f"{name}t0", master="br0")
            yield Booted(guest, name, port, log)
    finally:
        os.close(ns_fd)
        os.close(home)
        netns.remove(name)


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
