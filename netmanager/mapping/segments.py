"""Segment identifiers: a VLAN id or a VXLAN VNI for every virtual network (seed 003).

Rules
=====

* The sites of a network are the sites of the hosts its VMs are placed on (a network
  without VMs counts every site: it may be placed anywhere later).  A network on a single
  host still gets an id, since it may spread later.
* ``encap="vlan"`` takes a VLAN id, ``encap="vxlan"`` a VNI.  ``encap="auto"`` takes a VLAN
  id when every host it spans has the kernel feature ``8021q`` (and falls back to VXLAN
  when no VLAN id is left), else a VNI.  A host's features are the ``features`` argument
  of the mapper when it names the host, else its declared capabilities; unknown means
  "no 8021q".
* The id comes from the intersection of the ranges every spanned site allows, and never
  equals an id of the same kind held by another topology on a site this network spans
  (an allocation recorded without sites is taken to span every site), nor one of another
  network of the same topology.
* Stability: an id allocated earlier to the same network (``allocations``, as kept in
  ``segments.json``) is kept while it stays allowed and free, even when ``auto`` would now
  choose the other kind.  Networks keeping their ids are served first; new ones then take
  the lowest free id, in network name order.

``segments.json`` in the state directory holds ``{topology: {network: {"encap", "id",
"sites"}}}``; :func:`save_allocations` and :func:`release_allocations` are for apply and
destroy, ``netmanager map`` only reads it (:func:`load_allocations`).
"""

from __future__ import annotations

import collections.abc as cabc
from pathlib import Path
from typing import Any

from netmanager.inputs.model import Encap, IdRange, Real, Virtual
from netmanager.mapping.problems import E_ENCAP, E_SEGMENTS, Problem
from netmanager.mapping.result import Segment
from netmanager.statedir import locked, read_json, state_dir, write_json

SEGMENTS_FILE = "segments.json"
VLAN_FEATURE = "8021q"
VXLAN_FEATURE = "vxlan"

Allocations = cabc.Mapping[str, cabc.Mapping[str, cabc.Mapping[str, Any]]]
Features = cabc.Mapping[str, frozenset[str] | None]

Interval = tuple[int, int]


# ---------------------------------------------------------------------------- state file


def segments_path(directory: Path | None = None) -> Path:
    return (directory or state_dir()) / SEGMENTS_FILE


