"""The records of applied topologies: what each holds where (``<state>/topologies/*.json``).

apply writes one when a topology's transaction is confirmed and removes it on destroy;
prepare reads them for the capacity and segment ids other topologies hold, status and
verify to know what was applied.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netmanager.compile.hostconfig import HostConfig, Infrastructure, namespace_kinds
from netmanager.errors import Loc, NetmanagerError, single
from netmanager.mapping import Occupied
from netmanager.mapping.moves import Move
from netmanager.statedir import read_json, state_dir, write_json


def problem(
    cls: type[NetmanagerError], code: str, message: str, hint: str = "", loc: Loc | None = None
) -> NetmanagerError:
    """An apply-phase error with one diagnostic (at ``loc``, else at "netmanager")."""
    return single(code, loc or Loc("netmanager"), message, hint, "apply", cls)


@dataclass(frozen=True)
class Record:
    """What apply leaves in the state directory for one topology."""

    topology: str
    real: str
    virtual: str
    hosts: dict[str, HostConfig]
    infrastructure: Infrastructure
    occupied: Occupied
    placement: dict[str, str]
    applied_at: float = 0.0
    #: how it was applied: "agents" (through each host's SNMP agent) or "local" (in-process)
    transport: str = "local"
    #: where real.xml's relative file names resolve (see :attr:`Real.base_dir`)
    base_dir: str = ""
    #: the VMs ``migrate`` moved (see :mod:`netmanager.mapping.moves`)
    moves: dict[str, Move] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        from netmanager.compile.hostconfig import _to_json

        return {
            "topology": self.topology,
            "real": self.real,
            "virtual": self.virtual,
            "hosts": {h: c.as_json() for h, c in sorted(self.hosts.items())},
            "infrastructure": _to_json(self.infrastructure),
            "occupied": self.occupied.as_json(),
            "placement": dict(sorted(self.placement.items())),
            "applied_at": self.applied_at,
            "transport": self.transport,
            "base_dir": self.base_dir,
            "moves": {vm: m.as_json() for vm, m in sorted(self.moves.items())},
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Record:
        from netmanager.compile.hostconfig import infrastructure_from_json

        return cls(
            topology=d["topology"],
            real=d["real"],
            virtual=d["virtual"],
            hosts={h: HostConfig.from_json(c) for h, c in d["hosts"].items()},
            infrastructure=infrastructure_from_json(d["infrastructure"]),
            occupied=Occupied.from_json(d["occupied"]),
            placement=dict(d["placement"]),
            applied_at=float(d.get("applied_at", 0.0)),
            transport=str(d.get("transport", "local")),
            base_dir=str(d.get("base_dir", "")),
            moves={str(vm): Move.from_json(m) for vm, m in d.get("moves", {}).items()},
        )


def _records_dir(directory: Path | None = None) -> Path:
    return (directory or state_dir()) / "topologies"


#: records parsed before, by path, with the (mtime, size, inode) they were read at: one
#: apply reads them several times (capacity in prepare, desired state under the lock)
_PARSED: dict[Path, tuple[tuple[int, int, int], Record]] = {}


def records(directory: Path | None = None) -> dict[str, Record]:
    """Every applied topology, by name."""
    found = {}
    where = _records_dir(directory)
    if where.is_dir():
        for path in sorted(where.glob("*.json")):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            cached = _PARSED.get(path)
            if cached is not None and cached[0] == stamp:
                record = cached[1]
            else:
                document = read_json(path)
                if not isinstance(document, dict):
                    continue
                record = Record.from_json(document)
                _PARSED[path] = (stamp, record)
            found[record.topology] = record
    return found


def applied_record(topology: str, command: str) -> Record:
    """The record of an applied topology; E730 (for ``command``) when it is not applied."""
    record = records().get(topology)
    if record is None:
        raise single(
            "E730",
            Loc("netmanager"),
            f"topology '{topology}' is not applied on this machine",
            "netmanager apply builds it",
            command,
        )
    return record


def save_record(record: Record) -> None:
    write_json(_records_dir() / f"{record.topology}.json", record.as_json(), compact=True)


def refuse_mixed(applied: dict[str, Record], transport: str, loc: Loc) -> None:
    """One machine's topologies are applied one way: all through agents, or all locally."""
    other = sorted(t for t, r in applied.items() if r.transport != transport)
    if other:
        flag = "--local" if transport == "agents" else "without --local"
        raise problem(
            NetmanagerError,
            "E743",
            f"topology '{other[0]}' was applied {'without' if transport == 'agents' else 'through'}"
            f" agents; one machine's topologies are applied one way",
            f"destroy '{other[0]}' first, or apply {flag}",
            loc,
        )


def remove_record(topology: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (_records_dir() / f"{topology}.json").unlink()


def owned_namespaces() -> set[str]:
    """netmanager's namespaces that exist on this machine."""
    try:
        names = os.listdir("/run/netns")
    except FileNotFoundError:
        return set()
    return {n for n in names if n.startswith(namespace_kinds())}
