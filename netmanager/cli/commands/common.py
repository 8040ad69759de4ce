"""Arguments and output shared by the subcommands."""

from __future__ import annotations

import argparse
import sys

from netmanager.errors import Diagnostic
from netmanager.output import diagnostics_text


def add_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("real", metavar="REAL", help="the physical environment (real.xml)")
    parser.add_argument("virtual", metavar="VIRTUAL", help="the virtual topology (virtual.xml)")


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON document instead of text")


def print_warnings(warnings: tuple[Diagnostic, ...] | list[Diagnostic]) -> None:
    if warnings:
        print(diagnostics_text(warnings), file=sys.stderr)
