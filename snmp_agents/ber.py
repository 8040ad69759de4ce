"""Just enough BER for SNMP var-bindings, written by hand because pyasn1 costs ~100 µs per
var-bind to build and encode, which made a walk of 1000 interfaces take seconds.

``encode_varbind`` turns an OID and a tree entry ``(make, arg)`` into the bytes of one
VarBind without building a pyasn1 object when the entry's maker is one of the plain SNMP
types; :func:`decode_v2c_read` reads an SNMPv2c GET/GETNEXT/GETBULK message and returns
None for anything else or anything malformed (the caller then hands the datagram to
pysnmp, which answers or counts the error).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pysnmp.proto import rfc1902, rfc1905

Oid = tuple[int, ...]

SEQUENCE = 0x30
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
GET, GETNEXT, RESPONSE, GETBULK = 0xA0, 0xA1, 0xA2, 0xA5
NO_SUCH_OBJECT = b"\x80\x00"
NO_SUCH_INSTANCE = b"\x81\x00"
END_OF_MIB_VIEW = b"\x82\x00"


def length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + length(len(body)) + body


def integer_body(n: int) -> bytes:
    size = ((n if n >= 0 else ~n).bit_length() + 8) // 8
    return n.to_bytes(size, "big", signed=True)


def integer(tag: int, n: int) -> bytes:
    return tlv(tag, integer_body(n))


def oid_body(oid: Oid) -> bytes:
    arcs = [oid[0] * 40 + oid[1], *oid[2:]] if len(oid) >= 2 else [oid[0] * 40 if oid else 0]
    out = bytearray()
    for arc in arcs:
        if arc < 0x80:
            out.append(arc)
            continue
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def encode_oid(oid: Oid) -> bytes:
    return tlv(OBJECT_IDENTIFIER, oid_body(oid))


def _tag_byte(value: Any) -> int:
    tags = value.tagSet.superTags
    tag = tags[-1] if tags else value.tagSet.baseTag
    return int(tag.tagClass) | int(tag.tagFormat) | int(tag.tagId)


def encode_value(value: Any) -> bytes:
    """The BER of a pyasn1 SNMP value (the types of RFC 2578 and the v2 exceptions)."""
    tag = _tag_byte(value)
    if tag in (0x80, 0x81, 0x82, NULL):
        return bytes((tag, 0))
    if tag == OBJECT_IDENTIFIER:
        return encode_oid(tuple(value))
    if tag in (OCTET_STRING, 0x40, 0x44):  # OCTET STRING, IpAddress, Opaque
        return tlv(tag, value.asOctets())
    return integer(tag, int(value))


_TAGS: dict[Any, int] = {
    rfc1902.Integer32: INTEGER,
    rfc1902.Integer: INTEGER,
    rfc1902.Gauge32: 0x42,
    rfc1902.Unsigned32: 0x42,
    rfc1902.Counter32: 0x41,
    rfc1902.Counter64: 0x46,
    rfc1902.TimeTicks: 0x43,
}


def register_integer_maker(make: Callable[[Any], Any], tag: int) -> None:
    """Let ``encode_varbind`` encode entries of ``make`` (a wrapper returning an integer
    type, e.g. a Counter32 that wraps) without calling it: ``arg`` is the integer."""
    _TAGS[make] = tag


def encode_entry(make: Callable[[Any], Any], arg: Any) -> bytes:
    tag = _TAGS.get(make)
    if tag is not None:
        n = int(arg)
        if tag == 0x41 or tag == 0x42 or tag == 0x43:
            n = min(n, 0xFFFFFFFF) if tag != 0x41 else n & 0xFFFFFFFF
        return integer(tag, n)
    if make is rfc1902.OctetString and isinstance(arg, bytes):
        return tlv(OCTET_STRING, arg)
    return encode_value(make(arg))


def encode_varbind(oid: Oid, value_ber: bytes) -> bytes:
    return tlv(SEQUENCE, encode_oid(oid) + value_ber)


def varbind_list(varbinds: list[bytes]) -> bytes:
    return tlv(SEQUENCE, b"".join(varbinds))


# ---------------------------------------------------------------- reading v2c requests


class _Malformed(Exception):
    pass


def _read(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the TLV at ``pos``."""
    if pos + 2 > end:
        raise _Malformed
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise _Malformed  # multi-byte tags: not SNMP
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or pos + k > end:
            raise _Malformed
        n = int.from_bytes(buf[pos : pos + k], "big")
        pos += k
    if pos + n > end:
        raise _Malformed
    return tag, pos, pos + n


