"""Ownership scopes: several owners (and the infrastructure owner '-') in one shared dom0,
and the root namespace as dom0.  Over the in-memory fake kernel; no root needed."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from netmanager.kernel import (
    ROOT_NAMESPACE,
    Address,
    ApplyError,
    Engine,
    Faults,
    HostState,
    KernelObject,
    KernelStateError,
    Link,
    LinkKind,
    MissingNamespaceError,
    Namespace,
    Qdisc,
    Scope,
    Sysctl,
    VethPeer,
    tbf_for_rate,
    validate,
)
from netmanager.kernel.fake import FakeKernel
from tests.kernel import helpers
from tests.kernel.helpers import infra_state, ip_if, owner_scope

P = "nmo"
DOM0 = f"{P}-dom0"
INFRA = Scope.of("-", [DOM0])


def infra() -> HostState:
    return infra_state(DOM0)


def scope_of(owner: str, vms: list[str], dom0: str = DOM0) -> Scope:
    return owner_scope(P, owner, vms, dom0)


def owner_state(
    owner: str,
    net: int,
    vms: list[str],
    *,
    rate_bps: int = 10_000_000,
    vni: int = 100,
    dom0: str = DOM0,
) -> HostState:
    return helpers.owner_state(P, owner, net, vms, dom0, rate_bps=rate_bps, vni=vni)


def _applied() -> FakeKernel:
    fake = FakeKernel()
    engine = Engine(fake)
    engine.apply(infra(), scope=INFRA)
    engine.apply(owner_state("A", 1, ["1", "2"]), scope=scope_of("A", ["1", "2"]))
    engine.apply(owner_state("B", 2, ["1", "2"], vni=200), scope=scope_of("B", ["1", "2"]))
    return fake


A_NEXT = (
    owner_state("A", 1, ["2", "3"], rate_bps=20_000_000, vni=101),
    scope_of("A", ["1", "2", "3"]),
)


def test_each_owner_sees_exactly_its_objects() -> None:
    fake = _applied()
    engine = Engine(fake)
    a, b = owner_state("A", 1, ["1", "2"]), owner_state("B", 2, ["1", "2"], vni=200)
    assert engine.observe(INFRA) == infra()
    assert engine.observe(scope_of("A", ["1", "2"])) == a
    assert engine.observe(scope_of("B", ["1", "2"])) == b
    assert fake.state() == infra().union(a, b)
    for state, scope in ((infra(), INFRA), (a, scope_of("A", ["1", "2"]))):
        assert engine.plan(state, scope=scope).empty
    # the first version's view of dom0: every netmanager object in it, of every owner
    everything = engine.observe([DOM0])
    assert {o.alias for o in everything.objects if isinstance(o, Link)} >= {
        "nm:-:underlay",
        "nm:A:net",
        "nm:B:net",
    }


def test_changing_and_destroying_one_owner_leaves_the_others_as_they_were() -> None:
    fake = _applied()
    engine = Engine(fake)
    b_scope = scope_of("B", ["1", "2"])
    b_before, infra_before = engine.observe(b_scope), engine.observe(INFRA)
    state, scope = A_NEXT
    p = engine.plan(state, scope=scope)
    touched = {c.obj.namespace for c in p.changes}
    assert touched <= {DOM0, f"{P}-a1", f"{P}-a2", f"{P}-a3"}
    for change in p.changes:
        if isinstance(change.obj, Link) and change.obj.namespace == DOM0:
            assert change.obj.alias.startswith("nm:A:"), change.line()
    assert not any(c.obj.KIND == "netns" and c.obj.namespace == DOM0 for c in p.changes)
    engine.apply(state, scope=scope)
    assert engine.plan(state, scope=scope).empty
    assert engine.observe(b_scope) == b_before
    assert engine.observe(INFRA) == infra_before
    result = engine.destroy(scope)
    assert {c.obj.KIND for c in result.plan.changes if not c.implied} <= {"netns", "link"}
    assert engine.observe(scope) == HostState()
    assert fake.state() == infra_before.union(b_before)


@pytest.mark.parametrize("destroy", [False, True])
def test_a_fault_anywhere_in_one_owners_apply_leaves_every_owner_as_before(
    destroy: bool,
) -> None:
    before = _applied().state()
    state, scope = (HostState(), A_NEXT[1]) if destroy else A_NEXT
    steps = len(Engine(FakeKernel(before)).plan(state, scope=scope).steps)
    assert steps > 5
    for k in range(steps):
        trial = FakeKernel(before, batch=1 + k % 4)
        with pytest.raises(ApplyError) as failure:
            Engine(trial).apply(state, scope=scope, faults=Faults(fail_at=k))
        assert failure.value.rolled_back, str(failure.value)
        assert trial.state() == before, f"fault at step {k}: {failure.value.failed.line()}"


def test_the_infrastructure_reapplied_leaves_the_owners_alone() -> None:
    fake = _applied()
    owners = fake.state()
    changed = HostState.checked(
        [o for o in infra() if not isinstance(o, Sysctl)]
        + [Link(DOM0, "ul1", LinkKind.BRIDGE, alias="nm:-:underlay2")],
        INFRA,
    )
    p = Engine(fake).plan(changed, scope=INFRA)
    assert sorted(c.line() for c in p.changes) == [
        f"+ link {DOM0}/ul1 (bridge): missing",
        f"- sysctl net.ipv4.ip_forward=1 in {DOM0}: not desired",
    ]
    Engine(fake).apply(changed, scope=INFRA)
    assert fake.state().within([f"{P}-a1", f"{P}-b1"]) == owners.within([f"{P}-a1", f"{P}-b1"])
    assert {o for o in fake.state() if "nm:A:" in getattr(o, "alias", "")} == {
        o for o in owners if "nm:A:" in getattr(o, "alias", "")
    }


def test_a_missing_shared_namespace_is_a_clear_error_and_changes_nothing() -> None:
    fake = FakeKernel()
    scope = scope_of("A", ["1"])
    with pytest.raises(MissingNamespaceError) as failure:
        Engine(fake).apply(owner_state("A", 1, ["1"]), scope=scope)
    assert failure.value.problems == [
        f"shared namespace {DOM0} does not exist: the scope of owner 'A' puts objects there"
        " but never creates it (its own owner must be applied first); nothing was changed"
    ]
    assert fake.executed == []
    assert Engine(fake).destroy(scope).changes == 0  # nothing of A there: nothing to do


def test_scoped_states_are_validated() -> None:
    scope = scope_of("A", ["1"])
    objects: list[KernelObject] = [
        Namespace(DOM0),  # shared: never declared
        Link(DOM0, "brx", LinkKind.BRIDGE, alias="nm:B:net"),  # another owner's marker
        Sysctl(DOM0, "net.ipv4.ip_forward", "1"),  # dom0's own
        Link(f"{P}-a1", "eth0", LinkKind.BRIDGE, alias="nm:A:x", master="br-other"),
        Address(DOM0, "ul0", ip_if("10.0.0.1/24")),  # on another owner's link
    ]
    text = "\n".join(validate(HostState.of(objects), scope))
    for expected in (
        f"netns {DOM0}: is shared in this scope",
        "alias 'nm:B:net' does not carry the marker of owner 'A' ('nm:A:')",
        "the sysctls of a shared namespace belong to its owner",
        f"master {P}-a1/br-other is not in the state",  # foreign links only where shared
        f"link {DOM0}/ul0 is not in the state",
    ):
        assert expected in text, text
    assert "ul0" not in "\n".join(validate(owner_state("A", 1, ["1"]), scope))
    bad = Scope.of("A:b", [ROOT_NAMESPACE, "x"], shared=["x"])
    assert bad.problems() == [
        "owner 'A:b' must be a non-empty name without ':'",
        "the root namespace can only be shared, never owned (created or deleted)",
        "namespaces both owned and shared: x",
    ]


def test_plans_record_their_scope() -> None:
    fake = _applied()
    state, scope = A_NEXT
    p = Engine(fake).plan(state, scope=scope)
    document = json.loads(json.dumps(p.to_json()))
    assert document["scope"] == {
        "owner": "A",
        "namespaces": sorted(scope.namespaces),
        "shared": [DOM0],
    }
    assert Engine(fake).apply(p).plan is p  # observes the same scope again: not stale


# ------------------------------------------------------------------------- root namespace

ROOT_A = scope_of("A", ["1"], dom0=ROOT_NAMESPACE)


def _root_host() -> FakeKernel:
    """A fake whose root namespace holds someone else's links already."""
    return FakeKernel(
        [
            Link(ROOT_NAMESPACE, "eth0", LinkKind.BRIDGE, alias=""),
            Link(ROOT_NAMESPACE, "ul0", LinkKind.BRIDGE, alias="nm:-:underlay"),
            Link(ROOT_NAMESPACE, "brb", LinkKind.BRIDGE, alias="nm:B:net"),
        ]
    )


