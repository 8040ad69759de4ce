"""IFB ingress shaping, NetEm below TBF, 802.1Q and bridge multicast snooping against this
machine's kernel, each test in its own namespaces.  Checked through ``ip -j``, ``tc -j``
and ping, never through the engine.  Features this kernel lacks are probed for, and their
tests skip with the reason."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from netmanager.kernel import (
    ApplyError,
    Engine,
    Faults,
    HostState,
    Link,
    LinkKind,
    MirredRedirect,
    Netem,
    Op,
    Vlan,
)
from tests.kernel.helpers import (
    jrun,
    kernel_has_link,
    kernel_has_qdisc,
    netns_names,
    ping,
    run,
    shaped_host,
    snapshot,
)

pytestmark = pytest.mark.privileged


def _qdiscs(namespace: str, dev: str) -> dict[str, dict[str, Any]]:
    """The qdiscs of a link by kind, with their counters."""
    return {
        q["kind"]: q for q in jrun("tc", "-n", namespace, "-s", "-j", "qdisc", "show", "dev", dev)
    }


def _redirects(namespace: str, dev: str) -> list[tuple[str, str, str]]:
    """(direction, action, device) of every mirred action below the link's ingress."""
    return [
        (a["direction"], a["mirred_action"], a["to_dev"])
        for f in jrun("tc", "-n", namespace, "-j", "filter", "show", "dev", dev, "ingress")
        for a in f.get("options", {}).get("actions", [])
        if a.get("kind") == "mirred"
    ]


def test_what_a_vm_sends_is_shaped_by_the_tbf_of_an_ifb(prefix: str) -> None:
    dom0, v1 = f"{prefix}-d", f"{prefix}-v1"
    state = shaped_host(prefix, ingress_bps=10_000_000)
    with Engine() as engine:
        engine.apply(state)
        assert engine.plan(state).empty
    assert _link_kind(dom0, "ib1") == "ifb"
    assert set(_qdiscs(dom0, "p1")) == {"tbf", "ingress"}
    assert _redirects(dom0, "p1") == [("egress", "redirect", "ib1")]
    tbf = _qdiscs(dom0, "ib1")["tbf"]
    assert tbf["options"]["rate"] == 10_000_000 // 8
    before = tbf["packets"]
    assert ping(v1, "10.78.0.2")
    result = run("ip", "netns", "exec", v1, "ping", "-c5", "-i0.2", "-q", "10.78.0.2")
    assert " 0% packet loss" in result
    counted = _qdiscs(dom0, "ib1")["tbf"]["packets"] - before
    assert counted >= 6, counted  # every echo request v1 sent went through the IFB's TBF
    # a new ingress rate changes the IFB's TBF in place: it keeps its counters
    faster = shaped_host(prefix, ingress_bps=30_000_000)
    with Engine() as engine:
        p = engine.plan(faster)
        assert [(c.op, c.obj.label()) for c in p.changes] == [
            (Op.MODIFY, f"qdisc tbf 1: at root on {dom0}/ib1")
        ]
        engine.apply(faster)
    tbf = _qdiscs(dom0, "ib1")["tbf"]
    assert tbf["options"]["rate"] == 30_000_000 // 8
    assert tbf["packets"] >= before + counted


def _link_kind(namespace: str, ifname: str) -> str:
    link = jrun("ip", "-n", namespace, "-j", "-d", "link", "show", ifname)[0]
    kind: str = link["linkinfo"]["info_kind"]
    return kind


def test_ingress_shaping_removed_and_added_back(prefix: str) -> None:
    dom0 = f"{prefix}-d"
    shaped, plain = shaped_host(prefix), shaped_host(prefix, ingress_bps=None)
    with Engine() as engine:
        engine.apply(shaped)
        engine.apply(plain)
        assert engine.plan(plain).empty
    assert set(_qdiscs(dom0, "p1")) == {"tbf"}
    assert "ib1" not in {link["ifname"] for link in jrun("ip", "-n", dom0, "-j", "link")}
    with Engine() as engine:
        engine.apply(shaped)
    assert _redirects(dom0, "p1") == [("egress", "redirect", "ib1")]
    assert ping(f"{prefix}-v1", "10.78.0.2")


