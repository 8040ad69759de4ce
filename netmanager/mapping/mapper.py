"""The mapping stage: :func:`map_model` places VMs, routes virtual links, allocates segments.

Pure: the inputs are the model, the kernel features of hosts, the segment allocations
already kept and the resources other topologies hold; the output is a :class:`Mapping`
or an :class:`~netmanager.errors.InfeasibleError` whose diagnostics (codes in
:mod:`netmanager.mapping.problems`) point into the XML.
"""

from __future__ import annotations

from dataclasses import dataclass

from netmanager.errors import Diagnostic, Diagnostics, InfeasibleError, Severity
from netmanager.inputs.model import VM, Host, Model
from netmanager.inputs.units import format_memory
from netmanager.mapping.demand import Demand, EdgeKind, build_demand, colocation_groups
from netmanager.mapping.physical import min_host_latency, parallel_links, physical_graph
from netmanager.mapping.placement import (
    UNLIMITED,
    PlacementProblem,
    base_units,
    cut_value,
    place,
)
from netmanager.mapping.problems import (
    E_CAPACITY,
    E_PINNED,
    PLACEMENT_CODES,
    W_PARALLEL,
    Problem,
    names,
)
from netmanager.mapping.render import vm_ranges
from netmanager.mapping.result import (
    HostLoad,
    HostUsage,
    LinkLoad,
    Mapping,
    NetworkRoute,
    Occupied,
)
from netmanager.mapping.routing import RoutingState, route_all
from netmanager.mapping.segments import Allocations, Features, allocate_segments

PHASE = "mapping"


def map_model(
    model: Model,
    *,
    features: Features | None = None,
    allocations: Allocations | None = None,
    occupied: Occupied | None = None,
) -> Mapping:
    """Map a validated model onto its physical environment.

    ``features`` overrides the declared kernel features of hosts (for ``encap="auto"``),
    ``allocations`` are the segments kept in the state directory
    (:func:`~netmanager.mapping.segments.load_allocations`), ``occupied`` what topologies
    already applied hold.  Raises :class:`InfeasibleError` with every problem found.
    """
    occupied = occupied or Occupied()
    allocations = allocations or {}
    topology = model.topology
    outcome = _attempt(model, features, allocations, occupied)
    if isinstance(outcome, Mapping):
        return outcome
    problems = outcome
    others = not occupied.empty or any(t != topology for t in allocations)
    if others:
        own = {t: a for t, a in allocations.items() if t == topology}
        alone = _attempt(model, features, own, Occupied())
        alone_problems = [] if isinstance(alone, Mapping) else alone
        subjects = {p.subject for p in alone_problems}
        placement_fails = any(p.code in PLACEMENT_CODES for p in alone_problems)
    diagnostics = Diagnostics()
    for problem in problems:
        if not others:
            permanent = True
        elif problem.code in PLACEMENT_CODES:
            permanent = placement_fails
        else:
            permanent = placement_fails or problem.subject in subjects
        diagnostics.extend([problem.diagnostic(permanent)])
    diagnostics.extend(_warnings(model))
    raise InfeasibleError(PHASE, diagnostics.sorted())


def _warnings(model: Model) -> list[Diagnostic]:
    return [
        Diagnostic(
            Severity.WARNING,
            W_PARALLEL,
            f"link {link.name} joins the same nodes as an earlier link; it is not used",
            link.loc,
            "netmanager does not bond links: declare one link with the total capacity",
        )
        for link in parallel_links(model.real)
    ]


@dataclass(frozen=True)
class _Inputs:
    """The model in the sorted, indexed form the placement heuristic works on."""

    demand: Demand
    hosts: tuple[Host, ...]
    vms: tuple[VM, ...]
    pinned: tuple[int, ...]  # pinned, or tied by latency to a pinned VM
    problem: PlacementProblem


