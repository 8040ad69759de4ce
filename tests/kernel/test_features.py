"""IFB ingress shaping, NetEm below TBF, 802.1Q links and bridge multicast snooping: the
model, the plans and the journal over the in-memory fake kernel.  No root: these run
everywhere, also where the kernel lacks sch_netem or 8021q."""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import random
from collections.abc import Iterable

import pytest

from netmanager.kernel import (
    INGRESS_HANDLE,
    TC_H_INGRESS,
    ApplyError,
    Engine,
    Faults,
    HostState,
    Htb,
    HtbClass,
    Ingress,
    KernelObject,
    Link,
    LinkKind,
    MirredRedirect,
    Namespace,
    Netem,
    Op,
    Plan,
    Qdisc,
    Scope,
    U32Filter,
    Vlan,
    ifb_ingress,
    plan,
    tbf_class,
    tbf_for_rate,
    tbf_with_netem,
    tc_handle,
    validate,
)
from netmanager.kernel.fake import FakeKernel
from tests.kernel.helpers import shaped_host, vm

P = "nmf"
D = f"{P}-d"
NETEM = Netem(delay_us=20_000, jitter_us=2_000, loss_ppm=1_000, limit_packets=2000)


def _applied(state: HostState) -> FakeKernel:
    fake = FakeKernel()
    Engine(fake).apply(state)
    return fake


def _ops(p: Plan) -> list[tuple[str, str, bool]]:
    return [(str(c.op), c.obj.label(), c.implied) for c in p.changes]


def _index(p: Plan, op: Op, label_start: str) -> int:
    for i, change in enumerate(p.changes):
        if change.op is op and change.obj.label().startswith(label_start):
            return i
    raise AssertionError(f"no {op} {label_start} in\n{p.render()}")


def _every_fault_rolls_back(
    start: HostState, target: HostState, namespaces: tuple[str, ...] = ()
) -> None:
    """Fail each sent step of start -> target in turn: the fake is as before every time;
    then the transition itself works and re-planning it is empty."""
    fake = _applied(start)
    before = fake.state()
    steps = len(Engine(fake).plan(target, namespaces=namespaces).steps)
    assert steps
    for k in range(steps):
        trial = FakeKernel(before, batch=1 + k % 3)
        with pytest.raises(ApplyError) as failure:
            Engine(trial).apply(target, namespaces=namespaces, faults=Faults(fail_at=k))
        assert failure.value.rolled_back, str(failure.value)
        assert trial.state() == before, f"fault at step {k}: {failure.value.failed.line()}"
    Engine(fake).apply(target, namespaces=namespaces)
    assert Engine(fake).plan(target, namespaces=namespaces).empty


# ------------------------------------------------------------------------------------- IFB


def test_ifb_ingress_objects() -> None:
    objects = ifb_ingress(D, "p1", "ib1", "nm:t:ifb", tbf_for_rate(10_000_000))
    assert [o.KIND for o in objects] == ["link", "qdisc", "filter", "qdisc"]
    link, ingress, redirect, tbf = objects
    assert isinstance(link, Link) and link.kind is LinkKind.IFB
    assert isinstance(ingress, Qdisc)
    assert ingress == Qdisc(D, "p1", Ingress(), INGRESS_HANDLE, TC_H_INGRESS)
    assert ingress.label() == f"qdisc ingress ffff: at ingress on {D}/p1"
    assert redirect == MirredRedirect(D, "p1", "ib1")
    assert redirect.label() == f"filter u32 all -> redirect to ib1 on {D}/p1 ingress"
    assert isinstance(tbf, Qdisc) and tbf.ifname == "ib1"


def test_ingress_shaping_is_created_in_order_and_reapplies_empty() -> None:
    state = shaped_host(P)
    p = plan(state, HostState())
    ifb = _index(p, Op.CREATE, f"link {D}/ib1")
    port = _index(p, Op.CREATE, f"link {D}/p1")
    ingress = _index(p, Op.CREATE, f"qdisc ingress ffff: at ingress on {D}/p1")
    redirect = _index(p, Op.CREATE, f"filter u32 all -> redirect to ib1 on {D}/p1")
    ifb_tbf = _index(p, Op.CREATE, f"qdisc tbf 1: at root on {D}/ib1")
    assert ifb < port < ingress < redirect
    assert ifb < ifb_tbf
    fake = _applied(state)
    assert Engine(fake).plan(state).empty


