"""Segment ids: VLAN or VXLAN, intersections of site ranges, stability, other topologies."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from mapping_helpers import host, real, site, virtual

from netmanager.errors import InfeasibleError
from netmanager.inputs.model import Encap, Model
from netmanager.mapping import (
    load_allocations,
    map_model,
    release_allocations,
    save_allocations,
)
from netmanager.mapping.segments import allocate_segments, ranges_text

VLAN = frozenset({"8021q", "vxlan"})


def two_sites(**kwargs: object) -> Model:
    """h1 in brno (VLAN 100-299), h2 in praha (VLAN 200-399): a network on both gets 200+."""
    r = real(
        [host("h1", site_name="brno", pinned=["a"]), host("h2", site_name="praha", pinned=["b"])],
        sites=[
            site("brno", [(100, 299)], [(20000, 29999)]),
            site("praha", [(200, 399)], [(20000, 29999)]),
        ],
    )
    v = virtual(["lan", "local"], [("a", ["lan", "local"]), ("b", ["lan"])], **kwargs)  # type: ignore[arg-type]
    return Model(r, v)


def segments(mapping: object) -> dict[str, tuple[str, int]]:
    return {
        name: (seg.encap.value, seg.id)
        for name, seg in mapping.segments.items()  # type: ignore[attr-defined]
    }


def test_auto_is_vlan_when_every_spanned_host_has_8021q() -> None:
    mapping = map_model(two_sites(), features={"h1": VLAN, "h2": VLAN})
    assert segments(mapping) == {"lan": ("vlan", 200), "local": ("vlan", 100)}
    assert mapping.segments["lan"].sites == ("brno", "praha")


def test_auto_is_vxlan_when_a_host_lacks_or_does_not_know_8021q() -> None:
    assert segments(map_model(two_sites(), features={"h1": VLAN})) == {
        "lan": ("vxlan", 20000),
        "local": ("vlan", 100),
    }


def test_features_override_declared_capabilities() -> None:
    model = two_sites()
    hosts = tuple(replace(h, capabilities=VLAN) for h in model.real.hosts)
    declared = Model(replace(model.real, hosts=hosts), model.virtual)
    assert segments(map_model(declared))["lan"] == ("vlan", 200)
    assert segments(map_model(declared, features={"h2": frozenset({"vxlan"})}))["lan"] == (
        "vxlan",
        20000,
    )


def test_previous_ids_are_kept() -> None:
    previous = {
        "t": {
            "lan": {"encap": "vlan", "id": 250, "sites": ["brno", "praha"]},
            "local": {"encap": "vxlan", "id": 20007, "sites": ["brno"]},
        }
    }
    mapping = map_model(two_sites(), features={"h1": VLAN, "h2": VLAN}, allocations=previous)
    # auto keeps a VNI it had even though VLAN would be chosen now: ids are stable
    assert segments(mapping) == {"lan": ("vlan", 250), "local": ("vxlan", 20007)}
    assert (
        map_model(two_sites(), features={"h1": VLAN, "h2": VLAN}, allocations=previous).segments
        == mapping.segments
    )


def test_previous_id_outside_the_new_intersection_is_replaced() -> None:
    previous = {"t": {"lan": {"encap": "vlan", "id": 150, "sites": ["brno"]}}}
    mapping = map_model(two_sites(), features={"h1": VLAN, "h2": VLAN}, allocations=previous)
    assert segments(mapping)["lan"] == ("vlan", 200)


def test_other_topologies_on_overlapping_sites_are_avoided() -> None:
    others = {
        "other": {
            "x": {"encap": "vlan", "id": 200, "sites": ["praha"]},
            "y": {"encap": "vlan", "id": 100, "sites": ["praha"]},  # praha only: free in brno
        }
    }
    mapping = map_model(two_sites(), features={"h1": VLAN, "h2": VLAN}, allocations=others)
    assert segments(mapping) == {"lan": ("vlan", 201), "local": ("vlan", 100)}


def test_allocation_without_sites_blocks_every_site() -> None:
    others = {"old": {"x": {"encap": "vlan", "id": 100}}}
    mapping = map_model(two_sites(), features={"h1": VLAN, "h2": VLAN}, allocations=others)
    assert segments(mapping)["local"] == ("vlan", 101)


def test_network_on_one_host_still_gets_an_id() -> None:
    mapping = map_model(two_sites())
    assert mapping.network_hosts["local"] == ("h1",)
    assert segments(mapping)["local"] == ("vxlan", 20001)


def test_auto_falls_back_to_vxlan_when_vlan_ids_run_out() -> None:
    r = real([host("h1", pinned=["a", "b"])], sites=[site("lab", [(100, 100)], [(5000, 5009)])])
    v = virtual(["n1", "n2"], [("a", ["n1"]), ("b", ["n2"])])
    mapping = map_model(Model(r, v), features={"h1": VLAN})
    assert segments(mapping) == {"n1": ("vlan", 100), "n2": ("vxlan", 5000)}


def test_explicit_vlan_exhausted_names_sites_and_ranges() -> None:
    others = {
        "other": {f"n{i}": {"encap": "vlan", "id": i, "sites": ["brno"]} for i in range(200, 300)}
    }
    with pytest.raises(InfeasibleError) as info:
        map_model(
            two_sites(encap=Encap.VLAN), features={"h1": VLAN, "h2": VLAN}, allocations=others
        )
    (error,) = info.value.errors
    assert error.code == "E604"
    assert error.message == (
        "no VLAN id left for network 'lan' spanning sites brno, praha: they allow 200–299 "
        "(100 ids; brno allows 100–299; praha allows 200–399), 100 held by other topologies, "
        "0 by this one (not now: it would fit if no other topology were applied)"
    )


def test_explicit_vlan_on_a_host_without_8021q() -> None:
    with pytest.raises(InfeasibleError) as info:
        map_model(two_sites(encap=Encap.VLAN), features={"h1": VLAN, "h2": frozenset()})
    assert [(d.code, d.message) for d in info.value.errors] == [
        (
            "E606",
            "network 'lan' (encap=\"vlan\") spans h2, whose kernel lacks '8021q' "
            "(never: it does not fit even with no other topology applied)",
        )
    ]


def test_allocate_segments_directly() -> None:
    model = two_sites()
    segs, problems = allocate_segments(
        model.real,
        model.virtual,
        {"lan": ("h1", "h2"), "local": ("h1",)},
        features={"h1": VLAN, "h2": VLAN},
    )
    assert not problems
    assert [(s.network, s.encap, s.id) for s in segs.values()] == [
        ("lan", Encap.VLAN, 200),
        ("local", Encap.VLAN, 100),
    ]
    assert ranges_text([(1, 1), (3, 5)]) == "1, 3–5"


def test_state_file_round_trip(state_dir: Path) -> None:
    assert load_allocations() == {}
    mapping = map_model(two_sites(), features={"h1": VLAN, "h2": VLAN})
    save_allocations("t", mapping.segments)
    assert (state_dir / "segments.json").exists()
    kept = load_allocations()
    assert kept == {
        "t": {
            "lan": {"encap": "vlan", "id": 200, "sites": ["brno", "praha"]},
            "local": {"encap": "vlan", "id": 100, "sites": ["brno"]},
        }
    }
    # another topology on the same sites now steers clear of these ids
    other = two_sites(topology="u")
    assert segments(map_model(other, features={"h1": VLAN, "h2": VLAN}, allocations=kept)) == {
        "lan": ("vlan", 201),
        "local": ("vlan", 101),
    }
    release_allocations("t")
    assert load_allocations() == {}
    release_allocations("t")  # releasing twice is harmless
