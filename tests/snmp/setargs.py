"""A candidate as net-snmp ``snmpset`` arguments (numeric OID, type letter, value): the
manager's own SET PDUs (:func:`netmanager.agentctl.client.candidate_pdus`, the encoding
written once), spelled for net-snmp's tools, so that the tests load an agent through
``snmpset`` exactly as the manager loads it through pysnmp."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from pysnmp.proto import rfc1902

from netmanager.agentctl.client import candidate_pdus
from netmanager.host.candidate import Candidate

Triple = tuple[str, str, str]  # (numeric OID, type letter, value)


def _triple(oid: tuple[int, ...], value: Any) -> Triple:
    where = "." + ".".join(str(n) for n in oid)
    tag = value.tagSet
    if tag == rfc1902.Integer32.tagSet:
        return where, "i", str(int(value))
    if tag in (rfc1902.Unsigned32.tagSet, rfc1902.Gauge32.tagSet):
        return where, "u", str(int(value))
    if tag == rfc1902.IpAddress.tagSet:
        return where, "a", str(IPv4Address(bytes(value.asOctets())))
    if tag == rfc1902.OctetString.tagSet:
        return where, "x", bytes(value.asOctets()).hex()
    raise TypeError(f"{where}: no net-snmp type letter for {value.__class__.__name__}")


def candidate_sets(candidate: Candidate, have: Candidate | None = None) -> list[list[Triple]]:
    """The ``snmpset`` invocations (triples each) that turn the agent's candidate
    ``have`` (empty by default) into ``candidate``, in the manager's order and PDUs."""
    return [
        [_triple(tuple(oid), value) for oid, value in pdu]
        for pdu in candidate_pdus(candidate, have if have is not None else Candidate())
    ]