def test_an_ingress_rate_change_is_one_change_of_the_ifb_tbf() -> None:
    fake = _applied(shaped_host(P))
    p = Engine(fake).plan(shaped_host(P, ingress_bps=30_000_000))
    assert _ops(p) == [("~", f"qdisc tbf 1: at root on {D}/ib1", False)]
    assert "rate_bps 10Mbit -> 30Mbit" in p.changes[0].reason


def test_removing_ingress_shaping_deletes_the_qdisc_before_the_ifb() -> None:
    start, target = shaped_host(P), shaped_host(P, ingress_bps=None)
    p = Engine(_applied(start)).plan(target)
    ingress = _index(p, Op.DELETE, f"qdisc ingress ffff: at ingress on {D}/p1")
    ifb = _index(p, Op.DELETE, f"link {D}/ib1")
    redirect = _index(p, Op.DELETE, "filter u32 all -> redirect to ib1")
    assert p.changes[redirect].implied_by == ingress
    assert p.changes[_index(p, Op.DELETE, f"qdisc tbf 1: at root on {D}/ib1")].implied_by == ifb
    assert ingress < ifb
    assert [c.obj.KIND for c in p.changes if not c.implied] == ["qdisc", "link"]
    _every_fault_rolls_back(start, target)
    _every_fault_rolls_back(target, start)


def test_another_ifb_takes_the_redirect_along() -> None:
    """The kernel keeps a redirect whose target is deleted, redirecting to nothing: the
    planner deletes the redirect before its target and creates it again after the new one."""
    start, target = shaped_host(P), shaped_host(P, ifb="ib2")
    p = Engine(_applied(start)).plan(target)
    gone = _index(p, Op.DELETE, "filter u32 all -> redirect to ib1")
    assert not p.changes[gone].implied
    assert p.changes[gone].reason == "replaced: target ib1 -> ib2"
    assert gone < _index(p, Op.DELETE, f"link {D}/ib1")
    assert _index(p, Op.CREATE, f"link {D}/ib2") < _index(
        p, Op.CREATE, "filter u32 all -> redirect to ib2"
    )
    _every_fault_rolls_back(start, target)


def test_a_target_replaced_under_its_name_takes_the_redirect_along() -> None:
    start = shaped_host(P)
    target = HostState.checked(
        dataclasses.replace(o, kind=LinkKind.DUMMY)
        if isinstance(o, Link) and o.ifname == "ib1"
        else o
        for o in start
    )
    p = Engine(_applied(start)).plan(target)
    gone = _index(p, Op.DELETE, "filter u32 all -> redirect to ib1")
    assert p.changes[gone].reason.startswith("its target ib1 goes (replaced: kind ifb -> dummy")
    assert gone < _index(p, Op.DELETE, f"link {D}/ib1")
    assert _index(p, Op.CREATE, f"link {D}/ib1") < _index(
        p, Op.CREATE, "filter u32 all -> redirect to ib1"
    )
    _every_fault_rolls_back(start, target)


def test_a_dangling_redirect_is_seen_and_repaired() -> None:
    state = shaped_host(P)
    fake = _applied(state)
    fake.model.delete(("link", D, "ib1"))  # as `ip link del ib1` would
    dangling = fake.observe([D])
    assert MirredRedirect(D, "p1", "#0") in dangling.objects
    p = Engine(fake).plan(state)
    assert ("-", f"filter u32 all -> redirect to #0 on {D}/p1 ingress", False) in _ops(p)
    assert _index(p, Op.CREATE, f"link {D}/ib1") < _index(
        p, Op.CREATE, "filter u32 all -> redirect to ib1"
    )
    Engine(fake).apply(state)
    assert Engine(fake).plan(state).empty


