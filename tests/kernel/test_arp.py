"""ARP probes out of an interface of a namespace (what a libvirt host checks a guest
netmanager cannot configure by): the kernel behind a veth (a bridge port) answers for its own address
from its MAC, not for another; an interface that does not exist has no answers; the
probes carry sender address 0.0.0.0, so the answering side learns no neighbour."""

from __future__ import annotations

import ipaddress

import pytest

from netmanager.kernel.arp import who_has
from tests.kernel.helpers import jrun, run

pytestmark = pytest.mark.privileged

A = ipaddress.IPv4Address


def test_who_has_finds_the_address_behind_an_interface(prefix: str) -> None:
    host, guest = f"{prefix}h", f"{prefix}g"
    run("ip", "netns", "add", host)
    run("ip", "netns", "add", guest)
    run("ip", "-n", host, "link", "add", "tap0", "type", "veth", "peer", "eth0", "netns", guest)
    # the host's end is a bridge port, as a domain's tap is (the bridge takes the frames
    # before any handler of ARP alone sees them)
    run("ip", "-n", host, "link", "add", "br0", "type", "bridge")
    run("ip", "-n", host, "link", "set", "tap0", "master", "br0")
    run("ip", "-n", host, "link", "set", "br0", "up")
    run("ip", "-n", host, "link", "set", "tap0", "up")
    run("ip", "-n", guest, "link", "set", "eth0", "up")
    run("ip", "-n", guest, "addr", "add", "10.77.0.5/24", "dev", "eth0")
    (nic,) = jrun("ip", "-n", guest, "-j", "link", "show", "dev", "eth0")
    found = who_has(host, {"tap0": [A("10.77.0.5"), A("10.77.0.6")], "nothere": [A("10.77.0.7")]})
    assert found == {
        ("tap0", A("10.77.0.5")): {nic["address"]},
        ("tap0", A("10.77.0.6")): set(),
        ("nothere", A("10.77.0.7")): set(),
    }
    # sender 0.0.0.0: the guest learnt no neighbour from the probes
    assert jrun("ip", "-n", guest, "-j", "neigh", "show", "dev", "eth0") == []
    # the address gone: silence
    run("ip", "-n", guest, "addr", "del", "10.77.0.5/24", "dev", "eth0")
    assert who_has(host, {"tap0": [A("10.77.0.5")]}, timeout_s=0.3) == {
        ("tap0", A("10.77.0.5")): set()
    }
