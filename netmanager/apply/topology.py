"""Apply, plan and destroy a topology: the emulated infrastructure under it, one
transaction (:mod:`netmanager.apply.commit`) across its hosts, and the record of what
was applied.

Each host's candidate is its whole configuration — the
:class:`~netmanager.compile.hostconfig.HostConfig` of every topology applied there — so that one
topology's apply leaves the others as they are.  ``local`` picks the transport only:
every host's backend in this process (:mod:`.local`), or each host's SNMP agent
(:mod:`.agent_transport`, started here for emulated hosts where it is not running).

The emulated physical environment (the hosts' and switches' namespaces and the underlay
between them) is not any host's to build: it is built here, in the scope of the
infrastructure owner ``-``, before the hosts are driven; the first apply that fails
takes it away again.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from netmanager.agentctl import processes as agent_procs
from netmanager.agentctl.client import AgentClient
from netmanager.apply.agent_transport import AgentTransport, KnownCandidates
from netmanager.apply.commit import REVERT_S, Hook, Progress, no_hook, quiet, run, transaction
from netmanager.apply.local import LocalTransport, forget_local_hosts
from netmanager.apply.prepare import Deployment
from netmanager.apply.records import (
    Record,
    owned_namespaces,
    records,
    refuse_mixed,
    remove_record,
    save_record,
)
from netmanager.apply.transport import HostTransport
from netmanager.compile.desired import render_infrastructure
from netmanager.compile.hostconfig import INFRA, HostConfig, Infrastructure, host_namespace
from netmanager.errors import ApplyFailed, Diagnostic, Loc, NetmanagerError, Severity, single
from netmanager.gcpause import pausing
from netmanager.host.candidate import Candidate, Change
from netmanager.host.kernelhost import StepFaults
from netmanager.host.rows import PortKey, candidate_from_host_configs, scoped_change
from netmanager.inputs.model import HypervisorKind, Real
from netmanager.kernel import ApplyError, Engine, HostState, KernelStateError, Scope
from netmanager.kernel.journal import StepProgress
from netmanager.kernel.plan import Plan
from netmanager.mapping import Occupied, release_allocations, save_allocations
from netmanager.snmp.credentials import CredentialsError
from netmanager.statedir import apply_lock


@dataclass
class Outcome:
    topology: str
    changes: int
    phases: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "topology": self.topology,
            "changes": self.changes,
            "phases": self.phases,
            "seconds": round(self.seconds, 3),
            "hosts": self.hosts,
        }


# ------------------------------------------------------------------------ infrastructure


def _infra_scope(infra: Infrastructure) -> Scope:
    namespaces = [*infra.host_namespaces, *(ns for ns, _ in infra.switch_namespaces)]
    if infra.external_namespace:
        namespaces.append(infra.external_namespace)
    return Scope.of(INFRA, namespaces)


def _infrastructure_state(infra: Infrastructure | None) -> HostState:
    return HostState.checked(render_infrastructure(infra)) if infra is not None else HostState()


def build_infrastructure(infra: Infrastructure, faults: StepFaults | None = None) -> int:
    """The emulated physical environment, in the infrastructure owner's scope only (the
    topologies' objects in the hosts' namespaces are the hosts' and stay untouched)."""
    with Engine() as engine:
        return engine.apply(
            _infrastructure_state(infra),
            scope=_infra_scope(infra),
            faults=faults.kernel() if faults is not None else None,
        ).changes


def remove_infrastructure(infra: Infrastructure) -> int:
    with Engine() as engine:
        return engine.apply(HostState(), scope=_infra_scope(infra)).changes


def plan_infrastructure(infra: Infrastructure) -> Plan:
    with Engine() as engine:
        return engine.plan(_infrastructure_state(infra), scope=_infra_scope(infra))


# ------------------------------------------------------------------------------- hosts


