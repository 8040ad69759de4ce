"""The answer of the mapping stage: frozen dataclasses and their JSON form.

Rates are bit/s, latencies µs, memory MiB, like the model.  Every collection is sorted by
name so that two runs on the same input give equal objects and byte-identical JSON.
"""

from __future__ import annotations

import collections.abc as cabc
from dataclasses import dataclass, field
from typing import Any

from netmanager.errors import Diagnostic
from netmanager.inputs.model import Encap


@dataclass(frozen=True)
class HostUsage:
    """Resources of a host in use by VMs."""

    cpus: int = 0
    memory_mib: int = 0
    vms: int = 0

    def __add__(self, other: HostUsage) -> HostUsage:
        return HostUsage(
            self.cpus + other.cpus, self.memory_mib + other.memory_mib, self.vms + other.vms
        )

    def as_json(self) -> dict[str, int]:
        return {"cpus": self.cpus, "memory_mib": self.memory_mib, "vms": self.vms}


@dataclass(frozen=True)
class Occupied:
    """What topologies already applied hold: per host, and per physical link (by its name,
    :attr:`PhysicalLink.name`, e.g. ``host1:eth0--sw1``) in bit/s."""

    hosts: cabc.Mapping[str, HostUsage] = field(default_factory=dict)
    links: cabc.Mapping[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(u.cpus or u.memory_mib or u.vms for u in self.hosts.values()) and not any(
            self.links.values()
        )

    def host(self, name: str) -> HostUsage:
        return self.hosts.get(name, HostUsage())

    def __add__(self, other: Occupied) -> Occupied:
        hosts = dict(self.hosts)
        for name, usage in other.hosts.items():
            hosts[name] = hosts.get(name, HostUsage()) + usage
        links = dict(self.links)
        for name, bps in other.links.items():
            links[name] = links.get(name, 0) + bps
        return Occupied(dict(sorted(hosts.items())), dict(sorted(links.items())))

    def link(self, name: str) -> int:
        return self.links.get(name, 0)

    @classmethod
    def of(cls, mappings: cabc.Iterable[Mapping]) -> Occupied:
        """The sum of what the given (applied) mappings hold."""
        hosts: dict[str, HostUsage] = {}
        links: dict[str, int] = {}
        for mapping in mappings:
            for load in mapping.hosts:
                hosts[load.host] = hosts.get(load.host, HostUsage()) + load.usage
            for link in mapping.links:
                links[link.link] = links.get(link.link, 0) + link.reserved_bps
        return cls(dict(sorted(hosts.items())), dict(sorted(links.items())))

    @classmethod
    def from_json(cls, document: cabc.Mapping[str, Any]) -> Occupied:
        hosts = {
            str(name): HostUsage(
                int(usage.get("cpus", 0)), int(usage.get("memory_mib", 0)), int(usage.get("vms", 0))
            )
            for name, usage in dict(document.get("hosts", {})).items()
        }
        links = {str(name): int(bps) for name, bps in dict(document.get("links", {})).items()}
        return cls(hosts, links)

    def as_json(self) -> dict[str, Any]:
        return {
            "hosts": {name: self.hosts[name].as_json() for name in sorted(self.hosts)},
            "links": {name: self.links[name] for name in sorted(self.links)},
        }


@dataclass(frozen=True)
class HostLoad:
    """One host after mapping: what this topology uses, what others hold, the capacity."""

    host: str
    usage: HostUsage  # this topology
    occupied: HostUsage  # other topologies
    capacity: HostUsage  # cpus, memory for VMs, max VMs (0: no limit)

    @property
    def fraction(self) -> float:
        """Load on the most used resource, this topology and others together."""
        total = self.usage + self.occupied
        parts = []
        if self.capacity.cpus:
            parts.append(total.cpus / self.capacity.cpus)
        if self.capacity.memory_mib:
            parts.append(total.memory_mib / self.capacity.memory_mib)
        if self.capacity.vms:
            parts.append(total.vms / self.capacity.vms)
        return max(parts, default=0.0)

    def as_json(self) -> dict[str, Any]:
        return {
            "cpus": self.usage.cpus,
            "memory_mib": self.usage.memory_mib,
            "vms": self.usage.vms,
            "occupied": self.occupied.as_json(),
            "capacity": {
                "cpus": self.capacity.cpus,
                "memory_mib": self.capacity.memory_mib,
                "vms": self.capacity.vms or None,
            },
        }


@dataclass(frozen=True)
class LinkLoad:
    """One physical link after mapping."""

    link: str
    a: str
    b: str
    reserved_bps: int  # by this topology
    occupied_bps: int  # by other topologies
    capacity_bps: int

    @property
    def free_bps(self) -> int:
        return self.capacity_bps - self.reserved_bps - self.occupied_bps

    def as_json(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "reserved_bps": self.reserved_bps,
            "occupied_bps": self.occupied_bps,
            "capacity_bps": self.capacity_bps,
        }


@dataclass(frozen=True)
class HostPath:
    """The physical path from a network's root host to another host it spans."""

    host: str
    path: tuple[str, ...]
    latency_us: int


@dataclass(frozen=True)
class Reservation:
    link: str
    reserved_bps: int


@dataclass(frozen=True)
class NetworkRoute:
    """A network spread over hosts: the tree of physical links that joins them.

    ``links`` holds the hose-model reservation of this network on each link of the tree.
    """

    network: str
    hosts: tuple[str, ...]
    root: str
    paths: tuple[HostPath, ...]  # one per spanned host other than the root
    links: tuple[Reservation, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "hosts": list(self.hosts),
            "root": self.root,
            "paths": {
                p.host: {"path": list(p.path), "latency_us": p.latency_us} for p in self.paths
            },
            "links": {r.link: r.reserved_bps for r in self.links},
        }


@dataclass(frozen=True)
class PairRoute:
    """A ``<pair>`` between two VMs and the physical path between their hosts."""

    name: str
    a: str
    b: str
    network: str | None
    hosts: tuple[str, str]
    path: tuple[str, ...]
    links: tuple[str, ...]
    rate_bps: int  # the pair's guaranteed rate (0: best effort)
    reserved_bps: int  # on each link of the path (0 when both VMs share a host)
    latency_us: int
    declared_us: int | None
    netem_delay_us: int | None  # what NetEm adds: declared minus path latency

    def as_json(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "network": self.network,
            "hosts": list(self.hosts),
            "path": list(self.path),
            "links": list(self.links),
            "rate_bps": self.rate_bps,
            "reserved_bps": self.reserved_bps,
            "latency_us": self.latency_us,
            "declared_latency_us": self.declared_us,
            "netem_delay_us": self.netem_delay_us,
        }


@dataclass(frozen=True)
class DelayBudget:
    """A latency declared on an interface, split between the physical path and NetEm,
    towards every host its network spans (its own host included, with path latency 0)."""

    vm: str
    network: str
    host: str
    to_host: str
    declared_us: int
    latency_us: int
    netem_delay_us: int

    def as_json(self) -> dict[str, Any]:
        return {
            "vm": self.vm,
            "network": self.network,
            "host": self.host,
            "to_host": self.to_host,
            "declared_latency_us": self.declared_us,
            "latency_us": self.latency_us,
            "netem_delay_us": self.netem_delay_us,
        }


@dataclass(frozen=True)
class Segment:
    """The L2 segment identifier of a virtual network."""

    network: str
    encap: Encap  # VLAN or VXLAN, never AUTO
    id: int
    sites: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"encap": self.encap.value, "id": self.id, "sites": list(self.sites)}


