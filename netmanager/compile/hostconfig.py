"""What one host must build for one topology: the logical configuration the manager sends.

A :class:`HostConfig` is computed on the manager from the model and the mapping
(:mod:`netmanager.compile.configs`), and travels to the host — directly to the local engine for an
emulated host, as the rows of the agent's MIB tables otherwise — where it is rendered into
kernel objects.  It names every kernel object deterministically, so that two runs (or a
manager and an agent) agree on names without talking.

Everything here is frozen and converts to and from JSON-able dictionaries.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field, fields, replace
from typing import Any

from netmanager import settings
from netmanager.hypervisor.spec import DomainSpec
from netmanager.inputs.model import Action, Encap, Protocol

MARKER = "nm:"
INFRA = "-"  # the "topology" of infrastructure shared by topologies (underlay, switches)


def short_hash(*parts: str, length: int = 10) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def ifname(role: str, *parts: str) -> str:
    """A kernel interface name: a two-letter role and a hash of what it stands for (12 chars)."""
    return f"{role}{short_hash(*parts)}"


def namespace_prefix() -> str:
    """What every namespace netmanager creates starts with ("nm"; tests set their own
    through ``NETMANAGER_NS_PREFIX`` so that they never meet a user's namespaces)."""
    return settings.get(settings.NS_PREFIX, "nm")


def namespace_kinds() -> tuple[str, ...]:
    """The prefixes of the namespaces netmanager owns: hosts, switches, VMs, gateways."""
    p = namespace_prefix()
    return (f"{p}h-", f"{p}s-", f"{p}v-", f"{p}g-", f"{p}x-")


def host_namespace(host: str) -> str:
    return f"{namespace_prefix()}h-{host}"


def switch_namespace(node: str) -> str:
    return f"{namespace_prefix()}s-{node}"


def vm_namespace(topology: str, vm: str) -> str:
    return f"{namespace_prefix()}v-{topology}-{vm}"


def nat_namespace(topology: str, network: str) -> str:
    return f"{namespace_prefix()}g-{short_hash(topology, network, length=8)}"


def external_namespace() -> str:
    """The emulated outside world that outbound-only networks reach through NAT."""
    return f"{namespace_prefix()}x-external"


# The emulated outside world: 198.18.0.0/15 (RFC 2544, for benchmarks), with a host at
# .0.1 that VMs with outbound access can reach; NAT gateways take uplinks in it.
EXTERNAL_NETWORK = ipaddress.IPv4Network("198.18.0.0/15")
EXTERNAL_HOST = ipaddress.IPv4Interface("198.18.0.1/15")


def uplink_address(topology: str, network: str) -> ipaddress.IPv4Interface:
    """A NAT gateway's address in the outside world, stable for (topology, network)."""
    span = EXTERNAL_NETWORK.num_addresses - 4
    offset = 2 + int(short_hash(topology, network, "uplink"), 16) % span
    return ipaddress.IPv4Interface(
        f"{EXTERNAL_NETWORK.network_address + offset}/{EXTERNAL_NETWORK.prefixlen}"
    )


def topology_prefix(topology: str) -> str:
    """What every iptables chain of a topology starts with (a policy chain adds a network hash)."""
    return f"nm-{short_hash(topology, length=5)}"


def policy_chain(topology: str, network: str) -> str:
    return f"{topology_prefix(topology)}{short_hash(topology, network, length=6)}"


def derived_mac(topology: str, vm: str, network: str) -> str:
    """A locally administered unicast MAC, stable for (topology, VM, network)."""
    digest = hashlib.sha256(f"{topology}/{vm}/{network}".encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


def alias(topology: str, role: str, *detail: str) -> str:
    """The ownership marker written into the ifalias of every link netmanager creates."""
    return ":".join((MARKER.rstrip(":"), topology, role, *detail))


@dataclass(frozen=True)
class Shaping:
    """One direction of one port: rate (TBF) and, towards the VM, NetEm parameters."""

    rate_bps: int | None = None
    delay_us: int | None = None
    jitter_us: int | None = None
    loss_ppm: int | None = None
    queue_pkts: int | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    @property
    def needs_netem(self) -> bool:
        return bool(self.delay_us or self.jitter_us or self.loss_ppm)


@dataclass(frozen=True)
class PortClass:
    """Traffic of a port to or from some peers, shaped apart from the rest (HTB class)."""

    name: str  # what the class stands for: a peer VM ("pair vm2") or a source host
    peers: tuple[ipaddress.IPv4Address, ...]
    egress: Shaping  # towards the VM, for packets from these peers
    ingress: Shaping  # from the VM, for packets to these peers


@dataclass(frozen=True)
class Port:
    """A VM's interface: a veth with ``vif`` in dom0 (on the bridge) and ``ifname`` in the VM."""

    topology: str
    vm: str
    network: str
    index: int
    vif: str
    ifname: str
    vm_namespace: str
    mac: str
    ip: ipaddress.IPv4Interface
    mtu: int
    bridge: str
    ifb: str
    egress: Shaping  # towards the VM
    ingress: Shaping  # from the VM
    classes: tuple[PortClass, ...] = ()
    forward: bool = False  # a forwarding VM: its port may carry other sources' addresses
    #: the port's host end is up (False: taken down at run time, a link failure the VM
    #: sees as its carrier going; see netmanager.host.runtime)
    up: bool = True

    @property
    def shaped(self) -> bool:
        return not (self.egress.empty and self.ingress.empty and not self.classes)


@dataclass(frozen=True)
class Segment:
    """A virtual network present on this host: its bridge and how it reaches other hosts."""

    topology: str
    network: str
    encap: Encap
    segment_id: int
    bridge: str
    mtu: int  # of the bridge and the VMs' interfaces in it
    tunnel: str | None = None  # VXLAN device or 802.1Q sub-interface; None on one host
    underlay: str | None = None  # the underlay interface the tunnel rides on
    local: ipaddress.IPv4Address | None = None  # this host's VTEP address
    remotes: tuple[ipaddress.IPv4Address, ...] = ()  # VTEPs of the other hosts spanned
    fdb: tuple[tuple[str, ipaddress.IPv4Address], ...] = ()  # remote VM MAC -> its VTEP


@dataclass(frozen=True)
class VmRoute:
    to: ipaddress.IPv4Network
    via: ipaddress.IPv4Address


@dataclass(frozen=True)
class Vm:
    topology: str
    vm: str
    namespace: str  # a VM of a libvirt host has none: its domain is the VM
    routes: tuple[VmRoute, ...]
    forward: bool
    #: the libvirt domain that is this VM (on a libvirt host), None for a namespace
    domain: DomainSpec | None = None


@dataclass(frozen=True)
class Nat:
    """netmanager's outbound-only NAT gateway for one network."""

    topology: str
    network: str
    namespace: str
    address: ipaddress.IPv4Interface  # the network's gateway address
    bridge: str
    inside: str  # the gateway's port on the bridge (in dom0)
    mac: str
    uplink: str = ""  # the gateway's port on the outside world's bridge
    uplink_address: ipaddress.IPv4Interface | None = None
    external_namespace: str = ""


@dataclass(frozen=True)
class PolicyRule:
    """One compiled firewall rule; the first that matches decides."""

    action: Action
    src: tuple[ipaddress.IPv4Network, ...]
    dst: tuple[ipaddress.IPv4Network, ...]
    protocol: Protocol = Protocol.ANY
    ports: tuple[tuple[int, int], ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class Policy:
    """What traffic entering a network's bridge from one of its VM ports may do."""

    topology: str
    network: str
    chain: str
    rules: tuple[PolicyRule, ...]


@dataclass(frozen=True)
class HostConfig:
    """Everything one host builds for one topology."""

    topology: str
    host: str
    dom0: str  # the namespace of the host's hypervisor domain; "" for the root namespace
    segments: tuple[Segment, ...] = ()
    ports: tuple[Port, ...] = ()
    vms: tuple[Vm, ...] = ()
    nats: tuple[Nat, ...] = ()
    policies: tuple[Policy, ...] = ()
    #: the host's CPU is emulated (a QEMU guest under TCG): its qdiscs wake up late, and
    #: render sizes its token buckets for that (netmanager.kernel.shaping)
    emulated_cpu: bool = False

    def as_json(self) -> dict[str, Any]:
        return _to_json(self)  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> HostConfig:
        return _host_from_json(document)

    @property
    def domain_vms(self) -> frozenset[str]:
        """The VMs that are libvirt domains (their ports are the domains' taps)."""
        return frozenset(v.vm for v in self.vms if v.domain is not None)

    def without_vm(self, vm: str) -> HostConfig:
        """This configuration less one VM (its namespace and ports): a migrating VM's
        host before it arrives or once it has left."""
        return replace(
            self,
            vms=tuple(v for v in self.vms if v.vm != vm),
            ports=tuple(p for p in self.ports if p.vm != vm),
        )


@dataclass(frozen=True)
class UnderlayLink:
    """An emulated physical link: a veth from a host's dom0 (or a switch) to a switch."""

    a_namespace: str
    a_ifname: str
    b_namespace: str
    b_ifname: str
    capacity_bps: int
    a_address: ipaddress.IPv4Interface | None = None
    mtu: int = 1500


@dataclass(frozen=True)
class GuestNic:
    """An underlay interface of a guest host: a virtio NIC named ``ifname`` inside the
    guest, whose other end is the tap ``tap`` in a switch's namespace, a port of its bridge."""

    ifname: str
    mac: str
    switch_namespace: str
    bridge: str
    tap: str
    capacity_bps: int
    address: ipaddress.IPv4Interface | None = None
    mtu: int = 1500


#: a guest host's memory: its agent holds some 60 MiB, and verify runs a scan worker, a
#: state worker, iperf3 and ping inside it beside the agent; with 256 MiB (110 MiB
#: available at rest, measured on aef-grid-vlan) a state worker was once killed by the
#: guest's OOM killer in CI
GUEST_MEMORY_MIB = 384


@dataclass(frozen=True)
class GuestHost:
    """A host emulated by a QEMU guest running a stock kernel (``hypervisor="guest"``)."""

    host: str
    nics: tuple[GuestNic, ...] = ()
    memory_mib: int = GUEST_MEMORY_MIB
    cpus: int = 1


def guest_mac(host: str, ifname: str) -> str:
    """A MAC in QEMU's range (52:54:00), stable for (host, interface)."""
    digest = hashlib.sha256(f"guest/{host}/{ifname}".encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


@dataclass(frozen=True)
class Infrastructure:
    """The emulated physical environment: host and switch namespaces and the links between,
    and the hosts emulated by guests (plugged into the switches by taps)."""

    host_namespaces: tuple[str, ...] = ()
    switch_namespaces: tuple[tuple[str, str], ...] = ()  # (namespace, bridge ifname)
    links: tuple[UnderlayLink, ...] = field(default_factory=tuple)
    external_namespace: str = ""  # the emulated outside world, "" when not emulated
    guests: tuple[GuestHost, ...] = ()

    @property
    def guest_by_name(self) -> dict[str, GuestHost]:
        return {g.host: g for g in self.guests}


def _interface_or_none(value: str | None) -> ipaddress.IPv4Interface | None:
    return ipaddress.IPv4Interface(value) if value else None


def infrastructure_from_json(d: dict[str, Any]) -> Infrastructure:
    return Infrastructure(
        external_namespace=d.get("external_namespace", ""),
        host_namespaces=tuple(d["host_namespaces"]),
        switch_namespaces=tuple((a, b) for a, b in d["switch_namespaces"]),
        links=tuple(
            UnderlayLink(**{**link, "a_address": _interface_or_none(link["a_address"])})
            for link in d["links"]
        ),
        guests=tuple(guest_from_json(g) for g in d.get("guests", ())),
    )


def guest_as_json(guest: GuestHost) -> dict[str, Any]:
    return dict(_to_json(guest))


def guest_from_json(g: dict[str, Any]) -> GuestHost:
    return GuestHost(
        host=g["host"],
        nics=tuple(
            GuestNic(**{**n, "address": _interface_or_none(n["address"])}) for n in g["nics"]
        ),
        memory_mib=int(g.get("memory_mib", GUEST_MEMORY_MIB)),
        cpus=int(g.get("cpus", 1)),
    )


# ------------------------------------------------------------------------ JSON conversion


_PLAIN = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # per dataclass: its fields' names


def _to_json(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is DomainSpec:
        return value.as_json()
    names = _FIELD_NAMES.get(kind)
    if names is None and hasattr(value, "__dataclass_fields__"):
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(value))
    if names is not None:
        return {name: _to_json(getattr(value, name)) for name in names}
    if kind is tuple or kind is list:
        return [_to_json(v) for v in value]
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv4Interface | ipaddress.IPv4Network):
        return str(value)
    if isinstance(value, Encap | Action | Protocol):
        return value.value
    return value


def _shaping(d: dict[str, Any]) -> Shaping:
    return Shaping(**d)


def _host_from_json(d: dict[str, Any]) -> HostConfig:
    A = ipaddress.IPv4Address
    return HostConfig(
        topology=d["topology"],
        host=d["host"],
        dom0=d["dom0"],
        segments=tuple(
            Segment(
                topology=s["topology"],
                network=s["network"],
                encap=Encap(s["encap"]),
                segment_id=s["segment_id"],
                bridge=s["bridge"],
                mtu=s["mtu"],
                tunnel=s["tunnel"],
                underlay=s["underlay"],
                local=A(s["local"]) if s["local"] else None,
                remotes=tuple(A(r) for r in s["remotes"]),
                fdb=tuple((mac, A(ip)) for mac, ip in s["fdb"]),
            )
            for s in d["segments"]
        ),
        ports=tuple(
            Port(
                **{
                    **p,
                    "ip": ipaddress.IPv4Interface(p["ip"]),
                    "egress": _shaping(p["egress"]),
                    "ingress": _shaping(p["ingress"]),
                    "classes": tuple(
                        PortClass(
                            name=c["name"],
                            peers=tuple(A(x) for x in c["peers"]),
                            egress=_shaping(c["egress"]),
                            ingress=_shaping(c["ingress"]),
                        )
                        for c in p["classes"]
                    ),
                }
            )
            for p in d["ports"]
        ),
        vms=tuple(
            Vm(
                topology=v["topology"],
                vm=v["vm"],
                namespace=v["namespace"],
                routes=tuple(
                    VmRoute(ipaddress.IPv4Network(r["to"]), A(r["via"])) for r in v["routes"]
                ),
                forward=v["forward"],
                domain=DomainSpec.from_json(v["domain"]) if v.get("domain") else None,
            )
            for v in d["vms"]
        ),
        nats=tuple(
            Nat(
                **{
                    **n,
                    "address": ipaddress.IPv4Interface(n["address"]),
                    "uplink_address": ipaddress.IPv4Interface(n["uplink_address"])
                    if n.get("uplink_address")
                    else None,
                }
            )
            for n in d["nats"]
        ),
        policies=tuple(
            Policy(
                topology=p["topology"],
                network=p["network"],
                chain=p["chain"],
                rules=tuple(
                    PolicyRule(
                        action=Action(r["action"]),
                        src=tuple(ipaddress.IPv4Network(x) for x in r["src"]),
                        dst=tuple(ipaddress.IPv4Network(x) for x in r["dst"]),
                        protocol=Protocol(r["protocol"]),
                        ports=tuple((a, b) for a, b in r["ports"]),
                        reason=r["reason"],
                    )
                    for r in p["rules"]
                ),
            )
            for p in d["policies"]
        ),
        emulated_cpu=d.get("emulated_cpu", False),
    )
