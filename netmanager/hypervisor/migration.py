"""Live migration of a running libvirt domain to another libvirt (issue #17).

The source host's keeper (:mod:`netmanager.hypervisor.keeper`) holds the domain's
connection and makes the call; what it sends is decided here, apart from the call:

- :func:`destination_xml`: the domain as the target defines it (``VIR_MIGRATE_PARAM_DEST_XML``
  and, made persistent there, ``VIR_MIGRATE_PARAM_PERSIST_XML``): each NIC, found by its
  MAC, becomes an ``ethernet`` NIC (a tap the caller wires itself) or a ``bridge`` NIC,
  with the tap name netmanager gives it on the target; a console logged to a file logs
  where the target is told.  The target's libvirt creates the taps in its own network
  namespace (a real host's root namespace) when the migration starts, and the guest
  sends through them as soon as it runs there: a ``<link state='down'/>`` in this XML
  does not hold (QEMU takes the NIC's link from the migration stream; measured here,
  frames of the guest reached the root namespace), so a caller that must keep the guest's
  traffic out of that namespace moves each tap out as soon as it appears, before the
  switch-over (tests/hypervisor/test_libvirt_migration.py);
- :func:`call_arguments`: the flags (``VIR_MIGRATE_LIVE``, ``VIR_MIGRATE_PEER2PEER`` where
  asked, ``VIR_MIGRATE_PERSIST_DEST`` with ``VIR_MIGRATE_UNDEFINE_SOURCE``) and the typed
  parameters (the XMLs, the migration stream's URI, its bandwidth);
- :func:`migrate`: the call over libvirt-python objects (``virDomainMigrate3`` with a
  connection to the target, or ``virDomainMigrateToURI3`` peer-to-peer, when the source's
  libvirt daemon opens the target itself), timed; a failure says where the domain is
  after it (:class:`Where`: still on the source, on the target, on neither).

libvirt's test driver has no migration call: this is unit-tested against a fake
connection (tests/hypervisor/test_migration.py) and for real on this machine from an
embedded driver to the system daemon (tests/hypervisor/test_libvirt_migration.py). The
constants are libvirt's stable ABI values, so that the pure part needs no libvirt-python.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lxml import etree

from netmanager.hypervisor.keeper import KeeperError

# virDomainMigrateFlags
VIR_MIGRATE_LIVE = 1
VIR_MIGRATE_PEER2PEER = 2
VIR_MIGRATE_PERSIST_DEST = 8
VIR_MIGRATE_UNDEFINE_SOURCE = 16
VIR_MIGRATE_ABORT_ON_ERROR = 4096
# virDomainXMLFlags
VIR_DOMAIN_XML_INACTIVE = 2
VIR_DOMAIN_XML_MIGRATABLE = 8
# typed parameters of virDomainMigrate3 / virDomainMigrateToURI3
PARAM_URI = "migrate_uri"
PARAM_DEST_XML = "destination_xml"
PARAM_PERSIST_XML = "persistent_xml"
PARAM_BANDWIDTH = "bandwidth"  # MiB/s

#: the longest live migration waited for (libvirt's own timeouts end a stuck one earlier;
#: a large guest over a slow link takes minutes)
MIGRATION_WAIT_S = 3600.0

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


class Where(enum.StrEnum):
    """Where a domain is after a migration that failed."""

    SOURCE = "source"  # still on the source (running or paused there): nothing moved
    TARGET = "target"  # running on the target: the failure came after the switch-over
    NEITHER = "neither"  # running on neither side
    UNKNOWN = "unknown"  # the source does not run it and the target was not asked

    @property
    def text(self) -> str:
        return _WHERE_TEXT[self]


class MigrationError(KeeperError):
    """A migration that failed, and where its domain is (``where``)."""

    def __init__(self, message: str, where: Where, code: int = 0) -> None:
        super().__init__(f"{message} (the domain is {where.text})", code)
        self.reason = message
        self.where = where


_WHERE_TEXT = {
    Where.SOURCE: "still on the source",
    Where.TARGET: "running on the target",
    Where.NEITHER: "running on neither host",
    Where.UNKNOWN: "not running on the source; the target was not asked",
}


@dataclass(frozen=True)
class TargetNic:
    """A NIC of the domain on the target: found by ``mac``, its tap named ``tap``; a port
    of ``bridge`` (a ``bridge`` NIC), or with ``bridge`` empty an ``ethernet`` NIC whose
    tap the caller wires."""

    mac: str
    tap: str
    bridge: str = ""


@dataclass(frozen=True)
class MigrationRequest:
    """One live migration of ``domain`` to the libvirt at ``dest_uri``.

    ``data_uri``: where the migration stream goes (``VIR_MIGRATE_PARAM_URI``, e.g.
    ``unix:///run/.../mig.sock`` or ``tcp://192.0.2.22``; empty: what the target offers);
    ``peer2peer``: the source's libvirt opens the target itself (``dest_uri`` as its
    daemon reaches it, with libvirt's own authentication); ``bandwidth_mibps`` and
    ``max_downtime_ms``: QEMU's stream rate and allowed pause (0: QEMU's defaults);
    ``persist``: defined on the target, undefined on the source; ``console_log``: where a console logged to a file
    logs on the target (empty: as on the source).
    """

    domain: str
    dest_uri: str
    nics: tuple[TargetNic, ...]
    data_uri: str = ""
    peer2peer: bool = False
    bandwidth_mibps: int = 0
    max_downtime_ms: int = 0
    persist: bool = True
    console_log: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "dest_uri": self.dest_uri,
            "nics": [[n.mac, n.tap, n.bridge] for n in self.nics],
            "data_uri": self.data_uri,
            "peer2peer": self.peer2peer,
            "bandwidth_mibps": self.bandwidth_mibps,
            "max_downtime_ms": self.max_downtime_ms,
            "persist": self.persist,
            "console_log": self.console_log,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> MigrationRequest:
        return cls(
            domain=str(d["domain"]),
            dest_uri=str(d["dest_uri"]),
            nics=tuple(TargetNic(str(m), str(t), str(b)) for m, t, b in d.get("nics", ())),
            data_uri=str(d.get("data_uri", "")),
            peer2peer=bool(d.get("peer2peer", False)),
            bandwidth_mibps=int(d.get("bandwidth_mibps", 0)),
            max_downtime_ms=int(d.get("max_downtime_ms", 0)),
            persist=bool(d.get("persist", True)),
            console_log=str(d.get("console_log", "")),
        )


@dataclass(frozen=True)
class MigrationResult:
    """A migration done: how long the call took, and the domain's live XML on the target
    (empty after a peer-to-peer call, which returns no handle of it)."""

    domain: str
    dest_uri: str
    duration_s: float
    xml: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "dest_uri": self.dest_uri,
            "duration_s": self.duration_s,
            "xml": self.xml,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> MigrationResult:
        return cls(
            domain=str(d["domain"]),
            dest_uri=str(d["dest_uri"]),
            duration_s=float(d["duration_s"]),
            xml=str(d.get("xml", "")),
        )


# ------------------------------------------------------------------------ pure


def _parse(xml: str) -> etree._Element:
    try:
        return etree.fromstring(xml.encode(), _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"unreadable domain XML: {exc}") from exc


def destination_xml(xml: str, request: MigrationRequest) -> str:
    """``xml`` (the domain's migratable XML, ``VIR_DOMAIN_XML_MIGRATABLE``) as the target
    defines it: each NIC of ``request.nics`` (by MAC) an ``ethernet`` or ``bridge`` NIC
    with its tap's name; what identifies the device to the guest (MAC, model, PCI
    address, alias) kept, a ``<link state>`` taken away (the target's libvirt sets a link's
    state afterwards where it must be down).  Raises ValueError when
    the domain's NICs and ``request.nics`` do not match one to one."""
    root = _parse(xml)
    wanted = {n.mac.lower(): n for n in request.nics}
    if len(wanted) != len(request.nics):
        raise ValueError("a MAC is given twice among the target's NICs")
    seen: set[str] = set()
    for iface in root.iterfind("devices/interface"):
        mac_el = iface.find("mac")
        mac = str(mac_el.get("address") or "").lower() if mac_el is not None else ""
        nic = wanted.get(mac)
        if nic is None:
            raise ValueError(
                f"domain '{request.domain}': NIC {mac or '(no MAC)'} has no place on the target"
            )
        seen.add(mac)
        _retarget(iface, nic)
    missing = sorted(set(wanted) - seen)
    if missing:
        raise ValueError(f"domain '{request.domain}' has no NIC with MAC {', '.join(missing)}")
    if request.console_log:
        for kind in ("serial", "console"):
            for chardev in root.iterfind(f"devices/{kind}"):
                source = chardev.find("source")
                if chardev.get("type") == "file" and source is not None:
                    source.set("path", request.console_log)
    return etree.tostring(root, encoding="unicode")


