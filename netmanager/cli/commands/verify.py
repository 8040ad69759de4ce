"""``netmanager verify``: measure an applied topology against its virtual.xml."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netmanager.errors import ExitCode
from netmanager.output import Progress, print_json, progress_wanted

if TYPE_CHECKING:
    from netmanager.verify.run import Progress as StageProgress

KIND_NAMES = ("reachability", "isolation", "path", "latency", "loss", "bandwidth", "state")


def register(sub: Any) -> None:
    verify = sub.add_parser(
        "verify",
        help="measure the built network against virtual.xml (exit 5 when a check fails)",
        description="Measure an applied topology in levels like Emulab's linktest: "
        "1 reachability (ping), 2 isolation (ICMP, TCP, UDP and ARP probes, and a capture "
        "in every VM), 3 paths (traceroute hops against the declared gateways), 4 latency "
        "(RTT against the declared latency of both directions), 5 loss (binomial bound), "
        "6 bandwidth (iperf3 TCP and UDP, both directions, within 2%% of the declared "
        "rate), 7 state (shaping and rules in the kernel against the plan). Give several "
        "VIRTUAL files to verify topologies together and scan for leaks between them. "
        "Exit 0 when every check passes, 5 when any fails.",
    )
    verify.add_argument("real", metavar="REAL", help="the physical environment (real.xml)")
    verify.add_argument(
        "virtual", metavar="VIRTUAL", nargs="+", help="the virtual topology (virtual.xml)"
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument(
        "--out", metavar="DIR", help="write report.json, checks.csv and PNG figures there"
    )
    verify.add_argument(
        "--level",
        type=int,
        default=len(KIND_NAMES),
        choices=range(1, len(KIND_NAMES) + 1),
        metavar="N",
        help="run levels 1..N (default 7: everything)",
    )
    verify.add_argument(
        "--only",
        metavar="KIND[,KIND]",
        help="run only these kinds: " + ", ".join(KIND_NAMES),
    )
    verify.add_argument(
        "--sample",
        type=int,
        metavar="K",
        help="at most K destinations per VM and kind, K pairs per network",
    )
    verify.add_argument(
        "--jobs", type=int, default=4, metavar="N", help="probes at once (default 4)"
    )
    verify.add_argument(
        "--budget",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time budget of each check (default 60)",
    )
    verify.add_argument("--no-udp", action="store_true", help="measure bandwidth with TCP only")
    verify.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    verify.add_argument(
        "--all", action="store_true", help="list every check, not only measurements and failures"
    )
    verify.set_defaults(run=run_verify)


def _stages(bar: Progress) -> StageProgress:
    """verify's progress callback (stage, done, total) drawn as one bar per stage."""

    def seen(stage: str, done: int, total: int) -> None:
        if stage != bar.name:
            bar.stage(stage)
        bar.count(done, total)

    return seen


def run_verify(args: argparse.Namespace) -> int:
    from netmanager.verify.report import Kind
    from netmanager.verify.run import verify

    only = None
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in KIND_NAMES]
        if unknown:
            print(
                f"netmanager verify: unknown kind {', '.join(unknown)}; "
                f"choose from {', '.join(KIND_NAMES)}",
                file=sys.stderr,
            )
            return ExitCode.USAGE
        only = [Kind(n) for n in names]
    if args.sample is not None and args.sample < 1:
        print("netmanager verify: --sample must be at least 1", file=sys.stderr)
        return ExitCode.USAGE
    progress = Progress(progress_wanted(False))
    targets = [(args.real, virtual) for virtual in args.virtual]
    try:
        report = verify(
            targets if len(targets) > 1 else targets[0],
            level=args.level,
            only=only,
            sample=args.sample,
            jobs=max(1, args.jobs),
            budget_s=args.budget,
            udp=not args.no_udp,
            seed=args.seed,
            progress=_stages(progress),
        )
    finally:
        progress.finish()
    if args.out:
        from netmanager.verify.plots import available

        written = report.write(Path(args.out))
        if not available():
            print(
                "netmanager verify: matplotlib is not installed: no figures "
                "(pip install matplotlib)",
                file=sys.stderr,
            )
        print(
            "wrote " + ", ".join(str(p) for p in written),
            file=sys.stderr if args.json else sys.stdout,
        )
    if args.json:
        print_json(report.as_json())
    else:
        print(report.table(everything=args.all))
    return ExitCode.OK if report.passed else ExitCode.VERIFY_FAILED
