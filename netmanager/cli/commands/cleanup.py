"""``netmanager cleanup``: a clean slate after a crash (what carries netmanager's marks)."""

from __future__ import annotations

import argparse
from typing import Any

from netmanager.cli.commands.common import add_json
from netmanager.errors import ExitCode
from netmanager.output import print_json


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "cleanup",
        help="remove everything netmanager left on this machine (after a crash)",
        description="Stop the agents and guest hosts netmanager started (by their PIDs), "
        "remove the namespaces named with its prefix and its records of applied "
        "topologies, and list what was removed. Nothing else on the machine is touched; "
        "what was applied has to be applied again. --dry-run lists without removing.",
    )
    parser.add_argument("--dry-run", action="store_true", help="list only; change nothing")
    add_json(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from netmanager.apply.cleanup import cleanup

    found = cleanup(dry_run=args.dry_run)
    if args.json:
        print_json(found.as_json())
        return ExitCode.OK
    for line in found.lines():
        print(line)
    if not found.removed:
        print("nothing of netmanager's is on this machine")
    elif not args.dry_run:
        print(f"removed {found.removed} thing(s) of netmanager's")
    return ExitCode.OK