def _retarget(iface: etree._Element, nic: TargetNic) -> None:
    iface.set("type", "bridge" if nic.bridge else "ethernet")
    for tag in ("source", "virtualport", "actual", "target", "link"):
        for old in iface.findall(tag):
            iface.remove(old)
    mac = iface.find("mac")
    at = iface.index(mac) + 1 if mac is not None else 0
    if nic.bridge:
        source = etree.Element("source")
        source.set("bridge", nic.bridge)
        iface.insert(at, source)
        at += 1
    target = etree.Element("target")
    target.set("dev", nic.tap)
    iface.insert(at, target)


def call_arguments(
    request: MigrationRequest, dest_xml: str, persist_xml: str = ""
) -> tuple[int, dict[str, Any]]:
    """The flags and typed parameters of the migration call."""
    flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_ABORT_ON_ERROR
    if request.peer2peer:
        flags |= VIR_MIGRATE_PEER2PEER
    params: dict[str, Any] = {PARAM_DEST_XML: dest_xml}
    if request.persist:
        flags |= VIR_MIGRATE_PERSIST_DEST | VIR_MIGRATE_UNDEFINE_SOURCE
        if persist_xml:
            params[PARAM_PERSIST_XML] = persist_xml
    if request.data_uri:
        params[PARAM_URI] = request.data_uri
    if request.bandwidth_mibps:
        params[PARAM_BANDWIDTH] = request.bandwidth_mibps
    return flags, params