def _inputs(model: Model, demand: Demand, occupied: Occupied, groups: list[list[str]]) -> _Inputs:
    real, virtual = model.real, model.virtual
    hosts = tuple(sorted(real.hosts, key=lambda h: h.name))
    host_index = {h.name: i for i, h in enumerate(hosts)}
    vms = tuple(virtual.vm_by_name[name] for name in demand.vms)
    vm_index = {vm.name: i for i, vm in enumerate(vms)}
    pinned_to: dict[str, int] = {}
    for host in real.hosts:  # document order: the first pin wins, as in Real.pinned_host
        for pinned_vm in host.pinned:
            if pinned_vm.topology in (None, virtual.topology):
                pinned_to.setdefault(pinned_vm.name, host_index[host.name])
    pinned = [pinned_to.get(vm.name, -1) for vm in vms]
    edges = tuple(
        tuple((vm_index[m.vm], m.weight_bps) for m in edge.members if m.vm in vm_index)
        for edge in demand.edges
    )
    usage = [occupied.host(h.name) for h in hosts]
    problem = PlacementProblem(
        vm_cpus=tuple(vm.cpus for vm in vms),
        vm_memory=tuple(vm.memory_mib for vm in vms),
        pinned=tuple(pinned),
        host_cpus=tuple(h.cpus for h in hosts),
        host_memory=tuple(h.vm_memory_mib for h in hosts),
        host_vms=tuple(h.max_vms if h.max_vms is not None else UNLIMITED for h in hosts),
        used_cpus=tuple(u.cpus for u in usage),
        used_memory=tuple(u.memory_mib for u in usage),
        used_vms=tuple(u.vms for u in usage),
        edges=edges,
        groups=tuple(tuple(vm_index[v] for v in g if v in vm_index) for g in groups),
    )
    # a VM tied by latency to a pinned VM is as good as pinned with it
    for unit in base_units(problem):
        anchor = next((pinned[v] for v in unit if pinned[v] >= 0), -1)
        for v in unit:
            if pinned[v] < 0:
                pinned[v] = anchor
    return _Inputs(demand, hosts, vms, tuple(pinned), problem)


def _attempt(
    model: Model,
    features: Features | None,
    allocations: Allocations,
    occupied: Occupied,
) -> Mapping | list[Problem]:
    real, virtual = model.real, model.virtual
    graph = physical_graph(real)
    demand = build_demand(virtual)
    groups = colocation_groups(demand, min_host_latency(real, graph))
    inputs = _inputs(model, demand, occupied, groups)
    problems = _pin_problems(model, inputs)
    if problems:
        return problems
    problems = _oversized(model, inputs)
    result = place(inputs.problem)
    reported = {p.subject for p in problems}
    problems += _unplaced_problems(model, inputs, result.host_of, result.unplaced, reported)
    if problems:
        return problems

    placement = {
        vm.name: inputs.hosts[h].name for vm, h in zip(inputs.vms, result.host_of, strict=True)
    }
    state = RoutingState(graph, frozenset(h.name for h in inputs.hosts), dict(occupied.links))
    networks, pairs, delays, problems = route_all(state, demand, placement)
    spans: dict[str, tuple[str, ...]] = {}
    for edge in demand.edges:
        if edge.kind is EdgeKind.NETWORK:
            spans[edge.name] = tuple(sorted({placement[m.vm] for m in edge.members}))
    segments, segment_problems = allocate_segments(real, virtual, spans, features, allocations)
    problems += segment_problems
    if problems:
        return problems

    routed = {r.network for r in networks}
    networks += [
        NetworkRoute(name, (), "", (), ())
        for name, hosts in spans.items()
        if name not in routed and not hosts
    ]
    usage = [HostUsage() for _ in inputs.hosts]
    for vm, h in zip(inputs.vms, result.host_of, strict=True):
        usage[h] = usage[h] + HostUsage(vm.cpus, vm.memory_mib, 1)
    loads = [
        HostLoad(
            host.name,
            usage[i],
            occupied.host(host.name),
            HostUsage(host.cpus, host.vm_memory_mib, host.max_vms or 0),
        )
        for i, host in enumerate(inputs.hosts)
    ]
    links = [
        LinkLoad(
            link.name,
            link.a.node,
            link.b.node,
            state.reserved.get(link.name, 0),
            occupied.link(link.name),
            link.capacity_bps,
        )
        for link in sorted(real.links, key=lambda link: link.name)
    ]
    return Mapping(
        topology=virtual.topology,
        placement=dict(sorted(placement.items())),
        networks=tuple(sorted(networks, key=lambda r: r.network)),
        pairs=tuple(pairs),
        delays=tuple(delays),
        hosts=tuple(loads),
        links=tuple(links),
        segments=segments,
        cut_bps=round(cut_value(inputs.problem, result.host_of)),
        warnings=tuple(_warnings(model)),
    )


# ---------------------------------------------------------------------------- capacity


def _usage_text(cpus: int, memory_mib: int, vms: int | None) -> str:
    text = f"{cpus} cpu{'s' if cpus != 1 else ''}, {format_memory(max(memory_mib, 0))}"
    if vms is not None:
        text += f", {vms} VM{'s' if vms != 1 else ''}"
    return text


