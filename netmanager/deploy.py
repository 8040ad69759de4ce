"""Plan, apply, destroy and inspect topologies on hosts emulated on this machine.

The pipeline: load -> map (with the segment ids and capacity other applied topologies
hold) -> compile -> render -> the engine and the firewall.  The desired state of the
machine is the emulated infrastructure plus every applied topology, so applying one
topology leaves the others as they are.

Apply runs in phases so that it fails closed and can be rolled back as a whole:

1. infrastructure: host and switch namespaces, underlay links (a no-op once built);
2. firewall: every host's chains for this topology, and the final drop for VM ports that
   no topology claims, installed before any VM port exists;
3. the topology's kernel objects (namespaces, bridges, VXLAN, ports, shaping, routes).

A failure in any phase undoes the phases before it (the engine undoes its own phase),
so the machine is left as it was; an undo that fails is reported, never hidden.
Each step can be made to fail on purpose (``faults``) to test exactly that.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from netmanager.compile import compile_infrastructure, compile_topology, guest_link_problems
from netmanager.errors import (
    Diagnostic,
    Diagnostics,
    ExitCode,
    Loc,
    NetmanagerError,
    Severity,
    single,
)
from netmanager.firewall import (
    Firewall,
    FirewallChange,
    FirewallError,
    Ruleset,
    desired_rulesets,
    ensure_gateway,
)
from netmanager.gcpause import pausing
from netmanager.guests import GUEST_FEATURES
from netmanager.hostconfig import HostConfig, Infrastructure, namespace_kinds
from netmanager.kernel import Address, ApplyError, Engine, Faults, HostState, KernelStateError, Link
from netmanager.kernel.journal import StepProgress
from netmanager.kernel.plan import Plan
from netmanager.kernel.plan import plan as kernel_plan
from netmanager.loader import load_with_warnings
from netmanager.mapping import (
    Mapping,
    Occupied,
    load_allocations,
    map_model,
    release_allocations,
    save_allocations,
)
from netmanager.model import Encap, HypervisorKind, Model
from netmanager.render import RenderError, render_all
from netmanager.state import apply_lock, read_json, state_dir, write_json


class ApplyFailed(NetmanagerError):
    """A change failed; what had been done was undone (unless the diagnostics say not)."""

    exit_code = ExitCode.APPLY_FAILED


class EnvironmentProblem(NetmanagerError):
    exit_code = ExitCode.ENVIRONMENT


def _problem(
    cls: type[NetmanagerError], code: str, message: str, hint: str = "", loc: Loc | None = None
) -> NetmanagerError:
    return single(code, loc or Loc("netmanager"), message, hint, "apply", cls)


# ------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Record:
    """What apply leaves in the state directory for one topology."""

    topology: str
    real: str
    virtual: str
    hosts: dict[str, HostConfig]
    infrastructure: Infrastructure
    occupied: Occupied
    placement: dict[str, str]
    applied_at: float = 0.0
    #: how it was applied: "agents" (through each host's SNMP agent) or "local" (in-process)
    transport: str = "local"
    #: where real.xml's relative file names resolve (see :attr:`Real.base_dir`)
    base_dir: str = ""

    def as_json(self) -> dict[str, Any]:
        from netmanager.hostconfig import _to_json

        return {
            "topology": self.topology,
            "real": self.real,
            "virtual": self.virtual,
            "hosts": {h: c.as_json() for h, c in sorted(self.hosts.items())},
            "infrastructure": _to_json(self.infrastructure),
            "occupied": self.occupied.as_json(),
            "placement": dict(sorted(self.placement.items())),
            "applied_at": self.applied_at,
            "transport": self.transport,
            "base_dir": self.base_dir,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Record:
        from netmanager.hostconfig import infrastructure_from_json

        return cls(
            topology=d["topology"],
            real=d["real"],
            virtual=d["virtual"],
            hosts={h: HostConfig.from_json(c) for h, c in d["hosts"].items()},
            infrastructure=infrastructure_from_json(d["infrastructure"]),
            occupied=Occupied.from_json(d["occupied"]),
            placement=dict(d["placement"]),
            applied_at=float(d.get("applied_at", 0.0)),
            transport=str(d.get("transport", "local")),
            base_dir=str(d.get("base_dir", "")),
        )


def _records_dir(directory: Path | None = None) -> Path:
    return (directory or state_dir()) / "topologies"


#: records parsed before, by path, with the (mtime, size, inode) they were read at: one
#: apply reads them several times (capacity in prepare, desired state under the lock)
_PARSED: dict[Path, tuple[tuple[int, int, int], Record]] = {}


def records(directory: Path | None = None) -> dict[str, Record]:
    """Every applied topology, by name."""
    found = {}
    where = _records_dir(directory)
    if where.is_dir():
        for path in sorted(where.glob("*.json")):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            cached = _PARSED.get(path)
            if cached is not None and cached[0] == stamp:
                record = cached[1]
            else:
                document = read_json(path)
                if not isinstance(document, dict):
                    continue
                record = Record.from_json(document)
                _PARSED[path] = (stamp, record)
            found[record.topology] = record
    return found


def _save_record(record: Record) -> None:
    write_json(_records_dir() / f"{record.topology}.json", record.as_json())


def _remove_record(topology: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (_records_dir() / f"{topology}.json").unlink()


# ------------------------------------------------------------------------------- prepare


@dataclass(frozen=True)
class Deployment:
    """A topology ready to apply: model, mapping and what each host builds."""

    model: Model
    mapping: Mapping
    configs: dict[str, HostConfig]
    infrastructure: Infrastructure
    warnings: tuple[Diagnostic, ...] = ()

    @property
    def topology(self) -> str:
        return self.model.topology


def local_features(*, fresh: bool = False) -> frozenset[str]:
    """The capabilities this machine's kernel and tools give (probed once per kernel
    state, see :func:`netmanager.probe.local_capabilities`)."""
    from netmanager.probe import local_capabilities

    return local_capabilities(state_dir() / "features.json", fresh=fresh)


@pausing
def prepare(
    real: str | Path,
    virtual: str | Path,
    *,
    features: frozenset[str] | None = None,
    base_dir: str | Path | None = None,
) -> Deployment:
    """Load, map and compile a topology (no kernel change). Raises NetmanagerError."""
    loaded = load_with_warnings(real, virtual, base_dir=base_dir)
    model = loaded.model
    applied = records()
    _refuse_other_prefix(applied, model.real.loc)
    others = {t: r for t, r in applied.items() if t != model.topology}
    occupied = sum((r.occupied for r in others.values()), Occupied())
    emulated = (HypervisorKind.NETNS, HypervisorKind.GUEST)
    unsupported = [h for h in model.real.hosts if h.hypervisor not in emulated]
    if unsupported:
        host = unsupported[0]
        raise _problem(
            EnvironmentProblem,
            "E703",
            f"host '{host.name}' is not emulated here (hypervisor '{host.uri or host.hypervisor}'): "
            'this version of netmanager applies to hosts with hypervisor="netns" or "guest"',
            'use hypervisor="netns" (a namespace) or "guest" (a QEMU guest with a stock '
            "kernel) to emulate the host on this machine",
            host.loc,
        )
    guest_problems = guest_link_problems(model.real)
    if guest_problems:
        diags = Diagnostics()
        for link, message in guest_problems:
            diags.error("E708", link.loc, message, "connect the guest's interface to a <switch>")
        diags.raise_if_errors("apply")
    if features is None:
        features = local_features()
    host_features = {
        h.name: h.capabilities
        if h.capabilities is not None
        else GUEST_FEATURES
        if h.hypervisor is HypervisorKind.GUEST
        else features
        for h in model.real.hosts
    }
    mapping = map_model(
        model, features=host_features, allocations=load_allocations(), occupied=occupied
    )
    configs = compile_topology(model, mapping)
    infrastructure = compile_infrastructure(model.real)
    for other in others.values():
        if other.infrastructure != infrastructure:
            raise _problem(
                NetmanagerError,
                "E704",
                f"topology '{other.topology}' is applied on another physical environment "
                f"({other.real}); emulated hosts of one machine share one real.xml",
                f"destroy '{other.topology}' first, or describe both in the same real.xml",
                model.real.loc,
            )
    _precheck(model, configs, host_features)
    return Deployment(model, mapping, configs, infrastructure, loaded.warnings + mapping.warnings)


def _refuse_other_prefix(applied: dict[str, Record], loc: Loc) -> None:
    """Refuse a state directory whose topologies live in namespaces of another prefix
    (``NETMANAGER_NS_PREFIX``): planning against them would delete what they stand on."""
    kinds = namespace_kinds()
    for record in sorted(applied.values(), key=lambda r: r.topology):
        infra = record.infrastructure
        names = [*infra.host_namespaces, *(ns for ns, _ in infra.switch_namespaces)]
        names += [c.dom0 for c in record.hosts.values() if c.dom0]
        stray = sorted(n for n in names if not n.startswith(kinds))
        if stray:
            raise _problem(
                NetmanagerError,
                "E707",
                f"topology '{record.topology}' was applied with other namespace names "
                f"({stray[0]}): this state directory belongs to another namespace prefix",
                "destroy it with the NETMANAGER_NS_PREFIX it was applied with, "
                "or use another NETMANAGER_STATE_DIR",
                loc,
            )


def _precheck(
    model: Model, configs: dict[str, HostConfig], features: dict[str, frozenset[str]]
) -> None:
    """Refuse, before any change, what the hosts' kernels cannot build."""
    diags = Diagnostics()
    for host, config in sorted(configs.items()):
        if config.nats and model.real.host_by_name[host].hypervisor is HypervisorKind.GUEST:
            network = config.nats[0].network
            diags.error(
                "E708",
                model.virtual.network_by_name[network].loc,
                f"network '{network}' has outbound access through host '{host}', a guest: "
                "the emulated outside world is not wired into guests",
                'place its VMs on hosts with hypervisor="netns", or drop external="outbound"',
            )
    used = [features.get(h, frozenset()) for h in configs]
    if not all("netem" in f for f in used):
        virtual = model.virtual
        shapings = (
            [n.shaping for n in virtual.networks]
            + [i.shaping for vm in virtual.vms for i in vm.interfaces]
            + [p.shaping for p in virtual.pairs]
        )
        for shaping in shapings:
            if shaping is not None and shaping.needs_netem:
                diags.error(
                    "E701",
                    shaping.loc,
                    "latency, jitter and loss need NetEm, which this kernel does not have",
                    "netmanager doctor lists the kernel's features; remove latency/jitter/loss, "
                    "or run the topology on guest hosts with a stock kernel",
                )
    if not all("8021q" in f for f in used):
        vlan_networks = sorted(
            {
                s.network
                for c in configs.values()
                for s in c.segments
                if s.encap is Encap.VLAN and s.tunnel
            }
        )
        for name in vlan_networks:
            diags.error(
                "E706",
                model.virtual.network_by_name[name].loc,
                f"network '{name}' spans hosts over an 802.1Q VLAN, which this kernel does not have",
                'use encap="vxlan" or "auto" (netmanager doctor lists the kernel\'s features)',
            )
    diags.raise_if_errors("apply")


