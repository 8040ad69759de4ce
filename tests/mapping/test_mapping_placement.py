"""Placement: pinned, unpinned and capacity-tight cases, and the objective."""

from __future__ import annotations

from pathlib import Path

import pytest
from mapping_helpers import MBIT, TABLE_1, aef_grid, host, real, virtual

from netmanager.inputs.model import Model
from netmanager.mapping import map_model, vm_ranges
from netmanager.mapping.demand import build_demand
from netmanager.mapping.placement import PlacementProblem, cut_value, place

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def by_host(placement: dict[str, str] | object) -> dict[str, list[str]]:
    hosts: dict[str, list[str]] = {}
    assert isinstance(placement, dict)
    for vm, h in placement.items():
        hosts.setdefault(h, []).append(vm)
    return {h: sorted(vms) for h, vms in sorted(hosts.items())}


def test_aef_grid_pinned_maps_exactly_to_table_1() -> None:
    mapping = map_model(aef_grid())
    assert by_host(dict(mapping.placement)) == {h: sorted(vms) for h, vms in TABLE_1.items()}


def test_aef_grid_example_files_map_to_table_1() -> None:
    loader = pytest.importorskip("netmanager.inputs.loader")
    model = loader.load(EXAMPLES / "aef-grid/real.xml", EXAMPLES / "aef-grid/virtual.xml")
    mapping = map_model(model)
    assert by_host(dict(mapping.placement)) == {h: sorted(vms) for h, vms in TABLE_1.items()}
    assert vm_ranges(mapping.vms_on("host1")) == (
        "vmgrid108, vmgrid109, vmgrid201–vmgrid205, vmgridpeer2"
    )


def test_aef_grid_unpinned_fits_and_keeps_sites_together() -> None:
    mapping = map_model(aef_grid(pinned=False))
    assert sorted(len(vms) for vms in by_host(dict(mapping.placement)).values()) == [8, 8, 8, 8]
    # 32 VMs fill 4 × 8 slots: sites of 10, 13 and 9 must split, but no more than needed
    spans = mapping.network_hosts
    assert len(spans["site1"]) == 2 and len(spans["site2"]) == 2 and len(spans["site3"]) == 2
    pinned_cut = map_model(aef_grid()).cut_bps
    assert mapping.cut_bps < pinned_cut


def test_co_location_is_preferred_when_everything_fits() -> None:
    model = Model(
        real([host("h1"), host("h2"), host("h3")]),
        virtual(
            ["lan", ("wan", 10 * MBIT)],
            [("a", ["lan"]), ("b", ["lan", "wan"]), ("c", ["lan"]), ("d", ["wan"])],
        ),
    )
    mapping = map_model(model)
    assert len(set(mapping.placement.values())) == 1
    assert mapping.cut_bps == 0


def test_independent_networks_spread_for_balance() -> None:
    vms = [(f"{net}{i}", [net]) for net in ("a", "b", "c") for i in range(3)]
    model = Model(real([host("h1"), host("h2"), host("h3")]), virtual(["a", "b", "c"], vms))
    mapping = map_model(model)
    assert mapping.cut_bps == 0
    assert sorted(h.usage.vms for h in mapping.hosts) == [3, 3, 3]


def test_loners_are_balanced() -> None:
    model = Model(real([host("h1"), host("h2")]), virtual([], [(f"v{i}", []) for i in range(6)]))
    assert [h.usage.vms for h in map_model(model).hosts] == [3, 3]


def test_capacity_tight_memory_cpus_and_slots() -> None:
    hosts = [
        host("h1", cpus=4, memory_mib=1024, max_vms=10),  # 4 cpus bind
        host("h2", cpus=16, memory_mib=1024 + 256, reserved_mib=256, max_vms=10),  # memory
        host("h3", cpus=16, memory_mib=8192, max_vms=2),  # slots
    ]
    vms = [(f"v{i}", ["lan"], 1, 256) for i in range(10)]
    model = Model(real(hosts), virtual(["lan"], vms))
    mapping = map_model(model)
    usage = {h.host: h.usage for h in mapping.hosts}
    assert usage["h1"].cpus == 4 and usage["h2"].memory_mib == 1024 and usage["h3"].vms == 2


def test_heavy_pairs_stay_on_one_host() -> None:
    hosts = [host("h1", max_vms=2), host("h2", max_vms=2)]
    vms = [(name, ["lan"]) for name in ("a", "b", "c", "d")]
    model = Model(
        real(hosts),
        virtual(["lan"], vms, pairs=[("a", "c", 500 * MBIT, None), ("b", "d", 400 * MBIT, None)]),
    )
    placement = map_model(model).placement
    assert placement["a"] == placement["c"] and placement["b"] == placement["d"]
    assert placement["a"] != placement["b"]


def test_tight_latency_ties_vms_to_one_host() -> None:
    # 100us between hosts: a pair asking for 20us can only be served on one host
    hosts = [host("h1", max_vms=2), host("h2", max_vms=2)]
    vms = [(name, ["lan"]) for name in ("a", "b", "c", "d")]
    model = Model(
        real(hosts),
        virtual(["lan"], vms, pairs=[("a", "d", None, 20), ("b", "c", 900 * MBIT, None)]),
    )
    mapping = map_model(model)
    assert mapping.placement["a"] == mapping.placement["d"]
    (pair,) = [p for p in mapping.pairs if p.name == "a--d"]
    assert pair.latency_us == 0 and pair.netem_delay_us == 20


def _problem(model: Model) -> tuple[PlacementProblem, list[str]]:
    demand = build_demand(model.virtual)
    index = {n: i for i, n in enumerate(demand.vms)}
    hosts = sorted(model.real.hosts, key=lambda h: h.name)
    problem = PlacementProblem(
        vm_cpus=tuple(model.virtual.vm_by_name[n].cpus for n in demand.vms),
        vm_memory=tuple(model.virtual.vm_by_name[n].memory_mib for n in demand.vms),
        pinned=(-1,) * len(demand.vms),
        host_cpus=tuple(h.cpus for h in hosts),
        host_memory=tuple(h.vm_memory_mib for h in hosts),
        host_vms=tuple(h.max_vms or 10**12 for h in hosts),
        used_cpus=(0,) * len(hosts),
        used_memory=(0,) * len(hosts),
        used_vms=(0,) * len(hosts),
        edges=tuple(tuple((index[m.vm], m.weight_bps) for m in e.members) for e in demand.edges),
    )
    return problem, list(demand.vms)


def test_unpinned_aef_grid_is_optimal_or_close() -> None:
    """Every one of the 4^32 placements cannot be tried, but a placement that keeps each
    site on as few hosts as possible and the backbone on one host costs 6.11 Mbit."""
    problem, _ = _problem(aef_grid(pinned=False))
    result = place(problem)
    assert not result.unplaced
    assert cut_value(problem, result.host_of) <= 6.2 * MBIT


def test_more_tries_never_worse() -> None:
    problem, _ = _problem(aef_grid(pinned=False))
    one = cut_value(problem, place(problem, tries=1).host_of)
    eight = cut_value(problem, place(problem, tries=8).host_of)
    assert eight <= one
