"""The agent's whole MIB view as sorted, immutable OID sections, served by bisection.

pysnmp's own instrumentation (one ``MibScalarInstance`` per cell) costs 65-150 µs per value
and rebuilds an index on every row change; here every served value sits in a sorted list
of OID tuples, and GET/GETNEXT is one ``bisect`` (a few µs).  A :class:`Section` covers
one contiguous OID range (the system group, ifTable, the link table ...); the producer of
a section (the interface poller, the configuration store) builds a new one and swaps it
into the :class:`OidTree` in one assignment, so a request never sees half an update.

Each value is stored as ``(make, arg)`` and served as ``make(arg)``: building 50 000
pyasn1 objects per poll would cost more than building them for the few cells a request
asks for, and a ``make`` can also compute a value at request time (``sysUpTime``).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Oid = tuple[int, ...]
Entry = tuple[Callable[[Any], Any], Any]


def _const(value: Any) -> Any:
    return value


def const(value: Any) -> Entry:
    """An entry that always serves ``value`` (a pyasn1 object)."""
    return (_const, value)


def dynamic(fn: Callable[[], Any]) -> Entry:
    """An entry computed at request time."""
    return (_call, fn)


def _call(fn: Callable[[], Any]) -> Any:
    return fn()


@dataclass(frozen=True)
class Section:
    """Sorted OIDs with their values, plus the OIDs of the objects (columns, scalars) the
    section defines, to tell noSuchInstance (object known) from noSuchObject."""

    name: str
    oids: Sequence[Oid]
    entries: Sequence[Entry]
    objects: frozenset[Oid] = field(default_factory=frozenset)
    #: the OID range the section owns (its subtree), for noSuchObject decisions
    root: Oid = ()

    @staticmethod
    def build(
        name: str,
        root: Oid,
        items: Iterable[tuple[Oid, Entry]],
        objects: Iterable[Oid] = (),
        *,
        presorted: bool = False,
    ) -> Section:
        pairs = list(items)
        if not presorted:
            pairs.sort(key=lambda p: p[0])
        return Section(
            name=name,
            oids=[p[0] for p in pairs],
            entries=[p[1] for p in pairs],
            objects=frozenset(objects),
            root=root,
        )

    def get(self, oid: Oid) -> Entry | None:
        i = bisect_left(self.oids, oid)
        if i < len(self.oids) and self.oids[i] == oid:
            return self.entries[i]
        return None

    def next_index(self, oid: Oid) -> int:
        """Index of the first OID strictly after ``oid`` (may be ``len``)."""
        return bisect_right(self.oids, oid)

    def knows_object(self, oid: Oid) -> bool:
        return any(oid[:n] in self.objects for n in range(len(oid) - 1, 0, -1))


class _Slot:
    __slots__ = ("factory", "root", "section")

    def __init__(self, root: Oid, section: Section | None, factory: Callable[[], Section] | None):
        self.root = root
        self.section = section
        self.factory = factory

    def get(self) -> Section:
        if self.section is None:
            assert self.factory is not None
            self.section = self.factory()
        return self.section


class OidTree:
    """All sections of the agent, ordered by OID; replaced section by section.

    A section can also be given as a factory (:meth:`invalidate`): it is rebuilt on the
    first request after a change, so a burst of SETs rebuilds the configuration tables
    once, not once per SET.
    """

    def __init__(self) -> None:
        self._slots: dict[str, _Slot] = {}
        self._ordered: list[_Slot] = []

    def _store(self, name: str, slot: _Slot) -> None:
        slots = dict(self._slots)
        slots[name] = slot
        self._slots = slots
        self._ordered = sorted(slots.values(), key=lambda s: s.root)

    def put(self, section: Section) -> None:
        self._store(section.name, _Slot(section.root, section, None))

    def invalidate(self, name: str, root: Oid, factory: Callable[[], Section]) -> None:
        self._store(name, _Slot(root, None, factory))

    def section(self, name: str) -> Section | None:
        slot = self._slots.get(name)
        return slot.get() if slot is not None else None

    def get_entry(self, oid: Oid) -> tuple[str, Entry | None]:
        """``("value", entry)``, ``("noSuchInstance", None)`` or ``("noSuchObject", None)``."""
        for slot in self._ordered:
            if oid[: len(slot.root)] == slot.root:
                section = slot.get()
                entry = section.get(oid)
                if entry is not None:
                    return "value", entry
                if section.knows_object(oid):
                    return "noSuchInstance", None
        return "noSuchObject", None

    def get(self, oid: Oid) -> tuple[str, Any]:
        """``("value", v)``, ``("noSuchInstance", None)`` or ``("noSuchObject", None)``."""
        kind, entry = self.get_entry(oid)
        return (kind, entry[0](entry[1]) if entry is not None else None)

    def next_entry(self, oid: Oid) -> tuple[Oid, Entry] | None:
        """The first (OID, entry) after ``oid``, without building the value."""
        for slot in self._ordered:
            if slot.root < oid[: len(slot.root)]:
                continue
            section = slot.get()
            oids = section.oids
            if not oids or oids[-1] <= oid:
                continue
            i = section.next_index(oid)
            return oids[i], section.entries[i]
        return None

    def next(
        self, oid: Oid, skip: Callable[[Oid, Any], bool] | None = None
    ) -> tuple[Oid, Any] | None:
        """The first (OID, value) after ``oid``; None at the end of the MIB view.

        ``skip(oid, value)`` drops values a requester may not see (Counter64 for SNMPv1).
        """
        for slot in self._ordered:
            if slot.root < oid[: len(slot.root)]:
                continue  # the whole subtree lies before oid
            section = slot.get()
            oids = section.oids
            if not oids or oids[-1] <= oid:
                continue
            i = section.next_index(oid)
            while i < len(oids):
                make, arg = section.entries[i]
                value = make(arg)
                if skip is None or not skip(oids[i], value):
                    return oids[i], value
                i += 1
        return None

    def __len__(self) -> int:
        return sum(len(s.get().oids) for s in self._ordered)


# ---------------------------------------------------------------- BER size estimates


def _subid_len(n: int) -> int:
    length = 1
    while n >= 0x80:
        n >>= 7
        length += 1
    return length


def _len_len(n: int) -> int:
    if n < 0x80:
        return 1
    length = 1
    while n:
        n >>= 8
        length += 1
    return length


def oid_ber_len(oid: Oid) -> int:
    """Encoded length of an OBJECT IDENTIFIER (tag and length included)."""
    if len(oid) < 2:
        body = 1
    else:
        body = _subid_len(oid[0] * 40 + oid[1]) + sum(_subid_len(x) for x in oid[2:])
    return 1 + _len_len(body) + body


def value_ber_len(value: Any) -> int:
    """Encoded length of a var-bind value, close enough to size a GETBULK response."""
    try:
        raw = value.asOctets() if hasattr(value, "asOctets") else None
    except Exception:  # a value without octets (Null, exceptions)
        raw = None
    if raw is not None:
        body = len(raw)
    elif hasattr(value, "asTuple"):
        return oid_ber_len(tuple(value.asTuple()))
    else:
        try:
            n = int(value)
        except (TypeError, ValueError):
            n = 0
        body = max(1, (n.bit_length() + 8) // 8)
    return 1 + _len_len(body) + body


def varbind_ber_len(oid: Oid, value: Any) -> int:
    body = oid_ber_len(oid) + value_ber_len(value)
    return 1 + _len_len(body) + body
