"""The state level: what the kernel holds for a topology matches the plan, so that a change
made by hand is caught even where no probe can measure it.

* the kernel objects (``netmanager plan``'s kernel part): every change apply would make
  to the topology's namespaces, ports, bridges, tunnels and shaping — or to the
  emulated infrastructure under it (underlay links and their TBF) — is a failure;
* the firewall: the topology's iptables and ebtables chains, NM-FORWARD and the hook,
  rule by rule (a rule added by hand is named);
* what the plan does not see: a rule placed in FORWARD before netmanager's hook,
  ``bridge-nf-call-iptables`` off in a host (bridged traffic would skip every rule);
* a latency, jitter or loss declared in virtual.xml with no NetEm on the port that must
  delay it (dropped without a word).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from netmanager import programs
from netmanager.apply.prepare import Deployment
from netmanager.apply.readback import machine_plan
from netmanager.apply.records import owned_namespaces
from netmanager.apply.topology import agents_plan
from netmanager.compile.desired import render_all, render_infrastructure
from netmanager.compile.hostconfig import topology_prefix
from netmanager.host.firewall import DISPATCH, HOOK_COMMENT, ebtables_chain, topology_chain
from netmanager.kernel import KernelObject, Link, Netem, Qdisc
from netmanager.verify.expect import TopologyView
from netmanager.verify.report import Check, Kind

BRIDGE_NF = "/proc/sys/net/bridge/bridge-nf-call-iptables"


@dataclass(frozen=True)
class Ownership:
    """What of the machine belongs to one topology, and to the infrastructure under it."""

    topology: str
    keys: frozenset[object]
    links: frozenset[tuple[str, str]]
    namespaces: frozenset[str]
    infra_keys: frozenset[object]
    infra_links: frozenset[tuple[str, str]]

    @classmethod
    def of(cls, deployment: Deployment) -> Ownership:
        own = render_all(deployment.configs.values())
        infra = render_infrastructure(deployment.infrastructure)
        dom0s = set(deployment.infrastructure.host_namespaces)
        return cls(
            topology=deployment.topology,
            keys=frozenset(o.key for o in own),
            links=frozenset((o.namespace, o.ifname) for o in own if isinstance(o, Link)),
            namespaces=frozenset(
                o.namespace for o in own if o.KIND == "netns" and o.namespace not in dom0s
            ),
            infra_keys=frozenset(o.key for o in infra if o.KIND != "netns"),
            infra_links=frozenset((o.namespace, o.ifname) for o in infra if isinstance(o, Link)),
        )

    def whose(self, obj: KernelObject) -> str | None:
        """'topology', 'infrastructure' or None (another topology's)."""
        ifname = getattr(obj, "ifname", None)
        if obj.key in self.keys or obj.namespace in self.namespaces:
            return "topology"
        if ifname is not None and (obj.namespace, ifname) in self.links:
            return "topology"
        if isinstance(obj, Link) and (
            obj.alias.startswith(f"nm:{self.topology}:")
            or (obj.master is not None and (obj.namespace, obj.master) in self.links)
        ):
            return "topology"  # ours elsewhere, or anything plugged into one of our bridges
        if isinstance(obj, Link) and obj.alias.startswith(("nm:-:",)):
            return "infrastructure"
        if obj.key in self.infra_keys:
            return "infrastructure"
        if ifname is not None and (obj.namespace, ifname) in self.infra_links:
            return "infrastructure"
        return None


def _owned_chain(topology: str, chain: str) -> bool:
    return chain in (
        topology_chain(topology),
        ebtables_chain(topology),
        DISPATCH,
    ) or chain.startswith(topology_prefix(topology))


def _run(namespace: str, argv: list[str]) -> str | None:
    """A command's output inside a namespace, or None when it failed."""
    tool = programs.which(argv[0])
    if tool is None:
        return None
    nsenter = programs.path("nsenter")
    result = subprocess.run(
        [nsenter, f"--net=/run/netns/{namespace}", tool, *argv[1:]],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return result.stdout if result.returncode == 0 else None


def _read_in(namespace: str, path: str) -> str | None:
    """A file of /proc/sys as a namespace sees it (sysctls are per network namespace)."""
    text = _run(namespace, ["cat", path])
    return text.strip() if text is not None else None


def state_checks(view: TopologyView, deployment: Deployment) -> list[Check]:
    topology = view.name
    checks: list[Check] = []
    planned = machine_plan(deployment)
    ownership = Ownership.of(deployment)
    kernel_changes = 0
    for change in planned.kernel.changes:
        if change.implied:
            continue
        owner = ownership.whose(change.obj)
        if owner is None:
            continue
        kernel_changes += 1
        checks.append(
            Check(
                Kind.STATE,
                change.obj.namespace,
                change.obj.label(),
                "as planned",
                _drift_word(str(change.op)),
                False,
                topology,
                probe="kernel" if owner == "topology" else "infrastructure",
                detail=f"apply would {change.line()}",
            )
        )
    rules = 0
    for fw in planned.firewall:
        for name in sorted(set(fw.desired.chains) | set(fw.observed.chains)):
            if not _owned_chain(topology, name):
                continue
            want = list(fw.desired.chains.get(name, ()))
            have = list(fw.observed.chains.get(name, ()))
            rules += len(want)
            if want == have:
                continue
            added = [r for r in have if r not in want]
            missing = [r for r in want if r not in have]
            parts = [f"+ {r}" for r in added] + [f"- {r}" for r in missing]
            if not parts:
                parts = ["the rules are in another order"]
            checks.append(
                Check(
                    Kind.STATE,
                    fw.namespace,
                    f"{fw.table} chain {name}",
                    f"{len(want)} rules as planned",
                    f"{len(have)} rules",
                    False,
                    topology,
                    probe=fw.table,
                    detail="; ".join(parts),
                )
            )
        if fw.desired.hooked and not fw.observed.hooked:
            checks.append(
                Check(
                    Kind.STATE,
                    fw.namespace,
                    f"{fw.table} FORWARD hook",
                    "present",
                    "missing",
                    False,
                    topology,
                    probe=fw.table,
                    detail=f"FORWARD does not jump to {DISPATCH}: no rule applies",
                )
            )
    dom0s = sorted({c.dom0 for c in deployment.configs.values() if c.dom0})
    existing = owned_namespaces()
    for dom0 in dom0s:
        if dom0 not in existing:
            continue
        checks.extend(_hook_first(topology, dom0))
        value = _read_in(dom0, BRIDGE_NF)
        if value is not None and value != "1":
            checks.append(
                Check(
                    Kind.STATE,
                    dom0,
                    "bridge-nf-call-iptables",
                    "1",
                    value,
                    False,
                    topology,
                    probe="sysctl",
                    detail="bridged traffic skips iptables here: no isolation rule applies",
                )
            )
    here = [h for h, c in deployment.configs.items() if c.dom0]
    checks.extend(_latency_built(view, deployment, planned.kernel.observed, here))
    remote = sorted(set(deployment.configs) - set(here))
    checks.extend(remote_checks(deployment, remote))
    if not checks:
        checks.append(
            Check(
                Kind.STATE,
                ", ".join(dom0s + remote),
                "kernel objects and rules",
                "as planned",
                "as planned",
                True,
                topology,
                probe="plan",
                detail=f"no kernel change pending; {rules} firewall rules as planned",
            )
        )
    return checks


def _drift_word(op: str) -> str:
    return {"+": "missing", "-": "not planned", "~": "differs"}.get(op, op)


def _hook_first(topology: str, dom0: str) -> list[Check]:
    """Nothing may come before netmanager's jump in FORWARD (a rule there decides first)."""
    text = _run(dom0, ["iptables-save", "-t", "filter"]) or ""
    forward = [
        line[len("-A FORWARD ") :] for line in text.splitlines() if line.startswith("-A FORWARD ")
    ]
    before: list[str] = []
    for rule in forward:
        if rule.endswith(f"-j {DISPATCH}") and HOOK_COMMENT in rule:
            break
        before.append(rule)
    else:
        return []  # no hook: reported with the chains
    deciding = [r for r in before if re.search(r"-j (ACCEPT|DROP|REJECT)\b", r)]
    if not deciding:
        return []
    return [
        Check(
            Kind.STATE,
            dom0,
            "iptables FORWARD",
            f"netmanager's hook ({DISPATCH}) first",
            f"{len(deciding)} rule(s) before it",
            False,
            topology,
            probe="iptables",
            detail="; ".join(f"+ {r}" for r in deciding),
        )
    ]


def _latency_built(
    view: TopologyView,
    deployment: Deployment,
    observed: Iterable[KernelObject],
    hosts: Iterable[str],
) -> list[Check]:
    """Every port of ``hosts`` that must delay, jitter or drop packets has a NetEm qdisc."""
    netem_on = {
        (o.namespace, o.ifname)
        for o in observed
        if isinstance(o, Qdisc) and isinstance(o.params, Netem)
    }
    return netem_checks(view, deployment, netem_on, hosts=hosts)


def not_observed(host: str, topology: str, probe: str, why: str) -> Check:
    """The state level of a host that could not be read (its agent, its guest): failed,
    with the reason."""
    return Check(
        Kind.STATE,
        host,
        "kernel objects and rules",
        "as planned",
        "not observed",
        False,
        topology,
        probe=probe,
        detail=why,
    )


def remote_checks(deployment: Deployment, hosts: Sequence[str]) -> list[Check]:
    """The state of real hosts (another machine's kernel): what each one's agent would
    change for the topology as applied, staged there and discarded (``plan``'s view)."""
    if not hosts:
        return []
    topology = deployment.topology
    lines, unreachable = agents_plan(deployment, hosts)
    checks = []
    for host in hosts:
        if host in unreachable:
            checks.append(not_observed(host, topology, "agent", unreachable[host]))
            continue
        for change in lines.get(host, ()):
            checks.append(
                Check(
                    Kind.STATE,
                    host,
                    change.object,
                    "as planned",
                    _drift_word(change.sign),
                    False,
                    topology,
                    probe="agent",
                    detail=f"apply would {change.sign} {change.object}"
                    + (f" ({change.reason})" if change.reason else ""),
                )
            )
    return checks


def netem_checks(
    view: TopologyView,
    deployment: Deployment,
    netem_on: set[tuple[str, str]],
    hosts: Iterable[str] | None = None,
) -> list[Check]:
    """Every port (of ``hosts``, by default all) that must delay, jitter or drop packets
    has a NetEm qdisc: ``netem_on`` holds the (namespace, ifname) that have one."""
    chosen = set(hosts) if hosts is not None else None
    checks = []
    virtual = view.model.virtual
    for nic in view.nics:
        if nic.port is None or (chosen is not None and nic.host not in chosen):
            continue
        vm = virtual.vm_by_name.get(nic.node)
        iface = vm.interface_in(nic.network) if vm else None
        shapings = [virtual.interface_shaping(iface)] if iface else []
        shapings += [
            p.shaping
            for p in virtual.pairs
            if nic.node in (p.a, p.b) and (p.network or nic.network) == nic.network
        ]
        asked = [s for s in shapings if s is not None and s.needs_netem]
        if not asked:
            continue
        dom0 = deployment.configs[nic.host].dom0
        if (dom0, nic.port.vif) in netem_on:
            continue
        s = asked[0]
        checks.append(
            Check(
                Kind.STATE,
                nic.node,
                f"{nic.network} port {nic.port.vif}",
                f"NetEm (delay {(s.delay_us or 0) / 1000:g}ms, loss {(s.loss_ppm or 0) / 1e4:g}%)",
                "no NetEm",
                False,
                view.name,
                probe="netem",
                detail="virtual.xml declares latency, jitter or loss that the kernel does not emulate",
            )
        )
    return checks
