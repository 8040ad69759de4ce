"""The agent's backend for real (and emulated) hosts: netmanager's kernel engine.

``KernelBackend(dom0, state_dir)`` realises a :class:`Candidate` — the
:class:`~netmanager.compile.hostconfig.HostConfig` of every topology the host serves (see
:mod:`netmanager.host.rows`) — with the same pipeline as ``netmanager apply``:
:func:`~netmanager.compile.desired.render_host` → desired :class:`HostState` → the engine's
observe/plan/apply, plus the host's iptables/ebtables chains
(:func:`~netmanager.host.firewall.desired_rulesets`) and the NAT gateways' rules.

Ownership: each topology is planned and applied with its own
:class:`~netmanager.kernel.Scope` — owner = the topology, owning its VM and NAT gateway
namespaces, sharing the dom0 (and the emulated outside world).  The underlay and the
switches belong to the infrastructure owner ``-``; the agent never sees nor touches them.

Journal (``kernel-backend.json`` in the state directory, replaced atomically): before a
commit or rollback touches the host, the file records the configuration to restore
(``undo_point``), the one being applied (``target``) and ``in_progress``.  Every change
is a convergence to a whole candidate, so undoing — after a failed step, on rollback, or
in :meth:`recover` after a crash — is converging to the configuration before.

Scoped changes: ``stage(candidate, ports=...)`` changes only some VM ports' links and what
hangs on them (their qdiscs: a new rate or delay), observed and planned in a
:meth:`Scope.of_links <netmanager.kernel.Scope.of_links>` without the rest of the host;
the candidate must differ from the running one in those ports' shaping only
(:func:`~netmanager.host.rows.check_scoped`).  The journal keeps the ports, so that a
rollback or a recovery undoes them in the same scope.

Threads: namespace switching is per thread, so the :class:`Engine` is created by the
first call and refuses to be used from another thread (the agent calls the backend from
one worker thread).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from pathlib import Path
from typing import Any

from netmanager.compile.desired import RenderError, render_host
from netmanager.compile.hostconfig import HostConfig, Port
from netmanager.host import runtime
from netmanager.host.candidate import Candidate, Change
from netmanager.host.domainhost import DomainHost, with_taps
from netmanager.host.firewall import (
    Firewall,
    FirewallChange,
    FirewallError,
    desired_rulesets,
    ensure_gateway,
)
from netmanager.host.protocol import (
    GUEST_ANSWERING,
    GUEST_CONFIGURED,
    GUEST_SILENT,
    GUEST_UNKNOWN,
    Adoption,
    BackendError,
    UndoFailed,
)
from netmanager.host.rows import (
    PortKey,
    candidate_from_host_configs,
    check_scoped,
    host_configs_from_candidate,
    port_links,
)
from netmanager.host.runtime import PortOverride
from netmanager.hypervisor.domains import DomainProblem, GuestNetwork
from netmanager.hypervisor.keeper import KeeperError
from netmanager.hypervisor.migration import MigrationRequest, MigrationResult
from netmanager.kernel import (
    ApplyError,
    Engine,
    Faults,
    HostState,
    KernelStateError,
    Namespace,
    Scope,
    StalePlanError,
    arp,
)
from netmanager.kernel.journal import StepProgress
from netmanager.kernel.objects import link_key
from netmanager.statedir import write_json

log = logging.getLogger(__name__)

STATE_FILE = "kernel-backend.json"
FAULT_FILE = "inject-fault"  # tests: the k-th kernel step of the next commit fails
_OPS = {"+": "add", "~": "modify", "-": "remove"}
RENDERED_MAX = 16
#: an ARP check of a guest netmanager cannot configure is done again after this long (the
#: link poll asks), each waiting this long for its answer
ARP_RECHECK_S = 10.0
ARP_TIMEOUT_S = 0.5
#: how long a commit adopting a live-migrated libvirt domain waits for its taps, which the
#: target's libvirt makes when the incoming migration starts
ADOPT_TAP_WAIT_S = 15.0


def _link_here(ifname: str) -> None:
    """OSError ENODEV unless link ``ifname`` is in this process's network namespace."""
    try:
        socket.if_nametoindex(ifname)
    except OSError as exc:
        raise OSError(errno.ENODEV, f"no link {ifname}") from exc


_FAILURES = (
    ApplyError,
    KernelStateError,
    StalePlanError,
    FirewallError,
    RenderError,
    OSError,
    KeeperError,
    DomainProblem,
)


def _no_check(_what: str) -> None:
    return None


@dataclass
class StepFaults:
    """Fail the ``fail_at``-th step of a commit, counting kernel steps, firewall table
    replacements and NAT gateway rules in the order they run (fault injection for tests).
    One object may be shared by several commits run one after the other, which then
    count on from each other (an apply's infrastructure, then host by host)."""

    fail_at: int
    done: int = 0
    #: fail the undo too: the kernel journal's first undo step, and the first step of the
    #: convergence back to the configuration before the commit (E711's test)
    undo_too: bool = False

    def check(self, what: str) -> None:
        """A step that is not a kernel step is about to run: fail it if it is the one."""
        index, self.done = self.done, self.done + 1
        if index == self.fail_at:
            raise FirewallError(f"injected fault at step {index} ({what})")

    def kernel(self) -> Faults:
        """The kernel engine's faults, counting on the same steps."""

        def fail(_index: int, _change: object) -> bool:
            index, self.done = self.done, self.done + 1
            return index == self.fail_at

        return Faults(fail_at=fail, fail_undo_at=0 if self.undo_too else None)


@dataclass(frozen=True)
class _Domains:
    """What a target's domains are, as resolved before any change: the taps libvirt must
    plug (dom0, name), what libvirt would do, which domains have a guest agent and which
    run already."""

    unplugged: set[tuple[str, str]] = field(default_factory=set)
    changes: list[Change] = field(default_factory=list)
    agents: dict[str, bool] = field(default_factory=dict)
    active: dict[str, bool] = field(default_factory=dict)