# -------------------------------------------------------------------------- machine state


def owned_namespaces() -> set[str]:
    """netmanager's namespaces that exist on this machine."""
    try:
        names = os.listdir("/run/netns")
    except FileNotFoundError:
        return set()
    return {n for n in names if n.startswith(namespace_kinds())}


def desired_state(configs: list[HostConfig], infrastructure: Infrastructure | None) -> HostState:
    """The machine's desired kernel state; raises before any change when it cannot be built."""
    try:
        objects = render_all(configs, infrastructure)
    except RenderError as exc:
        raise _problem(
            NetmanagerError, "E702", str(exc), "netmanager doctor lists what this machine can build"
        ) from exc
    try:
        return HostState.checked(objects)
    except KernelStateError as exc:
        raise _problem(
            NetmanagerError, "E705", f"the configuration cannot be built: {exc}"
        ) from exc


def _other_configs(topology: str, applied: dict[str, Record]) -> list[HostConfig]:
    return [c for t, r in sorted(applied.items()) if t != topology for c in r.hosts.values()]


def _dom0s(infrastructure: Infrastructure | None) -> list[str]:
    return list(infrastructure.host_namespaces) if infrastructure else []


def _firewall_changes(
    topology: str, configs: dict[str, HostConfig], dom0s: list[str]
) -> list[FirewallChange]:
    existing = owned_namespaces()
    by_dom0 = {c.dom0: c for c in configs.values()}
    changes = []
    present = [ns for ns in dom0s if ns in existing]
    # the save tools run as processes: read every host's tables at once
    with ThreadPoolExecutor(max_workers=8) as pool:
        observations = dict(
            zip(present, pool.map(lambda ns: Firewall(ns).observe(), present), strict=True)
        )
    for namespace in dom0s:
        observed = observations.get(namespace, (Ruleset(), Ruleset()))
        ipt, ebt = desired_rulesets(observed, topology, by_dom0.get(namespace))
        changes.append(FirewallChange(namespace, "iptables", ipt, observed[0]))
        changes.append(FirewallChange(namespace, "ebtables", ebt, observed[1]))
    return changes


