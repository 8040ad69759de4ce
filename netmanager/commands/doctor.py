"""``netmanager doctor``: the kernel features found here and what each enables."""

from __future__ import annotations

import argparse
import os
from typing import Any

from netmanager.commands.common import add_json
from netmanager.errors import ExitCode
from netmanager.report import print_json


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "doctor",
        help="list the kernel features found and what each enables",
        description="Try each kernel feature netmanager uses inside a throwaway network "
        "namespace and report what works. Exit 0 when the essentials work, 6 when not.",
    )
    add_json(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from netmanager.probe import ESSENTIAL, capabilities, probe, remember
    from netmanager.state import state_dir

    features = probe()
    if os.geteuid() == 0:  # what apply and plan then take without probing again
        remember(state_dir() / "features.json", capabilities(features))
    ok = all(f.available for f in features if f.name in ESSENTIAL)
    if args.json:
        print_json(
            {
                "ok": ok,
                "root": os.geteuid() == 0,
                "features": [
                    {
                        "name": f.name,
                        "available": f.available,
                        "detail": f.detail,
                        "enables": f.enables,
                    }
                    for f in features
                ],
            }
        )
    else:
        width = max(len(f.name) for f in features)
        for f in features:
            mark = "yes" if f.available else "NO "
            print(f"{f.name:<{width}}  {mark}  {f.enables}  ({f.detail})")
        if os.geteuid() != 0:
            print("not root: kernel features cannot be tried; run netmanager doctor as root")
    return ExitCode.OK if ok else ExitCode.ENVIRONMENT