def _domain_ports(
    configs: Iterable[HostConfig], agents: dict[str, bool]
) -> dict[tuple[str, str], tuple[ipaddress.IPv4Address, str, bool]]:
    """Each domain VM's port of ``configs`` (named after its tap): (dom0, tap) ->
    (address, MAC, whether its domain has a guest agent netmanager configures it by)."""
    out = {}
    for config in configs:
        for vm in config.vms:
            if vm.domain is None:
                continue
            agent = agents.get(vm.domain.name, False)
            for port in config.ports:
                if port.vm == vm.vm:
                    out[(config.dom0, port.vif)] = (port.ip.ip, port.mac, agent)
    return out


@dataclass(frozen=True)
class _Target:
    """A candidate and the HostConfigs it carries, by topology."""

    candidate: Candidate
    configs: dict[str, HostConfig]
    #: the runtime overrides that hold for it (on its configs already)
    overrides: dict[PortKey, PortOverride] = field(default_factory=dict)


class KernelBackend:
    """A :class:`~netmanager.host.protocol.HostBackend` over netmanager's kernel engine."""

    def __init__(
        self,
        dom0: str,
        state_dir: Path,
        engine: Engine | None = None,
        hypervisor: DomainHost | None = None,
    ) -> None:
        self.dom0 = dom0
        #: a libvirt host's hypervisor: its VMs are domains (None: VMs are namespaces)
        self.hypervisor = hypervisor
        self.path = state_dir / STATE_FILE
        self._engine = engine
        self._thread: int | None = None
        self.running_candidate = Candidate()
        self.undo_point: Candidate | None = None
        self.target: Candidate | None = None
        self.in_progress: str | None = None
        #: the ports a commit in progress or pending confirmation is scoped to (None: all)
        self.ports: tuple[PortKey, ...] | None = None
        self.staged: _Target | None = None
        self.staged_ports: tuple[PortKey, ...] | None = None
        self.staged_adopt: Adoption | None = None
        #: the migrating VM the commit in progress or pending confirmation took (its
        #: undo moves the VM's links back to the source's dom0 first)
        self.adopting: Adoption | None = None
        #: namespaces no scope owns while an adoption is undone (the VM's: its source's)
        self._disowned: frozenset[str] = frozenset()
        #: desired states by (configuration object, scope): see _desired
        self._rendered: dict[tuple[int, Scope], tuple[HostConfig, HostState]] = {}
        #: configurations moved into this agent's dom0 (see _own), by the original's id
        self._rebound: dict[int, tuple[HostConfig, HostConfig]] = {}
        #: runtime changes of VM ports, kept over the topology (netmanager.host.runtime)
        self.overrides: dict[PortKey, PortOverride] = {}
        #: each domain VM's port as last converged: (dom0, tap) -> (address, MAC, whether
        #: netmanager configures its guest through qemu-guest-agent)
        self._domain_ports: dict[tuple[str, str], tuple[ipaddress.IPv4Address, str, bool]] = {}
        #: the last ARP check of each port of a guest netmanager cannot configure:
        #: (dom0, tap) -> (when, GUEST_ANSWERING or GUEST_SILENT)
        self._arp_seen: dict[tuple[str, str], tuple[float, int]] = {}
        self._arp_lock = threading.Lock()  # the link poll's thread and the backend's
        self.steps_done = 0
        self.steps_total = 0
        #: called with (steps done, steps in all) as a commit's kernel steps go
        self.on_steps: StepProgress | None = None
        #: faults for the next commit (tests; see :class:`StepFaults`)
        self.faults: StepFaults | None = None
        self._stamp: tuple[int, int, int] | None = None  # the journal as last read or written
        self._load()

    # ------------------------------------------------------------------ persistence

    def _journal_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _load(self) -> None:
        self._stamp = self._journal_stamp()
        self.running_candidate = Candidate()
        self.undo_point = self.target = None
        self.in_progress = None
        self.ports = None
        self.adopting = None
        self.overrides = {}
        if self._stamp is None:
            return
        doc = json.loads(self.path.read_text())
        self.running_candidate = Candidate.from_json(doc.get("running"))
        undo = doc.get("undo_point")
        self.undo_point = Candidate.from_json(undo) if undo is not None else None
        target = doc.get("target")
        self.target = Candidate.from_json(target) if target is not None else None
        self.in_progress = doc.get("in_progress")
        ports = doc.get("ports")
        self.ports = tuple((t, v, n) for t, v, n in ports) if ports is not None else None
        adopting = doc.get("adopting")
        self.adopting = Adoption.from_text(adopting) if adopting else None
        self.overrides = runtime.from_json(doc.get("overrides", ()))

    def reload_if_changed(self) -> bool:
        """Read the journal again if someone else (another manager process on the same
        state) wrote it since this backend did; whether it did."""
        if self._journal_stamp() == self._stamp:
            return False
        self._load()
        self.staged = None
        self.staged_ports = None
        self.staged_adopt = None
        return True

    def prune(self) -> None:
        """Let go of namespaces that are gone (in the engine's thread; see
        :meth:`Engine.prune <netmanager.kernel.engine.Engine.prune>`)."""
        if self._engine is not None and self._thread == threading.get_ident():
            self._engine.prune()

    def _save(self) -> None:
        doc: dict[str, Any] = {
            "running": self.running_candidate.to_json(),
            "undo_point": self.undo_point.to_json() if self.undo_point is not None else None,
            "target": self.target.to_json() if self.target is not None else None,
            "in_progress": self.in_progress,
            "ports": [list(p) for p in self.ports] if self.ports is not None else None,
            "adopting": self.adopting.text() if self.adopting is not None else None,
            "overrides": runtime.to_json(self.overrides),
        }
        write_json(self.path, doc, compact=True)
        self._stamp = self._journal_stamp()

    # ------------------------------------------------------------------ helpers

    def engine(self) -> Engine:
        """The engine, created in (and bound to) the thread of the first call."""
        me = threading.get_ident()
        if self._thread is None:
            self._thread = me
        elif self._thread != me:
            raise BackendError("the kernel engine is bound to another thread")
        if self._engine is None:
            self._engine = Engine()
        return self._engine

    def close(self) -> None:
        if self._engine is not None and self._thread == threading.get_ident():
            self._engine.close()
            self._engine = None
        if self.hypervisor is not None:
            self.hypervisor.close()

    def _own(self, config: HostConfig) -> HostConfig:
        """``config`` in this host's dom0: a real host's configuration names the host's
        root namespace (""), which an agent given another --dom0 (a namespace set aside
        for netmanager's bridges and ports) maps onto its own."""
        if config.dom0 or not self.dom0:
            return config
        found = self._rebound.get(id(config))
        if found is not None and found[0] is config:
            return found[1]
        mine = dataclass_replace(config, dom0=self.dom0)
        if len(self._rebound) >= RENDERED_MAX:
            self._rebound.clear()
        self._rebound[id(config)] = (config, mine)
        return mine

    def _target(self, candidate: Candidate, own: list[HostConfig] | None = None) -> _Target:
        """The host's configurations of ``candidate``, in its dom0 (``own``: those, when
        the caller has them already), with the runtime overrides that still hold for it on
        top."""
        configs = own if own is not None else self._configs(candidate)
        overrides = runtime.prune(self.overrides, runtime.ports_by_key(configs))
        configs = [runtime.apply_overrides(c, overrides) for c in configs]
        for config in configs:
            if config.dom0 != self.dom0:
                raise BackendError(
                    f"topology '{config.topology}' is for dom0 '{config.dom0}' "
                    f"(host '{config.host}'), this agent serves '{self.dom0}'"
                )
        return _Target(candidate, {c.topology: c for c in configs}, overrides)

    def _configs(self, candidate: Candidate) -> list[HostConfig]:
        """The host's configurations of ``candidate``, in its dom0; BackendError when the
        candidate does not decode."""
        try:
            return [self._own(c) for c in host_configs_from_candidate(candidate)]
        except ValueError as exc:
            raise BackendError(str(exc)) from exc

    def _known(self) -> list[HostConfig]:
        """Every HostConfig the host may carry objects of (running, undo point, target)."""
        out: list[HostConfig] = []
        for cand in (self.running_candidate, self.undo_point, self.target):
            if cand is None:
                continue
            try:
                out.extend(self._own(c) for c in host_configs_from_candidate(cand, check=False))
            except ValueError:  # pragma: no cover - journaled candidates were staged
                continue
        return out

    def _scope(self, topology: str, configs: Iterable[HostConfig]) -> Scope:
        owned: set[str] = set()
        shared = {self.dom0}
        adopts: set[tuple[str, str]] = set()
        for c in configs:
            if c.topology != topology:
                continue
            domains = c.domain_vms
            owned |= {v.namespace for v in c.vms if v.vm not in domains}
            owned |= {p.vm_namespace for p in c.ports if p.vm not in domains}
            owned |= {n.namespace for n in c.nats}
            shared |= {n.external_namespace for n in c.nats if n.external_namespace}
            # a domain's taps, in the dom0 the scope shares: adopted by name
            adopts |= {(c.dom0, p.vif) for p in c.ports if p.vm in domains}
        return Scope.of(topology, owned - shared - self._disowned, shared, adopts)

    def _desired(self, config: HostConfig | None, scope: Scope) -> HostState:
        """The kernel objects of one topology's configuration, rendered and validated once
        per configuration object (an unchanged document decodes to the same object:
        :func:`~netmanager.host.rows.host_configs_from_candidate`)."""
        if config is None:
            return HostState()
        key = (id(config), scope)
        found = self._rendered.get(key)
        if found is not None and found[0] is config:
            return found[1]
        objects = [
            o
            for o in render_host(config)
            if not (isinstance(o, Namespace) and o.name in scope.shared)
        ]
        state = HostState.checked(objects, scope)
        if len(self._rendered) >= RENDERED_MAX:
            self._rendered.clear()
        self._rendered[key] = (config, state)
        return state

    def _work(
        self, target: _Target, extra: Iterable[HostConfig] = ()
    ) -> list[tuple[str, HostConfig | None, Scope]]:
        """(topology, its config or None when it goes, its scope), target's first."""
        known = [*self._known(), *target.configs.values(), *extra]
        topologies = sorted({c.topology for c in known})
        return [(t, target.configs.get(t), self._scope(t, known)) for t in topologies]

    def _firewall(
        self,
        topology: str,
        config: HostConfig | None,
        *,
        apply: bool,
        check: Callable[[str], None] | None = None,
    ) -> list[FirewallChange]:
        observed = Firewall(self.dom0).observe()
        ipt, ebt = desired_rulesets(observed, topology, config)
        changes = [
            FirewallChange(self.dom0, "iptables", ipt, observed[0]),
            FirewallChange(self.dom0, "ebtables", ebt, observed[1]),
        ]
        if apply:
            for change in changes:
                if change.changed:
                    if check is not None:
                        check(f"{change.table} in {self.dom0}")
                    Firewall(self.dom0).replace(change.table, change.desired, change.observed)
        return changes

    def _progress(self, done: int, total: int) -> None:
        """The engine's step progress: served as nmTxnStepsDone/nmTxnStepsTotal by the
        agent, passed on to :attr:`on_steps` (the local transport's progress bar)."""
        self.steps_done, self.steps_total = done, total
        if self.on_steps is not None:
            self.on_steps(done, total)

    def _injected_fault(self) -> StepFaults | None:
        """Faults for the next commit: those set on :attr:`faults` (the manager's local
        transport), or — a test hook for agents — a file ``inject-fault`` in the state
        directory holding k (consumed), so that tests can check that a host rolls back
        exactly from any step."""
        if self.faults is not None:
            faults, self.faults = self.faults, None
            return faults
        path = self.path.parent / FAULT_FILE
        try:
            k = int(path.read_text().strip())
        except (OSError, ValueError):
            return None
        path.unlink(missing_ok=True)
        return StepFaults(k)

    def _with_domains(self, target: _Target) -> tuple[_Target, _Domains]:
        """``target`` with each domain port named as its tap is, and what the domains are
        (:class:`_Domains`); raises DomainProblem naming each VM whose domain cannot be
        wired, before any change."""
        hv = self.hypervisor
        if hv is None or not any(c.domain_vms for c in target.configs.values()):
            return target, _Domains()
        res = hv.resolve(target.configs.values())
        res.raise_if_problems()
        configs = {t: with_taps(c, res.taps, res.macs) for t, c in target.configs.items()}
        unplugged = {
            (configs[t].dom0, res.taps[(t, vm, network)]) for t, vm, network in res.unplugged
        }
        ops = {"define": "add", "start": "modify", "plug": "modify"}
        changes = [Change(ops[op], f"{op} {what}", "libvirt") for op, what in res.changes]
        return _Target(target.candidate, configs, target.overrides), _Domains(
            unplugged, changes, dict(res.agents), dict(res.active)
        )

    def _pieces(
        self, configs: dict[str, HostConfig], ports: Iterable[PortKey]
    ) -> list[tuple[str, HostState, Scope]]:
        """For a change scoped to ``ports``: per topology, the desired state of those
        ports' links and what hangs on them, and the scope of those links."""
        named: dict[str, set[tuple[str, str]]] = {}
        for topology, vm, network in ports:
            named.setdefault(topology, set()).add((vm, network))
        out = []
        for topology, chosen in sorted(named.items()):
            config = configs.get(topology)
            if config is None:
                continue
            links = [
                link
                for p in config.ports
                if (p.vm, p.network) in chosen
                for link in port_links(config, p)
            ]
            scope = Scope.of_links(topology, links)
            out.append((topology, scope.select(render_host(config)), scope))
        return out

    def _converge(
        self,
        target: _Target,
        faults: StepFaults | None = None,
        ports: Iterable[PortKey] | None = None,
        *,
        every_guest: bool = False,
        adopt: Adoption | None = None,
    ) -> int:
        """Make the host carry exactly ``target`` (every known topology converged, or
        only ``ports``' links); raises one of _FAILURES.  Returns the number of kernel
        changes made.  ``every_guest``: set the network inside every domain's guest, not
        only those whose topology changes (the host takes its configuration over again).
        ``adopt``: a migrating VM's links are taken from its source's dom0 on the way
        (:meth:`_arrive`)."""
        engine = self.engine()
        if ports is not None:
            self.steps_done = self.steps_total = 0
            kernel_faults = faults.kernel() if faults is not None else None
            target, _ = self._with_domains(target)
            done = sum(
                engine.apply(
                    desired, scope=scope, progress=self._progress, faults=kernel_faults
                ).changes
                for _topology, desired, scope in self._pieces(target.configs, ports)
            )
            if self.hypervisor is not None and any(c.domain_vms for c in target.configs.values()):
                # a domain's port taken down or up: its guest's NIC loses or gets its carrier
                check = faults.check if faults is not None else _no_check
                done += self.hypervisor.link_states(target.configs.values(), check)
            return done
        done = 0
        self.steps_done = self.steps_total = 0
        check = faults.check if faults is not None else _no_check
        kernel_faults = faults.kernel() if faults is not None else None
        hv = self.hypervisor
        if hv is not None:
            # domains first let go of what they no longer are (an attached NIC back on
            # its own bridge before netmanager's bridge goes), then each port's tap is
            # found, before any kernel change
            done += hv.leave(self._known(), target.configs.values(), check)
        target_configs = dict(target.configs)  # as the candidate has them
        target, domains = self._with_domains(target)
        self._domain_ports = _domain_ports(target.configs.values(), domains.agents)
        unplugged = domains.unplugged
        work = self._work(target)
        # inside the guests: those of the topologies that change, of the domains just
        # started, or every one when the host takes its configuration over again
        # (recover): each costs its guest's emulated CPU.  The guests of domains that run
        # already are set while the host's side is built (they do not depend on it)
        running = {
            c.topology: c for c in host_configs_from_candidate(self.running_candidate, check=False)
        }

        def changed(net: GuestNetwork) -> bool:
            return every_guest or running.get(net.topology) != target_configs.get(net.topology)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="guests") as guests:
            early = (
                guests.submit(
                    hv.configure,
                    target.configs.values(),
                    domains.agents,
                    check,
                    lambda net: domains.active.get(net.domain, False) and changed(net),
                )
                if hv is not None and domains.agents
                else None
            )
            try:
                arrive = (
                    None
                    if adopt is None
                    else lambda: self._arrive(adopt, target, kernel_faults, check)
                )
                done += self._converge_kernel(target, work, unplugged, kernel_faults, check, arrive)
                if hv is not None and any(c.domain_vms for c in target.configs.values()):
                    joined, _touched = hv.join(target.configs.values(), check)
                    done += joined
                    if joined or unplugged:
                        # the taps of domains just started or plugged: adopted, marked,
                        # shaped
                        for _topology, config, scope in work:
                            done += engine.apply(
                                self._desired(config, scope),
                                scope=scope,
                                progress=self._progress,
                                faults=kernel_faults,
                            ).changes
                    done += hv.configure(
                        target.configs.values(),
                        domains.agents,
                        check,
                        lambda net: not domains.active.get(net.domain, False),
                    )
                    done += hv.link_states(target.configs.values(), check)
            finally:
                if early is not None:
                    done += early.result()
        for topology, config, _ in work:
            if config is None:
                self._firewall(topology, None, apply=True, check=check)
        for config in target.configs.values():
            for nat in config.nats:
                check(f"NAT gateway rules in {nat.namespace}")
                ensure_gateway(nat.namespace)
        if any(not agent for _, _, agent in self._domain_ports.values()):
            # the guests netmanager cannot configure: checked now, so that what the
            # manager reads right after the commit is this commit's
            self.guest_addresses(max_age_s=0.0)
        return done

    def guest_addresses(
        self, max_age_s: float = ARP_RECHECK_S, timeout_s: float = ARP_TIMEOUT_S
    ) -> dict[str, int]:
        """Whether each domain VM's guest carries its address, by link key
        (``namespace/ifname``, as the monitor's samples): GUEST_CONFIGURED where
        netmanager sets it through qemu-guest-agent, else an ARP probe out of the tap
        (answered by the NIC's MAC: GUEST_ANSWERING, else GUEST_SILENT), done again when
        the last one is older than ``max_age_s``.  Called by the agent's link poll (its
        thread) and at the end of a convergence."""
        with self._arp_lock:
            return self._guest_addresses(max_age_s, timeout_s)

    def _guest_addresses(self, max_age_s: float, timeout_s: float) -> dict[str, int]:
        ports = self._domain_ports
        now = time.monotonic()
        stale: dict[str, dict[str, list[ipaddress.IPv4Address]]] = {}
        for (namespace, tap), (address, _mac, agent) in ports.items():
            seen = self._arp_seen.get((namespace, tap))
            if not agent and (seen is None or now - seen[0] >= max_age_s):
                stale.setdefault(namespace, {}).setdefault(tap, []).append(address)
        for namespace, targets in stale.items():
            try:
                found = arp.who_has(namespace, targets, timeout_s)
            except OSError as exc:
                log.warning("ARP check in %s failed: %s", namespace or "dom0", exc)
                continue
            for (tap, _address), macs in found.items():
                mac = ports[(namespace, tap)][1].lower()
                state = GUEST_ANSWERING if mac in macs else GUEST_SILENT
                self._arp_seen[(namespace, tap)] = (time.monotonic(), state)
        for key in set(self._arp_seen) - set(ports):
            del self._arp_seen[key]
        out = {}
        for (namespace, tap), (_address, _mac, agent) in ports.items():
            seen = self._arp_seen.get((namespace, tap))
            state = GUEST_CONFIGURED if agent else (seen[1] if seen else GUEST_UNKNOWN)
            out[f"{namespace}/{tap}"] = state
        return out

    def _converge_kernel(
        self,
        target: _Target,
        work: list[tuple[str, HostConfig | None, Scope]],
        unplugged: set[tuple[str, str]],
        kernel_faults: Faults | None,
        check: Callable[[str], None],
        arrive: Callable[[], int] | None = None,
    ) -> int:
        """The firewall's rules, then (``arrive``) a migrating VM's links taken in and
        wired, then each topology's kernel objects (less the taps libvirt must plug
        first)."""
        engine = self.engine()
        done = 0
        # rules first: a port never exists without its chain
        for topology, config, _ in work:
            if config is not None:
                self._firewall(topology, config, apply=True, check=check)
        if arrive is not None:
            done += arrive()
        for _topology, config, scope in work:
            desired = self._desired(config, scope)
            if unplugged:
                # taps libvirt plugs (after this) wait until it has: moved behind
                # libvirt's back, its own move would fail and its view of the domain lie
                desired = desired.without_links(unplugged)
            result = engine.apply(
                desired, scope=scope, progress=self._progress, faults=kernel_faults
            )
            done += result.changes
        return done

    # ------------------------------------------------------------------ the contract

    def runtime(self, changes: Mapping[PortKey, PortOverride]) -> int:
        """Change running VM ports at once, in place (a TBF or NetEm changed keeps its
        handle: nothing queued is dropped), kept as overrides of the topology; only those
        ports' links are looked at.  Returns the number of kernel changes; raises
        BackendError (every change undone) for a port the host does not run, or when the
        kernel refuses."""
        if self.in_progress is not None or self.undo_point is not None:
            raise BackendError(
                "a commit is in progress or awaits its confirmation: runtime changes wait"
            )
        own = self._configs(self.running_candidate)
        ports = runtime.ports_by_key(own)  # as the topology has them
        unknown = sorted(k for k in changes if k not in ports)
        if unknown:
            topology, vm, network = unknown[0]
            raise BackendError(f"this host runs no port of VM '{vm}' in '{topology}/{network}'")
        before = self.overrides
        current = runtime.prune(before, ports)
        try:  # a pair the port has no class for
            self.overrides = runtime.merge(current, changes, ports)
        except ValueError as exc:
            raise BackendError(str(exc)) from exc
        keys = sorted(changes)
        try:
            done = self._converge(self._target(self.running_candidate, own), ports=keys)
        except Exception as exc:  # _FAILURES, or a bug: undone either way
            self.overrides = before
            try:
                self._converge(self._target(self.running_candidate, own), ports=keys)
            except Exception as again:
                raise UndoFailed(
                    f"a runtime change failed ({exc}) and undoing it failed too: {again}"
                ) from exc
            if "netem" in str(exc).lower() and "unknown" in str(exc).lower():
                raise BackendError(
                    "this host's kernel has no NetEm (sch_netem): no delay, jitter or loss; "
                    "nothing changed"
                ) from exc
            raise BackendError(f"runtime change failed, undone: {exc}") from exc
        self._save()
        return done

    def migrate_domain(self, request: MigrationRequest) -> MigrationResult:
        """Live-migrate a domain this host runs and netmanager defined (``request``, the
        target's libvirt URI and the NICs' taps there), through the host's keeper: the
        agent's ``nmTxnMigrate``, in a thread of its own beside the backend's (libvirt's
        call takes as long as the migration).  The running configuration does not change
        here: the manager's next commit (the VM gone) cleans up after it.  BackendError
        before libvirt is asked; MigrationError saying where the domain is."""
        if self.hypervisor is None:
            raise BackendError("this host runs no libvirt domains")
        configs = host_configs_from_candidate(self.running_candidate, check=False)
        found = [
            (c.topology, v.vm, v.domain)
            for c in configs
            for v in c.vms
            if v.domain is not None and v.domain.name == request.domain
        ]
        if not found:
            raise BackendError(f"this host runs no VM that is domain '{request.domain}'")
        topology, vm, spec = found[0]
        if spec.template is None:
            raise BackendError(
                f"domain '{request.domain}' (VM '{vm}' of '{topology}') was not defined by "
                "netmanager: an attached domain is moved by whoever defined it"
            )
        return self.hypervisor.migrate(request)

    def migration_job(self, domain: str) -> dict[str, int]:
        """The job of a domain :meth:`migrate_domain` migrates (libvirt's jobStats: type,
        memory and data processed), asked beside the migration."""
        if self.hypervisor is None:
            raise BackendError("this host runs no libvirt domains")
        return self.hypervisor.migration_job(domain)

    def hand_over(self, topology: str, vm: str) -> int:
        """Let VM ``vm`` of ``topology`` go to another host emulated on this kernel (a
        migration's switch-over, before that host's commit takes its links: see
        :class:`Adoption`): the VM leaves this host's running configuration — its
        namespace, which the other host takes, is no longer this host's to remove, and
        the next commit here removes what is left of it (its IFBs, rules, forwarding
        entries) — and its runtime overrides go (returned to the caller by
        :meth:`port_values` first).  Nothing in the kernel changes: the VM's ports stay
        on this host's bridge, forwarding, until the other host takes them.  Returns the
        number of its ports; BackendError when the host does not run the VM."""
        if self.in_progress is not None or self.undo_point is not None:
            raise BackendError(
                "a commit is in progress or awaits its confirmation: the VM cannot leave now"
            )
        raw = host_configs_from_candidate(self.running_candidate, check=False)
        config = next((c for c in raw if c.topology == topology), None)
        if config is None or vm not in {v.vm for v in config.vms}:
            raise BackendError(f"this host runs no VM '{vm}' of topology '{topology}'")
        if vm in config.domain_vms:
            raise BackendError(f"VM '{vm}' is a libvirt domain: libvirt migrates it")
        ports = [p for p in config.ports if p.vm == vm]
        rest = config.without_vm(vm)
        self.running_candidate = candidate_from_host_configs(
            [rest if c is config else c for c in raw]
        )
        self.overrides = {k: o for k, o in self.overrides.items() if k[:2] != (topology, vm)}
        self._save()
        return len(ports)

    def _adopted(
        self, adopt: Adoption, configs: Iterable[HostConfig]
    ) -> tuple[list[Port], set[str]]:
        """The ports of the VM ``adopt`` names in ``configs`` and its namespaces."""
        ports = [
            p for c in configs if c.topology == adopt.topology for p in c.ports if p.vm == adopt.vm
        ]
        spaces = {
            v.namespace
            for c in configs
            if c.topology == adopt.topology
            for v in c.vms
            if v.vm == adopt.vm
        }
        return ports, spaces | {p.vm_namespace for p in ports}

    def _arrive(
        self,
        adopt: Adoption,
        target: _Target,
        kernel_faults: Faults | None,
        check: Callable[[str], None],
    ) -> int:
        """A migrating VM comes in (the commit of a candidate staged with ``adopt``, the
        rules already in place): the host end of each of its ports moves here from the
        source's dom0, and at once those links alone are wired (bridge, up, shaping both
        ways) — the VM is off the network only in between —, then the VM announces itself
        from its namespace (RARP, as QEMU after a live migration) so that every bridge on
        the way forwards to its new port.  Returns the number of kernel changes."""
        ports, _spaces = self._adopted(adopt, target.configs.values())
        backend = self.engine().backend
        domain = any(
            v.vm == adopt.vm and v.domain is not None
            for c in target.configs.values()
            if c.topology == adopt.topology
            for v in c.vms
        )
        # a libvirt domain's taps are made by the target's libvirt while the migration
        # runs (in its daemon's namespace): waited for a while
        deadline = time.monotonic() + (ADOPT_TAP_WAIT_S if domain else 0.0)
        # a real libvirt host's domain: libvirt makes its taps in this very namespace (the
        # host's root namespace, the agent's), where they are waited for, not moved
        here = domain and adopt.namespace == self.dom0
        for port in ports:
            check(f"take {port.vif} from {adopt.source}")
            while True:
                try:
                    if here:
                        _link_here(port.vif)
                    else:
                        backend.move_link(adopt.namespace, port.vif, self.dom0)
                    break
                except OSError as exc:
                    if getattr(exc, "errno", None) != errno.ENODEV:
                        raise
                    if time.monotonic() < deadline:
                        time.sleep(0.005)
                        continue
                    raise BackendError(
                        f"VM '{adopt.vm}' has no port link {port.vif} in {adopt.source}"
                    ) from exc
        if adopt.pause_ms:  # the modelled stop-and-copy: the VM's ports stay off
            time.sleep(adopt.pause_ms / 1000)
        keys = [(adopt.topology, adopt.vm, p.network) for p in ports]
        done = len(ports)
        for _topology, desired, scope in self._pieces(target.configs, keys):
            done += (
                self.engine()
                .apply(desired, scope=scope, progress=self._progress, faults=kernel_faults)
                .changes
            )
        by_namespace: dict[str, list[str]] = {}
        for port in ports if not domain else ():  # QEMU announces a migrated domain itself
            by_namespace.setdefault(port.vm_namespace, []).append(port.ifname)
        for namespace, ifnames in by_namespace.items():
            try:
                arp.announce(namespace, ifnames)
            except OSError as exc:  # the VM is wired; its peers learn it from its traffic
                log.warning("announcing VM %s in %s failed: %s", adopt.vm, namespace, exc)
        return done

    def _hand_back(self, adopt: Adoption) -> None:
        """Undo an adoption's moves: the VM's links that are here go back to the source's
        dom0 (down and off the bridge, as moved links are: the source's next commit wires
        them).  UndoFailed when one can be neither here nor moved."""
        if adopt.namespace == self.dom0:
            return  # a real libvirt host's taps were made here: libvirt's, they stay
        configs = self._known()
        ports, _spaces = self._adopted(adopt, configs)
        backend = self.engine().backend
        links = sorted({(self.dom0, p.vif) for p in ports})
        try:
            here = backend.observe(Scope.of_links(adopt.topology, links)).by_key
        except _FAILURES as exc:
            raise UndoFailed(f"the links of VM '{adopt.vm}' cannot be read: {exc}") from exc
        for dom0, vif in links:
            if link_key(dom0, vif) not in here:
                continue  # never came, or went back already
            try:
                backend.move_link(self.dom0, vif, adopt.namespace)
            except OSError as exc:
                raise UndoFailed(
                    f"{vif} of VM '{adopt.vm}' could not go back to {adopt.source}: {exc}"
                ) from exc

    def warm_runtime(self, keys: Iterable[PortKey]) -> float:
        """Make the first runtime change of these ports as quick as the next ones (a
        schedule's steps, timed): their links observed and planned once, nothing changed.
        Returns the seconds it took (what a change about costs)."""
        start = time.monotonic()
        target, _ = self._with_domains(self._target(self.running_candidate))
        engine = self.engine()
        for _topology, desired, scope in self._pieces(target.configs, keys):
            engine.plan(desired, scope=scope)
        return time.monotonic() - start

    def port_values(self) -> dict[PortKey, PortOverride]:
        """The runtime overrides in force, by port (read by the agent's link table)."""
        return dict(self.overrides)

    def pending(self) -> str | None:
        if self.in_progress is not None:
            return f"an interrupted {self.in_progress}"
        return "an unconfirmed commit" if self.undo_point is not None else None

    def recover(self) -> str | None:
        # the first call, in the worker thread: the engine (its imports, its netlink
        # socket) is made here, at the agent's start, rather than by the first stage
        self.engine()
        what = self.in_progress
        if what in ("commit", "rollback"):
            # cut short: go back to where the journal says the host was
            back = self.undo_point if self.undo_point is not None else self.running_candidate
            try:
                self._restore(back, f"an interrupted {what}", ports=self.ports)
            except UndoFailed as exc:
                # the journal stays: the agent's rollback of the interrupted commit, or
                # the next start, tries again; the agent keeps answering meanwhile
                return str(exc)
            self.undo_point = None
            self.target = None
            self.in_progress = None
            self.ports = None
            self._save()
            return (
                "undid an interrupted commit"
                if what == "commit"
                else ("finished an interrupted rollback")
            )
        if not self.running_candidate.documents:
            return None
        # the host may have lost its state (reboot): re-apply the last committed candidate
        try:
            changes = self._converge(self._target(self.running_candidate), every_guest=True)
        except _FAILURES as exc:
            return f"could not re-apply the running configuration: {exc}"
        return f"re-applied the running configuration ({changes} changes)" if changes else None

    def _restore(
        self,
        candidate: Candidate,
        what: str,
        faults: StepFaults | None = None,
        ports: Iterable[PortKey] | None = None,
    ) -> None:
        try:
            if self.adopting is not None:
                # a migrating VM taken in: its links go back first, and its namespace
                # (its source's again) is no scope's to remove
                self._hand_back(self.adopting)
                self._disowned = frozenset(self._adopted(self.adopting, self._known())[1])
            target = self._target(candidate)
            self._converge(target, faults, ports)
        except (*_FAILURES, BackendError) as exc:
            raise UndoFailed(
                f"undoing {what} failed, the host is partly configured: {exc}"
            ) from exc
        finally:
            self._disowned = frozenset()
        self.adopting = None
        self.running_candidate = candidate
        self.overrides = target.overrides

    def stage(
        self,
        candidate: Candidate,
        ports: Sequence[PortKey] | None = None,
        adopt: Adoption | None = None,
    ) -> Sequence[Change]:
        if adopt is not None:
            if ports is not None:
                raise BackendError("cannot stage: a VM taken in is not a change of some ports")
            return self._stage_adopt(candidate, adopt)
        if ports is not None:
            return self._stage_ports(candidate, tuple(ports))
        target = self._target(candidate)
        out = self._plan_changes(target)
        self.staged = target
        self.staged_ports = None
        self.staged_adopt = None
        return out

    def _stage_adopt(self, candidate: Candidate, adopt: Adoption) -> Sequence[Change]:
        """Stage a candidate that takes migrating VM ``adopt.vm`` in (see
        :class:`Adoption`): the host must not run it yet, its links must be in the
        source's dom0; the changes are those of the candidate without the VM, and the
        VM's ports taken in and wired."""
        target = self._target(candidate)
        config = target.configs.get(adopt.topology)
        if config is None or adopt.vm not in {v.vm for v in config.vms}:
            raise BackendError(
                f"cannot stage: the candidate has no VM '{adopt.vm}' of '{adopt.topology}'"
            )
        domain = adopt.vm in config.domain_vms
        if domain and (self.hypervisor is None or adopt.source != "."):
            raise BackendError(
                f"cannot stage: VM '{adopt.vm}' is a libvirt domain: its taps are taken in "
                "from the root namespace (.), on a libvirt host"
            )
        for c in host_configs_from_candidate(self.running_candidate, check=False):
            if c.topology == adopt.topology and adopt.vm in {v.vm for v in c.vms}:
                raise BackendError(f"cannot stage: this host runs VM '{adopt.vm}' already")
        ports, _spaces = self._adopted(adopt, [config])
        links = [(adopt.namespace, p.vif) for p in ports]
        try:
            seen = self.engine().backend.observe(Scope.of_links(adopt.topology, links))
        except _FAILURES as exc:
            raise BackendError(f"cannot stage: {adopt.source}: {exc}") from exc
        # a live-migrated domain's taps are made by libvirt while it migrates: the commit
        # waits for them
        missing = [vif for ns, vif in links if link_key(ns, vif) not in seen.by_key]
        if missing and not domain:
            raise BackendError(
                f"cannot stage: VM '{adopt.vm}' has no port link {missing[0]} in "
                f"{adopt.source} (the host it moves from)"
            )
        out = self._plan_changes(
            _Target(
                target.candidate, {**target.configs, adopt.topology: config.without_vm(adopt.vm)}
            )
        )
        out += [
            Change(
                "add",
                f"{adopt.topology}: {p.vif} of VM '{adopt.vm}' taken from {adopt.source}, wired",
                "migrate",
            )
            for p in ports
        ]
        self.staged = target
        self.staged_ports = None
        self.staged_adopt = adopt
        return out

    def _plan_changes(self, target: _Target) -> list[Change]:
        """The changes that would make the host carry ``target``; BackendError when it
        cannot be planned."""
        engine = self.engine()
        out: list[Change] = []
        try:
            resolved, domains = self._with_domains(target)
            out.extend(domains.changes)
            for topology, config, scope in self._work(resolved):
                plan = engine.plan(self._desired(config, scope), scope=scope)
                for change in plan.changes:
                    if not change.implied:
                        out.append(
                            Change(
                                _OPS.get(str(change.op.value), str(change.op.value)),
                                f"{topology}: {change.obj.label()}",
                                change.reason,
                            )
                        )
                for fw in self._firewall(topology, config, apply=False):
                    out.extend(
                        Change(_OPS.get(line[0], "modify"), f"{topology}: {line[2:]}", "firewall")
                        for line in fw.lines()
                    )
        except _FAILURES as exc:
            raise BackendError(f"cannot stage: {exc}") from exc
        return out

    def _stage_ports(self, candidate: Candidate, ports: tuple[PortKey, ...]) -> Sequence[Change]:
        target = self._target(candidate)
        try:
            check_scoped(self.running_candidate, candidate, ports)
        except ValueError as exc:
            raise BackendError(f"cannot stage: {exc}") from exc
        engine = self.engine()
        out: list[Change] = []
        try:
            resolved, _ = self._with_domains(target)
            for topology, desired, scope in self._pieces(resolved.configs, ports):
                plan = engine.plan(desired, scope=scope)
                out.extend(
                    Change(
                        _OPS.get(str(c.op.value), str(c.op.value)),
                        f"{topology}: {c.obj.label()}",
                        c.reason,
                    )
                    for c in plan.changes
                    if not c.implied
                )
        except _FAILURES as exc:
            raise BackendError(f"cannot stage: {exc}") from exc
        self.staged = target
        self.staged_ports = ports
        self.staged_adopt = None
        return out

    def commit(self) -> None:
        if self.staged is None:
            raise BackendError("nothing staged")
        target, self.staged = self.staged, None
        ports, self.staged_ports = self.staged_ports, None
        adopt, self.staged_adopt = self.staged_adopt, None
        before = self.running_candidate
        self.undo_point = before
        self.target = target.candidate
        self.in_progress = "commit"
        self.ports = ports
        self.adopting = adopt
        self._save()
        faults = self._injected_fault()
        try:
            self._converge(target, faults, ports, adopt=adopt)
        except Exception as exc:  # _FAILURES, or a bug: undone either way
            try:
                undo_faults = StepFaults(0) if faults is not None and faults.undo_too else None
                self._restore(before, "the failed commit", undo_faults, ports)
            finally:
                self.undo_point = None
                self.target = None
                self.in_progress = None
                self.ports = None
                self.adopting = None
                self._save()
            raise BackendError(f"commit failed, every change undone: {exc}") from exc
        self.running_candidate = target.candidate
        self.overrides = target.overrides  # those of ports gone, or changed since, forgotten
        self.target = None
        self.in_progress = None
        self._save()

    def confirm(self) -> None:
        self.undo_point = None
        self.ports = None
        self.adopting = None
        self._save()

    def rollback(self) -> None:
        if self.undo_point is None:
            return
        # target stays as it is: an interrupted commit's target must stay in scope
        self.in_progress = "rollback"
        self._save()
        self._restore(self.undo_point, "the commit", ports=self.ports)
        self.undo_point = None
        self.target = None
        self.in_progress = None
        self.ports = None
        self._save()

    def discard(self) -> None:
        self.staged = None
        self.staged_ports = None
        self.staged_adopt = None

    def running(self) -> Candidate:
        return self.running_candidate

    def vm_namespaces(self) -> list[str]:
        """The VM and gateway namespaces of the running configuration (for monitoring)."""
        out: set[str] = set()
        for c in host_configs_from_candidate(self.running_candidate, check=False):
            out |= {v.namespace for v in c.vms if v.domain is None}
            out |= {n.namespace for n in c.nats}
        return sorted(out)