@dataclass
class MachinePlan:
    topology: str
    kernel: Plan
    firewall: list[FirewallChange]

    @property
    def changes(self) -> int:
        return len(self.kernel) + sum(len(f.lines()) for f in self.firewall)

    def lines(self) -> list[str]:
        return self.kernel.lines() + [line for f in self.firewall for line in f.lines()]

    def summary(self) -> str:
        firewall = sum(1 for f in self.firewall if f.changed)
        return f"{self.kernel.summary()}; {firewall} firewall table(s) to replace"

    def as_json(self) -> dict[str, Any]:
        return {
            "topology": self.topology,
            "changes": self.changes,
            "kernel": self.kernel.to_json(),
            "firewall": [line for f in self.firewall for line in f.lines()],
        }


@pausing
def plan(deployment: Deployment) -> MachinePlan:
    """What apply would change, and why: nothing is changed."""
    _refuse_guests(deployment)
    applied = records()
    desired = desired_state(
        _other_configs(deployment.topology, applied) + list(deployment.configs.values()),
        deployment.infrastructure,
    )
    with Engine() as engine:
        kernel_plan = engine.plan(desired, namespaces=owned_namespaces())
    firewall = _firewall_changes(
        deployment.topology, deployment.configs, _dom0s(deployment.infrastructure)
    )
    return MachinePlan(deployment.topology, kernel_plan, firewall)


