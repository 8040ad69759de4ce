"""Plan, apply and destroy through the hosts' SNMP agents (seed 002: the manager never
touches a host itself; an agent on each host applies what it is sent).

The manager builds, for every host a topology touches, the host's whole candidate — the
:class:`~netmanager.hostconfig.HostConfig` of every topology applied there — and drives
all hosts at once (asyncio), NAPALM's way:

1. **load** each host's candidate (only the rows that differ from the agent's own) and
   **stage** it: the agent computes its changes without touching the host;
2. **commit** with a revert timer on every host that has changes;
3. **verify**: every committed host is pending confirmation with the staged version
   running;
4. **confirm** everywhere.

A failure before the confirmations discards the staged candidates and rolls back every
host that committed; a host whose agent died reverts by itself (its journal is restored
when the agent starts again, and the revert timer ends an unconfirmed commit).  Nothing
is ever left half-configured.

The emulated physical environment (the hosts' and switches' namespaces and the underlay
between them) is not any host's to build: it is built here, in the scope of the
infrastructure owner ``-``, before the agents are started inside it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from netmanager import agents as agent_procs
from netmanager.agentclient import OPER_STATUS, AgentClient, AgentError, TxnStatus
from netmanager.deploy import (
    ApplyFailed,
    Deployment,
    Outcome,
    Record,
    _refuse_mixed,
    _remove_record,
    _save_record,
    records,
)
from netmanager.errors import Diagnostic, Loc, NetmanagerError, Severity, single
from netmanager.gcpause import pausing
from netmanager.host.candidate import Candidate
from netmanager.host.rows import candidate_from_host_configs
from netmanager.hostconfig import HostConfig, Infrastructure
from netmanager.kernel import ApplyError, Engine, HostState, KernelStateError, Scope
from netmanager.kernel.journal import StepProgress
from netmanager.kernel.plan import Plan
from netmanager.mapping import Occupied, release_allocations, save_allocations
from netmanager.model import Real
from netmanager.render import render_infrastructure
from netmanager.state import apply_lock
from snmp_agents.credentials import CredentialsError

INFRASTRUCTURE_OWNER = "-"
#: seconds a host waits for the confirmation before it reverts a commit by itself
REVERT_S = 120
#: how long one transaction operation may take on one host
OPERATION_TIMEOUT_S = 900.0

T = TypeVar("T")
Progress = Callable[[str], None]
#: called with (event, host) as the transaction goes: "staged", "committing", ...
Hook = Callable[[str, str], None]


def _quiet(_: str) -> None:
    return None


def _no_hook(_event: str, _host: str) -> None:
    return None


# ------------------------------------------------------------------------ infrastructure


def _infra_scope(infra: Infrastructure) -> Scope:
    namespaces = [*infra.host_namespaces, *(ns for ns, _ in infra.switch_namespaces)]
    if infra.external_namespace:
        namespaces.append(infra.external_namespace)
    return Scope.of(INFRASTRUCTURE_OWNER, namespaces)


def _infrastructure_state(infra: Infrastructure | None) -> HostState:
    return HostState.checked(render_infrastructure(infra)) if infra is not None else HostState()


def build_infrastructure(infra: Infrastructure) -> int:
    """The emulated physical environment, in the infrastructure owner's scope only (the
    topologies' objects in the hosts' namespaces are the agents' and stay untouched)."""
    with Engine() as engine:
        return engine.apply(_infrastructure_state(infra), scope=_infra_scope(infra)).changes


def remove_infrastructure(infra: Infrastructure) -> int:
    with Engine() as engine:
        return engine.apply(HostState(), scope=_infra_scope(infra)).changes


def plan_infrastructure(infra: Infrastructure) -> Plan:
    with Engine() as engine:
        return engine.plan(_infrastructure_state(infra), scope=_infra_scope(infra))


# ------------------------------------------------------------------------------- hosts