# ------------------------------------------------------------------------ the call


class LibvirtDomain(Protocol):
    """What :func:`migrate` uses of a ``libvirt.virDomain``."""

    def name(self) -> str: ...
    def isActive(self) -> int: ...
    def isPersistent(self) -> int: ...
    def state(self) -> list[int]: ...
    def XMLDesc(self, flags: int = 0) -> str: ...
    def migrateSetMaxDowntime(self, downtime: int, flags: int = 0) -> int: ...
    def migrate3(self, dconn: Any, params: dict[str, Any], flags: int = 0) -> Any: ...
    def migrateToURI3(self, dconnuri: str, params: dict[str, Any], flags: int = 0) -> int: ...


class LibvirtConnection(Protocol):
    """What :func:`migrate` uses of a ``libvirt.virConnect`` (the target's)."""

    def lookupByName(self, name: str) -> Any: ...


def _code(exc: Exception) -> int:
    get = getattr(exc, "get_error_code", None)
    try:
        return int(get() or 0) if callable(get) else 0
    except (TypeError, ValueError):
        return 0


def migrate(
    dom: LibvirtDomain,
    request: MigrationRequest,
    *,
    dest: LibvirtConnection | None,
    error: type[Exception],
    clock: Callable[[], float] = time.monotonic,
) -> MigrationResult:
    """Live-migrate ``dom`` as ``request`` says: through ``dest`` (an open connection to
    the target; ``virDomainMigrate3``), or peer-to-peer (``virDomainMigrateToURI3``, no
    ``dest`` needed).  ``error`` is libvirt's exception type (``libvirt.libvirtError``).
    Raises :class:`MigrationError` saying where the domain is."""
    name = request.domain
    try:
        if not dom.isActive():
            raise MigrationError(
                f"domain '{name}' does not run: only a running domain migrates live", Where.SOURCE
            )
        xml = dom.XMLDesc(VIR_DOMAIN_XML_MIGRATABLE)
        inactive = dom.XMLDesc(VIR_DOMAIN_XML_MIGRATABLE | VIR_DOMAIN_XML_INACTIVE)
    except error as exc:
        raise MigrationError(
            f"cannot read domain '{name}': {exc}", Where.SOURCE, _code(exc)
        ) from exc
    try:
        dest_xml = destination_xml(xml, request)
        persist_xml = destination_xml(inactive, request) if request.persist else ""
    except ValueError as exc:
        raise MigrationError(str(exc), Where.SOURCE) from exc
    if not request.peer2peer and dest is None:
        raise MigrationError(
            f"no connection to {request.dest_uri} to migrate domain '{name}' to", Where.SOURCE
        )
    flags, params = call_arguments(request, dest_xml, persist_xml)
    try:
        if request.max_downtime_ms:
            dom.migrateSetMaxDowntime(request.max_downtime_ms, 0)
    except error as exc:
        raise MigrationError(
            f"cannot set the maximum downtime of domain '{name}': {exc}", Where.SOURCE, _code(exc)
        ) from exc
    started = clock()
    try:
        if request.peer2peer:
            dom.migrateToURI3(request.dest_uri, params, flags)
            moved = None
        else:
            moved = dom.migrate3(dest, params, flags)
    except error as exc:
        where = locate(dom, name, dest, error)
        raise MigrationError(
            f"migrating domain '{name}' to {request.dest_uri} failed after "
            f"{clock() - started:.2f} s: {exc}",
            where,
            _code(exc),
        ) from exc
    duration = clock() - started
    live = ""
    if moved is not None:
        try:
            live = str(moved.XMLDesc(0))
        except error:
            live = ""
    return MigrationResult(name, request.dest_uri, duration, live)


