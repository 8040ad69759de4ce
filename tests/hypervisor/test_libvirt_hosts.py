"""libvirt hosts for real: agents inside emulated hosts' namespaces, each with its own
embedded libvirt QEMU driver (``hypervisor="qemu:///embed"``), whose domains' taps land in
that namespace — the same agent code a real host runs with ``qemu:///system``.

The domains boot netmanager's own guest image (Debian's stock kernel under software
emulation, running this machine's qemu-guest-agent): examples/libvirt is applied, its
domains reached through exec (guest-exec), re-applied with no change, its drift repaired,
and destroyed with nothing left (namespaces, keepers, QEMU, the drivers' roots, the root
namespace's links).  Attach: a domain "the user" defined and started (on a bridge of their
own) is wired by a topology that names it, and put back on its bridge by destroy, still
running and still defined; a domain missing or shut off is E714 at the VM's line, before
any change.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netmanager.agentctl import processes as agent_procs
from netmanager.cli.main import main
from netmanager.compile.hostconfig import host_namespace
from netmanager.host.domainhost import KEEPER_DIR
from netmanager.hypervisor.domxml import read_domain
from netmanager.hypervisor.keeper import KeeperClient, running_keeper
from tests import kernelstate
from tests.conftest import EXAMPLES


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (namespaces, taps, QEMU)"
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return "libvirt-python is not installed (scripts/install --libvirt)"
    if not Path(
        "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so"
    ).exists():
        return "libvirt's QEMU driver is not installed (scripts/install --libvirt)"
    if shutil.which("qemu-system-x86_64") is None:
        return "QEMU is not installed"
    if not Path("/usr/sbin/qemu-ga").exists():
        return "qemu-guest-agent is not installed (scripts/install --libvirt)"
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.privileged,
    # domains are QEMU guests under TCG: with the guest hosts' tests, one module at a time
    pytest.mark.xdist_group("guests"),
    pytest.mark.skipif(_why_not() is not None, reason=_why_not() or ""),
]

REAL = EXAMPLES / "libvirt" / "real.xml"
VIRTUAL = EXAMPLES / "libvirt" / "virtual.xml"


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _keeper(host: str) -> KeeperClient:
    return KeeperClient(agent_procs.agents_dir() / host / KEEPER_DIR)


def _qemu_pids() -> set[int]:
    """The QEMU processes of this machine that are not zombies."""
    out = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                qemu = (proc / "comm").read_text().strip() == "qemu-system-x86"
                if qemu and (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    out.add(int(proc.name))
            except (OSError, IndexError):
                continue
    return out


def _qemu_gone(before: set[int], timeout_s: float = 15.0) -> str:
    """ "" once no QEMU but those of ``before`` runs (a killed domain's QEMU takes a moment
    to exit), else the guests' names of those left."""
    deadline = time.monotonic() + timeout_s
    while (left := _qemu_pids() - before) and time.monotonic() < deadline:
        time.sleep(0.2)
    names = []
    for pid in sorted(left):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        named = [a.decode(errors="replace") for a in argv if a.startswith(b"guest=")]
        names.append(f"{pid} ({', '.join(named) or 'unnamed'})")
    return ", ".join(names)


@pytest.fixture
def libvirt_lab(prefix: str, capsys: pytest.CaptureFixture[str]) -> Iterator[str]:
    """examples/libvirt applied with the test's own prefix and state; destroyed (and every
    keeper and domain of its hosts ended) afterwards, also when the test fails."""
    qemu_before = _qemu_pids()
    roots_before = sorted(kernelstate.snapshot(prefix)["root_links"])
    code, _out, err = _cli(capsys, "apply", str(REAL), str(VIRTUAL))
    assert code == 0, err
    try:
        yield prefix
    finally:
        main(["destroy", str(REAL), str(VIRTUAL)])
        capsys.readouterr()
        for host in ("kvm1", "kvm2"):
            agent_procs.stop_libvirt(agent_procs.agents_dir() / host)
        left = _qemu_gone(qemu_before)
        assert not left, f"a domain's QEMU outlived destroy: {left}"
        assert sorted(kernelstate.snapshot(prefix)["root_links"]) == roots_before


def _exec(capsys: pytest.CaptureFixture[str], vm: str, *argv: str) -> tuple[int, str]:
    code = main(["exec", vm, "--", *argv])
    out, _err = capsys.readouterr()
    return code, out


