"""Printing diagnostics and JSON for the CLI (the only module besides cli/commands that prints)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
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
