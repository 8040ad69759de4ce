"""Routing: paths, hose-model reservations, latency budgets."""

from __future__ import annotations

import pytest
from mapping_helpers import MBIT, host, link, real, virtual

from netmanager.errors import InfeasibleError
from netmanager.inputs.model import Model
from netmanager.mapping import HostUsage, Occupied, map_model
from netmanager.mapping.demand import EdgeKind, build_demand, virtual_graph
from netmanager.mapping.physical import min_host_latency, physical_graph
from netmanager.mapping.routing import on_wire


def two_paths_real(first_capacity: int = 1000 * MBIT, second_capacity: int = 1000 * MBIT):
    """h1 and h2 joined through sw1 (fast) and through sw2 (slower: 300us more)."""
    return real(
        [host("h1", pinned=["a"]), host("h2", pinned=["b"])],
        switches=("sw1", "sw2"),
        links=[
            link("h1", "sw1", first_capacity, 50),
            link("sw1", "h2", first_capacity, 50),
            link("h1", "sw2", second_capacity, 200),
            link("sw2", "h2", second_capacity, 200),
        ],
    )


def test_physical_graph_and_min_latency() -> None:
    r = two_paths_real()
    graph = physical_graph(r)
    assert sorted(graph.nodes) == ["h1", "h2", "sw1", "sw2"]
    assert graph.edges["h1", "sw1"]["capacity_bps"] == 1000 * MBIT
    assert min_host_latency(r, graph) == 100


def test_virtual_graph_is_linear_in_interfaces() -> None:
    v = virtual(["lan"], [("a", ["lan"]), ("b", ["lan"])], pairs=[("a", "b", MBIT, None)])
    graph = virtual_graph(build_demand(v))
    assert graph.nodes["network:lan"]["kind"] == "network"
    assert graph.edges["a", "b"]["kind"] == "pair"
    assert {e.kind for e in build_demand(v).edges} == {EdgeKind.NETWORK, EdgeKind.PAIR}


def test_pair_takes_fast_path_and_reports_netem_remainder() -> None:
    model = Model(
        two_paths_real(),
        virtual(["lan"], [("a", ["lan"]), ("b", ["lan"])], pairs=[("a", "b", 100 * MBIT, 20_000)]),
    )
    mapping = map_model(model)
    (pair,) = mapping.pairs
    assert pair.path == ("h1", "sw1", "h2")
    assert (pair.latency_us, pair.declared_us, pair.netem_delay_us) == (100, 20_000, 19_900)
    assert pair.rate_bps == 100 * MBIT
    assert pair.reserved_bps == on_wire(100 * MBIT)  # VM frames inside VXLAN


def test_pair_takes_least_loaded_path_when_the_fast_one_is_full() -> None:
    model = Model(
        two_paths_real(first_capacity=50 * MBIT),
        virtual(["lan"], [("a", ["lan"]), ("b", ["lan"])], pairs=[("a", "b", 100 * MBIT, None)]),
    )
    (pair,) = map_model(model).pairs
    assert pair.path == ("h1", "sw2", "h2") and pair.latency_us == 400


def test_hose_reservation_on_a_star() -> None:
    # 3 shaped members on h1 (30 Mbit), 1 on h2 (10 Mbit): at most 10 Mbit cross each way
    hosts = [host("h1", pinned=["a", "b", "c"]), host("h2", pinned=["d"])]
    vms = [(n, [("lan", 10 * MBIT)]) for n in "abcd"]
    mapping = map_model(Model(real(hosts), virtual(["lan"], vms)))
    (route,) = mapping.networks
    assert route.root == "h1"
    assert {r.link: r.reserved_bps for r in route.links} == {
        "h1:eth0--sw1": on_wire(10 * MBIT),
        "h2:eth0--sw1": on_wire(10 * MBIT),
    }


def test_unshaped_receiver_takes_everything_a_shaped_side_sends() -> None:
    hosts = [host("h1", pinned=["a", "b"]), host("h2", pinned=["c"])]
    vms = [("a", [("lan", 10 * MBIT)]), ("b", [("lan", 10 * MBIT)]), ("c", ["lan"])]
    mapping = map_model(Model(real(hosts), virtual(["lan"], vms)))
    assert {r.reserved_bps for r in mapping.networks[0].links} == {on_wire(20 * MBIT)}


