"""Golden outputs: the rendered table and the JSON document of a few mappings."""

from __future__ import annotations

from pathlib import Path

import pytest
from mapping_helpers import MBIT, aef_grid, golden, golden_json, host, link, real, site, virtual

from netmanager.inputs.model import Model
from netmanager.mapping import HostUsage, Occupied, map_model, render_table

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VLAN = frozenset({"8021q", "vxlan", "netem"})


def tight() -> Model:
    """Three unequal hosts filled to the last cpu, MiB and slot."""
    hosts = [
        host("small", cpus=2, memory_mib=1024, max_vms=2),
        host("mid", cpus=4, memory_mib=1536, reserved_mib=512),
        host("big", cpus=6, memory_mib=4096, max_vms=4),
    ]
    vms = [
        ("web1", [("front", 10 * MBIT)], 1, 256),
        ("web2", [("front", 10 * MBIT)], 1, 256),
        ("app1", [("front", 10 * MBIT), "back"], 2, 512),
        ("app2", [("front", 10 * MBIT), "back"], 2, 512),
        ("db1", ["back"], 2, 1024),
        ("db2", ["back"], 2, 1024),
        ("cache", ["back"], 2, 256),
    ]
    return Model(real(hosts), virtual(["front", "back"], vms, topology="tight"))


def wan() -> Model:
    """Two sites joined by a WAN router, a delayed pair and a delayed interface."""
    r = real(
        [
            host("brno1", site_name="brno", capabilities=VLAN, pinned=["head"]),
            host("brno2", site_name="brno", capabilities=VLAN),
            host("praha1", site_name="praha", capabilities=VLAN, pinned=["far"]),
        ],
        sites=[
            site("brno", [(100, 299)], [(20000, 29999)]),
            site("praha", [(200, 399)], [(20000, 29999)]),
        ],
        switches=("sw-brno", "sw-praha", "wan"),
        links=[
            link("brno1", "sw-brno", 1000 * MBIT, 10),
            link("brno2", "sw-brno", 1000 * MBIT, 10),
            link("praha1", "sw-praha", 1000 * MBIT, 10),
            link("sw-brno", "wan", 10_000 * MBIT, 100),
            link("sw-praha", "wan", 10_000 * MBIT, 2000),
        ],
    )
    v = virtual(
        ["cluster", ("storage", 200 * MBIT)],
        [
            ("head", ["cluster", "storage"], 2, 1024),
            *((f"node{i}", ["cluster", "storage"], 1, 512) for i in range(1, 5)),
            ("far", [("cluster", None, 5000), "storage"], 1, 512),
        ],
        topology="wan",
        pairs=[("head", "far", 100 * MBIT, 10_000), ("node1", "node2", None, 1000)],
    )
    return Model(r, v)


CASES = {
    "aef_pinned": lambda: map_model(aef_grid()),
    "aef_unpinned": lambda: map_model(aef_grid(pinned=False)),
    "aef_vlan": lambda: map_model(
        aef_grid(), features={h: VLAN for h in ("host1", "host2", "host3", "host4")}
    ),
    "tight": lambda: map_model(tight()),
    "wan": lambda: map_model(
        wan(),
        allocations={"other": {"x": {"encap": "vlan", "id": 200, "sites": ["praha"]}}},
        occupied=Occupied(
            hosts={"brno2": HostUsage(2, 2048, 2)}, links={"sw-praha--wan": 1000 * MBIT}
        ),
    ),
}
MODELS = {
    "aef_pinned": aef_grid,
    "aef_unpinned": lambda: aef_grid(pinned=False),
    "aef_vlan": aef_grid,
    "tight": tight,
    "wan": wan,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_table(case: str) -> None:
    golden(f"{case}.txt", render_table(MODELS[case](), CASES[case]()))


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_json(case: str) -> None:
    golden_json(f"{case}.json", CASES[case]().as_json())


def test_golden_aef_grid_example() -> None:
    loader = pytest.importorskip("netmanager.inputs.loader")
    model = loader.load(EXAMPLES / "aef-grid/real.xml", EXAMPLES / "aef-grid/virtual.xml")
    golden("aef_grid_example.txt", render_table(model, map_model(model)))


def test_tight_case_fills_every_host_within_capacity() -> None:
    mapping = CASES["tight"]()
    for load in mapping.hosts:
        cap = load.capacity
        assert load.usage.cpus <= cap.cpus and load.usage.memory_mib <= cap.memory_mib
        assert not cap.vms or load.usage.vms <= cap.vms
    assert sum(h.usage.cpus for h in mapping.hosts) == 12  # every cpu of the three hosts


def test_wan_case_budgets() -> None:
    mapping = CASES["wan"]()
    pairs = {p.name: p for p in mapping.pairs}
    assert pairs["far--head"].latency_us == 10 + 100 + 2000 + 10
    assert pairs["far--head"].netem_delay_us == 10_000 - 2120
    # 200 is held by another topology in praha, which both networks span
    assert (mapping.segments["cluster"].id, mapping.segments["storage"].id) == (201, 202)
