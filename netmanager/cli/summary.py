"""A readable summary of a model (``netmanager show``), as text and as JSON: pure functions."""

from __future__ import annotations

from typing import Any

from netmanager.inputs.model import Model, Shaping
from netmanager.inputs.units import format_memory, format_percent, format_rate, format_time


def shaping_text(shaping: Shaping | None) -> str:
    if shaping is None or shaping.empty:
        return "unshaped"
    parts = []
    if shaping.rate_bps is not None:
        parts.append(format_rate(shaping.rate_bps))
    if shaping.delay_us is not None:
        delay = format_time(shaping.delay_us)
        if shaping.jitter_us:
            delay += f" ±{format_time(shaping.jitter_us)}"
        parts.append(delay)
    if shaping.loss_ppm is not None:
        parts.append(f"{format_percent(shaping.loss_ppm)} loss")
    if shaping.queue_pkts is not None:
        parts.append(f"queue {shaping.queue_pkts}p")
    return ", ".join(parts)


def shaping_json(shaping: Shaping | None) -> dict[str, int | None] | None:
    if shaping is None or shaping.empty:
        return None
    return {
        "rate_bps": shaping.rate_bps,
        "delay_us": shaping.delay_us,
        "jitter_us": shaping.jitter_us,
        "loss_ppm": shaping.loss_ppm,
        "queue_pkts": shaping.queue_pkts,
    }


def summary_json(model: Model, placement: dict[str, str] | None = None) -> dict[str, Any]:
    real, virtual = model.real, model.virtual
    placement = placement or {}
    return {
        "topology": virtual.topology,
        "sites": [
            {
                "name": s.name,
                "vlan_ranges": [[r.first, r.last] for r in s.vlan_ranges],
                "vni_ranges": [[r.first, r.last] for r in s.vni_ranges],
            }
            for s in real.sites
        ],
        "hosts": [
            {
                "name": h.name,
                "site": h.site,
                "hypervisor": h.uri or str(h.hypervisor),
                "cpus": h.cpus,
                "memory_mib": h.memory_mib,
                "vm_memory_mib": h.vm_memory_mib,
                "max_vms": h.max_vms,
                "vms": sorted(v for v, host in placement.items() if host == h.name),
            }
            for h in real.hosts
        ],
        "networks": [
            {
                "name": n.name,
                "cidr": str(n.cidr),
                "gateway": str(n.gateway) if n.gateway else None,
                "encap": str(n.encap),
                "isolated": n.isolated,
                "external": str(n.external),
                "shaping": shaping_json(n.shaping),
                "vms": [vm.name for vm, _ in virtual.members(n.name)],
            }
            for n in virtual.networks
        ],
        "vms": [
            {
                "name": vm.name,
                "host": placement.get(vm.name),
                "cpus": vm.cpus,
                "memory_mib": vm.memory_mib,
                "forward": vm.forward,
                "interfaces": [
                    {
                        "network": i.network,
                        "ip": str(i.ip),
                        "mac": i.mac,
                        "shaping": shaping_json(virtual.interface_shaping(i)),
                    }
                    for i in vm.interfaces
                ],
                "routes": [{"to": str(r.to), "via": str(r.via)} for r in vm.routes],
            }
            for vm in virtual.vms
        ],
        "links": [
            {"a": p.a, "b": p.b, "network": p.network, "shaping": shaping_json(p.shaping)}
            for p in virtual.pairs
        ],
        "rules": [
            {
                "action": str(r.action),
                "from": r.src,
                "to": r.dst,
                "protocol": str(r.protocol),
                "ports": [[p.first, p.last] for p in r.ports],
            }
            for r in virtual.rules
        ],
    }


def summary_text(model: Model, placement: dict[str, str] | None = None) -> str:
    real, virtual = model.real, model.virtual
    placement = placement or {}
    lines = [f"topology {virtual.topology}", ""]
    lines.append("sites:")
    for s in real.sites:
        vlans = ", ".join(f"{r.first}-{r.last}" for r in s.vlan_ranges) or "none"
        vnis = ", ".join(f"{r.first}-{r.last}" for r in s.vni_ranges) or "none"
        lines.append(f"  {s.name}: VLANs {vlans}; VNIs {vnis}")
    lines.append("")
    lines.append("hosts:")
    for h in real.hosts:
        vms = sorted(v for v, host in placement.items() if host == h.name)
        limit = f", at most {h.max_vms} VMs" if h.max_vms is not None else ""
        lines.append(
            f"  {h.name} (site {h.site}, {h.uri or h.hypervisor}): {h.cpus} CPUs, "
            f"{format_memory(h.vm_memory_mib)} for VMs{limit}"
        )
        if vms:
            lines.append(f"    VMs ({len(vms)}): {', '.join(vms)}")
    unplaced = [v.name for v in virtual.vms if v.name not in placement]
    if unplaced:
        lines.append(
            f"  not pinned ({len(unplaced)}), placed by 'netmanager map': {', '.join(unplaced)}"
        )
    lines.append("")
    lines.append("networks:")
    for n in virtual.networks:
        members = virtual.members(n.name)
        flags = ["isolated" if n.isolated else "routed", f"encap {n.encap}"]
        if n.gateway:
            flags.append(f"gateway {n.gateway}")
        if n.external.value != "none":
            flags.append(f"external {n.external}")
        lines.append(
            f"  {n.name} {n.cidr} ({', '.join(flags)}): {len(members)} VMs, {shaping_text(n.shaping)}"
        )
    lines.append("")
    shaped = []
    for vm in virtual.vms:
        for i in vm.interfaces:
            effective = virtual.interface_shaping(i)
            if effective is not None and not effective.empty:
                shaped.append(f"  {vm.name} in {i.network} ({i.ip.ip}): {shaping_text(effective)}")
    for p in virtual.pairs:
        shaped.append(
            f"  {p.a} <-> {p.b}{' in ' + p.network if p.network else ''}: {shaping_text(p.shaping)}"
        )
    lines.append(f"shaped links ({len(shaped)}):")
    lines.extend(shaped or ["  none"])
    if virtual.rules:
        lines.append("")
        lines.append("rules (first match wins):")
        for r in virtual.rules:
            ports = ",".join(
                f"{p.first}" if p.first == p.last else f"{p.first}-{p.last}" for p in r.ports
            )
            lines.append(
                f"  {r.action} {r.src} -> {r.dst} {r.protocol}{' ' + ports if ports else ''}"
            )
    return "\n".join(lines)


def pinned_placement(model: Model) -> dict[str, str]:
    """VM -> host for the VMs whose host is fixed in the inputs."""
    placement = {}
    for vm in model.virtual.vms:
        host = model.real.pinned_host(vm.name, model.topology)
        if host is not None:
            placement[vm.name] = host.name
    return placement
