"""Carrying virtual links over physical ones: paths, reservations and latency budgets.

Pairs
    A pair whose VMs sit on different hosts takes one physical path.  The candidates are the
    first :data:`CANDIDATE_PATHS` simple paths by latency (then hops) over the links with
    enough free bandwidth for the pair's rate; the least loaded (widest bottleneck) wins,
    then the fastest, then the first in name order.  A pair that declares a latency only
    takes paths no slower than it.

Networks
    A network spread over several hosts is carried by a tree: the shortest-path tree from
    its *root* (the spanned host with the most guaranteed rate, then the most members, then
    the first name) to the other spanned hosts.  The bandwidth reserved on a tree link
    follows the hose model: the link splits the members in two sides, and the traffic that
    crosses it one way is at most what the shaped members of one side send and at most
    what the other side can receive (unlimited when that side has an unshaped member).
    The link reserves the larger direction.  A tree link without enough free bandwidth is
    left out and the tree is grown again without it until the tree fits or the hosts are
    cut off.

Paths never pass through a host other than their ends: hosts do not forward.  Reservations
add up, in this order: networks by decreasing guaranteed rate, then pairs by decreasing
rate, each group by name.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import networkx as nx

from netmanager.inputs.model import PhysicalLink
from netmanager.inputs.units import format_rate, format_time
from netmanager.mapping.demand import Demand, Hyperedge, Member
from netmanager.mapping.physical import path_latency, path_links
from netmanager.mapping.problems import E_BANDWIDTH, E_LATENCY, Problem
from netmanager.mapping.result import DelayBudget, HostPath, NetworkRoute, PairRoute, Reservation

CANDIDATE_PATHS = 8
_UNLIMITED = 10**18

WeightFunction = Callable[[str, str, dict[str, object]], int | None]


@dataclass
class RoutingState:
    """Bandwidth reserved so far on each physical link (by name)."""

    graph: nx.Graph
    hosts: frozenset[str]
    occupied: dict[str, int]
    reserved: dict[str, int] = field(default_factory=dict)

    def free(self, link: PhysicalLink) -> int:
        return link.capacity_bps - self.occupied.get(link.name, 0) - self.reserved.get(link.name, 0)

    def reserve(self, link: str, bps: int) -> None:
        if bps:
            self.reserved[link] = self.reserved.get(link, 0) + bps

    def weight(
        self, ends: frozenset[str], need_bps: int = 0, excluded: frozenset[str] = frozenset()
    ) -> WeightFunction:
        """Search weight that hides other hosts, excluded links and links too full."""
        hosts = self.hosts

        def weight(u: str, v: str, data: dict[str, object]) -> int | None:
            if (u in hosts and u not in ends) or (v in hosts and v not in ends):
                return None
            link = data["link"]
            assert isinstance(link, PhysicalLink)
            if link.name in excluded or (need_bps and self.free(link) < need_bps):
                return None
            value = data["weight"]
            assert isinstance(value, int)
            return value

        return weight


def path_text(path: tuple[str, ...] | list[str]) -> str:
    return "–".join(path)


# ---------------------------------------------------------------------------- pairs


def _candidates(state: RoutingState, a: str, b: str, need_bps: int) -> list[tuple[str, ...]]:
    try:
        generator = nx.shortest_simple_paths(
            state.graph, a, b, weight=state.weight(frozenset({a, b}), need_bps)
        )
        return [tuple(p) for p in itertools.islice(generator, CANDIDATE_PATHS)]
    except (nx.NetworkXNoPath, nx.NodeNotFound):
        return []


def _bottleneck(state: RoutingState, path: tuple[str, ...]) -> int:
    return min((state.free(link) for link in path_links(state.graph, path)), default=_UNLIMITED)


def _pick(state: RoutingState, paths: list[tuple[str, ...]]) -> tuple[str, ...]:
    return min(
        paths,
        key=lambda p: (-_bottleneck(state, p), path_latency(state.graph, p), len(p), p),
    )


# A VM's frames cross physical links inside a tunnel: VXLAN adds 50 bytes to each (802.1Q
# only 4; the larger is reserved, so the choice of encapsulation can never break a
# reservation). A declared rate counts the VM's frames (what its port's TBF counts); a
# physical link's capacity counts what it carries. With 1500-byte underlays, VMs get a
# 1450-byte MTU: a frame of 1464 bytes travels as 1514.
UNDERLAY_FRAME = 1500 + 14
TUNNEL_OVERHEAD = 50


def on_wire(rate_bps: int) -> int:
    """What ``rate_bps`` of VM frames takes on a physical link, tunnel headers included."""
    frame = UNDERLAY_FRAME - TUNNEL_OVERHEAD
    return -(-rate_bps * UNDERLAY_FRAME // frame)


def route_pair(
    state: RoutingState, edge: Hyperedge, placement: dict[str, str]
) -> tuple[PairRoute | None, Problem | None]:
    first, second = edge.members
    a, b = placement[first.vm], placement[second.vm]
    rate = on_wire(first.rate_bps) if first.rate_bps else 0
    declared = first.delay_us
    if a == b:
        route = PairRoute(
            edge.name,
            first.vm,
            second.vm,
            edge.network,
            (a, b),
            (a,),
            (),
            first.rate_bps,
            0,
            0,
            declared,
            declared,
        )
        return route, None
    candidates = _candidates(state, a, b, rate)
    fast = [p for p in candidates if declared is None or path_latency(state.graph, p) <= declared]
    if not fast:
        return None, _pair_problem(state, edge, a, b, candidates)
    path = _pick(state, fast)
    links = path_links(state.graph, path)
    for link in links:
        state.reserve(link.name, rate)
    latency = path_latency(state.graph, path)
    route = PairRoute(
        name=edge.name,
        a=first.vm,
        b=second.vm,
        network=edge.network,
        hosts=(a, b),
        path=path,
        links=tuple(link.name for link in links),
        rate_bps=first.rate_bps,
        reserved_bps=rate,
        latency_us=latency,
        declared_us=declared,
        netem_delay_us=None if declared is None else declared - latency,
    )
    return route, None


def _pair_problem(
    state: RoutingState, edge: Hyperedge, a: str, b: str, feasible: list[tuple[str, ...]]
) -> Problem:
    first = edge.members[0]
    rate, declared = on_wire(first.rate_bps), first.delay_us
    label = f"pair {edge.name} ({a} to {b})"
    if feasible:  # there is bandwidth, but every such path is too slow
        best = min(feasible, key=lambda p: (path_latency(state.graph, p), p))
        latency = path_latency(state.graph, best)
        assert declared is not None
        return Problem(
            E_LATENCY,
            edge.loc,
            f"pair:{edge.name}",
            f"{label} declares latency {format_time(declared)} but the fastest path with room, "
            f"{path_text(best)}, takes {format_time(latency)}",
            f"declare at least {format_time(latency)}, or pin both VMs on one host",
        )
    any_paths = _candidates(state, a, b, 0)
    if not any_paths:
        return Problem(
            E_BANDWIDTH,
            edge.loc,
            f"pair:{edge.name}",
            f"{label}: no physical path joins {a} and {b}",
            "connect the hosts through switches or routers in real.xml (hosts do not forward)",
        )
    best = _pick(state, any_paths)
    free = max(_bottleneck(state, best), 0)
    latency = path_latency(state.graph, best)
    if declared is not None and latency > declared:
        return Problem(
            E_LATENCY,
            edge.loc,
            f"pair:{edge.name}",
            f"{label} declares latency {format_time(declared)} but the fastest path, "
            f"{path_text(best)}, takes {format_time(latency)}",
            f"declare at least {format_time(latency)}, or pin both VMs on one host",
        )
    return Problem(
        E_BANDWIDTH,
        edge.loc,
        f"pair:{edge.name}",
        f"{label} needs {format_rate(rate)}; best path {path_text(best)} has "
        f"{format_rate(free)} free",
        "lower the pair's bandwidth, raise the capacity of the links, or pin both VMs on one host",
    )


# ---------------------------------------------------------------------------- networks


@dataclass(frozen=True)
class _Side:
    shaped_bps: int
    unshaped: int  # members without a rate

    def sends_to(self, other: _Side) -> int:
        return self.shaped_bps if other.unshaped else min(self.shaped_bps, other.shaped_bps)


def _host_sides(edge: Hyperedge, placement: dict[str, str]) -> dict[str, _Side]:
    shaped: dict[str, int] = {}
    unshaped: dict[str, int] = {}
    for m in edge.members:
        host = placement[m.vm]
        shaped[host] = shaped.get(host, 0) + m.rate_bps
        unshaped[host] = unshaped.get(host, 0) + (0 if m.rate_bps else 1)
    return {h: _Side(shaped[h], unshaped[h]) for h in sorted(shaped)}


def _root(sides: dict[str, _Side], counts: dict[str, int]) -> str:
    return min(sides, key=lambda h: (-sides[h].shaped_bps, -counts[h], h))


@dataclass(frozen=True)
class _Tree:
    paths: dict[str, tuple[str, ...]]  # spanned host -> path from the root
    reservations: dict[str, int]  # link name -> bps
    links: dict[str, PhysicalLink]


def _tree(
    state: RoutingState, root: str, sides: dict[str, _Side], excluded: frozenset[str]
) -> _Tree | None:
    ends = frozenset(sides)
    try:
        paths = nx.single_source_dijkstra_path(
            state.graph, root, weight=state.weight(ends, 0, excluded)
        )
    except nx.NodeNotFound:
        return None
    if any(h not in paths for h in sides):
        return None
    total = _Side(
        sum(s.shaped_bps for s in sides.values()), sum(s.unshaped for s in sides.values())
    )
    below: dict[str, tuple[int, int]] = {}
    links: dict[str, PhysicalLink] = {}
    chosen = {h: tuple(paths[h]) for h in sides}
    for host, path in chosen.items():
        if host == root:
            continue
        side = sides[host]
        for link in path_links(state.graph, path):
            shaped, unshaped = below.get(link.name, (0, 0))
            below[link.name] = (shaped + side.shaped_bps, unshaped + side.unshaped)
            links[link.name] = link
    reservations: dict[str, int] = {}
    for name, (shaped, unshaped) in below.items():
        inner = _Side(shaped, unshaped)
        outer = _Side(total.shaped_bps - shaped, total.unshaped - unshaped)
        reservations[name] = on_wire(max(inner.sends_to(outer), outer.sends_to(inner)))
    return _Tree(chosen, reservations, links)


def route_network(
    state: RoutingState, edge: Hyperedge, placement: dict[str, str]
) -> tuple[NetworkRoute | None, list[DelayBudget], list[Problem]]:
    sides = _host_sides(edge, placement)
    counts: dict[str, int] = {}
    for m in edge.members:
        counts[placement[m.vm]] = counts.get(placement[m.vm], 0) + 1
    if not sides:
        return None, [], []
    root = _root(sides, counts)
    hosts = tuple(sorted(sides))
    if len(hosts) == 1:
        route = NetworkRoute(edge.name, hosts, root, (), ())
        return route, _budgets(state, edge, placement, route, {root: (root,)}), []
    excluded: frozenset[str] = frozenset()
    first: _Tree | None = None
    while True:
        tree = _tree(state, root, sides, excluded)
        if tree is None:
            return None, [], [_network_problem(state, edge, root, sides, first)]
        if first is None:
            first = tree
        full = sorted(
            name for name, bps in tree.reservations.items() if state.free(tree.links[name]) < bps
        )
        if not full:
            break
        excluded = excluded | frozenset(full)
    for name in sorted(tree.reservations):
        state.reserve(name, tree.reservations[name])
    paths = tuple(
        HostPath(h, tree.paths[h], path_latency(state.graph, tree.paths[h]))
        for h in hosts
        if h != root
    )
    route = NetworkRoute(
        edge.name,
        hosts,
        root,
        paths,
        tuple(Reservation(name, tree.reservations[name]) for name in sorted(tree.reservations)),
    )
    budgets = _budgets(state, edge, placement, route, tree.paths)
    problems = _latency_problems(state, edge, placement, tree.paths)
    return route, budgets, problems


def _network_problem(
    state: RoutingState,
    edge: Hyperedge,
    root: str,
    sides: dict[str, _Side],
    first: _Tree | None,
) -> Problem:
    subject = f"network:{edge.name}"
    if first is None:
        reachable = _tree_reach(state, root, sides)
        cut_off = [h for h in sides if h not in reachable]
        return Problem(
            E_BANDWIDTH,
            edge.loc,
            subject,
            f"network '{edge.name}' spans hosts {', '.join(sorted(sides))} but no physical path "
            f"joins {root} and {', '.join(cut_off)}",
            "connect the hosts through switches or routers in real.xml (hosts do not forward)",
        )
    worst = min(
        sorted(first.reservations),
        key=lambda n: (state.free(first.links[n]) - first.reservations[n], n),
    )
    need = first.reservations[worst]
    free = max(state.free(first.links[worst]), 0)
    host = next(
        h
        for h in sorted(first.paths)
        if worst in {link.name for link in path_links(state.graph, first.paths[h])}
    )
    return Problem(
        E_BANDWIDTH,
        edge.loc,
        subject,
        f"network '{edge.name}' needs {format_rate(need)} on link {worst}; best path "
        f"{path_text(first.paths[host])} has {format_rate(free)} free",
        "lower the network's bandwidth, raise the capacity of the links, "
        "or pin its VMs on fewer hosts",
    )


def _tree_reach(state: RoutingState, root: str, sides: dict[str, _Side]) -> set[str]:
    lengths = nx.single_source_dijkstra_path_length(
        state.graph, root, weight=state.weight(frozenset(sides))
    )
    return set(lengths)


def _between(
    state: RoutingState, paths: dict[str, tuple[str, ...]], a: str, b: str
) -> tuple[tuple[str, ...], int]:
    """The tree path between two spanned hosts and its latency."""
    pa, pb = paths[a], paths[b]
    common = 0
    while common < min(len(pa), len(pb)) and pa[common] == pb[common]:
        common += 1
    path = tuple(reversed(pa[common - 1 :])) + pb[common:]
    return path, path_latency(state.graph, path)


def _declaring(edge: Hyperedge) -> list[Member]:
    return [m for m in edge.members if m.delay_us is not None]


def _budgets(
    state: RoutingState,
    edge: Hyperedge,
    placement: dict[str, str],
    route: NetworkRoute,
    paths: dict[str, tuple[str, ...]],
) -> list[DelayBudget]:
    budgets = []
    for m in _declaring(edge):
        assert m.delay_us is not None
        own = placement[m.vm]
        for other in route.hosts:
            latency = 0 if other == own else _between(state, paths, own, other)[1]
            budgets.append(
                DelayBudget(
                    m.vm, edge.name, own, other, m.delay_us, latency, max(m.delay_us - latency, 0)
                )
            )
    return budgets


def _latency_problems(
    state: RoutingState,
    edge: Hyperedge,
    placement: dict[str, str],
    paths: dict[str, tuple[str, ...]],
) -> list[Problem]:
    problems = []
    for m in _declaring(edge):
        assert m.delay_us is not None
        own = placement[m.vm]
        slowest: tuple[int, tuple[str, ...]] | None = None
        for other in sorted(paths):
            if other == own:
                continue
            path, latency = _between(state, paths, own, other)
            if latency > m.delay_us and (slowest is None or latency > slowest[0]):
                slowest = (latency, path)
        if slowest is not None:
            latency, path = slowest
            problems.append(
                Problem(
                    E_LATENCY,
                    m.delay_loc,
                    f"latency:{edge.name}:{m.vm}",
                    f"VM '{m.vm}' declares latency {format_time(m.delay_us)} in network "
                    f"'{edge.name}' but the path {path_text(path)} takes {format_time(latency)}",
                    f"declare at least {format_time(latency)}, or pin the network's VMs on one host",
                )
            )
    return problems


def route_all(
    state: RoutingState, demand: Demand, placement: dict[str, str]
) -> tuple[list[NetworkRoute], list[PairRoute], list[DelayBudget], list[Problem]]:
    """Route every network, then every pair, in the documented order."""
    networks: list[NetworkRoute] = []
    pairs: list[PairRoute] = []
    budgets: list[DelayBudget] = []
    problems: list[Problem] = []

    def rate(edge: Hyperedge) -> int:
        return sum(m.rate_bps for m in edge.members)

    ordered = sorted(demand.networks, key=lambda e: (-rate(e), e.name))
    for edge in ordered:
        route, more_budgets, more_problems = route_network(state, edge, placement)
        if route is not None:
            networks.append(route)
        budgets.extend(more_budgets)
        problems.extend(more_problems)
    for edge in sorted(demand.pairs, key=lambda e: (-e.members[0].rate_bps, e.name)):
        pair_route, problem = route_pair(state, edge, placement)
        if pair_route is not None:
            pairs.append(pair_route)
        if problem is not None:
            problems.append(problem)
    networks.sort(key=lambda r: r.network)
    pairs.sort(key=lambda r: r.name)
    budgets.sort(key=lambda b: (b.network, b.vm, b.to_host))
    return networks, pairs, budgets, problems
