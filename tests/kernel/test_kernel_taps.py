"""Taps and scopes of links against this machine's kernel: a guest's tap (created here as
QEMU's are, by TUNSETIFF on a descriptor the test holds) adopted by the engine — marked,
plugged into its switch's bridge, shaped — in a scope of that tap only, kept by the
infrastructure's whole-scope applies, never deleted by them, and left to wait when it
does not exist; one link's qdisc changed in place by a scope of that link, nothing else
observed or touched.  Read back through ``ip -j`` and ``tc -j``."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from netmanager.compile.desired import render_guest_taps, render_infrastructure
from netmanager.compile.hostconfig import INFRA, GuestHost, GuestNic, Infrastructure
from netmanager.kernel import (
    Engine,
    HostState,
    Link,
    LinkKind,
    Namespace,
    Op,
    Qdisc,
    Scope,
    tbf_for_rate,
)
from tests.kernel.helpers import jrun, run, vm

pytestmark = pytest.mark.privileged


def _has_tun() -> str | None:
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun on this machine"
    return None


@pytest.fixture
def switch(prefix: str) -> Iterator[tuple[str, Infrastructure, GuestHost]]:
    """A switch namespace with its bridge (built by the engine as the infrastructure
    owner), and a guest host whose one NIC is a tap in it, not created yet."""
    reason = _has_tun()
    if reason:
        pytest.skip(reason)
    ns = f"{prefix}s"
    nic = GuestNic("eth1", "52:54:00:00:00:01", ns, "br0", f"{prefix}t", 100_000_000, mtu=1400)
    guest = GuestHost("g1", (nic,))
    infra = Infrastructure(switch_namespaces=((ns, "br0"),), guests=(guest,))
    yield ns, infra, guest


def _open_tap(namespace: str, name: str) -> int:
    from netmanager.guests import qemu

    return qemu.open_tap(namespace, name)


def _tap(namespace: str, name: str) -> dict[str, object]:
    (link,) = jrun("ip", "-n", namespace, "-j", "-d", "link", "show", "dev", name)
    qdiscs = jrun("tc", "-n", namespace, "-j", "qdisc", "show", "dev", name)
    return {
        "master": link.get("master"),
        "mtu": link["mtu"],
        "up": "UP" in link["flags"],
        "alias": link.get("ifalias", ""),
        "root": [q["kind"] for q in qdiscs if q.get("root")],
    }


def _infra_scope(ns: str) -> Scope:
    return Scope.of(INFRA, [ns])


def test_a_tap_is_adopted_in_a_scope_of_that_tap_and_kept_by_the_infrastructure(
    switch: tuple[str, Infrastructure, GuestHost],
) -> None:
    ns, infra, guest = switch
    tap = guest.nics[0].tap
    whole = HostState.checked(render_infrastructure(infra))
    with Engine() as engine:
        # the guest is not running: its tap waits, with its qdisc; the bridge is built
        first = engine.apply(whole, scope=_infra_scope(ns))
        assert {c.obj.key for c in first.plan.changes if isinstance(c.obj, Link)} == {
            ("link", ns, "br0")
        }
        assert engine.plan(whole, scope=_infra_scope(ns)).empty
        fd = _open_tap(ns, tap)
        try:
            assert _tap(ns, tap)["master"] is None
            # the guest's taps only, through the engine: adopted, plugged, shaped
            taps = HostState(frozenset(render_guest_taps(guest)))
            scope = Scope.of_links(INFRA, [(ns, tap)])
            result = engine.apply(taps, scope=scope)
            assert {c.obj.key for c in result.plan.changes} == {o.key for o in taps.objects}
            assert not any(c.op is Op.DELETE for c in result.plan.changes)
            found = _tap(ns, tap)
            assert found == {
                "master": "br0",
                "mtu": 1400,
                "up": True,
                "alias": "nm:-:tap:g1:eth1",
                "root": ["tbf"],
            }
            assert engine.plan(taps, scope=scope).empty
            # the infrastructure's whole scope sees the tap as its own and as desired
            assert engine.plan(whole, scope=_infra_scope(ns)).empty
            # unplugged behind netmanager's back (drift): the whole-scope apply repairs it
            run("ip", "-n", ns, "link", "set", "dev", tap, "nomaster")
            repair = engine.apply(whole, scope=_infra_scope(ns))
            assert ("link", ns, tap) in {c.obj.key for c in repair.plan.changes}
            assert {c.op for c in repair.plan.changes} == {Op.MODIFY}  # (the bridge's MTU too)
            assert _tap(ns, tap)["master"] == "br0"
            # no longer desired (the guest left real.xml): left to its process, not
            # deleted; only its mark goes (and what hung on it), so that another owner
            # can adopt it
            bare = HostState.checked(
                render_infrastructure(Infrastructure(switch_namespaces=infra.switch_namespaces))
            )
            kept = engine.plan(bare, scope=_infra_scope(ns))
            on_tap = [c for c in kept.changes if c.obj.key == ("link", ns, tap)]
            assert [c.op for c in on_tap] == [Op.MODIFY]
            assert on_tap[0].obj.alias == "" and on_tap[0].obj.master == "br0"
        finally:
            os.close(fd)
        # the process ended: its tap went with it, and nothing is planned for it
        assert engine.plan(whole, scope=_infra_scope(ns)).empty
        engine.destroy(_infra_scope(ns))


def test_a_scope_of_one_link_changes_its_qdisc_in_place_and_sees_nothing_else(
    prefix: str,
) -> None:
    dom0 = f"{prefix}d"
    host = [
        Namespace(dom0),
        Link(dom0, "br0", LinkKind.BRIDGE, alias="nm:t:br"),
        *vm(dom0, f"{prefix}a", "nv1", "10.0.0.1/24", rate_bps=10_000_000),
        *vm(dom0, f"{prefix}b", "nv2", "10.0.0.2/24", rate_bps=10_000_000),
    ]
    scope_all = Scope.of("t", [dom0, f"{prefix}a", f"{prefix}b"])
    with Engine() as engine:
        engine.apply(HostState.checked(host), scope=scope_all)
        before = jrun("tc", "-n", dom0, "-j", "qdisc", "show", "dev", "nv1")
        (root,) = [q for q in before if q.get("root")]
        # one VM port: both ends of its veth pair, and what hangs on them
        one = Scope.of_links("t", [(dom0, "nv1"), (f"{prefix}a", "eth0")])
        seen = engine.observe(one)
        on_port = {o.key for o in host if (o.namespace, getattr(o, "ifname", "")) == (dom0, "nv1")}
        assert on_port <= {o.key for o in seen.objects}
        assert not any(o.namespace == f"{prefix}b" or "nv2" in o.key for o in seen.objects)
        assert not any(isinstance(o, Namespace) for o in seen.objects)
        faster = HostState(
            frozenset(
                {o for o in seen.objects if not isinstance(o, Qdisc) or o.ifname != "nv1"}
                | {Qdisc(dom0, "nv1", tbf_for_rate(50_000_000))}
            )
        )
        result = engine.apply(faster, scope=one)
        assert [(c.op, c.obj.key[0]) for c in result.plan.changes] == [(Op.MODIFY, "qdisc")]
        after = jrun("tc", "-n", dom0, "-j", "qdisc", "show", "dev", "nv1")
        (new_root,) = [q for q in after if q.get("root")]
        assert new_root["handle"] == root["handle"]  # changed in place, not replaced
        assert new_root["options"]["rate"] == 50_000_000 // 8
        other = jrun("tc", "-n", dom0, "-j", "qdisc", "show", "dev", "nv2")
        assert [q["options"]["rate"] for q in other if q.get("root")] == [10_000_000 // 8]
        # the whole scope now wants nv1 back as it was
        assert len(engine.plan(HostState.checked(host), scope=scope_all)) == 1
        engine.destroy(scope_all)