# ------------------------------------------------------------------------------ executing


@dataclass
class StepCounter:
    """Numbers every step of an apply across phases, to fail one on purpose in tests."""

    fail_at: int | None = None
    done: int = 0

    def engine_faults(self, steps: int) -> Faults | None:
        """Faults for an engine phase of ``steps`` steps; counts them."""
        start, self.done = self.done, self.done + steps
        if self.fail_at is not None and start <= self.fail_at < self.done:
            return Faults(fail_at=self.fail_at - start)
        return None

    def check(self, what: str) -> None:
        index, self.done = self.done, self.done + 1
        if self.fail_at == index:
            raise FirewallError(f"injected fault at step {index} ({what})")


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


@dataclass
class _Observation:
    """One observation of the kernel serves every kernel phase until one of them changes
    something (firewall phases do not touch kernel objects)."""

    state: HostState | None = None
    scope: set[str] = field(default_factory=set)


def _run_phases(
    topology: str,
    phases: list[tuple[str, HostState | list[FirewallChange] | GatewayRules]],
    counter: StepCounter,
    progress: Callable[[str], None],
    seen: _Observation | None = None,
    steps: StepProgress | None = None,
) -> dict[str, int]:
    """Run kernel and firewall phases in order; on failure undo the finished ones.
    ``progress`` is told each phase, ``steps`` the kernel steps done in it."""
    undo: list[Callable[[], None]] = []
    counts: dict[str, int] = {}
    scope = owned_namespaces()
    seen = seen if seen is not None else _Observation()
    try:
        with Engine() as engine:
            for name, phase in phases:
                progress(name)
                if isinstance(phase, HostState):
                    scope |= set(phase.namespaces)
                    if seen.state is None or seen.scope != scope:
                        seen.state, seen.scope = engine.observe(scope), set(scope)
                    observed = seen.state
                    the_plan = kernel_plan(phase, observed, scope)
                    counts[name] = len(the_plan)
                    if not len(the_plan):
                        continue
                    faults = counter.engine_faults(len(the_plan.steps))
                    seen.state = None
                    result = engine.apply(the_plan, faults=faults, progress=steps)
                    counts[name] = result.changes
                    undo.append(_kernel_undo(observed, set(scope)))
                elif isinstance(phase, GatewayRules):
                    done = 0
                    for namespace in phase.namespaces:
                        counter.check(f"NAT gateway rules in {namespace}")
                        done += ensure_gateway(namespace)
                    counts[name] = done
                else:
                    done = 0
                    for change in phase:
                        if not change.changed or change.namespace not in owned_namespaces():
                            continue
                        counter.check(f"{change.table} in {change.namespace}")
                        Firewall(change.namespace).replace(
                            change.table, change.desired, change.observed
                        )
                        undo.append(_firewall_undo(change))
                        done += 1
                    counts[name] = done
    except (ApplyError, FirewallError, OSError) as exc:
        failures = []
        for step in reversed(undo):
            try:
                step()
            except (ApplyError, FirewallError, OSError) as undo_exc:
                failures.append(str(undo_exc))
        diagnostics = [
            Diagnostic(
                Severity.ERROR,
                "E710",
                f"{topology}: {exc}",
                Loc("netmanager"),
                "nothing was left changed" if not failures else "",
            )
        ]
        for failure in failures:
            diagnostics.append(
                Diagnostic(
                    Severity.ERROR,
                    "E711",
                    f"an undo failed, the machine is NOT as it was: {failure}",
                    Loc("netmanager"),
                    "netmanager plan shows what differs",
                )
            )
        raise ApplyFailed("apply", diagnostics) from exc
    return counts