def load_allocations(directory: Path | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """Every topology's segments as kept in the state directory ({} when there are none)."""
    document = read_json(segments_path(directory), default={})
    if not isinstance(document, dict):
        return {}
    return {
        str(topology): {str(net): dict(entry) for net, entry in networks.items()}
        for topology, networks in document.items()
        if isinstance(networks, dict)
    }


def save_allocations(
    topology: str,
    segments: cabc.Mapping[str, Segment],
    directory: Path | None = None,
) -> None:
    """Record a topology's segments (replacing what it held), under the state lock."""
    with locked(directory) as where:
        document = load_allocations(where)
        document[topology] = {name: seg.as_json() for name, seg in sorted(segments.items())}
        write_json(segments_path(where), dict(sorted(document.items())))


def release_allocations(topology: str, directory: Path | None = None) -> None:
    """Give back every segment a topology holds (destroy)."""
    with locked(directory) as where:
        document = load_allocations(where)
        if document.pop(topology, None) is not None:
            write_json(segments_path(where), document)


# ---------------------------------------------------------------------------- ranges


def _intervals(ranges: cabc.Iterable[IdRange]) -> list[Interval]:
    merged: list[Interval] = []
    for first, last in sorted((r.first, r.last) for r in ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for first_a, last_a in a:
        for first_b, last_b in b:
            first, last = max(first_a, first_b), min(last_a, last_b)
            if first <= last:
                out.append((first, last))
    return sorted(out)


def ranges_text(intervals: list[Interval]) -> str:
    if not intervals:
        return "nothing"
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in intervals)


def _count(intervals: list[Interval]) -> int:
    return sum(b - a + 1 for a, b in intervals)


def _allowed(real: Real, sites: tuple[str, ...], encap: Encap) -> list[Interval]:
    result: list[Interval] | None = None
    for name in sites:
        site = real.site_by_name.get(name)
        ranges = (
            () if site is None else (site.vlan_ranges if encap is Encap.VLAN else site.vni_ranges)
        )
        own = _intervals(ranges)
        result = own if result is None else _intersect(result, own)
    return result or []


def _site_ranges(real: Real, sites: tuple[str, ...], encap: Encap) -> str:
    parts = []
    for name in sites:
        site = real.site_by_name.get(name)
        ranges = (
            () if site is None else (site.vlan_ranges if encap is Encap.VLAN else site.vni_ranges)
        )
        parts.append(f"{name} allows {ranges_text(_intervals(ranges))}")
    return "; ".join(parts)


# ---------------------------------------------------------------------------- allocation


def host_features(real: Real, features: Features | None) -> dict[str, frozenset[str] | None]:
    """Known kernel features per host: the argument first, then the declared capabilities."""
    result: dict[str, frozenset[str] | None] = {}
    for host in sorted(real.hosts, key=lambda h: h.name):
        if features is not None and host.name in features:
            result[host.name] = features[host.name]
        else:
            result[host.name] = host.capabilities
    return result


class _Taken:
    """Ids held by other topologies (with their sites) and by this one."""

    def __init__(self, topology: str, allocations: Allocations, all_sites: tuple[str, ...]):
        self.foreign: dict[tuple[Encap, int], list[frozenset[str]]] = {}
        for other in sorted(allocations):
            if other == topology:
                continue
            for entry in (allocations[other][n] for n in sorted(allocations[other])):
                try:
                    encap, ident = Encap(str(entry["encap"])), int(entry["id"])
                except (KeyError, ValueError, TypeError):
                    continue
                sites = entry.get("sites")
                span = frozenset(str(s) for s in sites) if sites else frozenset(all_sites)
                self.foreign.setdefault((encap, ident), []).append(span)
        self.own: set[tuple[Encap, int]] = set()

    def foreign_on(self, encap: Encap, ident: int, sites: tuple[str, ...]) -> bool:
        return any(span & set(sites) for span in self.foreign.get((encap, ident), []))

    def free(self, encap: Encap, ident: int, sites: tuple[str, ...]) -> bool:
        return (encap, ident) not in self.own and not self.foreign_on(encap, ident, sites)

    def lowest(self, encap: Encap, allowed: list[Interval], sites: tuple[str, ...]) -> int | None:
        for first, last in allowed:
            ident = first
            while ident <= last:
                if self.free(encap, ident, sites):
                    return ident
                ident += 1
        return None


def allocate_segments(
    real: Real,
    virtual: Virtual,
    spans: cabc.Mapping[str, tuple[str, ...]],
    features: Features | None = None,
    allocations: Allocations | None = None,
) -> tuple[dict[str, Segment], list[Problem]]:
    """A segment for every network of ``virtual``; ``spans`` gives the hosts of each network."""
    allocations = allocations or {}
    known = host_features(real, features)
    all_sites = tuple(sorted(s.name for s in real.sites))
    taken = _Taken(virtual.topology, allocations, all_sites)
    previous = allocations.get(virtual.topology, {})
    problems: list[Problem] = []
    plans: dict[str, tuple[Encap, tuple[str, ...], tuple[str, ...]]] = {}
    for network in sorted(virtual.networks, key=lambda n: n.name):
        hosts = tuple(spans.get(network.name, ()))
        sites = tuple(sorted({real.host_by_name[h].site for h in hosts})) or all_sites
        vlan_capable = bool(hosts) and all(
            VLAN_FEATURE in (known.get(h) or frozenset()) for h in hosts
        )
        if network.encap is Encap.AUTO:
            encap = Encap.VLAN if vlan_capable else Encap.VXLAN
        else:
            encap = network.encap
        problem = _encap_problem(network.name, network.loc, network.encap, encap, hosts, known)
        if problem is not None:
            problems.append(problem)
            continue
        plans[network.name] = (encap, sites, hosts)

    segments: dict[str, Segment] = {}
    for name, (encap, sites, _) in plans.items():  # keep what each network held
        entry = previous.get(name)
        if entry is None:
            continue
        try:
            old_encap, old_id = Encap(str(entry["encap"])), int(entry["id"])
        except (KeyError, ValueError, TypeError):
            continue
        network = virtual.network_by_name[name]
        if old_encap is not encap:
            auto_keeps = (
                network.encap is Encap.AUTO
                and old_encap is Encap.VXLAN
                and _encap_problem(
                    name, network.loc, Encap.AUTO, Encap.VXLAN, plans[name][2], known
                )
                is None
            )
            if not auto_keeps:
                continue
        if not any(a <= old_id <= b for a, b in _allowed(real, sites, old_encap)):
            continue
        if not taken.free(old_encap, old_id, sites):
            continue
        taken.own.add((old_encap, old_id))
        segments[name] = Segment(name, old_encap, old_id, sites)

    for name, (encap, sites, _) in plans.items():  # then the new ones, lowest id first
        if name in segments:
            continue
        network = virtual.network_by_name[name]
        ident = taken.lowest(encap, _allowed(real, sites, encap), sites)
        if ident is None and network.encap is Encap.AUTO and encap is Encap.VLAN:
            fallback = taken.lowest(Encap.VXLAN, _allowed(real, sites, Encap.VXLAN), sites)
            if fallback is not None:
                encap, ident = Encap.VXLAN, fallback
        if ident is None:
            problems.append(_exhausted(real, virtual, name, encap, sites, taken))
            continue
        taken.own.add((encap, ident))
        segments[name] = Segment(name, encap, ident, sites)
    return dict(sorted(segments.items())), problems


def _encap_problem(
    network: str,
    loc: Any,
    asked: Encap,
    encap: Encap,
    hosts: tuple[str, ...],
    known: dict[str, frozenset[str] | None],
) -> Problem | None:
    feature = VLAN_FEATURE if encap is Encap.VLAN else VXLAN_FEATURE
    lacking = [h for h in hosts if known.get(h) is not None and feature not in (known[h] or ())]
    if not lacking:
        return None
    how = f'encap="{asked.value}"' + (" chose vxlan" if asked is Encap.AUTO else "")
    return Problem(
        E_ENCAP,
        loc,
        f"encap:{network}",
        f"network '{network}' ({how}) spans {', '.join(lacking)}, whose kernel lacks '{feature}'",
        f"load the '{feature}' module on {', '.join(lacking)} or choose another encap",
    )


def _exhausted(
    real: Real, virtual: Virtual, name: str, encap: Encap, sites: tuple[str, ...], taken: _Taken
) -> Problem:
    kind = "VLAN id" if encap is Encap.VLAN else "VNI"
    allowed = _allowed(real, sites, encap)
    network = virtual.network_by_name[name]
    spanning = f"network '{name}' spanning site{'s' if len(sites) > 1 else ''} {', '.join(sites)}"
    element = "vlan-range" if encap is Encap.VLAN else "vni-range"
    if not allowed and len(sites) == 1:
        return Problem(
            E_SEGMENTS,
            network.loc,
            f"segment:{name}",
            f"no {kind} for {spanning}: the site has no {element}",
            f"add a {element} to site '{sites[0]}' in real.xml",
        )
    if not allowed:
        return Problem(
            E_SEGMENTS,
            network.loc,
            f"segment:{name}",
            f"no {kind} for {spanning}: the sites allow no common {kind} "
            f"({_site_ranges(real, sites, encap)})",
            f"add a common {element} to the sites in real.xml, or place the network's VMs on "
            "hosts of fewer sites",
        )
    foreign = (
        sum(1 for a, b in allowed for i in range(a, b + 1) if taken.foreign_on(encap, i, sites))
        if _count(allowed) <= 1 << 16
        else 0
    )
    own = sum(1 for e, i in taken.own if e is encap and any(a <= i <= b for a, b in allowed))
    return Problem(
        E_SEGMENTS,
        network.loc,
        f"segment:{name}",
        f"no {kind} left for {spanning}: they allow {ranges_text(allowed)} "
        f"({_count(allowed)} ids; {_site_ranges(real, sites, encap)}), "
        f"{foreign} held by other topologies, {own} by this one",
        "widen the sites' ranges in real.xml, or destroy a topology that holds ids there",
    )
