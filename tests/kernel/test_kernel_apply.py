"""The engine against this machine's kernel, each test in its own namespaces.

Everything is checked through ``ip -j``, ``tc -j``, ``bridge -j`` and ping, never through
the engine itself.  Traffic only ever goes to addresses inside the test's namespaces.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import subprocess
import sys

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
    Netem,
    Op,
    Qdisc,
    Route,
    StalePlanError,
    Sysctl,
    U32Filter,
    VethPeer,
    Vxlan,
    tc_handle,
)
from tests.kernel.helpers import (
    ip_if,
    jrun,
    kernel_has_qdisc,
    netns_names,
    ping,
    root_links,
    run,
    small_host,
    snapshot,
    vm,
)

pytestmark = pytest.mark.privileged


def _tbf(namespace: str, dev: str) -> dict[str, object]:
    qdiscs = jrun("tc", "-n", namespace, "-s", "-j", "qdisc", "show", "dev", dev)
    assert len(qdiscs) == 1, qdiscs
    qdisc: dict[str, object] = qdiscs[0]
    return qdisc


def _link(namespace: str, ifname: str) -> dict[str, object]:
    link: dict[str, object] = jrun("ip", "-n", namespace, "-j", "-d", "link", "show", ifname)[0]
    return link


def test_apply_builds_a_small_host_that_pings(prefix: str) -> None:
    state = small_host(prefix)
    dom0, v1, v2 = f"{prefix}-d", f"{prefix}-v1", f"{prefix}-v2"
    with Engine() as engine:
        result = engine.apply(state)
    assert result.changes == len(state)
    assert netns_names(prefix) == sorted([dom0, v1, v2])
    for port in ("p1", "p2", "vx0"):
        link = _link(dom0, port)
        assert link["master"] == "br0"
        assert "UP" in link["flags"]  # type: ignore[operator]
        assert str(link["ifalias"]).startswith("nm:t:")
    eth0 = _link(v1, "eth0")
    assert eth0["mtu"] == 1450 and "UP" in eth0["flags"]  # type: ignore[operator]
    addrs = [
        i["local"]
        for a in jrun("ip", "-n", v1, "-j", "addr", "show", "eth0")
        for i in a["addr_info"]
        if i["family"] == "inet"
    ]
    assert addrs == ["10.77.0.1"]
    routes = jrun("ip", "-n", v1, "-j", "route", "show", "default")
    assert routes[0]["gateway"] == "10.77.0.2" and routes[0]["dev"] == "eth0"
    tbf = _tbf(dom0, "p1")
    assert tbf["kind"] == "tbf" and tbf["handle"] == "1:"
    assert tbf["options"]["rate"] == 10_000_000 // 8  # type: ignore[index]
    vx = _link(dom0, "vx0")["linkinfo"]["info_data"]  # type: ignore[index]
    assert vx["id"] == 100 and vx["local"] == "192.0.2.1" and vx["learning"] is False
    fdb = [e for e in jrun("bridge", "-n", dom0, "-j", "fdb", "show", "dev", "vx0") if e.get("dst")]
    assert [(e["mac"], e["dst"]) for e in fdb] == [("00:00:00:00:00:00", "192.0.2.2")]
    assert ping(v1, "10.77.0.2")
    assert ping(v2, "10.77.0.1")


def test_reapply_changes_nothing(prefix: str) -> None:
    state = small_host(prefix)
    with Engine() as engine:
        engine.apply(state)
        before = snapshot(netns_names(prefix))
        again = engine.plan(state)
        assert again.empty, again.render()
        assert engine.apply(state).changes == 0
    with Engine() as fresh:  # a new process's view: nothing cached
        assert fresh.plan(state).empty
    assert snapshot(netns_names(prefix)) == before


def test_rate_change_is_a_change_in_place(prefix: str) -> None:
    dom0 = f"{prefix}-d"
    with Engine() as engine:
        engine.apply(small_host(prefix, rate_bps=10_000_000))
        assert ping(f"{prefix}-v2", "10.77.0.1")  # traffic through p1's TBF
        sent_before = _tbf(dom0, "p1")["packets"]
        assert isinstance(sent_before, int) and sent_before > 0
        faster = small_host(prefix, rate_bps=50_000_000)
        change = engine.plan(faster)
        assert [(c.op, c.obj.KIND) for c in change.changes] == [(Op.MODIFY, "qdisc")]
        assert "rate_bps 10Mbit -> 50Mbit" in change.changes[0].reason
        engine.apply(faster)
        assert engine.plan(faster).empty
    tbf = _tbf(dom0, "p1")
    assert tbf["handle"] == "1:"
    assert tbf["options"]["rate"] == 50_000_000 // 8  # type: ignore[index]
    # changed in place, not deleted and re-added: the qdisc kept its counters
    assert isinstance(tbf["packets"], int) and tbf["packets"] >= sent_before


def test_drift_shows_in_the_plan_and_apply_repairs_it(prefix: str) -> None:
    state = small_host(prefix)
    v2 = f"{prefix}-v2"
    with Engine() as engine:
        engine.apply(state)
        run("ip", "-n", v2, "link", "delete", "eth0")  # by hand: takes p2 along
        run("ip", "-n", f"{prefix}-d", "link", "set", "vx0", "mtu", "1400")
        run("ip", "-n", f"{prefix}-v1", "link", "set", "eth0", "alias", "")  # marker gone
        drift = engine.plan(state)
        lines = drift.lines()
        assert any(
            line.startswith(f"~ link {prefix}-v1/eth0 (veth): alias  -> nm:t:") for line in lines
        ), lines
        assert any(line.startswith(f"+ link {prefix}-d/p2 (veth)") for line in lines), lines
        assert any(line.startswith(f"+ link {v2}/eth0 (veth)") for line in lines), lines
        assert any(line.startswith(f"+ address 10.77.0.2/24 on {v2}/eth0") for line in lines)
        assert any(
            line.startswith(f"~ link {prefix}-d/vx0") and "mtu 1400 -> 1450" in line
            for line in lines
        ), lines
        assert all(c.op is not Op.DELETE for c in drift.changes)
        engine.apply(state)
        assert engine.plan(state).empty
    assert _link(f"{prefix}-d", "vx0")["mtu"] == 1450
    assert ping(v2, "10.77.0.1")


def test_a_stale_plan_is_refused(prefix: str) -> None:
    state = small_host(prefix)
    with Engine() as engine:
        engine.apply(state)
        plan = engine.plan(small_host(prefix, rate_bps=20_000_000))
        run("ip", "-n", f"{prefix}-v1", "addr", "flush", "dev", "eth0")
        before = snapshot(netns_names(prefix))
        with pytest.raises(StalePlanError):
            engine.apply(plan)
        assert snapshot(netns_names(prefix)) == before


def test_fault_at_every_step_of_a_fresh_apply_leaves_nothing(prefix: str) -> None:
    state = small_host(prefix)
    before_root = root_links()
    with Engine() as engine:
        steps = len(engine.plan(state).steps)
    assert steps >= 10
    for k in range(steps):
        with Engine() as engine, pytest.raises(ApplyError) as failure:
            engine.apply(state, faults=Faults(fail_at=k))
        assert failure.value.rolled_back, str(failure.value)
        assert netns_names(prefix) == [], f"fault at step {k} left namespaces"
        assert root_links() == before_root


def _transition_target(prefix: str) -> HostState:
    """From small_host + v3 + ip_forward in v1 to: another VNI, another rate, v2 renumbered,
    v3 gone, v4 new, ip_forward off, a route added, an MTU changed."""
    dom0 = f"{prefix}-d"
    objects: list[KernelObject] = []
    for obj in small_host(prefix, rate_bps=20_000_000, vni=200):
        if isinstance(obj, Address) and obj.namespace == f"{prefix}-v2":
            obj = Address(obj.namespace, "eth0", ip_if("10.77.0.22/24"))
        objects.append(obj)
    objects += vm(dom0, f"{prefix}-v4", "p4", "10.77.0.4/24", rate_bps=5_000_000, mtu=1450)
    objects.append(
        Route(
            f"{prefix}-v2",
            ipaddress.ip_network("10.99.0.0/16"),
            "eth0",
            ipaddress.ip_address("10.77.0.1"),
        )
    )
    return HostState.checked(objects)


def _transition_start(prefix: str) -> HostState:
    dom0 = f"{prefix}-d"
    return HostState.checked(
        [
            *small_host(prefix),
            *vm(dom0, f"{prefix}-v3", "p3", "10.77.0.3/24", rate_bps=1_000_000, mtu=1450),
            Sysctl(f"{prefix}-v1", "net.ipv4.ip_forward", "1"),
        ]
    )


def test_fault_at_every_step_of_a_change_restores_the_state_before(prefix: str) -> None:
    start, target = _transition_start(prefix), _transition_target(prefix)
    scope = [f"{prefix}-{n}" for n in ("d", "v1", "v2", "v3", "v4")]
    with Engine() as engine:
        engine.apply(start)
        before = snapshot(netns_names(prefix))
        plan = engine.plan(target, namespaces=scope)
    ops = {c.op for c in plan.changes}
    assert ops == {Op.CREATE, Op.MODIFY, Op.DELETE}, plan.render()
    assert any(c.implied for c in plan.changes)
    for k in range(len(plan.steps)):
        with Engine() as engine, pytest.raises(ApplyError) as failure:
            engine.apply(target, namespaces=scope, faults=Faults(fail_at=k))
        assert failure.value.rolled_back, str(failure.value)
        after = snapshot(netns_names(prefix))
        assert after == before, f"fault at step {k} ({failure.value.failed.line()})"
    with Engine() as engine:
        engine.apply(target, namespaces=scope)
        assert engine.plan(target, namespaces=scope).empty
    assert ping(f"{prefix}-v4", "10.77.0.22")


def test_a_kernel_refusal_mid_batch_rolls_back(prefix: str) -> None:
    """A link the engine does not own blocks a name it wants: EEXIST from the kernel in the
    middle of a batch, after other requests of that batch took effect."""
    start = small_host(prefix)
    dom0 = f"{prefix}-d"
    with Engine() as engine:
        engine.apply(start)
        run("ip", "-n", dom0, "link", "add", "p9", "type", "bridge")  # not ours: no alias
        before = snapshot(netns_names(prefix))
        target = HostState.checked(
            [
                *small_host(prefix, rate_bps=30_000_000),
                *vm(dom0, f"{prefix}-v9", "p9", "10.77.0.9/24", mtu=1450),
            ]
        )
        with pytest.raises(ApplyError) as failure:
            engine.apply(target)
    assert failure.value.rolled_back
    assert "EEXIST" in str(failure.value.error)
    assert snapshot(netns_names(prefix)) == before
    assert _link(dom0, "p9")["linkinfo"]["info_kind"] == "bridge"  # type: ignore[index]


def test_destroy_removes_everything_and_only_that(prefix: str) -> None:
    before = root_links()
    with Engine() as engine:
        engine.apply(small_host(prefix))
        result = engine.destroy(netns_names(prefix))
    assert result.plan.counts()["delete"] == 3
    assert netns_names(prefix) == []
    assert root_links() == before


def test_sysctl_is_set_and_restored(prefix: str) -> None:
    base = small_host(prefix)
    v1 = f"{prefix}-v1"
    forwarding = HostState.checked([*base, Sysctl(v1, "net.ipv4.ip_forward", "1")])

    def value() -> str:
        return run("nsenter", f"--net=/run/netns/{v1}", "cat", "/proc/sys/net/ipv4/ip_forward")

    with Engine() as engine:
        engine.apply(forwarding)
        assert value().strip() == "1"
        assert engine.plan(forwarding).empty
        engine.apply(base)
        assert value().strip() == "0"


def test_htb_classes_and_u32_filters_per_destination(prefix: str) -> None:
    dom0 = f"{prefix}-d"
    base = list(small_host(prefix))
    base = [o for o in base if not (isinstance(o, Qdisc) and o.ifname == "p1")]

    def shaped(rate_to_v2: int) -> HostState:
        return HostState.checked(
            [
                *base,
                Qdisc(dom0, "p1", Htb(default_minor=0x20)),
                HtbClass(dom0, "p1", tc_handle("1:10"), rate_to_v2, rate_to_v2, 8000, 8000),
                HtbClass(dom0, "p1", tc_handle("1:20"), 100_000_000, 100_000_000, 64000, 64000),
                U32Filter(
                    dom0,
                    "p1",
                    flowid=tc_handle("1:10"),
                    handle=1,
                    src=ipaddress.IPv4Network("10.77.0.2/32"),
                ),
            ]
        )

    with Engine() as engine:
        engine.apply(shaped(2_000_000))
        assert engine.plan(shaped(2_000_000)).empty
        change = engine.plan(shaped(3_000_000))
        assert [(c.op, c.obj.KIND) for c in change.changes] == [(Op.MODIFY, "class")]
        engine.apply(shaped(3_000_000))
    # iproute2 6.1 prints HTB classes as text even with -j
    classes = run("tc", "-n", dom0, "class", "show", "dev", "p1")
    assert re.search(r"class htb 1:10 root .*rate 3Mbit ceil 3Mbit", classes), classes
    assert re.search(r"class htb 1:20 root .*rate 100Mbit", classes), classes
    filters = [
        f
        for f in jrun("tc", "-n", dom0, "-j", "filter", "show", "dev", "p1")
        if f.get("options", {}).get("flowid")
    ]
    assert [f["options"]["flowid"] for f in filters] == ["1:10"]
    assert ping(f"{prefix}-v2", "10.77.0.1")


def test_netem_needs_a_kernel_with_netem(prefix: str) -> None:
    if not kernel_has_qdisc("netem", prefix):
        pytest.skip(
            "this kernel has no sch_netem (NetEm is encoded, but cannot be applied here;"
            " tests/guests/test_in_guest.py runs this in a guest)"
        )
    dom0 = f"{prefix}-d"
    state = HostState.checked(
        [o for o in small_host(prefix) if not isinstance(o, Qdisc)]
        + [Qdisc(dom0, "p1", Netem(delay_us=20_000, limit_packets=2000))]
    )
    with Engine() as engine:
        engine.apply(state)
        assert engine.plan(state).empty
    qdisc = _tbf(dom0, "p1")
    assert qdisc["kind"] == "netem"


def _emulated_host(
    prefix: str, host: int, peer_ul: str, vms: list[tuple[str, str]], vni: int = 42
) -> list[KernelObject]:
    dom0 = f"{prefix}-h{host}"
    local = ipaddress.IPv4Address(f"192.0.2.{host}")
    objects: list[KernelObject] = [
        Namespace(dom0),
        Link(
            dom0,
            "ul0",
            LinkKind.VETH,
            alias="nm:fabric:ul",
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
        Address(dom0, "ul0", ip_if(f"192.0.2.{host}/24")),
        Link(dom0, "br-n1", LinkKind.BRIDGE, alias="nm:t:n1", mtu=1450),
        Link(
            dom0,
            "vx-n1",
            LinkKind.VXLAN,
            alias="nm:t:n1/vx",
            master="br-n1",
            mtu=1450,
            vxlan=Vxlan(vni=vni, local=local, underlay="ul0"),
        ),
        FdbEntry(dom0, "vx-n1", ipaddress.IPv4Address(peer_ul)),
    ]
    for name, address in vms:
        objects += vm(
            dom0,
            f"{prefix}-{name}",
            f"{name}-0",
            address,
            bridge="br-n1",
            mtu=1450,
            rate_bps=100_000_000,
        )
    return objects


def _two_hosts(prefix: str, vni_on_host2: int = 42) -> HostState:
    switch = f"{prefix}-sw"
    return HostState.checked(
        [
            Namespace(switch),
            Link(switch, "sw0", LinkKind.BRIDGE, alias="nm:fabric:sw"),
            *_emulated_host(
                prefix, 1, "192.0.2.2", [("a1", "10.60.0.1/24"), ("a2", "10.60.0.2/24")]
            ),
            *_emulated_host(prefix, 2, "192.0.2.1", [("b1", "10.60.0.3/24")], vni=vni_on_host2),
        ]
    )


def test_two_hosts_joined_by_vxlan_over_an_emulated_underlay(prefix: str) -> None:
    state = _two_hosts(prefix)
    with Engine() as engine:
        engine.apply(state)
        assert engine.plan(state).empty
    assert ping(f"{prefix}-a1", "10.60.0.3")  # host 1 -> host 2, through VXLAN
    assert ping(f"{prefix}-b1", "10.60.0.2")
    assert ping(f"{prefix}-a1", "10.60.0.2")  # same host
    fdb = jrun("bridge", "-n", f"{prefix}-h1", "-j", "fdb", "show", "dev", "vx-n1")
    assert {e["dst"] for e in fdb if e.get("dst")} == {"192.0.2.2"}
    # another VNI on one side replaces its VXLAN and cuts the network; re-applying heals it
    broken = _two_hosts(prefix, vni_on_host2=43)
    with Engine() as engine:
        replace = engine.plan(broken)
        assert {c.op for c in replace.changes if not c.implied} == {Op.DELETE, Op.CREATE}
        engine.apply(broken)
    assert not ping(f"{prefix}-a1", "10.60.0.3", attempts=1)
    with Engine() as engine:
        engine.apply(state)
    assert ping(f"{prefix}-a1", "10.60.0.3")


def test_nothing_outside_the_prefix_is_touched(prefix: str) -> None:
    """A namespace of another prefix, with a link carrying our marker, stays as it is."""
    other = f"{prefix}x-other"
    subprocess.run(["ip", "netns", "add", other], check=True)
    try:
        run("ip", "-n", other, "link", "add", "b0", "type", "bridge")
        run("ip", "-n", other, "link", "set", "b0", "alias", "nm:someone:else")
        before = snapshot([other])
        with Engine() as engine:
            engine.apply(small_host(prefix))
            engine.destroy([f"{prefix}-d", f"{prefix}-v1", f"{prefix}-v2"])
        assert snapshot([other]) == before
    finally:
        subprocess.run(["ip", "netns", "delete", other], check=False)


def _offloads(namespace: str, ifname: str) -> dict[str, bool]:
    """TSO, GSO and GRO of a link, read by pyroute2's ethtool inside the namespace."""
    code = (
        "import json, sys; from pyroute2.ethtool import Ethtool; "
        "f = Ethtool().get_features(sys.argv[1]).features; "
        "print(json.dumps({k: f[k].enable for k in "
        "('tx-tcp-segmentation', 'tx-generic-segmentation', 'rx-gro')}))"
    )
    out = run("ip", "netns", "exec", namespace, sys.executable, "-c", code, ifname)
    result: dict[str, bool] = json.loads(out)
    return result


def test_offloads_are_turned_off_on_a_shaped_port(prefix: str) -> None:
    dom0 = f"{prefix}-d"

    def state(offloads: bool | None) -> HostState:
        return HostState.checked(
            [
                dataclasses.replace(o, offloads=offloads)
                if isinstance(o, Link) and o.namespace == dom0 and o.ifname == "p1"
                else o
                for o in small_host(prefix)
            ]
        )

    with Engine() as engine:
        engine.apply(state(None))
        assert _offloads(dom0, "p1")["tx-tcp-segmentation"] is True  # veth default
        change = engine.plan(state(False))
        assert [(c.op, c.obj.KIND) for c in change.changes] == [(Op.MODIFY, "link")]
        engine.apply(state(False))
        assert engine.plan(state(False)).empty
        assert set(_offloads(dom0, "p1").values()) == {False}
        assert _offloads(dom0, "p2")["tx-tcp-segmentation"] is True  # untouched
        engine.apply(state(True))
    assert set(_offloads(dom0, "p1").values()) == {True}
