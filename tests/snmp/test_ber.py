"""The hand-written BER of the fast path agrees with pyasn1, and never trusts a datagram."""

from __future__ import annotations

import random

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902, rfc1905
from pysnmp.proto.api import v2c

from snmp_agents import ber
from snmp_agents.oidtree import OidTree, Section, const
from snmp_agents.responder import FastV2c, MibReader

VALUES = [
    rfc1902.Integer32(-129),
    rfc1902.Integer32(0),
    rfc1902.Integer32(2**31 - 1),
    rfc1902.Unsigned32(2**32 - 1),
    rfc1902.Counter32(5),
    rfc1902.Gauge32(300),
    rfc1902.TimeTicks(12345),
    rfc1902.Counter64(2**64 - 1),
    rfc1902.OctetString(b"x" * 300),
    rfc1902.OctetString(b""),
    rfc1902.IpAddress("10.0.0.1"),
    rfc1902.ObjectIdentifier((1, 3, 6, 1, 4, 1, 99999, 2**31)),
    rfc1902.ObjectIdentifier((0, 0)),
    rfc1905.noSuchObject,
    rfc1905.noSuchInstance,
    rfc1905.endOfMibView,
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_values_encode_like_pyasn1(value: object) -> None:
    assert ber.encode_value(value) == encoder.encode(value)


def test_entries_encode_like_pyasn1() -> None:
    for make, arg in [
        (rfc1902.Counter64, 2**40),
        (rfc1902.TimeTicks, 5),
        (rfc1902.OctetString, b"abc"),
        (rfc1902.Integer32, -5),
        (rfc1902.Unsigned32, 7),
        (rfc1902.Gauge32, 2**32 - 1),
    ]:
        assert ber.encode_entry(make, arg) == encoder.encode(make(arg))


def request(pdu_type: object, oids: list[tuple[int, ...]], community: str = "pub") -> bytes:
    pdu = pdu_type()  # type: ignore[operator]
    if isinstance(pdu, v2c.GetBulkRequestPDU):
        v2c.apiBulkPDU.set_defaults(pdu)
        v2c.apiBulkPDU.set_non_repeaters(pdu, 1)
        v2c.apiBulkPDU.set_max_repetitions(pdu, 3)
    else:
        v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_varbinds(pdu, [(oid, v2c.null) for oid in oids])
    msg = v2c.Message()
    v2c.apiMessage.set_defaults(msg)
    v2c.apiMessage.set_community(msg, community)
    v2c.apiMessage.set_pdu(msg, pdu)
    return bytes(encoder.encode(msg))


def tree() -> OidTree:
    t = OidTree()
    t.put(
        Section.build(
            "t",
            (1, 3, 6, 1, 2, 1, 1),
            [((1, 3, 6, 1, 2, 1, 1, i, 0), const(rfc1902.Integer32(i))) for i in (1, 2, 3)],
            [(1, 3, 6, 1, 2, 1, 1, i) for i in (1, 2, 3)],
        )
    )
    return t


def decode(reply: bytes) -> tuple[int, list[tuple[tuple[int, ...], object]]]:
    msg, rest = decoder.decode(reply, asn1Spec=v2c.Message())
    assert rest == b""
    assert api.decodeMessageVersion(reply) == api.SNMP_VERSION_2C
    pdu = v2c.apiMessage.get_pdu(msg)
    binds = [(tuple(o), v) for o, v in v2c.apiPDU.get_varbinds(pdu)]
    return int(v2c.apiPDU.get_request_id(pdu)), binds


def test_fast_path_answers_like_an_agent() -> None:
    fast = FastV2c(MibReader(tree()), "pub", lambda: None)
    sys1 = (1, 3, 6, 1, 2, 1, 1, 1, 0)
    query = request(v2c.GetRequestPDU, [sys1, (1, 3, 6, 1, 2, 1, 1, 1, 5), (1, 3, 7)])
    reply = fast.answer(query)
    assert reply is not None
    req_id, binds = decode(reply)
    assert req_id == int(
        v2c.apiPDU.get_request_id(
            v2c.apiMessage.get_pdu(decoder.decode(query, asn1Spec=v2c.Message())[0])
        )
    )
    assert binds[0] == (sys1, rfc1902.Integer32(1))
    assert binds[1][1].tagSet == rfc1905.NoSuchInstance.tagSet
    assert binds[2][1].tagSet == rfc1905.NoSuchObject.tagSet

    reply = fast.answer(request(v2c.GetBulkRequestPDU, [(1, 3), (1, 3, 6, 1, 2, 1, 1, 2, 0)]))
    assert reply is not None
    _, binds = decode(reply)
    # one non-repeater, then the repeater: 3.0, end of view once, then stop
    assert [b[0][-2] for b in binds[:2]] == [1, 3]
    assert binds[2][1].tagSet == rfc1905.EndOfMibView.tagSet and len(binds) == 3


def test_fast_path_leaves_everything_else_to_pysnmp() -> None:
    fast = FastV2c(MibReader(tree()), "pub", lambda: None)
    assert fast.answer(request(v2c.GetRequestPDU, [(1, 3)], community="other")) is None
    assert fast.answer(request(v2c.SetRequestPDU, [(1, 3)])) is None
    v1 = request(v2c.GetRequestPDU, [(1, 3)]).replace(b"\x02\x01\x01", b"\x02\x01\x00", 1)
    assert fast.answer(v1) is None


def test_garbage_never_raises() -> None:
    rng = random.Random(7)
    good = request(v2c.GetNextRequestPDU, [(1, 3, 6, 1, 2, 1, 1, 1, 0)])
    samples = [b"", b"\x30", b"\x30\x84\xff\xff\xff\xff", good[:-1], good + b"\x00"]
    for _ in range(3000):
        mutated = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        samples.append(bytes(mutated))
        samples.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 80))))
    fast = FastV2c(MibReader(tree()), "pub", lambda: None)
    for sample in samples:
        reply = fast.answer(sample)
        if reply is not None:
            decode(reply)  # whatever it answered is a well-formed response
