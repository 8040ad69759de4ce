"""The ``netmanager`` command: argument parsing and printing; the library below never prints.

Each subcommand lives in ``netmanager/cli/commands/<name>.py`` and exposes
``register(subparsers) -> None`` which adds its parser with ``set_defaults(run=...)``;
``run(args) -> int`` returns an :class:`~netmanager.errors.ExitCode`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from netmanager import __version__
from netmanager.errors import ExitCode, NetmanagerError
from netmanager.output import print_error

COMMANDS = (
    "validate",
    "show",
    "map",
    "apply",
    "inspect",
    "capture",
    "doctor",
    "verify",
    "agents",
    "hosts",
    "cleanup",
    "runtime",
    "schedule",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(ExitCode.USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="netmanager",
        description="Build, check and watch the virtual network of an emulation testbed.",
        epilog="exit codes: 0 ok, 1 invalid input, 2 usage, 3 infeasible mapping, "
        "4 apply failed (rolled back), 5 verification failed, 6 environment problem",
    )
    parser.add_argument("--version", action="version", version=f"netmanager {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"netmanager.cli.commands.{name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after the first "--" belongs to the command run inside a VM (exec).
    trailing: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, trailing = argv[:split], argv[split + 1 :]
    args = parser.parse_args(argv)
    args.trailing = trailing
    try:
        return int(args.run(args))
    except NetmanagerError as exc:
        print_error(exc, json_output=getattr(args, "json", False))
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("netmanager: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
