"""Ownership scopes against this machine's kernel: two owners and the infrastructure in one
shared dom0, and the root namespace as a dom0.  Checked through ``ip -j``, ``tc -j`` and
``bridge -j``; the same applies replayed on the in-memory fake kernel must observe the same
(the fake is the contract the unit tests rely on)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from netmanager.kernel import (
    ROOT_NAMESPACE,
    Address,
    Engine,
    HostState,
    Link,
    LinkKind,
    Namespace,
    Op,
    Scope,
    VethPeer,
    ifb_ingress,
    plan,
    tbf_for_rate,
)
from netmanager.kernel.fake import FakeKernel
from tests.kernel.helpers import (
    infra_state,
    ip_if,
    jrun,
    netns_names,
    owner_scope,
    owner_state,
    ping,
    run,
    snapshot,
)

pytestmark = pytest.mark.privileged


def _untimed(value: Any) -> Any:
    """A JSON value without the bridge's running timers (``forward_delay_timer``,
    ``hello_timer``, ...), which count down whatever anyone does."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if not k.endswith("_timer")}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def _devices(namespace: str, devices: set[str]) -> dict[str, Any]:
    """Everything ``ip -j``, ``tc -j`` and ``bridge -j`` say about some links of a
    namespace, as they print it but for running timers (one namespace may hold other
    owners' links too)."""
    out: dict[str, Any] = {}
    for dev in sorted(devices):

        def show(*argv: str) -> Any:
            text = run(*argv[:1], "-n", namespace, "-j", *argv[1:])
            return _untimed(json.loads(text)) if text.strip() else None

        out[dev] = {
            "link": show("ip", "-d", "link", "show", "dev", dev),
            "addr": show("ip", "addr", "show", "dev", dev),
            "route": show("ip", "route", "show", "table", "all", "dev", dev),
            "qdisc": show("tc", "qdisc", "show", "dev", dev),
            "filter": show("tc", "filter", "show", "dev", dev, "ingress"),
            "fdb": show("bridge", "fdb", "show", "dev", dev),
        }
    return out


def _assert_same(before: Any, after: Any, path: str = "") -> None:
    """``before == after``, failing with the first difference's path and values."""
    if isinstance(before, dict) and isinstance(after, dict):
        assert before.keys() == after.keys(), path
        for key in before:
            _assert_same(before[key], after[key], f"{path}/{key}")
    elif isinstance(before, list | tuple) and isinstance(after, list | tuple):
        assert len(before) == len(after), f"{path}: {before} != {after}"
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            _assert_same(b, a, f"{path}[{i}]")
    else:
        assert before == after, f"{path}:\n  before {before}\n  after  {after}"


def _links_of(namespace: str, marker: str) -> set[str]:
    return {
        link["ifname"]
        for link in jrun("ip", "-n", namespace, "-j", "link")
        if link.get("ifalias", "").startswith(marker)
    }


def _same_as_fake(engine: Engine, fake: FakeKernel, scopes: list[Scope]) -> None:
    """The kernel observed through each scope equals the fake after the same applies
    (up to what the kernel chooses: MAC addresses, offloads, bucket rounding)."""
    for scope in scopes:
        differences = plan(fake.observe(scope), engine.observe(scope))
        assert differences.empty, f"{scope.owner}:\n{differences.render()}"