@dataclass(frozen=True)
class GatewayRules:
    """The rules of the topology's NAT gateways, put in place once their namespaces exist."""

    namespaces: tuple[str, ...]


def _gateways(configs: dict[str, HostConfig]) -> GatewayRules:
    return GatewayRules(tuple(sorted(n.namespace for c in configs.values() for n in c.nats)))


def _kernel_undo(before: HostState, scope: set[str]) -> Callable[[], None]:
    def undo() -> None:
        with Engine() as engine:
            engine.apply(before, namespaces=set(scope))

    return undo


def _firewall_undo(change: FirewallChange) -> Callable[[], None]:
    def undo() -> None:
        if change.namespace not in owned_namespaces():
            return
        firewall = Firewall(change.namespace)
        current = firewall.observe()
        now = current[0] if change.table == "iptables" else current[1]
        firewall.replace(change.table, change.observed, now)

    return undo


def _quiet(_: str) -> None:
    return None


@pausing
def apply(
    deployment: Deployment,
    *,
    fail_at: int | None = None,
    progress: Callable[[str], None] = _quiet,
    steps: StepProgress | None = None,
) -> Outcome:
    """Build the topology; raises ApplyFailed after undoing everything on failure.
    ``progress`` is told each phase, ``steps`` (done, in all) the kernel steps of each."""
    start = time.perf_counter()
    topology = deployment.topology
    _refuse_guests(deployment)
    with apply_lock():
        applied = records()
        _refuse_mixed(applied, "local", deployment.model.virtual.loc)
        others = _other_configs(topology, applied)
        # The infrastructure phase keeps this topology as it was applied before (if it was),
        # so that a re-apply changes only what differs.
        previous = list(applied[topology].hosts.values()) if topology in applied else []
        wanted = list(deployment.configs.values())
        full_state = desired_state(others + wanted, deployment.infrastructure)
        infra_state = (
            full_state
            if previous == wanted
            else desired_state(others + previous, deployment.infrastructure)
        )
        seen = _Observation()
        counter = StepCounter(fail_at)
        phases: list[tuple[str, HostState | list[FirewallChange] | GatewayRules]] = [
            ("infrastructure", infra_state)
        ]
        # the firewall phase is computed once the hosts' namespaces exist
        counts = _run_phases(topology, phases, counter, progress, seen, steps)
        firewall = _firewall_changes(
            topology, deployment.configs, _dom0s(deployment.infrastructure)
        )
        try:
            counts |= _run_phases(
                topology,
                [
                    ("firewall", firewall),
                    ("topology", full_state),
                    ("gateways", _gateways(deployment.configs)),
                ],
                counter,
                progress,
                seen,
                steps,
            )
        except ApplyFailed:
            if counts.get("infrastructure"):
                _undo_infrastructure(others, applied, topology)
            raise
        save_allocations(topology, deployment.mapping.segments)
        record = Record(
            topology=topology,
            real=str(Path(deployment.model.real.file).resolve()),
            virtual=str(Path(deployment.model.virtual.file).resolve()),
            hosts=deployment.configs,
            infrastructure=deployment.infrastructure,
            occupied=Occupied.of([deployment.mapping]),
            placement=dict(deployment.mapping.placement),
            applied_at=time.time(),
            base_dir=deployment.model.real.base_dir,
        )
        old = applied.get(topology)
        if old is None or replace(old, applied_at=0.0) != replace(record, applied_at=0.0):
            _save_record(record)
    outcome = Outcome(topology, sum(counts.values()), counts, time.perf_counter() - start)
    outcome.hosts = {
        host: {"vms": len(config.vms), "ports": len(config.ports), "networks": len(config.segments)}
        for host, config in sorted(deployment.configs.items())
    }
    return outcome


