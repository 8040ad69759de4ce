"""The typed object graph of both inputs: frozen dataclasses, every object with its source location.

``Real`` is the physical environment (real.xml), ``Virtual`` one desired virtual topology
(virtual.xml), ``Model`` the pair after validation.  Quantities are integers in canonical
units, named by unit: ``rate_bps``, ``delay_us``, ``loss_ppm``, ``memory_mib``.
Collections are tuples in document order; ``by_name`` helpers give dictionaries.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field, fields
from functools import cached_property
from urllib.parse import urlsplit

from netmanager.errors import NOWHERE, Loc

IPv4Interface = ipaddress.IPv4Interface
IPv4Network = ipaddress.IPv4Network
IPv4Address = ipaddress.IPv4Address

# ---------------------------------------------------------------- physical environment


#: The kernel capabilities real.xml can name (``capabilities="..."``), which ``doctor``'s
#: probe reports and the mapper and apply check.
CAPABILITIES = frozenset(
    {
        "8021q",
        "vxlan",
        "netem",
        "tbf",
        "htb",
        "ifb",
        "bridge",
        "br_netfilter",
        "ebtables",
        "iptables",
    }
)


#: real.xml's hypervisor of a libvirt host emulated on this machine (see Host.embedded_libvirt)
EMBED_URI = "qemu:///embed"


class HypervisorKind(enum.StrEnum):
    NETNS = "netns"  # a host emulated on this machine by a network namespace
    GUEST = "guest"  # a host emulated by a QEMU guest running a stock kernel
    LIBVIRT = "libvirt"  # a real host managed through a libvirt URI


@dataclass(frozen=True)
class IdRange:
    """An inclusive range of VLAN ids or VXLAN VNIs."""

    first: int
    last: int
    loc: Loc = NOWHERE

    def __contains__(self, value: int) -> bool:
        return self.first <= value <= self.last

    def __len__(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class Site:
    name: str
    vlan_ranges: tuple[IdRange, ...] = ()
    vni_ranges: tuple[IdRange, ...] = ()
    loc: Loc = NOWHERE


@dataclass(frozen=True)
class UnderlayInterface:
    name: str
    address: IPv4Interface | None = None
    mtu: int = 1500
    speed_bps: int | None = None
    loc: Loc = NOWHERE


@dataclass(frozen=True)
class AgentEndpoint:
    """Where a host's SNMP agent listens; port 0 lets netmanager choose (emulated hosts)."""

    address: str = "127.0.0.1"
    port: int = 0
    credentials: str | None = None  # path of the credentials file, relative to real.xml
    loc: Loc = NOWHERE


@dataclass(frozen=True)
class PinnedVM:
    """A VM already running on a host (its placement is fixed)."""

    name: str
    topology: str | None = None
    loc: Loc = NOWHERE


@dataclass(frozen=True)
class Host:
    name: str
    site: str
    hypervisor: HypervisorKind
    uri: str | None = None  # libvirt URI when hypervisor is LIBVIRT
    cpus: int = 1
    memory_mib: int = 1024
    reserved_memory_mib: int = 0  # kept by the hypervisor's own domain (Xen dom0)
    max_vms: int | None = None
    capabilities: frozenset[str] | None = None  # declared kernel features; None: probe
    interfaces: tuple[UnderlayInterface, ...] = ()
    agent: AgentEndpoint = field(default_factory=AgentEndpoint)
    pinned: tuple[PinnedVM, ...] = ()
    #: the libvirt URI another host's libvirt reaches this host's with, to migrate a
    #: domain here (``qemu+ssh://rack2.lab/system``, ``qemu+tls://...``): libvirt's own
    #: authentication; None: no domain migrates here from a real host
    migration_uri: str | None = None
    #: a migration here is peer-to-peer (``VIR_MIGRATE_PEER2PEER``): the source's libvirt
    #: daemon opens ``migration_uri`` itself, not the source's agent
    migration_p2p: bool = False
    loc: Loc = NOWHERE

    @property
    def embedded_libvirt(self) -> bool:
        """A libvirt host emulated on this machine: a network namespace whose agent runs
        libvirt's embedded QEMU driver (``hypervisor="qemu:///embed"``)."""
        return self.hypervisor is HypervisorKind.LIBVIRT and (self.uri or "").startswith(EMBED_URI)

    @property
    def migration_target(self) -> str | None:
        """The libvirt URI a domain migrating here is sent to: ``migration_uri``, else the
        host's own URI where it names a remote host (``qemu+ssh://hv1/system``: the other
        hosts reach it as the manager does); None: not reachable from other hosts."""
        if self.migration_uri:
            return self.migration_uri
        if self.hypervisor is HypervisorKind.LIBVIRT and self.uri and urlsplit(self.uri).hostname:
            return self.uri
        return None

    @property
    def emulated(self) -> bool:
        """Whether netmanager emulates the host on this machine (it builds its namespace
        or boots its guest, and starts its agent)."""
        return self.hypervisor is not HypervisorKind.LIBVIRT or self.embedded_libvirt

    @property
    def vm_memory_mib(self) -> int:
        """Memory available to VMs."""
        return max(self.memory_mib - self.reserved_memory_mib, 0)