def test_deleting_the_port_takes_its_shaping_and_then_the_ifb_goes() -> None:
    start = shaped_host(P)
    target = HostState.checked(
        [
            o
            for o in start
            if o.namespace != f"{P}-v1" and getattr(o, "ifname", "") not in ("p1", "ib1")
        ]
    )
    p = Engine(_applied(start)).plan(target, namespaces=[f"{P}-v1"])
    port = _index(p, Op.DELETE, f"link {D}/p1")
    assert port < _index(p, Op.DELETE, f"link {D}/ib1")
    for label in ("qdisc ingress", "filter u32 all", f"qdisc tbf 1: at root on {D}/p1"):
        assert p.changes[_index(p, Op.DELETE, label)].implied_by == port
    _every_fault_rolls_back(start, target, (f"{P}-v1",))


# ----------------------------------------------------------------------- NetEm below a TBF


def test_netem_is_the_child_of_the_egress_tbf() -> None:
    qdiscs = tbf_with_netem(D, "p1", tbf_for_rate(10_000_000), NETEM)
    assert [(q.handle, q.parent) for q in qdiscs] == [
        (0x10000, 0xFFFFFFFF),
        (0x100000, tbf_class(0x10000)),
    ]
    assert qdiscs[1].label() == f"qdisc netem 10: at 1:1 on {D}/p1"
    state = shaped_host(P, netem=NETEM)
    p = plan(state, HostState())
    assert _index(p, Op.CREATE, f"qdisc tbf 1: at root on {D}/p1") < _index(
        p, Op.CREATE, "qdisc netem"
    )
    assert Engine(_applied(state)).plan(state).empty


def test_a_tbf_rate_change_leaves_its_netem_child_alone() -> None:
    fake = _applied(shaped_host(P, netem=NETEM))
    p = Engine(fake).plan(shaped_host(P, egress_bps=50_000_000, netem=NETEM))
    assert _ops(p) == [("~", f"qdisc tbf 1: at root on {D}/p1", False)]
    Engine(fake).apply(shaped_host(P, egress_bps=50_000_000, netem=NETEM))
    assert any(isinstance(o, Qdisc) and o.kind == "netem" for o in fake.state())


def test_a_netem_change_is_one_change_of_the_child() -> None:
    fake = _applied(shaped_host(P, netem=NETEM))
    slower = dataclasses.replace(NETEM, delay_us=50_000)
    p = Engine(fake).plan(shaped_host(P, netem=slower))
    assert _ops(p) == [("~", f"qdisc netem 10: at 1:1 on {D}/p1", False)]
    assert "delay_us 20000 -> 50000" in p.changes[0].reason


def test_adding_netem_below_a_tbf_adds_only_the_child() -> None:
    fake = _applied(shaped_host(P))
    p = Engine(fake).plan(shaped_host(P, netem=NETEM))
    assert _ops(p) == [("+", f"qdisc netem 10: at 1:1 on {D}/p1", False)]


def test_removing_netem_replaces_its_tbf() -> None:
    """Deleting a TBF's child leaves the TBF with a qdisc that drops everything."""
    start, target = shaped_host(P, netem=NETEM), shaped_host(P)
    p = Engine(_applied(start)).plan(target)
    assert _ops(p) == [
        ("-", f"qdisc netem 10: at 1:1 on {D}/p1", True),
        ("-", f"qdisc tbf 1: at root on {D}/p1", False),
        ("+", f"qdisc tbf 1: at root on {D}/p1", False),
    ]
    assert "drops every packet" in p.changes[1].reason
    _every_fault_rolls_back(start, target)
    _every_fault_rolls_back(target, start)


def test_deleting_the_tbf_takes_its_netem_child() -> None:
    start = shaped_host(P, netem=NETEM, ingress_bps=None)
    target = HostState.checked(
        o for o in start if not (isinstance(o, Qdisc) and o.ifname == "p1" and o.kind != "ingress")
    )
    p = Engine(_applied(start)).plan(target)
    assert _ops(p) == [
        ("-", f"qdisc netem 10: at 1:1 on {D}/p1", True),
        ("-", f"qdisc tbf 1: at root on {D}/p1", False),
    ]
    _every_fault_rolls_back(start, target)