def test_two_owners_share_a_dom0(prefix: str) -> None:
    dom0 = f"{prefix}-d"
    infra = Scope.of("-", [dom0])
    a_scope = owner_scope(prefix, "A", ["1", "2", "3"], dom0)
    b_scope = owner_scope(prefix, "B", ["1", "2"], dom0)
    steps: list[tuple[HostState, Scope]] = [
        (infra_state(dom0), infra),
        (owner_state(prefix, "A", 1, ["1", "2"], dom0), a_scope),
        (owner_state(prefix, "B", 2, ["1", "2"], dom0, vni=200), b_scope),
    ]
    fake = FakeKernel()
    with Engine() as engine:
        for state, scope in steps:
            engine.apply(state, scope=scope)
            Engine(fake).apply(state, scope=scope)
        for state, scope in steps:
            assert engine.plan(state, scope=scope).empty, scope.owner
        _same_as_fake(engine, fake, [infra, a_scope, b_scope])
    assert ping(f"{prefix}-a1", "10.1.0.2")
    assert ping(f"{prefix}-b2", "10.2.0.1")
    assert ping(f"{prefix}-a1", "10.1.0.254")  # the bridge's address in dom0

    b_links = _links_of(dom0, "nm:B:")
    infra_links = _links_of(dom0, "nm:-:")
    assert b_links == {"brb", "vxb", "b1p", "b2p", "b1i", "b2i"}
    b_namespaces = [f"{prefix}-b1", f"{prefix}-b2"]
    b_before = (_devices(dom0, b_links | infra_links), snapshot(b_namespaces))

    # A again, changed: a VM gone, one new, other rates, another VNI (its VXLAN replaced)
    a_next = owner_state(prefix, "A", 1, ["2", "3"], dom0, rate_bps=20_000_000, vni=101)
    with Engine() as engine:
        result = engine.apply(a_next, scope=a_scope)
        Engine(fake).apply(a_next, scope=a_scope)
        assert {c.op for c in result.plan.changes} == {Op.CREATE, Op.MODIFY, Op.DELETE}
        assert engine.plan(a_next, scope=a_scope).empty
        _same_as_fake(engine, fake, [infra, a_scope, b_scope])
    _assert_same(b_before, (_devices(dom0, b_links | infra_links), snapshot(b_namespaces)))
    assert ping(f"{prefix}-a3", "10.1.0.2")
    assert ping(f"{prefix}-b1", "10.2.0.2")

    with Engine() as engine:
        engine.destroy(a_scope)
        Engine(fake).destroy(a_scope)
        assert engine.observe(a_scope) == HostState()
        _same_as_fake(engine, fake, [infra, a_scope, b_scope])
    assert _links_of(dom0, "nm:A:") == set()
    assert not [n for n in netns_names(prefix) if n.startswith(f"{prefix}-a")]
    assert (_devices(dom0, b_links | infra_links), snapshot(b_namespaces)) == b_before
    assert ping(f"{prefix}-b1", "10.2.0.2")


# ------------------------------------------------------------------------- root namespace


def _root_links() -> dict[str, str]:
    """Every link of the root namespace as ``ip -j -d link`` prints it, by name."""
    return {
        link["ifname"]: json.dumps(link, sort_keys=True) for link in jrun("ip", "-j", "-d", "link")
    }


@pytest.fixture
def root_names(prefix: str) -> Iterator[list[str]]:
    """Names of the links a test may create in the root namespace (all unique to the test,
    ``nmt<hex>`` plus a letter), deleted afterwards whatever happened."""
    names = [f"{prefix}r", f"{prefix}i"]
    try:
        yield names
    finally:
        for name in names:
            subprocess.run(["ip", "link", "delete", name], check=False, capture_output=True)


def test_the_root_namespace_as_a_shared_dom0(prefix: str, root_names: list[str]) -> None:
    port, ifb = root_names
    vm_ns = f"{prefix}-v"
    owner = prefix  # unique: no link of the machine carries nm:<owner>: already
    scope = Scope.of(owner, [vm_ns], shared=[ROOT_NAMESPACE])
    alias = f"nm:{owner}:vm/eth0"
    state = HostState.checked(
        [
            Namespace(vm_ns),
            Link(ROOT_NAMESPACE, port, LinkKind.VETH, alias=alias, peer=VethPeer(vm_ns, "eth0")),
            Link(vm_ns, "eth0", LinkKind.VETH, alias=alias, peer=VethPeer(ROOT_NAMESPACE, port)),
            Address(vm_ns, "eth0", ip_if("198.18.0.1/30")),
            *ifb_ingress(ROOT_NAMESPACE, port, ifb, f"nm:{owner}:vm/ifb", tbf_for_rate(1_000_000)),
        ],
        scope,
    )
    others = _root_links()
    assert port not in others and ifb not in others
    with Engine() as engine:
        applied = engine.apply(state, scope=scope)
        assert "netns (root)" not in applied.plan.render()
        now = _root_links()
        assert {n: v for n, v in now.items() if n not in root_names} == others
        link = json.loads(now[port])
        assert link["ifalias"] == alias and "UP" in link["flags"]
        assert json.loads(now[ifb])["linkinfo"]["info_kind"] == "ifb"
        redirects = jrun("tc", "-j", "filter", "show", "dev", port, "ingress")
        assert any(
            a.get("to_dev") == ifb
            for f in redirects
            for a in f.get("options", {}).get("actions", [])
        )
        observed = engine.observe(scope)
        assert {o.key for o in observed} == {o.key for o in state}  # nothing else of root
        assert engine.plan(state, scope=scope).empty
        destroyed = engine.destroy(scope)
        assert not any(
            c.obj.KIND == "netns" and not c.obj.namespace for c in destroyed.plan.changes
        )
    assert _root_links() == others
    assert netns_names(vm_ns) == []