def locate(
    dom: LibvirtDomain, name: str, dest: LibvirtConnection | None, error: type[Exception]
) -> Where:
    """Where the domain runs after a failed migration: the source first (a migration
    that failed before its switch-over leaves the domain running or paused there)."""
    try:
        on_source = bool(dom.isActive())
    except error:
        on_source = False
    if on_source:
        return Where.SOURCE
    if dest is None:
        return Where.UNKNOWN
    try:
        there = dest.lookupByName(name)
        on_target = bool(there.isActive())
    except error:
        on_target = False
    return Where.TARGET if on_target else Where.NEITHER


def taps(xml: str) -> list[tuple[str, str]]:
    """(MAC, tap) of each NIC of a live domain XML, in order."""
    root = _parse(xml)
    out = []
    for iface in root.iterfind("devices/interface"):
        mac = iface.find("mac")
        target = iface.find("target")
        out.append(
            (
                str(mac.get("address") or "").lower() if mac is not None else "",
                str(target.get("dev") or "") if target is not None else "",
            )
        )
    return out


def unmigratable(xml: str) -> list[str]:
    """What in a domain's XML keeps QEMU from migrating it (measured here): a host
    directory shared over virtio-9p blocks migration while the guest has it mounted."""
    root = _parse(xml)
    out = []
    for fs in root.iterfind("devices/filesystem"):
        target = fs.find("target")
        tag = target.get("dir") if target is not None else ""
        out.append(
            f"it shares a host directory over virtio-9p (mount tag '{tag}'): QEMU refuses "
            "to migrate a guest that has it mounted"
        )
    return out


__all__: Sequence[str] = (
    "MigrationError",
    "MigrationRequest",
    "MigrationResult",
    "TargetNic",
    "Where",
    "call_arguments",
    "destination_xml",
    "locate",
    "migrate",
    "taps",
    "unmigratable",
)
