"""How closely verify's estimate of a guest pair's round trip follows the declared
latency: the measurements behind :func:`netmanager.verify.connectivity.
guest_latency_tolerance_ms`.

``.venv/bin/python bench/guestlatency.py REAL VIRTUAL --latencies 1,5,20,100,500``
re-applies VIRTUAL (a topology with a pair of VMs on two guest hosts, already applied)
with each latency in turn on its first ``<shaping>`` (its bandwidth kept, no jitter, no
loss: copies in a temporary directory), then measures the first such pair ``--rounds`` times as
verify does, one try each (:class:`~netmanager.verify.distributed.GuestPings`: the
guests' own round trip, then 20 echoes from the first VM, both with ``ping`` inside the
guest), and prints per latency the error of the estimate (10th percentile less the own
round trip's, :func:`~netmanager.verify.connectivity.guest_estimate`) against the
declared round trip, and the CPU pressure on this machine during each try.  With
``--latencies`` empty, VIRTUAL is measured as it is.  The topology is left applied as
VIRTUAL declares it.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from netmanager.cli.main import main as cli
from netmanager.verify import connectivity
from netmanager.verify.connectivity import Keys
from netmanager.verify.distributed import GUEST_PROBE_TIMEOUT_S, GuestPings, Guests, Placement
from netmanager.verify.expect import declared
from netmanager.verify.run import load_subjects
from netmanager.verify.scan import ScanResult


def _with_latency(text: str, latency_ms: float) -> str:
    """VIRTUAL with its first ``<shaping>``'s latency set (its other attributes kept,
    jitter and loss dropped)."""
    found = re.search(r"<shaping([^>]*)/>", text)
    if found is None:
        raise SystemExit("the virtual.xml has no <shaping> to change")
    kept = re.sub(r'\s(latency|jitter|loss)="[^"]*"', "", found[1]).rstrip()
    latency = f' latency="{latency_ms:g}ms"' if latency_ms else ""  # 0: none declared
    shaping = f"<shaping{kept}{latency}/>"
    return text[: found.start()] + shaping + text[found.end() :]


def measure(real: str, virtual: str, rounds: int) -> list[dict[str, Any]]:
    """``rounds`` single tries of the first pair between two guest hosts."""
    subject = load_subjects([(real, virtual)])[0]
    view = subject.view
    guest_by_name = subject.deployment.infrastructure.guest_by_name
    placement = Placement.of([view], guest_by_name)
    namespaces = {n.namespace for n in view.nodes.values()}
    out = []
    guests = Guests()
    try:
        for _ in range(rounds):
            plans, _ = connectivity.plan_latency(
                [view],
                sample=None,
                jobs=1,
                with_loss=False,
                keys=Keys(),
                sources=namespaces,
                guest_hosts=placement.guests,
            )
            plan = next(p for p in plans if p.own_keys and p.placement == "remote")
            pings = GuestPings(
                guests,
                placement,
                guest_by_name,
                frozenset(n.address for n in view.nics),
                GUEST_PROBE_TIMEOUT_S,
                attempts=1,
            )
            result = ScanResult(pings.run([plan]), {}, {})
            want = declared(view, plan.expectation)
            rtts = [r.rtt_ms for k in plan.keys if (r := result.ip[k]).rtt_ms is not None]
            own = [r.rtt_ms for k in plan.own_keys if (r := result.ip[k]).rtt_ms is not None]
            estimate = connectivity.guest_estimate(rtts, own, want)
            out.append(
                {
                    "pair": f"{plan.src.name} -> {plan.dst.label()}",
                    "declared_ms": want.rtt_ms,
                    "error_ms": None if estimate.rtt_ms is None else estimate.rtt_ms - want.rtt_ms,
                    "p10_ms": estimate.quantile_ms,
                    "own_p10_ms": estimate.own_ms,
                    "median_ms": statistics.median(rtts) if rtts else None,
                    "cpu_pressure": plan.pressure,
                }
            )
    finally:
        guests.close()
    return out


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{min(values):+.2f} / {statistics.median(values):+.2f} / {max(values):+.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/guestlatency.py")
    parser.add_argument("real")
    parser.add_argument("virtual")
    parser.add_argument("--latencies", default="1,5,20,100,500")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    text = Path(args.virtual).read_text()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        latencies: list[float | None] = [float(x) for x in args.latencies.split(",") if x]
        for latency in latencies or [None]:
            virtual = args.virtual
            if latency is not None:
                copy = Path(tmp) / "virtual.xml"
                copy.write_text(_with_latency(text, latency))
                virtual = str(copy)
                if cli(["apply", args.real, virtual]) != 0:
                    return 1
            for row in measure(args.real, virtual, args.rounds):
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    if latencies and cli(["apply", args.real, args.virtual]) != 0:
        return 1
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print("| RTT declared | tries | error min / median / max | CPU pressure |")
    print("|---|---|---|---|")
    for rtt in sorted({r["declared_ms"] for r in rows}):
        mine = [r for r in rows if r["declared_ms"] == rtt]
        errors = [r["error_ms"] for r in mine if r["error_ms"] is not None]
        pressure = [r["cpu_pressure"] for r in mine if r["cpu_pressure"] is not None]
        busy = f"{min(pressure):.0%}-{max(pressure):.0%}" if pressure else "-"
        print(f"| {rtt:g} ms | {len(mine)} | {_spread(errors)} | {busy} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
