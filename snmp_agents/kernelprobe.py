"""What the agent's host kernel offers, asked of a child process.

A probe tries each feature in a throwaway network namespace; a process that serves
requests must not create one itself, so the agent runs
``python -m netmanager.kernel.features CACHE`` once, in a thread, at start.  The answer is
kept in the state directory under the machine's key (boot, kernel, loaded modules, tools):
an agent restarted on the same boot does not probe again.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("netmanager.agent")


class KernelProbe:
    """The host's capabilities once a child process has probed them (``start``: probe
    now, in the background; otherwise nothing is known)."""

    def __init__(self, cache: Path, *, start: bool) -> None:
        self.cache = cache
        self.found: frozenset[str] | None = None
        self.error = ""
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(target=self._probe, name="nm-probe", daemon=True)
            self._thread.start()

    def _probe(self) -> None:
        argv = [sys.executable, "-m", "netmanager.kernel.features", str(self.cache)]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
            if done.returncode != 0:
                raise RuntimeError(done.stderr.strip().splitlines()[-1:] or done.returncode)
            found = json.loads(done.stdout)
            if not isinstance(found, list):
                raise ValueError(f"not a list: {done.stdout[:80]!r}")
            self.found = frozenset(str(c) for c in found)
            log.info("kernel features: %s", " ".join(sorted(self.found)) or "none")
        except Exception as exc:  # unknown: the backend finds out when a change needs it
            self.error = str(exc)
            log.warning("the kernel probe failed: %s", exc)

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def has(self, capability: str) -> Callable[[], bool | None]:
        """Whether the kernel has ``capability``; None while (or where) nobody knows."""

        def known() -> bool | None:
            return None if self.found is None else capability in self.found

        return known
