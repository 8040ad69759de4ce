"""How exactly NetEm on a guest host (QEMU, TCG) delays: the table behind
:data:`netmanager.verify.connectivity.GUEST_LATENCY_ABS_MS` and ``GUEST_LATENCY_REL``.

``python -m netmanager.verify.guestlatency REAL VIRTUAL --latencies 1,5,20,100,500``
re-applies VIRTUAL (a topology with two VMs on guest hosts, already applied) with each
latency in turn (no jitter, no loss: copies in a temporary directory), sends ``--echoes``
echoes from the first VM to the second with verify's distributed scan, one every
``--interval`` seconds, and prints the error of each round trip against the declared one
(twice the one-way latency): median, 95th percentile and worst.  The topology is left
applied as VIRTUAL declares it.
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

from netmanager.cli import main as cli
from netmanager.verify.distributed import Guests, Placement, distributed_scan
from netmanager.verify.run import load_subjects
from netmanager.verify.scan import IpProbe


def _with_latency(text: str, latency_ms: float) -> str:
    shaping = f'<shaping bandwidth="10Mbit" latency="{latency_ms:g}ms"/>'
    return re.sub(r"<shaping[^>]*/>", shaping, text, count=1)


def measure(real: str, virtual: str, echoes: int, interval: float) -> dict[str, Any]:
    subject = load_subjects([(real, virtual)])[0]
    view = subject.view
    vms = sorted(view.vms, key=lambda n: n.name)
    src, dst = vms[0], vms[1]
    placement = Placement.of([view], subject.deployment.infrastructure.guest_by_name)
    probes = [
        IpProbe(
            i + 1,
            src.namespace,
            src.nics[0].address,
            dst.nics[0].address,
            "icmp",
            at=i * interval,
            retry=False,
        )
        for i in range(echoes)
    ]
    guests = Guests()
    try:
        result = distributed_scan(
            guests,
            placement,
            namespaces={src.namespace, dst.namespace},
            targets={n.address for n in view.nics},
            ip_probes=probes,
            arp_probes=[],
            capture=False,
            timeout_s=3.0,
            in_flight=256,
            budget_s=None,
        )
    finally:
        guests.close()
    rtts = [r.rtt_ms for r in result.ip.values() if r.answered and r.rtt_ms is not None]
    return {"rtts": rtts, "src_host": src.host, "dst_host": dst.host}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netmanager.verify.guestlatency")
    parser.add_argument("real")
    parser.add_argument("virtual")
    parser.add_argument("--latencies", default="1,5,20,100,500")
    parser.add_argument("--echoes", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    text = Path(args.virtual).read_text()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for latency in [float(x) for x in args.latencies.split(",")]:
            copy = Path(tmp) / "virtual.xml"
            copy.write_text(_with_latency(text, latency))
            if cli(["apply", args.real, str(copy)]) != 0:
                return 1
            got = measure(args.real, str(copy), args.echoes, args.interval)
            errors = sorted(r - 2 * latency for r in got["rtts"])
            row = {
                "latency_ms": latency,
                "rtt_ms": 2 * latency,
                "echoes": args.echoes,
                "answered": len(errors),
                "median_error_ms": statistics.median(errors) if errors else None,
                "p95_error_ms": errors[int(0.95 * (len(errors) - 1))] if errors else None,
                "worst_error_ms": max(errors, key=abs) if errors else None,
                "mean_error_ms": statistics.fmean(errors) if errors else None,
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    if cli(["apply", args.real, args.virtual]) != 0:
        return 1
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(
            "| latency (one way) | RTT declared | answered | median error | mean error "
            "| p95 error | worst error |"
        )
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['latency_ms']:g} ms | {r['rtt_ms']:g} ms | {r['answered']}/{r['echoes']} "
                f"| {r['median_error_ms']:+.3f} ms | {r['mean_error_ms']:+.3f} ms "
                f"| {r['p95_error_ms']:+.3f} ms | {r['worst_error_ms']:+.3f} ms |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
