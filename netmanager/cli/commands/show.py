"""``netmanager show REAL VIRTUAL [--graph OUT.svg|.png|.dot]``: a readable summary of both
inputs, or a picture of the topology placed on its hosts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from netmanager.cli.commands.common import add_inputs, add_json, print_warnings
from netmanager.cli.summary import pinned_placement, summary_json, summary_text
from netmanager.errors import ExitCode
from netmanager.inputs.loader import load_with_warnings
from netmanager.output import print_json


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "show",
        help="summarise hosts, sites, networks, VMs per host and shaped links; or draw them",
        description="Print a readable summary of the validated inputs, or (--graph) draw the "
        "topology as the mapping places it: hosts with their VMs, networks with their "
        "segments, gateways and NAT, shaped links, the physical environment.",
    )
    add_inputs(parser)
    add_json(parser)
    parser.add_argument(
        "--graph",
        metavar="OUT",
        help="draw into OUT.svg or OUT.png (Graphviz's dot) or write OUT.dot (DOT text); "
        "'-' prints the DOT text",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.graph is not None:
        return _graph(args)
    result = load_with_warnings(args.real, args.virtual)
    placement = pinned_placement(result.model)
    if args.json:
        print_json(summary_json(result.model, placement))
    else:
        print_warnings(result.warnings)
        print(summary_text(result.model, placement))
    return ExitCode.OK


def _graph(args: argparse.Namespace) -> int:
    from netmanager.cli import graph

    fmt = "dot" if args.graph == "-" else graph.graph_format(args.graph)
    if fmt is None:
        print(
            f"netmanager show: --graph {args.graph}: the file name must end in "
            f"{', '.join(graph.FORMATS)} (or be '-' for DOT text on stdout)",
            file=sys.stderr,
        )
        return ExitCode.USAGE
    from netmanager.cli.commands.map import host_features
    from netmanager.mapping import load_allocations, map_model

    result = load_with_warnings(args.real, args.virtual)
    model = result.model
    try:
        allocations = load_allocations()
    except OSError:
        allocations = {}
    mapping = map_model(model, features=host_features(model), allocations=allocations)
    drawing = graph.topology_drawing(model, mapping)
    text = graph.to_dot(drawing)
    if args.graph == "-":
        sys.stdout.write(text)
        return ExitCode.OK
    out = Path(args.graph)
    graph.render(text, fmt, out)
    summary = {
        "graph": str(out),
        "format": fmt,
        "hosts": len(drawing.clusters),
        "vms": len(drawing.nodes_of("vm")),
        "networks": len(drawing.nodes_of("network")),
    }
    if args.json:
        print_json(summary)
    else:
        print_warnings([*result.warnings, *mapping.warnings])
        print(
            f"{out}: {fmt}, topology '{model.topology}': {summary['vms']} VMs on "
            f"{summary['hosts']} hosts, {summary['networks']} networks"
        )
    return ExitCode.OK
