"""The result of a verification: one :class:`Check` per thing measured, and the
:class:`Report` that holds them, with its JSON, CSV and terminal forms.

A check compares what virtual.xml configures with what was measured.  Quantities are in
the unit the check names: bandwidth in bit/s (the Ethernet-frame rate of the VM's port,
as TBF counts it), latency in ms (round trip), loss in percent.  Qualitative checks
(reachability, isolation, path, state) carry words ("reachable", "isolated", the hops).
"""

from __future__ import annotations

import csv
import enum
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netmanager.output import table

Value = float | int | str | None


class Kind(enum.StrEnum):
    REACHABILITY = "reachability"
    ISOLATION = "isolation"
    PATH = "path"
    LATENCY = "latency"
    LOSS = "loss"
    BANDWIDTH = "bandwidth"
    STATE = "state"


LEVELS: tuple[Kind, ...] = (
    Kind.REACHABILITY,
    Kind.ISOLATION,
    Kind.PATH,
    Kind.LATENCY,
    Kind.LOSS,
    Kind.BANDWIDTH,
    Kind.STATE,
)
"""Level N runs the first N kinds, like linktest's levels."""

UNITS: dict[Kind, str] = {
    Kind.REACHABILITY: "",
    Kind.ISOLATION: "",
    Kind.PATH: "",
    Kind.LATENCY: "ms",
    Kind.LOSS: "%",
    Kind.BANDWIDTH: "bit/s",
    Kind.STATE: "",
}


def kinds_for_level(level: int) -> tuple[Kind, ...]:
    if not 1 <= level <= len(LEVELS):
        raise ValueError(f"level must be within 1-{len(LEVELS)}, not {level}")
    return LEVELS[:level]


@dataclass(frozen=True)
class Check:
    """One comparison of the configured with the measured.

    ``applicable`` is False where the check could only observe (a latency where none is
    declared and the kernel has no NetEm): it reports what it measured and passes.
    ``extra`` holds what a reader may want beyond the table: samples, goodput, hosts.
    """

    kind: Kind
    src: str
    dst: str
    configured: Value
    measured: Value
    passed: bool
    topology: str = ""
    probe: str = ""
    unit: str = ""
    tolerance: str = ""
    error_pct: float | None = None
    applicable: bool = True
    detail: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "topology": self.topology,
            "src": self.src,
            "dst": self.dst,
            "probe": self.probe,
            "configured": _json_value(self.configured),
            "measured": _json_value(self.measured),
            "unit": self.unit,
            "error_pct": None if self.error_pct is None else round(self.error_pct, 3),
            "tolerance": self.tolerance,
            "passed": self.passed,
            "applicable": self.applicable,
            "detail": self.detail,
            **({"extra": dict(self.extra)} if self.extra else {}),
        }


def _json_value(value: Value) -> Value:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    return value


def error_pct(configured: float, measured: float) -> float:
    """Relative error of ``measured`` against ``configured``, in percent."""
    if configured == 0:
        return 0.0 if measured == 0 else math.inf
    return (measured - configured) / configured * 100.0