def test_netem_below_an_htb_class() -> None:
    base = [o for o in shaped_host(P, ingress_bps=None) if not isinstance(o, Qdisc)]
    state = HostState.checked(
        [
            *base,
            Qdisc(D, "p1", Htb(default_minor=0x20)),
            HtbClass(D, "p1", tc_handle("1:10"), 2_000_000, 2_000_000, 8000, 8000),
            HtbClass(D, "p1", tc_handle("1:20"), 9_000_000, 9_000_000, 8000, 8000),
            Qdisc(D, "p1", NETEM, tc_handle("10:"), tc_handle("1:10")),
            U32Filter(D, "p1", tc_handle("1:10"), 1, src=ipaddress.IPv4Network("10.78.0.2/32")),
        ]
    )
    p = plan(state, HostState())
    assert _index(p, Op.CREATE, "class htb 1:10") < _index(p, Op.CREATE, "qdisc netem")
    without = HostState.checked(
        o
        for o in state
        if not (isinstance(o, HtbClass | U32Filter) and o.key[3] in (0x10010, 0x10000))
        and not (isinstance(o, Qdisc) and o.kind == "netem")
    )
    p = Engine(_applied(state)).plan(without)
    class_gone = _index(p, Op.DELETE, "class htb 1:10")
    assert p.changes[_index(p, Op.DELETE, "qdisc netem")].implied_by == class_gone
    _every_fault_rolls_back(state, without)


# ---------------------------------------------------------------------------------- 802.1Q


def _vlan_host(vid: int = 42, mtu: int = 1500, parent_mtu: int = 1500) -> HostState:
    return HostState.checked(
        [
            Namespace(D),
            Link(D, "br0", LinkKind.BRIDGE, alias="nm:t:net1", mtu=mtu),
            Link(D, "up0", LinkKind.BRIDGE, alias="nm:-:underlay", mtu=parent_mtu),
            Link(
                D,
                f"up0.{vid}",
                LinkKind.VLAN,
                alias="nm:t:net1/vlan",
                master="br0",
                mtu=mtu,
                vlan=Vlan(vid, "up0"),
            ),
        ]
    )


def test_a_vlan_comes_after_its_parent_and_goes_with_it() -> None:
    state = _vlan_host()
    p = plan(state, HostState())
    assert _index(p, Op.CREATE, f"link {D}/up0 ") < _index(p, Op.CREATE, f"link {D}/up0.42")
    fake = _applied(state)
    assert Engine(fake).plan(state).empty
    without_parent = HostState.checked(
        o for o in state if not (isinstance(o, Link) and o.ifname.startswith("up0"))
    )
    p = Engine(fake).plan(without_parent)
    assert p.changes[_index(p, Op.DELETE, f"link {D}/up0.42")].implied_by == _index(
        p, Op.DELETE, f"link {D}/up0 "
    )
    _every_fault_rolls_back(state, without_parent)


def test_another_vlan_id_replaces_the_vlan() -> None:
    start = _vlan_host()
    target = HostState.checked(
        dataclasses.replace(o, vlan=Vlan(43, "up0"))
        if isinstance(o, Link) and o.vlan is not None
        else o
        for o in start
    )
    p = Engine(_applied(start)).plan(target)
    assert [(c.op, c.obj.KIND) for c in p.changes if not c.implied] == [
        (Op.DELETE, "link"),
        (Op.CREATE, "link"),
    ]
    assert "vlan" in p.changes[-1].reason
    _every_fault_rolls_back(start, target)


def test_a_vlan_larger_than_another_owners_parent_is_refused_by_the_kernel() -> None:
    """Validation cannot see the MTU of another owner's parent; the kernel (EINVAL) can."""
    state = _vlan_host()
    infra = HostState.checked(
        o for o in state if not (isinstance(o, Link) and o.alias.startswith("nm:t:"))
    )
    fake = _applied(infra)
    big = next(o for o in state if isinstance(o, Link) and o.vlan)
    owner_t = Scope.of("t", shared=[D])
    desired = HostState.checked([dataclasses.replace(big, mtu=9000, master=None)], owner_t)
    with pytest.raises(ApplyError) as failure:
        Engine(fake).apply(desired, scope=owner_t)
    assert failure.value.error.errno == errno.EINVAL
    assert failure.value.rolled_back
    assert fake.state() == infra


# ------------------------------------------------------------------------------- snooping


def test_bridges_do_not_snoop_multicast_unless_asked() -> None:
    state = shaped_host(P)
    bridge = next(o for o in state if isinstance(o, Link) and o.kind is LinkKind.BRIDGE)
    assert bridge.mcast_snooping is False
    fake = _applied(state)
    fake.model.replace(dataclasses.replace(bridge, mcast_snooping=True))  # drift
    p = Engine(fake).plan(state)
    assert _ops(p) == [("~", f"link {D}/br0 (bridge)", False)]
    assert p.changes[0].reason == "mcast_snooping yes -> no"


# ----------------------------------------------------------------------------- validation


def _problems(objects: list[KernelObject]) -> str:
    return "\n".join(validate(HostState.of(objects)))


def test_tc_objects_are_validated() -> None:
    base: list[KernelObject] = [Namespace(D), *vm(D, f"{P}-v", "p1", "10.0.0.1/24", bridge="")]
    base = [dataclasses.replace(o, master=None) if isinstance(o, Link) else o for o in base]
    tbf = tbf_for_rate(10_000_000)
    cases: list[tuple[list[KernelObject], str]] = [
        ([Qdisc(D, "p1", NETEM, 0x100000, 0x10001)], "neither a class of an HTB"),
        (
            [Qdisc(D, "p1", tbf), Qdisc(D, "p1", NETEM, 0x10000, tbf_class(0x10000))],
            "another qdisc of the link has handle 1:",
        ),
        ([Qdisc(D, "p1", NETEM, INGRESS_HANDLE, TC_H_INGRESS)], "sits at 'ingress'"),
        ([dataclasses.replace(Qdisc.ingress(D, "p1"), handle=0x20000)], "has handle ffff:"),
        ([Qdisc(D, "p1", Qdisc.ingress(D, "p1").params)], "sits at 'ingress'"),
        ([Qdisc.ingress(D, "p1"), MirredRedirect(D, "p1", "p1")], "cannot redirect to itself"),
        ([Qdisc.ingress(D, "p1"), MirredRedirect(D, "p1", "ib9")], "target"),
        ([MirredRedirect(D, "p1", "eth0")], "its parent qdisc is not in the state"),
        (
            [
                Qdisc(D, "p1", Htb()),
                HtbClass(D, "p1", 0x10010, 8000, 8000, 100, 100),
                U32Filter(D, "p1", 0x10010, 1, parent=0x10000),
                MirredRedirect(D, "p1", "eth0", parent=0x10000, handle=2),
            ],
            "share one protocol",
        ),
    ]
    for extra, expected in cases:
        assert expected in _problems(base + extra), (extra, _problems(base + extra))


def test_vlans_are_validated() -> None:
    text = "\n".join(
        validate(
            HostState.of(
                [
                    Namespace(D),
                    Link(D, "up0", LinkKind.BRIDGE, alias="nm:t:u", mtu=1400),
                    Link(D, "v0", LinkKind.VLAN, alias="nm:t:v", vlan=Vlan(4095, "up0")),
                    Link(D, "v1", LinkKind.VLAN, alias="nm:t:v", vlan=Vlan(5, "nope")),
                    Link(D, "v2", LinkKind.VLAN, alias="nm:t:v", mtu=1400, vlan=Vlan(5, "v2")),
                    Link(D, "v3", LinkKind.BRIDGE, alias="nm:t:v", vlan=Vlan(5, "up0")),
                    Link(D, "v4", LinkKind.VETH, alias="nm:t:v", mcast_snooping=True),
                ]
            )
        )
    )
    for expected in (
        "vlan id 4095 is outside 1-4094",
        "mtu 1500 is above its parent up0's (1400)",
        f"parent {D}/nope is not in the state",
        "cannot be its own parent",
        "a vlan, and only a vlan, has vlan settings",
        "multicast snooping is a bridge's setting",
    ):
        assert expected in text, text


# ------------------------------------------------------------- random transitions, all faults


