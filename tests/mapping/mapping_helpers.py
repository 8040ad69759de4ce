"""Builders for mapping tests: models made directly from the dataclasses, with made-up but
stable source locations (so that golden diagnostics show ``real.xml:LINE:COL``)."""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

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
    PinnedVM,
    Real,
    Shaping,
    Site,
    Virtual,
)

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("NETMANAGER_REGEN") == "1"

MBIT = 10**6


class Lines:
    """Hands out increasing line numbers for one made-up file."""

    def __init__(self, file: str, start: int = 2) -> None:
        self.file = file
        self._next = itertools.count(start)

    def __call__(self, col: int = 3) -> Loc:
        return Loc(self.file, next(self._next), col)


def site(
    name: str = "lab",
    vlans: Sequence[tuple[int, int]] = ((100, 199),),
    vnis: Sequence[tuple[int, int]] = ((10100, 10199),),
) -> Site:
    return Site(
        name,
        tuple(IdRange(a, b) for a, b in vlans),
        tuple(IdRange(a, b) for a, b in vnis),
    )


def host(
    name: str,
    *,
    site_name: str = "lab",
    cpus: int = 8,
    memory_mib: int = 2048,
    reserved_mib: int = 0,
    max_vms: int | None = None,
    capabilities: Iterable[str] | None = None,
    pinned: Iterable[str] = (),
) -> Host:
    return Host(
        name,
        site_name,
        HypervisorKind.NETNS,
        cpus=cpus,
        memory_mib=memory_mib,
        reserved_memory_mib=reserved_mib,
        max_vms=max_vms,
        capabilities=None if capabilities is None else frozenset(capabilities),
        pinned=tuple(PinnedVM(vm) for vm in pinned),
    )


def link(a: str, b: str, capacity_bps: int = 1000 * MBIT, latency_us: int = 50) -> PhysicalLink:
    return PhysicalLink(
        Endpoint(a, "eth0" if not a.startswith("sw") else None),
        Endpoint(b, None),
        capacity_bps,
        latency_us,
    )


def real(
    hosts: Sequence[Host],
    *,
    sites: Sequence[Site] | None = None,
    switches: Sequence[str] = ("sw1",),
    links: Sequence[PhysicalLink] | None = None,
    capacity_bps: int = 1000 * MBIT,
    latency_us: int = 50,
) -> Real:
    """Hosts on one switch (a star) unless links are given; locations in real.xml."""
    lines = Lines("real.xml")
    site_list = list(sites) if sites is not None else [site()]
    site_list = [Site(s.name, s.vlan_ranges, s.vni_ranges, lines()) for s in site_list]
    placed_hosts = []
    for h in hosts:
        loc = lines()
        pins = tuple(PinnedVM(p.name, p.topology, lines(5)) for p in h.pinned)
        placed_hosts.append(
            Host(
                h.name,
                h.site,
                h.hypervisor,
                cpus=h.cpus,
                memory_mib=h.memory_mib,
                reserved_memory_mib=h.reserved_memory_mib,
                max_vms=h.max_vms,
                capabilities=h.capabilities,
                pinned=pins,
                loc=loc,
            )
        )
    nodes = tuple(
        NetworkNode(name, NodeKind.SWITCH, site_list[0].name, lines()) for name in switches
    )
    if links is None:
        links = [link(h.name, switches[0], capacity_bps, latency_us) for h in hosts]
    placed_links = tuple(
        PhysicalLink(li.a, li.b, li.capacity_bps, li.latency_us, lines()) for li in links
    )
    return Real(
        "real.xml",
        tuple(site_list),
        tuple(placed_hosts),
        nodes,
        placed_links,
        loc=Loc("real.xml", 1, 1),
    )


NetSpec = str | tuple[str, int | None] | tuple[str, int | None, int | None]