def host_candidates(
    configs: Mapping[str, HostConfig],
    topology: str,
    applied: Mapping[str, Record],
    hosts: Iterable[str],
) -> dict[str, Candidate]:
    """Each host's whole candidate: every other applied topology's configuration there, and
    ``configs`` (this topology's, by host)."""
    out = {}
    for host in sorted(set(hosts)):
        on_host = [
            r.hosts[host] for t, r in sorted(applied.items()) if t != topology and host in r.hosts
        ]
        if host in configs:
            on_host.append(configs[host])
        out[host] = candidate_from_host_configs(on_host)
    return out


def dom0s(infra: Infrastructure, hosts: Iterable[str]) -> dict[str, str]:
    """The dom0 namespace of each of ``hosts`` emulated as a namespace host."""
    known = set(infra.host_namespaces)
    return {h: host_namespace(h) for h in hosts if host_namespace(h) in known}


def running_agents() -> dict[str, agent_procs.AgentInfo]:
    """Every running agent netmanager started: of namespace hosts and of guest hosts."""
    from netmanager.guests import hosts as guest_hosts

    return agent_procs.running() | guest_hosts.running()


def _stop_hosts() -> None:
    """End the agents of namespace hosts and power off the guest hosts."""
    from netmanager.guests import hosts as guest_hosts

    agent_procs.stop_agents()
    guest_hosts.stop_guests()


def clients(
    real: Real | None, infos: Mapping[str, agent_procs.AgentInfo], command: str = "apply"
) -> dict[str, AgentClient]:
    """The clients of the given agents; a credentials file refused is E741 at the host's
    line in real.xml (or naming netmanager where real.xml is gone), before any change."""
    out = {}
    for host, info in sorted(infos.items()):
        try:
            out[host] = agent_procs.client(info)
        except CredentialsError as exc:
            where = real.host_by_name[host].loc if real and host in real.host_by_name else None
            raise single(
                "E741",
                where or Loc("netmanager"),
                f"host '{host}': {exc}",
                "agents and manager refuse a credentials file that others can read, or "
                "that is not valid (chmod 600; see examples/two-hosts/snmp.toml)",
                command,
                ApplyFailed,
            ) from exc
    return out


def _agent_transports(
    real: Real | None, infos: Mapping[str, agent_procs.AgentInfo], command: str = "apply"
) -> dict[str, HostTransport]:
    chosen = clients(real, infos, command)
    known = KnownCandidates(agent_procs.agents_dir(), chosen)
    return {h: AgentTransport(c, known) for h, c in chosen.items()}


def _local_transports(
    infra: Infrastructure, hosts: Iterable[str], faults: StepFaults | None = None
) -> dict[str, HostTransport]:
    serial = asyncio.Lock() if faults is not None else None
    return {
        h: LocalTransport.kernel(h, dom0, faults=faults, serial=serial)
        for h, dom0 in dom0s(infra, hosts).items()
    }


def _refuse_guests(deployment: Deployment) -> None:
    """The local transport reaches this kernel's namespaces only: a guest has its own."""
    libvirt = [
        h.name
        for h in deployment.model.real.hosts
        if h.name in deployment.configs and h.hypervisor is HypervisorKind.LIBVIRT
    ]
    if libvirt:
        raise single(
            "E709",
            deployment.model.real.host_by_name[libvirt[0]].loc,
            f"host '{libvirt[0]}' is a libvirt host: its domains are wired through its agent "
            "(which holds the libvirt connection), not in this process",
            "apply without --local",
            "apply",
        )
    guests = [g.host for g in deployment.infrastructure.guests]
    if guests:
        raise single(
            "E709",
            deployment.model.real.host_by_name[guests[0]].loc,
            f"host '{guests[0]}' is a guest (hypervisor=\"guest\"): guest hosts are "
            "configured through their agents, not in this process",
            "apply without --local",
            "apply",
        )


#: how a libvirt host's agent names a VM whose domain cannot be wired
#: (netmanager.hypervisor.domains.Problem.text)
_DOMAIN_PROBLEM = re.compile(
    r"VM '(?P<vm>[^']+)' of topology '(?P<topology>[^']+)': (?P<message>.+?)"
    r"(?: \(hint: (?P<hint>[^)]*)\))?(?=; VM '|$)"
)


