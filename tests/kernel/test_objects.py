"""The model: identities, validation, names, tc handles, shaping formulas.  No root."""

from __future__ import annotations

import ipaddress

import pytest

from netmanager.kernel import (
    Address,
    HostState,
    KernelObject,
    KernelStateError,
    Link,
    LinkKind,
    Namespace,
    Qdisc,
    Route,
    Sysctl,
    VethPeer,
    format_handle,
    kernel_name,
    tbf_for_rate,
    tc_handle,
    validate,
)
from netmanager.kernel.shaping import htb_burst_bytes, netem_for, tbf_burst_bytes
from tests.kernel.helpers import small_host, vm


def test_small_host_is_valid() -> None:
    assert validate(small_host("nmx")) == []


def test_every_problem_is_reported_at_once() -> None:
    objects: list[KernelObject] = [
        Namespace("a"),
        Link("a", "this-name-is-too-long", LinkKind.BRIDGE, alias="nm:t:x"),
        Link("a", "br0", LinkKind.BRIDGE, alias="mine"),
        Link("a", "p0", LinkKind.VETH, alias="nm:t:p0", master="nope", peer=VethPeer("b", "e0")),
        Address("a", "ghost", ipaddress.ip_interface("10.0.0.1/24")),
        Route("a", ipaddress.ip_network("0.0.0.0/0"), "br0", ipaddress.ip_address("::1")),
        Sysctl("a", "net.ipv4.ip_forward", "0"),
        Sysctl("a", "kernel.panic", "1"),
    ]
    with pytest.raises(KernelStateError) as failure:
        HostState.checked(objects)
    text = "\n".join(failure.value.problems)
    for expected in (
        "interface names have 1-15 characters",
        "alias 'mine' must start with 'nm:'",
        "master a/nope is not in the state",
        "peer namespace b is not in the state",
        "link a/ghost is not in the state",
        "gateway and destination differ in family",
        "is the default; leave it out",
        "not a managed sysctl",
    ):
        assert expected in text, text


def test_bridge_mtu_must_be_its_smallest_ports() -> None:
    objects = [
        Namespace("d"),
        Link("d", "br0", LinkKind.BRIDGE, alias="nm:t:br", mtu=1500),
        *vm("d", "v", "p0", "10.0.0.1/24", mtu=1450),
    ]
    assert any("smallest port" in p for p in validate(HostState.of(objects)))


def test_the_same_key_twice_differently_is_refused() -> None:
    with pytest.raises(KernelStateError):
        HostState.of([Namespace("a"), Namespace("a", loopback_up=False)])
    assert len(HostState.of([Namespace("a"), Namespace("a")])) == 1


def test_the_creating_end_of_a_veth_pair_is_the_smaller_one() -> None:
    a = Link("h", "p1", LinkKind.VETH, alias="nm:t:x", peer=VethPeer("h-vm", "eth0"))
    b = Link("h-vm", "eth0", LinkKind.VETH, alias="nm:t:x", peer=VethPeer("h", "p1"))
    assert a.creates_pair and not b.creates_pair


def test_kernel_names_fit_and_stay_distinct() -> None:
    assert kernel_name("nm", "g", "vm1") == "nm-g-vm1"
    long_a = kernel_name("nm", "aef-grid", "proxy-site-a-01")
    long_b = kernel_name("nm", "aef-grid", "proxy-site-a-02")
    assert len(long_a) <= 15 and len(long_b) <= 15
    assert long_a != long_b
    assert long_a == kernel_name("nm", "aef-grid", "proxy-site-a-01")


def test_tc_handles() -> None:
    assert tc_handle("1:") == 0x10000
    assert tc_handle("1:a") == 0x1000A
    assert format_handle(tc_handle("ffff:")) == "ffff:"
    assert format_handle(tc_handle("root")) == "root"
    with pytest.raises(ValueError):
        tc_handle("12")


@pytest.mark.parametrize(
    ("rate", "burst"),
    [
        (1_000_000, 2 * 1514),  # two frames: the rate/HZ term is only 500 bytes
        (10_000_000, 5_000),  # 10 Mbit/s / 8 / 250
        (100_000_000, 65_536),  # a whole GSO packet from 100 Mbit/s up
        (1_000_000_000, 500_000),  # 4 ms at 1 Gbit/s
    ],
)
def test_tbf_burst_follows_the_rate(rate: int, burst: int) -> None:
    assert tbf_burst_bytes(rate) == burst


def test_tbf_queue_holds_the_latency_budget_or_the_bdp() -> None:
    tbf = tbf_for_rate(10_000_000)
    assert tbf.limit_bytes == 5_000 + 62_500  # burst + 50 ms at 10 Mbit/s
    with_rtt = tbf_for_rate(10_000_000, rtt_us=200_000)
    assert with_rtt.limit_bytes == 5_000 + 250_000  # the BDP of a 200 ms path
    tiny = tbf_for_rate(64_000)
    assert tiny.limit_bytes >= tiny.burst_bytes + 8 * 1514
    with pytest.raises(ValueError):
        tbf_for_rate(0)


def test_netem_queue_holds_what_is_in_flight() -> None:
    assert netem_for(20_000, rate_bps=10_000_000).limit_packets == 1000
    big = netem_for(100_000, 10_000, rate_bps=10_000_000_000)
    # 10 Gbit/s for 110 ms is 137.5 MB: 90,819 frames of 1514 bytes, times 1.5
    assert big.limit_packets == 136_229


def test_qdisc_kind_and_labels() -> None:
    q = Qdisc("d", "p1", tbf_for_rate(1_000_000))
    assert q.kind == "tbf"
    assert q.label() == "qdisc tbf 1: at root on d/p1"


def test_offloads_are_a_property_of_veth_ends_only() -> None:
    bridge = Link("a", "br0", LinkKind.BRIDGE, alias="nm:t:br", offloads=False)
    problems = validate(HostState.of([Namespace("a"), bridge]))
    assert any("offloads are set on veth ends only" in p for p in problems)


def test_without_offloads_the_burst_needs_no_gso_floor() -> None:
    assert tbf_burst_bytes(100_000_000) == 65_536
    assert tbf_burst_bytes(100_000_000, offloads=False) == 50_000
    assert tbf_for_rate(100_000_000, offloads=False).burst_bytes == 50_000


def test_htb_buckets_follow_the_same_rule() -> None:
    assert htb_burst_bytes(10_000_000) == tbf_burst_bytes(10_000_000) == 5_000
