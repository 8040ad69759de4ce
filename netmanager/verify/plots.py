"""Configured against measured bandwidth and latency, in the form of seed 002's Figures 5
and 6: the configured value as a straight line, the measured values as dotted lines, one
for VMs on the same host ("local") and one for VMs on different hosts ("remote").

matplotlib is optional: without it no figure is written (the report says so).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from netmanager.verify.report import Check, Kind

if TYPE_CHECKING:
    from netmanager.verify.report import Report


def available() -> bool:
    try:
        import matplotlib  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


def write_figures(report: Report, directory: Path) -> list[Path]:
    """bandwidth.png and latency.png (where the report has such checks)."""
    if not available():
        return []
    written = []
    bandwidth = [c for c in report.of_kind(Kind.BANDWIDTH) if c.measured is not None]
    if bandwidth:
        path = directory / "bandwidth.png"
        _figure(
            bandwidth,
            path,
            title="Configured vs measured bandwidth (TBF, iperf3)",
            axis="bandwidth (Mbit/s)",
            factor=1e-6,
            log=True,
        )
        written.append(path)
    latency = [c for c in report.of_kind(Kind.LATENCY) if c.measured is not None]
    if latency:
        path = directory / "latency.png"
        _figure(
            latency,
            path,
            title="Configured vs measured latency (round trip, ICMP echo)",
            axis="round-trip time (ms)",
            factor=1.0,
            log=False,
        )
        written.append(path)
    return written


def _series_name(check: Check) -> str:
    placement = str(check.extra.get("placement", "remote"))
    proto = check.probe.removeprefix("iperf3 ").upper() if check.kind is Kind.BANDWIDTH else ""
    return f"measured, {placement}" + (f" ({proto})" if proto else "")


def _figure(
    checks: Sequence[Check], path: Path, *, title: str, axis: str, factor: float, log: bool
) -> None:
    import matplotlib  # type: ignore[import-not-found,unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found,unused-ignore]

    configured = [float(c.configured or 0) * factor for c in checks]
    by_value = len(set(configured)) > 1
    figure, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    if by_value:
        for check, x in zip(checks, configured, strict=True):
            series[_series_name(check)].append((x, float(check.measured or 0) * factor))
        low, high = min(configured), max(configured)
        ax.plot([low, high], [low, high], "-", color="black", linewidth=1.5, label="configured")
        ax.set_xlabel(f"configured {axis}")
        if log and high / max(low, 1e-12) > 20:
            ax.set_xscale("log")
            ax.set_yscale("log")
    else:
        ordered = sorted(range(len(checks)), key=lambda i: (_series_name(checks[i]), i))
        for position, index in enumerate(ordered, start=1):
            check = checks[index]
            series[_series_name(check)].append((position, float(check.measured or 0) * factor))
        ax.plot(
            [1, max(1, len(checks))],
            [configured[0], configured[0]],
            "-",
            color="black",
            linewidth=1.5,
            label="configured" if any(c.applicable for c in checks) else "configured (none)",
        )
        ax.set_xlabel("measurement")
        top = max([configured[0]] + [y for points in series.values() for _, y in points])
        ax.set_ylim(0, top * 1.15 if top > 0 else 1)
        ax.set_xticks(range(1, len(checks) + 1))
    markers = {"local": "o", "remote": "s"}
    for name, points in sorted(series.items()):
        points.sort()
        xs, ys = zip(*points, strict=True)
        placement = "local" if ", local" in name else "remote"
        ax.plot(xs, ys, ":", marker=markers[placement], markersize=5, label=name)
    ax.set_ylabel(f"measured {axis}")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
