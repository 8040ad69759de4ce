"""NetEm and 802.1Q through the engine against a kernel that has them: NetEm alone, below
a TBF and below HTB classes, its parameters read back exactly, and VLAN sub-interfaces
carrying a bridge per network across two emulated hosts.

This machine's kernel may lack sch_netem and 8021q: then these tests skip with the reason.
``tests/guests/test_in_guest.py`` runs them inside a guest with a stock Debian kernel.
Checked through ``tc -j``, ``ip -j`` and ping, never through the engine.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from netmanager.kernel import (
    Address,
    Engine,
    HostState,
    Htb,
    HtbClass,
    KernelObject,
    Link,
    LinkKind,
    Namespace,
    Netem,
    Qdisc,
    VethPeer,
    Vlan,
    tbf_for_rate,
    tbf_with_netem,
)
from tests.kernel.helpers import (
    ip_if,
    jrun,
    kernel_has_link,
    kernel_has_qdisc,
    ping,
    run,
    small_host,
    vm,
)

pytestmark = pytest.mark.privileged


def _need_netem(prefix: str) -> None:
    if not kernel_has_qdisc("netem", prefix):
        pytest.skip("this kernel has no sch_netem (tests/guests/test_in_guest.py runs this)")


def _need_vlan(prefix: str) -> None:
    if not kernel_has_link(prefix, "link", "b0", "name", "x0", "type", "vlan", "id", "5"):
        pytest.skip("this kernel has no 802.1Q (tests/guests/test_in_guest.py runs this)")


def _qdiscs(namespace: str, dev: str) -> list[dict[str, Any]]:
    return [
        q
        for q in jrun("tc", "-n", namespace, "-j", "qdisc", "show", "dev", dev)
        if q["kind"] not in ("noqueue", "pfifo_fast", "noop")
    ]


def _without_p1_shaping(prefix: str) -> list[KernelObject]:
    return [o for o in small_host(prefix) if not (isinstance(o, Qdisc) and o.ifname == "p1")]


def test_netem_alone_then_below_a_tbf_then_gone(prefix: str) -> None:
    """The root of a port changes kind (NetEm -> TBF with NetEm -> TBF -> NetEm) and every
    step is applied exactly, with nothing left to do afterwards."""
    _need_netem(prefix)
    dom0 = f"{prefix}-d"
    base = _without_p1_shaping(prefix)
    netem = Netem(delay_us=5_000, limit_packets=1500)
    steps: list[tuple[list[KernelObject], list[tuple[str, str]]]] = [
        ([Qdisc(dom0, "p1", netem)], [("netem", "root")]),
        (
            list(tbf_with_netem(dom0, "p1", tbf_for_rate(20_000_000), netem)),
            [("tbf", "root"), ("netem", "1:1")],
        ),
        ([Qdisc(dom0, "p1", tbf_for_rate(20_000_000))], [("tbf", "root")]),
        ([Qdisc(dom0, "p1", dataclasses.replace(netem, delay_us=7_000))], [("netem", "root")]),
        ([], []),
    ]
    with Engine() as engine:
        for extra, expected in steps:
            state = HostState.checked([*base, *extra])
            engine.apply(state)
            assert engine.plan(state).empty, [c.line() for c in engine.plan(state).changes]
            found = [
                (q["kind"], "root" if q.get("root") else q["parent"]) for q in _qdiscs(dom0, "p1")
            ]
            assert found == expected
    assert ping(f"{prefix}-v2", "10.77.0.1")


@pytest.mark.parametrize(
    "netem",
    [
        Netem(delay_us=20_000, jitter_us=3_000, limit_packets=2000),
        Netem(loss_ppm=10_000),  # 1 %: loss only
        Netem(delay_us=1, loss_ppm=1),  # the smallest steps
        Netem(delay_us=1_000_000, loss_ppm=1_000_000),  # a second; everything lost
        Netem(delay_us=300_000_000, jitter_us=1_000),  # beyond tc_netem_qopt's 32-bit ticks
    ],
    ids=["delay-jitter", "loss", "smallest", "all-lost", "latency64"],
)
def test_netem_parameters_are_read_back_exactly(prefix: str, netem: Netem) -> None:
    _need_netem(prefix)
    dom0 = f"{prefix}-d"
    state = HostState.checked([*_without_p1_shaping(prefix), Qdisc(dom0, "p1", netem)])
    with Engine() as engine:
        engine.apply(state)
        assert engine.plan(state).empty, [c.line() for c in engine.plan(state).changes]
        for other in (
            dataclasses.replace(netem, delay_us=netem.delay_us + 1),
            # the plan forgives 1 ppm of loss (rounding), not 0.1 %
            dataclasses.replace(netem, loss_ppm=abs(netem.loss_ppm - 1000)),
            dataclasses.replace(netem, limit_packets=netem.limit_packets + 1),
        ):
            changed = HostState.checked([*_without_p1_shaping(prefix), Qdisc(dom0, "p1", other)])
            assert [c.obj.KIND for c in engine.plan(changed).changes] == ["qdisc"], other
    (found,) = _qdiscs(dom0, "p1")
    assert found["kind"] == "netem"
    assert found["options"]["limit"] == netem.limit_packets


def test_netem_below_htb_classes(prefix: str) -> None:
    """Per-pair shaping: NetEm under an HTB class, changed in place, then removed."""
    _need_netem(prefix)
    dom0 = f"{prefix}-d"
    base = _without_p1_shaping(prefix)

    def shaped(delay_us: int | None) -> HostState:
        objects: list[KernelObject] = [
            *base,
            Qdisc(dom0, "p1", Htb(default_minor=1)),
            HtbClass(dom0, "p1", 0x10001, 10_000_000, 10_000_000, 8000, 8000),
            HtbClass(dom0, "p1", 0x10002, 5_000_000, 5_000_000, 8000, 8000),
        ]
        if delay_us is not None:
            objects.append(Qdisc(dom0, "p1", Netem(delay_us=delay_us), 0x110000, 0x10001))
        return HostState.checked(objects)

    with Engine() as engine:
        for delay in (10_000, 15_000, None):
            engine.apply(shaped(delay))
            assert engine.plan(shaped(delay)).empty
            netems = [q for q in _qdiscs(dom0, "p1") if q["kind"] == "netem"]
            if delay is None:
                assert netems == []
            else:
                assert [(q["parent"], q["handle"]) for q in netems] == [("1:1", "11:")]
    assert ping(f"{prefix}-v2", "10.77.0.1")


def _vlan_host(prefix: str, host: int, vlan_id: int) -> list[KernelObject]:
    """Emulated host ``h{host}``: underlay ul0 into the switch, its VLAN ``vlan_id``
    enslaved to the network's bridge, one VM on the bridge."""
    dom0 = f"{prefix}-h{host}"
    return [
        Namespace(dom0),
        Link(
            dom0,
            "ul0",
            LinkKind.VETH,
            alias="nm:-:underlay",
            peer=VethPeer(f"{prefix}-sw", f"h{host}"),
        ),
        Link(
            f"{prefix}-sw",
            f"h{host}",
            LinkKind.VETH,
            alias="nm:fabric:port",
            master="sw0",
            peer=VethPeer(dom0, "ul0"),
        ),
        Link(dom0, "br-n1", LinkKind.BRIDGE, alias="nm:t:n1"),
        Link(
            dom0,
            f"ul0.{vlan_id}",
            LinkKind.VLAN,
            alias="nm:t:n1/vlan",
            master="br-n1",
            vlan=Vlan(vlan_id, "ul0"),
        ),
        *vm(dom0, f"{prefix}-v{host}", "p1", f"10.79.0.{host}/24", bridge="br-n1"),
    ]