def located_domain_problems(deployment: Deployment, exc: ApplyFailed) -> ApplyFailed:
    """``exc`` with each domain problem a libvirt host reported (a domain missing, shut
    off, with other interfaces: found before any change) as E714 at the VM's line in
    virtual.xml; the other diagnostics as they were."""
    model = deployment.model
    out: list[Diagnostic] = []
    for diag in exc.diagnostics:
        found = [
            m
            for m in _DOMAIN_PROBLEM.finditer(diag.message)
            if m["topology"] == model.topology and m["vm"] in model.virtual.vm_by_name
        ]
        if not found:
            out.append(diag)
            continue
        host = diag.message.partition("host '")[2].partition("'")[0]
        for m in found:
            out.append(
                Diagnostic(
                    Severity.ERROR,
                    "E714",
                    f"VM '{m['vm']}' on host '{host}': {m['message']}",
                    model.virtual.vm_by_name[m["vm"]].loc,
                    (m["hint"] or "") + ("; " if m["hint"] else "") + (diag.hint or ""),
                )
            )
    return ApplyFailed(exc.phase, out) if out != exc.diagnostics else exc


def _touched_hosts(deployment: Deployment, previous: Record | None) -> list[str]:
    hosts = set(deployment.configs)
    if previous is not None:
        hosts |= set(previous.hosts)
    return sorted(hosts)


def _scoped_ports(
    deployment: Deployment, previous: Record | None, ports: Collection[tuple[str, str]]
) -> dict[str, list[PortKey]]:
    """The VM ports of an apply scoped to ``ports``, by host; E712 (before any change) when
    the topology is not applied, a port does not exist, or the topology changes more than
    those ports' shaping since it was applied."""
    topology = deployment.topology
    loc = deployment.model.virtual.loc
    hint = "apply the whole topology (without --only)"
    if previous is None:
        raise single("E712", loc, f"topology '{topology}' is not applied", hint, "apply")
    named = set(ports)
    by_host: dict[str, list[PortKey]] = {}
    for host, config in sorted(deployment.configs.items()):
        here = sorted({(p.vm, p.network) for p in config.ports} & named)
        if here:
            by_host[host] = [(topology, vm, network) for vm, network in here]
    found = {(vm, network) for keys in by_host.values() for _, vm, network in keys}
    for vm, network in sorted(named - found):
        raise single(
            "E712", loc, f"VM '{vm}' has no interface in network '{network}'", hint, "apply"
        )
    problems = [
        scoped_change(
            previous.hosts.get(host),
            deployment.configs.get(host),
            {(vm, network) for _, vm, network in by_host.get(host, [])},
        )
        for host in sorted(set(previous.hosts) | set(deployment.configs))
    ]
    if previous.infrastructure != deployment.infrastructure:
        problems.append(f"the emulated infrastructure of topology '{topology}' changes too")
    for problem in problems:
        if problem is not None:
            raise single("E712", loc, problem, hint, "apply")
    return by_host


def _infrastructure_failed(topology: str, exc: Exception) -> ApplyFailed:
    undone = not (isinstance(exc, ApplyError) and exc.undo_failures)
    return ApplyFailed(
        "apply",
        [
            Diagnostic(
                Severity.ERROR,
                "E710" if undone else "E711",
                f"{topology}: emulated infrastructure: {exc}",
                Loc("netmanager"),
                "nothing was left changed" if undone else "netmanager plan shows what differs",
            )
        ],
    )


# ----------------------------------------------------------------------------- commands


