"""``netmanager status`` and ``netmanager exec``: look at an applied topology, act inside a VM."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from netmanager import programs
from netmanager.cli.commands.common import add_json
from netmanager.errors import ExitCode
from netmanager.output import print_json


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
    status.add_argument(
        "--watch",
        action="store_true",
        help="redraw every port's state and current rates until Ctrl-C (with --json: one "
        "JSON line per sample)",
    )
    status.add_argument(
        "--interval",
        type=_positive_seconds,
        metavar="S",
        help="--watch: seconds between two samples (default 1)",
    )
    status.add_argument(
        "--count", type=_positive_int, metavar="N", help="--watch: stop after N samples"
    )
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


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text} s: give 0.05 to 3600 seconds")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: give 1 or more")
    return value


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
    guest = {
        "answering": ", no guest agent: the guest answers ARP for its address",
        "silent": ", no guest agent: the guest does NOT answer ARP for its address "
        "(it must carry it itself)",
    }.get(str(link.get("guest_address")), "")
    overrides = link.get("overrides") or []
    kept = f", set at run time: {' '.join(overrides)}" if overrides else ""
    return f" (agent: {link['oper']}{rate}{kept}{guest})"


def run_status(args: argparse.Namespace) -> int:
    from netmanager.inputs.loader import load

    if not args.watch and (args.interval is not None or args.count is not None):
        print("netmanager status: --interval and --count go with --watch", file=sys.stderr)
        return ExitCode.USAGE
    topology = args.topology
    if topology is None and args.real and args.virtual:
        topology = load(args.real, args.virtual).topology
    if args.watch:
        return _watch(topology, args)
    from netmanager.apply import readback

    documents = readback.status(topology)
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


#: clear the screen and go home (ANSI), before each frame on a terminal
CLEAR = "\x1b[H\x1b[2J"


def _watch(topology: str | None, args: argparse.Namespace) -> int:
    """Sample after sample until Ctrl-C (exit 0) or --count: redrawn in place on a
    terminal, successive tables otherwise, one JSON line each with --json."""
    import json

    from netmanager.cli import watch

    interval = args.interval if args.interval is not None else 1.0
    redraw = sys.stdout.isatty() and not args.json
    title = f"netmanager status --watch{' ' + topology if topology else ''}"
    try:
        with watch.Watcher(topology, interval_s=interval) as watcher:
            for sample in watch.samples(watcher, args.count, interval):
                if args.json:
                    if sample.number:
                        print(json.dumps(watch.sample_json(sample)), flush=True)
                elif redraw:
                    sys.stdout.write(CLEAR + watch.sample_table(sample, title) + "\n")
                    if not sample.number:
                        sys.stdout.write("(rates from the next sample on; Ctrl-C to stop)\n")
                    sys.stdout.flush()
                elif sample.number:
                    print(("\n" if sample.number > 1 else "") + watch.sample_table(sample, title))
                    sys.stdout.flush()
    except KeyboardInterrupt:
        return ExitCode.OK
    except BrokenPipeError:  # | head: the reader has seen enough
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    return ExitCode.OK


def run_exec(args: argparse.Namespace) -> int:
    from netmanager.apply.readback import vm_location

    command = [*args.command, *args.trailing]
    if not command:
        print("netmanager exec: give a command after --", file=sys.stderr)
        return ExitCode.USAGE
    from netmanager.apply.readback import vm_domain

    domain = vm_domain(args.vm, args.topology)
    if domain is not None:
        return _exec_in_domain(*domain, command)
    namespace, guest_host = vm_location(args.vm, args.topology)
    if guest_host is not None:
        return _exec_in_guest(guest_host, namespace, command)
    nsenter = programs.path("nsenter")
    try:
        return subprocess.run(
            [nsenter, f"--net=/run/netns/{namespace}", *command], check=False
        ).returncode
    except KeyboardInterrupt:
        return 130


GUEST_EXEC_TIMEOUT_S = 3600.0


def _exec_in_domain(host: str, domain: str, command: list[str]) -> int:
    """A VM that is a libvirt domain: the command runs in its guest through its
    qemu-guest-agent (guest-exec); its output is printed when it ends."""
    from netmanager.apply.readback import domain_agent
    from netmanager.errors import Loc, single
    from netmanager.hypervisor.keeper import KeeperError

    agent = domain_agent(host)
    try:
        code, out, err = agent.guest_exec(domain, command, timeout_s=GUEST_EXEC_TIMEOUT_S)
    except KeeperError as exc:
        raise single(
            "E747",
            Loc("netmanager"),
            f"domain '{domain}' on host '{host}': {exc}",
            "the guest must run qemu-guest-agent (virsh qemu-agent-command DOMAIN "
            '\'{"execute":"guest-ping"}\' tells)',
            "exec",
        ) from exc
    finally:
        close = getattr(agent, "close", None)
        if close is not None:
            close()
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    sys.stderr.buffer.write(err)
    sys.stderr.flush()
    return code


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
