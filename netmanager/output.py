"""Plain-text output, written once: aligned tables and the progress of long work.

Every table netmanager prints (``map``'s placement, ``watch``'s ports, ``verify``'s
checks, ``agents`` and ``hosts``, ``doctor``) goes through :func:`table`, and every
progress bar (``apply``'s phases and kernel steps, ``verify``'s stages) is a
:class:`Progress`.  Diagnostics print here as a compiler prints them, and every JSON
document (``--json``) through :func:`print_json`.  Low in the layers: it imports only
:mod:`netmanager.errors`, so that the stages that render themselves as text (verify's
report, the mapping) and the commands can all use it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Collection, Iterable, Sequence
from typing import Any, TextIO

from netmanager.errors import Diagnostic, NetmanagerError, Severity

NOTHING_CHANGED = "nothing was changed"
CHANGES_LEFT = "the machine is NOT as it was (see above; netmanager plan shows what differs)"


def diagnostics_text(diagnostics: Iterable[Diagnostic]) -> str:
    return "\n".join(d.format() for d in diagnostics)


def summary_line(diagnostics: list[Diagnostic]) -> str:
    errors = sum(1 for d in diagnostics if d.severity is Severity.ERROR)
    warnings = len(diagnostics) - errors
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return ", ".join(parts) or "no problems"


def print_json(document: Any, out: TextIO | None = None) -> None:
    print(json.dumps(document, indent=2, sort_keys=False), file=out or sys.stdout)


def print_error(exc: NetmanagerError, json_output: bool = False) -> None:
    if json_output:
        print_json(
            {
                "ok": False,
                "phase": exc.phase,
                "changed": exc.left_changes,
                "diagnostics": [d.as_json() for d in exc.diagnostics],
            }
        )
        return
    if exc.diagnostics:
        print(diagnostics_text(exc.diagnostics), file=sys.stderr)
    tail = CHANGES_LEFT if exc.left_changes else NOTHING_CHANGED
    print(f"{summary_line(exc.diagnostics)}; {tail}", file=sys.stderr)


def table(
    rows: Sequence[Sequence[str]],
    *,
    right: Collection[int] = (),
    clip: int | None = None,
    indent: str = "",
) -> list[str]:
    """``rows`` (the header first, if any) as lines of columns two spaces apart: the
    columns in ``right`` aligned right (numbers), the others left; a cell longer than
    ``clip`` characters is cut there.  Trailing blanks are dropped."""
    if not rows:
        return []
    cells = [[c if clip is None else c[:clip] for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return [
        indent
        + "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in cells
    ]


def progress_wanted(json_output: bool, stream: TextIO | None = None) -> bool:
    """Progress is shown on a terminal (stderr by default), or anywhere with
    NETMANAGER_PROGRESS set; never beside ``--json``."""
    tty = (stream or sys.stderr).isatty()
    return not json_output and (tty or "NETMANAGER_PROGRESS" in os.environ)


class Progress:
    """Long work, stage by stage, on ``stream``: the stage's name, a bar of what it has
    done when it says (on a terminal, redrawn in place at most ten times a second), and
    its time when the next stage starts or :meth:`finish` is called: one line per stage,
    ``  name ... [done/total unit] seconds``."""

    WIDTH = 30

    def __init__(
        self, enabled: bool, *, tty: bool | None = None, stream: TextIO | None = None
    ) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr  # the one in force now (tests replace it)
        self.tty = self.stream.isatty() if tty is None else tty
        self.name: str | None = None
        self.unit = ""
        self.counts: tuple[int, int] | None = None
        self.started = time.perf_counter()
        self.drawn = 0.0

    def _print(self, text: str, end: str = "\n") -> None:
        print(text, end=end, file=self.stream, flush=True)

    def stage(self, name: str, unit: str = "") -> None:
        """A new stage begins (the one before ends); ``unit`` names what it counts."""
        if not self.enabled:
            return
        self.finish()
        self.name, self.unit, self.counts = name, unit, None
        self.started = time.perf_counter()
        self.drawn = 0.0
        self._print(f"  {name} ...", end="")

    def count(self, done: int, total: int) -> None:
        """``done`` of ``total`` of the stage's work."""
        if not self.enabled or self.name is None:
            return
        self.counts = (done, total)
        if not self.tty:
            return
        now = time.perf_counter()
        if now - self.drawn < 0.1 and done < total:
            return
        self.drawn = now
        filled = self.WIDTH * done // total if total else self.WIDTH
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self._print(f"\r  {self.name} [{bar}] {done}/{total}", end="")

    def finish(self) -> None:
        """The stage ends: its counts and time."""
        if not self.enabled or self.name is None:
            return
        seconds = time.perf_counter() - self.started
        counted = ""
        if self.counts is not None:
            done, total = self.counts
            counted = f" {done}/{total}{' ' + self.unit if self.unit else ''}"
        if self.tty and self.counts is not None:  # over the bar's line
            self._print(f"\r  {self.name}:{counted} {seconds:.2f}s" + " " * (self.WIDTH + 4))
        else:
            self._print(f"{counted} {seconds:.2f}s")
        self.name = None
