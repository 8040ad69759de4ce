"""A libvirt host's VMs as domains: found, matched, defined, wired and let go.

The host backend (:mod:`netmanager.host.kernelhost`) owns the transaction; this module
does what that transaction needs of libvirt, through the host's keeper
(:mod:`netmanager.hypervisor.keeper`):

- :func:`resolve` reads every domain the configuration names and says, before anything
  changes, which tap is each VM port (the live XML's ``<target dev>`` of an attached
  domain's interface, matched by MAC where ``virtual.xml`` gives one, else in order; the
  name netmanager gives in a domain it defines) and what is wrong (a domain missing, shut
  off, with another number of interfaces, or a name taken by a domain netmanager did not
  define);
- :func:`join` plugs attached domains' interfaces into their networks' bridges through
  libvirt (``virDomainUpdateDeviceFlags``), after recording each interface as it was, and
  defines and starts the domains netmanager defines (marked as its own in their
  metadata);
- :func:`leave` undoes that for the VMs a configuration no longer has: an attached
  domain's interfaces go back to the sources they had, a defined domain is stopped and
  undefined (only one marked as netmanager's, for that VM).

The record of attached interfaces (``domains.json`` in the agent's state directory) is
written before an interface is moved, so that an interrupted commit still knows where it
was.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netmanager.hypervisor.cloudinit import write_seed
from netmanager.hypervisor.domxml import (
    DefinedInterface,
    DomainInfo,
    DomainInterface,
    DomainXMLError,
    bridge_interface,
    domain_xml,
    read_domain,
    resolve_type,
)
from netmanager.hypervisor.keeper import Domain, KeeperClient, KeeperError
from netmanager.hypervisor.spec import DomainSpec

RECORD = "domains.json"


class DomainProblem(Exception):
    """What stops a configuration's domains from being wired: one line per VM."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(p.text() for p in problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class Problem:
    topology: str
    vm: str
    message: str
    hint: str = ""

    def text(self) -> str:
        return f"VM '{self.vm}' of topology '{self.topology}': {self.message}" + (
            f" (hint: {self.hint})" if self.hint else ""
        )


@dataclass(frozen=True)
class DomainPort:
    """A VM interface that is a domain's NIC: in ``network``, a port of ``bridge``;
    ``tap`` is the name netmanager gives the tap of a domain it defines."""

    network: str
    index: int
    mac: str
    bridge: str
    tap: str


@dataclass(frozen=True)
class VmDomain:
    """A VM of a topology on this host that is a libvirt domain; ``seed``: the files of
    its cloud-init seed, for a domain defined from a disk image."""

    topology: str
    vm: str
    spec: DomainSpec
    ports: tuple[DomainPort, ...]
    seed: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.topology, self.vm)


@dataclass
class Resolution:
    """What :func:`resolve` found: per (topology, vm, network) the tap, the domains as
    read, what would change, and the problems."""

    taps: dict[tuple[str, str, str], str] = field(default_factory=dict)
    #: per (topology, vm, network) the MAC of the domain's NIC (an attached domain's own)
    macs: dict[tuple[str, str, str], str] = field(default_factory=dict)
    #: domains with a qemu-guest-agent channel, by name
    agents: dict[str, bool] = field(default_factory=dict)
    found: dict[str, DomainInfo] = field(default_factory=dict)
    active: dict[str, bool] = field(default_factory=dict)
    changes: list[tuple[str, str]] = field(default_factory=list)  # (operation, what)
    problems: list[Problem] = field(default_factory=list)
    #: ports whose tap libvirt must plug into their bridge: (topology, vm, network)
    unplugged: set[tuple[str, str, str]] = field(default_factory=set)

    def raise_if_problems(self) -> None:
        if self.problems:
            raise DomainProblem(self.problems)


