"""The virtual side of the mapping: which VMs exchange how much traffic.

Demand model
============

Every virtual network is a *hyperedge* over the VMs that have an interface in it, and every
``<pair>`` is a hyperedge over its two VMs.  Each member of a hyperedge carries two numbers:

``rate_bps``
    What the member is guaranteed: the effective shaping rate of its interface
    (:meth:`Virtual.interface_shaping`), or the pair's rate.  0 when nothing is shaped:
    unshaped traffic is best effort and reserves nothing on physical links.

``weight_bps``
    What the member counts for in the placement objective: ``rate_bps``, or
    :data:`NOMINAL_RATE_BPS` (1 Mbit/s) for an unshaped interface or a pair without a rate.
    1 Mbit/s is small next to physical links (100 Mbit/s and up) and next to most shaped
    links, yet large enough that members of an unshaped network still prefer one host.

Placement objective (the *cut*): each member spreads its weight over the other members of
the hyperedge in proportion to their weights, i.e. the pair ``i, j`` exchanges
``w_i * w_j / D`` with ``D = W - W / m`` (``W`` the hyperedge's total weight, ``m`` its
member count).  With equal weights ``w`` this is ``w / (m - 1)`` per pair, so a VM sends
about its own rate in total, and a two-member hyperedge weighs exactly its rate.  The cut of
a hyperedge whose members are spread over hosts with weight sums ``S_h`` is
``(W**2 - sum(S_h**2)) / (2 * D)``, which is exactly the edge cut of its clique expansion
(the graph that METIS is given in ``bench/mapping.py``).

Reservations on physical links use the *hose model* (see :mod:`netmanager.mapping.routing`),
the worst case over every traffic pattern the rates allow.

Co-location: members whose declared latency is below the smallest latency between any two
distinct hosts can only be served on one host; :func:`colocation_groups` ties them together
before placement.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import networkx as nx

from netmanager.errors import Loc
from netmanager.inputs.model import Interface, PairShaping, Virtual

NOMINAL_RATE_BPS = 1_000_000


class EdgeKind(enum.StrEnum):
    NETWORK = "network"
    PAIR = "pair"


@dataclass(frozen=True)
class Member:
    """One VM in a hyperedge."""

    vm: str
    rate_bps: int  # guaranteed (shaped) rate; 0 when best effort
    weight_bps: int  # weight in the placement objective
    delay_us: int | None  # declared one-way latency (NetEm), None when not asked for
    delay_loc: Loc  # the element that declared the latency (or the interface)


@dataclass(frozen=True)
class Hyperedge:
    """A virtual network or a pair of VMs: the unit of traffic demand."""

    kind: EdgeKind
    name: str  # network name, or "a--b" for a pair
    network: str | None  # the network a pair belongs to (for networks: itself)
    members: tuple[Member, ...]  # sorted by VM name
    loc: Loc


@dataclass(frozen=True)
class Demand:
    """Every hyperedge of one virtual topology, networks first, each group sorted by name."""

    topology: str
    vms: tuple[str, ...]  # sorted
    edges: tuple[Hyperedge, ...]

    @property
    def networks(self) -> tuple[Hyperedge, ...]:
        return tuple(e for e in self.edges if e.kind is EdgeKind.NETWORK)

    @property
    def pairs(self) -> tuple[Hyperedge, ...]:
        return tuple(e for e in self.edges if e.kind is EdgeKind.PAIR)


def pair_name(a: str, b: str) -> str:
    first, second = sorted((a, b))
    return f"{first}--{second}"


def build_demand(virtual: Virtual) -> Demand:
    """The hyperedges of a virtual topology, independent of the document's order."""
    edges: list[Hyperedge] = []
    interfaces: dict[str, list[tuple[str, Interface]]] = {n.name: [] for n in virtual.networks}
    for vm in virtual.vms:
        for iface in vm.interfaces:
            if iface.network in interfaces:
                interfaces[iface.network].append((vm.name, iface))
    for network in sorted(virtual.networks, key=lambda n: n.name):
        by_vm: dict[str, Member] = {}
        for vm_name, iface in interfaces[network.name]:
            shaping = virtual.interface_shaping(iface)
            rate = shaping.rate_bps if shaping and shaping.rate_bps else 0
            delay = shaping.delay_us if shaping and shaping.delay_us is not None else None
            delay_loc = shaping.loc if shaping is not None and delay is not None else iface.loc
            if delay_loc.line == 0:
                delay_loc = iface.loc
            previous = by_vm.get(vm_name)
            if previous is not None:  # two interfaces of one VM in one network: add them up
                rate += previous.rate_bps
                delay = _min_delay(previous.delay_us, delay)
            by_vm[vm_name] = Member(
                vm=vm_name,
                rate_bps=rate,
                weight_bps=rate or NOMINAL_RATE_BPS,
                delay_us=delay,
                delay_loc=delay_loc,
            )
        members = tuple(by_vm[name] for name in sorted(by_vm))
        edges.append(Hyperedge(EdgeKind.NETWORK, network.name, network.name, members, network.loc))
    seen: set[str] = set()

    def pair_key(p: PairShaping) -> tuple[str, int, int, str]:
        """Name, then (for a pair given twice) the higher rate and the lower latency first."""
        delay = p.shaping.delay_us if p.shaping.delay_us is not None else 1 << 62
        return (pair_name(p.a, p.b), -(p.shaping.rate_bps or 0), delay, p.network or "")

    for pair in sorted(virtual.pairs, key=pair_key):
        name = pair_name(pair.a, pair.b)
        if name in seen or pair.a == pair.b:
            continue
        seen.add(name)
        rate = pair.shaping.rate_bps or 0
        delay = pair.shaping.delay_us
        members = tuple(
            Member(vm, rate, rate or NOMINAL_RATE_BPS, delay, pair.loc)
            for vm in sorted((pair.a, pair.b))
        )
        edges.append(Hyperedge(EdgeKind.PAIR, name, pair.network, members, pair.loc))
    return Demand(virtual.topology, tuple(sorted(vm.name for vm in virtual.vms)), tuple(edges))


