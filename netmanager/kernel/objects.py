"""Kernel objects of one host, desired or observed: frozen dataclasses with a stable identity.

A :class:`HostState` is the complete set of objects netmanager owns on one host: the host's
own namespace ("dom0") and its VM namespaces, with their links, addresses, routes, FDB
entries, traffic control and sysctls.  The same types describe what the planner wants and
what the engine reads back from the kernel, so a diff is a comparison of two sets.

Conventions:

* every object has ``key`` (its identity: same key, same kernel object) and ``namespace``;
* quantities are integers in the unit their name says (``rate_bps``, ``burst_bytes``);
* a field that a desired object leaves as ``None`` where the kernel always has a value
  (a link's MAC address) means "whatever the kernel chooses" and is not compared;
* ownership: every link carries an ``alias`` (ifalias) that starts with :data:`MARKER`
  (``nm:<owner>:...``); routes carry :data:`RT_PROTO` as their protocol; addresses, qdiscs,
  classes, filters and FDB entries are owned through the link they sit on; namespaces are
  owned by the caller's choice (see :class:`netmanager.kernel.scope.Scope`, which also
  lets several owners share a namespace, the root namespace included);
* :data:`ROOT_NAMESPACE` ("") is the namespace the engine runs in — on a real host, the
  root namespace.  It is never created or deleted, only shared.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeAlias, cast

if TYPE_CHECKING:
    from netmanager.kernel.scope import Scope

IPInterface: TypeAlias = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

MARKER = "nm:"
"""Prefix of the ifalias of every link netmanager owns."""

RT_PROTO = 0xEA
"""rtm_protocol of every route netmanager owns (234, unassigned in iproute2's rt_protos)."""

ROOT_NAMESPACE = ""
"""The namespace the engine itself runs in (on a real host: the root namespace)."""

IFNAMSIZ = 15
MAIN_TABLE = 254
TC_H_ROOT = 0xFFFFFFFF
TC_H_INGRESS = 0xFFFFFFF1
"""Parent of an ingress qdisc (``tc qdisc add dev X ingress``)."""
INGRESS_HANDLE = 0xFFFF0000
"""Handle of an ingress qdisc, ``ffff:``: the parent of the filters below it."""
ETH_P_IP = 0x0800
ETH_P_ALL = 0x0003
VLAN_ID_MAX = 4094
VXLAN_PORT = 4789
VXLAN_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
MAX_BUCKET_S = 250

Key: TypeAlias = tuple[str | int, ...]


class KernelStateError(ValueError):
    """A HostState that cannot exist in a kernel; ``problems`` lists every reason at once."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def tc_handle(text: str) -> int:
    """'1:' -> 0x10000, '1:10' -> 0x1000a (hexadecimal as tc writes them), 'root' -> TC_H_ROOT."""
    if text == "root":
        return TC_H_ROOT
    major, _, minor = text.partition(":")
    if not _ or not major:
        raise ValueError(f"'{text}' is not a tc handle such as '1:' or '1:10'")
    return (int(major, 16) << 16) | (int(minor, 16) if minor else 0)


def format_handle(handle: int) -> str:
    """0x10000 -> '1:', 0x1000a -> '1:a', TC_H_ROOT -> 'root', TC_H_INGRESS -> 'ingress'."""
    if handle == TC_H_ROOT:
        return "root"
    if handle == TC_H_INGRESS:
        return "ingress"
    major, minor = handle >> 16, handle & 0xFFFF
    return f"{major:x}:{minor:x}" if minor else f"{major:x}:"


_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def where(namespace: str, ifname: str | None = None) -> str:
    """How labels name a namespace (or a link in it): the root namespace is '(root)'."""
    ns = namespace if namespace != ROOT_NAMESPACE else "(root)"
    return ns if ifname is None else f"{ns}/{ifname}"


def kernel_name(prefix: str, *parts: str, limit: int = IFNAMSIZ) -> str:
    """A deterministic kernel name (interface or namespace) of at most ``limit`` characters.

    ``prefix-part1-part2`` when it fits; otherwise the prefix, as much of the joined parts as
    fits and a 5-character hash of the full name, so that distinct inputs stay distinct:
    ``kernel_name("nm", "grid", "vm-long-name")`` -> ``nm-grid-v3k9qa``.
    """
    full = "-".join((prefix, *parts))
    if len(full) <= limit:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()
    suffix = format(int(digest[:10], 16), "x")[:5]
    keep = limit - len(suffix) - 1
    return f"{full[:keep].rstrip('-')}-{suffix}"


# ---------------------------------------------------------------------------- namespaces


@dataclass(frozen=True)
class Namespace:
    """A network namespace, ``/run/netns/<name>``.

    Its loopback is up by default.  IPv6 is off by default (``net.ipv6.conf.{all,default}.
    disable_ipv6``, set before any interface exists): netmanager's networks are IPv4, and
    IPv6 autoconfiguration on thousands of emulated ports (duplicate address detection,
    router solicitations, MLD reports flooded through every bridge and replicated over
    VXLAN) keeps a machine's softirqs busy for seconds after each apply.
    """

    name: str
    loopback_up: bool = True
    ipv6: bool = False

    KIND: ClassVar[str] = "netns"
    MUTABLE: ClassVar[frozenset[str]] = frozenset({"loopback_up", "ipv6"})

    @property
    def key(self) -> Key:
        return ("netns", self.name)

    @property
    def namespace(self) -> str:
        return self.name

    def label(self) -> str:
        return f"netns {self.name}"


# ---------------------------------------------------------------------------------- links


class LinkKind(enum.StrEnum):
    BRIDGE = "bridge"
    VETH = "veth"
    VXLAN = "vxlan"
    DUMMY = "dummy"
    IFB = "ifb"
    """Intermediate functional block: a port's ingress is redirected to it
    (:class:`MirredRedirect`), so that a qdisc on its egress shapes what the port receives."""
    VLAN = "vlan"
    """An 802.1Q sub-interface of a parent link (:class:`Vlan`)."""
    NIC = ""
    """A network interface card, real or virtual (a guest's virtio NIC): the kernel gives
    it no kind.  Adopted as a tap is (below): configured, never created or deleted."""
    TAP = "tun"
    """A tap device whose descriptor a guest's process holds (a QEMU NIC; the kernel
    calls the kind "tun"): it comes with the process and goes with it, never through the
    engine.  The engine adopts a tap it finds unmarked in a namespace its scope owns, or
    that its scope names: it marks it, sets its MTU, master and state, and shapes it.  A
    desired tap that does not exist (its guest is not running) is left for later, with
    what hangs on it; a tap is never deleted (see :func:`netmanager.kernel.plan.plan`)."""


#: kinds of link the engine adopts but never creates or deletes (see LinkKind.TAP)
ADOPTED = frozenset({LinkKind.TAP, LinkKind.NIC})


@dataclass(frozen=True, order=True)
class VethPeer:
    """The other end of a veth pair."""

    namespace: str
    ifname: str


@dataclass(frozen=True)
class Vxlan:
    """A unicast VXLAN: no multicast group, remote ends come from static FDB entries."""

    vni: int
    local: ipaddress.IPv4Address | None = None
    underlay: str | None = None  # ifname of the underlay device in the same namespace
    port: int = VXLAN_PORT
    learning: bool = False


@dataclass(frozen=True)
class Vlan:
    """An 802.1Q sub-interface: frames tagged ``vlan_id`` on ``parent``, the ifname of a
    link in the same namespace (which may belong to another owner, e.g. the underlay)."""

    vlan_id: int
    parent: str


@dataclass(frozen=True)
class Link:
    """A network interface.  A veth pair is two Links that name each other as ``peer``.

    ``mcast_snooping`` is a bridge's IGMP/MLD snooping, off by default: a netmanager
    bridge is an emulated segment without a multicast querier, so it floods multicast;
    and a snooping bridge joins the all-snoopers group (224.0.0.106) as it comes up, and
    the IGMP report it sends then crosses its VXLAN port while the underlay may not be
    complete yet — the lost ARP probe of that report holds the first packets to that
    remote host for up to a second.
    """

    namespace: str
    ifname: str
    kind: LinkKind
    alias: str
    mtu: int = 1500
    up: bool = True
    master: str | None = None  # ifname of a bridge in the same namespace
    mac: str | None = None  # None: the kernel's random address, not compared
    peer: VethPeer | None = None
    vxlan: Vxlan | None = None
    offloads: bool | None = None  # TSO+GSO+GRO of a veth end; None: left as they are
    vlan: Vlan | None = None
    mcast_snooping: bool = False  # bridges only
    #: IPv6 on this link: None as its namespace has it (netmanager's own namespaces have it
    #: off), False off on this link alone — a link in a namespace netmanager shares, a
    #: real host's root namespace: created with no IPv6 address generation (no link-local
    #: address, so no DAD, router solicitation or MLD report ever leaves it) and
    #: ``disable_ipv6`` set before anything else can reach it
    ipv6: bool | None = None

    KIND: ClassVar[str] = "link"
    MUTABLE: ClassVar[frozenset[str]] = frozenset(
        {"alias", "mtu", "up", "master", "mac", "offloads", "mcast_snooping", "ipv6"}
    )
    WILDCARDS: ClassVar[tuple[str, ...]] = ("mac", "offloads", "ipv6")
    LOOSE: ClassVar[tuple[str, ...]] = ("ipv6",)
    """Fields that match when either side is None: observe leaves ``ipv6`` None where the
    namespace has IPv6 off everywhere (netmanager's own namespaces, a guest host's)."""
    """Fields that a desired link may leave as None: whatever the kernel has is fine."""

    @property
    def key(self) -> Key:
        return ("link", self.namespace, self.ifname)

    def label(self) -> str:
        return f"link {where(self.namespace, self.ifname)} ({self.kind})"

    @property
    def creates_pair(self) -> bool:
        """True for the end of a veth pair whose request creates both ends.

        The end with the smaller (namespace, ifname) creates the pair in its namespace;
        the other end is then only configured (brought up, aliased) in its own.
        """
        return self.peer is None or (self.namespace, self.ifname) < (
            self.peer.namespace,
            self.peer.ifname,
        )

    @property
    def peer_key(self) -> Key | None:
        return ("link", self.peer.namespace, self.peer.ifname) if self.peer else None


# ------------------------------------------------------------------- addresses and routes


@dataclass(frozen=True)
class Address:
    namespace: str
    ifname: str
    address: IPInterface

    KIND: ClassVar[str] = "address"
    MUTABLE: ClassVar[frozenset[str]] = frozenset()

    @property
    def key(self) -> Key:
        return ("address", self.namespace, self.ifname, str(self.address))

    def label(self) -> str:
        return f"address {self.address} on {where(self.namespace, self.ifname)}"


@dataclass(frozen=True)
class Route:
    """A unicast route; ``dst`` 0.0.0.0/0 is the default route.  ``dev`` is always given."""

    namespace: str
    dst: IPNetwork
    dev: str
    via: IPAddress | None = None
    table: int = MAIN_TABLE
    metric: int = 0

    KIND: ClassVar[str] = "route"
    MUTABLE: ClassVar[frozenset[str]] = frozenset({"dev", "via"})

    @property
    def key(self) -> Key:
        return ("route", self.namespace, self.table, str(self.dst), self.metric)

    def label(self) -> str:
        dst = "default" if self.dst.prefixlen == 0 else str(self.dst)
        via = f" via {self.via}" if self.via else ""
        table = "" if self.table == MAIN_TABLE else f" table {self.table}"
        return f"route {dst}{via} dev {self.dev}{table} in {where(self.namespace)}"


@dataclass(frozen=True)
class FdbEntry:
    """A static forwarding entry of a VXLAN device: frames for ``mac`` go to ``dst``.

    ``mac`` 00:00:00:00:00:00 is the default entry (broadcast, unknown unicast and
    multicast are sent to every such ``dst``: head-end replication).
    """

    namespace: str
    ifname: str
    dst: ipaddress.IPv4Address
    mac: str = "00:00:00:00:00:00"

    KIND: ClassVar[str] = "fdb"
    MUTABLE: ClassVar[frozenset[str]] = frozenset()

    @property
    def key(self) -> Key:
        return ("fdb", self.namespace, self.ifname, self.mac, str(self.dst))

    def label(self) -> str:
        return f"fdb {self.mac} dst {self.dst} on {where(self.namespace, self.ifname)}"


# -------------------------------------------------------------------------- traffic control


@dataclass(frozen=True)
class Tbf:
    """Token bucket: ``rate_bps`` sustained, ``burst_bytes`` bucket, ``limit_bytes`` queue.

    :func:`netmanager.kernel.shaping.tbf_for_rate` sizes burst and limit from the rate.
    """

    rate_bps: int
    burst_bytes: int
    limit_bytes: int

    KIND: ClassVar[str] = "tbf"


@dataclass(frozen=True)
class Netem:
    """Delay, jitter and loss.  Modelled and encoded even where the kernel lacks sch_netem,
    so that guests with a stock kernel can use the same code."""

    delay_us: int = 0
    jitter_us: int = 0
    loss_ppm: int = 0
    limit_packets: int = 1000

    KIND: ClassVar[str] = "netem"


@dataclass(frozen=True)
class Htb:
    """HTB root: classes below it share the link; unclassified traffic goes to ``default``."""

    default_minor: int = 0
    r2q: int = 10

    KIND: ClassVar[str] = "htb"


@dataclass(frozen=True)
class Ingress:
    """The ingress qdisc of a link: no queue, a place for filters on what the link receives
    (handle :data:`INGRESS_HANDLE`, parent :data:`TC_H_INGRESS`; see :meth:`Qdisc.ingress`)."""

    KIND: ClassVar[str] = "ingress"


QdiscParams: TypeAlias = Tbf | Netem | Htb | Ingress


def tbf_class(handle: int) -> int:
    """The one class of a TBF with ``handle`` (``1:`` -> ``1:1``): the parent of its child
    qdisc, e.g. NetEm below the rate limiter."""
    return (handle & 0xFFFF0000) | 1


@dataclass(frozen=True)
class Qdisc:
    """A qdisc of a link at ``parent``: TC_H_ROOT, TC_H_INGRESS (an :class:`Ingress`), an
    HTB class, or the class of a TBF (:func:`tbf_class`) — NetEm as the child of the
    egress rate limiter is ``Qdisc(ns, port, netem, handle=0x100000, parent=tbf_class(0x10000))``.
    """

    namespace: str
    ifname: str
    params: QdiscParams
    handle: int = 0x10000
    parent: int = TC_H_ROOT

    KIND: ClassVar[str] = "qdisc"
    MUTABLE: ClassVar[frozenset[str]] = frozenset({"params"})

    @classmethod
    def ingress(cls, namespace: str, ifname: str) -> Qdisc:
        return cls(namespace, ifname, Ingress(), INGRESS_HANDLE, TC_H_INGRESS)

    @property
    def key(self) -> Key:
        return ("qdisc", self.namespace, self.ifname, self.parent)

    @property
    def kind(self) -> str:
        return self.params.KIND

    def label(self) -> str:
        return (
            f"qdisc {self.kind} {format_handle(self.handle)} at {format_handle(self.parent)}"
            f" on {where(self.namespace, self.ifname)}"
        )


@dataclass(frozen=True)
class HtbClass:
    """An HTB class: guaranteed ``rate_bps``, borrowing up to ``ceil_bps``."""

    namespace: str
    ifname: str
    classid: int
    rate_bps: int
    ceil_bps: int
    burst_bytes: int
    cburst_bytes: int
    parent: int = 0x10000
    prio: int = 0

    KIND: ClassVar[str] = "class"
    MUTABLE: ClassVar[frozenset[str]] = frozenset(
        {"rate_bps", "ceil_bps", "burst_bytes", "cburst_bytes", "prio"}
    )

    @property
    def key(self) -> Key:
        return ("class", self.namespace, self.ifname, self.classid)

    def label(self) -> str:
        return f"class htb {format_handle(self.classid)} on {where(self.namespace, self.ifname)}"


@dataclass(frozen=True)
class U32Filter:
    """A u32 filter on IPv4 source/destination prefixes that sends matches to ``flowid``.

    ``handle`` is the filter's node in u32's default hash table (800::handle); choosing it
    ourselves makes the filter addressable for deletion without reading it back first.
    """

    namespace: str
    ifname: str
    flowid: int
    handle: int
    dst: ipaddress.IPv4Network | None = None
    src: ipaddress.IPv4Network | None = None
    parent: int = 0x10000
    prio: int = 1

    KIND: ClassVar[str] = "filter"
    MUTABLE: ClassVar[frozenset[str]] = frozenset()

    @property
    def key(self) -> Key:
        return ("filter", self.namespace, self.ifname, self.parent, self.prio, self.handle)

    def label(self) -> str:
        match = " ".join(
            part
            for part in (
                f"src {self.src}" if self.src else "",
                f"dst {self.dst}" if self.dst else "",
            )
            if part
        )
        return (
            f"filter u32 {match or 'all'} -> {format_handle(self.flowid)}"
            f" on {where(self.namespace, self.ifname)}"
        )


@dataclass(frozen=True)
class MirredRedirect:
    """Everything ``ifname`` receives, redirected to ``target`` (a link in the same
    namespace, typically an IFB whose root qdisc then shapes it)::

        tc filter add dev IFNAME parent ffff: protocol all prio PRIO handle 800::HANDLE \\
            u32 match u32 0 0 action mirred egress redirect dev TARGET

    A u32 "match all" node with a mirred action, below the link's ingress qdisc
    (``parent`` :data:`INGRESS_HANDLE`).  Like :class:`U32Filter` it is addressed by its
    node ``handle``.  When ``target`` is deleted the kernel keeps the filter, redirecting to
    nothing (dropping what the link receives): observed, ``target`` is then ``"#0"``.
    """

    namespace: str
    ifname: str
    target: str
    parent: int = INGRESS_HANDLE
    prio: int = 1
    handle: int = 1

    KIND: ClassVar[str] = "filter"
    MUTABLE: ClassVar[frozenset[str]] = frozenset()

    @property
    def key(self) -> Key:
        return ("filter", self.namespace, self.ifname, self.parent, self.prio, self.handle)

    def label(self) -> str:
        return (
            f"filter u32 all -> redirect to {self.target}"
            f" on {where(self.namespace, self.ifname)}"
            + (" ingress" if self.parent == INGRESS_HANDLE else f" at {format_handle(self.parent)}")
        )


# ---------------------------------------------------------------------------------- sysctls

SYSCTL_DEFAULTS: dict[str, str] = {
    "net.ipv4.ip_forward": "0",
    "net.ipv4.conf.all.rp_filter": "0",
}
"""The per-namespace sysctls netmanager manages, with the value of a fresh namespace.
A HostState lists a sysctl only where it differs from this default.  (IPv6 is a property
of the :class:`Namespace`.)"""

IPV6_SYSCTLS = ("net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6")


def ipv6_sysctls(enabled: bool) -> dict[str, str]:
    """The sysctl values that turn IPv6 on or off in a namespace."""
    return {name: "0" if enabled else "1" for name in IPV6_SYSCTLS}


@dataclass(frozen=True)
class Sysctl:
    namespace: str
    name: str
    value: str

    KIND: ClassVar[str] = "sysctl"
    MUTABLE: ClassVar[frozenset[str]] = frozenset({"value"})

    @property
    def key(self) -> Key:
        return ("sysctl", self.namespace, self.name)

    @property
    def default(self) -> str:
        return SYSCTL_DEFAULTS[self.name]

    def label(self) -> str:
        return f"sysctl {self.name}={self.value} in {where(self.namespace)}"


KernelObject: TypeAlias = (
    Namespace
    | Link
    | Address
    | Route
    | FdbEntry
    | Qdisc
    | HtbClass
    | U32Filter
    | MirredRedirect
    | Sysctl
)

ORDER: dict[str, int] = {
    "netns": 0,
    "link": 1,
    "address": 2,
    "route": 3,
    "qdisc": 4,
    "class": 5,
    "filter": 6,
    "fdb": 7,
    "sysctl": 8,
}
"""Rank of each kind of object when nothing else decides the order of two changes."""


def link_key(namespace: str, ifname: str) -> Key:
    return ("link", namespace, ifname)


def netns_key(namespace: str) -> list[Key]:
    """The key of a namespace to depend on: none for the root namespace, which always is."""
    return [] if namespace == ROOT_NAMESPACE else [("netns", namespace)]


def requires(obj: KernelObject) -> list[Key]:
    """Keys of the objects that must exist before ``obj`` can (and must outlive it).

    A qdisc below a TBF requires ``("class", ns, ifname, tbf_class(handle))``, which the
    TBF answers to (:func:`netmanager.kernel.semantics.aliases`), as a qdisc answers to
    ``("qdisc-handle", ns, ifname, handle)``.
    """
    if isinstance(obj, Namespace):
        return []
    deps: list[Key] = netns_key(obj.namespace)
    if isinstance(obj, Link):
        if obj.master:
            deps.append(link_key(obj.namespace, obj.master))
        if obj.peer:
            deps.extend(netns_key(obj.peer.namespace))
            if not obj.creates_pair:
                deps.append(link_key(obj.peer.namespace, obj.peer.ifname))
        if obj.vxlan and obj.vxlan.underlay:
            deps.append(link_key(obj.namespace, obj.vxlan.underlay))
        if obj.vlan:
            deps.append(link_key(obj.namespace, obj.vlan.parent))
    elif isinstance(obj, Route):
        deps.append(link_key(obj.namespace, obj.dev))
    elif isinstance(obj, Address | FdbEntry):
        deps.append(link_key(obj.namespace, obj.ifname))
    elif isinstance(obj, Qdisc):
        deps.append(link_key(obj.namespace, obj.ifname))
        if obj.parent not in (TC_H_ROOT, TC_H_INGRESS):
            deps.append(("class", obj.namespace, obj.ifname, obj.parent))
    elif isinstance(obj, HtbClass):
        deps.append(link_key(obj.namespace, obj.ifname))
        parent_qdisc = obj.parent & 0xFFFF0000
        if obj.parent == parent_qdisc:
            deps.append(("qdisc-handle", obj.namespace, obj.ifname, parent_qdisc))
        else:
            deps.append(("class", obj.namespace, obj.ifname, obj.parent))
    elif isinstance(obj, U32Filter):
        deps.append(link_key(obj.namespace, obj.ifname))
        deps.append(("qdisc-handle", obj.namespace, obj.ifname, obj.parent))
        deps.append(("class", obj.namespace, obj.ifname, obj.flowid))
    elif isinstance(obj, MirredRedirect):
        deps.append(link_key(obj.namespace, obj.ifname))
        deps.append(("qdisc-handle", obj.namespace, obj.ifname, obj.parent))
        deps.append(link_key(obj.namespace, obj.target))
    return deps


# ------------------------------------------------------------------------------ host state


@dataclass(frozen=True)
class HostState:
    """Every kernel object netmanager owns on one host (or in a set of namespaces).

    Build one with :meth:`of`; :meth:`checked` also validates it.  Iterating yields the
    objects in key order.
    """

    objects: frozenset[KernelObject] = field(default_factory=frozenset)

    @classmethod
    def of(cls, objects: Iterable[KernelObject]) -> HostState:
        """A state from objects; raises KernelStateError on two objects with one key."""
        seen: dict[Key, KernelObject] = {}
        dups: list[str] = []
        for obj in objects:
            other = seen.get(obj.key)
            if other is not None and other != obj:
                dups.append(f"{obj.label()} is given twice, differently: {other} and {obj}")
            seen[obj.key] = obj
        if dups:
            raise KernelStateError(dups)
        state = cls(frozenset(seen.values()))
        state.__dict__["by_key"] = seen  # the cached_property, already computed
        return state

    @classmethod
    def checked(cls, objects: Iterable[KernelObject], scope: Scope | None = None) -> HostState:
        """A state from objects, validated (for ``scope`` if given)."""
        state = cls.of(objects)
        problems = validate(state, scope)
        if problems:
            raise KernelStateError(problems)
        state.__dict__["_valid_for"] = (scope,)  # see valid_for
        return state

    def valid_for(self, scope: Scope | None) -> bool:
        """Whether :meth:`checked` built this state and validated it for ``scope``."""
        return self.__dict__.get("_valid_for") == (scope,)

    @cached_property
    def by_key(self) -> dict[Key, KernelObject]:
        return {obj.key: obj for obj in self.objects}

    def __iter__(self) -> Iterator[KernelObject]:
        """The objects in a stable order: by kind, then by key."""
        return iter(sorted(self.objects, key=_sort_key))

    def __len__(self) -> int:
        return len(self.objects)

    def __contains__(self, key: object) -> bool:
        return key in self.by_key

    def get(self, key: Key) -> KernelObject | None:
        return self.by_key.get(key)

    @cached_property
    def namespaces(self) -> frozenset[str]:
        """Names of the namespaces this state declares."""
        return frozenset(obj.name for obj in self.objects if isinstance(obj, Namespace))

    def within(self, namespaces: Iterable[str]) -> HostState:
        """The part of this state that lives in ``namespaces``."""
        wanted = set(namespaces)
        return HostState(frozenset(o for o in self.objects if o.namespace in wanted))

    def without_links(self, links: Iterable[tuple[str, str]]) -> HostState:
        """This state less the links ``links`` ((namespace, ifname)) and what hangs on
        them: their addresses, routes, qdiscs, classes, filters and FDB entries."""
        gone = {link_key(ns, ifname) for ns, ifname in links}
        if not gone & self.by_key.keys():
            return self

        def on(obj: KernelObject) -> Key | None:
            if isinstance(obj, Link | Namespace | Sysctl):
                return None
            if isinstance(obj, Route):
                return link_key(obj.namespace, obj.dev)
            return link_key(obj.namespace, obj.ifname)

        return HostState.of(o for o in self.objects if o.key not in gone and on(o) not in gone)

    def union(self, *others: HostState) -> HostState:
        return HostState.of([*self.objects, *(obj for other in others for obj in other.objects)])

    def digest(self) -> str:
        """A fingerprint of the state: a plan made against it refuses any other."""
        text = "\n".join(repr(obj) for obj in self)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for obj in self.objects:
            out[obj.KIND] = out.get(obj.KIND, 0) + 1
        return out


def _sort_key(obj: KernelObject) -> tuple[int, str]:
    return (ORDER[obj.KIND], repr(obj.key))


def with_changes(obj: KernelObject, **changes: object) -> KernelObject:
    """A copy of ``obj`` with some fields changed (dataclasses.replace, typed loosely)."""
    return cast(KernelObject, replace(cast(Any, obj), **changes))


# ------------------------------------------------------------------------------ validation


def validate(state: HostState, scope: Scope | None = None) -> list[str]:
    """Every reason why ``state`` could not exist in a kernel, or [] if it could (in the
    state's key order: the objects are only sorted for that when there is a problem).

    With a ``scope``, objects may also live in its shared namespaces (which the state does
    not declare), every link must carry the scope's owner marker, and a link in a shared
    namespace may refer to links of other owners there (a bridge master, a VXLAN underlay,
    a VLAN parent, a redirect target) that the state does not hold: they must exist when
    the state is applied.
    """
    problems = _validate(state, scope, state.objects)
    return _validate(state, scope, state) if problems else problems


def _validate(state: HostState, scope: Scope | None, objects: Iterable[KernelObject]) -> list[str]:
    problems: list[str] = [] if scope is None else scope.problems()
    namespaces = state.namespaces
    shared = scope.shared if scope is not None else frozenset()
    links = {o.key: o for o in state.objects if isinstance(o, Link)}
    qdiscs = [o for o in state.objects if isinstance(o, Qdisc)]
    qdisc_handles = {("qdisc-handle", o.namespace, o.ifname, o.handle) for o in qdiscs}
    tbf_classes: set[Key] = {
        ("class", o.namespace, o.ifname, tbf_class(o.handle))
        for o in qdiscs
        if isinstance(o.params, Tbf)
    }
    classes = {o.key for o in state.objects if isinstance(o, HtbClass)}
    bridge_ports: dict[Key, list[int]] = {}
    for port in links.values():
        if port.master:
            bridge_ports.setdefault(link_key(port.namespace, port.master), []).append(port.mtu)
    handles = Counter((q.namespace, q.ifname, q.handle) for q in qdiscs)
    protocols: dict[tuple[str, str, int, int], set[str]] = {}
    for f in state.objects:
        if isinstance(f, U32Filter | MirredRedirect):
            protocol = "ip" if isinstance(f, U32Filter) else "all"
            protocols.setdefault((f.namespace, f.ifname, f.parent, f.prio), set()).add(protocol)

    def need_link(
        obj: KernelObject, namespace: str, ifname: str, what: str, *, foreign: bool = False
    ) -> Link | None:
        """The link ``ifname`` of the state; a problem if it is missing, unless ``foreign``
        links are allowed (another owner's, in a shared namespace)."""
        link = links.get(link_key(namespace, ifname))
        if link is None and not (foreign and namespace in shared):
            problems.append(f"{obj.label()}: {what} {where(namespace, ifname)} is not in the state")
        return link

    for obj in objects:
        if isinstance(obj, Namespace):
            if obj.name == ROOT_NAMESPACE:
                problems.append(
                    "the root namespace is never created or deleted: share it"
                    " (Scope.shared) instead of declaring it"
                )
            elif not re.match(r"^[A-Za-z0-9_.-]{1,64}$", obj.name):
                problems.append(f"{obj.label()}: namespace names use [A-Za-z0-9_.-], 1-64")
            if obj.name in shared:
                problems.append(
                    f"{obj.label()}: is shared in this scope, so it is never created or"
                    " deleted here (only its owner declares it)"
                )
            continue
        if obj.namespace not in namespaces and obj.namespace not in shared:
            if obj.namespace == ROOT_NAMESPACE:
                problems.append(
                    f"{obj.label()}: the root namespace holds objects only through a Scope"
                    " that shares it"
                )
            else:
                problems.append(
                    f"{obj.label()}: namespace {obj.namespace} is not in the state"
                    + (" nor shared in its scope" if scope is not None else "")
                )
        if isinstance(obj, Link):
            _check_link(obj, links, bridge_ports, namespaces | shared, need_link, problems)
            if scope is not None and not obj.alias.startswith(scope.marker):
                problems.append(
                    f"{obj.label()}: alias '{obj.alias}' does not carry the marker of owner"
                    f" '{scope.owner}' ('{scope.marker}'), so it would not be seen as theirs"
                )
        elif isinstance(obj, Address | FdbEntry):
            link = need_link(obj, obj.namespace, obj.ifname, "link")
            if isinstance(obj, FdbEntry):
                if link is not None and link.kind is not LinkKind.VXLAN:
                    problems.append(f"{obj.label()}: FDB entries belong on vxlan links")
                if not _MAC_RE.match(obj.mac):
                    problems.append(f"{obj.label()}: mac '{obj.mac}' is not lower-case aa:bb:..")
        elif isinstance(obj, Route):
            link = need_link(obj, obj.namespace, obj.dev, "device")
            if link is not None and not link.up:
                problems.append(f"{obj.label()}: device {obj.dev} is down")
            if obj.via is not None and obj.via.version != obj.dst.version:
                problems.append(f"{obj.label()}: gateway and destination differ in family")
        elif isinstance(obj, Qdisc | HtbClass | U32Filter | MirredRedirect):
            need_link(obj, obj.namespace, obj.ifname, "link")
            _check_buckets(obj, problems)
            if isinstance(obj, Qdisc):
                _check_qdisc(obj, classes, tbf_classes, problems)
                if handles[(obj.namespace, obj.ifname, obj.handle)] > 1:
                    problems.append(
                        f"{obj.label()}: another qdisc of the link has handle"
                        f" {format_handle(obj.handle)}"
                    )
            elif isinstance(obj, HtbClass):
                qdisc = ("qdisc-handle", obj.namespace, obj.ifname, obj.classid & 0xFFFF0000)
                if qdisc not in qdisc_handles:
                    problems.append(f"{obj.label()}: its HTB qdisc is not in the state")
            else:
                if ("qdisc-handle", obj.namespace, obj.ifname, obj.parent) not in qdisc_handles:
                    problems.append(f"{obj.label()}: its parent qdisc is not in the state")
                if not 0 < obj.handle < 0x1000:
                    problems.append(f"{obj.label()}: u32 handle must be within 1-0xfff")
                if len(protocols[(obj.namespace, obj.ifname, obj.parent, obj.prio)]) > 1:
                    problems.append(
                        f"{obj.label()}: filters of one parent and prio share one protocol;"
                        " address filters match IPv4, redirects every protocol: give them"
                        " different prios"
                    )
                if isinstance(obj, U32Filter):
                    if ("class", obj.namespace, obj.ifname, obj.flowid) not in classes:
                        problems.append(f"{obj.label()}: its class is not in the state")
                else:
                    if obj.target == obj.ifname:
                        problems.append(f"{obj.label()}: a link cannot redirect to itself")
                    need_link(obj, obj.namespace, obj.target, "target", foreign=True)
        elif isinstance(obj, Sysctl):
            if obj.namespace in shared:
                problems.append(
                    f"{obj.label()}: the sysctls of a shared namespace belong to its owner"
                )
            if obj.name not in SYSCTL_DEFAULTS:
                problems.append(
                    f"{obj.label()}: not a managed sysctl ({', '.join(sorted(SYSCTL_DEFAULTS))})"
                )
            elif obj.value == SYSCTL_DEFAULTS[obj.name]:
                problems.append(f"{obj.label()}: is the default; leave it out of the state")
    return problems


class _NeedLink(Protocol):
    def __call__(
        self, obj: KernelObject, namespace: str, ifname: str, what: str, *, foreign: bool = ...
    ) -> Link | None: ...


def _check_link(
    obj: Link,
    links: dict[Key, Link],
    bridge_ports: dict[Key, list[int]],
    namespaces: frozenset[str],
    need_link: _NeedLink,
    problems: list[str],
) -> None:
    if not _IFNAME_RE.match(obj.ifname):
        problems.append(
            f"{obj.label()}: interface names have 1-{IFNAMSIZ} characters of [A-Za-z0-9_.-]"
        )
    if not obj.alias.startswith(MARKER) or len(obj.alias) > 255:
        problems.append(
            f"{obj.label()}: alias '{obj.alias}' must start with '{MARKER}'"
            " (netmanager's ownership marker) and have at most 255 characters"
        )
    if not 68 <= obj.mtu <= 65535:
        problems.append(f"{obj.label()}: mtu {obj.mtu} is outside 68-65535")
    if obj.mac is not None and not _MAC_RE.match(obj.mac):
        problems.append(f"{obj.label()}: mac '{obj.mac}' is not lower-case aa:bb:..")
    if obj.master:
        master = need_link(obj, obj.namespace, obj.master, "master", foreign=True)
        if master is not None and master.kind is not LinkKind.BRIDGE:
            problems.append(f"{obj.label()}: master {obj.master} is not a bridge")
    if obj.kind in ADOPTED and (obj.vxlan or obj.vlan or obj.mac or obj.mcast_snooping):
        problems.append(
            f"{obj.label()}: a {obj.kind.name.lower()} is adopted as it is:"
            " no vxlan, vlan, mac or snooping settings"
        )
    if (obj.kind is LinkKind.VETH) != (obj.peer is not None):
        problems.append(f"{obj.label()}: a veth, and only a veth, has a peer")
    if obj.peer is not None:
        if obj.peer.namespace not in namespaces:
            problems.append(
                f"{obj.label()}: peer namespace {where(obj.peer.namespace)} is not in the state"
            )
        peer = need_link(obj, obj.peer.namespace, obj.peer.ifname, "peer")
        if peer is not None and peer.peer != VethPeer(obj.namespace, obj.ifname):
            problems.append(f"{obj.label()}: its peer does not name it as peer")
    if obj.offloads is not None and obj.kind is not LinkKind.VETH:
        problems.append(f"{obj.label()}: offloads are set on veth ends only")
    if obj.mcast_snooping and obj.kind is not LinkKind.BRIDGE:
        problems.append(f"{obj.label()}: multicast snooping is a bridge's setting")
    if (obj.kind is LinkKind.VXLAN) != (obj.vxlan is not None):
        problems.append(f"{obj.label()}: a vxlan, and only a vxlan, has vxlan settings")
    if obj.vxlan is not None and not 0 < obj.vxlan.vni < 1 << 24:
        problems.append(f"{obj.label()}: vni {obj.vxlan.vni} is outside 1-16777215")
    if obj.vxlan is not None and obj.vxlan.underlay:
        lower = links.get(link_key(obj.namespace, obj.vxlan.underlay))
        if lower is not None and obj.mtu > lower.mtu - VXLAN_OVERHEAD:
            problems.append(
                f"{obj.label()}: mtu {obj.mtu} is above what its underlay"
                f" {lower.ifname} carries ({lower.mtu} - {VXLAN_OVERHEAD} bytes of"
                " VXLAN encapsulation)"
            )
    if (obj.kind is LinkKind.VLAN) != (obj.vlan is not None):
        problems.append(f"{obj.label()}: a vlan, and only a vlan, has vlan settings")
    if obj.vlan is not None:
        if not 1 <= obj.vlan.vlan_id <= VLAN_ID_MAX:
            problems.append(f"{obj.label()}: vlan id {obj.vlan.vlan_id} is outside 1-{VLAN_ID_MAX}")
        if obj.vlan.parent == obj.ifname:
            problems.append(f"{obj.label()}: a vlan cannot be its own parent")
        parent = need_link(obj, obj.namespace, obj.vlan.parent, "parent", foreign=True)
        if parent is not None and obj.mtu > parent.mtu:
            problems.append(
                f"{obj.label()}: mtu {obj.mtu} is above its parent {parent.ifname}'s"
                f" ({parent.mtu}); the kernel refuses a vlan larger than its parent"
            )
    port_mtus = bridge_ports.get(obj.key, [])
    if obj.kind is LinkKind.BRIDGE and port_mtus and obj.mtu != min(port_mtus):
        problems.append(
            f"{obj.label()}: mtu {obj.mtu} differs from its smallest port's"
            f" ({min(port_mtus)}); the kernel gives a bridge the MTU of its"
            " smallest port"
        )


def _check_buckets(obj: Qdisc | HtbClass | U32Filter | MirredRedirect, problems: list[str]) -> None:
    buckets: list[tuple[int, int]] = []
    if isinstance(obj, Qdisc) and isinstance(obj.params, Tbf):
        buckets.append((obj.params.rate_bps, obj.params.burst_bytes))
    if isinstance(obj, HtbClass):
        buckets += [(obj.rate_bps, obj.burst_bytes), (obj.ceil_bps, obj.cburst_bytes)]
    for rate, burst in buckets:
        if rate < 8 or burst * 8 > rate * MAX_BUCKET_S:
            problems.append(
                f"{obj.label()}: a bucket of {burst} bytes at {rate} bit/s is not"
                f" within 8 bit/s and {MAX_BUCKET_S} s (the kernel keeps it in 64 ns"
                " ticks, 32 bits)"
            )


def _check_qdisc(obj: Qdisc, classes: set[Key], tbf_classes: set[Key], problems: list[str]) -> None:
    if obj.handle & 0xFFFF or not obj.handle:
        problems.append(f"{obj.label()}: a qdisc handle is 'N:' with N > 0")
    ingress = isinstance(obj.params, Ingress)
    if ingress != (obj.parent == TC_H_INGRESS):
        problems.append(f"{obj.label()}: an ingress qdisc, and only one, sits at 'ingress'")
    if ingress and obj.handle != INGRESS_HANDLE:
        problems.append(f"{obj.label()}: an ingress qdisc has handle ffff:")
    if obj.parent in (TC_H_ROOT, TC_H_INGRESS):
        return
    parent: Key = ("class", obj.namespace, obj.ifname, obj.parent)
    if parent not in classes and parent not in tbf_classes:
        problems.append(
            f"{obj.label()}: its parent {format_handle(obj.parent)} is neither a class of an"
            " HTB in the state nor the class N:1 of a TBF N: in the state"
        )
    if obj.parent & 0xFFFF0000 == obj.handle:
        problems.append(f"{obj.label()}: a qdisc cannot be its own parent")
