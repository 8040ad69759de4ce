"""``netmanager capture``: record a VM port's traffic with tcpdump (see netmanager.apply.capture)."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from typing import IO, Any

from netmanager.errors import ExitCode, Loc, single


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "capture",
        help="record a VM port's traffic with tcpdump (netmanager capture vm1:lan -w vm1.pcap)",
        description="Record the traffic of a VM's interface with tcpdump, wherever the VM "
        "is (a namespace here, inside a guest host, a libvirt domain's tap): decoded lines "
        "on standard output, or with -w a pcap file (Wireshark reads it). Ctrl-C stops it "
        "(exit 0, the pcap complete). A pcap filter expression may follow --.",
    )
    parser.add_argument(
        "target",
        metavar="TARGET",
        help="VM:NETWORK (the VM's interface in that network), or VM when it has one",
    )
    parser.add_argument(
        "-w",
        dest="write",
        metavar="FILE",
        help="write the packets into this pcap file on this machine ('-': standard output)",
    )
    parser.add_argument(
        "--count", type=_positive_int, metavar="N", help="stop after N packets (tcpdump -c)"
    )
    parser.add_argument("--topology", help="the VM's topology, where names repeat")
    parser.add_argument(
        "--side",
        choices=("vm", "host"),
        default="vm",
        help="vm (default): the VM's own interface, what it sends and receives; host: the "
        "port's host end (the veth's other end, or a libvirt domain's tap)",
    )
    parser.add_argument(
        "expression",
        nargs="*",
        metavar="FILTER",
        help="a tcpdump filter expression (after --), e.g. -- icmp",
    )
    parser.set_defaults(run=run)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: give 1 or more")
    return value


def _note(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _line(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    from netmanager.apply import capture
    from netmanager.errors import NetmanagerError

    # Ctrl-C (SIGINT) is how a capture ends: also where this process was started with
    # SIGINT ignored (a job a non-interactive shell put in the background), which Python
    # would otherwise keep, leaving the capture no way to end but a kill
    signal.signal(signal.SIGINT, signal.default_int_handler)
    spot = capture.locate(args.target, args.side, args.topology)
    expression = [*args.expression, *getattr(args, "trailing", [])]
    pcap: IO[bytes] | None = None
    created = False
    try:
        if args.write == "-":
            pcap = sys.stdout.buffer
        elif args.write is not None:
            created = not os.path.exists(args.write)
            try:
                pcap = open(args.write, "wb")  # noqa: SIM115 (closed below)
            except OSError as exc:
                raise single(
                    "E764",
                    Loc("netmanager"),
                    f"cannot write {args.write}: {exc.strerror}",
                    "",
                    "capture",
                    capture.CaptureError,
                ) from exc
        _note(f"netmanager capture: {spot.describe()}")
        capture.capture(
            spot,
            count=args.count,
            pcap=pcap,
            on_line=_line,
            on_note=_note,
            expression=expression,
        )
    except BrokenPipeError:  # | head: the reader has seen enough (tcpdump is ended)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except NetmanagerError:
        if created and pcap is not None:  # no capture: no file of it
            with contextlib.suppress(OSError):
                os.unlink(args.write)
        raise
    finally:
        if pcap is not None and pcap is not sys.stdout.buffer:
            with contextlib.suppress(OSError):
                pcap.close()
    return ExitCode.OK
