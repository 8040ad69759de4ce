"""``netmanager set``: change running links at once (netmanager.apply.runtime);
``netmanager migrate``: move a running VM to another host (netmanager.apply.migrate)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from netmanager.cli.commands.common import add_json
from netmanager.errors import ExitCode
from netmanager.output import print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "set",
        help="change a running link at once: rate, NetEm delay/jitter/loss, down or up",
        description="Change the links of TARGET in an applied topology at once, in place "
        "(the qdiscs keep their handles, nothing queued is dropped), without planning the "
        "topology. TARGET is a network (every interface in it), VM:NETWORK, a VM with "
        "one interface, or a <link> pair VM1~VM2. Each host keeps the change as an override of the topology: a "
        "re-apply keeps it unless virtual.xml changed that value since; destroy forgets "
        "it. The rate holds both ways (unless --bandwidth-from-vm sets what the VM sends apart); delay, jitter and loss are NetEm's towards the VM "
        "(the delay added at the port) and need a kernel with NetEm.",
    )
    p.add_argument("real", metavar="REAL", help="real.xml of the applied topology")
    p.add_argument("virtual", metavar="VIRTUAL", help="its virtual.xml")
    p.add_argument("target", metavar="TARGET", help="NETWORK, VM:NETWORK, VM or VM1~VM2")
    p.add_argument("--bandwidth", metavar="RATE", help="e.g. 20Mbit; 0 for no limit")
    p.add_argument(
        "--bandwidth-from-vm",
        metavar="RATE",
        help="the rate of what the VM sends, apart (then --bandwidth is the rate towards it)",
    )
    p.add_argument("--latency", metavar="TIME", help="NetEm delay at the port, e.g. 30ms")
    p.add_argument("--jitter", metavar="TIME", help="NetEm jitter, e.g. 5ms")
    p.add_argument("--loss", metavar="PERCENT", help="NetEm loss, e.g. 0.5%%")
    state = p.add_mutually_exclusive_group()
    state.add_argument(
        "--down", action="store_true", help="take the port down (the VM loses its carrier)"
    )
    state.add_argument("--up", action="store_true", help="bring the port up again")
    add_json(p)
    p.set_defaults(run=run_set)
    register_migrate(sub)


def _value(parse: object, text: str | None, option: str) -> int | None:
    from netmanager.inputs.units import UnitError

    if text is None:
        return None
    if text.strip() in ("0", "0%"):
        return 0
    try:
        return int(parse(text))  # type: ignore[operator]
    except UnitError as exc:
        raise SystemExit(_usage(f"{option} {text}: {exc}")) from exc


def _usage(message: str) -> int:
    print(f"netmanager set: {message}", file=sys.stderr)
    return int(ExitCode.USAGE)


def run_set(args: argparse.Namespace) -> int:
    from netmanager.apply.runtime import LinkChange, set_links
    from netmanager.inputs.units import parse_percent, parse_rate, parse_time
    from netmanager.inputs.xmlsource import topology_name

    change = LinkChange(
        rate_bps=_value(parse_rate, args.bandwidth, "--bandwidth"),
        delay_us=_value(parse_time, args.latency, "--latency"),
        jitter_us=_value(parse_time, args.jitter, "--jitter"),
        loss_ppm=_value(parse_percent, args.loss, "--loss"),
        up=True if args.up else (False if args.down else None),
        rate_in_bps=_value(parse_rate, args.bandwidth_from_vm, "--bandwidth-from-vm"),
    )
    if change.empty:
        return _usage(
            "give --bandwidth, --bandwidth-from-vm, --latency, --jitter, --loss, --up or --down"
        )
    if change.rate_bps is not None and change.rate_bps % 1000:
        return _usage(f"--bandwidth {args.bandwidth}: a whole number of kbit/s, please")
    if change.rate_in_bps is not None and change.rate_in_bps % 1000:
        return _usage(
            f"--bandwidth-from-vm {args.bandwidth_from_vm}: a whole number of kbit/s, please"
        )
    outcome = set_links(topology_name(args.virtual), args.target, change)
    if args.json:
        print_json(outcome.as_json())
        return ExitCode.OK
    ports = ", ".join(
        f"{vm}:{net}{f' (pair with {peer})' if peer else ''} on {host}"
        for host, vm, net, peer in outcome.ports
    )
    print(
        f"topology '{outcome.topology}': {args.target} changed ({ports}) in {outcome.seconds * 1000:.0f} ms"
    )
    return ExitCode.OK


def register_migrate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "migrate",
        help="move a running VM to another host; its network follows it",
        description="Move running VM of an applied topology to host HOST. Between hosts "
        "emulated here, the VM's namespace keeps running (its processes and connections "
        "survive): the target is prepared first (the VM's networks, segment, rules), the "
        "host ends of the VM's ports move into it, then every host follows (the ports "
        "wired and shaped on the target, forwarding elsewhere, the source cleaned). The "
        "record follows the VM: plan afterwards shows no change. What the target lacks is "
        "refused before any change.",
    )
    p.add_argument("real", metavar="REAL", help="real.xml of the applied topology")
    p.add_argument("virtual", metavar="VIRTUAL", help="its virtual.xml")
    p.add_argument("vm", metavar="VM", help="the VM to move")
    p.add_argument("--to", required=True, metavar="HOST", help="the host of real.xml it goes to")
    c = p.add_argument_group(
        "the migration's cost, emulated from a pre-copy model (memory rounds across the "
        "underlay, then a stop-and-copy pause; Clark et al. 2005, Akoush et al. 2010)"
    )
    c.add_argument(
        "--no-precopy", action="store_true", help="no stream, no modelled pause: the move alone"
    )
    c.add_argument(
        "--dirty-rate",
        default="0",
        metavar="RATE",
        help="how fast the guest dirties its memory, e.g. 20MB/s (default 0: an idle guest)",
    )
    c.add_argument(
        "--migration-bandwidth",
        default=None,
        metavar="RATE",
        help="the stream's rate cap (default QEMU's 128 MiB/s; the underlay's capacity caps it too)",
    )
    c.add_argument(
        "--max-downtime",
        default="300ms",
        metavar="TIME",
        help="the pause allowed before the stop-and-copy (QEMU's downtime-limit, 300ms)",
    )
    m = p.add_argument_group(
        "measurement (as Themis): a UDP stream and a 100 Hz echo from a peer VM through "
        "each migration; downtime, loss, jitter, throughput over time; a CSV and a figure "
        "per run, a summary"
    )
    m.add_argument("--measure", action="store_true", help="measure each migration")
    m.add_argument("--rate", default="2Mbit", metavar="RATE", help="the stream's rate (2Mbit)")
    m.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="N migrations, back and forth"
    )
    m.add_argument("--interval", type=float, default=1.0, metavar="S", help="seconds between runs")
    m.add_argument("--out", type=Path, default=None, metavar="DIR", help="the session's files")
    m.add_argument("--peer", default=None, metavar="VM", help="the VM the stream comes from")
    add_json(p)
    p.set_defaults(run=run_migrate)


def run_migrate(args: argparse.Namespace) -> int:
    from netmanager.apply.migrate import migrate
    from netmanager.output import Progress, progress_wanted

    measured = ("--rate", "--repeat", "--interval", "--out", "--peer")
    given = [o for o in measured if getattr(args, o[2:]) != _DEFAULTS[o]]
    if given and not args.measure:
        return _usage(f"{given[0]} goes with --measure")
    precopy = _precopy(args)
    if isinstance(precopy, int):
        return precopy
    progress = Progress(progress_wanted(args.json))
    if args.measure:
        return _measure(args, progress, precopy)
    try:
        outcome = migrate(
            args.real, args.virtual, args.vm, args.to, progress=progress.stage, precopy=precopy
        )
    finally:
        progress.finish()
    if args.json:
        print_json(outcome.as_json())
        return ExitCode.OK
    print(
        f"topology '{outcome.topology}': {outcome.vm} moved from {outcome.source} to "
        f"{outcome.target} in {outcome.seconds:.2f}s (target prepared at "
        f"{outcome.prepared_s:.2f}s, its ports wired there at {outcome.switched_s:.2f}s)"
    )
    if outcome.libvirt_s is not None:
        print(f"libvirt migrated the domain live in {outcome.libvirt_s:.2f}s")
    plan = outcome.precopy
    if plan is not None:
        print(
            f"pre-copy emulated: {len(plan.rounds)} round(s), {plan.total_bytes / 2**20:.1f} "
            f"MiB across the underlay, modelled downtime {plan.downtime_s * 1000:.1f} ms"
            + ("" if plan.converged else " (did not converge: the rounds ran out)")
        )
    return ExitCode.OK


_DEFAULTS: dict[str, object] = {
    "--rate": "2Mbit",
    "--repeat": 1,
    "--interval": 1.0,
    "--out": None,
    "--peer": None,
}


def _precopy(args: argparse.Namespace) -> Any:
    """The pre-copy model's parameters of the command line, or an exit code."""
    from netmanager.apply.migrate import Precopy
    from netmanager.inputs.units import UnitError, parse_rate, parse_time

    if args.no_precopy:
        return None
    try:
        dirty = 0 if args.dirty_rate.strip() == "0" else parse_rate(args.dirty_rate) / 8
        cap = parse_rate(args.migration_bandwidth) if args.migration_bandwidth else None
        downtime = parse_time(args.max_downtime) / 1e6
    except UnitError as exc:
        return _usage(f"migrate: {exc}")
    return Precopy(dirty_bytes_per_s=dirty, bandwidth_bps=cap, max_downtime_s=downtime)


def _measure(args: argparse.Namespace, progress: Any, precopy: Any) -> int:
    from netmanager.inputs.units import UnitError, parse_rate
    from netmanager.verify.migration import measure

    try:
        rate = parse_rate(args.rate)
    except UnitError as exc:
        return _usage(f"--rate {args.rate}: {exc}")

    def said(run: Any, moved: Any) -> None:
        if not args.json:
            progress.finish()
            print(
                f"run {run.run}: {moved.vm} {moved.source} -> {moved.target}: downtime "
                f"{run.downtime_s * 1000:.1f} ms, {run.lost} of {run.sent} lost, migration "
                f"{moved.seconds:.2f}s"
            )

    try:
        session = measure(
            args.real,
            args.virtual,
            args.vm,
            args.to,
            peer=args.peer,
            rate_bps=rate,
            repeat=args.repeat,
            interval_s=args.interval,
            out=args.out,
            progress=progress.stage,
            on_run=said,
            precopy=precopy,
        )
    finally:
        progress.finish()
    if args.json:
        print_json(session.as_json())
        return ExitCode.OK
    print(session.summary.table(), end="")
    print(f"written to {session.directory}/ (runs.csv, summary.txt, run-N.csv, run-N.png)")
    return ExitCode.OK
