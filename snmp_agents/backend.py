"""What the agent asks of a host: the candidate configuration and the backend contract.

The SNMP side of the agent only collects a :class:`Candidate` (the active rows of the
NETMANAGER-MIB configuration tables) and drives a transaction; the kernel work belongs
to a :class:`HostBackend`.  netmanager's kernel engine implements this protocol for real
hosts; :class:`MemoryBackend` is the fake used by tests (and by ``--backend memory``).

The contract (every implementation, one call at a time, from a worker thread):

``recover()``
    Called once when the agent starts, before anything else.  Finish or undo what an
    operation interrupted by a crash left behind (the journal on disk).  Returns a
    sentence for the log, or None when there was nothing to do.  After it, the host is
    in the last *committed* configuration (pending or confirmed), never half-way.
``stage(candidate) -> Sequence[Change]``
    Compute, without touching the host, the changes that would turn the host's current
    configuration into ``candidate``, in the order ``commit`` applies them.  Raise
    :class:`BackendError` for a candidate the host cannot realise (an underlay interface
    it lacks, a name already used by something it does not own).
``commit()``
    Apply the last staged candidate as a journal of steps.  On failure undo the steps
    done, in reverse, and raise :class:`BackendError`; if an undo step fails too, raise
    :class:`UndoFailed` naming what is left.  The journal survives a crash (``recover``).
``confirm()``
    Make the last commit permanent: forget its undo journal.
``rollback()``
    Undo the last commit that was not confirmed, returning the host to the configuration
    before it.  Idempotent: with no unconfirmed commit it does nothing.
``discard()``
    Forget the staged candidate.
``running() -> Candidate``
    The configuration in force (the last commit, confirmed or not).

Nothing here may block the event loop: the agent calls these through a single worker
thread and keeps answering GETs meanwhile.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

log = logging.getLogger(__name__)

ANY_ADDRESS = IPv4Address(0)

# ---------------------------------------------------------------- candidate


@dataclass(frozen=True)
class NetworkConfig:
    """nmNetworkEntry."""

    name: str
    encap: str  # "vlan" | "vxlan"
    segment_id: int
    bridge: str = ""
    underlay: str = ""
    local_address: IPv4Address = ANY_ADDRESS
    address: IPv4Address = ANY_ADDRESS
    prefix_length: int = 0
    isolated: bool = True

    KEY: ClassVar[tuple[str, ...]] = ("name",)

    @property
    def prefix(self) -> IPv4Network:
        return IPv4Network((self.address, self.prefix_length), strict=False)


@dataclass(frozen=True)
class PeerConfig:
    """nmPeerEntry: a remote VXLAN tunnel end point of a network."""

    network: str
    address: IPv4Address

    KEY: ClassVar[tuple[str, ...]] = ("network", "address")


@dataclass(frozen=True)
class PortConfig:
    """nmPortEntry."""

    vm: str
    network: str
    address: IPv4Address
    prefix_length: int
    ifname: str = ""
    vm_ifname: str = ""
    mac: str = "00:00:00:00:00:00"
    admin_status: str = "up"  # "up" | "down"

    KEY: ClassVar[tuple[str, ...]] = ("vm", "network")


@dataclass(frozen=True)
class ShapingConfig:
    """nmShapeEntry: the shaping of a port (``peer == ""``) or of a pair of VMs."""

    vm: str
    network: str
    peer: str = ""
    peer_address: IPv4Address = ANY_ADDRESS
    rate_kbps: int = 0
    burst_bytes: int = 0
    delay_us: int = 0
    jitter_us: int = 0
    loss_ppm: int = 0
    queue_pkts: int = 0

    KEY: ClassVar[tuple[str, ...]] = ("vm", "network", "peer")


@dataclass(frozen=True)
class RuleConfig:
    """nmRuleEntry."""

    index: int
    action: str  # "allow" | "deny"
    source: str
    destination: str
    source_address: IPv4Address = ANY_ADDRESS
    source_prefix_length: int = 0
    destination_address: IPv4Address = ANY_ADDRESS
    destination_prefix_length: int = 0
    protocol: str = "any"  # any | icmp | tcp | udp
    port_first: int = 0
    port_last: int = 0

    KEY: ClassVar[tuple[str, ...]] = ("index",)


@dataclass(frozen=True)
class RouteConfig:
    """nmRouteEntry."""

    vm: str
    destination: IPv4Address
    prefix_length: int
    next_hop: IPv4Address

    KEY: ClassVar[tuple[str, ...]] = ("vm", "destination", "prefix_length")


@dataclass(frozen=True)
class DocumentConfig:
    """nmDocumentEntry: one chunk of a topology's host configuration document (see
    :mod:`snmp_agents.hostconfig_rows`)."""

    topology: str
    chunk: int
    data: str

    KEY: ClassVar[tuple[str, ...]] = ("topology", "chunk")


ConfigRow = (
    NetworkConfig
    | PeerConfig
    | PortConfig
    | ShapingConfig
    | RuleConfig
    | RouteConfig
    | DocumentConfig
)

#: Candidate attribute -> row class, in the order of the MIB tables
TABLES: dict[str, type[Any]] = {
    "networks": NetworkConfig,
    "peers": PeerConfig,
    "ports": PortConfig,
    "shapings": ShapingConfig,
    "rules": RuleConfig,
    "routes": RouteConfig,
    "documents": DocumentConfig,
}


def row_key(row: Any) -> tuple[Any, ...]:
    return tuple(getattr(row, f) for f in row.KEY)


def _sort_key(row: Any) -> tuple[Any, ...]:
    return tuple(int(v) if isinstance(v, IPv4Address) else v for v in row_key(row))


def _to_json_value(value: Any) -> Any:
    return str(value) if isinstance(value, IPv4Address) else value


def row_to_json(row: Any) -> dict[str, Any]:
    return {k: _to_json_value(v) for k, v in asdict(row).items()}


def row_from_json(cls: type[Any], doc: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in doc:
            continue
        value = doc[f.name]
        if f.type in ("IPv4Address", IPv4Address):
            value = IPv4Address(value)
        kwargs[f.name] = value
    return cls(**kwargs)


@dataclass(frozen=True)
class Candidate:
    """A host's whole desired configuration, rows sorted by their MIB index."""

    networks: tuple[NetworkConfig, ...] = ()
    peers: tuple[PeerConfig, ...] = ()
    ports: tuple[PortConfig, ...] = ()
    shapings: tuple[ShapingConfig, ...] = ()
    rules: tuple[RuleConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    documents: tuple[DocumentConfig, ...] = ()

    @staticmethod
    def of(**tables: Iterable[Any]) -> Candidate:
        """A candidate from rows in any order (sorted here)."""
        return Candidate(**{k: tuple(sorted(v, key=_sort_key)) for k, v in tables.items()})

    def to_json(self) -> dict[str, Any]:
        return {name: [row_to_json(r) for r in getattr(self, name)] for name in TABLES}

    @staticmethod
    def from_json(doc: dict[str, Any] | None) -> Candidate:
        if not doc:
            return Candidate()
        return Candidate.of(
            **{
                name: [row_from_json(cls, r) for r in doc.get(name, [])]
                for name, cls in TABLES.items()
            }
        )

    def port_shaping(self, vm: str, network: str) -> ShapingConfig | None:
        for s in self.shapings:
            if s.vm == vm and s.network == network and s.peer == "":
                return s
        return None


def check_candidate(c: Candidate) -> list[str]:
    """Cross-table consistency of a candidate; one sentence per problem (empty: fine)."""
    problems: list[str] = []
    networks = {n.name: n for n in c.networks}
    ports = {(p.vm, p.network): p for p in c.ports}
    vms = {p.vm for p in c.ports}
    seen_segments: dict[tuple[str, int], str] = {}
    for n in c.networks:
        other = seen_segments.setdefault((n.encap, n.segment_id), n.name)
        if other != n.name:
            problems.append(f"networks '{other}' and '{n.name}' share {n.encap} id {n.segment_id}")
    bridges: dict[str, str] = {}
    for n in c.networks:
        if n.bridge:
            other = bridges.setdefault(n.bridge, n.name)
            if other != n.name:
                problems.append(f"networks '{other}' and '{n.name}' share bridge '{n.bridge}'")
    for peer in c.peers:
        net = networks.get(peer.network)
        if net is None:
            problems.append(f"VXLAN peer {peer.address} refers to unknown network '{peer.network}'")
        elif net.encap != "vxlan":
            problems.append(f"VXLAN peer {peer.address} given for {net.encap} network '{net.name}'")
    ifnames: dict[str, tuple[str, str]] = {}
    for p in c.ports:
        if p.network not in networks:
            problems.append(f"port of VM '{p.vm}' refers to unknown network '{p.network}'")
        if p.ifname:
            owner = ifnames.setdefault(p.ifname, (p.vm, p.network))
            if owner != (p.vm, p.network):
                problems.append(
                    f"ports {owner[0]}/{owner[1]} and {p.vm}/{p.network} share interface "
                    f"name '{p.ifname}'"
                )
    for s in c.shapings:
        if (s.vm, s.network) not in ports:
            problems.append(f"shaping refers to unknown port {s.vm}/{s.network}")
    for r in c.routes:
        if r.vm not in vms:
            problems.append(
                f"route {r.destination}/{r.prefix_length} refers to VM '{r.vm}' with no port"
            )
    return problems


@dataclass(frozen=True)
class Change:
    """One step of a staged change, as shown in nmChangeTable."""

    action: str  # "add" | "modify" | "remove"
    object: str
    reason: str = ""


def diff_candidates(have: Candidate, want: Candidate) -> list[Change]:
    """Row-level changes from ``have`` to ``want`` (what the in-memory backend reports)."""
    changes: list[Change] = []
    removals: list[Change] = []
    for name, cls in TABLES.items():
        kind = cls.__name__.removesuffix("Config").lower()
        old = {row_key(r): r for r in getattr(have, name)}
        new = {row_key(r): r for r in getattr(want, name)}
        for key, row in new.items():
            label = f"{kind} {'/'.join(str(k) for k in key if k != '')}"
            if key not in old:
                changes.append(Change("add", label, "in the candidate, not on the host"))
            elif old[key] != row:
                diff = [
                    f.name for f in fields(cls) if getattr(old[key], f.name) != getattr(row, f.name)
                ]
                changes.append(Change("modify", label, f"{', '.join(diff)} changed"))
        for key in old:
            if key not in new:
                label = f"{kind} {'/'.join(str(k) for k in key if k != '')}"
                removals.append(Change("remove", label, "on the host, not in the candidate"))
    # removals first, in reverse table order (rules before ports before networks)
    return list(reversed(removals)) + changes


# ---------------------------------------------------------------- the contract


class BackendError(Exception):
    """The operation failed; the host is as it was before it."""


class UndoFailed(BackendError):
    """The operation failed and undoing it failed too: the host is partly configured."""


@runtime_checkable
class HostBackend(Protocol):
    def recover(self) -> str | None: ...

    def stage(self, candidate: Candidate) -> Sequence[Change]: ...

    def commit(self) -> None: ...

    def confirm(self) -> None: ...

    def rollback(self) -> None: ...

    def discard(self) -> None: ...

    def running(self) -> Candidate: ...


# ---------------------------------------------------------------- the in-memory backend


class MemoryBackend:
    """A host that exists only in a JSON file: what tests observe instead of a kernel.

    ``path`` (optional) keeps the applied configuration, the undo point of an unconfirmed
    commit and an operation log across agent restarts, so a test can kill the agent and
    check that it reverts by itself.  ``fail`` names operations that raise (fault
    injection: ``{"commit"}``, ``{"commit", "undo"}`` for a failed undo); ``delay_s``
    makes commit and rollback slow, to show the agent answering meanwhile.
    """

    def __init__(
        self,
        path: Path | None = None,
        fail: Iterable[str] = (),
        delay_s: float = 0.0,
    ) -> None:
        self.path = path
        self.fail = frozenset(fail)
        self.delay_s = delay_s
        self._lock = threading.Lock()
        self.applied = Candidate()
        self.undo_point: Candidate | None = None
        self.staged: Candidate | None = None
        self.log: list[str] = []
        self.in_progress: str | None = None
        if path is not None and path.exists():
            doc = json.loads(path.read_text())
            self.applied = Candidate.from_json(doc.get("applied"))
            undo = doc.get("undo_point")
            self.undo_point = Candidate.from_json(undo) if undo is not None else None
            self.log = list(doc.get("log", []))
            self.in_progress = doc.get("in_progress")

    def _save(self) -> None:
        if self.path is None:
            return
        doc = {
            "applied": self.applied.to_json(),
            "undo_point": self.undo_point.to_json() if self.undo_point is not None else None,
            "log": self.log,
            "in_progress": self.in_progress,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def _event(self, what: str) -> None:
        self.log.append(what)
        self._save()

    def recover(self) -> str | None:
        with self._lock:
            if self.in_progress is None:
                return None
            what = self.in_progress
            self.in_progress = None
            if what == "commit" and self.undo_point is not None:
                # a commit cut short: the journal says where the host was before it
                self.applied = self.undo_point
                self.undo_point = None
            self._event(f"recover {what}")
            return f"undid an interrupted {what}"

    def stage(self, candidate: Candidate) -> Sequence[Change]:
        with self._lock:
            if "stage" in self.fail:
                raise BackendError("stage failed (fault injected)")
            self.staged = candidate
            return diff_candidates(self.applied, candidate)

    def commit(self) -> None:
        with self._lock:
            if self.staged is None:
                raise BackendError("nothing staged")
            self.in_progress = "commit"
            self.undo_point = self.applied
            self._save()
            if self.delay_s:
                time.sleep(self.delay_s)
            if "commit" in self.fail:
                if "undo" in self.fail:
                    self.in_progress = None
                    self._event("commit failed, undo failed")
                    raise UndoFailed("commit failed (fault injected); undo failed (fault injected)")
                self.applied = self.undo_point
                self.undo_point = None
                self.in_progress = None
                self._event("commit failed, undone")
                raise BackendError("commit failed (fault injected); every step undone")
            self.applied = self.staged
            self.staged = None
            self.in_progress = None
            self._event("commit")

    def confirm(self) -> None:
        with self._lock:
            self.undo_point = None
            self._event("confirm")

    def rollback(self) -> None:
        with self._lock:
            if self.undo_point is None:
                self._event("rollback (nothing to undo)")
                return
            self.in_progress = "rollback"
            self._save()
            if self.delay_s:
                time.sleep(self.delay_s)
            self.applied = self.undo_point
            self.undo_point = None
            self.in_progress = None
            self._event("rollback")

    def discard(self) -> None:
        with self._lock:
            self.staged = None

    def running(self) -> Candidate:
        with self._lock:
            return self.applied
