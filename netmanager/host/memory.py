"""A host that exists only in memory (and optionally a JSON file): the fake backend of
the host contract, for tests and ``netmanager-agent --backend memory``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from netmanager.host.candidate import Candidate, Change, diff_candidates
from netmanager.host.protocol import BackendError, UndoFailed
from netmanager.host.rows import PortKey, check_scoped, host_configs_from_candidate
from netmanager.statedir import write_json


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
        write_json(self.path, doc)

    def _event(self, what: str) -> None:
        self.log.append(what)
        self._save()

    def pending(self) -> str | None:
        with self._lock:
            if self.in_progress is not None:
                return f"an interrupted {self.in_progress}"
            return "an unconfirmed commit" if self.undo_point is not None else None

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

    def stage(
        self, candidate: Candidate, ports: Sequence[PortKey] | None = None
    ) -> Sequence[Change]:
        with self._lock:
            if "stage" in self.fail:
                raise BackendError("stage failed (fault injected)")
            try:  # refused as the kernel backend refuses it
                if ports is not None:
                    check_scoped(self.applied, candidate, ports)
                elif candidate.documents:
                    host_configs_from_candidate(candidate)
            except ValueError as exc:
                raise BackendError(f"cannot stage: {exc}") from exc
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