def _min_delay(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def virtual_graph(demand: Demand) -> nx.Graph:
    """The virtual topology as a networkx graph: VM nodes, network nodes, pair edges.

    A network is a node of kind ``"network"`` joined to each member VM by an edge carrying
    the member's ``rate_bps`` and ``weight_bps``; a pair is an edge between two VM nodes
    (``kind="pair"``).  Network nodes keep the graph linear in the number of interfaces
    where a clique per network would be quadratic.
    """
    graph = nx.Graph()
    for vm in demand.vms:
        graph.add_node(vm, kind="vm")
    for edge in demand.edges:
        if edge.kind is EdgeKind.NETWORK:
            node = f"network:{edge.name}"
            graph.add_node(node, kind="network", name=edge.name)
            for m in edge.members:
                graph.add_edge(node, m.vm, rate_bps=m.rate_bps, weight_bps=m.weight_bps)
        else:
            a, b = (m.vm for m in edge.members)
            graph.add_edge(
                a,
                b,
                kind="pair",
                rate_bps=edge.members[0].rate_bps,
                weight_bps=edge.members[0].weight_bps,
            )
    return graph


def colocation_groups(demand: Demand, min_host_latency_us: int | None) -> list[list[str]]:
    """Groups of VMs (sorted, each of two or more) that must share a host for their latency.

    Two members of a hyperedge must be co-located when either declares a latency below
    ``min_host_latency_us``, the smallest physical latency between two distinct hosts (None:
    only one host, nothing to tie).
    """
    if min_host_latency_us is None:
        return []
    graph = nx.Graph()
    for edge in demand.edges:
        tight = [
            m.vm
            for m in edge.members
            if m.delay_us is not None and m.delay_us < min_host_latency_us
        ]
        if not tight:
            continue
        others = [m.vm for m in edge.members]
        for vm in tight:
            for other in others:
                if other != vm:
                    graph.add_edge(vm, other)
    groups = [sorted(component) for component in nx.connected_components(graph)]
    return sorted(groups)
