"""``netmanager status`` and ``netmanager exec``: look at an applied topology, act inside a VM."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from typing import Any

from netmanager.commands.common import add_json
from netmanager.errors import ExitCode
from netmanager.report import print_json


def register(sub: Any) -> None:
    status = sub.add_parser(
        "status",
        help="list applied topologies, their VMs, interfaces and link state",
        description="Read the applied topologies back from the kernel: VMs with their host, "
        "interfaces, addresses and link state.",
    )
    status.add_argument("real", metavar="REAL", nargs="?", help="real.xml (optional)")
    status.add_argument("virtual", metavar="VIRTUAL", nargs="?", help="virtual.xml (optional)")
    status.add_argument("--topology", help="only this topology")
    add_json(status)
    status.set_defaults(run=run_status)

    exec_ = sub.add_parser(
        "exec",
        help="run a command inside a VM (netmanager exec vm1 -- ping -c1 10.0.0.2)",
        description="Run a command inside a VM's network namespace and return its exit code.",
    )
    exec_.add_argument("vm", metavar="VM")
    exec_.add_argument("--topology", help="the VM's topology, where names repeat")
    exec_.add_argument("command", nargs="*", metavar="CMD", help="the command (after --)")
    exec_.set_defaults(run=run_exec)


def _link_text(interface: dict[str, Any]) -> str:
    """What the host's agent says of the port, when the topology went through agents."""
    if "link" not in interface:
        return ""
    link = interface["link"]
    if link is None:
        return " (agent: no answer)"
    if not link:
        return " (agent: no such link)"
    rate = f", {link['rate_kbps']}kbit/s" if link.get("rate_kbps") else ""
    return f" (agent: {link['oper']}{rate})"


def run_status(args: argparse.Namespace) -> int:
    from netmanager.loader import load

    topology = args.topology
    if topology is None and args.real and args.virtual:
        topology = load(args.real, args.virtual).topology
    from netmanager import remote

    documents = remote.status(topology)
    if args.json:
        print_json(documents[0] if topology is not None else documents)
        return ExitCode.OK
    if not documents:
        print("nothing is applied on this machine")
    for doc in documents:
        print(f"topology {doc['topology']} (applied {doc['applied']})")
        for vm in doc["vms"]:
            ifaces = ", ".join(
                f"{i['ifname']} {i['ip']} {i['network']} {i['state']}" + _link_text(i)
                for i in vm["interfaces"]
            )
            print(f"  {vm['name']:<16} {vm['host']:<10} {ifaces}")
    return ExitCode.OK


def run_exec(args: argparse.Namespace) -> int:
    from netmanager import deploy

    command = [*args.command, *args.trailing]
    if not command:
        print("netmanager exec: give a command after --", file=sys.stderr)
        return ExitCode.USAGE
    namespace, guest_host = deploy.vm_location(args.vm, args.topology)
    if guest_host is not None:
        return _exec_in_guest(guest_host, namespace, command)
    nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
    try:
        return subprocess.run(
            [nsenter, f"--net=/run/netns/{namespace}", *command], check=False
        ).returncode
    except KeyboardInterrupt:
        return 130


GUEST_EXEC_TIMEOUT_S = 3600.0


def _exec_in_guest(host: str, namespace: str, command: list[str]) -> int:
    """A VM on a guest host: the command runs in its namespace inside the guest, through
    the guest's control channel; its output is printed when it ends."""
    from netmanager.errors import Loc, single
    from netmanager.guests import hosts

    guest = hosts.guest_of(host)
    if guest is None:
        raise single(
            "E746",
            Loc("netmanager"),
            f"guest host '{host}' is not running",
            "netmanager apply boots it again (netmanager hosts status lists guests)",
            "exec",
        )
    try:
        done = guest.run(command, netns=namespace, timeout=GUEST_EXEC_TIMEOUT_S)
    finally:
        guest.disconnect()
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode
