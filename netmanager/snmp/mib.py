"""The compiled NETMANAGER-MIB (and the IETF modules it imports), loaded into pysnmp once.

The MIB text is the single source of truth for the configuration tables: their columns,
syntaxes, ranges, sizes, defaults (DEFVAL) and access are read from here, not repeated
in Python.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from pysnmp.smi import builder

Oid = tuple[int, ...]

MIBS_DIR = Path(__file__).resolve().parent / "mibs"
MODULE = "NETMANAGER-MIB"

NETMANAGER_MIB: Oid = (1, 3, 6, 1, 3, 7171)
NM_NOTIFICATIONS: Oid = (*NETMANAGER_MIB, 0)
NM_CONFIG: Oid = (*NETMANAGER_MIB, 1, 1)
NM_TXN: Oid = (*NETMANAGER_MIB, 1, 2)
NM_MONITOR: Oid = (*NETMANAGER_MIB, 1, 3)


@cache
def mib_builder() -> Any:
    mb = builder.MibBuilder()
    mb.add_mib_sources(builder.DirMibSource(str(MIBS_DIR)))
    mb.load_modules(MODULE)
    return mb


def symbols(module: str = MODULE) -> dict[str, Any]:
    return dict(mib_builder().mibSymbols[module])


def symbol(name: str, module: str = MODULE) -> Any:
    return mib_builder().mibSymbols[module][name]


def oid_of(name: str, module: str = MODULE) -> Oid:
    return tuple(symbol(name, module).name)


def type_names(syntax: Any) -> set[str]:
    """Names of the classes a syntax object derives from (textual conventions included)."""
    return {cls.__name__ for cls in type(syntax).__mro__}


def string_index(text: str, size: int = 32) -> Oid:
    """A text as the index of a table indexed by an ``OCTET STRING (SIZE (0..size))``: its
    length, then its UTF-8 octets (RFC 2578 7.7), cut at ``size``."""
    octets = text.encode("utf-8", "replace")[:size]
    return (len(octets), *octets)