def match_interfaces(
    vm: VmDomain, info: DomainInfo
) -> tuple[list[tuple[DomainPort, DomainInterface]], str | None]:
    """Each port of ``vm`` with the domain interface that is it: by MAC where
    ``virtual.xml`` gives one, the others in order; or why they cannot be matched."""
    ports = sorted(vm.ports, key=lambda p: p.index)
    if len(ports) != len(info.interfaces):
        return [], (
            f"domain '{info.name}' has {len(info.interfaces)} network interface(s), "
            f"the VM has {len(ports)}"
        )
    given = {i: m.lower() for i, m in enumerate(vm.spec.macs) if m}
    taken: set[int] = set()
    pairs: dict[int, DomainInterface] = {}
    for port in ports:
        mac = given.get(port.index)
        if not mac:
            continue
        at = next((n for n, i in enumerate(info.interfaces) if i.mac == mac), None)
        if at is None:
            have = ", ".join(i.mac for i in info.interfaces)
            return [], f"domain '{info.name}' has no interface with MAC {mac} (it has {have})"
        taken.add(at)
        pairs[port.index] = info.interfaces[at]
    rest = iter(i for n, i in enumerate(info.interfaces) if n not in taken)
    out = []
    for port in ports:
        iface = pairs.get(port.index) or next(rest)
        out.append((port, iface))
    return out, None


def resolve(vms: Iterable[VmDomain], keeper: KeeperClient) -> Resolution:
    """Read the domains of ``vms`` and say what each port's tap is and what must change;
    nothing is changed."""
    res = Resolution()
    for vm in vms:
        name = vm.spec.name
        try:
            dom = keeper.domain(name)
        except KeeperError as exc:
            res.problems.append(Problem(vm.topology, vm.vm, f"cannot read domain '{name}': {exc}"))
            continue
        info = None
        if dom is not None:
            try:
                info = read_domain(dom.xml)
            except DomainXMLError as exc:
                res.problems.append(Problem(vm.topology, vm.vm, f"domain '{name}': {exc}"))
                continue
            res.found[name] = info
            res.active[name] = dom.active
        if vm.spec.defined:
            _resolve_defined(vm, dom, info, res)
        else:
            _resolve_attached(vm, dom, info, res)
    return res


def _resolve_defined(
    vm: VmDomain, dom: Domain | None, info: DomainInfo | None, res: Resolution
) -> None:
    name = vm.spec.name
    if info is not None and info.owner != (vm.topology, vm.vm):
        whose = (
            f"netmanager defined it for VM '{info.owner[1]}' of topology '{info.owner[0]}'"
            if info.owner
            else "netmanager did not define it"
        )
        res.problems.append(
            Problem(
                vm.topology,
                vm.vm,
                f"a domain named '{name}' exists and {whose}",
                'give the VM another domain="..." name, or leave out its <template> to '
                "attach the existing domain",
            )
        )
        return
    for port in vm.ports:
        res.taps[(vm.topology, vm.vm, port.network)] = port.tap
        res.macs[(vm.topology, vm.vm, port.network)] = port.mac
    res.agents[name] = vm.spec.template is not None and vm.spec.template.guest_agent
    if dom is None:
        res.changes.append(("define", f"domain {name} (VM {vm.vm})"))
    if dom is None or not dom.active:
        res.changes.append(("start", f"domain {name} (VM {vm.vm})"))


