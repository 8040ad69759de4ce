#!/usr/bin/env python3
"""Benchmark (not a test): migrations of a running VM between hosts emulated here.

examples/two-hosts applied through the hosts' agents (as users run it); an iperf3 TCP flow
from vm2 to vm1 at 4 Mbit/s runs the whole time, paced by the socket (``--fq-rate``: iperf3's
``-b`` sends bursts that fill the 10 Mbit/s port's 50 ms queue, which alone held the probe's
echoes some 57 ms, with no migration at all); vm1 migrates 20 times, host1 -> host2 and back, each
migration measured as ``netmanager migrate --measure`` does (a UDP stream at 2 Mbit/s and
a 100 Hz echo from vm2 to vm1: the network downtime is the longest gap in what arrives;
the pre-copy model is off — its downtime 0, no stream of its own —, so that what is
measured is the switch-over itself), and after each one ``verify``
(reachability, isolation, state) must pass.  At the end the TCP flow must have survived
every move.

Last line: ``downtime_ms: <median network downtime> p95_ms: <p95> verify_failures:
<runs whose verify failed> tcp: <survived|broken>``; goals: median <= 50 ms, p95 <= 100 ms
(anchors: QEMU's default maximum downtime 300 ms; an OVN live migration loses 5-10 pings
at 0.2 s; ovn-kubernetes under 0.5 s), no verify failure.  Root only; its own namespace
prefix and state directory, removed at the end.

    .venv/bin/python bench/migrate.py
    .venv/bin/python bench/migrate.py --runs 4
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dynamics import fresh

from netmanager.apply import topology
from netmanager.apply.prepare import prepare
from netmanager.verify import outage
from netmanager.verify.migration import measure
from netmanager.verify.run import verify

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
REAL = EXAMPLES / "two-hosts" / "real.xml"
VIRTUAL = EXAMPLES / "two-hosts" / "virtual.xml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="migrations (default 20)")
    args = parser.parse_args()
    iperf3 = shutil.which("iperf3")
    if iperf3 is None:
        print("iperf3 is not installed (scripts/install --dev)", file=sys.stderr)
        return 1
    with fresh() as tmp:
        topology.apply(prepare(REAL, VIRTUAL))
        from netmanager.apply.records import records

        record = records()["two-hosts"]
        spaces = {v.vm: v.namespace for c in record.hosts.values() for v in c.vms}
        server = subprocess.Popen(
            ["ip", "netns", "exec", spaces["vm1"], iperf3, "-s", "-1", "-B", "10.20.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        duration = 3 + args.runs * 4
        client = subprocess.Popen(
            [
                *("ip", "netns", "exec", spaces["vm2"], iperf3, "-c", "10.20.0.1"),
                *("-t", str(duration), "--fq-rate", "4M", "-B", "10.20.0.2"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        failures = 0

        def checked(run: outage.OutageRun, moved: object) -> None:
            nonlocal failures
            report = verify((str(REAL), str(VIRTUAL)), only=("reachability", "isolation", "state"))
            failed = [c for c in report.checks if not c.passed]
            failures += bool(failed)
            print(
                f"  run {run.run:2d}: downtime {run.downtime_s * 1000:6.1f} ms, "
                f"lost {run.lost:3d}/{run.sent}, verify {'ok' if not failed else failed[0]}",
                flush=True,
            )

        try:
            session = measure(
                REAL,
                VIRTUAL,
                "vm1",
                "host2",
                rate_bps=2e6,
                repeat=args.runs,
                interval_s=0.5,
                out=tmp / "session",
                on_run=checked,
                precopy=None,
            )
            client.wait(timeout=duration + 30)
            survived = client.returncode == 0
        finally:
            for proc in (client, server):
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
        downtimes = sorted(r.downtime_s * 1000 for r in session.runs)
        p95 = downtimes[min(len(downtimes) - 1, round(0.95 * (len(downtimes) - 1)))]
        print(
            f"downtime_ms: {statistics.median(downtimes):.1f} p95_ms: {p95:.1f} "
            f"verify_failures: {failures} tcp: {'survived' if survived else 'broken'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
