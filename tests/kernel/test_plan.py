"""Planning and the journal over the in-memory fake kernel (which fails like the real one).
No root: these run everywhere."""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import itertools
import json
import random

import pytest

from netmanager.kernel import (
    Address,
    ApplyError,
    Engine,
    Faults,
    FdbEntry,
    HostState,
    Htb,
    HtbClass,
    KernelObject,
    Link,
    LinkKind,
    Namespace,
    Op,
    Plan,
    Qdisc,
    Route,
    StalePlanError,
    Sysctl,
    U32Filter,
    Verb,
    Vxlan,
    plan,
    tc_handle,
)
from netmanager.kernel.fake import FakeKernel
from tests.kernel.helpers import ip_if, small_host, vm

P = "nmu"


def _applied(state: HostState) -> FakeKernel:
    fake = FakeKernel()
    Engine(fake).apply(state)
    return fake


def _position(p: Plan, op: Op, label_start: str) -> int:
    for i, change in enumerate(p.changes):
        if change.op is op and change.obj.label().startswith(label_start):
            return i
    raise AssertionError(f"no {op} {label_start} in\n{p.render()}")


def test_first_plan_creates_in_dependency_order() -> None:
    p = plan(small_host(P), HostState())
    assert {c.op for c in p.changes} == {Op.CREATE}
    assert p.counts() == {"create": len(small_host(P)), "modify": 0, "delete": 0, "implied": 0}
    pos = {c.obj.key: i for i, c in enumerate(p.changes)}
    for change in p.changes:
        obj = change.obj
        if isinstance(obj, Link | Address | Route | Qdisc | FdbEntry):
            assert pos[("netns", obj.namespace)] < pos[obj.key]
        if isinstance(obj, Link) and obj.master:
            assert pos[("link", obj.namespace, obj.master)] < pos[obj.key]
        if isinstance(obj, Link) and obj.peer and not obj.creates_pair:
            assert pos[("link", obj.peer.namespace, obj.peer.ifname)] < pos[obj.key]
        if isinstance(obj, Route):
            addresses = [k for k in pos if k[0] == "address" and k[1:3] == (obj.namespace, obj.dev)]
            assert all(pos[a] < pos[obj.key] for a in addresses)


def test_changes_of_one_namespace_stay_together() -> None:
    dom0 = f"{P}-d"
    state = HostState.checked(
        [
            Namespace(dom0),
            Link(dom0, "br0", LinkKind.BRIDGE, alias="nm:t:br", mtu=1500),
            *(
                o
                for i in range(6)
                for o in vm(
                    dom0,
                    f"{P}-v{i}",
                    f"p{i}",
                    f"10.0.0.{i + 1}/24",
                    gateway="10.0.0.254",
                    rate_bps=1_000_000,
                )
            ),
        ]
    )
    p = plan(state, HostState())
    channels = [c.obj.namespace for c in p.changes if not isinstance(c.obj, Namespace)]
    runs = 1 + sum(1 for a, b in itertools.pairwise(channels) if a != b)
    assert runs == 7, p.render()  # dom0 once, then each VM once


def test_reapply_is_empty_and_rate_change_is_one_modify() -> None:
    fake = _applied(small_host(P))
    engine = Engine(fake)
    assert engine.plan(small_host(P)).empty
    faster = engine.plan(small_host(P, rate_bps=20_000_000))
    assert [(c.op, c.obj.KIND) for c in faster.changes] == [(Op.MODIFY, "qdisc")]
    assert faster.changes[0].do() is not None
    assert faster.changes[0].do().verb is Verb.MODIFY  # type: ignore[union-attr]


def test_a_new_vni_replaces_the_vxlan_and_its_fdb_entries_follow() -> None:
    fake = _applied(small_host(P))
    p = Engine(fake).plan(small_host(P, vni=200))
    lines = p.lines()
    delete = _position(p, Op.DELETE, f"link {P}-d/vx0")
    create = _position(p, Op.CREATE, f"link {P}-d/vx0")
    assert delete < create
    fdb_gone = _position(p, Op.DELETE, f"fdb 00:00:00:00:00:00 dst 192.0.2.2 on {P}-d/vx0")
    assert p.changes[fdb_gone].implied_by == delete, lines
    assert p.changes[create].reason.startswith("replaced: vxlan"), lines
    refdb = _position(p, Op.CREATE, f"fdb 00:00:00:00:00:00 dst 192.0.2.2 on {P}-d/vx0")
    assert "recreated" in p.changes[refdb].reason
    Engine(fake).apply(small_host(P, vni=200))
    assert Engine(fake).plan(small_host(P, vni=200)).empty


