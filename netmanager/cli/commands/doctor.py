"""``netmanager doctor``: the kernel features found here and what each enables."""

from __future__ import annotations

import argparse
import os
from typing import Any

from netmanager.cli.commands.common import add_json
from netmanager.errors import ExitCode
from netmanager.output import print_json, table


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "doctor",
        help="list the kernel features found and what each enables",
        description="Try each kernel feature netmanager uses inside a throwaway network "
        'namespace and report what works; each running guest host (hypervisor="guest") '
        "is asked the same inside its own kernel. Exit 0 when the essentials work, 6 when not.",
    )
    parser.add_argument(
        "--no-hosts", action="store_true", help="only this machine, not the running guest hosts"
    )
    add_json(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from netmanager.kernel.features import ESSENTIAL, capabilities, probe, remember
    from netmanager.statedir import state_dir

    features = probe()
    if os.geteuid() == 0:  # what apply and plan then take without probing again
        remember(state_dir() / "features.json", capabilities(features))
    ok = all(f.available for f in features if f.name in ESSENTIAL)
    guests = {} if args.no_hosts or os.geteuid() != 0 else _guest_hosts()
    ok = ok and all(g.get("ok", False) for g in guests.values())
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
                "hosts": guests,
            }
        )
    else:
        rows = [
            [f.name, "yes" if f.available else "NO", f.enables, f"({f.detail})"] for f in features
        ]
        print("\n".join(table(rows)))
        if os.geteuid() != 0:
            print("not root: kernel features cannot be tried; run netmanager doctor as root")
        for host, doc in sorted(guests.items()):
            if "error" in doc:
                print(f"\nguest host {host}: {doc['error']}")
                continue
            print(f"\nguest host {host} (kernel {doc.get('kernel', '?')}):")
            rows = [
                [f["name"], "yes" if f["available"] else "NO", f"({f['detail']})"]
                for f in doc["features"]
            ]
            print("\n".join(table(rows)))
    return ExitCode.OK if ok else ExitCode.ENVIRONMENT


def _guest_hosts() -> dict[str, dict[str, Any]]:
    """``netmanager doctor --json --no-hosts`` run inside each running guest host: the
    features of its own kernel, tried there the same way."""
    import json
    import sys

    from netmanager.errors import NetmanagerError
    from netmanager.guests import hosts

    out: dict[str, dict[str, Any]] = {}
    for host in sorted(hosts.guests()):
        guest = hosts.guest_of(host)
        if guest is None:
            continue
        try:
            done = guest.run(
                [sys.executable, "-m", "netmanager", "doctor", "--json", "--no-hosts"],
                timeout=120,
                env={"NETMANAGER_STATE_DIR": "/run/netmanager/doctor"},
            )
            doc = json.loads(done.stdout)
            doc["kernel"] = guest.spec.kernel.version
            out[host] = doc
        except (NetmanagerError, ValueError) as exc:
            out[host] = {"ok": False, "error": str(exc)}
        finally:
            guest.disconnect()
    return out
