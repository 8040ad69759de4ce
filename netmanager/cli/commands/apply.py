"""``netmanager plan|apply|destroy``: build a topology on the hosts, and take it away."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from netmanager.cli.commands.common import add_inputs, add_json, print_warnings
from netmanager.errors import ExitCode, NetmanagerError
from netmanager.output import Progress, print_json, progress_wanted

if TYPE_CHECKING:
    from netmanager.apply.prepare import Deployment
    from netmanager.apply.readback import GuestDuty
    from netmanager.apply.runtime import KeptChange


def register(sub: Any) -> None:
    plan = sub.add_parser(
        "plan",
        help="show what apply would change, and why (changes nothing)",
        description="Compare the desired state with the kernel's and print + ~ - lines with "
        "their reasons and a summary. Exit 0; nothing is changed.",
    )
    add_inputs(plan)
    add_json(plan)
    _add_local(plan)
    plan.set_defaults(run=run_plan)

    apply = sub.add_parser(
        "apply",
        help="build the virtual network on the hosts",
        description="Map, compile and build the topology: namespaces, bridges, VXLAN, "
        "ports, shaping, routes and isolation rules. A second apply changes nothing; a "
        "failure undoes everything and exits 4.",
    )
    add_inputs(apply)
    add_json(apply)
    _add_local(apply)
    apply.add_argument(
        "--revert-timeout",
        type=int,
        default=None,
        metavar="SECONDS",
        help="through agents: a host reverts a commit not confirmed within this time (default 120)",
    )
    apply.add_argument(
        "--only",
        action="append",
        type=_port,
        metavar="VM:NETWORK",
        help="change only this VM port's shaping (repeatable): a transaction scoped to its "
        "links on its host, nothing else observed or changed; virtual.xml may differ from "
        "what was applied in those ports' shaping only",
    )
    apply.add_argument(
        "--reset",
        action="store_true",
        help="undo the topology's runtime changes (netmanager set, SNMP SETs) first: every "
        "port back to virtual.xml's values; without it an apply keeps them, except the "
        "values virtual.xml itself changed since",
    )
    apply.add_argument(
        "--start-schedule",
        action="store_true",
        help="then start virtual.xml's <schedule> (as netmanager schedule start)",
    )
    apply.add_argument("--fail-at", type=int, default=None, help=argparse.SUPPRESS)
    apply.set_defaults(run=run_apply)

    destroy = sub.add_parser(
        "destroy",
        help="remove everything netmanager built for a topology",
        description="Remove the topology's kernel objects and rules and release its segment "
        "ids; the last topology takes the emulated hosts and switches with it.",
    )
    destroy.add_argument(
        "real", metavar="REAL", nargs="?", help="real.xml (optional with --topology)"
    )
    destroy.add_argument("virtual", metavar="VIRTUAL", nargs="?", help="virtual.xml")
    destroy.add_argument("--topology", help="the topology's name, instead of the two files")
    add_json(destroy)
    destroy.set_defaults(run=run_destroy)


def _port(text: str) -> tuple[str, str]:
    vm, sep, network = text.partition(":")
    if not (vm and sep and network) or ":" in network:
        raise argparse.ArgumentTypeError(f"'{text}' is not VM:NETWORK")
    return vm, network


def _add_local(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--local",
        action="store_true",
        help="emulated hosts only: apply in this process with the kernel engine instead of "
        "through each host's SNMP agent",
    )


def _progress(args: argparse.Namespace) -> Progress:
    """Phase by phase on stderr, with a bar of the kernel steps done in the phase."""
    return Progress(progress_wanted(args.json))


def _phases(bar: Progress) -> Callable[[str], None]:
    return lambda phase: bar.stage(phase, "steps")


def run_plan(args: argparse.Namespace) -> int:
    from netmanager.apply.prepare import prepare

    deployment = prepare(args.real, args.virtual)
    from netmanager.apply import topology

    machine_plan = topology.plan(deployment, local=args.local)
    kept = _kept(deployment)
    if args.json:
        document = machine_plan.as_json()
        document["runtime_changes"] = [k.as_json() for k in kept]
        print_json(document)
        return ExitCode.OK
    print_warnings(deployment.warnings)
    for line in machine_plan.lines():
        print(line)
    for change in kept:  # not drift: what runtime changes set, and what apply does to them
        print(f"= {change.text()}")
    print(f"topology '{deployment.topology}': {machine_plan.summary()}")
    return ExitCode.OK


def run_apply(args: argparse.Namespace) -> int:
    from netmanager.apply.prepare import prepare

    deployment = prepare(args.real, args.virtual)
    if not args.json:
        print_warnings(deployment.warnings)
    reset: list[KeptChange] = []
    if args.reset:
        from netmanager.apply import runtime

        reset = runtime.reset(deployment.topology)
    progress = _progress(args)
    try:
        from netmanager.apply import commit, topology

        outcome = topology.apply(
            deployment,
            local=args.local or args.fail_at is not None,
            progress=_phases(progress),
            revert_s=args.revert_timeout or commit.REVERT_S,
            steps=progress.count,
            fail_at=args.fail_at,
            ports=args.only,
        )
    finally:
        progress.finish()
    duties = _guest_duties(deployment)
    kept = _kept(deployment, after=True)
    started: dict[str, int] = {}
    moved: list[int] = []
    if args.start_schedule:
        from netmanager.apply import schedule
        from netmanager.cli.commands.schedule import moves_starter

        model = deployment.model
        started = schedule.start(
            model.virtual,
            real=model.real,
            moves=moves_starter(args.real, args.virtual, model.topology, moved),
        )
    if args.json:
        document = outcome.as_json()
        if duties:
            document["guests_to_configure"] = [d.as_json() for d in duties]
        document["runtime_changes"] = {
            "reset": [k.as_json() for k in reset],
            "kept": [k.as_json() for k in kept],
        }
        if args.start_schedule:
            document["schedule"] = {"steps": started, "moves": sum(moved), "in_s": 1.0}
        print_json(document)
        return ExitCode.OK
    phases = ", ".join(f"{name} {count}" for name, count in outcome.phases.items())
    vms = sum(h["vms"] for h in outcome.hosts.values())
    print(
        f"topology '{outcome.topology}' applied: {outcome.changes} changes ({phases}) in "
        f"{outcome.seconds:.2f}s; {vms} VMs on {len(outcome.hosts)} hosts"
    )
    for duty in duties:
        print(f"{'note' if duty.carried else 'warning'}: {duty.text()}")
    for change in reset:
        print(f"reset: {change.vm}:{change.network} on {change.host}: {' '.join(change.values)}")
    for change in kept:
        print(f"note: {change.text()} (apply --reset undoes it)")
    if args.start_schedule:
        share = ", ".join(f"{n} on {h}" for h, n in started.items()) or "no"
        more = f", {sum(moved)} migration(s) run by this machine" if moved else ""
        print(f"schedule starts in 1 s: {share} step(s){more} (netmanager schedule status)")
    return ExitCode.OK


def _kept(deployment: Deployment, *, after: bool = False) -> list[KeptChange]:
    """The topology's runtime changes, and what the deployment does to them (``after``
    an apply: those still in force)."""
    from netmanager.apply import runtime
    from netmanager.host.runtime import ports_by_key

    new = None if after else ports_by_key(deployment.configs.values())
    return runtime.kept_changes(deployment.topology, new)


def _guest_duties(deployment: Deployment) -> list[GuestDuty]:
    """The guests of domain VMs netmanager cannot configure (no guest agent): what they
    must carry, checked by ARP on their hosts; [] when the hosts' agents cannot say."""
    from netmanager.apply import readback

    try:
        return readback.guest_duties(deployment)
    except NetmanagerError as exc:
        print(
            f"note: whether the guests of its domain VMs carry their addresses is not known: "
            f"{exc.diagnostics[0].message}",
            file=sys.stderr,
        )
        return []


def run_destroy(args: argparse.Namespace) -> int:
    from netmanager.inputs.loader import load

    if args.topology:
        topology = args.topology
    elif args.real and args.virtual:
        topology = load(args.real, args.virtual).topology
    else:
        print("netmanager destroy: give REAL VIRTUAL or --topology NAME", file=sys.stderr)
        return ExitCode.USAGE
    progress = _progress(args)
    try:
        from netmanager.apply import topology as topologies

        outcome = topologies.destroy(topology, progress=_phases(progress), steps=progress.count)
    finally:
        progress.finish()
    if args.json:
        print_json(outcome.as_json())
    else:
        off = outcome.phases.get("guests", 0)
        powered = f", {off} guest host(s) powered off" if off else ""
        print(
            f"topology '{topology}' destroyed: {outcome.changes} changes{powered} "
            f"in {outcome.seconds:.2f}s"
        )
    return ExitCode.OK