def test_destroy_sends_only_namespace_deletions() -> None:
    fake = _applied(small_host(P))
    p = Engine(fake).plan(HostState(), namespaces=[f"{P}-d", f"{P}-v1", f"{P}-v2"])
    sent = [p.changes[i] for i in p.steps]
    assert [c.obj.KIND for c in sent] == ["netns"] * 3
    assert p.counts()["implied"] == len(small_host(P)) - 3
    assert "follow by themselves" in p.summary()
    Engine(fake).destroy([f"{P}-d", f"{P}-v1", f"{P}-v2"])
    assert len(fake.state()) == 0


def test_a_veth_leaving_a_surviving_namespace_is_deleted_explicitly() -> None:
    dom0 = f"{P}-d"
    fake = _applied(small_host(P))
    without_v2 = HostState.checked(
        [o for o in small_host(P) if o.namespace != f"{P}-v2" and getattr(o, "ifname", "") != "p2"]
    )
    p = Engine(fake).plan(without_v2, namespaces=[f"{P}-v2"])
    sent = [p.changes[i].line() for i in p.steps]
    assert sent[0].startswith(f"- link {dom0}/p2 (veth)"), sent
    assert sent[1].startswith(f"- netns {P}-v2"), sent


def test_bridge_deletion_releases_ports_and_rollback_reattaches_them() -> None:
    dom0 = f"{P}-d"
    start = small_host(P)
    fake = _applied(start)
    renamed = []
    for obj in start:
        if isinstance(obj, Link) and obj.ifname == "br0":
            obj = Link(dom0, "br1", LinkKind.BRIDGE, alias="nm:t:net1", mtu=1450)
        elif isinstance(obj, Link) and obj.master == "br0":
            obj = Link(
                obj.namespace,
                obj.ifname,
                obj.kind,
                obj.alias,
                obj.mtu,
                obj.up,
                "br1",
                obj.mac,
                obj.peer,
                obj.vxlan,
            )
        renamed.append(obj)
    target = HostState.checked(renamed)
    p = Engine(fake).plan(target)
    released = [c for c in p.changes if c.op is Op.MODIFY and c.implied]
    assert {c.obj.label() for c in released} == {
        f"link {dom0}/{n} ({k})" for n, k in (("p1", "veth"), ("p2", "veth"), ("vx0", "vxlan"))
    }
    steps = len(p.steps)
    for k in range(steps):
        fake_k = _applied(start)
        with pytest.raises(ApplyError) as failure:
            Engine(fake_k).apply(target, faults=Faults(fail_at=k))
        assert failure.value.rolled_back
        assert fake_k.state() == fake.state(), f"step {k}"
    Engine(fake).apply(target)
    assert Engine(fake).plan(target).empty


def test_drift_is_planned_and_repaired() -> None:
    fake = _applied(small_host(P))
    fake.model.delete(("link", f"{P}-v2", "eth0"))  # as `ip link del` would
    p = Engine(fake).plan(small_host(P))
    assert {c.op for c in p.changes} == {Op.CREATE}
    assert {c.obj.KIND for c in p.changes} == {"link", "address"}
    Engine(fake).apply(small_host(P))
    assert Engine(fake).plan(small_host(P)).empty


def test_a_stale_plan_is_refused() -> None:
    fake = _applied(small_host(P))
    engine = Engine(fake)
    p = engine.plan(small_host(P, rate_bps=3_000_000))
    fake.model.delete(("address", f"{P}-v1", "eth0", "10.77.0.1/24"))
    with pytest.raises(StalePlanError):
        engine.apply(p)


def test_undo_failures_are_reported_not_dropped() -> None:
    fake = _applied(small_host(P))
    target = small_host(P, rate_bps=1_000_000, vni=7)
    with pytest.raises(ApplyError) as failure:
        Engine(fake).apply(target, faults=Faults(fail_at=3, fail_undo_at=0))
    error = failure.value
    assert not error.rolled_back
    assert len(error.undo_failures) == 1
    assert "NOT as it was" in str(error)
    assert json.dumps(error.to_json())


def test_a_kernel_refusal_in_the_middle_of_a_batch_rolls_back() -> None:
    start = small_host(P)
    fake = _applied(start)
    before = fake.state()
    fake.refuse = lambda a: (
        errno.EBUSY if a.obj.label().startswith(f"qdisc tbf 1: at root on {P}-d/p3") else None
    )
    target = HostState.checked(
        [
            *small_host(P, rate_bps=5_000_000),
            *vm(f"{P}-d", f"{P}-v3", "p3", "10.77.0.3/24", rate_bps=1_000_000, mtu=1450),
        ]
    )
    with pytest.raises(ApplyError) as failure:
        Engine(fake).apply(target)
    assert failure.value.error.errno == errno.EBUSY
    assert failure.value.rolled_back
    assert fake.state() == before