def virtual(
    networks: Sequence[NetSpec],
    vms: Sequence[tuple[str, Sequence[NetSpec]] | tuple[str, Sequence[NetSpec], int, int]],
    *,
    topology: str = "t",
    pairs: Sequence[tuple[str, str, int | None, int | None]] = (),
    encap: Encap = Encap.AUTO,
) -> Virtual:
    """Networks as ``name`` or ``(name, rate_bps[, delay_us])`` (network-wide shaping); VMs as
    ``(name, [network or (network, rate, delay)], cpus=1, memory_mib=256)``; pairs as
    ``(a, b, rate_bps, delay_us)``.  Locations in virtual.xml."""
    lines = Lines("virtual.xml")
    nets = []
    for index, spec in enumerate(networks):
        name, rate, delay = _spec(spec)
        loc = lines()
        shaping = Shaping(rate, delay, loc=lines(5)) if rate or delay is not None else None
        nets.append(
            Network(
                name,
                ipaddress.IPv4Network(f"10.{index}.0.0/16"),
                encap=encap,
                shaping=shaping,
                loc=loc,
            )
        )
    vm_objects = []
    for vm_index, entry in enumerate(vms):
        name, specs = entry[0], entry[1]
        cpus = entry[2] if len(entry) > 2 else 1  # type: ignore[misc]
        memory = entry[3] if len(entry) > 3 else 256  # type: ignore[misc]
        loc = lines()
        ifaces = []
        for spec in specs:
            net, rate, delay = _spec(spec)
            net_index = [n.name for n in nets].index(net)
            iface_loc = lines(5)
            shaping = Shaping(rate, delay, loc=iface_loc) if rate or delay is not None else None
            ip = ipaddress.IPv4Interface(
                f"10.{net_index}.{vm_index // 250}.{vm_index % 250 + 1}/16"
            )
            ifaces.append(Interface(net, ip, shaping=shaping, loc=iface_loc))
        vm_objects.append(VM(name, cpus=cpus, memory_mib=memory, interfaces=tuple(ifaces), loc=loc))
    pair_objects = tuple(
        PairShaping(a, b, None, Shaping(rate, delay), loc=lines()) for a, b, rate, delay in pairs
    )
    return Virtual(
        "virtual.xml",
        topology,
        tuple(nets),
        tuple(vm_objects),
        pair_objects,
        loc=Loc("virtual.xml", 1, 1),
    )


def _spec(spec: NetSpec) -> tuple[str, int | None, int | None]:
    if isinstance(spec, str):
        return spec, None, None
    if len(spec) == 2:
        return spec[0], spec[1], None
    return spec[0], spec[1], spec[2]  # type: ignore[misc]


# ---------------------------------------------------------------------------- aef-grid

TABLE_1 = {
    "host1": ["vmgrid108", "vmgrid109", *(f"vmgrid{i}" for i in range(201, 206)), "vmgridpeer2"],
    "host2": [*(f"vmgrid{i}" for i in range(206, 213)), "vmgrid308"],
    "host3": [*(f"vmgrid{i}" for i in range(101, 108)), "vmgridpeer1"],
    "host4": [*(f"vmgrid{i}" for i in range(301, 308)), "vmgridpeer3"],
}


def aef_grid(pinned: bool = True) -> Model:
    """Seed 002, Section 5: 4 Xen hosts (2.5 GB, dom0 328 MB, 8 VMs each) on one Fast
    Ethernet switch; three sites and a 1 Mbit/s backbone between the proxies."""
    hosts = [
        host(
            name,
            site_name="cluster",
            cpus=8,
            memory_mib=2560,
            reserved_mib=328,
            max_vms=8,
            pinned=vms if pinned else (),
        )
        for name, vms in TABLE_1.items()
    ]
    phys = real(hosts, sites=[site("cluster")], capacity_bps=100 * MBIT, latency_us=50)
    vms: list[tuple[str, Sequence[NetSpec]]] = []
    for number, size in ((1, 10), (2, 13), (3, 9)):
        vms.append((f"vmgridpeer{number}", [f"site{number}", "backbone"]))
        vms += [(f"vmgrid{number}{i:02d}", [f"site{number}"]) for i in range(1, size)]
    virt = virtual(["site1", "site2", "site3", ("backbone", MBIT)], vms, topology="aef-grid")
    return Model(phys, virt)


# ---------------------------------------------------------------------------- golden files


def golden(name: str, text: str) -> None:
    """Compare with tests/mapping/golden/NAME (rewritten when NETMANAGER_REGEN=1)."""
    path = GOLDEN / name
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"missing golden file {path}: run tests/mapping/regen_golden.py")
    assert text == path.read_text(encoding="utf-8"), (
        f"{name} differs from its golden file; if the change is intended, "
        "run tests/mapping/regen_golden.py and review the diff"
    )


def golden_json(name: str, document: Any) -> None:
    golden(name, json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
