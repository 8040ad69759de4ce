"""The pipeline's front: load -> map -> compile, into a :class:`Deployment`.

Mapping takes into account the segment ids and capacity other applied topologies hold
(their :mod:`records <netmanager.apply.records>`); what the hosts' kernels cannot build is
refused here, before any change.  :mod:`netmanager.apply.topology` builds the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from netmanager.apply.records import Record, problem, records
from netmanager.compile.configs import compile_infrastructure, compile_topology, guest_link_problems
from netmanager.compile.desired import RenderError, render_all
from netmanager.compile.hostconfig import HostConfig, Infrastructure, namespace_kinds
from netmanager.errors import Diagnostic, Diagnostics, ExitCode, Loc, NetmanagerError
from netmanager.gcpause import pausing
from netmanager.guests import GUEST_FEATURES
from netmanager.hypervisor.spec import DomainTemplate
from netmanager.inputs.loader import load_with_warnings
from netmanager.inputs.model import Encap, HypervisorKind, Model, TemplateSource
from netmanager.kernel import HostState, KernelStateError
from netmanager.mapping import Mapping, Occupied, load_allocations, map_model
from netmanager.mapping.moves import Move, holding, pinned
from netmanager.statedir import state_dir


class EnvironmentProblem(NetmanagerError):
    exit_code = ExitCode.ENVIRONMENT


@dataclass(frozen=True)
class Deployment:
    """A topology ready to apply: model, mapping and what each host builds."""

    model: Model
    mapping: Mapping
    configs: dict[str, HostConfig]
    infrastructure: Infrastructure
    warnings: tuple[Diagnostic, ...] = ()
    #: the VMs ``migrate`` moved, pinned where they went (kept in the record)
    moves: dict[str, Move] = field(default_factory=dict)

    @property
    def topology(self) -> str:
        return self.model.topology


def local_features(*, fresh: bool = False) -> frozenset[str]:
    """The capabilities this machine's kernel and tools give (probed once per kernel
    state, see :func:`netmanager.kernel.features.local_capabilities`)."""
    from netmanager.kernel.features import local_capabilities

    return local_capabilities(state_dir() / "features.json", fresh=fresh)


@pausing
def prepare(
    real: str | Path,
    virtual: str | Path,
    *,
    features: frozenset[str] | None = None,
    base_dir: str | Path | None = None,
    moves: dict[str, Move] | None = None,
) -> Deployment:
    """Load, map and compile a topology (no kernel change). Raises NetmanagerError.

    ``moves``: VMs pinned where ``migrate`` moved them (None: those the topology's record
    keeps that still hold for the files, see :mod:`netmanager.mapping.moves`)."""
    loaded = load_with_warnings(real, virtual, base_dir=base_dir)
    model = loaded.model
    applied = records()
    if moves is None:
        kept = applied.get(model.topology)
        moves = holding(model, kept.moves) if kept is not None else {}
    _refuse_other_prefix(applied, model.real.loc)
    others = {t: r for t, r in applied.items() if t != model.topology}
    occupied = sum((r.occupied for r in others.values()), Occupied())
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
        # a guest, or a real host (a stock kernel): its kernel has them all
        else GUEST_FEATURES
        if not (h.hypervisor is HypervisorKind.NETNS or h.embedded_libvirt)
        else features
        for h in model.real.hosts
    }
    mapping = map_model(
        pinned(model, moves),
        features=host_features,
        allocations=load_allocations(),
        occupied=occupied,
    )
    _refuse_misplaced_domains(model, mapping)
    try:
        configs = compile_topology(model, mapping, _netmanager_guest(model, mapping))
    except ValueError as exc:  # pragma: no cover - the guest template is built above
        raise problem(NetmanagerError, "E702", str(exc), "") from exc
    infrastructure = compile_infrastructure(model.real)
    for other in others.values():
        if other.infrastructure != infrastructure:
            raise problem(
                NetmanagerError,
                "E704",
                f"topology '{other.topology}' is applied on another physical environment "
                f"({other.real}); emulated hosts of one machine share one real.xml",
                f"destroy '{other.topology}' first, or describe both in the same real.xml",
                model.real.loc,
            )
    _precheck(model, configs, host_features)
    return Deployment(
        model, mapping, configs, infrastructure, loaded.warnings + mapping.warnings, dict(moves)
    )


def _refuse_misplaced_domains(model: Model, mapping: Mapping) -> None:
    """A VM that says it is a libvirt domain (domain="..." or <template>) placed on a host
    that runs no libvirt: E713 at the VM, before any change."""
    diags = Diagnostics()
    for vm in model.virtual.vms:
        host = model.real.host_by_name[mapping.placement[vm.name]]
        if vm.wants_libvirt and host.hypervisor is not HypervisorKind.LIBVIRT:
            what = "a <template>" if vm.template is not None else f"domain '{vm.domain}'"
            diags.error(
                "E713",
                vm.loc,
                f"VM '{vm.name}' is a libvirt domain ({what}) but is placed on host "
                f"'{host.name}', whose VMs are {'namespaces' if host.hypervisor is HypervisorKind.NETNS else 'namespaces in a guest'}",
                'pin it to a libvirt host (host="..."), or drop domain= and <template>',
            )
    diags.raise_if_errors("apply")


def _netmanager_guest(model: Model, mapping: Mapping) -> DomainTemplate | None:
    """The template of netmanager's own guest image, built (downloaded and cached) when a
    VM placed on a libvirt host asks for it (<template source="netmanager">)."""
    wanted = any(
        vm.template is not None
        and vm.template.source is TemplateSource.NETMANAGER
        and model.real.host_by_name[mapping.placement[vm.name]].hypervisor is HypervisorKind.LIBVIRT
        for vm in model.virtual.vms
    )
    if not wanted:
        return None
    from netmanager.guests.domains import guest_template

    return guest_template()


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
            raise problem(
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


def desired_state(configs: list[HostConfig], infrastructure: Infrastructure | None) -> HostState:
    """The machine's desired kernel state; raises before any change when it cannot be built."""
    try:
        objects = render_all(configs, infrastructure)
    except RenderError as exc:
        raise problem(
            NetmanagerError, "E702", str(exc), "netmanager doctor lists what this machine can build"
        ) from exc
    try:
        return HostState.checked(objects)
    except KernelStateError as exc:
        raise problem(NetmanagerError, "E705", f"the configuration cannot be built: {exc}") from exc