def _vlan_hosts(prefix: str, vlan_ids: tuple[int, int], netem: Netem | None = None) -> HostState:
    objects: list[KernelObject] = [
        Namespace(f"{prefix}-sw"),
        Link(f"{prefix}-sw", "sw0", LinkKind.BRIDGE, alias="nm:fabric:sw"),
        *_vlan_host(prefix, 1, vlan_ids[0]),
        *_vlan_host(prefix, 2, vlan_ids[1]),
        # an address on the underlay itself: untagged traffic still flows beside the VLANs
        Address(f"{prefix}-h1", "ul0", ip_if("192.0.2.1/24")),
        Address(f"{prefix}-h2", "ul0", ip_if("192.0.2.2/24")),
    ]
    if netem is not None:
        objects.append(Qdisc(f"{prefix}-h1", "p1", netem))
    return HostState.checked(objects)


def test_a_bridge_per_vlan_across_two_hosts(prefix: str) -> None:
    """Two hosts, each with its network's bridge on an 802.1Q sub-interface of the
    underlay: the VMs reach each other only while both hosts use the same VLAN id."""
    _need_vlan(prefix)
    same = _vlan_hosts(prefix, (42, 42))
    with Engine() as engine:
        engine.apply(same)
        assert engine.plan(same).empty
    link = jrun("ip", "-n", f"{prefix}-h1", "-j", "-d", "link", "show", "ul0.42")[0]
    assert link["linkinfo"]["info_kind"] == "vlan" and link["master"] == "br-n1"
    assert link["linkinfo"]["info_data"]["id"] == 42
    assert ping(f"{prefix}-v1", "10.79.0.2")
    assert ping(f"{prefix}-h1", "192.0.2.2")
    apart = _vlan_hosts(prefix, (42, 43))
    with Engine() as engine:
        engine.apply(apart)
        assert engine.plan(apart).empty
    assert not ping(f"{prefix}-v1", "10.79.0.2", attempts=1)
    assert ping(f"{prefix}-h1", "192.0.2.2")  # the underlay itself still works


def test_netem_on_a_port_of_a_vlan_bridge_delays_what_crosses(prefix: str) -> None:
    _need_vlan(prefix)
    _need_netem(prefix)
    state = _vlan_hosts(prefix, (7, 7), Netem(delay_us=30_000))
    with Engine() as engine:
        engine.apply(state)
        assert engine.plan(state).empty
    out = jrun("ip", "-n", f"{prefix}-h1", "-j", "-d", "link", "show", "ul0.7")[0]
    assert out["master"] == "br-n1"
    assert ping(f"{prefix}-v2", "10.79.0.1")
    result = _min_rtt_ms(f"{prefix}-v2", "10.79.0.1")
    assert result >= 30.0, result


def _min_rtt_ms(namespace: str, address: str) -> float:
    """The smallest round trip of three pings, in milliseconds."""
    out = run("ip", "netns", "exec", namespace, "ping", "-c", "3", "-i", "0.2", "-W", "2", address)
    found = re.search(r"= ([0-9.]+)/", out)
    assert found, out
    return float(found.group(1))