class NodeKind(enum.StrEnum):
    SWITCH = "switch"
    ROUTER = "router"


@dataclass(frozen=True)
class NetworkNode:
    """A physical switch or router."""

    name: str
    kind: NodeKind
    site: str | None = None
    loc: Loc = NOWHERE


@dataclass(frozen=True)
class Endpoint:
    """One end of a physical link: a node, and for hosts the underlay interface."""

    node: str
    interface: str | None = None

    def __str__(self) -> str:
        return f"{self.node}:{self.interface}" if self.interface else self.node


@dataclass(frozen=True)
class PhysicalLink:
    a: Endpoint
    b: Endpoint
    capacity_bps: int
    latency_us: int = 0
    loc: Loc = NOWHERE

    @property
    def name(self) -> str:
        return f"{self.a}--{self.b}"


@dataclass(frozen=True)
class TrapReceiver:
    address: str
    port: int = 162
    loc: Loc = NOWHERE


@dataclass(frozen=True)
class Real:
    file: str
    sites: tuple[Site, ...] = ()
    hosts: tuple[Host, ...] = ()
    nodes: tuple[NetworkNode, ...] = ()
    links: tuple[PhysicalLink, ...] = ()
    credentials: str | None = None  # default credentials file for every agent
    credentials_loc: Loc = NOWHERE
    trap_receivers: tuple[TrapReceiver, ...] = ()
    loc: Loc = NOWHERE
    #: where relative file names in real.xml (credentials) are resolved: its directory,
    #: unless the loader was given another (real.xml passed as text by the Python API)
    base_dir: str = ""

    @cached_property
    def host_by_name(self) -> dict[str, Host]:
        return {h.name: h for h in self.hosts}

    @cached_property
    def site_by_name(self) -> dict[str, Site]:
        return {s.name: s for s in self.sites}

    @cached_property
    def node_by_name(self) -> dict[str, NetworkNode]:
        return {n.name: n for n in self.nodes}

    def pinned_host(self, vm: str, topology: str) -> Host | None:
        """The host a VM of a topology is pinned to, if any."""
        for host in self.hosts:
            for pin in host.pinned:
                if pin.name == vm and pin.topology in (None, topology):
                    return host
        return None


# ---------------------------------------------------------------- virtual topology


class Encap(enum.StrEnum):
    VLAN = "vlan"
    VXLAN = "vxlan"
    AUTO = "auto"