@pytest.mark.parametrize(
    ("start", "target"),
    [
        ({"ingress_bps": None}, {}),
        ({}, {"ingress_bps": None}),
        ({}, {"ifb": "ib2", "ingress_bps": 20_000_000}),
    ],
    ids=["add", "remove", "replace-ifb"],
)
def test_a_fault_at_every_step_of_ingress_shaping_restores_the_kernel(
    prefix: str, start: dict[str, Any], target: dict[str, Any]
) -> None:
    first, then = shaped_host(prefix, **start), shaped_host(prefix, **target)
    with Engine() as engine:
        engine.apply(first)
        before = snapshot(netns_names(prefix))
        steps = len(engine.plan(then).steps)
    assert steps >= 2
    for k in range(steps):
        with Engine() as engine, pytest.raises(ApplyError) as failure:
            engine.apply(then, faults=Faults(fail_at=k))
        assert failure.value.rolled_back, str(failure.value)
        assert snapshot(netns_names(prefix)) == before, f"fault at step {k}"
    with Engine() as engine:
        engine.apply(then)
        assert engine.plan(then).empty
    assert ping(f"{prefix}-v1", "10.78.0.2")


def test_a_redirect_left_dangling_by_hand_is_repaired(prefix: str) -> None:
    dom0 = f"{prefix}-d"
    state = shaped_host(prefix)
    with Engine() as engine:
        engine.apply(state)
        run("ip", "-n", dom0, "link", "delete", "ib1")
        assert _redirects(dom0, "p1") == [("egress", "redirect", "*")]  # to nothing
        assert not ping(f"{prefix}-v1", "10.78.0.2", attempts=1)
        assert MirredRedirect(dom0, "p1", "#0") in engine.observe([dom0]).objects
        repair = engine.plan(state)
        assert [(c.op, c.obj.KIND) for c in repair.changes] == [
            (Op.DELETE, "filter"),
            (Op.CREATE, "link"),
            (Op.CREATE, "qdisc"),
            (Op.CREATE, "filter"),
        ]
        engine.apply(state)
        assert engine.plan(state).empty
    assert _redirects(dom0, "p1") == [("egress", "redirect", "ib1")]
    assert ping(f"{prefix}-v1", "10.78.0.2")


def test_bridges_do_not_snoop_multicast(prefix: str) -> None:
    """A snooping bridge joins 224.0.0.106 as it comes up, and its IGMP report, flooded
    over the VXLAN port before the underlay is complete, held the first packets to the
    remote host for up to a second (the flake of the first ping after apply)."""
    dom0 = f"{prefix}-d"
    state = shaped_host(prefix)
    with Engine() as engine:
        engine.apply(state)
    info = jrun("ip", "-n", dom0, "-j", "-d", "link", "show", "br0")[0]["linkinfo"]["info_data"]
    assert info["mcast_snooping"] == 0
    groups = run("ip", "-n", dom0, "maddr", "show", "dev", "br0")
    assert "224.0.0.106" not in groups, groups
    run("ip", "-n", dom0, "link", "set", "br0", "type", "bridge", "mcast_snooping", "1")
    with Engine() as engine:
        drift = engine.plan(state)
        assert [c.line() for c in drift.changes] == [
            f"~ link {dom0}/br0 (bridge): mcast_snooping yes -> no"
        ]
        engine.apply(state)
        assert engine.plan(state).empty
    info = jrun("ip", "-n", dom0, "-j", "-d", "link", "show", "br0")[0]["linkinfo"]["info_data"]
    assert info["mcast_snooping"] == 0


NETEM = Netem(delay_us=10_000, limit_packets=1000)


