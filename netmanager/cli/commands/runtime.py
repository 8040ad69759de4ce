"""``netmanager set``: change running links at once (netmanager.apply.runtime);
``netmanager migrate``: move a running VM to another host (netmanager.apply.migrate)."""

from __future__ import annotations

import argparse
import sys

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
        "it. The rate holds both ways; delay, jitter and loss are NetEm's towards the VM "
        "(the delay added at the port) and need a kernel with NetEm.",
    )
    p.add_argument("real", metavar="REAL", help="real.xml of the applied topology")
    p.add_argument("virtual", metavar="VIRTUAL", help="its virtual.xml")
    p.add_argument("target", metavar="TARGET", help="NETWORK, VM:NETWORK, VM or VM1~VM2")
    p.add_argument("--bandwidth", metavar="RATE", help="e.g. 20Mbit; 0 for no limit")
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
    )
    if change.empty:
        return _usage("give --bandwidth, --latency, --jitter, --loss, --up or --down")
    if change.rate_bps is not None and change.rate_bps % 1000:
        return _usage(f"--bandwidth {args.bandwidth}: a whole number of kbit/s, please")
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
    add_json(p)
    p.set_defaults(run=run_migrate)


def run_migrate(args: argparse.Namespace) -> int:
    from netmanager.apply.migrate import migrate
    from netmanager.output import Progress, progress_wanted

    progress = Progress(progress_wanted(args.json))
    try:
        outcome = migrate(args.real, args.virtual, args.vm, args.to, progress=progress.stage)
    finally:
        progress.finish()
    if args.json:
        print_json(outcome.as_json())
        return ExitCode.OK
    print(
        f"topology '{outcome.topology}': {outcome.vm} moved from {outcome.source} to "
        f"{outcome.target} in {outcome.seconds:.2f}s (target prepared at "
        f"{outcome.prepared_s:.2f}s, network followed at {outcome.switched_s:.2f}s)"
    )
    return ExitCode.OK