def test_the_root_namespace_as_a_shared_dom0() -> None:
    fake = _root_host()
    before = fake.state()
    state = owner_state("A", 1, ["1"], dom0=ROOT_NAMESPACE)
    p = Engine(fake).plan(state, scope=ROOT_A)
    assert "netns (root)" not in p.render()
    assert any(line.startswith("+ link (root)/bra (bridge)") for line in p.lines())
    Engine(fake).apply(state, scope=ROOT_A)
    assert Engine(fake).observe(ROOT_A) == state
    assert Engine(fake).plan(state, scope=ROOT_A).empty
    Engine(fake).destroy(ROOT_A)
    assert fake.state() == before


def test_the_root_namespace_is_never_declared_nor_used_without_a_scope() -> None:
    assert "the root namespace is never created or deleted" in "\n".join(
        validate(HostState.of([Namespace(ROOT_NAMESPACE)]))
    )
    state = owner_state("A", 1, ["1"], dom0=ROOT_NAMESPACE)
    with pytest.raises(KernelStateError) as failure:
        Engine(_root_host()).plan(state)
    assert "the root namespace holds objects only through a Scope that shares it" in str(
        failure.value
    )
    assert _root_host().absent([ROOT_NAMESPACE, "nope"]) == {"nope"}


def test_a_veth_between_an_owned_and_a_shared_namespace() -> None:
    fake = FakeKernel([Namespace(DOM0)])
    scope = Scope.of("A", [f"{P}-a1"], shared=[DOM0])
    state = HostState.checked(
        [
            Namespace(f"{P}-a1"),
            Link(DOM0, "a1p", LinkKind.VETH, alias="nm:A:a1", peer=VethPeer(f"{P}-a1", "eth0")),
            Link(f"{P}-a1", "eth0", LinkKind.VETH, alias="nm:A:a1", peer=VethPeer(DOM0, "a1p")),
            Qdisc(DOM0, "a1p", tbf_for_rate(1_000_000)),
        ],
        scope,
    )
    Engine(fake).apply(state, scope=scope)
    assert Engine(fake).plan(state, scope=scope).empty
    p = Engine(fake).plan(HostState(), scope=scope)
    sent = [p.changes[i].line() for i in p.steps]
    assert sent == [
        f"- link {DOM0}/a1p (veth): not desired",
        f"- netns {P}-a1: not desired",
    ]


def test_a_scope_of_links_sees_those_links_and_what_hangs_on_them_only() -> None:
    fake = _applied()
    engine = Engine(fake)
    everything = fake.state()
    ports = sorted(
        o.ifname
        for o in everything.objects
        if isinstance(o, Link) and o.namespace == DOM0 and o.alias.startswith("nm:A:")
    )
    port = ports[0]
    seen = engine.observe(Scope.of_links("A", [(DOM0, port)]))
    assert {o.key for o in seen.objects} == {
        o.key
        for o in everything.objects
        if o.namespace == DOM0
        and (o.key == ("link", DOM0, port) or getattr(o, "ifname", "") == port)
    }
    # another owner's link is not claimed by naming it
    theirs = next(
        o.ifname
        for o in everything.objects
        if isinstance(o, Link) and o.namespace == DOM0 and o.alias.startswith("nm:B:")
    )
    assert engine.observe(Scope.of_links("A", [(DOM0, theirs)])).objects == frozenset()
    # nothing observed, nothing planned: the rest of the host is not in the plan
    unchanged = engine.plan(seen, scope=Scope.of_links("A", [(DOM0, port)]))
    assert unchanged.empty
    assert Scope.of_links("A", [(DOM0, port)]).problems() == []
    assert Scope("A", frozenset({DOM0}), frozenset(), frozenset()).problems() != []


def test_an_unmarked_tap_is_adopted_by_the_scope_owning_its_namespace_and_never_deleted() -> None:
    tap = Link(DOM0, "tap0", LinkKind.TAP, alias="")
    other = Link(DOM0, "tap1", LinkKind.TAP, alias="nm:B:tap")
    found = INFRA.select([Namespace(DOM0), tap, other])
    assert tap in found.objects and other not in found.objects
    shared = Scope.of("-", [], shared=[DOM0])
    assert tap not in shared.select([Namespace(DOM0), tap]).objects  # not its namespace
    # desired but absent: waits (no creation), with its qdisc
    wanted = Link(DOM0, "tap0", LinkKind.TAP, alias="nm:-:tap", master="br0")
    shaping = Qdisc(DOM0, "tap0", tbf_for_rate(10_000_000))
    from netmanager.kernel import plan

    waiting = plan(
        HostState(frozenset({Namespace(DOM0), wanted, shaping})),
        HostState(frozenset({Namespace(DOM0)})),
        scope=INFRA,
    )
    assert waiting.empty
    # observed but no longer desired: left to its process, never deleted; its qdisc goes
    # and its mark is cleared (released: another owner may adopt it)
    observed = HostState(frozenset({Namespace(DOM0), wanted, shaping}))
    left = plan(HostState(frozenset({Namespace(DOM0)})), observed, scope=INFRA)
    assert {(c.op.value, c.obj.key) for c in left.changes} == {
        ("-", shaping.key),
        ("~", wanted.key),
    }
    released = next(c.obj for c in left.changes if c.obj.key == wanted.key)
    assert released == replace(wanted, alias="")
    unmarked = HostState(frozenset({Namespace(DOM0), tap}))
    assert plan(HostState(frozenset({Namespace(DOM0)})), unmarked, scope=INFRA).empty