@dataclass
class Report:
    """Every check of one verification run; ``passed`` when all of them passed."""

    topologies: tuple[str, ...]
    kinds: tuple[Kind, ...]
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def of_kind(self, kind: Kind) -> list[Check]:
        return [c for c in self.checks if c.kind is kind]

    def summary(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for kind in self.kinds:
            checks = self.of_kind(kind)
            out[str(kind)] = {
                "checks": len(checks),
                "passed": sum(1 for c in checks if c.passed),
                "failed": sum(1 for c in checks if not c.passed),
                "not_applicable": sum(1 for c in checks if not c.applicable),
            }
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "topologies": list(self.topologies),
            "kinds": [str(k) for k in self.kinds],
            "seconds": round(self.seconds, 3),
            "summary": self.summary(),
            "notes": list(self.notes),
            "checks": [c.as_json() for c in self.checks],
        }

    # ------------------------------------------------------------------------- CSV

    CSV_FIELDS = (
        "kind",
        "topology",
        "src",
        "dst",
        "probe",
        "configured",
        "measured",
        "unit",
        "error_pct",
        "tolerance",
        "passed",
        "applicable",
        "detail",
    )

    def csv_text(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for check in self.checks:
            row = check.as_json()
            writer.writerow({k: "" if row[k] is None else row[k] for k in self.CSV_FIELDS})
        return buffer.getvalue()

    def write(self, directory: Path) -> list[Path]:
        """report.json, checks.csv and (with matplotlib) the figures, into ``directory``."""
        import json

        directory.mkdir(parents=True, exist_ok=True)
        written = []
        path = directory / "report.json"
        path.write_text(json.dumps(self.as_json(), indent=2) + "\n", encoding="utf-8")
        written.append(path)
        path = directory / "checks.csv"
        path.write_text(self.csv_text(), encoding="utf-8")
        written.append(path)
        from netmanager.verify.plots import write_figures

        written.extend(write_figures(self, directory))
        return written

    # ------------------------------------------------------------------------ text

    def table(self, *, everything: bool = False) -> str:
        """The terminal report: a summary per kind, every measured quantity (latency, loss,
        bandwidth, paths) and every failure; ``everything`` lists all checks."""
        lines = []
        for kind, counts in self.summary().items():
            if not counts["checks"]:
                continue
            text = f"{kind:<13}{counts['passed']:>5}/{counts['checks']:<5} passed"
            if counts["failed"]:
                text += f"  {counts['failed']} FAILED"
            if counts["not_applicable"]:
                text += f"  ({counts['not_applicable']} not applicable)"
            lines.append(text)
        several = len(self.topologies) > 1
        shown = [c for c in self.checks if everything or _measurement(c)]
        if shown:
            lines.append("")
            lines.extend(_render_rows(shown, several))
        failures = self.failures
        if failures:
            lines.append("")
            lines.append(f"{len(failures)} check(s) failed:")
            for check in failures:
                lines.append(f"  {describe(check, several)}")
        for note in self.notes:
            lines.append(f"note: {note}")
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(
            f"verify {', '.join(self.topologies)}: {verdict} "
            f"({len(self.checks) - len(failures)}/{len(self.checks)} checks passed"
            f" in {self.seconds:.1f}s)"
        )
        return "\n".join(lines)


def format_value(value: Value, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if unit == "bit/s":
        return _rate(float(value))
    if unit == "ms":
        return f"{value:.3f}ms"
    if unit == "%":
        return f"{value:.2f}%"
    return f"{value:g}"


def _rate(bps: float) -> str:
    for name, factor in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= factor:
            return f"{bps / factor:.4g}{name}"
    return f"{bps:.4g}bit/s"


def _measurement(check: Check) -> bool:
    """Rows of the table: what was measured against a number, and paths through gateways."""
    if check.kind in (Kind.LATENCY, Kind.LOSS, Kind.BANDWIDTH):
        return True
    return check.kind is Kind.PATH and (">" in str(check.configured) or not check.passed)


def _who(check: Check, name: str, several: bool) -> str:
    if several and check.topology and "/" not in name and name not in ("*", ""):
        return f"{check.topology}/{name}"
    return name


def describe(check: Check, several: bool = False) -> str:
    """One line that says what failed, between whom, and why."""
    src, dst = _who(check, check.src, several), _who(check, check.dst, several)
    where = f"{src} -> {dst}" if dst else src
    probe = f" [{check.probe}]" if check.probe else ""
    text = (
        f"{check.kind} {where}{probe}: configured {format_value(check.configured, check.unit)},"
        f" measured {format_value(check.measured, check.unit)}"
    )
    if check.error_pct is not None and math.isfinite(check.error_pct):
        text += f" ({check.error_pct:+.2f}%, tolerance {check.tolerance})"
    if check.detail:
        text += f" — {check.detail}"
    return text


def _render_rows(checks: Iterable[Check], several: bool = False) -> list[str]:
    header = ("kind", "src", "dst", "probe", "configured", "measured", "error", "tolerance", "")
    rows = [header]
    for c in checks:
        error = (
            f"{c.error_pct:+.2f}%"
            if c.error_pct is not None and math.isfinite(c.error_pct)
            else "-"
        )
        verdict = "ok" if c.passed else "FAIL"
        if not c.applicable:
            verdict = "n/a"
        rows.append(
            (
                str(c.kind),
                _who(c, c.src, several),
                _who(c, c.dst, several),
                c.probe,
                format_value(c.configured, c.unit),
                format_value(c.measured, c.unit),
                error,
                c.tolerance,
                verdict,
            )
        )
    return table(rows, clip=40)
