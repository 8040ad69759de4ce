"""Where netmanager keeps its state and how it names its namespaces, per process or per
testbed.

The command line takes both from the environment (``NETMANAGER_STATE_DIR``,
``NETMANAGER_NS_PREFIX``).  A :class:`netmanager.Testbed` gives its own for the duration
of each of its operations (:func:`scoped`): operations of testbeds with different settings
never interleave in one process (they take :data:`LOCK` in turn), and every thread an
operation starts sees the same settings.  Processes netmanager starts get them through
:func:`child_env`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

STATE_DIR = "NETMANAGER_STATE_DIR"
NS_PREFIX = "NETMANAGER_NS_PREFIX"

#: held by an operation that runs with settings of its own
LOCK = threading.RLock()
_overrides: dict[str, str] = {}


def get(name: str, default: str) -> str:
    """A setting: the running testbed's, else the environment's, else ``default``."""
    value = _overrides.get(name)
    if value is not None:
        return value
    return os.environ.get(name, default)


@contextlib.contextmanager
def scoped(**values: str | None) -> Iterator[None]:
    """Run with these settings (names as in the environment; None: leave as is)."""
    with LOCK:
        saved = dict(_overrides)
        _overrides.update({k: v for k, v in values.items() if v is not None})
        try:
            yield
        finally:
            _overrides.clear()
            _overrides.update(saved)


def child_env() -> dict[str, str]:
    """The environment for a process netmanager starts: this one's, with the settings."""
    return {**os.environ, **_overrides}
