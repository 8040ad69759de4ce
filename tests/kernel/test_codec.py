"""The netlink codec, cross-checked with pyroute2: its decoders read our requests, and our
decoders read what its encoders build.  No root needed."""

from __future__ import annotations

import errno
import ipaddress
import struct
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pyroute2 import IPBatch
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg
from pyroute2.netlink.rtnl.tcmsg import tcmsg

from netmanager.kernel import netlink as nl


def _pyroute2(cls: type, request: nl.Request) -> Any:
    """The request as pyroute2's message class ``cls`` decodes it (untyped: pyroute2 is)."""
    msg = cls(nl.frame(request, 7))
    msg.decode()
    return msg


def test_veth_creation_as_pyroute2_reads_it() -> None:
    request = nl.link_create(
        42,
        "p1",
        "veth",
        mtu=1450,
        up=True,
        mac="02:00:00:00:00:01",
        master=3,
        data=nl.veth_data(2, "eth0", peer_netns_fd=9, mtu=1450, mac=None),
    )
    msg = _pyroute2(ifinfmsg, request)
    assert msg["header"]["type"] == nl.RTM_NEWLINK
    assert msg["header"]["flags"] & nl.NLM_F_CREATE and msg["header"]["flags"] & nl.NLM_F_EXCL
    assert (msg["index"], msg["flags"], msg["change"]) == (42, nl.IFF_UP, nl.IFF_UP)
    assert msg.get_attr("IFLA_IFNAME") == "p1"
    assert msg.get_attr("IFLA_MTU") == 1450
    assert msg.get_attr("IFLA_MASTER") == 3
    assert msg.get_attr("IFLA_ADDRESS") == "02:00:00:00:00:01"
    info = msg.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "veth"
    peer = info.get_attr("IFLA_INFO_DATA").get_attr("VETH_INFO_PEER")
    assert peer["index"] == 2
    assert peer.get_attr("IFLA_IFNAME") == "eth0"
    assert peer.get_attr("IFLA_NET_NS_FD") == 9


def test_vxlan_creation_as_pyroute2_reads_it() -> None:
    data = nl.vxlan_data(
        4242, local=ipaddress.IPv4Address("192.0.2.1"), underlay=3, port=4789, learning=False
    )
    msg = _pyroute2(ifinfmsg, nl.link_create(5, "vx0", "vxlan", mtu=1450, up=True, data=data))
    vx = msg.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
    assert vx.get_attr("IFLA_VXLAN_ID") == 4242
    assert vx.get_attr("IFLA_VXLAN_LOCAL") == "192.0.2.1"
    assert vx.get_attr("IFLA_VXLAN_LINK") == 3
    assert vx.get_attr("IFLA_VXLAN_PORT") == 4789
    assert vx.get_attr("IFLA_VXLAN_LEARNING") == 0


def test_link_set_sends_only_what_changes() -> None:
    msg = _pyroute2(ifinfmsg, nl.link_set(7, mtu=1400, master=0))
    assert msg["change"] == 0  # the up flag is not touched
    assert msg.get_attr("IFLA_MTU") == 1400
    assert msg.get_attr("IFLA_MASTER") == 0  # release from the bridge
    assert msg.get_attr("IFLA_IFALIAS") is None
    msg = _pyroute2(ifinfmsg, nl.link_set(7, up=False, alias="nm:t:x"))
    assert (msg["flags"], msg["change"]) == (0, nl.IFF_UP)
    assert msg.get_attr("IFLA_IFALIAS") == "nm:t:x"


def test_address_route_and_fdb_as_pyroute2_reads_them() -> None:
    addr = _pyroute2(
        ifaddrmsg, nl.addr_request(nl.RTM_NEWADDR, 4, ipaddress.ip_interface("10.1.2.3/24"))
    )
    assert (addr["index"], addr["prefixlen"]) == (4, 24)
    assert addr.get_attr("IFA_LOCAL") == "10.1.2.3"
    route = _pyroute2(
        rtmsg,
        nl.route_request(
            nl.RTM_NEWROUTE,
            nl.NLM_F_CREATE,
            dst=ipaddress.ip_network("10.9.0.0/16"),
            oif=4,
            gateway=ipaddress.ip_address("10.1.2.254"),
            table=254,
            metric=7,
            protocol=0xEA,
        ),
    )
    assert (route["dst_len"], route["proto"], route["table"]) == (16, 0xEA, 254)
    assert route.get_attr("RTA_DST") == "10.9.0.0"
    assert route.get_attr("RTA_GATEWAY") == "10.1.2.254"
    assert route.get_attr("RTA_OIF") == 4
    assert route.get_attr("RTA_PRIORITY") == 7
    fdb = _pyroute2(
        ndmsg,
        nl.fdb_request(nl.RTM_NEWNEIGH, 5, "00:00:00:00:00:00", ipaddress.IPv4Address("192.0.2.7")),
    )
    assert (fdb["family"], fdb["ifindex"]) == (nl.AF_BRIDGE, 5)
    assert fdb["flags"] == nl.NTF_SELF and fdb["state"] & nl.NUD_PERMANENT
    assert fdb.get_attr("NDA_DST") == "192.0.2.7"
    assert fdb.get_attr("NDA_LLADDR") == "00:00:00:00:00:00"