def _resolve_attached(
    vm: VmDomain, dom: Domain | None, info: DomainInfo | None, res: Resolution
) -> None:
    name = vm.spec.name
    if dom is None or info is None:
        res.problems.append(
            Problem(
                vm.topology,
                vm.vm,
                f"no domain named '{name}' on this host",
                "define and start it (virsh define/start, virt-install), name another with "
                'domain="...", or give the VM a <template> for netmanager to define it',
            )
        )
        return
    if not dom.active:
        res.problems.append(
            Problem(
                vm.topology,
                vm.vm,
                f"domain '{name}' is {dom.state_name}: netmanager wires running domains",
                f"start it first (virsh start {name})",
            )
        )
        return
    res.agents[name] = info.guest_agent
    pairs, why = match_interfaces(vm, info)
    if why is not None:
        res.problems.append(
            Problem(
                vm.topology,
                vm.vm,
                why,
                "give each <interface> the MAC of the domain's NIC it is (mac=...), and as "
                "many interfaces as the domain has",
            )
        )
        return
    for port, iface in pairs:
        if not iface.target:
            res.problems.append(
                Problem(vm.topology, vm.vm, f"domain '{name}': NIC {iface.mac} has no tap")
            )
            return
        if iface.type not in ("bridge", "network"):
            # libvirt cannot move a running domain's NIC of another type onto a bridge
            # ("unable to change config on 'ethernet' network type")
            res.problems.append(
                Problem(
                    vm.topology,
                    vm.vm,
                    f"domain '{name}': NIC {iface.mac} is of type '{iface.type}', which "
                    "libvirt cannot plug into a bridge while the domain runs",
                    "give the domain a bridge or network interface (<interface type='bridge'>)",
                )
            )
            return
        res.taps[(vm.topology, vm.vm, port.network)] = iface.target
        res.macs[(vm.topology, vm.vm, port.network)] = iface.mac
        if iface.bridge != port.bridge:
            res.unplugged.add((vm.topology, vm.vm, port.network))
            res.changes.append(
                ("plug", f"domain {name} NIC {iface.mac} ({iface.target}) into {port.bridge}")
            )


# ------------------------------------------------------------------------ the record