@pausing
def apply(
    deployment: Deployment,
    *,
    local: bool = False,
    progress: Progress = quiet,
    hook: Hook = no_hook,
    revert_s: int = REVERT_S,
    steps: StepProgress | None = None,
    fail_at: int | None = None,
    fail_undo: bool = False,
    ports: Collection[tuple[str, str]] | None = None,
) -> Outcome:
    """Build the topology on every host it touches — through the hosts' agents (started
    here where they are not running), or ``local``: in this process — in one transaction;
    raises ApplyFailed after every host was rolled back.  ``fail_at`` (tests, local only)
    fails the k-th step, counting the infrastructure's and then each host's in order, and
    with ``fail_undo`` that host's undo too.

    ``ports`` ((VM, network) pairs): change only those VM ports' shaping, on their hosts
    only, in transactions scoped to their links (:mod:`netmanager.host.protocol`): no
    other object of any host, nor the infrastructure, is observed, planned or changed.
    The topology must be applied, and differ from what was applied in those ports'
    shaping only (E712 otherwise, before any change)."""
    start = time.perf_counter()
    topology = deployment.topology
    infra = deployment.infrastructure
    real = deployment.model.real
    transport = "local" if local else "agents"
    if local:
        _refuse_guests(deployment)
    elif fail_at is not None:
        raise ValueError("fail_at numbers the steps of the local transport")
    faults = StepFaults(fail_at, undo_too=fail_undo) if fail_at is not None else None
    with apply_lock():
        applied = records()
        refuse_mixed(applied, transport, deployment.model.virtual.loc)
        first = not applied
        counts: dict[str, int] = {}
        scoped = _scoped_ports(deployment, applied.get(topology), ports) if ports else None
        if scoped is None:
            progress("infrastructure")
            try:
                counts["infrastructure"] = build_infrastructure(infra, faults)
            except (ApplyError, KernelStateError) as exc:
                raise _infrastructure_failed(topology, exc) from exc
        infos: dict[str, agent_procs.AgentInfo] = {}
        try:
            hosts = (
                sorted(scoped)
                if scoped is not None
                else _touched_hosts(deployment, applied.get(topology))
            )
            if local:
                transports = _local_transports(infra, hosts, faults)
            else:
                progress("agents")
                infos = agent_procs.ensure_agents(real, dom0s(infra, hosts))
                infos |= agent_procs.remote_agents(real, hosts)
                if infra.guests:
                    from netmanager.guests import hosts as guest_hosts

                    progress("guests")
                    infos |= guest_hosts.ensure_guests(real, infra, hosts, progress=progress)
                transports = _agent_transports(real, infos)
            wanted = host_candidates(deployment.configs, topology, applied, hosts)
            try:
                result = run(
                    transaction(
                        topology,
                        transports,
                        wanted,
                        revert_s=revert_s,
                        progress=progress,
                        hook=hook,
                        steps=steps,
                        ports=scoped,
                    )
                )
            except ApplyFailed as exc:
                raise located_domain_problems(deployment, exc) from exc
        except NetmanagerError:
            if first:
                if local:
                    forget_local_hosts()
                else:
                    _stop_hosts()
                remove_infrastructure(infra)
            raise
        counts["hosts"] = sum(result.changes.values())
        save_allocations(topology, deployment.mapping.segments)
        record = Record(
            topology=topology,
            real=str(Path(real.file).resolve()),
            virtual=str(Path(deployment.model.virtual.file).resolve()),
            hosts=deployment.configs,
            infrastructure=infra,
            occupied=Occupied.of([deployment.mapping]),
            placement=dict(deployment.mapping.placement),
            applied_at=time.time(),
            transport=transport,
            base_dir=real.base_dir,
            moves=deployment.moves,
        )
        old = applied.get(topology)
        if old is None or replace(old, applied_at=0.0) != replace(record, applied_at=0.0):
            save_record(record)  # an unchanged topology keeps its record (and its time)
    outcome = Outcome(topology, sum(counts.values()), counts, time.perf_counter() - start)
    outcome.hosts = {
        host: {
            "vms": len(config.vms),
            "ports": len(config.ports),
            "networks": len(config.segments),
            "changes": result.changes.get(host, 0),
            "agent": f"{infos[host].address}:{infos[host].port}" if host in infos else None,
        }
        for host, config in sorted(deployment.configs.items())
    }
    return outcome


