"""Attributes of a package imported on first use (PEP 562): a program that needs one part
of netmanager (an agent, a scan worker inside a guest, where every import costs seconds
under TCG) does not import the whole API with it."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def exports(package: str, where: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package``: each name of ``where`` comes from the
    module it maps to, imported when the name is first asked for."""
    namespace = importlib.import_module(package).__dict__

    def getattr_(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return getattr_