@dataclass(frozen=True)
class Shaping:
    """Link emulation parameters; None means not asked for."""

    rate_bps: int | None = None
    delay_us: int | None = None
    jitter_us: int | None = None
    loss_ppm: int | None = None
    queue_pkts: int | None = None
    loc: Loc = NOWHERE

    @property
    def empty(self) -> bool:
        return all(
            v is None
            for v in (self.rate_bps, self.delay_us, self.jitter_us, self.loss_ppm, self.queue_pkts)
        )

    @property
    def needs_netem(self) -> bool:
        return bool(self.delay_us or self.jitter_us or self.loss_ppm)

    def over(self, base: Shaping | None) -> Shaping:
        """These parameters, each unset one taken from ``base``."""
        if base is None:
            return self
        return Shaping(
            rate_bps=self.rate_bps if self.rate_bps is not None else base.rate_bps,
            delay_us=self.delay_us if self.delay_us is not None else base.delay_us,
            jitter_us=self.jitter_us if self.jitter_us is not None else base.jitter_us,
            loss_ppm=self.loss_ppm if self.loss_ppm is not None else base.loss_ppm,
            queue_pkts=self.queue_pkts if self.queue_pkts is not None else base.queue_pkts,
            loc=self.loc if not self.empty else base.loc,
        )


class External(enum.StrEnum):
    NONE = "none"
    OUTBOUND = "outbound"  # outbound-only access through NAT (VirtCloud)


@dataclass(frozen=True)
class Network:
    name: str
    cidr: IPv4Network
    gateway: IPv4Address | None = None
    encap: Encap = Encap.AUTO
    isolated: bool = True
    external: External = External.NONE
    shaping: Shaping | None = None  # applies to every interface in the network
    loc: Loc = NOWHERE


@dataclass(frozen=True)
class Interface:
    network: str
    ip: IPv4Interface
    mac: str | None = None
    shaping: Shaping | None = None
    loc: Loc = NOWHERE


@dataclass(frozen=True)
class Route:
    to: IPv4Network
    via: IPv4Address
    loc: Loc = NOWHERE


class TemplateSource(enum.StrEnum):
    FILES = "files"  # kernel (+initrd, cmdline) or a disk image, paths on the host
    NETMANAGER = "netmanager"  # netmanager's own test guest: a stock Debian kernel, qemu-ga


@dataclass(frozen=True)
class VmTemplate:
    """How netmanager defines the libvirt domain that is a VM (``<template>``): direct
    kernel boot, a disk image (with a cloud-init seed), or netmanager's own guest image."""

    source: TemplateSource = TemplateSource.FILES
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    image: str = ""
    image_format: str = "qcow2"
    domain_type: str = "auto"  # auto, kvm or qemu
    guest_agent: bool = True  # a channel for qemu-guest-agent
    loc: Loc = NOWHERE


@dataclass(frozen=True)
class VM:
    name: str
    cpus: int = 1
    memory_mib: int = 256
    interfaces: tuple[Interface, ...] = ()
    routes: tuple[Route, ...] = ()
    forward: bool = False  # a gateway/proxy that routes between its networks
    #: on a libvirt host: the domain that is this VM (None: the VM's own name)
    domain: str | None = None
    #: on a libvirt host: netmanager defines the domain from this (None: it exists)
    template: VmTemplate | None = None
    loc: Loc = NOWHERE

    @property
    def domain_name(self) -> str:
        return self.domain or self.name

    @property
    def wants_libvirt(self) -> bool:
        """Whether the VM says it is a libvirt domain (domain="..." or a template)."""
        return self.domain is not None or self.template is not None

    def interface_in(self, network: str) -> Interface | None:
        for iface in self.interfaces:
            if iface.network == network:
                return iface
        return None


@dataclass(frozen=True)
class PairShaping:
    """Shaping between two VMs of one network (both directions)."""

    a: str
    b: str
    network: str | None
    shaping: Shaping
    loc: Loc = NOWHERE


