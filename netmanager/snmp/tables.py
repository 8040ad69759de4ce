"""NETMANAGER-MIB's configuration tables as Python sees them: each table's entry, index
and columns, with syntax, ranges, sizes, defaults (DEFVAL) and access read from the
compiled MIB, and how a column's SNMP value becomes a Python one and back.  The agent's
candidate store checks SETs with them; the manager's client encodes its SETs with them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from typing import Any

from pysnmp.proto import rfc1902

from netmanager.host.candidate import TABLES
from netmanager.snmp import mib
from netmanager.snmp.mib import Oid

MANDATORY: Any = object()

ROW_STATUS = {
    1: "active",
    2: "notInService",
    3: "notReady",
    4: "createAndGo",
    5: "createAndWait",
    6: "destroy",
}
ROW_STATUS_VALUE = {v: k for k, v in ROW_STATUS.items()}

#: Candidate attribute -> (MIB entry, {MIB column: dataclass field})
FIELD_MAP: dict[str, tuple[str, dict[str, str]]] = {
    "networks": (
        "nmNetworkEntry",
        {
            "nmNetworkName": "name",
            "nmNetworkEncap": "encap",
            "nmNetworkSegmentId": "segment_id",
            "nmNetworkBridge": "bridge",
            "nmNetworkUnderlay": "underlay",
            "nmNetworkLocalAddress": "local_address",
            "nmNetworkAddress": "address",
            "nmNetworkPrefixLength": "prefix_length",
            "nmNetworkIsolated": "isolated",
        },
    ),
    "peers": ("nmPeerEntry", {"nmNetworkName": "network", "nmPeerAddress": "address"}),
    "ports": (
        "nmPortEntry",
        {
            "nmPortVm": "vm",
            "nmPortNetwork": "network",
            "nmPortIfName": "ifname",
            "nmPortVmIfName": "vm_ifname",
            "nmPortAddress": "address",
            "nmPortPrefixLength": "prefix_length",
            "nmPortMacAddress": "mac",
            "nmPortAdminStatus": "admin_status",
        },
    ),
    "shapings": (
        "nmShapeEntry",
        {
            "nmShapeVm": "vm",
            "nmShapeNetwork": "network",
            "nmShapePeer": "peer",
            "nmShapePeerAddress": "peer_address",
            "nmShapeRate": "rate_kbps",
            "nmShapeBurst": "burst_bytes",
            "nmShapeDelay": "delay_us",
            "nmShapeJitter": "jitter_us",
            "nmShapeLoss": "loss_ppm",
            "nmShapeQueue": "queue_pkts",
        },
    ),
    "rules": (
        "nmRuleEntry",
        {
            "nmRuleIndex": "index",
            "nmRuleAction": "action",
            "nmRuleSource": "source",
            "nmRuleSourceAddress": "source_address",
            "nmRuleSourcePrefixLength": "source_prefix_length",
            "nmRuleDestination": "destination",
            "nmRuleDestinationAddress": "destination_address",
            "nmRuleDestinationPrefixLength": "destination_prefix_length",
            "nmRuleProtocol": "protocol",
            "nmRulePortFirst": "port_first",
            "nmRulePortLast": "port_last",
        },
    ),
    "routes": (
        "nmRouteEntry",
        {
            "nmRouteVm": "vm",
            "nmRouteDestination": "destination",
            "nmRoutePrefixLength": "prefix_length",
            "nmRouteNextHop": "next_hop",
        },
    ),
    "documents": (
        "nmDocumentEntry",
        {
            "nmDocumentTopology": "topology",
            "nmDocumentChunk": "chunk",
            "nmDocumentData": "data",
        },
    ),
}


class SetError(Exception):
    """A SET refused: SNMP error-status name and the 0-based position of the var-bind."""

    def __init__(self, status: str, position: int, message: str = "") -> None:
        super().__init__(message or status)
        self.status = status
        self.position = position
        self.message = message


def _kind(syntax: Any) -> str:
    names = mib.type_names(syntax)
    if "RowStatus" in names:
        return "status"
    if "TruthValue" in names:
        return "bool"
    if "MacAddress" in names:
        return "mac"
    if syntax.tagSet == rfc1902.IpAddress.tagSet:
        return "ip"
    if syntax.tagSet == rfc1902.OctetString.tagSet:
        if "NmIfName" in names:
            return "ifname"
        return "name"
    if getattr(syntax, "namedValues", None):
        return "enum"
    return "int"


def _printable(raw: bytes) -> bool:
    return all(0x21 <= b <= 0x7E for b in raw)


@dataclass(frozen=True)
class ColumnDef:
    name: str
    field: str
    subid: int
    oid: Oid
    syntax: Any
    kind: str
    access: str
    default: Any = MANDATORY

    @staticmethod
    def of(column: Any, fieldname: str) -> ColumnDef:
        syntax = column.syntax
        kind = _kind(syntax)
        col = ColumnDef(
            name=column.label,
            field=fieldname,
            subid=column.name[-1],
            oid=tuple(column.name),
            syntax=syntax,
            kind=kind,
            access=column.maxAccess,
        )
        if kind != "status" and syntax.hasValue():
            col = replace(col, default=col.to_python(syntax))
        return col

    @property
    def writable(self) -> bool:
        return self.access in ("read-write", "read-create")

    def to_python(self, value: Any) -> Any:
        kind = self.kind
        if kind in ("name", "ifname"):
            return bytes(value.asOctets()).decode("ascii")
        if kind == "ip":
            return IPv4Address(bytes(value.asOctets()))
        if kind == "mac":
            return ":".join(f"{b:02x}" for b in value.asOctets())
        if kind == "bool":
            return int(value) == 1
        if kind == "enum":
            return str(self.syntax.namedValues.getName(int(value)))
        if kind == "status":
            return ROW_STATUS[int(value)]
        return int(value)

    def to_snmp(self, value: Any) -> Any:
        kind = self.kind
        if kind in ("name", "ifname"):
            return self.syntax.clone(str(value).encode("ascii"))
        if kind == "ip":
            return self.syntax.clone(IPv4Address(value).packed)
        if kind == "mac":
            return self.syntax.clone(bytes.fromhex(str(value).replace(":", "")))
        if kind == "bool":
            return self.syntax.clone(1 if value else 2)
        if kind == "enum":
            return self.syntax.clone(self.syntax.namedValues[value])
        if kind == "status":
            return self.syntax.clone(ROW_STATUS_VALUE[value])
        return self.syntax.clone(int(value))

    def to_json(self, value: Any) -> Any:
        return str(value) if self.kind == "ip" else value

    def from_json(self, value: Any) -> Any:
        return IPv4Address(value) if self.kind == "ip" else value

    def check(self, value: Any, position: int) -> Any:
        """The python value of a SET var-bind, or SetError (wrongType/Length/Value)."""
        if value.tagSet != self.syntax.tagSet:
            raise SetError(
                "wrongType", position, f"{self.name} takes {self.syntax.__class__.__name__}"
            )
        try:
            checked = self.syntax.clone(value)
        except Exception as exc:  # pyasn1 constraint violation
            status = "wrongLength" if self.kind in ("name", "ifname", "mac", "ip") else "wrongValue"
            raise SetError(status, position, f"{self.name}: {exc}") from exc
        if self.kind in ("name", "ifname"):
            raw = bytes(checked.asOctets())
            if not _printable(raw):
                raise SetError("wrongValue", position, f"{self.name}: printable ASCII, no spaces")
            if self.kind == "ifname" and (b"/" in raw or raw in (b".", b"..")):
                raise SetError("wrongValue", position, f"{self.name}: not a Linux interface name")
        if self.kind == "status" and int(checked) == ROW_STATUS_VALUE["notReady"]:
            raise SetError("wrongValue", position, "notReady cannot be set")
        return self.to_python(checked)

    # index encoding (RFC 2578 §7.7: strings with a length prefix, IpAddress as 4 sub-ids)

    def encode_index(self, value: Any) -> Oid:
        if self.kind in ("name", "ifname"):
            raw = str(value).encode("ascii")
            return (len(raw), *raw)
        if self.kind == "ip":
            return tuple(IPv4Address(value).packed)
        return (int(value),)

    def decode_index(self, suffix: Oid) -> tuple[Any, Oid] | None:
        """(python value, rest of the suffix), or None when malformed or out of range."""
        try:
            if self.kind in ("name", "ifname"):
                n = suffix[0]
                raw = bytes(suffix[1 : 1 + n])
                if len(raw) != n:
                    return None
                value: Any = self.syntax.clone(raw)
                if not _printable(raw):
                    return None
                return self.to_python(value), suffix[1 + n :]
            if self.kind == "ip":
                if len(suffix) < 4:
                    return None
                return IPv4Address(bytes(suffix[:4])), suffix[4:]
            if not suffix:
                return None
            return self.to_python(self.syntax.clone(suffix[0])), suffix[1:]
        except Exception:  # out of range, bytes() of a sub-id > 255
            return None


@dataclass(frozen=True)
class TableDef:
    attr: str
    cls: type[Any]
    entry: Oid
    index: tuple[ColumnDef, ...]
    columns: dict[int, ColumnDef]  # accessible columns by sub-id (RowStatus included)
    status: ColumnDef

    def decode_index(self, suffix: Oid) -> dict[str, Any] | None:
        values: dict[str, Any] = {}
        rest = suffix
        for col in self.index:
            decoded = col.decode_index(rest)
            if decoded is None:
                return None
            values[col.field], rest = decoded
        return values if not rest else None

    def encode_index(self, values: dict[str, Any]) -> Oid:
        out: tuple[int, ...] = ()
        for col in self.index:
            out += col.encode_index(values[col.field])
        return out

    def data_columns(self) -> list[ColumnDef]:
        return [c for c in self.columns.values() if c.kind != "status"]

    def defaults(self) -> dict[str, Any]:
        return {c.field: c.default for c in self.data_columns() if c.default is not MANDATORY}

    def missing(self, values: dict[str, Any]) -> list[ColumnDef]:
        return [c for c in self.data_columns() if c.field not in values]


def load_tables() -> list[TableDef]:
    syms = mib.symbols()
    tables = []
    for attr, (entry_name, fmap) in FIELD_MAP.items():
        entry = syms[entry_name]
        index = tuple(
            ColumnDef.of(mib.symbol(sym, mod), fmap[sym]) for _, mod, sym in entry.getIndexNames()
        )
        prefix = tuple(entry.name)
        columns: dict[int, ColumnDef] = {}
        status: ColumnDef | None = None
        for obj in syms.values():
            name = getattr(obj, "name", None)
            if not isinstance(name, tuple) or len(name) != len(prefix) + 1 or name[:-1] != prefix:
                continue
            if getattr(obj, "maxAccess", "not-accessible") == "not-accessible":
                continue
            if _kind(obj.syntax) == "status":
                col = ColumnDef.of(obj, "status")
                status = col
            else:
                col = ColumnDef.of(obj, fmap[obj.label])
            columns[col.subid] = col
        assert status is not None, f"{entry_name} has no RowStatus column"
        tables.append(
            TableDef(
                attr=attr,
                cls=TABLES[attr],
                entry=prefix,
                index=index,
                columns=dict(sorted(columns.items())),
                status=status,
            )
        )
    return tables
