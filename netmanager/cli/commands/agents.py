"""``netmanager agents status|stop``: the SNMP agents netmanager started for emulated hosts."""

from __future__ import annotations

import argparse
from typing import Any

from netmanager.cli.commands.common import add_json
from netmanager.errors import ExitCode
from netmanager.output import print_json, table


def register(sub: Any) -> None:
    agents = sub.add_parser(
        "agents",
        help="list or stop the SNMP agents of emulated hosts",
        description="The agents apply started, one per emulated host, on loopback: "
        "'status' lists them with a health check (an SNMPv3 GET), 'stop' ends them by PID.",
    )
    verbs = agents.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    status = verbs.add_parser("status", help="host, address, port, pid and health of each agent")
    add_json(status)
    status.set_defaults(run=run_status)
    stop = verbs.add_parser("stop", help="end the agents (all, or those of some hosts)")
    stop.add_argument("hosts", nargs="*", metavar="HOST")
    add_json(stop)
    stop.set_defaults(run=run_stop)


def run_status(args: argparse.Namespace) -> int:
    from netmanager.agentctl import processes as agent_procs

    found = agent_procs.running()
    health = agent_procs.agent_health(found)
    documents = [{**a.as_json(), "health": health.get(h, "")} for h, a in sorted(found.items())]
    if args.json:
        print_json(documents)
        return ExitCode.OK
    if not documents:
        print("no agent is running")
        return ExitCode.OK
    rows = [["host", "address", "pid", "health"]] + [
        [d["host"], f"{d['address']}:{d['port']}", str(d["pid"]), d["health"]] for d in documents
    ]
    print("\n".join(table(rows, right={2})))
    unhealthy = [d for d in documents if d["health"] != "ok"]
    return ExitCode.ENVIRONMENT if unhealthy else ExitCode.OK


def run_stop(args: argparse.Namespace) -> int:
    from netmanager.agentctl import processes as agent_procs

    stopped = agent_procs.stop_agents(args.hosts or None)
    if args.json:
        print_json([a.as_json() for a in stopped])
    else:
        for agent in stopped:
            print(f"stopped the agent of {agent.host} (pid {agent.pid})")
        if not stopped:
            print("no agent was running")
    return ExitCode.OK