def _refuse_guests(deployment: Deployment) -> None:
    """In-process apply builds namespaces of this kernel only: a guest host has its own."""
    guests = [g.host for g in deployment.infrastructure.guests]
    if guests:
        raise _problem(
            NetmanagerError,
            "E709",
            f"host '{guests[0]}' is a guest (hypervisor=\"guest\"): guest hosts are "
            "configured through their agents, not in this process",
            "apply without --local",
            deployment.model.real.host_by_name[guests[0]].loc,
        )


def _refuse_mixed(applied: dict[str, Record], transport: str, loc: Loc) -> None:
    """One machine's topologies are applied one way: all through agents, or all locally."""
    other = sorted(t for t, r in applied.items() if r.transport != transport)
    if other:
        flag = "--local" if transport == "agents" else "without --local"
        raise _problem(
            NetmanagerError,
            "E743",
            f"topology '{other[0]}' was applied {'without' if transport == 'agents' else 'through'}"
            f" agents; one machine's topologies are applied one way",
            f"destroy '{other[0]}' first, or apply {flag}",
            loc,
        )


def _undo_infrastructure(
    others: list[HostConfig], applied: dict[str, Record], topology: str
) -> None:
    """After a failed first apply: take the infrastructure built for it away again."""
    remaining = [r for t, r in applied.items() if t != topology]
    infra = remaining[0].infrastructure if remaining else None
    with Engine() as engine:
        engine.apply(desired_state(others, infra), namespaces=owned_namespaces())


@pausing
def destroy(
    topology: str,
    *,
    fail_at: int | None = None,
    progress: Callable[[str], None] = _quiet,
    steps: StepProgress | None = None,
) -> Outcome:
    """Remove everything of a topology, release its segment ids; the last one takes the
    emulated infrastructure with it."""
    start = time.perf_counter()
    with apply_lock():
        applied = records()
        record = applied.get(topology)
        if record is None:
            raise _problem(
                NetmanagerError,
                "E720",
                f"topology '{topology}' is not applied on this machine",
                "netmanager status lists what is applied" if applied else "nothing is applied here",
            )
        others = _other_configs(topology, applied)
        infra = record.infrastructure if others else None
        counter = StepCounter(fail_at)
        firewall = _firewall_changes(topology, {}, _dom0s(record.infrastructure))
        # Ports go first (a port without its rules would only fall to the final drop);
        # the rules of hosts whose namespace went with the last topology need no removal.
        counts = _run_phases(
            topology,
            [("topology", desired_state(others, infra)), ("firewall", firewall)],
            counter,
            progress,
            steps=steps,
        )
        release_allocations(topology)
        _remove_record(topology)
    return Outcome(topology, sum(counts.values()), counts, time.perf_counter() - start)