def host_candidates(
    configs: dict[str, HostConfig], topology: str, applied: dict[str, Record], hosts: Iterable[str]
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


def _dom0s(real: Real, infra: Infrastructure, hosts: Iterable[str]) -> dict[str, str]:
    from netmanager.hostconfig import host_namespace

    known = set(infra.host_namespaces)
    out = {}
    for host in hosts:
        ns = host_namespace(host)
        if ns in known:
            out[host] = ns
    return out


def _running_agents() -> dict[str, agent_procs.AgentInfo]:
    """Every running agent netmanager started: of namespace hosts and of guest hosts."""
    from netmanager.guests import hosts as guest_hosts

    return agent_procs.running() | guest_hosts.running()


def _stop_hosts() -> None:
    """End the agents of namespace hosts and power off the guest hosts."""
    from netmanager.guests import hosts as guest_hosts

    agent_procs.stop_agents()
    guest_hosts.stop_guests()


def _clients(
    real: Real | None, infos: dict[str, agent_procs.AgentInfo], command: str = "apply"
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


async def _each(
    clients: dict[str, AgentClient], work: Callable[[str, AgentClient], Awaitable[T]]
) -> tuple[dict[str, T], dict[str, BaseException]]:
    """``work`` on every host at once; (results, failures) by host."""
    hosts = sorted(clients)
    results = await asyncio.gather(*(work(h, clients[h]) for h in hosts), return_exceptions=True)
    done: dict[str, T] = {}
    failed: dict[str, BaseException] = {}
    for host, result in zip(hosts, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, AgentError | OSError | asyncio.TimeoutError):
                raise result
            failed[host] = result
        else:
            done[host] = result
    return done, failed


@dataclass
class HostChanges:
    """What a host's agent staged: (+|~|-, object, reason) lines."""

    host: str
    changes: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class TransactionResult:
    changes: dict[str, int]
    lines: dict[str, list[tuple[str, str, str]]]
    #: hosts a plan did not ask, with why (a commit pending there)
    pending: dict[str, str] = field(default_factory=dict)


def _failure(topology: str, failed: dict[str, BaseException], undo: list[str]) -> ApplyFailed:
    diagnostics = [
        Diagnostic(
            Severity.ERROR,
            "E741",
            f"{topology}: {exc}",
            Loc("netmanager"),
            "every host was rolled back" if not undo else "",
        )
        for _, exc in sorted(failed.items())
    ]
    diagnostics += [
        Diagnostic(
            Severity.ERROR,
            "E711",
            f"an undo failed, the host is NOT as it was: {text}",
            Loc("netmanager"),
            "its agent reverts an unconfirmed commit by itself; netmanager plan shows what differs",
        )
        for text in undo
    ]
    return ApplyFailed("apply", diagnostics)


class KnownCandidates:
    """What the manager knows each agent holds, so that a load sends only the rows that
    differ without walking the agent's tables first.  Per host: the candidate and running
    configurations as of their version numbers (``nmTxnCandidateVersion`` and
    ``nmTxnRunningVersion``, which the agent bumps at every change); kept in
    ``<state>/agents/<host>/manager-candidate.json``.  When a version differs from the
    agent's, the agent's tables are walked instead."""

    FILE = "manager-candidate.json"

    def __init__(self, hosts: Iterable[str]) -> None:
        from netmanager.state import read_json

        self.known: dict[str, dict[str, Any]] = {}
        for host in hosts:
            doc = read_json(agent_procs.agents_dir() / host / self.FILE)
            if isinstance(doc, dict):
                self.known[host] = doc

    def candidate(self, host: str, candidate_version: int) -> Candidate | None:
        doc = self.known.get(host)
        if doc is None or doc.get("candidate_version") != candidate_version:
            return None
        return Candidate.from_json(doc["candidate"])

    def running(self, host: str, running_version: int) -> Candidate | None:
        doc = self.known.get(host)
        if doc is None or doc.get("running_version") != running_version:
            return None
        return Candidate.from_json(doc["running"])

    def remember(
        self, host: str, status: TxnStatus, candidate: Candidate | None, running: Candidate | None
    ) -> None:
        from netmanager.state import write_json

        path = agent_procs.agents_dir() / host / self.FILE
        if candidate is None or running is None:
            self.known.pop(host, None)
            path.unlink(missing_ok=True)
            return
        doc = {
            "candidate_version": status.candidate_version,
            "running_version": status.running_version,
            "candidate": candidate.to_json(),
            "running": running.to_json(),
        }
        self.known[host] = doc
        if path.parent.is_dir():
            write_json(path, doc)


class PendingCommit(AgentError):
    """A plan found a commit that an earlier apply left unconfirmed on the host: a plan
    does not roll it back (it changes nothing), so that host is not asked."""


async def _settled(client: AgentClient) -> TxnStatus:
    """The agent's transaction state once what is running has settled (nothing sent but
    GETs)."""
    status = await client.status()
    deadline = time.monotonic() + OPERATION_TIMEOUT_S
    while status.state in ("staging", "committing", "rollingBack"):
        if time.monotonic() > deadline:
            raise AgentError(client.host, f"the agent stays {status.state}")
        await asyncio.sleep(0.1)
        status = await client.status()
    return status


async def _clear_leftover(client: AgentClient) -> TxnStatus:
    """A commit that an earlier apply left unconfirmed (its manager or the agent died, and
    the apply lock is ours now): wait for what is running to settle, then roll it back."""
    status = await _settled(client)
    if status.state == "pendingConfirm":
        status = await client.operate("rollback", timeout_s=OPERATION_TIMEOUT_S)
    return status


async def _unchanged(client: AgentClient) -> TxnStatus:
    """For a plan: the settled state; a commit left pending is left alone (PendingCommit)."""
    status = await _settled(client)
    if status.state == "pendingConfirm":
        raise PendingCommit(
            client.host,
            "a commit that an earlier apply left unconfirmed is pending; its agent reverts "
            "it by itself when its timer ends, and apply rolls it back first",
        )
    return status


async def transaction(
    topology: str,
    clients: dict[str, AgentClient],
    wanted: dict[str, Candidate],
    *,
    revert_s: int = REVERT_S,
    progress: Progress = _quiet,
    hook: Hook = _no_hook,
    commit: bool = True,
    steps: StepProgress | None = None,
) -> TransactionResult:
    """Stage ``wanted`` on every host, then (``commit``) commit, verify and confirm; or
    roll every host back and raise ApplyFailed.  Without ``commit``: stage, read the
    changes and discard (a plan)."""
    known = KnownCandidates(clients)
    for client in clients.values():
        await client.open()
    try:
        progress(f"staging on {len(clients)} host(s)")

        async def stage(host: str, client: AgentClient) -> list[tuple[str, str, str]]:
            status = await (_clear_leftover(client) if commit else _unchanged(client))
            await client.load(wanted[host], known.candidate(host, status.candidate_version))
            status = await client.operate("stage", timeout_s=OPERATION_TIMEOUT_S)
            hook("staged", host)
            return await client.changes() if status.changes else []

        staged, failed = await _each(clients, stage)
        pending = {h: str(e) for h, e in failed.items() if isinstance(e, PendingCommit)}
        failed = {h: e for h, e in failed.items() if h not in pending}

        async def discard(host: str, client: AgentClient) -> None:
            before = await client.status()
            running = known.running(host, before.running_version)
            status = await client.operate("discard", timeout_s=OPERATION_TIMEOUT_S)
            # after a discard the agent's candidate is its running configuration again
            known.remember(host, status, running, running)

        changed = {h: c for h, c in staged.items() if c}
        if failed or not commit or not changed:
            await _each({h: clients[h] for h in staged}, discard)
            if failed:
                raise _failure(topology, failed, [])
            return TransactionResult({h: len(c) for h, c in staged.items()}, staged, pending)

        committing = {h: clients[h] for h in changed}
        unchanged = {h: clients[h] for h in staged if h not in changed}
        await _each(unchanged, discard)
        progress(f"committing on {len(committing)} host(s)")

        # every host's kernel steps, summed into one bar
        progress_of: dict[str, tuple[int, int]] = {}

        def report(host: str) -> Callable[[TxnStatus], None]:
            def seen(status: TxnStatus) -> None:
                if steps is None or not status.steps_total:
                    return
                if status.state == "committing":
                    progress_of[host] = (status.steps_done, status.steps_total)
                elif status.state == "pendingConfirm":  # done: all of its steps
                    progress_of[host] = (status.steps_total, status.steps_total)
                else:
                    return
                done = sum(d for d, _ in progress_of.values())
                steps(done, sum(t for _, t in progress_of.values()))

            return seen

        async def commit_host(host: str, client: AgentClient) -> None:
            hook("committing", host)
            await client.operate(
                "commit",
                revert_s=revert_s,
                timeout_s=OPERATION_TIMEOUT_S,
                on_status=report(host),
            )
            hook("committed", host)

        _, failed = await _each(committing, commit_host)

        async def verify(host: str, client: AgentClient) -> None:
            status = await client.status()
            if status.state != "pendingConfirm" or status.running_version != (
                status.candidate_version
            ):
                raise AgentError(
                    host,
                    f"after commit the agent is {status.state} running version "
                    f"{status.running_version}, not {status.candidate_version}",
                )

        if not failed:
            progress("verifying")
            _, failed = await _each(committing, verify)
        if failed:
            progress("rolling back")

            async def rollback(host: str, client: AgentClient) -> None:
                status = await client.status()
                if status.state in ("pendingConfirm", "committing", "rollingBack"):
                    if status.state == "committing":
                        status = await client.wait("commit", OPERATION_TIMEOUT_S)
                    await client.operate("rollback", timeout_s=OPERATION_TIMEOUT_S)
                elif status.state == "staged":
                    await client.operate("discard", timeout_s=OPERATION_TIMEOUT_S)
                known.remember(host, status, None, None)
                hook("rolled back", host)

            alive = {h: c for h, c in committing.items() if h not in failed}
            _, undo_failed = await _each(alive, rollback)
            raise _failure(topology, failed, [str(e) for e in undo_failed.values()])

        progress(f"confirming on {len(committing)} host(s)")

        async def confirm(host: str, client: AgentClient) -> None:
            status = await client.operate("confirm", timeout_s=OPERATION_TIMEOUT_S)
            known.remember(host, status, wanted[host], wanted[host])
            hook("confirmed", host)

        _, failed = await _each(committing, confirm)
        if failed:
            raise ApplyFailed(
                "apply",
                [
                    Diagnostic(
                        Severity.ERROR,
                        "E742",
                        f"{topology}: {exc}",
                        Loc("netmanager"),
                        "the host reverts its unconfirmed commit by itself; apply again",
                    )
                    for exc in failed.values()
                ],
            )
        return TransactionResult({h: len(c) for h, c in staged.items()}, staged)
    finally:
        for client in clients.values():
            client.close()


# ----------------------------------------------------------------------------- commands


def _touched_hosts(deployment: Deployment, previous: Record | None) -> list[str]:
    hosts = set(deployment.configs)
    if previous is not None:
        hosts |= set(previous.hosts)
    return sorted(hosts)


def _run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


@pausing
def apply(
    deployment: Deployment,
    *,
    progress: Progress = _quiet,
    hook: Hook = _no_hook,
    revert_s: int = REVERT_S,
    steps: StepProgress | None = None,
) -> Outcome:
    """Build the topology through the hosts' agents (started here where they are not
    running); raises ApplyFailed after every host was rolled back."""
    start = time.perf_counter()
    topology = deployment.topology
    infra = deployment.infrastructure
    real = deployment.model.real
    with apply_lock():
        applied = records()
        _refuse_mixed(applied, "agents", deployment.model.virtual.loc)
        first = not applied
        counts: dict[str, int] = {}
        progress("infrastructure")
        try:
            counts["infrastructure"] = build_infrastructure(infra)
        except (ApplyError, KernelStateError) as exc:
            raise single(
                "E710", Loc("netmanager"), f"{topology}: {exc}", "", "apply", ApplyFailed
            ) from exc
        try:
            hosts = _touched_hosts(deployment, applied.get(topology))
            progress("agents")
            infos = agent_procs.ensure_agents(real, _dom0s(real, infra, hosts))
            if infra.guests:
                from netmanager.guests import hosts as guest_hosts

                progress("guests")
                infos |= guest_hosts.ensure_guests(real, infra, hosts, progress=progress)
            wanted = host_candidates(deployment.configs, topology, applied, hosts)
            result = _run(
                transaction(
                    topology,
                    _clients(real, infos),
                    wanted,
                    revert_s=revert_s,
                    progress=progress,
                    hook=hook,
                    steps=steps,
                )
            )
        except NetmanagerError:
            if first:
                _stop_hosts()
                remove_infrastructure(infra)
            raise
        counts["hosts"] = sum(result.changes.values())
        save_allocations(topology, deployment.mapping.segments)
        _save_record(
            Record(
                topology=topology,
                real=str(Path(real.file).resolve()),
                virtual=str(Path(deployment.model.virtual.file).resolve()),
                hosts=deployment.configs,
                infrastructure=infra,
                occupied=Occupied.of([deployment.mapping]),
                placement=dict(deployment.mapping.placement),
                applied_at=time.time(),
                transport="agents",
                base_dir=real.base_dir,
            )
        )
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
class AgentsPlan:
    """What apply would change: the infrastructure's kernel plan, and each host's staged
    changes as its agent reported them."""

    topology: str
    infrastructure: Plan | None
    hosts: dict[str, list[tuple[str, str, str]]]
    unreachable: dict[str, str] = field(default_factory=dict)

    @property
    def changes(self) -> int:
        infra = len(self.infrastructure) if self.infrastructure is not None else 0
        return infra + sum(len(c) for c in self.hosts.values())

    def lines(self) -> list[str]:
        out = self.infrastructure.lines() if self.infrastructure is not None else []
        for host, changes in sorted(self.hosts.items()):
            out += [f"{op} {host}: {obj} ({why})" for op, obj, why in changes]
        out += [f"? {host}: not asked ({why})" for host, why in sorted(self.unreachable.items())]
        return out

    def summary(self) -> str:
        infra = len(self.infrastructure) if self.infrastructure is not None else 0
        hosts = sum(1 for c in self.hosts.values() if c)
        text = (
            f"{self.changes} change(s): {infra} to the emulated infrastructure, "
            f"{sum(len(c) for c in self.hosts.values())} on {hosts} host(s) through their agents"
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
                h: [{"op": op, "object": obj, "reason": why} for op, obj, why in c]
                for h, c in sorted(self.hosts.items())
            },
            "unreachable": self.unreachable,
        }


@pausing
def plan(deployment: Deployment) -> AgentsPlan:
    """Ask every running agent what the topology would change on its host (stage, read the
    changes, discard); hosts without a running agent would get everything (shown as such).
    The kernel is not changed, nor is any agent's running configuration."""
    topology = deployment.topology
    infra = deployment.infrastructure
    real = deployment.model.real
    with apply_lock():
        applied = records()
        hosts = _touched_hosts(deployment, applied.get(topology))
        infra_plan = plan_infrastructure(infra)
        infos = {h: a for h, a in _running_agents().items() if h in hosts}
        wanted = host_candidates(deployment.configs, topology, applied, hosts)
        result = _run(transaction(topology, _clients(real, infos), wanted, commit=False))
    lines = dict(result.lines)
    unreachable = dict(result.pending)
    for host in hosts:
        if host in infos:
            continue
        config = deployment.configs.get(host)
        if topology in applied:
            # applied before, its agent stopped since: what differs is not known here
            lines[host] = []
            unreachable[host] = "its agent is not running; apply starts it again"
        else:
            lines[host] = (
                [("+", f"everything of '{topology}' ({len(config.vms)} VMs)", "no agent yet")]
                if config is not None
                else []
            )
            unreachable[host] = "its agent starts with apply"
    return AgentsPlan(topology, infra_plan, lines, unreachable)


@pausing
def destroy(
    topology: str,
    *,
    progress: Progress = _quiet,
    hook: Hook = _no_hook,
    steps: StepProgress | None = None,
) -> Outcome:
    """Remove the topology from every host through the agents; the last topology takes the
    agents and the emulated infrastructure with it, and powers off its guest hosts without
    taking its objects down inside them first (phase ``guests``: the guests powered off)."""
    from netmanager.loader import load

    start = time.perf_counter()
    with apply_lock():
        applied = records()
        record = applied[topology]
        model = (
            load(record.real, record.virtual, base_dir=record.base_dir or None)
            if Path(record.real).exists()
            else None
        )
        real = model.real if model is not None else None
        counts: dict[str, int] = {}
        hosts = sorted(record.hosts)
        running = {h: a for h, a in _running_agents().items() if h in hosts}
        if real is not None:
            missing = _dom0s(real, record.infrastructure, [h for h in hosts if h not in running])
            if missing:
                running |= agent_procs.ensure_agents(real, missing)
        # a guest host that does not run holds nothing any more (its kernel state was in
        # the guest's memory): there is nothing to remove there
        guests = set(record.infrastructure.guest_by_name)
        hosts = [h for h in hosts if h in running or h not in guests]
        # the last topology powers the guest hosts off, and what it built inside them goes
        # with their kernels: their agents are not asked to take it down first
        last = len(applied) == 1
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
        wanted = host_candidates({}, topology, applied, hosts)
        clients = _clients(real, {h: running[h] for h in hosts}, "destroy")
        if clients:
            result = _run(
                transaction(topology, clients, wanted, progress=progress, hook=hook, steps=steps)
            )
            counts["hosts"] = sum(result.changes.values())
        release_allocations(topology)
        _remove_record(topology)
        if last:
            progress("agents")
            _stop_hosts()
            if powered_off:
                counts["guests"] = len(powered_off)  # powered off, all they held with them
            progress("infrastructure")
            counts["infrastructure"] = remove_infrastructure(record.infrastructure)
    changes = sum(n for phase, n in counts.items() if phase != "guests")
    return Outcome(topology, changes, counts, time.perf_counter() - start)


# ------------------------------------------------------------------------------- status

#: nmLinkEntry columns read for status: vm, network, rate, delay, operStatus, in/out octets
_LINK_COLUMNS = {
    1: "vm",
    2: "network",
    4: "rate_kbps",
    5: "delay_us",
    8: "oper",
    9: "in_octets",
    10: "out_octets",
}


async def _links_of(client: AgentClient) -> dict[tuple[str, str], dict[str, Any]]:
    """The agent's link table, by (qualified VM, qualified network)."""
    from snmp_agents import mib

    entry = mib.oid_of("nmLinkEntry")
    rows: dict[int, dict[str, Any]] = {}
    async with client:
        for column, name in _LINK_COLUMNS.items():
            for oid, value in await client.walk((*entry, column)):
                cell: Any
                if name in ("vm", "network"):
                    cell = bytes(value.asOctets()).decode("utf-8", "replace")
                elif name == "oper":
                    cell = OPER_STATUS.get(int(value), str(int(value)))
                else:
                    cell = int(value)
                rows.setdefault(oid[-1], {})[name] = cell
    return {
        (row.get("vm", ""), row.get("network", "")): {
            k: v for k, v in row.items() if k not in ("vm", "network")
        }
        for row in rows.values()
        if row.get("vm")
    }


def status(topology: str | None = None) -> list[dict[str, Any]]:
    """:func:`netmanager.deploy.status`, and for topologies applied through agents what
    each host's agent reports of every VM port (its link table: operational state,
    configured rate and delay, octet counters) and where the agent listens."""
    from netmanager import deploy

    documents = deploy.status(topology)
    applied = records()
    through = [d for d in documents if applied[d["topology"]].transport == "agents"]
    if not through:
        return documents
    hosts = sorted({vm["host"] for d in through for vm in d["vms"]})
    infos = {h: a for h, a in _running_agents().items() if h in hosts}
    clients = _clients(None, infos, "status")  # E741 where the credentials are refused
    links, failed = _run(_each(clients, lambda _host, client: _links_of(client)))
    for document in through:
        name = document["topology"]
        guests = set(applied[name].infrastructure.guest_by_name)
        document["agents"] = {
            h: (f"{infos[h].address}:{infos[h].port}" if h in links else None)
            for h in sorted({vm["host"] for vm in document["vms"]})
        }
        for vm in document["vms"]:
            table = links.get(vm["host"])
            for interface in vm["interfaces"]:
                key = (f"{name}/{vm['name']}", f"{name}/{interface['network']}")
                # None: the agent did not answer; {}: it has no such link (yet)
                interface["link"] = table.get(key, {}) if table is not None else None
                if vm["host"] in guests:  # a guest's kernel: what its agent reads there
                    found = interface["link"]
                    interface["state"] = (
                        "unreachable" if found is None else str(found.get("oper", "missing"))
                    )
        if failed:
            document["agent_errors"] = {h: str(e) for h, e in sorted(failed.items())}
    return documents
