"""Prepare a topology, keep the records of what was applied, and inspect this machine.

The pipeline's front: load -> map (with the segment ids and capacity other applied
topologies hold) -> compile, into a :class:`Deployment` that :mod:`netmanager.apply`
builds on the hosts.  The records (``<state>/topologies/*.json``) say what each applied
topology holds where.  :func:`status` reads applied VMs back from this machine's kernel;
:func:`machine_plan` compares the kernel and firewall of this machine with what the
applied topologies and the emulated infrastructure need, object by object (verify's
state level).
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netmanager.compile import compile_infrastructure, compile_topology, guest_link_problems
from netmanager.errors import (
    Diagnostic,
    Diagnostics,
    ExitCode,
    Loc,
    NetmanagerError,
    single,
)
from netmanager.firewall import (
    Firewall,
    FirewallChange,
    Ruleset,
    desired_rulesets,
)
from netmanager.gcpause import pausing
from netmanager.guests import GUEST_FEATURES
from netmanager.hostconfig import HostConfig, Infrastructure, namespace_kinds
from netmanager.kernel import Address, Engine, HostState, KernelStateError, Link
from netmanager.kernel.plan import Plan
from netmanager.loader import load_with_warnings
from netmanager.mapping import (
    Mapping,
    Occupied,
    load_allocations,
    map_model,
)
from netmanager.model import Encap, HypervisorKind, Model
from netmanager.render import RenderError, render_all
from netmanager.state import read_json, state_dir, write_json


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


def save_record(record: Record) -> None:
    write_json(_records_dir() / f"{record.topology}.json", record.as_json())


def refuse_mixed(applied: dict[str, Record], transport: str, loc: Loc) -> None:
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


def remove_record(topology: str) -> None:
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
def machine_plan(deployment: Deployment) -> MachinePlan:
    """What the kernel and firewall of this machine lack for the topology as applied with
    ``--local``, object by object (verify's state level); nothing is changed."""
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
