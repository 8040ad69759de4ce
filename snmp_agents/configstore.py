"""The candidate configuration as NETMANAGER-MIB tables: RowStatus, SET checks, persistence.

Column definitions (syntax, ranges, sizes, DEFVAL, access) come from the compiled MIB.
A SET is checked whole before anything changes (RFC 3416 §4.2.5): first every var-bind
on its own (access, type, length, value, index), then the rows it touches (RowStatus
transitions, mandatory columns, consistency between columns).  The first failing
var-bind is reported with its own error-index; on any error nothing changes.

Deliberate choice for idempotency: ``createAndGo``/``createAndWait`` on a row that
already exists succeeds, changing nothing, when the row already holds exactly what the
SET asks for (a manager's retry after a lost response); RFC 2579 would answer
inconsistentValue.  A retried ``destroy`` is a no-op by the RFC already.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from ipaddress import IPv4Address
from typing import Any

from netmanager.host.candidate import Candidate
from netmanager.snmp import mib
from netmanager.snmp.tables import (
    ColumnDef,
    SetError,
    TableDef,
    load_tables,
)
from snmp_agents.oidtree import Oid, Section, const

# ---------------------------------------------------------------- rows


@dataclass
class Row:
    values: dict[str, Any]
    status: str  # active | notInService | notReady

    def copy(self) -> Row:
        return Row(dict(self.values), self.status)


def row_problems(attr: str, v: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Consistency between the columns of one complete row: (fields to blame, why)."""
    problems: list[tuple[tuple[str, ...], str]] = []
    if attr == "networks" and v.get("encap") == "vlan" and v.get("segment_id", 0) > 4094:
        problems.append((("segment_id", "encap"), "a VLAN id is at most 4094"))
    if attr == "shapings" and v.get("peer") and v.get("peer_address") == IPv4Address(0):
        problems.append((("peer_address",), "pair shaping needs the peer's address"))
    if attr == "rules":
        first, last = v.get("port_first", 0), v.get("port_last", 0)
        if first > last:
            problems.append((("port_last", "port_first"), "the port range ends before it starts"))
        if (first or last) and v.get("protocol") not in ("tcp", "udp"):
            problems.append(
                (("port_first", "port_last", "protocol"), "ports need protocol tcp or udp")
            )
    return problems


@dataclass
class SetPlan:
    """A checked SET on the configuration tables, ready to be applied."""

    tables: dict[str, dict[Oid, Row]]
    changed: bool
    touched: list[int] = field(default_factory=list)