# ------------------------------------------------------------------------------- inspect


def status(topology: str | None = None) -> list[dict[str, Any]]:
    """Applied topologies as read back from the kernel (one, or all)."""
    import datetime

    applied = records()
    if topology is not None and topology not in applied:
        raise _problem(
            NetmanagerError,
            "E720",
            f"topology '{topology}' is not applied on this machine",
            "applied here: " + (", ".join(sorted(applied)) or "nothing"),
        )
    chosen = [applied[topology]] if topology is not None else [applied[t] for t in sorted(applied)]
    existing = owned_namespaces()
    namespaces = {
        p.vm_namespace for r in chosen for c in r.hosts.values() for p in c.ports
    } & existing
    with Engine() as engine:
        observed = engine.observe(namespaces)
    links = {(o.namespace, o.ifname): o for o in observed if isinstance(o, Link)}
    addresses = {
        (o.namespace, o.ifname, str(o.address)) for o in observed if isinstance(o, Address)
    }
    documents: list[dict[str, Any]] = []
    for record in chosen:
        vms: list[dict[str, Any]] = []
        guests = set(record.infrastructure.guest_by_name)
        for host, config in sorted(record.hosts.items()):
            ports_of: dict[str, list[Any]] = {}
            for port in config.ports:
                ports_of.setdefault(port.vm, []).append(port)
            for vm in config.vms:
                interfaces = []
                for port in ports_of.get(vm.vm, []):
                    link = links.get((port.vm_namespace, port.ifname))
                    if host in guests:  # not this kernel's: its agent tells (remote.status)
                        state = "unknown"
                    elif link is None:
                        state = "missing"
                    elif (port.vm_namespace, port.ifname, str(port.ip)) not in addresses:
                        state = "unaddressed"
                    else:
                        state = "up" if link.up else "down"
                    interfaces.append(
                        {
                            "network": port.network,
                            "ifname": port.ifname,
                            "ip": str(port.ip),
                            "mac": port.mac,
                            "state": state,
                        }
                    )
                vms.append(
                    {
                        "name": vm.vm,
                        "host": host,
                        "namespace": vm.namespace,
                        "interfaces": interfaces,
                    }
                )
        documents.append(
            {
                "topology": record.topology,
                "real": record.real,
                "virtual": record.virtual,
                "applied": datetime.datetime.fromtimestamp(record.applied_at).isoformat(
                    timespec="seconds"
                ),
                "vms": sorted(vms, key=lambda v: str(v["name"])),
            }
        )
    return documents


def vm_namespace_of(vm: str, topology: str | None = None) -> str:
    """The namespace of an applied VM; raises NetmanagerError when unknown or ambiguous."""
    return vm_location(vm, topology)[0]


def vm_location(vm: str, topology: str | None = None) -> tuple[str, str | None]:
    """(namespace, guest host or None) of an applied VM: a VM on a guest host lives in a
    namespace of that guest's kernel.  Raises NetmanagerError when unknown or ambiguous."""
    found = [
        (t, (v.namespace, h if h in r.infrastructure.guest_by_name else None))
        for t, r in sorted(records().items())
        if topology is None or t == topology
        for h, c in r.hosts.items()
        for v in c.vms
        if v.vm == vm
    ]
    if not found:
        raise _problem(
            NetmanagerError,
            "E721",
            f"no applied VM is called '{vm}'",
            "netmanager status lists the VMs",
        )
    if len(found) > 1:
        raise _problem(
            NetmanagerError,
            "E722",
            f"VM '{vm}' is in several topologies: {', '.join(t for t, _ in found)}",
            "say which with --topology",
        )
    return found[0][1]
