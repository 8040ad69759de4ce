"""The physical side of the mapping: hosts, switches and routers joined by links.

:func:`physical_graph` builds an undirected networkx graph whose nodes are hosts
(``kind="host"``) and network nodes (``kind="switch"`` / ``"router"``), and whose edges
carry the :class:`~netmanager.inputs.model.PhysicalLink` with its capacity and latency.  Nodes and
edges are inserted in sorted order so that every search over the graph is deterministic.

Two links between the same two nodes are one edge: the first in name order is kept and the
others are reported by :func:`parallel_links` (netmanager does not bond links).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import networkx as nx

from netmanager.inputs.model import PhysicalLink, Real

# Latency in µs dominates the search weight; the +1 per hop breaks ties towards fewer hops.
HOP_WEIGHT = 1
LATENCY_SCALE = 1024


def search_weight(latency_us: int) -> int:
    return latency_us * LATENCY_SCALE + HOP_WEIGHT


def _sorted_links(links: Iterable[PhysicalLink]) -> list[PhysicalLink]:
    return sorted(links, key=lambda link: (tuple(sorted((link.a.node, link.b.node))), link.name))


def physical_graph(real: Real) -> nx.Graph:
    graph = nx.Graph()
    for host in sorted(real.hosts, key=lambda h: h.name):
        graph.add_node(host.name, kind="host", site=host.site)
    for node in sorted(real.nodes, key=lambda n: n.name):
        graph.add_node(node.name, kind=node.kind.value, site=node.site)
    for link in _sorted_links(real.links):
        a, b = link.a.node, link.b.node
        if a == b or graph.has_edge(a, b):
            continue
        if a not in graph or b not in graph:
            continue  # the validator reports links to unknown nodes
        graph.add_edge(
            a,
            b,
            link=link,
            name=link.name,
            capacity_bps=link.capacity_bps,
            latency_us=link.latency_us,
            weight=search_weight(link.latency_us),
        )
    return graph


def parallel_links(real: Real) -> list[PhysicalLink]:
    """Links that :func:`physical_graph` leaves out because an earlier one joins the same nodes."""
    seen: set[tuple[str, str]] = set()
    dropped: list[PhysicalLink] = []
    for link in _sorted_links(real.links):
        key = (min(link.a.node, link.b.node), max(link.a.node, link.b.node))
        if key in seen:
            dropped.append(link)
        seen.add(key)
    return dropped


def path_links(graph: nx.Graph, path: list[str] | tuple[str, ...]) -> list[PhysicalLink]:
    return [graph.edges[u, v]["link"] for u, v in itertools.pairwise(path)]


def path_latency(graph: nx.Graph, path: list[str] | tuple[str, ...]) -> int:
    return sum(link.latency_us for link in path_links(graph, path))


def min_host_latency(real: Real, graph: nx.Graph) -> int | None:
    """The smallest physical latency between two distinct hosts (None: fewer than two hosts
    reach each other)."""
    hosts = sorted(h.name for h in real.hosts)
    best: int | None = None
    host_set = set(hosts)
    for source in hosts:
        lengths = nx.single_source_dijkstra_path_length(
            graph, source, weight=_transit_weight(host_set, source)
        )
        for target, length in lengths.items():
            if target != source and target in host_set:
                latency = length // LATENCY_SCALE
                best = latency if best is None else min(best, latency)
    return best


def _transit_weight(
    hosts: set[str], source: str
) -> Callable[[str, str, dict[str, object]], int | None]:
    """A weight function that forbids passing through hosts other than the ends."""

    def weight(u: str, v: str, data: dict[str, object]) -> int | None:
        if u in hosts and u != source:
            return None
        value = data["weight"]
        assert isinstance(value, int)
        return value

    return weight