class Record:
    """The attached interfaces netmanager moved, as they were: {domain: {topology, vm,
    interfaces: {mac: the original <interface> XML}}}."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / RECORD
        self.data: dict[str, Any] = {}
        try:
            loaded = json.loads(self.path.read_text())
        except (OSError, ValueError):
            loaded = {}
        if isinstance(loaded, dict):
            self.data = loaded

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def original(self, domain: str, mac: str) -> str | None:
        value = self.data.get(domain, {}).get("interfaces", {}).get(mac)
        return str(value) if value is not None else None

    def remember(self, vm: VmDomain, iface: DomainInterface) -> None:
        entry = self.data.setdefault(
            vm.spec.name, {"topology": vm.topology, "vm": vm.vm, "interfaces": {}}
        )
        if iface.mac not in entry["interfaces"]:
            entry["interfaces"][iface.mac] = iface.xml
            self.save()

    def forget(self, domain: str, mac: str | None = None) -> None:
        entry = self.data.get(domain)
        if entry is None:
            return
        if mac is None:
            del self.data[domain]
        else:
            entry["interfaces"].pop(mac, None)
            if not entry["interfaces"]:
                del self.data[domain]
        self.save()

    def domains(self) -> dict[str, tuple[str, str]]:
        """domain -> (topology, vm) of every domain whose interfaces are recorded."""
        return {d: (e["topology"], e["vm"]) for d, e in self.data.items()}


# ------------------------------------------------------------------------ changes

Check = Callable[[str], None]


def _no_check(_what: str) -> None:
    pass


def join(
    vms: Iterable[VmDomain],
    keeper: KeeperClient,
    record: Record,
    *,
    kvm_usable: bool = False,
    console_dir: Path | None = None,
    seed_dir: Path | None = None,
    check: Check = _no_check,
) -> tuple[int, set[str]]:
    """Wire ``vms``' domains: define and start those netmanager defines, plug attached
    ones' interfaces into their bridges.  Returns the number of changes and the domains
    changed; raises
    KeeperError or DomainProblem (what is done stays done: the caller's undo is
    :func:`leave` towards the previous configuration)."""
    vms = list(vms)
    res = resolve(vms, keeper)
    res.raise_if_problems()
    done = 0
    touched: set[str] = set()
    for vm in vms:
        name = vm.spec.name
        before = done
        if vm.spec.defined:
            if name not in res.found:
                check(f"define domain {name}")
                interfaces = [
                    DefinedInterface(p.mac, p.bridge, p.tap)
                    for p in sorted(vm.ports, key=lambda p: p.index)
                ]
                assert vm.spec.template is not None
                console = str(console_dir / f"{name}.console") if console_dir else ""
                seed = ""
                if vm.seed:
                    check(f"cloud-init seed of domain {name}")
                    where = (seed_dir or Path(".")) / f"{name}.seed.iso"
                    seed = str(write_seed(dict(vm.seed), where))
                keeper.define(
                    domain_xml(
                        vm.spec,
                        interfaces,
                        topology=vm.topology,
                        vm=vm.vm,
                        domain_type=resolve_type(vm.spec.template.domain_type, kvm_usable),
                        console_log=console,
                        seed=seed,
                    )
                )
                done += 1
            if not res.active.get(name, False):
                check(f"start domain {name}")
                keeper.start(name)
                done += 1
            if done > before:
                touched.add(name)
            continue
        info = res.found[name]
        pairs, _ = match_interfaces(vm, info)
        for port, iface in pairs:
            if iface.bridge == port.bridge:
                continue
            check(f"plug domain {name} NIC {iface.mac} into {port.bridge}")
            record.remember(vm, iface)
            keeper.update(name, bridge_interface(iface, port.bridge))
            done += 1
            touched.add(name)
    return done, touched


def leave(
    gone: Iterable[VmDomain],
    keeper: KeeperClient,
    record: Record,
    *,
    check: Check = _no_check,
) -> int:
    """Let go of the domains of VMs a configuration no longer has: an attached domain's
    interfaces back where they were (where it still runs; a domain stopped meanwhile gets
    its persistent definition back), a domain netmanager defined for that VM stopped and
    undefined.  A domain gone already is passed over.  Returns the number of changes."""
    done = 0
    for vm in gone:
        name = vm.spec.name
        dom = keeper.domain(name)
        if dom is None:
            record.forget(name)
            continue
        info = read_domain(dom.xml)
        if vm.spec.defined:
            if info.owner == (vm.topology, vm.vm):
                check(f"undefine domain {name}")
                keeper.undefine(name)
                done += 1
            continue
        for iface in info.interfaces:
            original = record.original(name, iface.mac)
            if original is None:
                continue
            if iface.xml != original:
                # libvirt finds the device by its MAC: the original's type and source
                # come back
                check(f"put domain {name} NIC {iface.mac} back")
                keeper.update(name, original)
                done += 1
            record.forget(name, iface.mac)
    return done


def kvm_usable() -> bool:
    """Whether KVM can run a stock guest kernel here: /dev/kvm present, the CPU has
    hardware virtualisation, and it is not PVM's (which hangs stock kernels: notes)."""
    if not os.path.exists("/dev/kvm") or os.path.exists("/sys/module/kvm_pvm"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " vmx" in flags or " svm" in flags


# ------------------------------------------------------------------------ inside guests

#: programs inside a guest, called by full path (a guest's PATH may be anything)
GUEST_IP = "/sbin/ip"
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"
IFF_UP = 0x1
_IFNAME = re.compile(r"[A-Za-z0-9_.:@-]{1,15}")
#: a guest just started boots under software emulation: its agent answers within seconds
#: alone, within a minute with others booting beside it on two cores
GUEST_AGENT_WAIT_S = 180.0


@dataclass(frozen=True)
class GuestNic:
    mac: str
    address: str  # "10.0.0.1/24"
    mtu: int


@dataclass(frozen=True)
class GuestNetwork:
    """What a VM's guest carries, set through its qemu-guest-agent: its NICs (found by
    MAC) up with their MTU and address, its routes, IP forwarding."""

    topology: str
    vm: str
    domain: str
    nics: tuple[GuestNic, ...]
    routes: tuple[tuple[str, str], ...]  # (destination prefix, next hop)
    forward: bool


def configure_guest(
    net: GuestNetwork,
    keeper: KeeperClient,
    *,
    check: Check = _no_check,
    wait_s: float = GUEST_AGENT_WAIT_S,
) -> int:
    """Make the guest carry ``net``: each change one command through guest-exec, only
    where the guest differs (what it carries besides is left alone).  Returns the number
    of changes; raises DomainProblem when its agent does not answer or a NIC is missing."""
    if not keeper.wait_guest_agent(net.domain, wait_s):
        raise DomainProblem(
            [
                Problem(
                    net.topology,
                    net.vm,
                    f"the guest agent of domain '{net.domain}' did not answer within "
                    f"{wait_s:.0f} s",
                    "does the guest run qemu-guest-agent on its org.qemu.guest_agent.0 channel?",
                )
            ]
        )

    def problem(message: str) -> DomainProblem:
        return DomainProblem([Problem(net.topology, net.vm, message)])

    # reads and sysfs/sysctl writes through the agent's file calls; only what sysfs cannot
    # do (addresses, routes) starts a process in the guest: one `ip -batch`
    interfaces = keeper.agent(net.domain, {"execute": "guest-network-get-interfaces"}) or []
    by_mac = {str(i.get("hardware-address", "")).lower(): i for i in interfaces}
    commands: list[str] = []
    done = 0
    for nic in net.nics:
        found = by_mac.get(nic.mac.lower())
        if found is None:
            raise problem(f"the guest of domain '{net.domain}' has no NIC with MAC {nic.mac}")
        dev = str(found["name"])
        if not _IFNAME.fullmatch(dev):
            raise problem(f"the guest of domain '{net.domain}' names a NIC {dev!r}")
        sysfs = f"/sys/class/net/{dev}"
        if int(keeper.guest_read(net.domain, f"{sysfs}/mtu").strip() or 0) != nic.mtu:
            check(f"MTU {nic.mtu} on {dev} in domain {net.domain}")
            keeper.guest_write(net.domain, f"{sysfs}/mtu", str(nic.mtu).encode())
            done += 1
        flags = int(keeper.guest_read(net.domain, f"{sysfs}/flags").strip() or "0", 16)
        if not flags & IFF_UP:
            check(f"{dev} up in domain {net.domain}")
            keeper.guest_write(net.domain, f"{sysfs}/flags", hex(flags | IFF_UP).encode())
            done += 1
        have = {
            f"{a['ip-address']}/{a['prefix']}"
            for a in found.get("ip-addresses", ())
            if a.get("ip-address-type") == "ipv4"
        }
        if nic.address not in have:
            check(f"{nic.address} on {dev} in domain {net.domain}")
            commands.append(f"addr add {nic.address} dev {dev}")
            done += 1
    if net.routes:
        present = _routes(keeper.guest_read(net.domain, "/proc/net/route").decode())
        for to, via in net.routes:
            if (ipaddress.IPv4Network(to), ipaddress.IPv4Address(via)) in present:
                continue
            check(f"route {to} via {via} in domain {net.domain}")
            commands.append(f"route replace {to} via {via}")
            done += 1
    forward = keeper.guest_read(net.domain, IP_FORWARD).strip() == b"1"
    if forward != net.forward:
        check(f"IP forwarding in domain {net.domain}")
        keeper.guest_write(net.domain, IP_FORWARD, b"1" if net.forward else b"0")
        done += 1
    if commands:
        # addresses before routes (a route's next hop is reached through them); the
        # values are netmanager's own, typed: addresses, prefixes, the guest's NIC names
        script = "\n".join(commands) + "\n"
        code, _out, err = keeper.guest_exec(
            net.domain, [GUEST_IP, "-batch", "-"], stdin=script.encode()
        )
        if code != 0:
            raise problem(
                f"in domain '{net.domain}', ip -batch failed ({code}): "
                f"{err.decode(errors='replace').strip()}"
            )
    return done


def _routes(text: str) -> set[tuple[ipaddress.IPv4Network, ipaddress.IPv4Address]]:
    """The gateway routes of /proc/net/route (hexadecimal, little-endian)."""
    out = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        dst, gateway, mask = (
            ipaddress.IPv4Address(int.from_bytes(bytes.fromhex(f), "little"))
            for f in (fields[1], fields[2], fields[7])
        )
        if int(gateway):
            out.add((ipaddress.IPv4Network(f"{dst}/{mask}"), gateway))
    return out