def test_plans_serialize_to_json() -> None:
    p = plan(small_host(P), HostState())
    document = json.loads(json.dumps(p.to_json()))
    assert document["counts"]["create"] == len(small_host(P))
    assert document["changes"][0] == {
        "op": "+",
        "kind": "netns",
        "object": f"netns {P}-d",
        "reason": "missing",
        "spec": {"name": f"{P}-d", "loopback_up": True, "ipv6": False},
    }


# ------------------------------------------------------------- random transitions, all faults


def _random_state(rng: random.Random, prefix: str) -> HostState:
    """A random but valid host: 1-2 networks with VXLANs, 0-4 VMs, shaping, routes, HTB."""
    dom0 = f"{prefix}-d"
    objects: list[KernelObject] = [Namespace(dom0, loopback_up=rng.random() < 0.9)]
    bridges = [f"br{i}" for i in range(rng.randint(1, 2))]
    ports: dict[str, list[int]] = {b: [] for b in bridges}
    vms = rng.sample(range(5), rng.randint(0, 4))
    for n in vms:
        bridge = rng.choice(bridges)
        mtu = rng.choice([1450, 1500])
        ports[bridge].append(mtu)
        gateway = "10.0.0.254" if rng.random() < 0.5 else None
        rate = rng.choice([None, 1_000_000, 10_000_000, 100_000_000])
        objects += vm(
            dom0,
            f"{prefix}-v{n}",
            f"p{n}",
            f"10.0.0.{n + 1}/24",
            bridge=bridge,
            gateway=gateway,
            rate_bps=rate,
            mtu=mtu,
        )
        offloads = rng.choice([None, False, True])
        objects = [
            dataclasses.replace(o, offloads=offloads)
            if isinstance(o, Link) and o.namespace == dom0 and o.ifname == f"p{n}"
            else o
            for o in objects
        ]
        if rng.random() < 0.3:
            objects.append(Address(f"{prefix}-v{n}", "eth0", ip_if(f"10.1.{n}.1/24")))
        if rng.random() < 0.3:
            objects.append(Sysctl(f"{prefix}-v{n}", "net.ipv4.ip_forward", "1"))
        if rate is None and rng.random() < 0.4:
            objects += [
                Qdisc(dom0, f"p{n}", Htb(default_minor=0x20)),
                HtbClass(
                    dom0,
                    f"p{n}",
                    tc_handle("1:10"),
                    rng.choice([1, 2]) * 1_000_000,
                    2_000_000,
                    8000,
                    8000,
                ),
                HtbClass(dom0, f"p{n}", tc_handle("1:20"), 5_000_000, 5_000_000, 8000, 8000),
                U32Filter(
                    dom0,
                    f"p{n}",
                    tc_handle("1:10"),
                    handle=1,
                    dst=ipaddress.IPv4Network(f"10.0.0.{rng.randint(1, 9)}/32"),
                ),
            ]
    for i, bridge in enumerate(bridges):
        vx_mtu = rng.choice([1450, 1400])
        ports[bridge].append(vx_mtu)
        objects += [
            Link(
                dom0,
                f"vx{i}",
                LinkKind.VXLAN,
                alias=f"nm:t:vx{i}",
                master=bridge,
                mtu=vx_mtu,
                vxlan=Vxlan(vni=rng.choice([10, 20]) + i),
            ),
            *(
                FdbEntry(dom0, f"vx{i}", ipaddress.IPv4Address(f"192.0.2.{d}"))
                for d in rng.sample(range(1, 5), rng.randint(0, 2))
            ),
        ]
        objects.append(
            Link(
                dom0,
                bridge,
                LinkKind.BRIDGE,
                alias=f"nm:t:{bridge}",
                mtu=min(ports[bridge]),
                up=rng.random() < 0.9,
            )
        )
    return HostState.checked(objects)


@pytest.mark.parametrize("seed", range(40))
def test_random_transitions_roll_back_at_every_step(seed: int) -> None:
    rng = random.Random(seed)
    start, target = _random_state(rng, P), _random_state(rng, P)
    scope = [f"{P}-d", *(f"{P}-v{n}" for n in range(5))]
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


def test_a_plan_is_applied_exactly_as_shown() -> None:
    fake = _applied(small_host(P))
    engine = Engine(fake)
    shown = engine.plan(small_host(P, rate_bps=2_000_000, vni=9))
    fake.executed.clear()
    result = engine.apply(shown)
    assert result.plan is shown
    assert [a.label() for a in fake.executed] == [
        shown.changes[i].do().label()  # type: ignore[union-attr]
        for i in shown.steps
    ]
    assert json.loads(json.dumps(result.to_json()))["changes"] == len(shown)