@dataclass(frozen=True)
class Mapping:
    """Where every VM runs, how every spread network and pair is carried, and its segment."""

    topology: str
    placement: cabc.Mapping[str, str]  # VM -> host, sorted by VM
    networks: tuple[NetworkRoute, ...]  # every network, sorted by name
    pairs: tuple[PairRoute, ...]
    delays: tuple[DelayBudget, ...]
    hosts: tuple[HostLoad, ...]
    links: tuple[LinkLoad, ...]
    segments: cabc.Mapping[str, Segment]  # network -> segment
    cut_bps: int  # the placement objective (see netmanager.mapping.demand)
    warnings: tuple[Diagnostic, ...] = ()

    @property
    def network_hosts(self) -> dict[str, tuple[str, ...]]:
        return {route.network: route.hosts for route in self.networks}

    def vms_on(self, host: str) -> list[str]:
        return [vm for vm, h in self.placement.items() if h == host]

    @property
    def max_load(self) -> float:
        return max((h.fraction for h in self.hosts), default=0.0)

    def allocations(self) -> dict[str, dict[str, Any]]:
        """This topology's segments in the form kept in ``segments.json``."""
        return {name: seg.as_json() for name, seg in sorted(self.segments.items())}

    def as_json(self) -> dict[str, Any]:
        return {
            "topology": self.topology,
            "placement": dict(self.placement),
            "paths": {
                "networks": {r.network: r.as_json() for r in self.networks if len(r.hosts) > 1},
                "pairs": {p.name: p.as_json() for p in self.pairs},
                "delays": [d.as_json() for d in self.delays],
            },
            "segments": {name: seg.as_json() for name, seg in sorted(self.segments.items())},
            "hosts": {h.host: h.as_json() for h in self.hosts},
            "links": {link.link: link.as_json() for link in self.links},
            "objective": {"cut_bps": self.cut_bps, "max_load": round(self.max_load, 4)},
            "warnings": [w.as_json() for w in self.warnings],
        }
