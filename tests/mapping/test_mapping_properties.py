"""Properties over random small testbeds: capacities hold, results are deterministic and
independent of the order of the input documents."""

from __future__ import annotations

import os
import random
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mapping_helpers import MBIT, host, link, real, site, virtual

from netmanager.errors import InfeasibleError
from netmanager.inputs.model import Model, PinnedVM
from netmanager.mapping import HostUsage, Mapping, Occupied, map_model

SETTINGS = settings(
    max_examples=int(os.environ.get("NETMANAGER_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def random_testbeds(draw: st.DrawFn) -> tuple[Model, Occupied]:
    host_count = draw(st.integers(1, 5))
    hosts = []
    for i in range(host_count):
        hosts.append(
            host(
                f"h{i}",
                site_name=draw(st.sampled_from(["s1", "s2"])),
                cpus=draw(st.integers(1, 8)),
                memory_mib=draw(st.sampled_from([512, 1024, 2048])),
                reserved_mib=draw(st.sampled_from([0, 128])),
                max_vms=draw(st.one_of(st.none(), st.integers(1, 6))),
                capabilities=draw(st.sampled_from([None, ("8021q", "vxlan")])),
            )
        )
    switches = ("sw1", "sw2")
    links = [
        link(
            h.name,
            draw(st.sampled_from(switches)),
            draw(st.sampled_from([50 * MBIT, 100 * MBIT, 1000 * MBIT])),
            draw(st.integers(0, 100)),
        )
        for h in hosts
    ]
    links.append(link("sw1", "sw2", draw(st.sampled_from([100 * MBIT, 1000 * MBIT])), 10))
    net_count = draw(st.integers(1, 4))
    networks = [
        (f"n{i}", draw(st.sampled_from([None, MBIT, 10 * MBIT, 40 * MBIT])))
        for i in range(net_count)
    ]
    vm_count = draw(st.integers(1, 14))
    vms = []
    for i in range(vm_count):
        nets = draw(
            st.lists(st.sampled_from([n for n, _ in networks]), min_size=0, max_size=2, unique=True)
        )
        vms.append((f"v{i}", nets, draw(st.integers(1, 2)), draw(st.sampled_from([128, 256]))))
    pairs = []
    if vm_count >= 2:
        for _ in range(draw(st.integers(0, 2))):
            a, b = draw(st.lists(st.integers(0, vm_count - 1), min_size=2, max_size=2, unique=True))
            pairs.append((f"v{a}", f"v{b}", draw(st.sampled_from([None, 5 * MBIT])), None))
    pins = draw(
        st.dictionaries(st.integers(0, vm_count - 1), st.integers(0, host_count - 1), max_size=2)
    )
    pinned = [[f"v{v}" for v, h in sorted(pins.items()) if h == i] for i in range(host_count)]
    hosts = [replace(h, pinned=tuple(PinnedVM(p) for p in pinned[i])) for i, h in enumerate(hosts)]
    r = real(
        hosts,
        sites=[site("s1"), site("s2", [(150, 250)], [(10150, 10250)])],
        switches=switches,
        links=links,
    )
    v = virtual(networks, vms, pairs=pairs)
    occupied = Occupied(
        hosts={
            h.name: HostUsage(draw(st.integers(0, 1)), 0, draw(st.integers(0, 1)))
            for h in hosts[:2]
        },
        links={r.links[0].name: draw(st.sampled_from([0, 10 * MBIT]))},
    )
    return Model(r, v), occupied


def attempt(model: Model, occupied: Occupied) -> Mapping | list[str]:
    try:
        return map_model(model, occupied=occupied)
    except InfeasibleError as exc:
        return [d.format() for d in exc.diagnostics]


def shuffled(model: Model, seed: int) -> Model:
    rng = random.Random(seed)

    def mix(items: tuple) -> tuple:  # type: ignore[type-arg]
        items = list(items)
        rng.shuffle(items)
        return tuple(items)

    r = replace(
        model.real,
        hosts=mix(model.real.hosts),
        links=mix(model.real.links),
        sites=mix(model.real.sites),
        nodes=mix(model.real.nodes),
    )
    v = replace(
        model.virtual,
        networks=mix(model.virtual.networks),
        vms=mix(model.virtual.vms),
        pairs=mix(model.virtual.pairs),
    )
    return Model(r, v)


@SETTINGS
@given(random_testbeds())
def test_capacities_are_never_exceeded(case: tuple[Model, Occupied]) -> None:
    model, occupied = case
    result = attempt(model, occupied)
    if not isinstance(result, Mapping):
        assert result and all("error[E6" in line or "warning" in line for line in result)
        return
    assert sorted(result.placement) == sorted(vm.name for vm in model.virtual.vms)
    for load in result.hosts:
        total = load.usage + load.occupied
        assert total.cpus <= load.capacity.cpus
        assert total.memory_mib <= load.capacity.memory_mib
        assert not load.capacity.vms or total.vms <= load.capacity.vms
    for li in result.links:
        assert li.reserved_bps + li.occupied_bps <= li.capacity_bps
    for vm in model.virtual.vms:
        pinned = model.real.pinned_host(vm.name, model.topology)
        if pinned is not None:
            assert result.placement[vm.name] == pinned.name
    ids = [(s.encap, s.id) for s in result.segments.values()]
    assert len(ids) == len(set(ids)) == len(model.virtual.networks)


@SETTINGS
@given(random_testbeds(), st.integers(0, 1000))
def test_results_are_deterministic_and_order_independent(
    case: tuple[Model, Occupied], seed: int
) -> None:
    model, occupied = case
    first = attempt(model, occupied)
    assert attempt(model, occupied) == first
    other = attempt(shuffled(model, seed), occupied)
    if isinstance(first, Mapping):
        assert isinstance(other, Mapping)
        assert other.placement == first.placement
        assert other.segments == first.segments
        assert other.as_json()["paths"] == first.as_json()["paths"]
        assert other.links == first.links
    else:
        assert isinstance(other, list)
        assert sorted(line.split(": ", 1)[1] for line in other) == sorted(
            line.split(": ", 1)[1] for line in first
        )