class Action(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class Protocol(enum.StrEnum):
    ANY = "any"
    TCP = "tcp"
    UDP = "udp"
    ICMP = "icmp"


@dataclass(frozen=True)
class PortRange:
    first: int
    last: int


@dataclass(frozen=True)
class Rule:
    """Traffic between two selectors (a network or a VM name, or '*' for any)."""

    action: Action
    src: str
    dst: str
    protocol: Protocol = Protocol.ANY
    ports: tuple[PortRange, ...] = ()
    loc: Loc = NOWHERE


class TraceDirection(enum.StrEnum):
    BOTH = "both"
    DOWN = "down"  # towards the VM (a downlink trace)
    UP = "up"  # from the VM (an uplink trace)


@dataclass(frozen=True)
class LinkValues:
    """What a scheduled change sets (None: left as it is): the rate towards the VM and
    from it (0: no limit), NetEm's delay, jitter and loss towards the VM, the ports'
    state (False: down)."""

    rate_bps: int | None = None
    rate_in_bps: int | None = None
    delay_us: int | None = None
    jitter_us: int | None = None
    loss_ppm: int | None = None
    up: bool | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    @property
    def needs_netem(self) -> bool:
        return bool(self.delay_us or self.jitter_us or self.loss_ppm)


@dataclass(frozen=True)
class ScheduledEvent:
    """A change of a target's links ``at_us`` after the schedule's start, repeated every
    ``every_us`` ``count`` times in all or until ``until_us``."""

    at_us: int
    target: str
    values: LinkValues
    every_us: int | None = None
    count: int | None = None
    until_us: int | None = None
    loc: Loc = NOWHERE

    def times(self, limit: int) -> list[int]:
        """When it happens (at most ``limit`` times)."""
        if self.every_us is None:
            return [self.at_us]
        out: list[int] = []
        t = self.at_us
        while len(out) < limit:
            if self.count is not None and len(out) >= self.count:
                break
            if self.until_us is not None and t > self.until_us:
                break
            if self.count is None and self.until_us is None:
                break
            out.append(t)
            t += self.every_us
        return out


@dataclass(frozen=True)
class TraceRow:
    at_us: int  # after the trace's own start
    values: LinkValues
    loc: Loc = NOWHERE


@dataclass(frozen=True)
class Trace:
    """A replayed trace: its rows change the target's links at their times."""

    target: str
    file: str
    direction: TraceDirection
    at_us: int
    rows: tuple[TraceRow, ...] = ()
    loc: Loc = NOWHERE


@dataclass(frozen=True)
class ScheduledMigration:
    """A VM moved to host ``to`` ``at_us`` after the schedule's start (netmanager
    migrate); repeated every ``every_us``, ``count`` moves in all, back and forth between
    ``to`` and the host the VM left (a plan of migrations, as Themis ran them).
    ``precopy``: the live migration's cost emulated; ``peer``: a VM that measures each
    move (as ``migrate --measure --peer``), None: not measured."""

    at_us: int
    vm: str
    to: str
    every_us: int | None = None
    count: int | None = None
    precopy: bool = True
    peer: str | None = None
    loc: Loc = NOWHERE

    def times(self) -> list[int]:
        """When each move starts."""
        if self.every_us is None or self.count is None:
            return [self.at_us]
        return [self.at_us + i * self.every_us for i in range(self.count)]


@dataclass(frozen=True)
class Schedule:
    events: tuple[ScheduledEvent, ...] = ()
    traces: tuple[Trace, ...] = ()
    loc: Loc = NOWHERE
    migrations: tuple[ScheduledMigration, ...] = ()


@dataclass(frozen=True)
class Virtual:
    file: str
    topology: str
    networks: tuple[Network, ...] = ()
    vms: tuple[VM, ...] = ()
    pairs: tuple[PairShaping, ...] = ()
    rules: tuple[Rule, ...] = ()
    loc: Loc = NOWHERE
    schedule: Schedule | None = None

    @cached_property
    def network_by_name(self) -> dict[str, Network]:
        return {n.name: n for n in self.networks}

    @cached_property
    def vm_by_name(self) -> dict[str, VM]:
        return {v.name: v for v in self.vms}

    def members(self, network: str) -> list[tuple[VM, Interface]]:
        return [(vm, i) for vm in self.vms for i in vm.interfaces if i.network == network]

    def interface_shaping(self, iface: Interface) -> Shaping | None:
        """The shaping that applies to an interface: its own over its network's."""
        net = self.network_by_name.get(iface.network)
        base = net.shaping if net else None
        if iface.shaping is None:
            return base
        return iface.shaping.over(base)


@dataclass(frozen=True)
class Model:
    """Both inputs after validation."""

    real: Real
    virtual: Virtual

    @property
    def topology(self) -> str:
        return self.virtual.topology
