"""``netmanager hosts status|stop``: the guest hosts (QEMU guests) netmanager booted."""

from __future__ import annotations

import argparse
import time
from typing import Any

from netmanager.cli.commands.common import add_json
from netmanager.errors import ExitCode
from netmanager.output import print_json, table


def register(sub: Any) -> None:
    hosts = sub.add_parser(
        "hosts",
        help='list or stop the guest hosts (QEMU guests of hypervisor="guest")',
        description="The guests apply booted, one per host of real.xml with "
        "hypervisor=\"guest\": 'status' lists them with their agent's health (an SNMPv3 GET "
        "through the forwarded loopback port), 'stop' powers them off and returns when their "
        "QEMU processes have exited (ended by their PIDs if a guest does not go). A stopped guest loses its kernel state: the next apply "
        "boots and configures it again.",
    )
    verbs = hosts.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    status = verbs.add_parser("status", help="host, QEMU pid, agent port, kernel and health")
    add_json(status)
    status.set_defaults(run=run_status)
    stop = verbs.add_parser("stop", help="power off the guests (all, or those of some hosts)")
    stop.add_argument("hosts", nargs="*", metavar="HOST")
    add_json(stop)
    stop.set_defaults(run=run_stop)


def run_status(args: argparse.Namespace) -> int:
    from netmanager.agentctl.processes import agent_health
    from netmanager.guests import hosts

    found = hosts.guests()
    health = agent_health(hosts.running())
    documents = [
        {**g.as_json(), "health": health.get(h, ""), "up_s": round(time.time() - g.started, 1)}
        for h, g in sorted(found.items())
    ]
    if args.json:
        print_json(documents)
        return ExitCode.OK
    if not documents:
        print("no guest host is running")
        return ExitCode.OK
    rows = [["host", "agent", "pid", "kernel", "memory", "health"]] + [
        [
            d["host"],
            d["agent"],
            str(d["pid"]),
            d["kernel"],
            f"{d['memory_mib']}MiB",
            d["health"],
        ]
        for d in documents
    ]
    print("\n".join(table(rows, right={2, 4})))
    unhealthy = [d for d in documents if d["health"] != "ok"]
    return ExitCode.ENVIRONMENT if unhealthy else ExitCode.OK


def run_stop(args: argparse.Namespace) -> int:
    from netmanager.guests import hosts

    stopped = hosts.stop_guests(args.hosts or None)
    if args.json:
        print_json({"stopped": stopped})
    else:
        for host in stopped:
            print(f"stopped guest host {host}")
        if not stopped:
            print("no guest host was running")
    return ExitCode.OK
