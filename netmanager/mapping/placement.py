"""Placement of VMs on hosts: a capacity-aware multilevel hypergraph partitioner.

The problem is given as integer arrays (:class:`PlacementProblem`) so the heuristic runs in
plain Python at the speed the benchmark asks for (10,000 VMs on 100 hosts in about half a
second).  The objective and the demand model are described in
:mod:`netmanager.mapping.demand`: minimise the cut (expected traffic between hosts), then
balance the load.  The scheme is METIS' multilevel k-way partitioning, adapted to hosts of
unequal, multi-dimensional capacity (cpus, memory for VMs, VM slots) and to pinned VMs:

1. **Units.**  VMs that must share a host (co-location groups, for a latency below any
   host-to-host latency) form one unit.
2. **Coarsening** (:func:`_coarsen`).  Heavy-edge matching: each free unit is matched with
   the unmatched neighbour it exchanges the most traffic with, as long as the pair stays
   below half of a median host.  Levels repeat until about two units per host remain or
   matching stops shrinking the graph.  Pinned units are never merged.
3. **Initial placement** on the coarsest level (:meth:`_Engine.initial`): pinned units go
   to their hosts; then greedy graph growing, host by host (hosts with pinned units first,
   then by room): a host is filled with the unit most connected to it that fits (a heap of
   connections), or with the largest unit when nothing is connected.  What no host could
   take is retried at finer levels, where units are smaller.
4. **Uncoarsening with refinement** (:meth:`_Engine.refine`) on every level: greedy k-way
   refinement (METIS' ``Greedy_KWayRefine``): boundary units by decreasing gain move to the
   host with the best positive gain that has room; when that host is full, the best swap
   with one of its units is taken if both moves together gain.
5. **Balance** (:meth:`_Engine.balance`): connected components of the virtual topology that
   sit whole on one host move, at no cost to the cut, from the most loaded host to the
   least loaded one.

Small problems run several variants (different, fixed visiting orders) and keep the best.
Every choice is made over indices with explicit tie-breaks and seeded orders: the same
problem always gives the same placement.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass

UNLIMITED = 10**12
_EPS = 1e-9
_MAX_PASSES = 12
_WINDOW = 32
_CAP_FRACTION = 0.5
_COARSEST_PER_HOST = 2
_COARSEST_MIN = 4
_MIN_REDUCTION = 0.9
_MAX_TRIES = 8
_TRY_BUDGET = 4000  # VMs × variants


@dataclass(frozen=True)
class PlacementProblem:
    """Everything the heuristic needs, by index; VMs and hosts in name order."""

    vm_cpus: tuple[int, ...]
    vm_memory: tuple[int, ...]
    pinned: tuple[int, ...]  # host index per VM, -1 when free
    host_cpus: tuple[int, ...]  # capacity
    host_memory: tuple[int, ...]
    host_vms: tuple[int, ...]  # UNLIMITED when the host sets no maximum
    used_cpus: tuple[int, ...]  # occupied by other topologies
    used_memory: tuple[int, ...]
    used_vms: tuple[int, ...]
    edges: tuple[tuple[tuple[int, int], ...], ...]  # per hyperedge: (vm index, weight)
    groups: tuple[tuple[int, ...], ...] = ()  # VMs that must share a host


@dataclass(frozen=True)
class PlacementResult:
    host_of: tuple[int, ...]  # per VM, -1 when it could not be placed
    unplaced: tuple[int, ...]  # VM indices, sorted


def base_units(p: PlacementProblem) -> list[list[int]]:
    """The finest units: co-location groups, every other VM alone; in VM index order."""
    nvms = len(p.vm_cpus)
    parent = list(range(nvms))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for group in p.groups:
        members = sorted(group)
        if not members:
            continue
        anchor_pin = next((p.pinned[v] for v in members if p.pinned[v] >= 0), -1)
        for v in members:
            if p.pinned[v] >= 0 and p.pinned[v] != anchor_pin:
                continue  # pinned elsewhere: it stays where it is
            ra, rb = find(members[0]), find(v)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    by_root: dict[int, list[int]] = {}
    for v in range(nvms):
        by_root.setdefault(find(v), []).append(v)
    return list(by_root.values())


class _Engine:
    """Mutable working state of the heuristic on one level of units."""

    def __init__(self, p: PlacementProblem, units: list[list[int]]) -> None:
        self.p = p
        nhosts = len(p.host_cpus)
        self.nhosts = nhosts
        self.cap = [(p.host_cpus[h], p.host_memory[h], p.host_vms[h]) for h in range(nhosts)]
        self.used_cpu = list(p.used_cpus)
        self.used_mem = list(p.used_memory)
        self.used_cnt = list(p.used_vms)
        self.units = units
        self.unit_of: list[int] = [0] * len(p.vm_cpus)
        for u, vms in enumerate(units):
            for v in vms:
                self.unit_of[v] = u
        self.unit_cpu = [sum(p.vm_cpus[v] for v in vs) for vs in units]
        self.unit_mem = [sum(p.vm_memory[v] for v in vs) for vs in units]
        self.unit_cnt = [len(vs) for vs in units]
        self.unit_pin = [next((p.pinned[v] for v in vs if p.pinned[v] >= 0), -1) for vs in units]
        incidence: list[dict[int, int]] = [{} for _ in units]
        for e, edge in enumerate(p.edges):
            for v, w in edge:
                inc = incidence[self.unit_of[v]]
                inc[e] = inc.get(e, 0) + w
        self.inc: list[list[tuple[int, int]]] = [sorted(d.items()) for d in incidence]
        self.host_of: list[int] = [-1] * len(units)
        self.host_units: list[dict[int, None]] = [{} for _ in range(nhosts)]
        self.sums: list[dict[int, int]] = [{} for _ in p.edges]
        self.divisor: list[float] = []
        for edge in p.edges:
            total = sum(w for _, w in edge)
            count = len(edge)
            self.divisor.append(total * (count - 1) / count if count > 1 and total > 0 else 0.0)
        self.avg_cap = (
            max(sum(c for c, _, _ in self.cap) / max(nhosts, 1), 1.0),
            max(sum(m for _, m, _ in self.cap) / max(nhosts, 1), 1.0),
            max(sum(min(v, UNLIMITED) for _, _, v in self.cap) / max(nhosts, 1), 1.0),
        )

    def assign(self, vm_hosts: list[int]) -> None:
        """Put every unit where its VMs are (a projection from a coarser level)."""
        for u, vms in enumerate(self.units):
            host = vm_hosts[vms[0]]
            if host >= 0:
                self.put(u, host)

    def vm_hosts(self) -> list[int]:
        hosts = [-1] * len(self.p.vm_cpus)
        for u, vms in enumerate(self.units):
            for v in vms:
                hosts[v] = self.host_of[u]
        return hosts

    # ------------------------------------------------------------------ capacity

    def fits(self, u: int, h: int) -> bool:
        cpus, memory, vms = self.cap[h]
        return (
            self.used_cpu[h] + self.unit_cpu[u] <= cpus
            and self.used_mem[h] + self.unit_mem[u] <= memory
            and self.used_cnt[h] + self.unit_cnt[u] <= vms
        )

    def fits_total(self, h: int, cpu: int, mem: int, cnt: int) -> bool:
        cpus, memory, vms = self.cap[h]
        return (
            self.used_cpu[h] + cpu <= cpus
            and self.used_mem[h] + mem <= memory
            and self.used_cnt[h] + cnt <= vms
        )

    def room(self, h: int) -> float:
        """Free room of a host on its scarcest resource, in units of an average host."""
        cpus, memory, vms = self.cap[h]
        return min(
            (cpus - self.used_cpu[h]) / self.avg_cap[0],
            (memory - self.used_mem[h]) / self.avg_cap[1],
            (min(vms, UNLIMITED) - self.used_cnt[h]) / self.avg_cap[2],
        )

    def load(self, h: int) -> float:
        """Fraction of a host in use on its most used resource."""
        cpus, memory, vms = self.cap[h]
        fractions = [self.used_cpu[h] / cpus if cpus > 0 else 1.0]
        fractions.append(self.used_mem[h] / memory if memory > 0 else 1.0)
        if vms < UNLIMITED:
            fractions.append(self.used_cnt[h] / vms if vms > 0 else 1.0)
        return max(fractions)

    def size(self, u: int) -> float:
        return max(
            self.unit_cpu[u] / self.avg_cap[0],
            self.unit_mem[u] / self.avg_cap[1],
            self.unit_cnt[u] / self.avg_cap[2],
        )

    # ------------------------------------------------------------------ moves

    def put(self, u: int, h: int) -> None:
        self.host_of[u] = h
        self.host_units[h][u] = None
        self.used_cpu[h] += self.unit_cpu[u]
        self.used_mem[h] += self.unit_mem[u]
        self.used_cnt[h] += self.unit_cnt[u]
        for e, w in self.inc[u]:
            s = self.sums[e]
            s[h] = s.get(h, 0) + w

    def take(self, u: int) -> int:
        h = self.host_of[u]
        self.host_of[u] = -1
        del self.host_units[h][u]
        self.used_cpu[h] -= self.unit_cpu[u]
        self.used_mem[h] -= self.unit_mem[u]
        self.used_cnt[h] -= self.unit_cnt[u]
        for e, w in self.inc[u]:
            s = self.sums[e]
            left = s[h] - w
            if left:
                s[h] = left
            else:
                del s[h]
        return h

    def move(self, u: int, h: int) -> None:
        self.take(u)
        self.put(u, h)

    def gain(self, u: int, target: int) -> float:
        """Cut reduction if unit ``u`` moved from its host to ``target``."""
        source = self.host_of[u]
        total = 0.0
        for e, w in self.inc[u]:
            d = self.divisor[e]
            if not d:
                continue
            s = self.sums[e]
            total += w * (s.get(target, 0) - s.get(source, 0) + w) / d
        return total

    def candidate_hosts(self, u: int) -> list[int]:
        source = self.host_of[u]
        seen: dict[int, None] = {}
        for e, _ in self.inc[u]:
            for h in self.sums[e]:
                if h != source:
                    seen[h] = None
        return sorted(seen)

    def is_boundary(self, u: int) -> bool:
        return any(len(self.sums[e]) > 1 for e, _ in self.inc[u])

    # ------------------------------------------------------------------ phase 1 + 2

    def initial(self, variant: int = 0) -> None:
        """Greedy graph growing, host by host: pinned units first, then each host (those
        with pinned units first, then by room) is filled with the unit most connected to
        it that still fits, or when nothing is connected, with the largest one."""
        for u in range(len(self.units)):
            if self.unit_pin[u] >= 0:
                self.put(u, self.unit_pin[u])
        members = self._members()
        rank = {u: i for i, u in enumerate(_order(len(self.units), variant))}
        by_size = sorted(
            (u for u in range(len(self.units)) if self.unit_pin[u] < 0),
            key=lambda u: (-round(self.size(u), 9), rank[u]),
        )
        pinned_weight = [0.0] * self.nhosts
        for u in range(len(self.units)):
            if self.unit_pin[u] >= 0:
                pinned_weight[self.unit_pin[u]] += self.size(u)
        hosts = sorted(
            range(self.nhosts), key=lambda h: (-pinned_weight[h], -round(self.room(h), 9), h)
        )
        for h in hosts:
            self._fill(h, members, by_size)
        self.place_leftovers()

    def _members(self) -> list[list[tuple[int, int]]]:
        """Per hyperedge small enough to enumerate: (unit, weight) of its members."""
        rows: list[list[tuple[int, int]]] = []
        for e, edge in enumerate(self.p.edges):
            if not self.divisor[e] or len(edge) > 2 * _WINDOW:
                rows.append([])
                continue
            by_unit: dict[int, int] = {}
            for v, w in edge:
                u = self.unit_of[v]
                by_unit[u] = by_unit.get(u, 0) + w
            rows.append(sorted(by_unit.items()))
        return rows

    def _fill(self, h: int, members: list[list[tuple[int, int]]], by_size: list[int]) -> None:
        conn: dict[int, float] = {}
        heap: list[tuple[float, int]] = []

        def attract(u: int) -> None:
            for e, w in self.inc[u]:
                d = self.divisor[e]
                for x, wx in members[e]:
                    if x != u and self.host_of[x] < 0 and self.unit_pin[x] < 0:
                        value = conn.get(x, 0.0) + w * wx / d
                        conn[x] = value
                        heapq.heappush(heap, (-value, x))

        for u in list(self.host_units[h]):
            attract(u)
        skipped: set[int] = set()
        cursor = 0
        while True:
            chosen = -1
            while heap:
                value, x = heapq.heappop(heap)
                if self.host_of[x] >= 0 or x in skipped or -value < conn[x] - _EPS:
                    continue
                if self.fits(x, h):
                    chosen = x
                    break
                skipped.add(x)
            if chosen < 0:
                while cursor < len(by_size) and self.host_of[by_size[cursor]] >= 0:
                    cursor += 1
                for x in by_size[cursor:]:
                    if self.host_of[x] < 0 and x not in skipped and self.fits(x, h):
                        chosen = x
                        break
            if chosen < 0:
                return
            self.put(chosen, h)
            attract(chosen)

    def place_leftovers(self) -> None:
        """Units left without a host go to the most connected host with room, else to the
        one with the most room (at finer levels, units are smaller and may fit now)."""
        for u in range(len(self.units)):
            if self.host_of[u] >= 0 or self.unit_pin[u] >= 0:
                continue
            conn = self._connection(u)
            hosts = [h for h in range(self.nhosts) if self.fits(u, h)]
            if hosts:
                self.put(
                    u, min(hosts, key=lambda h: (-round(conn.get(h, 0.0), 6), -self.room(h), h))
                )

    def _connection(self, u: int) -> dict[int, float]:
        conn: dict[int, float] = {}
        for e, w in self.inc[u]:
            d = self.divisor[e]
            if not d:
                continue
            for h, s in self.sums[e].items():
                conn[h] = conn.get(h, 0.0) + w * s / d
        return conn

    # ------------------------------------------------------------------ phase 3

    def refine(self) -> None:
        for _ in range(_MAX_PASSES):
            boundary = [
                u
                for u in range(len(self.units))
                if self.unit_pin[u] < 0 and self.host_of[u] >= 0 and self.is_boundary(u)
            ]
            scored = []
            for u in boundary:
                best = max((self.gain(u, h) for h in self.candidate_hosts(u)), default=0.0)
                if best > _EPS:
                    scored.append((-best, u))
            scored.sort()
            moved = 0
            for _, u in scored:
                if self._improve(u):
                    moved += 1
            if not moved:
                break

    def _improve(self, u: int) -> bool:
        options = sorted(
            ((self.gain(u, h), h) for h in self.candidate_hosts(u)),
            key=lambda gh: (-gh[0], gh[1]),
        )
        for g, h in options:
            if g <= _EPS:
                return False
            if self.fits(u, h):
                self.move(u, h)
                return True
            if self._swap(u, h):
                return True
        return False

    def _swap(self, u: int, target: int) -> bool:
        """Move ``u`` to the full host ``target`` and the best unit of ``target`` back, when
        the two moves together gain and both hosts stay within capacity."""
        source = self.host_of[u]
        first = self.gain(u, target)
        cap_t, cap_s = self.cap[target], self.cap[source]
        # what target holds with u in, and what source holds with u out
        t_cpu = self.used_cpu[target] + self.unit_cpu[u]
        t_mem = self.used_mem[target] + self.unit_mem[u]
        t_cnt = self.used_cnt[target] + self.unit_cnt[u]
        s_cpu = self.used_cpu[source] - self.unit_cpu[u]
        s_mem = self.used_mem[source] - self.unit_mem[u]
        s_cnt = self.used_cnt[source] - self.unit_cnt[u]
        candidates = []
        for x in self.host_units[target]:
            if self.unit_pin[x] >= 0:
                continue
            xc, xm, xn = self.unit_cpu[x], self.unit_mem[x], self.unit_cnt[x]
            if (
                t_cpu - xc <= cap_t[0]
                and t_mem - xm <= cap_t[1]
                and t_cnt - xn <= cap_t[2]
                and s_cpu + xc <= cap_s[0]
                and s_mem + xm <= cap_s[1]
                and s_cnt + xn <= cap_s[2]
            ):
                candidates.append(x)
        if not candidates:
            return False
        self.move(u, target)
        best: tuple[float, int] | None = None
        for x in candidates:
            total = first + self.gain(x, source)
            if total > _EPS and (best is None or total > best[0] + _EPS):
                best = (total, x)
        if best is None:
            self.move(u, source)
            return False
        self.move(best[1], source)
        return True

    # ------------------------------------------------------------------ balance

    def balance(self) -> None:
        """Move whole components (no traffic leaves them) from loaded hosts to light ones."""
        components = self._components()
        on_host: list[list[int]] = [[] for _ in range(self.nhosts)]
        for c, units in enumerate(components):
            hosts = {self.host_of[u] for u in units}
            if len(hosts) == 1 and all(self.unit_pin[u] < 0 for u in units):
                host = self.host_of[units[0]]
                if host >= 0:
                    on_host[host].append(c)
        demand = [
            (
                sum(self.unit_cpu[u] for u in units),
                sum(self.unit_mem[u] for u in units),
                sum(self.unit_cnt[u] for u in units),
                sum(self.size(u) for u in units),
            )
            for units in components
        ]
        for _ in range(4 * self.nhosts + 4 * len(components)):
            if not self._balance_step(components, on_host, demand):
                break

    def _components(self) -> list[list[int]]:
        parent = list(range(len(self.units)))

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for edge in self.p.edges:
            if len(edge) < 2:
                continue
            first = find(self.unit_of[edge[0][0]])
            for v, _ in edge[1:]:
                other = find(self.unit_of[v])
                if other != first:
                    parent[max(first, other)] = min(first, other)
                    first = min(first, other)
        by_root: dict[int, list[int]] = {}
        for u in range(len(self.units)):
            by_root.setdefault(find(u), []).append(u)
        return [units for _, units in sorted(by_root.items())]

    def _balance_step(
        self,
        components: list[list[int]],
        on_host: list[list[int]],
        demand: list[tuple[int, int, int, float]],
    ) -> bool:
        loads = [self.load(h) for h in range(self.nhosts)]
        light_order = sorted(range(self.nhosts), key=lambda h: (loads[h], h))
        for heavy in sorted(range(self.nhosts), key=lambda h: (-loads[h], h)):
            movable = sorted(on_host[heavy], key=lambda c: (-demand[c][3], c))
            tried: set[tuple[int, int, int]] = set()
            for c in movable:
                cpu, mem, cnt, _ = demand[c]
                if (cpu, mem, cnt) in tried:
                    continue
                tried.add((cpu, mem, cnt))
                for light in light_order:
                    if loads[light] >= loads[heavy] - _EPS:
                        break
                    if not self.fits_total(light, cpu, mem, cnt):
                        continue
                    for u in components[c]:
                        self.move(u, light)
                    if max(self.load(heavy), self.load(light)) < loads[heavy] - _EPS:
                        on_host[heavy].remove(c)
                        on_host[light].append(c)
                        return True
                    for u in components[c]:
                        self.move(u, heavy)
                    break
        return False


def _coarsen(
    p: PlacementProblem, engine: _Engine, units: list[list[int]], cap: float, variant: int
) -> list[list[int]]:
    """One level of heavy-edge matching: each free unit, in the variant's order, is matched with
    the unmatched neighbour it exchanges most with, while the pair stays within ``cap``
    (in average hosts).  Pinned units stay alone.  Over a hyperedge of more than
    ``2 * _WINDOW`` members only the members nearest in index are looked at: their pair
    weights are tiny and all alike."""
    unit_of = [0] * len(p.vm_cpus)
    for u, vms in enumerate(units):
        for v in vms:
            unit_of[v] = u
    pinned = [any(p.pinned[v] >= 0 for v in vms) for vms in units]
    size = [
        max(
            sum(p.vm_cpus[v] for v in vms) / engine.avg_cap[0],
            sum(p.vm_memory[v] for v in vms) / engine.avg_cap[1],
            len(vms) / engine.avg_cap[2],
        )
        for vms in units
    ]
    members: list[list[tuple[int, int]]] = []
    incidence: list[list[tuple[int, int, int]]] = [[] for _ in units]  # (edge, weight, pos)
    for e, edge in enumerate(p.edges):
        by_unit: dict[int, int] = {}
        for v, w in edge:
            by_unit[unit_of[v]] = by_unit.get(unit_of[v], 0) + w
        row = sorted(by_unit.items())
        members.append(row)
        if not engine.divisor[e]:
            continue
        for pos, (u, w) in enumerate(row):
            incidence[u].append((e, w, pos))
    mate = [-1] * len(units)
    clusters: list[list[int]] = []
    for u in _order(len(units), variant):
        if mate[u] >= 0:
            continue
        best, best_conn = -1, 0.0
        if not pinned[u]:
            conn: dict[int, float] = {}
            for e, w, pos in incidence[u]:
                row = members[e]
                if len(row) > 2 * _WINDOW:
                    row = row[max(pos - _WINDOW, 0) : pos + _WINDOW + 1]
                d = engine.divisor[e]
                for x, wx in row:
                    if x != u and mate[x] < 0 and not pinned[x]:
                        conn[x] = conn.get(x, 0.0) + w * wx / d
            for x in sorted(conn):
                if size[x] + size[u] <= cap and conn[x] > best_conn + _EPS:
                    best, best_conn = x, conn[x]
        if best < 0:
            mate[u] = u
            clusters.append([u])
        else:
            mate[u], mate[best] = best, u
            clusters.append([u, best])
    coarse = [sorted(v for u in cluster for v in units[u]) for cluster in clusters]
    coarse.sort(key=lambda vms: vms[0])
    return coarse


def _order(count: int, variant: int) -> list[int]:
    """Index order for variant 0, a fixed shuffle (seeded by the variant) for the others."""
    order = list(range(count))
    if variant:
        random.Random(variant).shuffle(order)
    return order


def tries_for(vm_count: int) -> int:
    """How many variants to run: many for small problems, one at the benchmark's scale."""
    return max(1, min(_MAX_TRIES, _TRY_BUDGET // max(vm_count, 1)))


def _run(problem: PlacementProblem, variant: int) -> _Engine:
    levels = [base_units(problem)]
    engine = _Engine(problem, levels[0])
    rooms = sorted(engine.room(h) for h in range(engine.nhosts))
    cap = _CAP_FRACTION * rooms[len(rooms) // 2] if rooms else 0.0
    target = max(_COARSEST_PER_HOST * engine.nhosts, _COARSEST_MIN)
    while len(levels[-1]) > target:
        coarser = _coarsen(problem, engine, levels[-1], cap, variant)
        if len(coarser) > _MIN_REDUCTION * len(levels[-1]):
            break
        levels.append(coarser)
    engine = _Engine(problem, levels[-1])
    engine.initial(variant)
    engine.refine()
    for units in reversed(levels[:-1]):
        hosts = engine.vm_hosts()
        engine = _Engine(problem, units)
        engine.assign(hosts)
        engine.place_leftovers()
        engine.refine()
    engine.balance()
    return engine


def place(problem: PlacementProblem, tries: int | None = None) -> PlacementResult:
    """Place every VM; the ones that fit nowhere are listed in ``unplaced``.

    Runs ``tries`` variants (default :func:`tries_for`) that differ in the order units are
    visited, and keeps the one that places the most VMs, then has the smallest cut, then
    the lowest maximum load, then comes first.
    """
    best: tuple[tuple[int, float, float, int], list[int]] | None = None
    for variant in range(tries if tries is not None else tries_for(len(problem.vm_cpus))):
        engine = _run(problem, variant)
        hosts = engine.vm_hosts()
        load = max((engine.load(h) for h in range(engine.nhosts)), default=0.0)
        key = (
            sum(1 for h in hosts if h < 0),
            round(cut_value(problem, hosts), 3),
            round(load, 9),
            variant,
        )
        if best is None or key < best[0]:
            best = (key, hosts)
    host_of = tuple(best[1]) if best is not None else ()
    unplaced = tuple(v for v in range(len(host_of)) if host_of[v] < 0)
    return PlacementResult(host_of, unplaced)


def cut_value(problem: PlacementProblem, host_of: tuple[int, ...] | list[int]) -> float:
    """The objective: the expected traffic between hosts (see :mod:`~.demand`)."""
    total = 0.0
    for edge in problem.edges:
        weight = sum(w for _, w in edge)
        count = len(edge)
        if count < 2 or weight <= 0:
            continue
        sums: dict[int, int] = {}
        for v, w in edge:
            sums[host_of[v]] = sums.get(host_of[v], 0) + w
        divisor = weight * (count - 1) / count
        total += (weight * weight - sum(s * s for s in sums.values())) / (2 * divisor)
    return total