def test_tbf_as_pyroute2_reads_it_and_back() -> None:
    request = nl.qdisc_request(
        nl.RTM_NEWQDISC,
        0,
        4,
        handle=0x10000,
        parent=nl.TC_H_ROOT,
        kind="tbf",
        options=nl.tbf_options(10_000_000, 5000, 67500),
    )
    msg = _pyroute2(tcmsg, request)
    parms = msg.get_attr("TCA_OPTIONS").get_attr("TCA_TBF_PARMS")
    assert parms["rate"] == 10_000_000 // 8
    assert parms["limit"] == 67500
    assert parms["buffer"] == 4_000_000 // 64  # 4 ms at 10 Mbit/s, in 64 ns ticks
    # and pyroute2's own TBF, read by our decoder
    batch = IPBatch()
    batch.tc("add", kind="tbf", index=4, handle="1:", rate="10mbit", burst=5000, limit=67500)
    sent = next(nl.messages(bytes(batch.batch)))
    tc = nl.decode_tc(sent.buf, sent.pos, sent.end)
    assert tc.kind == "tbf"
    assert nl.decode_tbf(nl.parse_attrs(tc.options, 0, len(tc.options))) == (
        10_000_000,
        5000,
        67500,
    )


def test_u32_filter_of_pyroute2_read_by_our_decoder() -> None:
    batch = IPBatch()
    batch.tc(
        "add-filter",
        "u32",
        index=4,
        parent=0x10000,
        prio=1,
        protocol=0x0800,
        keys=["0x0a4d0002/0xffffffff+12"],
        target=0x10010,
    )
    sent = next(nl.messages(bytes(batch.batch)))
    tc = nl.decode_tc(sent.buf, sent.pos, sent.end)
    decoded = nl.decode_u32(nl.parse_attrs(tc.options, 0, len(tc.options)))
    assert decoded == (0x10010, ipaddress.IPv4Network("10.77.0.2/32"), None)
    ours = nl.u32_options(0x10010, ipaddress.IPv4Network("10.77.0.2/32"), None)
    assert nl.decode_u32(nl.parse_attrs(ours, 0, len(ours))) == decoded


def test_htb_and_netem_round_trip() -> None:
    options = nl.htb_class_options(3_000_000, 5_000_000, 8000, 9000, 2)
    rate, ceil, burst, cburst, prio = nl.decode_htb_class(nl.parse_attrs(options, 0, len(options)))
    assert (rate, ceil, prio) == (3_000_000, 5_000_000, 2)
    assert abs(burst - 8000) <= nl.burst_tolerance(3_000_000)
    assert abs(cburst - 9000) <= nl.burst_tolerance(5_000_000)
    raw = nl.netem_options(20_000, 5_000, 1_000, 3000)
    delay, jitter, loss, limit = nl.decode_netem(raw)
    assert (delay, jitter, limit) == (20_000, 5_000, 3000)
    assert abs(loss - 1_000) <= 1


