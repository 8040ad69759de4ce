"""A :class:`Candidate` as SNMP SET var-binds (numeric OIDs, net-snmp type letters).

The manager side of loading a candidate into an agent: one SET per row (``createAndGo``
with every column that differs from its DEFVAL), or ``destroy`` for rows to remove.
Used with net-snmp's ``snmpset`` (``OID TYPE VALUE`` triples) by the tests; a pysnmp
client can map the same triples (``i`` Integer32, ``u`` Unsigned32, ``s`` OCTET STRING,
``a`` IpAddress, ``x`` hex OCTET STRING).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pysnmp.proto import rfc1902

from netmanager.host.candidate import TABLES, Candidate
from netmanager.snmp.tables import MANDATORY, ROW_STATUS_VALUE, ColumnDef, TableDef, load_tables

VarBind = tuple[str, str, str]  # (numeric OID, type letter, value)


def _oid(column: ColumnDef, index: tuple[int, ...]) -> str:
    return "." + ".".join(str(n) for n in (*column.oid, *index))


def _typed(column: ColumnDef, value: Any) -> tuple[str, str]:
    kind = column.kind
    if kind in ("name", "ifname"):
        return "s", str(value)
    if kind == "ip":
        return "a", str(value)
    if kind == "mac":
        return "x", str(value).replace(":", "")
    snmp = column.to_snmp(value)
    letter = "i" if snmp.tagSet == rfc1902.Integer32.tagSet else "u"
    return letter, str(int(snmp))


def _tables() -> dict[str, TableDef]:
    return {t.attr: t for t in load_tables()}


def row_varbinds(table: TableDef, row: Any, status: str = "createAndGo") -> list[VarBind]:
    values = asdict(row)
    index = table.encode_index(values)
    out: list[VarBind] = [(_oid(table.status, index), "i", str(ROW_STATUS_VALUE[status]))]
    if status == "destroy":
        return out
    for column in table.data_columns():
        value = values[column.field]
        if column.default is not MANDATORY and column.default == value:
            continue
        out.append((_oid(column, index), *_typed(column, value)))
    return out


def candidate_sets(candidate: Candidate, have: Candidate | None = None) -> list[list[VarBind]]:
    """The SETs (one var-bind list each) that turn the agent's candidate ``have`` (empty
    by default) into ``candidate``: destroys first, then creations in table order."""
    tables = _tables()
    have = have if have is not None else Candidate()
    out: list[list[VarBind]] = []
    for attr in reversed(list(TABLES)):
        wanted = set(getattr(candidate, attr))
        for row in getattr(have, attr):
            if row not in wanted:
                out.append(row_varbinds(tables[attr], row, "destroy"))
    for attr in TABLES:
        existing = set(getattr(have, attr))
        for row in getattr(candidate, attr):
            if row not in existing:
                out.append(row_varbinds(tables[attr], row))
    return out