def _free(host: Host, used: HostUsage) -> tuple[int, int, int | None]:
    vms = None if host.max_vms is None else host.max_vms - used.vms
    return host.cpus - used.cpus, host.vm_memory_mib - used.memory_mib, vms


def _free_text(host: Host, used: HostUsage) -> str:
    cpus, memory, vms = _free(host, used)
    return f"{host.name} ({_usage_text(max(cpus, 0), memory, None if vms is None else max(vms, 0))} free)"


def _pinned_usage(inputs: _Inputs) -> list[HostUsage]:
    usage = [HostUsage() for _ in inputs.hosts]
    for vm, h in zip(inputs.vms, inputs.pinned, strict=True):
        if h >= 0:
            usage[h] = usage[h] + HostUsage(vm.cpus, vm.memory_mib, 1)
    return usage


def _pin_problems(model: Model, inputs: _Inputs) -> list[Problem]:
    problems = []
    pinned = _pinned_usage(inputs)
    for i, host in enumerate(inputs.hosts):
        need = pinned[i]
        if not need.vms:
            continue
        held = HostUsage(
            inputs.problem.used_cpus[i], inputs.problem.used_memory[i], inputs.problem.used_vms[i]
        )
        cpus, memory, vms = _free(host, held)
        if need.cpus <= cpus and need.memory_mib <= memory and (vms is None or need.vms <= vms):
            continue
        on_host = [vm.name for vm, h in zip(inputs.vms, inputs.pinned, strict=True) if h == i]
        held_text = (
            f" ({_usage_text(held.cpus, held.memory_mib, held.vms)} held by other topologies)"
            if held.vms or held.cpus or held.memory_mib
            else ""
        )
        problems.append(
            Problem(
                E_PINNED,
                host.loc,
                f"pinned:{host.name}",
                f"host '{host.name}' cannot hold the {need.vms} VMs of '{model.topology}' pinned to "
                f"it ({vm_ranges(on_host)}): they need "
                f"{_usage_text(need.cpus, need.memory_mib, need.vms)}; it has "
                f"{_usage_text(max(cpus, 0), memory, None if vms is None else max(vms, 0))} free"
                f"{held_text}",
                "pin some of them to another host, or raise the host's cpus, memory or max-vms",
            )
        )
    return problems


def _fits(vm: VM, host: Host, used: HostUsage) -> bool:
    cpus, memory, vms = _free(host, used)
    return vm.cpus <= cpus and vm.memory_mib <= memory and (vms is None or vms >= 1)


def _room_key(host: Host, used: HostUsage) -> tuple[int, int, str]:
    cpus, memory, _ = _free(host, used)
    return (-memory, -cpus, host.name)


def _oversized(model: Model, inputs: _Inputs) -> list[Problem]:
    """E601 for each VM that no host can take even with nothing else of the topology on it."""
    pinned = _pinned_usage(inputs)
    base = [
        pinned[i]
        + HostUsage(
            inputs.problem.used_cpus[i], inputs.problem.used_memory[i], inputs.problem.used_vms[i]
        )
        for i in range(len(inputs.hosts))
    ]
    problems = []
    for vm, pin in zip(inputs.vms, inputs.pinned, strict=True):
        if pin >= 0:
            continue
        if any(_fits(vm, h, base[i]) for i, h in enumerate(inputs.hosts)):
            continue
        order = sorted(range(len(inputs.hosts)), key=lambda i: _room_key(inputs.hosts[i], base[i]))
        best = [_free_text(inputs.hosts[i], base[i]) for i in order[:3]]
        problems.append(
            Problem(
                E_CAPACITY,
                vm.loc,
                f"vm:{vm.name}",
                f"VM '{vm.name}' needs {_usage_text(vm.cpus, vm.memory_mib, None)}; no host can take "
                f"it: {names(best, 3) if best else 'there are no hosts'}",
                "give the VM fewer cpus or less memory, or add a larger host to real.xml",
            )
        )
    return problems


def _primary_network(model: Model, vm: VM) -> str | None:
    virtual = model.virtual
    sizes = {
        iface.network: len(virtual.members(iface.network))
        for iface in vm.interfaces
        if iface.network in virtual.network_by_name
    }
    if not sizes:
        return None
    return min(sizes, key=lambda n: (-sizes[n], n))


