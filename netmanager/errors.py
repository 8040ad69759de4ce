"""Diagnostics in the form of a compiler's, and the one exception the library raises.

Every problem found in the input is a :class:`Diagnostic` that remembers the file, line and
column it points at.  A phase (parsing, validation, mapping, ...) collects all of its
diagnostics and raises a single :class:`NetmanagerError` carrying them; only the CLI prints.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


class ExitCode(enum.IntEnum):
    """Exit codes of the ``netmanager`` command, documented in the README."""

    OK = 0
    INVALID_INPUT = 1
    USAGE = 2
    INFEASIBLE = 3
    APPLY_FAILED = 4
    VERIFY_FAILED = 5
    ENVIRONMENT = 6


@dataclass(frozen=True, order=True)
class Loc:
    """A place in an input file; line and column count from 1 (0 means unknown)."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col or 1}"
        return self.file


NOWHERE = Loc("<none>")


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    code: str
    message: str
    loc: Loc
    hint: str = ""

    def format(self) -> str:
        text = f"{self.loc}: {self.severity.value}[{self.code}]: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def as_json(self) -> dict[str, object]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "file": self.loc.file,
            "line": self.loc.line,
            "column": self.loc.col,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass
class Diagnostics:
    """A collector used inside one phase; ``raise_if_errors`` ends the phase."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, code: str, loc: Loc, message: str, hint: str = "") -> None:
        self.items.append(Diagnostic(Severity.ERROR, code, message, loc, hint))

    def warning(self, code: str, loc: Loc, message: str, hint: str = "") -> None:
        self.items.append(Diagnostic(Severity.WARNING, code, message, loc, hint))

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.items.extend(diagnostics)

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.items, key=lambda d: (d.loc, d.code, d.message))

    def raise_if_errors(self, phase: str) -> None:
        if self.has_errors:
            raise NetmanagerError(phase, self.sorted())


#: errors after which the machine is not as it was: an undo failed (E711), or some hosts
#: kept a change that another host did not confirm (E742)
LEAVES_CHANGES = frozenset({"E711", "E742", "E787"})


class NetmanagerError(Exception):
    """Raised by every phase of the library with all the diagnostics of that phase."""

    exit_code: ExitCode = ExitCode.INVALID_INPUT

    def __init__(self, phase: str, diagnostics: list[Diagnostic]) -> None:
        self.phase = phase
        self.diagnostics = diagnostics
        errors = [d for d in diagnostics if d.severity is Severity.ERROR]
        first = errors[0].format() if errors else "no diagnostics"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{phase} failed: {first}{more}")

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]

    @property
    def left_changes(self) -> bool:
        """Whether the failure left something changed (every other failure of netmanager
        changes nothing, or undoes what it changed before it raises)."""
        return any(d.code in LEAVES_CHANGES for d in self.errors)


class ApplyFailed(NetmanagerError):
    """A change failed; what had been done was undone (unless the diagnostics say not)."""

    exit_code = ExitCode.APPLY_FAILED


class InfeasibleError(NetmanagerError):
    """The input is valid but cannot be placed on the infrastructure."""

    exit_code = ExitCode.INFEASIBLE


def single(
    code: str,
    loc: Loc,
    message: str,
    hint: str = "",
    phase: str = "input",
    error: type[NetmanagerError] = NetmanagerError,
) -> NetmanagerError:
    """An ``error`` with one error diagnostic, for failures that stop a phase at once."""
    return error(phase, [Diagnostic(Severity.ERROR, code, message, loc, hint)])