def test_examples_libvirt_wires_defined_domains_and_takes_them_away(
    libvirt_lab: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = libvirt_lab
    kvm1 = host_namespace("kvm1")
    # the domains netmanager defined: running, marked as its own, each NIC's tap named as
    # netmanager names the VM's port, in the host's namespace, on its network's bridge
    keeper = _keeper("kvm1")
    try:
        web1 = keeper.domain("web1")
        db1 = keeper.domain("db1")
        assert web1 is not None and web1.active and db1 is not None
        info = read_domain(web1.xml)
        assert info.owner == ("libvirt-lab", "web1") and info.guest_agent
        tap = info.interfaces[0].target
        assert tap is not None and tap.startswith("nv")
        db1_tap = read_domain(db1.xml).interfaces[0].target
        assert db1_tap is not None
    finally:
        keeper.close()
    links = {
        link["ifname"]: link
        for link in json.loads(kernelstate.local(["ip", "-j", "-d", "link", "show"], kvm1))
    }
    assert links[tap]["ifalias"] == "nm:libvirt-lab:port:web1:tenant-a"
    bridge = info.interfaces[0].bridge
    assert bridge is not None and links[tap]["master"] == bridge
    assert tap not in {
        link["ifname"] for link in json.loads(kernelstate.local(["ip", "-j", "link", "show"]))
    }
    qdiscs = json.loads(kernelstate.local(["tc", "-j", "qdisc", "show", "dev", tap], kvm1))
    assert [(q["kind"], q["options"]["rate"]) for q in qdiscs if q["kind"] == "tbf"] == [
        ("tbf", 2500000)
    ]
    # the guests carry their addresses (set through their guest agents): across hosts
    # over VXLAN they reach each other, the other tenant they do not
    code, out = _exec(capsys, "web1", "ping", "-c", "2", "-W", "2", "10.30.0.2")
    assert code == 0, out
    code, out = _exec(capsys, "web2", "ip", "-4", "-br", "addr", "show", "dev", "eth0")
    assert code == 0 and "10.30.0.2/24" in out
    code, _ = _exec(capsys, "web1", "ping", "-c", "1", "-W", "1", "10.30.1.1")
    assert code != 0
    code, out = _exec(capsys, "db1", "sh", "-c", "echo out; exit 3")
    assert (code, out) == (3, "out\n")
    # again: nothing changes
    code, out, err = _cli(capsys, "apply", str(REAL), str(VIRTUAL))
    assert code == 0, err
    assert "applied: 0 changes" in out
    # verify, every level, measured from inside the domains (their qemu-guest-agents)
    code, out, err = _cli(capsys, "verify", str(REAL), str(VIRTUAL), "--json")
    report = json.loads(out)
    failed = [c for c in report["checks"] if not c["passed"]]
    assert code == 0 and report["passed"], failed or err
    kinds = {c["kind"] for c in report["checks"]}
    assert {"reachability", "isolation", "path", "bandwidth", "state"} <= kinds
    assert any("libvirt domains (db1, web1, web2)" in n for n in report["notes"])
    rates = [
        c["measured"]
        for c in report["checks"]
        if c["kind"] == "bandwidth" and c["src"] == "web1" and c["dst"] == "web2"
    ]
    assert len(rates) == 2 and all(19e6 < r < 21e6 for r in rates), rates
    # a leak: db1's tap plugged into tenant-a's bridge behind netmanager's back; the ARP
    # probes from inside the domains are answered across the tenants, the state differs
    kernelstate.local(["ip", "link", "set", "dev", db1_tap, "master", bridge], kvm1)
    code, out, _ = _cli(
        capsys, "verify", str(REAL), str(VIRTUAL), "--only", "isolation,state", "--json"
    )
    report = json.loads(out)
    leaks = {
        (c["src"], c["dst"])
        for c in report["checks"]
        if c["kind"] == "isolation" and not c["passed"]
    }
    assert code != 0 and ("db1", "web1 10.30.0.1") in leaks and ("web1", "db1 10.30.1.1") in leaks
    assert any(
        c["kind"] == "state" and not c["passed"] and db1_tap in c["dst"] for c in report["checks"]
    )
    code, out, err = _cli(capsys, "apply", str(REAL), str(VIRTUAL))
    assert code == 0 and "applied: 1 changes" in out, out + err
    # a runtime link failure: the guest's NIC loses its carrier (through libvirt's link
    # state), and gets it back
    code, _out, err = _cli(capsys, "set", str(REAL), str(VIRTUAL), "web1:tenant-a", "--down")
    assert code == 0, err
    code, out = _exec(capsys, "web1", "cat", "/sys/class/net/eth0/carrier")
    assert (code, out.strip()) == (0, "0")
    code, _out, err = _cli(capsys, "set", str(REAL), str(VIRTUAL), "web1:tenant-a", "--up")
    assert code == 0, err
    code, out = _exec(capsys, "web1", "cat", "/sys/class/net/eth0/carrier")
    assert (code, out.strip()) == (0, "1")
    # drift behind netmanager's back: plan shows it, apply repairs it, through netlink
    # (libvirt's view, the bridge in its XML, stays true)
    kernelstate.local(["ip", "link", "set", "dev", tap, "nomaster"], kvm1)
    kernelstate.local(["tc", "qdisc", "del", "dev", tap, "root"], kvm1)
    code, out, _ = _cli(capsys, "plan", str(REAL), str(VIRTUAL))
    assert f"link {kvm1}/{tap} (tun) (master none -> " in out
    assert f"qdisc tbf 1: at root on {kvm1}/{tap}" in out
    code, out, err = _cli(capsys, "apply", str(REAL), str(VIRTUAL))
    assert code == 0 and "applied: 2 changes" in out, out + err
    code, out, _ = _cli(capsys, "plan", str(REAL), str(VIRTUAL))
    assert "0 change(s)" in out
    # destroy: the domains undefined, the keepers ended, the drivers' roots gone
    keeper_dirs = [agent_procs.agents_dir() / h / KEEPER_DIR for h in ("kvm1", "kvm2")]
    roots = [agent_procs.embed_root(agent_procs.agents_dir() / h) for h in ("kvm1", "kvm2")]
    assert all(running_keeper(d) is not None for d in keeper_dirs)
    code, out, err = _cli(capsys, "destroy", str(REAL), str(VIRTUAL))
    assert code == 0, err
    assert all(running_keeper(d) is None for d in keeper_dirs)
    assert not any(r.exists() for r in roots)
    assert kernelstate.namespaces(prefix) == []


ATTACH = """<?xml version="1.0" encoding="UTF-8"?>
<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="attach-lab">
  <network name="lan-x" cidr="10.31.0.0/24">
    <shaping bandwidth="5Mbit"/>
  </network>
  <vm name="app" host="kvm1" domain="{domain}">
    <interface network="lan-x" ip="10.31.0.5" mac="{mac}"/>
  </vm>
  <vm name="peer" host="kvm2">
    <template source="netmanager"/>
    <interface network="lan-x" ip="10.31.0.6"/>
  </vm>
</virtual>
"""
USER_MAC = "52:54:00:12:34:56"


def _user_domain(
    name: str, bridge: str, mac: str = USER_MAC, *, agent: bool = True, address: str = ""
) -> str:
    """A domain as a user defines it (virsh define): netmanager's guest image, one NIC
    on the user's own bridge with a tap libvirt names, no netmanager metadata; with
    ``agent`` False no qemu-guest-agent channel, and ``address`` the address its guest
    carries by itself (as a user's own image configures itself)."""
    from lxml import etree

    from netmanager.guests.domains import guest_template
    from netmanager.hypervisor.domxml import DefinedInterface, domain_xml
    from netmanager.hypervisor.spec import DomainSpec

    template = guest_template()
    template = template.__class__(
        **{
            **template.__dict__,
            "cmdline": f"{template.cmdline} nm.hostname={name} nm.if={mac}=eth0"
            + (f" nm.addr={mac}={address}" if address else ""),
            "guest_agent": agent,
        }
    )
    xml = domain_xml(
        DomainSpec(name, template, memory_mib=192),
        [DefinedInterface(mac, bridge, "placeholder")],
        topology="-",
        vm="-",
        domain_type="qemu",
    )
    root = etree.fromstring(xml.encode())
    root.remove(root.find("metadata"))
    target = root.find("devices/interface/target")
    target.getparent().remove(target)
    return etree.tostring(root, encoding="unicode")


def test_an_attached_domain_is_wired_through_libvirt_and_put_back(
    libvirt_lab: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    kvm1 = host_namespace("kvm1")
    kernelstate.local(["ip", "link", "add", "br-user", "type", "bridge"], kvm1)
    kernelstate.local(["ip", "link", "set", "br-user", "up"], kvm1)
    keeper = _keeper("kvm1")
    name = "userdom"
    keeper.define(_user_domain(name, "br-user"))
    try:
        keeper.start(name)
        before = read_domain(keeper.domain(name).xml).interfaces[0]  # type: ignore[union-attr]
        assert before.bridge == "br-user" and before.target and before.target.startswith("vnet")
        virtual = tmp_path / "attach.xml"
        virtual.write_text(ATTACH.format(domain=name, mac=USER_MAC))

        # a domain that does not exist, or does not run: E714 at the VM, nothing changed
        missing = tmp_path / "missing.xml"
        missing.write_text(ATTACH.format(domain="nothere", mac=USER_MAC))
        state = kernelstate.namespace_state(kvm1)
        code, _out, err = _cli(capsys, "apply", str(REAL), str(missing))
        assert code == 4, err
        assert (
            f"{missing}:6:3: error[E714]: VM 'app' on host 'kvm1': no domain named 'nothere'" in err
        )
        assert kernelstate.namespace_state(kvm1) == state

        # attached: the NIC moved onto the network's bridge by libvirt (its live XML says
        # so), the tap libvirt named marked, shaped and guarded; the guest addressed
        # through its agent and reaching the domain netmanager defined on the other host
        code, out, err = _cli(capsys, "apply", str(REAL), str(virtual))
        assert code == 0, err
        now = read_domain(keeper.domain(name).xml).interfaces[0]  # type: ignore[union-attr]
        assert (now.target, now.mac) == (before.target, before.mac)
        assert now.bridge is not None and now.bridge.startswith("nb")
        tap = now.target
        assert tap is not None
        link = json.loads(kernelstate.local(["ip", "-j", "-d", "link", "show", "dev", tap], kvm1))[
            0
        ]
        assert link["ifalias"] == "nm:attach-lab:port:app:lan-x" and link["master"] == now.bridge
        qdiscs = json.loads(kernelstate.local(["tc", "-j", "qdisc", "show", "dev", tap], kvm1))
        assert "tbf" in {q["kind"] for q in qdiscs}
        ebtables = kernelstate.local(["ebtables-save"], kvm1)
        assert tap in ebtables and USER_MAC in ebtables.lower()
        code, out = _exec(capsys, "app", "ping", "-c", "2", "-W", "2", "10.31.0.6")
        assert code == 0, out
        code, out, err = _cli(capsys, "apply", str(REAL), str(virtual))
        assert code == 0 and "applied: 0 changes" in out, out + err

        # destroy: the NIC back on the user's bridge, the tap unmarked and unshaped, the
        # domain still running and still defined (it is the user's)
        code, out, err = _cli(capsys, "destroy", str(REAL), str(virtual))
        assert code == 0, err
        back = keeper.domain(name)
        assert back is not None and back.active and back.persistent
        iface = read_domain(back.xml).interfaces[0]
        assert (iface.bridge, iface.target) == ("br-user", before.target)
        link = json.loads(kernelstate.local(["ip", "-j", "-d", "link", "show", "dev", tap], kvm1))[
            0
        ]
        assert link.get("ifalias", "") == "" and link["master"] == "br-user"
        qdiscs = json.loads(kernelstate.local(["tc", "-j", "qdisc", "show", "dev", tap], kvm1))
        assert "tbf" not in {q["kind"] for q in qdiscs}

        keeper.destroy(name)
        code, _out, err = _cli(capsys, "apply", str(REAL), str(virtual))
        assert code == 4 and "error[E714]" in err and "is shut off" in err, err
    finally:
        try:
            keeper.undefine(name)
        finally:
            keeper.close()


NO_AGENT = """<?xml version="1.0" encoding="UTF-8"?>
<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="noagent-lab">
  <network name="lan-y" cidr="10.33.0.0/24"/>
  <vm name="selfcfg" host="kvm1" domain="{selfdom}">
    <interface network="lan-y" ip="10.33.0.5" mac="52:54:00:33:00:05"/>
  </vm>
  <vm name="mute" host="kvm1" domain="{mutedom}">
    <interface network="lan-y" ip="10.33.0.6" mac="52:54:00:33:00:06"/>
  </vm>
</virtual>
"""


def _guest_address(capsys: pytest.CaptureFixture[str], virtual: Path, vm: str) -> str:
    code, out, _ = _cli(capsys, "status", "--json", str(REAL), str(virtual))
    assert code == 0
    (found,) = [v for v in json.loads(out)["vms"] if v["name"] == vm]
    return str((found["interfaces"][0]["link"] or {}).get("guest_address"))


def test_a_domain_without_guest_agent_is_told_what_to_carry_and_checked_by_arp(
    libvirt_lab: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Attached domains with no qemu-guest-agent channel: netmanager wires them but cannot
    set their guests' addresses; apply says what each guest must carry, and the host's
    agent checks it by ARP out of the tap (status: answering or silent) — a guest that
    carries its address (set by its own boot) answers, one that does not stays silent."""

    kvm1 = host_namespace("kvm1")
    kernelstate.local(["ip", "link", "add", "br-user", "type", "bridge"], kvm1)
    kernelstate.local(["ip", "link", "set", "br-user", "up"], kvm1)
    keeper = _keeper("kvm1")
    names = {"selfdom": "52:54:00:33:00:05", "mutedom": "52:54:00:33:00:06"}
    try:
        keeper.define(
            _user_domain(
                "selfdom", "br-user", names["selfdom"], agent=False, address="10.33.0.5/24"
            )
        )
        keeper.define(_user_domain("mutedom", "br-user", names["mutedom"], agent=False))
        for name in names:
            keeper.start(name)
            assert not read_domain(keeper.domain(name).xml).guest_agent  # type: ignore[union-attr]
        virtual = tmp_path / "noagent.xml"
        virtual.write_text(NO_AGENT.format(selfdom="selfdom", mutedom="mutedom"))
        code, out, err = _cli(capsys, "apply", str(REAL), str(virtual))
        assert code == 0, err
        assert (
            "warning: VM 'mute' is domain 'mutedom' on host 'kvm1' without qemu-guest-agent: "
            "its guest must carry 10.33.0.6/24 on its NIC 52:54:00:33:00:06 "
            "(it does NOT answer ARP for it)"
        ) in out, out
        assert "VM 'selfcfg' is domain 'selfdom'" in out and "must carry 10.33.0.5/24" in out
        # the host's agent checks again every few seconds: the guest that carries its
        # address answers once it has booted; the other never does
        deadline = time.monotonic() + 180
        while _guest_address(capsys, virtual, "selfcfg") != "answering":
            assert time.monotonic() < deadline, "selfdom's guest never answered ARP"
            time.sleep(2)
        assert _guest_address(capsys, virtual, "mute") == "silent"
        code, out, err = _cli(capsys, "apply", str(REAL), str(virtual), "--json")
        duties = {d["vm"]: d for d in json.loads(out)["guests_to_configure"]}
        assert duties["selfcfg"]["carried"] and not duties["mute"]["carried"]
        code, out, _ = _cli(capsys, "status", str(REAL), str(virtual))
        assert "the guest does NOT answer ARP for its address" in out
        # verify cannot probe from inside them, and says why
        code, out, _ = _cli(
            capsys, "verify", str(REAL), str(virtual), "--only", "reachability", "--json"
        )
        checks = json.loads(out)["checks"]
        assert code != 0 and checks
        assert all(
            c["measured"] == "not measured" and "has no qemu-guest-agent" in c["detail"]
            for c in checks
        ), checks
        code, out, err = _cli(capsys, "destroy", str(REAL), str(virtual))
        assert code == 0, err
        for name in names:
            iface = read_domain(keeper.domain(name).xml).interfaces[0]  # type: ignore[union-attr]
            assert iface.bridge == "br-user"
    finally:
        for name in names:
            for op in (keeper.destroy, keeper.undefine):
                with contextlib.suppress(Exception):
                    op(name)
        keeper.close()


def test_cleanup_ends_keepers_and_domains_whose_agents_died(
    prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A keeper outlives its agent by design (an agent restart must not touch a domain):
    when the agents die and the manager's records are to be thrown away, ``cleanup``
    ends the keepers too, with every domain of their embedded drivers."""
    import signal

    qemu_before = _qemu_pids()
    code, _out, err = _cli(capsys, "apply", str(REAL), str(VIRTUAL))
    assert code == 0, err
    try:
        agents = agent_procs.running()
        assert set(agents) == {"kvm1", "kvm2"}
        for agent in agents.values():
            os.kill(agent.pid, signal.SIGKILL)
        keeper_dirs = [agent_procs.agents_dir() / h / KEEPER_DIR for h in ("kvm1", "kvm2")]
        assert all(running_keeper(d) is not None for d in keeper_dirs)
        assert len(_qemu_pids() - qemu_before) == 3  # the domains run on
        code, out, err = _cli(capsys, "cleanup")
        assert code == 0, err
        assert "stop the libvirt domains of host kvm1" in out
        assert all(running_keeper(d) is None for d in keeper_dirs)
        left = _qemu_gone(qemu_before)
        assert not left, f"a domain's QEMU outlived cleanup: {left}"
        assert kernelstate.namespaces(prefix) == []
        roots = [agent_procs.embed_root(agent_procs.agents_dir() / h) for h in ("kvm1", "kvm2")]
        assert not any(r.exists() for r in roots)
    finally:
        for host in ("kvm1", "kvm2"):
            agent_procs.stop_libvirt(agent_procs.agents_dir() / host)


REAL_BESIDE = """<?xml version="1.0" encoding="UTF-8"?>
<real xmlns="urn:netmanager:real:1" version="1.0">
  <snmp credentials="snmp.toml"/>
  <site name="lab"><vni-range first="6200" last="6299"/></site>
  <switch name="sw1" site="lab"/>
  <host name="host1" site="lab" hypervisor="netns" cpus="4" memory="2GB">
    <interface name="eth0" address="192.0.2.41/24"/>
  </host>
  <host name="hv1" site="lab" hypervisor="qemu+ssh://hv1.example.org/system" cpus="4" memory="2GB">
    <interface name="eth0" address="192.0.2.42/24"/>
    <agent address="127.0.0.1" port="{port}"/>
  </host>
  <link a="host1:eth0" b="sw1" capacity="1Gbit"/>
  <link a="hv1:eth0" b="sw1" capacity="1Gbit"/>
</real>
"""
VIRTUAL_BESIDE = """<?xml version="1.0" encoding="UTF-8"?>
<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="beside">
  <network name="lan-a" cidr="10.32.0.0/24"/>
  <network name="lan-b" cidr="10.32.1.0/24"><shaping bandwidth="10Mbit"/></network>
  <vm name="n1" host="host1"><interface network="lan-a" ip="10.32.0.1"/></vm>
  <vm name="r1" host="hv1" memory="192MB"><template source="netmanager"/>
    <interface network="lan-b" ip="10.32.1.1"/></vm>
  <vm name="r2" host="hv1" memory="192MB"><template source="netmanager"/>
    <interface network="lan-b" ip="10.32.1.2"/></vm>
</virtual>
"""


def _free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_real_libvirt_host_s_agent_is_reached_not_started_beside_an_emulated_host(
    prefix: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A host whose hypervisor is a URI netmanager does not emulate runs its agent as a
    service (here: started by the test from an agent.toml, as systemd would, its dom0 a
    namespace standing in for the host's root namespace): the manager reaches it where
    real.xml says, beside an emulated host in the same real.xml; plan, apply, status and
    destroy go through it; netmanager never starts or stops it."""
    import signal

    from netmanager.hypervisor.keeper import stop_keeper

    dom0 = f"{prefix}r-hv1"
    subprocess.run(["ip", "netns", "add", dom0], check=True)
    subprocess.run(["ip", "-n", dom0, "link", "set", "lo", "up"], check=True)
    port = _free_udp_port()
    (tmp_path / "snmp.toml").write_bytes((EXAMPLES / "libvirt" / "snmp.toml").read_bytes())
    (tmp_path / "snmp.toml").chmod(0o600)
    real = tmp_path / "real.xml"
    real.write_text(REAL_BESIDE.format(port=port))
    virtual = tmp_path / "virtual.xml"
    virtual.write_text(VIRTUAL_BESIDE)
    state = tmp_path / "hv1-agent"
    root = Path("/run/netmanager") / f"test-{prefix}"
    config = tmp_path / "agent.toml"
    config.write_text(
        f'listen = "127.0.0.1:{port}"\ncredentials = "snmp.toml"\nstate_dir = "{state}"\n'
        f'libvirt_uri = "qemu:///embed?root={root}"\ndom0 = "{dom0}"\n'
    )
    agent = subprocess.Popen(
        [sys.executable, "-m", "snmp_agents.agent", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "agent.log").open("wb"),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (state / "agent.json").exists():
            assert agent.poll() is None, (tmp_path / "agent.log").read_text()
            assert time.monotonic() < deadline, "the host's agent did not listen"
            time.sleep(0.1)
        code, _out, err = _cli(capsys, "apply", str(real), str(virtual))
        assert code == 0, err
        assert set(agent_procs.running()) == {"host1"}  # hv1's agent is not netmanager's
        keeper = KeeperClient(state / KEEPER_DIR)
        try:
            code, out, err = keeper.guest_exec("r1", ["/bin/ping", "-c1", "-W2", "10.32.1.2"])
            assert code == 0, out + err
        finally:
            keeper.close()
        links = json.loads(kernelstate.local(["ip", "-j", "link", "show"], dom0))
        assert (
            sum(1 for link in links if link.get("ifalias", "").startswith("nm:beside:port:")) == 2
        )
        code, out, err = _cli(capsys, "apply", str(real), str(virtual))
        assert code == 0 and "applied: 0 changes" in out, out + err
        # verify: the real host's state through its agent's plan (its kernel is another
        # machine's), this machine's host as always; the domains' insides are reached at
        # real.xml's URI with libvirt's own authentication, which this test's host lacks:
        # their VMs are said to be not measured, and why
        code, out, _ = _cli(
            capsys, "verify", str(real), str(virtual), "--only", "reachability,state", "--json"
        )
        report = json.loads(out)
        state_checks = [c for c in report["checks"] if c["kind"] == "state"]
        assert state_checks and all(c["passed"] for c in state_checks), state_checks
        assert "hv1" in state_checks[0]["src"]
        unmeasured = [c for c in report["checks"] if c["measured"] == "not measured"]
        assert code != 0 and {c["src"] for c in unmeasured} == {"r1", "r2"}
        assert all("qemu+ssh://hv1.example.org/system" in c["detail"] for c in unmeasured)
        r1_tap = next(
            link["ifname"]
            for link in links
            if link.get("ifalias", "").startswith("nm:beside:port:r1:")
        )
        kernelstate.local(["tc", "qdisc", "del", "dev", r1_tap, "root"], dom0)
        code, out, _ = _cli(capsys, "verify", str(real), str(virtual), "--only", "state", "--json")
        drift = [c for c in json.loads(out)["checks"] if not c["passed"]]
        assert code != 0 and drift and all(c["src"] == "hv1" for c in drift), drift
        assert any(r1_tap in c["dst"] and c["probe"] == "agent" for c in drift), drift
        code, out, err = _cli(capsys, "apply", str(real), str(virtual))
        assert code == 0 and "applied: 0 changes" not in out, out + err
        code, out, _ = _cli(capsys, "status", "--json", str(real), str(virtual))
        document = json.loads(out)  # one topology named: its document
        assert document["agents"]["hv1"] == f"127.0.0.1:{port}"
        r1 = next(vm for vm in document["vms"] if vm["name"] == "r1")
        assert r1["domain"] == "r1" and r1["interfaces"][0]["state"] == "up"
        code, out, err = _cli(capsys, "destroy", str(real), str(virtual))
        assert code == 0, err
        assert agent.poll() is None, "destroy stopped a host's agent it did not start"
        keeper = KeeperClient(state / KEEPER_DIR)
        try:
            assert {d.name for d in keeper.domains()} == set()  # netmanager's undefined
        finally:
            keeper.close()
        links = json.loads(kernelstate.local(["ip", "-j", "link", "show"], dom0))
        assert [link["ifname"] for link in links] == ["lo"]
    finally:
        if agent.poll() is None:
            os.kill(agent.pid, signal.SIGTERM)
            agent.wait(timeout=30)
        stop_keeper(state / KEEPER_DIR, destroy_domains=True)
        shutil.rmtree(root, ignore_errors=True)
