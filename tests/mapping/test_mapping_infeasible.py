"""Infeasible mappings: every binding constraint gives its named reason (golden text)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from mapping_helpers import MBIT, aef_grid, golden, host, real, site, virtual

from netmanager.errors import ExitCode, InfeasibleError
from netmanager.inputs.model import Encap, Model
from netmanager.mapping import HostUsage, Occupied, map_model
from netmanager.output import diagnostics_text


def failure(model: Model, **kwargs: object) -> InfeasibleError:
    with pytest.raises(InfeasibleError) as info:
        map_model(model, **kwargs)  # type: ignore[arg-type]
    assert info.value.exit_code is ExitCode.INFEASIBLE
    assert info.value.phase == "mapping"
    return info.value


def check(name: str, error: InfeasibleError, codes: list[str]) -> None:
    assert [d.code for d in error.errors] == codes
    golden(f"infeasible_{name}.txt", diagnostics_text(error.diagnostics) + "\n")


def aef_on_three_hosts() -> Model:
    model = aef_grid(pinned=False)
    return replace(
        model, real=replace(model.real, hosts=model.real.hosts[:3], links=model.real.links[:3])
    )


def test_vm_larger_than_every_host() -> None:
    model = Model(
        real([host("h1", cpus=4, memory_mib=4096), host("h2", cpus=8, memory_mib=2048)]),
        virtual(["lan"], [("big", ["lan"], 8, 4096), ("small", ["lan"])]),
    )
    error = failure(model)
    check("vm_too_big", error, ["E601"])
    assert "VM 'big' needs 8 cpus, 4GiB; no host can take it" in error.errors[0].message


def test_topology_larger_than_the_hosts() -> None:
    error = failure(aef_on_three_hosts())
    check("aef_three_hosts", error, ["E601", "E601"])
    assert error.errors[0].message.startswith(
        "topology 'aef-grid' needs 32 cpus, 8GiB, 32 VMs; the hosts have 24 cpus, 6.539GiB, "
        "24 VMs free: not enough VM slots (max-vms) and cpus and memory"
    )
    assert error.errors[1].message.endswith(
        "(never: it does not fit even with no other topology applied)"
    )


def test_not_now_when_other_topologies_hold_the_room() -> None:
    occupied = Occupied(hosts={"host4": HostUsage(cpus=4, memory_mib=1024, vms=4)})
    error = failure(aef_grid(pinned=False), occupied=occupied)
    check("aef_not_now", error, ["E601", "E601"])
    assert all("(not now: " in e.message for e in error.errors)


def test_pinned_vms_overflow_their_host() -> None:
    model = aef_grid()
    crowded = replace(model.real.hosts[0], max_vms=7, memory_mib=2048, reserved_memory_mib=0)
    model = replace(model, real=replace(model.real, hosts=(crowded, *model.real.hosts[1:])))
    check("pinned_overflow", failure(model), ["E605"])


def test_pinned_not_now() -> None:
    occupied = Occupied(hosts={"host1": HostUsage(cpus=1, memory_mib=256, vms=1)})
    error = failure(aef_grid(), occupied=occupied)
    check("pinned_not_now", error, ["E605"])


def peers_pair(rate_bps: int | None, delay_us: int | None = None) -> Model:
    model = aef_grid()
    pair = virtual(["x"], [], pairs=[("vmgridpeer1", "vmgridpeer2", rate_bps, delay_us)]).pairs
    return replace(model, virtual=replace(model.virtual, pairs=pair))


def test_pair_needs_more_bandwidth_than_the_path_has() -> None:
    error = failure(peers_pair(800 * MBIT))
    check("pair_bandwidth_never", error, ["E602"])
    assert error.errors[0].message.startswith(
        # 800Mbit of VM frames take 827.322Mbit inside VXLAN; the backbone holds 1.034Mbit
        "pair vmgridpeer1--vmgridpeer2 (host3 to host1) needs 827.322Mbit; "
        "best path host3–sw1–host1 has 98.966Mbit free"
    )


def test_pair_bandwidth_not_now() -> None:
    model = peers_pair(80 * MBIT)
    occupied = Occupied(links={"host3:eth0--sw1": 40 * MBIT})
    error = failure(model, occupied=occupied)
    check("pair_bandwidth_not_now", error, ["E602"])
    assert "has 58.966Mbit free (not now" in error.errors[0].message


def test_pair_latency_below_the_physical_path() -> None:
    # the pins keep the peers on host3 and host1, 100us apart
    error = failure(peers_pair(None, 60))
    check("pair_latency", error, ["E603"])


def test_interface_latency_below_the_physical_path() -> None:
    model = aef_grid()
    backbone = replace(
        model.virtual.networks[3], shaping=replace(model.virtual.networks[3].shaping, delay_us=80)
    )
    networks = (*model.virtual.networks[:3], backbone)
    model = replace(model, virtual=replace(model.virtual, networks=networks))
    check("interface_latency", failure(model), ["E603", "E603", "E603"])


def test_network_bandwidth_over_link_capacity() -> None:
    hosts = [host("h1", pinned=["a", "b"]), host("h2", pinned=["c", "d"])]
    model = Model(
        real(hosts, capacity_bps=100 * MBIT),
        virtual([("lan", 60 * MBIT)], [(n, ["lan"]) for n in "abcd"]),
    )
    check("network_bandwidth", failure(model), ["E602"])


def test_segment_ranges_without_common_id() -> None:
    r = real(
        [host("h1", site_name="brno", pinned=["a"]), host("h2", site_name="praha", pinned=["b"])],
        sites=[site("brno", [(100, 199)], []), site("praha", [(200, 299)], [])],
    )
    v = virtual(["lan"], [("a", ["lan"]), ("b", ["lan"])], encap=Encap.VLAN)
    check("segments_disjoint", failure(Model(r, v)), ["E604"])


def test_all_problems_at_once() -> None:
    hosts = [host("h1", pinned=["a", "b"]), host("h2", pinned=["c"])]
    model = Model(
        real(hosts, capacity_bps=10 * MBIT, sites=[site("lab", [], [])]),
        virtual(
            [("lan", 20 * MBIT), ("wan", None, 10)],
            [("a", ["lan", "wan"]), ("b", ["lan"]), ("c", ["lan", "wan"])],
            pairs=[("a", "c", 50 * MBIT, None)],
        ),
    )
    check("many", failure(model), ["E602", "E604", "E604", "E603", "E603", "E602"])
