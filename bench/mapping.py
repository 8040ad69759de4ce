"""Benchmark of the mapping stage against METIS (a benchmark, not a test).

Synthetic testbeds of 100 to 10,000 VMs on 4 to 100 hosts: VMs grouped in sites (one
network each, 4 to 40 VMs, shaped at 10 or 100 Mbit/s or unshaped), the first VM of each
site a gateway on its region's backbone (about ten sites a region), region gateways on a
core network, and shaped pairs between VMs of one region.  Every host takes at most
``ceil(1.03 * VMs / hosts)`` VMs; METIS gets the same bound (``ufactor=30``) and the clique
expansion of the same demand (``netmanager.mapping.demand``), so both cuts are measured
with one yardstick: the expected traffic between hosts.

Prints one row per size: time of ``map_model`` (placement, routing, segments) and of the
placement alone, cut and balance (largest host / average) of netmanager and METIS, then
as its last line ``ratio: <netmanager cut / METIS cut> time: <seconds at 10k VMs>``.

    .venv/bin/pip install pymetis   # bench-only dependency
    .venv/bin/python bench/mapping.py [--quick]
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import random
import sys
import time
from dataclasses import dataclass

from netmanager.errors import Loc
from netmanager.inputs.model import (
    VM,
    Encap,
    Endpoint,
    Host,
    HypervisorKind,
    IdRange,
    Interface,
    Model,
    Network,
    NetworkNode,
    NodeKind,
    PairShaping,
    PhysicalLink,
    Real,
    Shaping,
    Site,
    Virtual,
)
from netmanager.mapping import map_model
from netmanager.mapping.demand import build_demand
from netmanager.mapping.placement import PlacementProblem, cut_value, place

SIZES = ((100, 4), (1000, 16), (5000, 50), (10_000, 100))
IMBALANCE = 1.03
LOC = Loc("bench")


def synthetic(vms: int, hosts: int, seed: int = 1) -> Model:
    """A testbed of sites, regional backbones, a core and shaped pairs (see module doc)."""
    rng = random.Random(seed)
    names = [f"vm{i:05d}" for i in range(vms)]
    interfaces: dict[str, list[tuple[str, int]]] = {name: [] for name in names}
    networks: list[Network] = []
    site_members: list[list[str]] = []
    start = 0
    while start < vms:
        size = min(rng.randint(4, 40), vms - start)
        site_members.append(names[start : start + size])
        start += size
    address = 0

    def add_network(name: str, members: list[str], rate: int | None) -> None:
        nonlocal address
        shaping = Shaping(rate_bps=rate) if rate else None
        cidr = ipaddress.IPv4Network((0x0A000000 + (address << 8), 24))
        address += 1
        networks.append(Network(name, cidr, encap=Encap.VXLAN, shaping=shaping, loc=LOC))
        for index, vm in enumerate(members):
            interfaces[vm].append((name, int(cidr.network_address) + index + 1))

    for index, members in enumerate(site_members):
        add_network(f"site{index:04d}", members, rng.choice((None, 10**7, 10**8)))
    regions = [site_members[i : i + 10] for i in range(0, len(site_members), 10)]
    for index, region in enumerate(regions):
        add_network(f"region{index:03d}", [site[0] for site in region], 10**8)
    add_network("core", [region[0][0] for region in regions], 10**9)
    pairs = []
    region_vms = [[vm for site in region for vm in site] for region in regions]
    seen: set[tuple[str, str]] = set()
    for _ in range(vms // 50):
        region = rng.choice(region_vms)
        a, b = sorted(rng.sample(region, 2))
        if (a, b) not in seen:
            seen.add((a, b))
            pairs.append(PairShaping(a, b, None, Shaping(rate_bps=5 * 10**7), loc=LOC))
    vm_objects = tuple(
        VM(
            name,
            interfaces=tuple(
                Interface(net, ipaddress.IPv4Interface((ip, 24)), loc=LOC)
                for net, ip in interfaces[name]
            ),
            loc=LOC,
        )
        for name in names
    )
    virtual = Virtual("bench", "bench", tuple(networks), vm_objects, tuple(pairs))
    per_host = math.ceil(IMBALANCE * vms / hosts)
    host_objects = tuple(
        Host(
            f"h{i:03d}",
            "dc",
            HypervisorKind.LIBVIRT,
            cpus=10**6,
            memory_mib=10**9,
            max_vms=per_host,
            loc=LOC,
        )
        for i in range(hosts)
    )
    links = tuple(
        PhysicalLink(Endpoint(h.name, "eth0"), Endpoint("sw"), 10**13, 5, loc=LOC)
        for h in host_objects
    )
    real = Real(
        "bench",
        sites=(Site("dc", (IdRange(2, 4094),), (IdRange(1, 16_000_000),)),),
        hosts=host_objects,
        nodes=(NetworkNode("sw", NodeKind.SWITCH),),
        links=links,
    )
    return Model(real, virtual)


def placement_problem(model: Model) -> PlacementProblem:
    demand = build_demand(model.virtual)
    index = {name: i for i, name in enumerate(demand.vms)}
    hosts = sorted(model.real.hosts, key=lambda h: h.name)
    count = len(demand.vms)
    return PlacementProblem(
        vm_cpus=(1,) * count,
        vm_memory=(256,) * count,
        pinned=(-1,) * count,
        host_cpus=tuple(h.cpus for h in hosts),
        host_memory=tuple(h.vm_memory_mib for h in hosts),
        host_vms=tuple(h.max_vms or 10**12 for h in hosts),
        used_cpus=(0,) * len(hosts),
        used_memory=(0,) * len(hosts),
        used_vms=(0,) * len(hosts),
        edges=tuple(tuple((index[m.vm], m.weight_bps) for m in e.members) for e in demand.edges),
    )


def metis_partition(problem: PlacementProblem, parts: int) -> list[int]:
    """METIS k-way on the clique expansion, weights in kbit/s, 3% imbalance."""
    import pymetis

    count = len(problem.vm_cpus)
    adjacency: list[dict[int, float]] = [{} for _ in range(count)]
    for edge in problem.edges:
        total = sum(w for _, w in edge)
        size = len(edge)
        if size < 2 or total <= 0:
            continue
        divisor = total * (size - 1) / size
        for i, (a, wa) in enumerate(edge):
            for b, wb in edge[i + 1 :]:
                weight = wa * wb / divisor
                adjacency[a][b] = adjacency[a].get(b, 0.0) + weight
                adjacency[b][a] = adjacency[b].get(a, 0.0) + weight
    xadj, adjncy, eweights = [0], [], []
    for row in adjacency:
        for b in sorted(row):
            adjncy.append(b)
            eweights.append(max(1, round(row[b] / 1000)))
        xadj.append(len(adjncy))
    options = pymetis.Options(ufactor=round((IMBALANCE - 1) * 1000), seed=1)
    if hasattr(pymetis, "CSRAdjacency"):
        _, membership = pymetis.part_graph(
            parts, pymetis.CSRAdjacency(xadj, adjncy), eweights=eweights, options=options
        )
    else:  # pymetis before 2025.2
        _, membership = pymetis.part_graph(
            parts, xadj=xadj, adjncy=adjncy, eweights=eweights, options=options
        )
    return list(membership)


def balance(host_of: list[int] | tuple[int, ...], parts: int) -> float:
    counts = [0] * parts
    for h in host_of:
        counts[h] += 1
    return max(counts) / (len(host_of) / parts)


@dataclass
class Row:
    vms: int
    hosts: int
    map_seconds: float
    place_seconds: float
    cut: float
    balance: float
    metis_seconds: float
    metis_cut: float
    metis_balance: float


def run(vms: int, hosts: int) -> Row:
    model = synthetic(vms, hosts)
    started = time.perf_counter()
    mapping = map_model(model)
    map_seconds = time.perf_counter() - started
    problem = placement_problem(model)
    started = time.perf_counter()
    result = place(problem)
    place_seconds = time.perf_counter() - started
    assert not result.unplaced
    host_names = sorted(h.name for h in model.real.hosts)
    vm_names = sorted(v.name for v in model.virtual.vms)
    assert [mapping.placement[v] for v in vm_names] == [host_names[h] for h in result.host_of]
    started = time.perf_counter()
    membership = metis_partition(problem, hosts)
    metis_seconds = time.perf_counter() - started
    return Row(
        vms,
        hosts,
        map_seconds,
        place_seconds,
        cut_value(problem, result.host_of),
        balance(result.host_of, hosts),
        metis_seconds,
        cut_value(problem, membership),
        balance(membership, hosts),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the two smallest sizes")
    args = parser.parse_args()
    try:
        import pymetis  # noqa: F401
    except ImportError:
        print(
            "bench/mapping.py needs pymetis (a bench-only dependency): "
            ".venv/bin/pip install pymetis",
            file=sys.stderr,
        )
        return 2
    sizes = SIZES[:2] if args.quick else SIZES
    print(
        f"{'VMs':>6} {'hosts':>5} | {'map s':>6} {'place s':>7} {'cut Mbit':>10} {'bal':>5} | "
        f"{'METIS s':>7} {'cut Mbit':>10} {'bal':>5} | {'ratio':>5}"
    )
    rows = []
    for vms, hosts in sizes:
        row = run(vms, hosts)
        rows.append(row)
        ratio = row.cut / row.metis_cut if row.metis_cut else float("inf")
        print(
            f"{row.vms:>6} {row.hosts:>5} | {row.map_seconds:>6.2f} {row.place_seconds:>7.2f} "
            f"{row.cut / 1e6:>10.1f} {row.balance:>5.2f} | {row.metis_seconds:>7.2f} "
            f"{row.metis_cut / 1e6:>10.1f} {row.metis_balance:>5.2f} | {ratio:>5.2f}",
            flush=True,
        )
    last = rows[-1]
    ratio = last.cut / last.metis_cut if last.metis_cut else float("inf")
    print(f"ratio: {ratio:.3f} time: {last.map_seconds:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