@given(
    rate=st.integers(min_value=8_000, max_value=40_000_000_000),
    burst=st.integers(min_value=1500, max_value=4_000_000),
)
def test_burst_survives_the_ticks_round_trip_within_tolerance(rate: int, burst: int) -> None:
    burst = min(burst, rate // 8 * 250)  # validate() refuses buckets of more than 250 s
    ticks = nl.bytes_to_ticks(rate, burst)
    assert abs(nl.ticks_to_bytes(rate, ticks) - burst) <= nl.burst_tolerance(rate)


def test_rates_above_32_bits_of_bytes_use_rate64() -> None:
    options = nl.tbf_options(40_000_000_000, 1_000_000, 2_000_000)
    attrs = nl.parse_attrs(options, 0, len(options))
    assert nl.TCA_TBF_RATE64 in attrs
    assert nl.decode_tbf(attrs)[0] == 40_000_000_000


def test_errors_carry_the_kernels_explanation() -> None:
    note = nl.attr_str(nl.NLMSGERR_ATTR_MSG, "Unknown device type")
    echoed = struct.pack("=IHHII", 32, nl.RTM_NEWLINK, 5, 9, 0)
    payload = struct.pack("=i", -errno.EOPNOTSUPP) + echoed + note
    frame = struct.pack("=IHHII", 16 + len(payload), nl.NLMSG_ERROR, 0x100 | 0x200, 9, 0)
    msg = next(nl.messages(frame + payload))
    assert nl.decode_error(msg) == (errno.EOPNOTSUPP, "Unknown device type")
    error = nl.NetlinkError(errno.EOPNOTSUPP, "Unknown device type", "create link x")
    assert error.errno == errno.EOPNOTSUPP
    assert "Operation not supported" in str(error) and "Unknown device type" in str(error)


def test_vlan_creation_as_pyroute2_reads_it_and_back() -> None:
    request = nl.link_create(9, "ul0.42", "vlan", mtu=1500, up=True, link=3, data=nl.vlan_data(42))
    msg = _pyroute2(ifinfmsg, request)
    assert msg.get_attr("IFLA_LINK") == 3
    info = msg.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "vlan"
    assert info.get_attr("IFLA_INFO_DATA").get_attr("IFLA_VLAN_ID") == 42
    batch = IPBatch()
    batch.link("add", ifname="ul0.7", kind="vlan", link=3, vlan_id=7)
    sent = next(nl.messages(bytes(batch.batch)))
    link = nl.decode_link(sent.buf, sent.pos, sent.end)
    assert (link.kind, link.peer_index, nl.decode_vlan(link.data)) == ("vlan", 3, 7)


def test_bridge_multicast_snooping_both_ways() -> None:
    request = nl.link_create(9, "br0", "bridge", mtu=1500, up=True, data=nl.bridge_data(False))
    info = _pyroute2(ifinfmsg, request).get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_DATA").get_attr("IFLA_BR_MCAST_SNOOPING") == 0
    change = _pyroute2(ifinfmsg, nl.link_set(9, kind="bridge", data=nl.bridge_data(True)))
    assert change["change"] == 0  # nothing else is touched
    data = change.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
    assert data.get_attr("IFLA_BR_MCAST_SNOOPING") == 1
    batch = IPBatch()
    batch.link("add", ifname="br1", kind="bridge", br_mcast_snooping=0)
    sent = next(nl.messages(bytes(batch.batch)))
    assert nl.decode_mcast_snooping(nl.decode_link(sent.buf, sent.pos, sent.end).data) is False
    assert nl.decode_mcast_snooping({}) is True  # the kernel's default


def test_ingress_redirect_as_pyroute2_reads_it() -> None:
    request = nl.filter_request(
        nl.RTM_NEWTFILTER,
        nl.NLM_F_CREATE | nl.NLM_F_EXCL,
        4,
        parent=0xFFFF0000,
        prio=1,
        handle=nl.u32_handle(1),
        options=nl.mirred_options(7),
        protocol=nl.ETH_P_ALL,
    )
    msg = _pyroute2(tcmsg, request)
    assert (msg["index"], msg["parent"], msg["handle"]) == (4, 0xFFFF0000, 0x80000001)
    assert msg["info"] == (1 << 16) | 0x0300  # prio 1, protocol all (network order)
    options = msg.get_attr("TCA_OPTIONS")
    sel = options.get_attr("TCA_U32_SEL")
    assert sel["nkeys"] == 1 and sel["keys"][0]["key_mask"] == 0  # matches everything
    assert options.get_attr("TCA_U32_CLASSID") is None
    action = options.get_attr("TCA_U32_ACT").get_attr("TCA_ACT_PRIO_1")
    assert action.get_attr("TCA_ACT_KIND") == "mirred"
    parms = action.get_attr("TCA_ACT_OPTIONS").get_attr("TCA_MIRRED_PARMS")
    assert (parms["eaction"], parms["action"], parms["ifindex"]) == (
        nl.TCA_EGRESS_REDIR,
        nl.TC_ACT_STOLEN,
        7,
    )
    ours = nl.mirred_options(7)
    assert nl.decode_mirred(nl.parse_attrs(ours, 0, len(ours))) == 7


def test_a_classifying_u32_node_is_no_redirect() -> None:
    options = nl.u32_options(0x10010, ipaddress.IPv4Network("10.0.0.0/8"), None)
    assert nl.decode_mirred(nl.parse_attrs(options, 0, len(options))) is None


def test_ingress_qdisc_has_no_options() -> None:
    request = nl.qdisc_request(
        nl.RTM_NEWQDISC,
        nl.NLM_F_CREATE | nl.NLM_F_EXCL,
        4,
        handle=0xFFFF0000,
        parent=0xFFFFFFF1,
        kind="ingress",
        options=b"",
    )
    msg = _pyroute2(tcmsg, request)
    assert (msg["handle"], msg["parent"]) == (0xFFFF0000, 0xFFFFFFF1)
    assert msg.get_attr("TCA_KIND") == "ingress"
    assert msg.get_attr("TCA_OPTIONS") is None