def test_netem_below_the_egress_tbf(prefix: str) -> None:
    if not kernel_has_qdisc("netem", prefix):
        pytest.skip(
            "this kernel has no sch_netem: NetEm below a TBF is encoded and planned (see"
            " test_features.py), but cannot be applied here (tests/guests/test_in_guest.py runs"
            " this in a guest)"
        )
    dom0 = f"{prefix}-d"
    state = shaped_host(prefix, netem=NETEM)
    with Engine() as engine:
        engine.apply(state)
        assert engine.plan(state).empty
        qdiscs = _qdiscs(dom0, "p1")
        assert qdiscs["netem"]["parent"] == "1:1" and qdiscs["netem"]["handle"] == "10:"
        faster = shaped_host(prefix, egress_bps=40_000_000, netem=NETEM)
        assert [c.obj.label() for c in engine.plan(faster).changes] == [
            f"qdisc tbf 1: at root on {dom0}/p1"
        ]
        engine.apply(faster)
        assert set(_qdiscs(dom0, "p1")) >= {"tbf", "netem"}
        engine.apply(shaped_host(prefix, egress_bps=40_000_000))  # NetEm gone: TBF replaced
    assert "netem" not in _qdiscs(dom0, "p1")
    assert ping(f"{prefix}-v2", "10.78.0.1")  # the TBF forwards again


def test_a_vlan_on_a_parent_link(prefix: str) -> None:
    if not kernel_has_link(prefix, "link", "b0", "name", "x0", "type", "vlan", "id", "5"):
        pytest.skip(
            "this kernel has no 802.1Q (8021q): VLAN links are encoded, decoded and planned"
            " (see test_codec.py, test_features.py), but cannot be created here"
            " (tests/guests/test_in_guest.py runs this in a guest)"
        )
    dom0 = f"{prefix}-d"
    base = list(shaped_host(prefix, ingress_bps=None))
    state = HostState.checked(
        [
            *base,
            Link(dom0, "up0", LinkKind.BRIDGE, alias="nm:-:underlay"),
            Link(
                dom0,
                "up0.42",
                LinkKind.VLAN,
                alias="nm:t:net1/vlan",
                master="br0",
                vlan=Vlan(42, "up0"),
            ),
        ]
    )
    with Engine() as engine:
        engine.apply(state)
        assert engine.plan(state).empty
        link = jrun("ip", "-n", dom0, "-j", "-d", "link", "show", "up0.42")[0]
        assert link["linkinfo"]["info_data"]["id"] == 42 and link["master"] == "br0"
        other = HostState.checked(
            dataclasses.replace(o, vlan=Vlan(43, "up0")) if isinstance(o, Link) and o.vlan else o
            for o in state
        )
        engine.apply(other)
        assert engine.plan(other).empty
    link = jrun("ip", "-n", dom0, "-j", "-d", "link", "show", "up0.42")[0]
    assert link["linkinfo"]["info_data"]["id"] == 43


def test_the_vlan_probe_is_honest(prefix: str) -> None:
    """The probe must find what the kernel has (a bridge always works)."""
    assert kernel_has_link(prefix, "name", "x0", "type", "bridge")
    assert not kernel_has_link(prefix, "name", "x0", "type", "no-such-kind")
    assert f"{prefix}-probe" not in netns_names(prefix)  # the probe cleans up


def test_apply_returns_with_every_link_it_brought_up_running(prefix: str) -> None:
    """A link with carrier drops what it sends until the kernel activates its queue
    (asynchronously, in linkwatch); an apply returns only once that happened, so the
    first ping after it needs no ARP retransmission (the flake of the first ping).

    This checks the postcondition; the race itself lasts milliseconds, less than ``ip``
    takes to start, and was measured in a loop of applies (see the settle() docstring)."""
    from tests.kernel.test_kernel_apply import _two_hosts

    for _ in range(3):
        with Engine() as engine:
            result = engine.apply(_two_hosts(prefix))
        assert result.unsettled == ()
        for namespace in netns_names(prefix):
            for link in jrun("ip", "-n", namespace, "-j", "link"):
                if "UP" in link["flags"] and "LOWER_UP" in link["flags"]:
                    assert link["operstate"] in ("UP", "UNKNOWN"), (namespace, link)
        with Engine() as engine:
            engine.destroy(netns_names(prefix))
