"""SET checking on the configuration tables, without a network: RowStatus transitions,
error statuses and positions, idempotent retries, persistence."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest
from pysnmp.proto import rfc1902

from netmanager.host.candidate import NetworkConfig, PortConfig
from netmanager.snmp import mib
from netmanager.snmp.tables import SetError
from snmp_agents.configstore import ConfigStore
from snmp_agents.oidtree import Oid


def col(name: str) -> Oid:
    return mib.oid_of(name)


def s_index(*names: str) -> Oid:
    out: tuple[int, ...] = ()
    for n in names:
        out += (len(n), *n.encode())
    return out


def vb(name: str, index: Oid, value: Any) -> tuple[Oid, Any]:
    return (*col(name), *index), value


def plan(store: ConfigStore, *varbinds: tuple[Oid, Any]) -> bool:
    p = store.plan([(i, oid, v) for i, (oid, v) in enumerate(varbinds)])
    store.apply(p)
    return p.changed


def refused(store: ConfigStore, *varbinds: tuple[Oid, Any]) -> tuple[str, int]:
    before = store.to_json()
    with pytest.raises(SetError) as err:
        plan(store, *varbinds)
    assert store.to_json() == before, "a refused SET changed the store"
    return err.value.status, err.value.position


Int = rfc1902.Integer32
U = rfc1902.Unsigned32
S = rfc1902.OctetString
A = rfc1902.IpAddress
LAN = s_index("lan")


def network(store: ConfigStore, status: str = "createAndGo", segment: int = 100) -> bool:
    return plan(
        store,
        vb("nmNetworkRowStatus", LAN, Int({"createAndGo": 4, "createAndWait": 5}[status])),
        vb("nmNetworkEncap", LAN, Int(1)),
        vb("nmNetworkSegmentId", LAN, U(segment)),
    )


def test_create_and_go_fills_defaults() -> None:
    store = ConfigStore()
    assert network(store)
    assert store.candidate().networks == (NetworkConfig(name="lan", encap="vlan", segment_id=100),)


def test_create_and_wait_then_active() -> None:
    store = ConfigStore()
    idx = (*s_index("vm1"), *LAN)
    plan(store, vb("nmPortRowStatus", idx, Int(5)))
    assert store.tables["ports"][idx].status == "notReady"
    assert store.candidate().ports == ()  # only active rows count
    assert refused(store, vb("nmPortRowStatus", idx, Int(1))) == ("inconsistentValue", 0)
    plan(store, vb("nmPortAddress", idx, A("10.0.0.1")), vb("nmPortPrefixLength", idx, U(24)))
    assert store.tables["ports"][idx].status == "notInService"
    plan(store, vb("nmPortRowStatus", idx, Int(1)))
    assert store.candidate().ports == (
        PortConfig(vm="vm1", network="lan", address=IPv4Address("10.0.0.1"), prefix_length=24),
    )


def test_retried_create_changes_nothing_but_a_different_one_is_refused() -> None:
    store = ConfigStore()
    network(store)
    assert network(store) is False  # the same request again: accepted, no change
    assert refused(
        store,
        vb("nmNetworkRowStatus", LAN, Int(4)),
        vb("nmNetworkSegmentId", LAN, U(101)),
    ) == ("inconsistentValue", 0)


def test_destroy_is_idempotent() -> None:
    store = ConfigStore()
    network(store)
    assert plan(store, vb("nmNetworkRowStatus", LAN, Int(6)))
    assert plan(store, vb("nmNetworkRowStatus", LAN, Int(6))) is False
    assert store.candidate().networks == ()


@pytest.mark.parametrize(
    ("varbinds", "expected"),
    [
        ([vb("nmNetworkSegmentId", LAN, S(b"x"))], ("wrongType", 0)),
        ([vb("nmNetworkSegmentId", LAN, U(0))], ("wrongValue", 0)),
        ([vb("nmNetworkSegmentId", LAN, U(2**24))], ("wrongValue", 0)),
        ([vb("nmNetworkEncap", LAN, Int(3))], ("wrongValue", 0)),
        ([vb("nmNetworkRowStatus", LAN, Int(3))], ("wrongValue", 0)),  # notReady
        ([vb("nmNetworkBridge", LAN, S(b"x" * 16))], ("wrongLength", 0)),
        ([vb("nmNetworkBridge", LAN, S(b"a b"))], ("wrongValue", 0)),
        ([vb("nmNetworkEncap", s_index("x" * 33), Int(1))], ("noCreation", 0)),
        ([vb("nmNetworkEncap", (3, 300, 1, 2), Int(1))], ("noCreation", 0)),
        ([vb("nmNetworkEncap", (*LAN, 9), Int(1))], ("noCreation", 0)),
        ([vb("nmNetworkEncap", LAN, Int(1))], ("inconsistentName", 0)),
        ([vb("nmNetworkName", LAN, S(b"lan"))], ("noAccess", 0)),
        ([((*mib.NM_CONFIG, 1, 1, 99, *LAN), Int(1))], ("notWritable", 0)),
        ([((*mib.NM_CONFIG, 9, 1, 2, 1), Int(1))], ("notWritable", 0)),
        (
            [
                vb("nmNetworkRowStatus", LAN, Int(4)),
                vb("nmNetworkEncap", LAN, Int(1)),
                vb("nmNetworkSegmentId", LAN, U(4095)),
            ],
            ("inconsistentValue", 2),
        ),
        ([vb("nmNetworkRowStatus", LAN, Int(4))], ("inconsistentValue", 0)),
        ([vb("nmNetworkRowStatus", LAN, Int(1))], ("inconsistentValue", 0)),
        (
            [vb("nmNetworkRowStatus", LAN, Int(5)), vb("nmNetworkRowStatus", LAN, Int(6))],
            ("inconsistentValue", 1),
        ),
    ],
)
def test_refusals(varbinds: list[tuple[Oid, Any]], expected: tuple[str, int]) -> None:
    assert refused(ConfigStore(), *varbinds) == expected


def test_error_position_is_the_failing_var_bind() -> None:
    store = ConfigStore()
    network(store)
    status = refused(
        store,
        vb("nmNetworkBridge", LAN, S(b"br-lan")),
        vb("nmNetworkPrefixLength", LAN, U(24)),
        vb("nmNetworkPrefixLength", LAN, U(33)),
    )
    assert status == ("wrongValue", 2)


def test_rule_consistency() -> None:
    store = ConfigStore()
    idx = (7,)
    base = [
        vb("nmRuleRowStatus", idx, Int(4)),
        vb("nmRuleAction", idx, Int(2)),
        vb("nmRuleSource", idx, S(b"lan")),
        vb("nmRuleDestination", idx, S(b"*")),
    ]
    assert refused(store, *base, vb("nmRulePortFirst", idx, U(80))) == ("inconsistentValue", 4)
    assert refused(
        store, *base, vb("nmRuleProtocol", idx, Int(3)), vb("nmRulePortFirst", idx, U(90)),
        vb("nmRulePortLast", idx, U(80)),
    ) == ("inconsistentValue", 6)  # fmt: skip
    plan(store, *base, vb("nmRuleProtocol", idx, Int(3)), vb("nmRulePortLast", idx, U(80)))
    assert store.candidate().rules[0].port_last == 80


def test_pair_shaping_needs_the_peer_address() -> None:
    store = ConfigStore()
    idx = (*s_index("vm1", "lan"), *s_index("vm2"))
    assert refused(store, vb("nmShapeRowStatus", idx, Int(4))) == ("inconsistentValue", 0)
    plan(store, vb("nmShapeRowStatus", idx, Int(4)), vb("nmShapePeerAddress", idx, A("10.0.0.2")))
    assert store.candidate().shapings[0].peer_address == IPv4Address("10.0.0.2")


def test_json_round_trip_and_serving() -> None:
    store = ConfigStore()
    network(store)
    plan(store, vb("nmPortRowStatus", (*s_index("vm1"), *LAN), Int(5)))
    again = ConfigStore()
    again.load_json(store.to_json())
    assert again.to_json() == store.to_json()
    assert again.candidate() == store.candidate()
    section = again.section()
    assert list(section.oids) == sorted(section.oids)
    status_oid = (*col("nmPortRowStatus"), *s_index("vm1"), *LAN)
    entry = section.get(status_oid)
    assert entry is not None and int(entry[0](entry[1])) == 3  # notReady
    # a notReady row's unset mandatory column is noSuchInstance, not a made-up value
    assert section.get((*col("nmPortAddress"), *s_index("vm1"), *LAN)) is None
    assert section.knows_object((*col("nmPortAddress"), *s_index("vm1"), *LAN))


def test_load_candidate_replaces_the_tables() -> None:
    store = ConfigStore()
    network(store)
    store.load_candidate(store.candidate())
    assert store.candidate().networks[0].name == "lan"
    assert store.tables["networks"][LAN].status == "active"
