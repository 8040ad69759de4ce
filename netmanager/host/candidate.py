"""A host's whole desired configuration as rows (the NETMANAGER-MIB configuration
tables), their consistency checks, and the row-level difference of two of them.

The rows are what travels to a host's agent by SET and what the agent serves by GET;
the :mod:`netmanager.host.rows` module maps them to and from the compiled
:class:`~netmanager.compile.hostconfig.HostConfig` of each topology on the host.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, fields
from ipaddress import IPv4Address, IPv4Network
from typing import Any, ClassVar

ANY_ADDRESS = IPv4Address(0)


@dataclass(frozen=True)
class NetworkConfig:
    """nmNetworkEntry."""

    name: str
    encap: str  # "vlan" | "vxlan"
    segment_id: int
    bridge: str = ""
    underlay: str = ""
    local_address: IPv4Address = ANY_ADDRESS
    address: IPv4Address = ANY_ADDRESS
    prefix_length: int = 0
    isolated: bool = True

    KEY: ClassVar[tuple[str, ...]] = ("name",)

    @property
    def prefix(self) -> IPv4Network:
        return IPv4Network((self.address, self.prefix_length), strict=False)


@dataclass(frozen=True)
class PeerConfig:
    """nmPeerEntry: a remote VXLAN tunnel end point of a network."""

    network: str
    address: IPv4Address

    KEY: ClassVar[tuple[str, ...]] = ("network", "address")


@dataclass(frozen=True)
class PortConfig:
    """nmPortEntry."""

    vm: str
    network: str
    address: IPv4Address
    prefix_length: int
    ifname: str = ""
    vm_ifname: str = ""
    mac: str = "00:00:00:00:00:00"
    admin_status: str = "up"  # "up" | "down"

    KEY: ClassVar[tuple[str, ...]] = ("vm", "network")


@dataclass(frozen=True)
class ShapingConfig:
    """nmShapeEntry: the shaping of a port (``peer == ""``) or of a pair of VMs."""

    vm: str
    network: str
    peer: str = ""
    peer_address: IPv4Address = ANY_ADDRESS
    rate_kbps: int = 0
    burst_bytes: int = 0
    delay_us: int = 0
    jitter_us: int = 0
    loss_ppm: int = 0
    queue_pkts: int = 0

    KEY: ClassVar[tuple[str, ...]] = ("vm", "network", "peer")


@dataclass(frozen=True)
class RuleConfig:
    """nmRuleEntry."""

    index: int
    action: str  # "allow" | "deny"
    source: str
    destination: str
    source_address: IPv4Address = ANY_ADDRESS
    source_prefix_length: int = 0
    destination_address: IPv4Address = ANY_ADDRESS
    destination_prefix_length: int = 0
    protocol: str = "any"  # any | icmp | tcp | udp
    port_first: int = 0
    port_last: int = 0

    KEY: ClassVar[tuple[str, ...]] = ("index",)


@dataclass(frozen=True)
class RouteConfig:
    """nmRouteEntry."""

    vm: str
    destination: IPv4Address
    prefix_length: int
    next_hop: IPv4Address

    KEY: ClassVar[tuple[str, ...]] = ("vm", "destination", "prefix_length")


@dataclass(frozen=True)
class DocumentConfig:
    """nmDocumentEntry: one chunk of a topology's host configuration document (see
    :mod:`netmanager.host.rows`)."""

    topology: str
    chunk: int
    data: str

    KEY: ClassVar[tuple[str, ...]] = ("topology", "chunk")


ConfigRow = (
    NetworkConfig
    | PeerConfig
    | PortConfig
    | ShapingConfig
    | RuleConfig
    | RouteConfig
    | DocumentConfig
)

#: Candidate attribute -> row class, in the order of the MIB tables
TABLES: dict[str, type[Any]] = {
    "networks": NetworkConfig,
    "peers": PeerConfig,
    "ports": PortConfig,
    "shapings": ShapingConfig,
    "rules": RuleConfig,
    "routes": RouteConfig,
    "documents": DocumentConfig,
}


def row_key(row: Any) -> tuple[Any, ...]:
    return tuple(getattr(row, f) for f in row.KEY)


def _sort_key(row: Any) -> tuple[Any, ...]:
    return tuple(int(v) if isinstance(v, IPv4Address) else v for v in row_key(row))


def _to_json_value(value: Any) -> Any:
    return str(value) if isinstance(value, IPv4Address) else value


def row_to_json(row: Any) -> dict[str, Any]:
    # the rows' fields are plain values: no need for asdict's deep copies
    return {f.name: _to_json_value(getattr(row, f.name)) for f in fields(row)}


def row_from_json(cls: type[Any], doc: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in doc:
            continue
        value = doc[f.name]
        if f.type in ("IPv4Address", IPv4Address):
            value = IPv4Address(value)
        kwargs[f.name] = value
    return cls(**kwargs)


@dataclass(frozen=True)
class Candidate:
    """A host's whole desired configuration, rows sorted by their MIB index."""

    networks: tuple[NetworkConfig, ...] = ()
    peers: tuple[PeerConfig, ...] = ()
    ports: tuple[PortConfig, ...] = ()
    shapings: tuple[ShapingConfig, ...] = ()
    rules: tuple[RuleConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    documents: tuple[DocumentConfig, ...] = ()

    @staticmethod
    def of(**tables: Iterable[Any]) -> Candidate:
        """A candidate from rows in any order (sorted here)."""
        return Candidate(**{k: tuple(sorted(v, key=_sort_key)) for k, v in tables.items()})

    def to_json(self) -> dict[str, Any]:
        """The JSON form (computed once per candidate: the result must not be changed)."""
        return self._json

    @functools.cached_property
    def _json(self) -> dict[str, Any]:
        return {name: [row_to_json(r) for r in getattr(self, name)] for name in TABLES}

    @staticmethod
    def from_json(doc: dict[str, Any] | None) -> Candidate:
        if not doc:
            return Candidate()
        return Candidate.of(
            **{
                name: [row_from_json(cls, r) for r in doc.get(name, [])]
                for name, cls in TABLES.items()
            }
        )

    def port_shaping(self, vm: str, network: str) -> ShapingConfig | None:
        for s in self.shapings:
            if s.vm == vm and s.network == network and s.peer == "":
                return s
        return None


def check_candidate(c: Candidate) -> list[str]:
    """Cross-table consistency of a candidate; one sentence per problem (empty: fine)."""
    problems: list[str] = []
    networks = {n.name: n for n in c.networks}
    ports = {(p.vm, p.network): p for p in c.ports}
    vms = {p.vm for p in c.ports}
    seen_segments: dict[tuple[str, int], str] = {}
    for n in c.networks:
        other = seen_segments.setdefault((n.encap, n.segment_id), n.name)
        if other != n.name:
            problems.append(f"networks '{other}' and '{n.name}' share {n.encap} id {n.segment_id}")
    bridges: dict[str, str] = {}
    for n in c.networks:
        if n.bridge:
            other = bridges.setdefault(n.bridge, n.name)
            if other != n.name:
                problems.append(f"networks '{other}' and '{n.name}' share bridge '{n.bridge}'")
    for peer in c.peers:
        net = networks.get(peer.network)
        if net is None:
            problems.append(f"VXLAN peer {peer.address} refers to unknown network '{peer.network}'")
        elif net.encap != "vxlan":
            problems.append(f"VXLAN peer {peer.address} given for {net.encap} network '{net.name}'")
    ifnames: dict[str, tuple[str, str]] = {}
    for p in c.ports:
        if p.network not in networks:
            problems.append(f"port of VM '{p.vm}' refers to unknown network '{p.network}'")
        if p.ifname:
            owner = ifnames.setdefault(p.ifname, (p.vm, p.network))
            if owner != (p.vm, p.network):
                problems.append(
                    f"ports {owner[0]}/{owner[1]} and {p.vm}/{p.network} share interface "
                    f"name '{p.ifname}'"
                )
    for s in c.shapings:
        if (s.vm, s.network) not in ports:
            problems.append(f"shaping refers to unknown port {s.vm}/{s.network}")
    for r in c.routes:
        if r.vm not in vms:
            problems.append(
                f"route {r.destination}/{r.prefix_length} refers to VM '{r.vm}' with no port"
            )
    return problems


@dataclass(frozen=True)
class Change:
    """One step of a staged change, as shown in nmChangeTable."""

    action: str  # "add" | "modify" | "remove"
    object: str
    reason: str = ""

    SIGNS: ClassVar[dict[str, str]] = {"add": "+", "modify": "~", "remove": "-"}

    @property
    def sign(self) -> str:
        """``+``, ``~`` or ``-``, as plans print it."""
        return self.SIGNS.get(self.action, "?")

    @classmethod
    def of_sign(cls, sign: str, obj: str, reason: str = "") -> Change:
        actions = {v: k for k, v in cls.SIGNS.items()}
        return cls(actions.get(sign, "modify"), obj, reason)


def diff_candidates(have: Candidate, want: Candidate) -> list[Change]:
    """Row-level changes from ``have`` to ``want`` (what the in-memory backend reports)."""
    changes: list[Change] = []
    removals: list[Change] = []
    for name, cls in TABLES.items():
        kind = cls.__name__.removesuffix("Config").lower()
        old = {row_key(r): r for r in getattr(have, name)}
        new = {row_key(r): r for r in getattr(want, name)}
        for key, row in new.items():
            label = f"{kind} {'/'.join(str(k) for k in key if k != '')}"
            if key not in old:
                changes.append(Change("add", label, "in the candidate, not on the host"))
            elif old[key] != row:
                diff = [
                    f.name for f in fields(cls) if getattr(old[key], f.name) != getattr(row, f.name)
                ]
                changes.append(Change("modify", label, f"{', '.join(diff)} changed"))
        for key in old:
            if key not in new:
                label = f"{kind} {'/'.join(str(k) for k in key if k != '')}"
                removals.append(Change("remove", label, "on the host, not in the candidate"))
    # removals first, in reverse table order (rules before ports before networks)
    return list(reversed(removals)) + changes