def test_network_avoids_full_link() -> None:
    r = real(
        [host("h1", pinned=["a"]), host("h2", pinned=["b"])],
        switches=("sw1", "sw2"),
        links=[
            link("h1", "sw1", 10 * MBIT, 10),
            link("sw1", "h2", 10 * MBIT, 10),
            link("h1", "sw2", 1000 * MBIT, 100),
            link("sw2", "h2", 1000 * MBIT, 100),
        ],
    )
    v = virtual([("lan", 50 * MBIT)], [("a", ["lan"]), ("b", ["lan"])])
    (route,) = map_model(Model(r, v)).networks
    assert route.paths[0].path == ("h1", "sw2", "h2")


def test_interface_latency_budget_per_destination_host() -> None:
    hosts = [host("h1", pinned=["a", "b"]), host("h2", pinned=["c"])]
    vms = [("a", [("lan", None, 5000)]), ("b", ["lan"]), ("c", ["lan"])]
    mapping = map_model(Model(real(hosts), virtual(["lan"], vms)))
    budgets = {(d.vm, d.to_host): (d.latency_us, d.netem_delay_us) for d in mapping.delays}
    assert budgets == {("a", "h1"): (0, 5000), ("a", "h2"): (100, 4900)}


def test_hosts_do_not_forward() -> None:
    # h2 sits between h1 and h3, but hosts are not routers: no path from h1 to h3
    r = real(
        [host("h1", pinned=["a"]), host("h2"), host("h3", pinned=["b"])],
        switches=(),
        links=[link("h1", "h2"), link("h2", "h3")],
    )
    v = virtual(["lan"], [("a", ["lan"]), ("b", ["lan"])])
    with pytest.raises(InfeasibleError) as info:
        map_model(Model(r, v))
    assert [d.code for d in info.value.errors] == ["E602"]
    assert "no physical path joins h1 and h3" in info.value.errors[0].message


def test_links_report_reserved_and_capacity() -> None:
    hosts = [host("h1", pinned=["a"]), host("h2", pinned=["b"])]
    v = virtual([("lan", 10 * MBIT)], [("a", ["lan"]), ("b", ["lan"])])
    mapping = map_model(Model(real(hosts), v))
    assert [(li.link, li.reserved_bps, li.free_bps) for li in mapping.links] == [
        ("h1:eth0--sw1", on_wire(10 * MBIT), 1000 * MBIT - on_wire(10 * MBIT)),
        ("h2:eth0--sw1", on_wire(10 * MBIT), 1000 * MBIT - on_wire(10 * MBIT)),
    ]


def test_parallel_links_are_reported_and_not_used() -> None:
    hosts = [host("h1", pinned=["a"]), host("h2", pinned=["b"])]
    r = real(hosts, links=[link("h1", "sw1"), link("h2", "sw1"), link("h2", "sw1", 10 * MBIT)])
    mapping = map_model(Model(r, virtual(["lan"], [("a", ["lan"]), ("b", ["lan"])])))
    assert [(w.code, w.loc.line) for w in mapping.warnings] == [("W601", r.links[2].loc.line)]


def test_occupied_of_applied_mappings_adds_up() -> None:
    hosts = [host("h1", pinned=["a"]), host("h2", pinned=["b"])]
    model = Model(real(hosts), virtual([("lan", 10 * MBIT)], [("a", ["lan"]), ("b", ["lan"])]))
    first = map_model(model)
    occupied = Occupied.of([first, first])
    assert occupied.host("h1") == HostUsage(cpus=2, memory_mib=512, vms=2)
    assert occupied.link("h1:eth0--sw1") == 2 * on_wire(10 * MBIT)
    assert Occupied.from_json(occupied.as_json()) == occupied
    again = map_model(model, occupied=occupied)
    assert {li.link: li.occupied_bps for li in again.links}["h2:eth0--sw1"] == 2 * on_wire(
        10 * MBIT
    )