def test_a_nic_is_configured_when_named_never_created_nor_deleted() -> None:
    """A NIC (no link kind in the kernel: a guest's virtio device, a real host's card) is
    the scope's only when a scope of links names it; absent it waits, no longer desired it
    is left where it is."""
    from netmanager.kernel import plan

    nic = Link(ROOT_NAMESPACE, "eth0", LinkKind.NIC, alias="")
    named = Scope.of_links("-", [(ROOT_NAMESPACE, "eth0")])
    assert named.select([nic]).objects == frozenset({nic})
    assert Scope.of("-", [], shared=[ROOT_NAMESPACE]).select([nic]).objects == frozenset()
    wanted = Link(ROOT_NAMESPACE, "eth0", LinkKind.NIC, alias="nm:-:underlay:h:eth0", mtu=1400)
    shaping = Qdisc(ROOT_NAMESPACE, "eth0", tbf_for_rate(10_000_000))
    assert plan(HostState(frozenset({wanted, shaping})), HostState(), scope=named).empty
    adopted = plan(
        HostState(frozenset({wanted, shaping})), HostState(frozenset({nic})), scope=named
    )
    assert {(c.op.value, c.obj.key) for c in adopted.changes} == {
        ("~", wanted.key),
        ("+", shaping.key),
    }
    # no longer desired: released (unmarked), never deleted
    let_go = plan(HostState(), HostState(frozenset({wanted})), scope=named)
    assert [(c.op.value, c.obj) for c in let_go.changes] == [("~", replace(wanted, alias=""))]
    assert plan(HostState(), HostState(frozenset({nic})), scope=named).empty


def test_a_scope_adopts_named_taps_in_a_namespace_it_shares() -> None:
    """A libvirt host's domain taps sit in the dom0 the topology shares: the scope adopts
    them by name (unmarked, or marked by it), and sees no other unmarked tap there."""
    vnet = Link(DOM0, "vnet3", LinkKind.TAP, alias="")
    stranger = Link(DOM0, "vnet4", LinkKind.TAP, alias="")
    theirs = Link(DOM0, "vnet5", LinkKind.TAP, alias="nm:B:port:x:y")
    scope = Scope.of("A", [], shared=[DOM0], adopts=[(DOM0, "vnet3"), (DOM0, "vnet5")])
    found = scope.select([Namespace(DOM0), vnet, stranger, theirs]).objects
    assert found == frozenset({vnet})
    assert scope.including(["nmo-vm"]).adopts == scope.adopts
    assert scope.to_json()["adopts"] == [[DOM0, "vnet3"], [DOM0, "vnet5"]]


def test_a_state_less_some_links_loses_what_hangs_on_them() -> None:
    tap = Link(DOM0, "vnet3", LinkKind.TAP, alias="nm:A:port", master="br0")
    bridge = Link(DOM0, "br0", LinkKind.BRIDGE, alias="nm:A:net")
    shaping = Qdisc(DOM0, "vnet3", tbf_for_rate(10_000_000))
    state = HostState.of([Namespace(DOM0), bridge, tap, shaping])
    assert state.without_links([(DOM0, "vnet3")]).objects == frozenset({Namespace(DOM0), bridge})
    assert state.without_links([(DOM0, "absent")]) is state


def test_a_link_s_own_ipv6_is_compared_only_where_both_sides_track_it() -> None:
    """Link.ipv6: observed per link only in a shared namespace with IPv6 on (a real
    host's root namespace); where the namespace has it off everywhere it is observed as
    None, which matches a desired False (a guest host's root namespace) and the None of
    netmanager's own namespaces."""
    from netmanager.kernel.plan import compare

    off = Link(DOM0, "br0", LinkKind.BRIDGE, alias="nm:A:net", ipv6=False)
    untracked = replace(off, ipv6=None)
    on = replace(off, ipv6=True)
    assert compare(off, untracked) == ([], []) and compare(untracked, on) == ([], [])
    assert compare(off, on) == (["ipv6 yes -> no"], [])