class ConfigStore:
    """The candidate: rows of every configuration table, keyed by their index OID."""

    def __init__(self, tables: Sequence[TableDef] | None = None) -> None:
        self.defs = list(tables if tables is not None else load_tables())
        self.by_attr = {t.attr: t for t in self.defs}
        self.tables: dict[str, dict[Oid, Row]] = {t.attr: {} for t in self.defs}

    # ---- SET

    def _resolve(self, oid: Oid, position: int) -> tuple[TableDef, ColumnDef, Oid]:
        for t in self.defs:
            n = len(t.entry)
            if oid[:n] == t.entry and len(oid) > n:
                col = t.columns.get(oid[n])
                if col is None:
                    if any(c.subid == oid[n] for c in t.index):
                        raise SetError("noAccess", position, "an index column is not accessible")
                    raise SetError("notWritable", position, "no such column")
                if not col.writable:
                    raise SetError("notWritable", position, f"{col.name} is read-only")
                return t, col, oid[n + 1 :]
        raise SetError("notWritable", position, "no such object")

    def plan(self, varbinds: Iterable[tuple[int, Oid, Any]]) -> SetPlan:
        """Check a SET (var-binds under nmConfig with their PDU positions); raise SetError."""
        # phase 1: each var-bind alone
        groups: dict[tuple[str, Oid], list[tuple[int, ColumnDef, Any]]] = {}
        index_values: dict[tuple[str, Oid], dict[str, Any]] = {}
        for position, oid, value in varbinds:
            t, col, suffix = self._resolve(oid, position)
            idx = t.decode_index(suffix)
            if idx is None:
                raise SetError("noCreation", position, f"malformed index for {col.name}")
            pyvalue = col.check(value, position)
            key = (t.attr, suffix)
            groups.setdefault(key, []).append((position, col, pyvalue))
            index_values[key] = idx

        # phase 2: rows
        tables = {attr: dict(rows) for attr, rows in self.tables.items()}
        changed = False
        for (attr, suffix), items in groups.items():
            t = self.by_attr[attr]
            current = self.tables[attr].get(suffix)
            status_items = [(p, v) for p, c, v in items if c.kind == "status"]
            data = [(p, c, v) for p, c, v in items if c.kind != "status"]
            first_position = items[0][0]
            if len(status_items) > 1:
                raise SetError("inconsistentValue", status_items[1][0], "RowStatus set twice")
            status_pos, action = status_items[0] if status_items else (first_position, None)

            if action == "destroy":
                if current is not None:
                    del tables[attr][suffix]
                    changed = True
                continue

            if action in ("createAndGo", "createAndWait"):
                if current is not None:
                    wanted = dict(current.values)
                    wanted.update({c.field: v for _, c, v in data})
                    same_status = (action == "createAndGo" and current.status == "active") or (
                        action == "createAndWait" and current.status != "active"
                    )
                    if wanted == current.values and same_status:
                        continue  # a retried create: nothing more to do
                    raise SetError("inconsistentValue", status_pos, "the row exists already")
                values = {**index_values[(attr, suffix)], **t.defaults()}
                values.update({c.field: v for _, c, v in data})
                missing = t.missing(values)
                if action == "createAndGo":
                    if missing:
                        raise SetError(
                            "inconsistentValue",
                            status_pos,
                            f"createAndGo without {', '.join(c.name for c in missing)}",
                        )
                    row = Row(values, "active")
                else:
                    row = Row(values, "notReady" if missing else "notInService")
            else:
                if current is None:
                    if action is None:
                        raise SetError(
                            "inconsistentName",
                            first_position,
                            "no such row; create it with RowStatus",
                        )
                    raise SetError(
                        "inconsistentValue", status_pos, f"{action} on a row that does not exist"
                    )
                row = current.copy()
                row.values.update({c.field: v for _, c, v in data})
                missing = t.missing(row.values)
                if action == "active":
                    if missing:
                        raise SetError(
                            "inconsistentValue",
                            status_pos,
                            f"cannot activate without {', '.join(c.name for c in missing)}",
                        )
                    row.status = "active"
                elif action == "notInService":
                    if missing:
                        raise SetError("inconsistentValue", status_pos, "the row is not ready")
                    row.status = "notInService"
                elif row.status == "notReady" and not missing:
                    row.status = "notInService"

            if row.status != "notReady":
                for blamed, why in row_problems(attr, row.values):
                    positions = [p for f in blamed for p, c, _ in data if c.field == f]
                    raise SetError(
                        "inconsistentValue",
                        positions[0] if positions else status_pos,
                        f"{t.cls.__name__}: {why}",
                    )
            if current is None or row.values != current.values or row.status != current.status:
                tables[attr][suffix] = row
                changed = True
        return SetPlan(
            tables=tables,
            changed=changed,
            touched=sorted(p for g in groups.values() for p, _, _ in g),
        )

    def apply(self, plan: SetPlan) -> None:
        self.tables = plan.tables

    # ---- candidate

    def candidate(self) -> Candidate:
        return Candidate.of(
            **{
                t.attr: [
                    t.cls(**r.values) for r in self.tables[t.attr].values() if r.status == "active"
                ]
                for t in self.defs
            }
        )

    def load_candidate(self, c: Candidate) -> None:
        """Replace every row by the rows of ``c`` (all active)."""
        tables: dict[str, dict[Oid, Row]] = {}
        for t in self.defs:
            rows: dict[Oid, Row] = {}
            for obj in getattr(c, t.attr):
                values = {f.name: copy.copy(getattr(obj, f.name)) for f in fields(obj)}
                rows[t.encode_index(values)] = Row(values, "active")
            tables[t.attr] = rows
        self.tables = tables

    def row_count(self) -> int:
        return sum(len(rows) for rows in self.tables.values())

    # ---- persistence

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for t in self.defs:
            cols = {c.field: c for c in (*t.index, *t.data_columns())}
            doc[t.attr] = [
                {
                    "status": r.status,
                    "values": {k: cols[k].to_json(v) for k, v in r.values.items()},
                }
                for _, r in sorted(self.tables[t.attr].items())
            ]
        return doc

    def load_json(self, doc: dict[str, Any]) -> None:
        tables: dict[str, dict[Oid, Row]] = {}
        for t in self.defs:
            cols = {c.field: c for c in (*t.index, *t.data_columns())}
            rows: dict[Oid, Row] = {}
            for item in doc.get(t.attr, []):
                values = {k: cols[k].from_json(v) for k, v in item["values"].items() if k in cols}
                rows[t.encode_index(values)] = Row(values, item["status"])
            tables[t.attr] = rows
        self.tables = tables

    # ---- serving

    def section(self) -> Section:
        items: list[tuple[Oid, Any]] = []
        objects: list[Oid] = []
        for t in self.defs:
            rows = sorted(self.tables[t.attr].items())
            for col in t.columns.values():
                objects.append(col.oid)
                for suffix, row in rows:
                    value = row.status if col.kind == "status" else row.values.get(col.field)
                    if value is None:
                        continue  # a notReady row's unset column: noSuchInstance
                    items.append((col.oid + suffix, const(col.to_snmp(value))))
        return Section.build("config", mib.NM_CONFIG, items, objects)
