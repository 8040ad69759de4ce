"""``netmanager show REAL VIRTUAL``: a readable summary of both inputs."""

from __future__ import annotations

import argparse
from typing import Any

from netmanager.commands.common import add_inputs, add_json, print_warnings
from netmanager.errors import ExitCode
from netmanager.loader import load_with_warnings
from netmanager.report import print_json
from netmanager.summary import pinned_placement, summary_json, summary_text


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "show",
        help="summarise hosts, sites, networks, VMs per host and shaped links",
        description="Print a readable summary of the validated inputs.",
    )
    add_inputs(parser)
    add_json(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    result = load_with_warnings(args.real, args.virtual)
    placement = pinned_placement(result.model)
    if args.json:
        print_json(summary_json(result.model, placement))
    else:
        print_warnings(result.warnings)
        print(summary_text(result.model, placement))
    return ExitCode.OK