@dataclass
class TopologyPlan:
    """What apply would change: the infrastructure's kernel plan, and each host's staged
    changes as its backend reported them."""

    topology: str
    infrastructure: Plan | None
    hosts: dict[str, list[Change]]
    unreachable: dict[str, str] = field(default_factory=dict)

    @property
    def changes(self) -> int:
        infra = len(self.infrastructure) if self.infrastructure is not None else 0
        return infra + sum(len(c) for c in self.hosts.values())

    def counts(self) -> dict[str, int]:
        """Changes on the hosts by action: add, modify, remove."""
        out = {"add": 0, "modify": 0, "remove": 0}
        for changes in self.hosts.values():
            for change in changes:
                out[change.action] = out.get(change.action, 0) + 1
        return out

    def lines(self) -> list[str]:
        out = self.infrastructure.lines() if self.infrastructure is not None else []
        for host, changes in sorted(self.hosts.items()):
            out += [f"{c.sign} {host}: {c.object} ({c.reason})" for c in changes]
        out += [f"? {host}: not asked ({why})" for host, why in sorted(self.unreachable.items())]
        return out

    def summary(self) -> str:
        infra = len(self.infrastructure) if self.infrastructure is not None else 0
        hosts = sum(1 for c in self.hosts.values() if c)
        text = (
            f"{self.changes} change(s): {infra} to the emulated infrastructure, "
            f"{sum(len(c) for c in self.hosts.values())} on {hosts} host(s)"
        )
        if self.unreachable:
            text += f"; {len(self.unreachable)} host(s) not asked"
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "topology": self.topology,
            "changes": self.changes,
            "infrastructure": self.infrastructure.to_json()
            if self.infrastructure is not None
            else None,
            "hosts": {
                h: [{"op": c.sign, "object": c.object, "reason": c.reason} for c in changes]
                for h, changes in sorted(self.hosts.items())
            },
            "unreachable": self.unreachable,
        }


@pausing
def plan(deployment: Deployment, *, local: bool = False) -> TopologyPlan:
    """Ask every host what the topology would change there (stage, read the changes,
    discard); a host not reachable yet (no agent running, its namespace not built)
    would get everything, shown as such.  Nothing is changed on any host."""
    topology = deployment.topology
    infra = deployment.infrastructure
    real = deployment.model.real
    if local:
        _refuse_guests(deployment)
    with apply_lock():
        applied = records()
        refuse_mixed(applied, "local" if local else "agents", deployment.model.virtual.loc)
        hosts = _touched_hosts(deployment, applied.get(topology))
        infra_plan = plan_infrastructure(infra)
        if local:
            existing = owned_namespaces()
            built = {h: d for h, d in dom0s(infra, hosts).items() if d in existing}
            transports = _local_transports(infra, built)
            absent = "its namespace is built by apply"
        else:
            infos = {h: a for h, a in running_agents().items() if h in hosts}
            infos |= agent_procs.remote_agents(real, hosts)
            transports = _agent_transports(real, infos)
            absent = "its agent starts with apply"
        wanted = host_candidates(deployment.configs, topology, applied, hosts)
        result = run(transaction(topology, transports, wanted, commit=False))
    lines = dict(result.lines)
    unreachable = dict(result.pending)
    for host in hosts:
        if host in transports:
            continue
        config = deployment.configs.get(host)
        if topology in applied:
            # applied before, its agent stopped since: what differs is not known here
            lines[host] = []
            unreachable[host] = "its agent is not running; apply starts it again"
        else:
            lines[host] = (
                [Change("add", f"everything of '{topology}' ({len(config.vms)} VMs)", absent)]
                if config is not None
                else []
            )
            unreachable[host] = absent
    return TopologyPlan(topology, infra_plan, lines, unreachable)