def _int(buf: bytes, start: int, end: int) -> int:
    if start == end or end - start > 9:
        raise _Malformed
    return int.from_bytes(buf[start:end], "big", signed=True)


def _oid(buf: bytes, start: int, end: int) -> Oid:
    if start == end or end - start > 256:
        raise _Malformed
    arcs: list[int] = []
    n = 0
    for b in buf[start:end]:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(n)
            n = 0
    if buf[end - 1] & 0x80:
        raise _Malformed
    first = arcs[0]
    head = (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)
    return (*head, *arcs[1:])


@dataclass(frozen=True)
class ReadRequest:
    """An SNMPv2c read request, with what is needed to answer it."""

    community: bytes
    pdu_type: int
    request_id: bytes  # the INTEGER's TLV, echoed as received
    non_repeaters: int
    max_repetitions: int
    oids: list[Oid]


def decode_v2c_read(buf: bytes) -> ReadRequest | None:
    """A v2c GET/GETNEXT/GETBULK, or None for anything else (left to pysnmp)."""
    try:
        tag, start, end = _read(buf, 0, len(buf))
        if tag != SEQUENCE or end != len(buf):
            return None
        tag, s, e = _read(buf, start, end)
        if tag != INTEGER or _int(buf, s, e) != 1:
            return None  # not SNMPv2c
        tag, s, e = _read(buf, e, end)
        if tag != OCTET_STRING:
            return None
        community = bytes(buf[s:e])
        pdu_type, ps, pe = _read(buf, e, end)
        if pdu_type not in (GET, GETNEXT, GETBULK) or pe != end:
            return None
        tag, s, e = _read(buf, ps, pe)
        if tag != INTEGER:
            return None
        _int(buf, s, e)
        request_id = bytes(buf[ps:e])
        tag, s, e = _read(buf, e, pe)
        if tag != INTEGER:
            return None
        second = _int(buf, s, e)
        tag, s, e = _read(buf, e, pe)
        if tag != INTEGER:
            return None
        third = _int(buf, s, e)
        tag, vs, ve = _read(buf, e, pe)
        if tag != SEQUENCE or ve != pe:
            return None
        oids: list[Oid] = []
        pos = vs
        while pos < ve:
            tag, s, e = _read(buf, pos, ve)
            if tag != SEQUENCE:
                return None
            tag, os_, oe = _read(buf, s, e)
            if tag != OBJECT_IDENTIFIER:
                return None
            oids.append(_oid(buf, os_, oe))
            _read(buf, oe, e)  # the value (NULL in a request): present, any type
            pos = e
        if len(oids) > 256:
            return None
        return ReadRequest(community, pdu_type, request_id, second, third, oids)
    except (_Malformed, IndexError, ValueError):
        return None


def v2c_response(
    community: bytes,
    request_id: bytes,
    varbinds: list[bytes],
    error_status: int = 0,
    error_index: int = 0,
) -> bytes:
    pdu = tlv(
        RESPONSE,
        request_id
        + integer(INTEGER, error_status)
        + integer(INTEGER, error_index)
        + varbind_list(varbinds),
    )
    return tlv(SEQUENCE, integer(INTEGER, 1) + tlv(OCTET_STRING, community) + pdu)


EXCEPTIONS = {
    id(rfc1905.noSuchObject): NO_SUCH_OBJECT,
    id(rfc1905.noSuchInstance): NO_SUCH_INSTANCE,
    id(rfc1905.endOfMibView): END_OF_MIB_VIEW,
}
