"""A mapping for people: the hosts × networks table of seed 002's Table 1, then loads,
reserved bandwidth, pairs, latency budgets and segment ids.  Pure: returns a string."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from netmanager.inputs.model import Model
from netmanager.inputs.units import format_memory, format_rate, format_time
from netmanager.output import table

if TYPE_CHECKING:
    from netmanager.mapping.result import Mapping

MAX_MATRIX_NETWORKS = 8
_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def _natural(name: str) -> tuple[str, int, str]:
    match = _NUMBERED.match(name)
    if match is None:
        return (name, -1, name)
    return (match[1], int(match[2]), name)


def natural_sorted(items: list[str]) -> list[str]:
    return sorted(items, key=_natural)


def vm_ranges(vms: list[str]) -> str:
    """'vmgrid201–vmgrid205, vmgridpeer2': runs of three or more consecutive numbers are
    written as a range, as in seed 002's Table 1."""
    parts: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if len(run) >= 3:
            parts.append(f"{run[0]}–{run[-1]}")
        else:
            parts.extend(run)
        run.clear()

    previous: tuple[str, int, int] | None = None
    for name in natural_sorted(list(dict.fromkeys(vms))):
        match = _NUMBERED.match(name)
        key = (match[1], int(match[2]), len(match[2])) if match else None
        if (
            key is not None
            and previous is not None
            and key[0] == previous[0]
            and key[2] == previous[2]
            and key[1] == previous[1] + 1
        ):
            run.append(name)
        else:
            flush()
            run.append(name)
        previous = key
    flush()
    return ", ".join(parts)


def _pair_rate(rate_bps: int, reserved_bps: int) -> str:
    if not rate_bps:
        return "best effort"
    return format_rate(reserved_bps) if reserved_bps else f"{format_rate(rate_bps)} (one host)"


def _percent(fraction: float) -> str:
    return f"{round(fraction * 100)}%"


def render_table(model: Model, mapping: Mapping) -> str:
    virtual, real = model.virtual, model.real
    hosts = [h.name for h in real.hosts]
    networks = [n.name for n in virtual.networks]
    members: dict[tuple[str, str], list[str]] = {}
    loose: dict[str, list[str]] = {}
    for vm in virtual.vms:
        host = mapping.placement.get(vm.name)
        if host is None:
            continue
        nets = [i.network for i in vm.interfaces if i.network in virtual.network_by_name]
        for net in dict.fromkeys(nets):
            members.setdefault((host, net), []).append(vm.name)
        if not nets:
            loose.setdefault(host, []).append(vm.name)
    count = {h: len(mapping.vms_on(h)) for h in hosts}
    lines = [
        f"topology '{mapping.topology}': {len(mapping.placement)} VMs on "
        f"{sum(1 for h in hosts if count[h])} of {len(hosts)} hosts, "
        f"cut {format_rate(mapping.cut_bps)}",
        "",
    ]
    columns = networks + (["(no network)"] if loose else [])

    def cell(host: str, column: str) -> list[str]:
        if column == "(no network)":
            return loose.get(host, [])
        return members.get((host, column), [])

    if len(columns) <= MAX_MATRIX_NETWORKS:
        rows = [["host", *columns, "total"]]
        for host in hosts:
            rows.append([host, *(vm_ranges(cell(host, c)) for c in columns), str(count[host])])
        totals = [str(sum(len(cell(h, c)) for h in hosts)) for c in columns]
        rows.append(["total", *totals, str(len(mapping.placement))])
        lines += table(rows)
    else:
        for host in hosts:
            entries = [f"{c}: {vm_ranges(cell(host, c))}" for c in columns if cell(host, c)]
            lines.append(f"{host} ({count[host]} VMs): " + ("; ".join(entries) or "-"))

    others = any(
        load.occupied.vms or load.occupied.cpus or load.occupied.memory_mib
        for load in mapping.hosts
    )
    lines += [
        "",
        "host loads"
        + (" (this topology + other topologies / capacity)" if others else " (used / capacity)"),
    ]
    rows = [["host", "VMs", "cpus", "memory", "load"]]

    def used(text: str, other_text: str) -> str:
        return f"{text}+{other_text}" if others else text

    for load in sorted(mapping.hosts, key=lambda h: hosts.index(h.host)):
        cap, occ, mine = load.capacity, load.occupied, load.usage
        rows.append(
            [
                load.host,
                used(str(mine.vms), str(occ.vms)) + f"/{cap.vms if cap.vms else '∞'}",
                used(str(mine.cpus), str(occ.cpus)) + f"/{cap.cpus}",
                used(format_memory(mine.memory_mib), format_memory(occ.memory_mib))
                + f"/{format_memory(cap.memory_mib)}",
                _percent(load.fraction),
            ]
        )
    lines += table(rows, right={1, 2, 3, 4})

    lines += ["", "physical links"]
    rows = [["link", "reserved", "other topologies", "capacity", "free"]]
    for link in mapping.links:
        rows.append(
            [
                link.link,
                format_rate(link.reserved_bps),
                format_rate(link.occupied_bps),
                format_rate(link.capacity_bps),
                format_rate(max(link.free_bps, 0)),
            ]
        )
    lines += table(rows, right={1, 2, 3, 4})

    spread = [r for r in mapping.networks if len(r.hosts) > 1]
    if spread:
        lines += ["", "networks across hosts (tree from the root host, hose-model reservations)"]
        rows = [["network", "root", "paths", "reserved"]]
        for route in spread:
            paths = ", ".join(
                f"{'–'.join(p.path)} ({format_time(p.latency_us)})" for p in route.paths
            )
            reserved = ", ".join(
                f"{r.link} {format_rate(r.reserved_bps)}" for r in route.links if r.reserved_bps
            )
            rows.append([route.network, route.root, paths, reserved or "best effort"])
        lines += table(rows)

    if mapping.pairs:
        lines += ["", "pairs"]
        rows = [["pair", "path", "reserved", "latency", "declared", "netem adds"]]
        for pair in mapping.pairs:
            rows.append(
                [
                    pair.name,
                    "–".join(pair.path),
                    _pair_rate(pair.rate_bps, pair.reserved_bps),
                    format_time(pair.latency_us),
                    format_time(pair.declared_us) if pair.declared_us is not None else "-",
                    format_time(pair.netem_delay_us) if pair.netem_delay_us is not None else "-",
                ]
            )
        lines += table(rows)

    remote = [d for d in mapping.delays if d.host != d.to_host]
    if remote:
        lines += ["", "latency budgets towards other hosts"]
        rows = [["vm", "network", "to host", "declared", "path", "netem adds"]]
        for budget in remote:
            rows.append(
                [
                    budget.vm,
                    budget.network,
                    budget.to_host,
                    format_time(budget.declared_us),
                    format_time(budget.latency_us),
                    format_time(budget.netem_delay_us),
                ]
            )
        lines += table(rows)

    lines += ["", "segments"]
    rows = [["network", "encap", "id", "hosts", "sites"]]
    for name in networks:
        segment = mapping.segments.get(name)
        if segment is None:
            continue
        span = mapping.network_hosts.get(name, ())
        rows.append(
            [
                name,
                segment.encap.value,
                str(segment.id),
                ", ".join(span) or "-",
                ", ".join(segment.sites),
            ]
        )
    lines += table(rows)
    return "\n".join(lines) + "\n"