def agents_plan(
    deployment: Deployment, hosts: Iterable[str]
) -> tuple[dict[str, list[Change]], dict[str, str]]:
    """What the agents of ``hosts`` would change for the topology as applied (staged,
    read, discarded: nothing changes), and the hosts whose agent did not answer, with why.
    Takes no lock: the caller holds :func:`apply_lock` (verify, shared)."""
    topology = deployment.topology
    real = deployment.model.real
    chosen = sorted(set(hosts))
    infos = {h: a for h, a in running_agents().items() if h in chosen}
    infos |= agent_procs.remote_agents(real, chosen)
    transports = _agent_transports(real, infos)
    wanted = host_candidates(deployment.configs, topology, records(), chosen)
    result = run(transaction(topology, transports, wanted, commit=False))
    unreachable = dict(result.pending)
    for host in chosen:
        if host not in transports:
            unreachable[host] = "its agent is not running"
    return dict(result.lines), unreachable


@pausing
def destroy(
    topology: str,
    *,
    progress: Progress = quiet,
    hook: Hook = no_hook,
    steps: StepProgress | None = None,
) -> Outcome:
    """Remove the topology from every host, the way it was applied (in this process or
    through the agents); the last topology takes the agents and the emulated
    infrastructure with it, and powers off its guest hosts without taking its objects
    down inside them first (phase ``guests``: the guests powered off)."""
    from netmanager.apply.schedule import stop_moves
    from netmanager.inputs.loader import load

    start = time.perf_counter()
    # the schedule's migrations end first (a move in progress finishes: the lock waits)
    stop_moves(topology)
    with apply_lock():
        applied = records()
        record = applied.get(topology)
        if record is None:
            raise single(
                "E720",
                Loc("netmanager"),
                f"topology '{topology}' is not applied on this machine",
                "netmanager status lists what is applied" if applied else "nothing is applied here",
                "destroy",
            )
        local = record.transport == "local"
        counts: dict[str, int] = {}
        hosts = sorted(record.hosts)
        last = len(applied) == 1
        powered_off: list[str] = []
        if local:
            transports = _local_transports(record.infrastructure, hosts)
        else:
            model = (
                load(record.real, record.virtual, base_dir=record.base_dir or None)
                if Path(record.real).exists()
                else None
            )
            real = model.real if model is not None else None
            running = {h: a for h, a in running_agents().items() if h in hosts}
            if real is not None:
                running |= agent_procs.remote_agents(real, hosts)
                missing = dom0s(record.infrastructure, [h for h in hosts if h not in running])
                if missing:
                    running |= agent_procs.ensure_agents(real, missing)
            # a guest host that does not run holds nothing any more (its kernel state was
            # in the guest's memory): there is nothing to remove there
            guests = set(record.infrastructure.guest_by_name)
            hosts = [h for h in hosts if h in running or h not in guests]
            # the last topology powers the guest hosts off, and what it built inside them
            # goes with their kernels: their agents are not asked to take it down first
            powered_off = [h for h in hosts if h in guests] if last else []
            hosts = [h for h in hosts if h not in powered_off]
            absent = [h for h in hosts if h not in running]
            if absent:
                raise single(
                    "E741",
                    Loc("netmanager"),
                    f"the agents of {', '.join(absent)} are not running and cannot be started "
                    f"({record.real} is gone)",
                    "restore real.xml, or netmanager agents status",
                    "destroy",
                    ApplyFailed,
                )
            transports = _agent_transports(real, {h: running[h] for h in hosts}, "destroy")
        wanted = host_candidates({}, topology, applied, transports)
        if transports:
            result = run(
                transaction(topology, transports, wanted, progress=progress, hook=hook, steps=steps)
            )
            counts["hosts"] = sum(result.changes.values())
        release_allocations(topology)
        remove_record(topology)
        if last:
            if local:
                forget_local_hosts()
            else:
                progress("agents")
                _stop_hosts()
            if powered_off:
                counts["guests"] = len(powered_off)  # powered off, all they held with them
            progress("infrastructure")
            counts["infrastructure"] = remove_infrastructure(record.infrastructure)
    changes = sum(n for phase, n in counts.items() if phase != "guests")
    return Outcome(topology, changes, counts, time.perf_counter() - start)
