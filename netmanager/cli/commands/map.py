"""``netmanager map REAL VIRTUAL [--json]``: where every VM would run, and why not when it can't.

Nothing is changed: the segment ids already allocated are read from the state directory,
never written.  Exit 3 when the topology does not fit.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path
from typing import Any

from netmanager.cli.commands.common import add_inputs, add_json, print_warnings
from netmanager.errors import ExitCode
from netmanager.inputs.model import HypervisorKind, Model
from netmanager.output import print_json

# Kernel features the mapper asks about, with the kernel config symbol and module of each.
KERNEL_FEATURES = {
    "8021q": ("CONFIG_VLAN_8021Q", "8021q"),
    "vxlan": ("CONFIG_VXLAN", "vxlan"),
    "netem": ("CONFIG_NET_SCH_NETEM", "sch_netem"),
    "tbf": ("CONFIG_NET_SCH_TBF", "sch_tbf"),
}


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "map",
        help="place VMs on hosts and virtual links on physical paths",
        description="Map the virtual topology onto the physical environment: a table of hosts "
        "× networks (like Table 1 of the AEF paper), per-host load, bandwidth reserved on each "
        "physical link and segment ids. Nothing is applied. Exit 3 when it does not fit.",
    )
    add_inputs(parser)
    add_json(parser)
    parser.add_argument(
        "--occupied",
        metavar="FILE",
        help='JSON of what other topologies hold: {"hosts": {HOST: {"cpus", "memory_mib", '
        '"vms"}}, "links": {LINK: bps}}',
    )
    parser.set_defaults(run=run)


def local_kernel_features(
    config: Path = Path("/proc/config.gz"), modules: Path = Path("/sys/module")
) -> frozenset[str] | None:
    """Features of this machine's kernel from its config and loaded modules; None if unknown.

    Cheap and read-only; ``netmanager doctor`` tries the features for real.
    """
    found: set[str] = set()
    known = False
    try:
        with gzip.open(config, "rt", encoding="utf-8", errors="replace") as f:
            text = f.read()
        known = True
        for feature, (symbol, _) in KERNEL_FEATURES.items():
            if f"\n{symbol}=y" in text or f"\n{symbol}=m" in text:
                found.add(feature)
    except OSError:
        pass
    if modules.is_dir():
        for feature, (_, module) in KERNEL_FEATURES.items():
            if (modules / module).exists():
                found.add(feature)
                known = True
    return frozenset(found) if known else None


def host_features(model: Model) -> dict[str, frozenset[str] | None]:
    """Kernel features of hosts emulated on this machine whose capabilities are not declared."""
    local: frozenset[str] | None = None
    probed = False
    features: dict[str, frozenset[str] | None] = {}
    for host in model.real.hosts:
        if host.hypervisor is HypervisorKind.NETNS and host.capabilities is None:
            if not probed:
                local, probed = local_kernel_features(), True
            features[host.name] = local
    return features


def run(args: argparse.Namespace) -> int:
    from netmanager.inputs.loader import load_with_warnings
    from netmanager.mapping import Occupied, load_allocations, map_model, render_table

    result = load_with_warnings(args.real, args.virtual)
    model = result.model
    occupied = None
    if args.occupied:
        try:
            occupied = Occupied.from_json(json.loads(Path(args.occupied).read_text("utf-8")))
        except (OSError, ValueError, AttributeError) as exc:
            print(f"netmanager map: cannot read {args.occupied}: {exc}", file=sys.stderr)
            return ExitCode.USAGE
    try:
        allocations = load_allocations()
    except OSError as exc:
        print(f"netmanager map: segment ids already allocated are unknown: {exc}", file=sys.stderr)
        allocations = {}
    mapping = map_model(
        model, features=host_features(model), allocations=allocations, occupied=occupied
    )
    if args.json:
        print_json(mapping.as_json())
    else:
        print_warnings([*result.warnings, *mapping.warnings])
        print(render_table(model, mapping), end="")
    return ExitCode.OK
