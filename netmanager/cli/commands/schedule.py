"""``netmanager schedule start|status|stop``: a topology's <schedule>, played by its hosts'
agents (netmanager.apply.schedule)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from netmanager.cli.commands.common import add_json
from netmanager.compile.schedule import Move
from netmanager.errors import ExitCode
from netmanager.output import print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "schedule",
        help="start, watch or stop the <schedule> of an applied topology",
        description="The timed changes of virtual.xml's <schedule> are played by the hosts' "
        "agents from their own clocks: start loads each host's share and tells every agent "
        "the delay until one common start; status shows what ran and what comes next; "
        "stop ends it. Each change is a runtime change (see netmanager set), logged by its "
        "host with its actual time (CSV).",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, helptext in (
        ("start", "load and start the schedule"),
        ("status", "what each host played, and what comes next"),
        ("stop", "play no further step"),
    ):
        a = actions.add_parser(name, help=helptext)
        a.add_argument("real", metavar="REAL", help="real.xml of the applied topology")
        a.add_argument("virtual", metavar="VIRTUAL", help="its virtual.xml, with <schedule>")
        if name == "start":
            a.add_argument(
                "--in",
                dest="lead",
                type=float,
                default=1.0,
                metavar="SECONDS",
                help="the schedule's time 0 this long from now (default 1)",
            )
        add_json(a)
        a.set_defaults(run=run_schedule)


RECENT = 5


def moves_starter(
    real: str, virtual: str, topology: str, counted: list[int]
) -> Callable[[tuple[Move, ...], float], None]:
    """What starts a schedule's migrations from this machine (the driver of
    :mod:`netmanager.verify.moveplan`); ``counted`` gets how many."""

    def starter(moves: tuple[Move, ...], delay_s: float) -> None:
        from netmanager.verify import moveplan

        moveplan.start(real, virtual, topology, moves, delay_s)
        counted.append(len(moves))

    return starter


def run_schedule(args: argparse.Namespace) -> int:
    from netmanager.apply import schedule
    from netmanager.inputs.loader import load

    model = load(args.real, args.virtual)
    virtual = model.virtual
    if args.action == "start":
        moved: list[int] = []
        counts = schedule.start(
            virtual,
            lead_s=args.lead,
            real=model.real,
            moves=moves_starter(args.real, args.virtual, virtual.topology, moved),
        )
        if args.json:
            print_json(
                {
                    "topology": virtual.topology,
                    "steps": counts,
                    "moves": sum(moved),
                    "in_s": args.lead,
                }
            )
        else:
            share = ", ".join(f"{n} on {h}" for h, n in counts.items()) or "no"
            more = f", {sum(moved)} migration(s) run by this machine" if moved else ""
            print(
                f"schedule of '{virtual.topology}' starts in {args.lead:g} s: {share} step(s){more}"
            )
        return ExitCode.OK
    if args.action == "stop":
        hosts = schedule.stop(virtual.topology)
        if args.json:
            print_json({"topology": virtual.topology, "stopped": hosts})
        else:
            print(f"schedule of '{virtual.topology}' stopped on {', '.join(hosts)}")
        return ExitCode.OK
    found = schedule.status(virtual.topology)
    moves = schedule.moves_status(virtual.topology)
    if args.json:
        document: dict[str, Any] = {
            "topology": virtual.topology,
            "hosts": [h.as_json() for h in found],
        }
        if moves is not None:
            document["migrations"] = moves.as_json()
        print_json(document)
        return ExitCode.OK
    if moves is not None:
        nxt = (
            f", next at {moves.next['at_us'] / 1e6:g} s: {moves.next['vm']} to {moves.next['to']}"
            if moves.next
            else ""
        )
        print(
            f"migrations: {moves.state}, {len(moves.rows)}/{moves.planned} done{nxt}; "
            f"log {moves.directory}/moves.csv"
        )
        for row in moves.rows[-RECENT:]:
            down = f", downtime {row['downtime_ms']} ms" if row["downtime_ms"] else ""
            print(
                f"  {float(row['schedule_s']):8.3f} s  {float(row['late_ms']):+6.1f} ms  "
                f"{row['vm']} {row['from']} -> {row['to']} in {row['seconds']} s{down}  "
                f"({row['source']}) {row['result']}"
            )
    for h in found:
        nxt = f"next at {h.next_ms / 1000:g} s" if h.next_ms >= 0 else "nothing left"
        print(
            f"{h.host}: {h.state}, {h.done}/{h.steps} step(s) at {h.elapsed_ms / 1000:.1f} s, "
            f"{nxt}, latest {h.late_max_ms:.1f} ms late"
            + (f", error: {h.last_error}" if h.last_error else "")
            + (f"; log {h.log}" if h.log else "")
        )
        for row in h.recent:
            print(
                f"  {float(row['schedule_ms']) / 1000:8.3f} s  {float(row['late_ms']):+6.1f} ms  "
                f"{row['vm']}:{row['network']}  {row['values']}  ({row['source']}) {row['result']}"
            )
    return ExitCode.OK