def _need_text(vms: list[VM]) -> str:
    memories = {vm.memory_mib for vm in vms}
    cpus = sum(vm.cpus for vm in vms)
    if len(memories) == 1:
        text = f"{len(vms)} × {format_memory(vms[0].memory_mib)}"
    else:
        text = f"{len(vms)} VMs with {format_memory(sum(vm.memory_mib for vm in vms))}"
    return f"{text} ({cpus} cpu{'s' if cpus != 1 else ''})"


def _shortage(model: Model, inputs: _Inputs) -> list[Problem]:
    """E601 at the topology when its VMs together exceed what all hosts offer."""
    need = HostUsage(
        sum(vm.cpus for vm in inputs.vms), sum(vm.memory_mib for vm in inputs.vms), len(inputs.vms)
    )
    p = inputs.problem
    held = HostUsage(sum(p.used_cpus), sum(p.used_memory), sum(p.used_vms))
    cpus = sum(h.cpus for h in inputs.hosts) - held.cpus
    memory = sum(h.vm_memory_mib for h in inputs.hosts) - held.memory_mib
    limited = all(h.max_vms is not None for h in inputs.hosts)
    slots = sum(h.max_vms or 0 for h in inputs.hosts) - held.vms if limited else None
    short = []
    if need.vms > (slots if slots is not None else need.vms):
        short.append("VM slots (max-vms)")
    if need.cpus > cpus:
        short.append("cpus")
    if need.memory_mib > memory:
        short.append("memory")
    if not short:
        return []
    held_text = (
        f" ({_usage_text(held.cpus, held.memory_mib, held.vms)} held by other topologies)"
        if held.vms or held.cpus or held.memory_mib
        else ""
    )
    return [
        Problem(
            E_CAPACITY,
            model.virtual.loc,
            "topology",
            f"topology '{model.topology}' needs {_usage_text(need.cpus, need.memory_mib, need.vms)}"
            f"; the hosts have {_usage_text(max(cpus, 0), memory, slots)} free{held_text}: "
            f"not enough {' and '.join(short)}",
            "add hosts or raise cpus, memory or max-vms in real.xml, or shrink the VMs",
        )
    ]


def _unplaced_problems(
    model: Model,
    inputs: _Inputs,
    host_of: tuple[int, ...],
    unplaced: tuple[int, ...],
    reported: set[str],
) -> list[Problem]:
    """E601 per network (the largest a VM belongs to) whose VMs were left without a host."""
    left: dict[str | None, list[VM]] = {}
    for v in unplaced:
        vm = inputs.vms[v]
        if f"vm:{vm.name}" in reported:
            continue
        left.setdefault(_primary_network(model, vm), []).append(vm)
    if not left:
        return []
    used = [HostUsage() for _ in inputs.hosts]
    for vm, h in zip(inputs.vms, host_of, strict=True):
        if h >= 0:
            used[h] = used[h] + HostUsage(vm.cpus, vm.memory_mib, 1)
    used = [
        u
        + HostUsage(
            inputs.problem.used_cpus[i], inputs.problem.used_memory[i], inputs.problem.used_vms[i]
        )
        for i, u in enumerate(used)
    ]
    problems = _shortage(model, inputs)
    with_room = []
    for i in sorted(range(len(inputs.hosts)), key=lambda i: _room_key(inputs.hosts[i], used[i])):
        cpus, memory, vms = _free(inputs.hosts[i], used[i])
        if cpus > 0 and memory > 0 and (vms is None or vms > 0):
            with_room.append(_free_text(inputs.hosts[i], used[i]))
    room = f"hosts with room: {names(with_room, 5)}" if with_room else "every host is full"
    virtual = model.virtual
    for network in sorted(left, key=lambda n: (n is None, n or "")):
        stranded = left[network]
        listed = vm_ranges([vm.name for vm in stranded])
        if network is None:
            for vm in stranded:
                problems.append(
                    Problem(
                        E_CAPACITY,
                        vm.loc,
                        f"vm:{vm.name}",
                        f"VM '{vm.name}' needs {_usage_text(vm.cpus, vm.memory_mib, None)}; {room}",
                        "add hosts or raise cpus, memory or max-vms in real.xml, or shrink the VMs",
                    )
                )
            continue
        members = [vm for vm, _ in virtual.members(network)]
        unique = list({vm.name: vm for vm in members}.values())
        problems.append(
            Problem(
                E_CAPACITY,
                virtual.network_by_name[network].loc,
                f"network-vms:{network}",
                f"network '{network}' needs {_need_text(unique)}; "
                f"{len(stranded)} of its VMs fit on no host ({listed}); {room}",
                "add hosts or raise cpus, memory or max-vms in real.xml, or shrink the VMs",
            )
        )
    return problems
