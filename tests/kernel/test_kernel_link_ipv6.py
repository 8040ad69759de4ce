"""IPv6 off link by link, in a namespace netmanager shares (a real host's root namespace,
played here by a namespace the test makes with the kernel's defaults: IPv6 on).

Every link the engine creates there with ``ipv6=False`` comes up with no link-local
address (no DAD, router solicitation or MLD report ever leaves it: IPv6 address
generation is off before it comes up) and ``disable_ipv6`` set; a tap it adopts there
loses its addresses; the switch is observed per link, so a change behind netmanager's
back shows as drift and is repaired; the namespace's own setting is never touched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netmanager.kernel import Engine, HostState, Link, LinkKind, Op, Scope
from tests.kernel.helpers import jrun, run

pytestmark = pytest.mark.privileged


def _disabled(ns: str, ifname: str) -> str:
    return run(
        "ip", "netns", "exec", ns, "cat", f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"
    ).strip()


def _ipv6_addresses(ns: str, ifname: str) -> list[str]:
    found = jrun("ip", "-n", ns, "-j", "-6", "addr", "show", "dev", ifname)
    return [a["local"] for entry in found for a in entry.get("addr_info", ())]


def test_links_in_a_shared_namespace_get_ipv6_off_one_by_one(prefix: str) -> None:
    if not Path("/proc/sys/net/ipv6").exists():
        pytest.skip("this kernel has no IPv6")
    ns = f"{prefix}r"
    run("ip", "netns", "add", ns)
    run("ip", "-n", ns, "link", "set", "lo", "up")
    assert _disabled(ns, "default") == "0", "a fresh namespace has IPv6 on (the test's premise)"
    bridge = Link(ns, f"{prefix}b", LinkKind.BRIDGE, alias="nm:t:net:lan", ipv6=False)
    ifb = Link(ns, f"{prefix}i", LinkKind.IFB, alias="nm:t:ifb:vm:lan", ipv6=False)
    scope = Scope.of("t", [], shared=[ns])
    desired = HostState.checked([bridge, ifb], scope)
    with Engine() as engine:
        engine.apply(desired, scope=scope)
        for link in (bridge, ifb):
            assert _disabled(ns, link.ifname) == "1"
            assert _ipv6_addresses(ns, link.ifname) == []
            (found,) = jrun("ip", "-n", ns, "-j", "-d", "link", "show", "dev", link.ifname)
            assert found.get("inet6_addr_gen_mode") == "none"
            assert "UP" in found["flags"]
        assert _disabled(ns, "default") == "0" and _disabled(ns, "all") == "0"
        assert engine.plan(desired, scope=scope).empty
        # drift: IPv6 switched on again behind netmanager's back
        run(
            "ip",
            "netns",
            "exec",
            ns,
            "sysctl",
            "-q",
            "-w",
            f"net.ipv6.conf.{bridge.ifname}.disable_ipv6=0",
        )
        drift = engine.plan(desired, scope=scope)
        assert [(c.op, c.obj.key) for c in drift.changes] == [(Op.MODIFY, bridge.key)]
        engine.apply(desired, scope=scope)
        assert _disabled(ns, bridge.ifname) == "1"
        # a tap made by someone else (libvirt), IPv6 on and a link-local address: adopted
        # by name, it loses both
        if os.path.exists("/dev/net/tun"):
            tap = f"{prefix}t"
            run("ip", "-n", ns, "tuntap", "add", "mode", "tap", "name", tap)
            run("ip", "-n", ns, "link", "set", tap, "up")
            run("ip", "-n", ns, "addr", "add", "fe80::1/64", "dev", tap, "nodad")
            assert _ipv6_addresses(ns, tap) != []
            adopted = Link(
                ns, tap, LinkKind.TAP, alias="nm:t:port:vm:lan", master=bridge.ifname, ipv6=False
            )
            tap_scope = Scope.of("t", [], shared=[ns], adopts=[(ns, tap)])
            with_tap = HostState.checked([bridge, ifb, adopted], tap_scope)
            engine.apply(with_tap, scope=tap_scope)
            assert _disabled(ns, tap) == "1" and _ipv6_addresses(ns, tap) == []
            assert engine.plan(with_tap, scope=tap_scope).empty
        engine.destroy(scope)
