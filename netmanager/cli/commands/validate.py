"""``netmanager validate REAL VIRTUAL``: check both inputs, report every problem at once."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from netmanager.cli.commands.common import add_inputs, add_json
from netmanager.errors import ExitCode, NetmanagerError
from netmanager.inputs.loader import load_with_warnings
from netmanager.output import NOTHING_CHANGED, diagnostics_text, print_json, summary_line


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "validate",
        help="check real.xml and virtual.xml",
        description="Check both inputs against their schemas and for meaning; report every "
        "problem as FILE:LINE:COL: error[CODE]: message. Exit 0 when valid, 1 when not.",
    )
    add_inputs(parser)
    add_json(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        result = load_with_warnings(args.real, args.virtual)
    except NetmanagerError as exc:
        if args.json:
            print_json({"valid": False, "diagnostics": [d.as_json() for d in exc.diagnostics]})
        else:
            print(diagnostics_text(exc.diagnostics), file=sys.stderr)
            print(f"{summary_line(exc.diagnostics)}; {NOTHING_CHANGED}", file=sys.stderr)
        return ExitCode.INVALID_INPUT
    warnings = list(result.warnings)
    if args.json:
        print_json({"valid": True, "diagnostics": [d.as_json() for d in warnings]})
        return ExitCode.OK
    if warnings:
        print(diagnostics_text(warnings), file=sys.stderr)
    model = result.model
    print(
        f"{args.real} and {args.virtual} are valid: topology '{model.topology}', "
        f"{len(model.real.hosts)} hosts, {len(model.virtual.networks)} networks, "
        f"{len(model.virtual.vms)} VMs ({summary_line(warnings)})"
    )
    return ExitCode.OK
