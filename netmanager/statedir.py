"""netmanager's state directory: what was applied, segment ids, journals, agent pids.

Default ``/var/lib/netmanager``; ``NETMANAGER_STATE_DIR`` overrides it (tests use a
temporary one).  Files are JSON, written atomically (write to a temporary file, fsync,
rename) under an advisory lock so that two netmanager processes never interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from netmanager import settings

DEFAULT_STATE_DIR = "/var/lib/netmanager"


def state_dir() -> Path:
    return Path(settings.get(settings.STATE_DIR, DEFAULT_STATE_DIR))


def read_json(path: Path, default: Any = None) -> Any:
    try:
        with path.open("r", encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def write_json(path: Path, document: Any, *, compact: bool = False) -> None:
    """Write ``document`` to ``path`` atomically and durably: a temporary file beside it,
    flushed to disk, renamed over it (every JSON file netmanager and its agents keep goes
    through here).  ``compact``: no indentation (large journals)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # json.dumps, not json.dump: dump always takes the pure-Python encoder, dumps the
        # C one where it can (compact documents: some ten times faster)
        if compact:
            text = json.dumps(document, separators=(",", ":"), sort_keys=True)
        else:
            text = json.dumps(document, indent=2, sort_keys=True)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def locked(directory: Path | None = None) -> Iterator[Path]:
    """Hold the state directory's lock; yields the directory."""
    directory = directory or state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield directory
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def apply_lock(shared: bool = False) -> Iterator[None]:
    """Held exclusively by apply and destroy (one at a time on this machine), shared by
    readers that must not see a half-made change (verify).  Separate from :func:`locked`,
    which guards the state files themselves and is taken inside an apply."""
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".apply.lock").open("a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