def _random_shaped(rng: random.Random) -> HostState:
    """A random host with every kind of shaping: egress TBF (with or without NetEm), ingress
    through an IFB (under one of two names), HTB with NetEm leaves, a VLAN port."""
    objects: list[KernelObject] = [
        Namespace(D),
        Link(D, "br0", LinkKind.BRIDGE, alias="nm:t:br0", mtu=1450),
        Link(D, "up0", LinkKind.BRIDGE, alias="nm:-:up0", mtu=1500),
    ]
    if rng.random() < 0.5:
        vid = rng.choice([10, 11])
        objects.append(
            Link(
                D,
                f"up0.{vid}",
                LinkKind.VLAN,
                alias="nm:t:vlan",
                master="br0",
                mtu=1450,
                vlan=Vlan(vid, "up0"),
            )
        )
    for n in rng.sample(range(4), rng.randint(0, 3)):
        port = f"p{n}"
        objects += vm(D, f"{P}-v{n}", port, f"10.0.0.{n + 1}/24", mtu=1450)
        egress = rng.choice(["none", "tbf", "netem", "htb"])
        rate = rng.choice([1_000_000, 10_000_000])
        netem = Netem(delay_us=rng.choice([1_000, 5_000]), limit_packets=1000)
        if egress == "tbf":
            objects += tbf_with_netem(D, port, tbf_for_rate(rate), None)
        elif egress == "netem":
            objects += tbf_with_netem(D, port, tbf_for_rate(rate), netem)
        elif egress == "htb":
            objects += [
                Qdisc(D, port, Htb(default_minor=0x20)),
                HtbClass(D, port, 0x10010, rate, rate, 8000, 8000),
                HtbClass(D, port, 0x10020, 5_000_000, 5_000_000, 8000, 8000),
                U32Filter(D, port, 0x10010, 1, src=ipaddress.IPv4Network("10.0.0.9/32")),
            ]
            if rng.random() < 0.5:
                objects.append(Qdisc(D, port, netem, 0x100000, 0x10010))
        if rng.random() < 0.6:
            ifb = f"i{n}{rng.choice('ab')}"
            objects += ifb_ingress(
                D, port, ifb, f"nm:t:{ifb}", tbf_for_rate(rng.choice([rate, 2 * rate]))
            )
    return HostState.checked(objects)


@pytest.mark.parametrize("seed", range(30))
def test_random_shaping_transitions_roll_back_at_every_step(seed: int) -> None:
    rng = random.Random(seed)
    start, target = _random_shaped(rng), _random_shaped(rng)
    scope = [D, *(f"{P}-v{n}" for n in range(4))]
    fake = FakeKernel(batch=rng.randint(1, 5))
    Engine(fake).apply(start, namespaces=scope)
    assert Engine(fake).plan(start, namespaces=scope).empty
    before = fake.state()
    steps = len(Engine(fake).plan(target, namespaces=scope).steps)
    for k in range(steps):
        trial = FakeKernel(before, batch=rng.randint(1, 5))
        with pytest.raises(ApplyError) as failure:
            Engine(trial).apply(target, namespaces=scope, faults=Faults(fail_at=k))
        assert failure.value.rolled_back, str(failure.value)
        assert trial.state() == before, f"seed {seed}, fault at step {k}"
    Engine(fake).apply(target, namespaces=scope)
    assert Engine(fake).plan(target, namespaces=scope).empty, seed


# ------------------------------------------------------------------------------- settling


class _Recording(FakeKernel):
    def __init__(self) -> None:
        super().__init__()
        self.settled: list[tuple[str, str]] = []

    def settle(self, links: Iterable[tuple[str, str]], timeout_s: float) -> list[tuple[str, str]]:
        self.settled += links
        return []


def test_apply_waits_for_the_links_whose_carrier_comes_later() -> None:
    """The creating end of a veth pair gets its carrier when the far end comes up, in a
    later batch, and a bridge when its first port forwards: the kernel activates their
    queues asynchronously, so an apply waits for them before it returns."""
    fake = _Recording()
    result = Engine(fake).apply(shaped_host(P))
    assert sorted(set(fake.settled)) == [(D, "br0"), (D, "p1"), (D, "p2")]
    assert result.unsettled == () and "settle" in result.timings
    fake.settled.clear()
    Engine(fake).apply(shaped_host(P, ingress_bps=30_000_000))  # no link brought up
    assert fake.settled == []
