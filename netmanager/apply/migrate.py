"""``netmanager migrate``: a running VM moves to another host, its network follows it.

Between hosts emulated on this machine (namespace hosts) the VM's namespace keeps running
— its processes and their connections survive — and its ports are re-homed, in three
steps through the same transaction as apply, by the hosts' agents or ``--local``:

1. **prepare the target**: its configuration with the VM's networks, their segment
   (bridge, VXLAN or VLAN), rules and forwarding, but not yet the VM (one transaction on
   the target alone); a failure rolls the target back and nothing else changed;
2. **switch over**: the source lets the VM go (NETMANAGER-MIB's nmTxnHandOver: the VM
   leaves its running configuration, nothing of the network changes there), then one
   transaction on the target takes it in (a stage with nmTxnAdopt, see
   :class:`~netmanager.host.protocol.Adoption`): once the target's rules for the VM's
   ports are in place, the host ends of its ports move from the source's dom0 into the
   target's and are wired at once (bridge, shaping both ways), and the VM announces
   itself (RARP, as QEMU does after a live migration) so that the bridges on the way
   forward to it; the VM is off the network only between the move and the wiring, inside
   the target's agent.  A failure there moves the ports back, the source takes the VM
   again and the target returns to what it was;
3. **follow**: one transaction on every other host the topology touches: their
   forwarding towards the VM follows, the source removes what is left of the VM there.

A live migration's own cost is emulated from the pre-copy model of
:mod:`netmanager.compile.precopy` (the VM's memory from virtual.xml, the rate at which the
guest dirties it, the rate the migration stream may use — the underlay path's capacity, or
QEMU's 128 MiB/s if lower — and the downtime allowed): before the switch-over its rounds
really cross the emulated underlay from the source's dom0 to the target's (an iperf3 TCP
stream of that many bytes at that rate, competing with the experiment's traffic as Themis
observed), and the stop-and-copy's bytes cross it while the VM's ports are off (the
target keeps them off for the modelled downtime before it wires them).

The record follows the VM (its placement, and a *move* that pins it there for every later
mapping, until the files change its pin: :mod:`netmanager.mapping.moves`), so that
``plan`` afterwards shows no change and ``status`` shows the new host.  What the target
lacks (CPUs, memory, a VM slot, a feature) is refused before any change, as apply refuses
it.  VMs on guest hosts (QEMU guests) cannot move between guest kernels (E782).

A libvirt domain netmanager defined moves for real, by libvirt's live migration
(:mod:`netmanager.hypervisor.migration`): between real libvirt hosts, to a host whose
``migration-uri`` real.xml gives (``qemu+ssh://...``, ``qemu+tls://...``: libvirt's own
authentication; ``migration-p2p`` makes it peer-to-peer), or whose hypervisor URI names
its host, and on this machine from a
libvirt host emulated here (``qemu:///embed``) to a host on the system libvirt daemon
(``qemu:///system``, a "real" host whose agent builds its dom0 in a namespace) — the one
direction libvirt 9.0 migrates on one machine; every other pair is E783, with the reason
(:func:`libvirt_pair`).  The steps are the same, the switch-over is libvirt's: after
**prepare**, the source host's *agent* makes libvirt's call (NETMANAGER-MIB's
nmTxnMigrate: its keeper holds the domain's connection; ``virDomainMigrate3`` or, peer to
peer, ``virDomainMigrateToURI3``, ``VIR_MIGRATE_LIVE``, the NICs rewritten for the target
with the taps the target's configuration names; here the stream goes over a unix socket),
and as soon as it sends (libvirt's job has processed memory: the target's libvirt has
the incoming domain) one transaction on the target takes the domain's taps in as the
target's libvirt made them (an :class:`~netmanager.host.protocol.Adoption` from ``.``:
on a real host they appear in its own namespace, on this machine in the root namespace,
from which they are moved into the host's dom0) and wires them — before the switch-over,
so that none of the guest's frames enters the root namespace here; then **follow** (the
source, whose libvirt undefined the domain, cleaned).  The manager needs no access to
either host's libvirt.
No pre-copy is emulated: ``--migration-bandwidth`` and ``--max-downtime`` are the real
migration's (``VIR_MIGRATE_PARAM_BANDWIDTH``, ``virDomainMigrateSetMaxDowntime``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import secrets
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netmanager import programs
from netmanager.agentctl import processes as agent_procs
from netmanager.agentctl.processes import MIGRATION_TARGET_URI
from netmanager.apply.commit import Progress, quiet, run, transaction
from netmanager.apply.prepare import Deployment, prepare
from netmanager.apply.records import Record, applied_record, records, save_record
from netmanager.apply.topology import (
    _agent_transports,
    _local_transports,
    dom0s,
    host_candidates,
)
from netmanager.apply.transport import HostFailed, HostTransport
from netmanager.compile.hostconfig import HostConfig, Segment, host_namespace
from netmanager.compile.precopy import (
    QEMU_DEFAULT_DOWNTIME_LIMIT_S,
    QEMU_DEFAULT_MAX_BANDWIDTH_BPS,
    PrecopyParams,
    PrecopyPlan,
)
from netmanager.compile.precopy import plan as plan_precopy
from netmanager.errors import ApplyFailed, ExitCode, Loc, NetmanagerError, single
from netmanager.host.kernelhost import StepFaults
from netmanager.host.protocol import Adoption
from netmanager.hypervisor.spec import DomainSpec
from netmanager.inputs.model import Host, HypervisorKind, Model
from netmanager.mapping import Occupied
from netmanager.mapping.moves import Move, file_pin
from netmanager.statedir import apply_lock

if TYPE_CHECKING:
    from collections.abc import Mapping

    from netmanager.apply.runtime import LinkChange, Spot
    from netmanager.hypervisor.migration import MigrationRequest, MigrationResult


log = logging.getLogger(__name__)


class MigrateFailed(NetmanagerError):
    """A migration a host refused or could not make (exit code 4)."""

    exit_code = ExitCode.APPLY_FAILED


def _problem(
    code: str,
    message: str,
    hint: str = "",
    cls: type[NetmanagerError] = NetmanagerError,
    loc: Loc | None = None,
) -> NetmanagerError:
    return single(code, loc or Loc("netmanager"), message, hint, "migrate", cls)


@dataclass(frozen=True)
class Precopy:
    """How the migration's cost is emulated (None of it: no stream, no modelled pause):
    the guest's dirty rate in bytes/s, the stream's rate cap in bit/s (None: QEMU's
    default), the downtime allowed."""

    dirty_bytes_per_s: float = 0.0
    bandwidth_bps: float | None = None
    max_downtime_s: float = QEMU_DEFAULT_DOWNTIME_LIMIT_S


#: an idle guest, QEMU's defaults
DEFAULT_PRECOPY = Precopy()


@dataclass(frozen=True)
class MigrateOutcome:
    topology: str
    vm: str
    source: str
    target: str
    #: seconds from the start to the VM's ports leaving the source, to their being wired
    #: on the target, and in all
    prepared_s: float
    switched_s: float
    seconds: float
    transport: str
    changes: dict[str, int] = field(default_factory=dict)
    #: the pre-copy model's plan, as emulated (None: not emulated)
    precopy: PrecopyPlan | None = None
    #: a libvirt domain's live migration: libvirt's call, in seconds (None: a namespace)
    libvirt_s: float | None = None

    def as_json(self) -> dict[str, Any]:
        plan = self.precopy
        return {
            "topology": self.topology,
            "vm": self.vm,
            "from": self.source,
            "to": self.target,
            "prepared_s": round(self.prepared_s, 4),
            "switched_s": round(self.switched_s, 4),
            "seconds": round(self.seconds, 4),
            "transport": self.transport,
            "changes": dict(sorted(self.changes.items())),
            "libvirt_s": None if self.libvirt_s is None else round(self.libvirt_s, 4),
            "precopy": None
            if plan is None
            else {
                "rounds": len(plan.rounds),
                "bytes": plan.total_bytes,
                "stop_copy_bytes": plan.stop_copy_bytes,
                "downtime_s": round(plan.downtime_s, 6),
                "seconds": round(plan.total_s, 4),
                "converged": plan.converged,
            },
        }


def _merged(base: Segment, other: Segment) -> Segment:
    """A segment that carries both ``base``'s forwarding and ``other``'s: the tunnel
    either has, every remote VTEP of both, every FDB entry of both (a MAC with two
    destinations goes to both: the VM that moves is reached where it is), the lower MTU."""
    return replace(
        base,
        mtu=min(base.mtu, other.mtu),
        tunnel=base.tunnel or other.tunnel,
        underlay=base.underlay or other.underlay,
        local=base.local or other.local,
        remotes=tuple(sorted(set(base.remotes) | set(other.remotes))),
        fdb=tuple(sorted(set(base.fdb) | set(other.fdb))),
    )


def transit(base: HostConfig, other: HostConfig | None) -> HostConfig:
    """``base`` (what a host carries of the topology while the VM moves: its
    configuration before the migration, or the target's after it less the VM) with the
    forwarding of ``other`` (its configuration on the other side of the migration) too,
    so that the VM is reached where it is before, during and after the switch-over
    (make before break): segments merged (:func:`_merged`), the ports on them at the
    merged MTU."""
    if other is None:
        return base
    theirs = {s.network: s for s in other.segments}
    segments = tuple(
        _merged(s, theirs[s.network]) if s.network in theirs else s for s in base.segments
    )
    mine = {s.network for s in base.segments}
    segments += tuple(s for s in other.segments if s.network not in mine and s.tunnel)
    mtu = {s.network: s.mtu for s in segments}
    ports = tuple(
        replace(p, mtu=mtu[p.network]) if mtu.get(p.network, p.mtu) != p.mtu else p
        for p in base.ports
    )
    if segments == base.segments and ports == base.ports:
        return base
    return replace(base, segments=segments, ports=ports)


def _refuse(record: Record, model: Model, vm: str, to: str) -> str:
    """The VM's source host, once every reason to refuse was ruled out (before any
    change): E780–E783."""
    virtual, real = model.virtual, model.real
    if vm not in virtual.vm_by_name or vm not in record.placement:
        raise _problem(
            "E780",
            f"topology '{record.topology}' has no VM '{vm}'",
            f"its VMs: {', '.join(sorted(record.placement))}",
        )
    source = record.placement[vm]
    if to not in real.host_by_name:
        raise _problem(
            "E780",
            f"real.xml has no host '{to}'",
            f"its hosts: {', '.join(sorted(real.host_by_name))}",
        )
    if to == source:
        raise _problem("E781", f"VM '{vm}' is on host '{to}' already", "name another host")
    for name in (source, to):
        host = real.host_by_name[name]
        if host.hypervisor is HypervisorKind.GUEST:
            raise _problem(
                "E782",
                f"host '{name}' is a guest host (a QEMU guest with a kernel of its own): "
                f"its VMs are namespaces of that kernel and cannot move to another",
                'migrate between hosts emulated here (hypervisor="netns")',
                loc=host.loc,
            )
    hosts = (real.host_by_name[source], real.host_by_name[to])
    if any(h.hypervisor is HypervisorKind.LIBVIRT for h in hosts):
        config = record.hosts.get(source)
        spec = next((v.domain for v in config.vms if v.vm == vm), None) if config else None
        why = libvirt_pair(*hosts, spec)
        if why is not None:
            message, hint, at = why
            raise _problem("E783", f"VM '{vm}' cannot move to host '{to}': {message}", hint, loc=at)
    return source


def libvirt_pair(
    source: Host, target: Host, spec: DomainSpec | None
) -> tuple[str, str, Loc | None] | None:
    """Why a VM (a libvirt domain of ``spec`` where it is one) cannot move from host
    ``source`` to ``target`` when either is a libvirt host — (message, hint, where) —,
    or None: a domain netmanager defined, QEMU can migrate (no virtio-9p share), from a
    real libvirt host to another that real.xml gives a ``migration-uri``, or from a
    libvirt host emulated here to the system libvirt daemon of this machine."""
    here = (
        'migrate it from a libvirt host emulated here (hypervisor="qemu:///embed") to a host '
        'on the system daemon (hypervisor="qemu:///system")'
    )
    libvirt = HypervisorKind.LIBVIRT
    if (source.hypervisor is libvirt) != (target.hypervisor is libvirt):
        kinds = {
            h.name: "libvirt" if h.hypervisor is libvirt else h.hypervisor.value
            for h in (source, target)
        }
        return (
            f"host '{source.name}' is a {kinds[source.name]} host and host '{target.name}' a "
            f"{kinds[target.name]} host: a libvirt domain and a namespace cannot become each other",
            "migrate between two hosts of one kind",
            target.loc,
        )
    if spec is None or not spec.defined:
        return (
            f"domain '{spec.name if spec else '?'}' is the user's (attached): netmanager "
            "live-migrates only the domains it defines (<template>)",
            "give the VM a <template>, or move the domain with libvirt yourself",
            None,
        )
    if target.embedded_libvirt:
        return (
            f"host '{target.name}': libvirt 9.0 cannot migrate into an embedded driver "
            "('Domain autodestroy not supported for embedded drivers yet')",
            here,
            target.loc,
        )
    if source.embedded_libvirt and target.uri != MIGRATION_TARGET_URI:
        return (
            f"host '{target.name}': a domain of a libvirt host emulated here migrates to "
            f"{MIGRATION_TARGET_URI} only (this machine's daemon), not to {target.uri}",
            here,
            target.loc,
        )
    if not source.embedded_libvirt and not target.migration_target:
        return (
            f"host '{target.name}' has no migration-uri in real.xml and its hypervisor URI "
            f"({target.uri}) names no host: the libvirt of host '{source.name}' cannot reach it",
            f"give host '{target.name}' migration-uri=\"qemu+ssh://{target.name}/system\" (or "
            "qemu+tls://...), the URI its libvirt is reached with from the other hosts",
            target.loc,
        )
    template = spec.template
    if template is not None and template.shares:
        return (
            f"its template shares a host directory over virtio-9p (mount tag "
            f"'{template.shares[0].tag}'; netmanager's guest image, source=\"netmanager\", "
            "runs from one): QEMU refuses to migrate a guest that has it mounted",
            "a template without shares (kernel, initrd and cmdline of a guest that needs "
            "nothing of the host, or a disk image)",
            None,
        )
    return None


def migrate(
    real: str | Path,
    virtual: str | Path,
    vm: str,
    to: str,
    *,
    progress: Progress = quiet,
    base_dir: str | Path | None = None,
    precopy: Precopy | None = DEFAULT_PRECOPY,
    faults: StepFaults | None = None,
) -> MigrateOutcome:
    """Move running VM ``vm`` of an applied topology to host ``to`` (see the module), its
    cost emulated from the pre-copy model with ``precopy`` (None: not emulated); raises
    NetmanagerError: E780–E784 before any change, E785 when a host failed (what
    happened to the VM is said).  ``faults`` (tests, a topology applied with ``--local``):
    fail that step, counting the kernel and firewall steps of every commit in order."""
    start = time.perf_counter()
    with apply_lock():
        from netmanager.inputs.loader import load

        model = load(real, virtual, base_dir=base_dir)
        record = applied_record(model.topology, "migrate")
        moves = dict(record.moves)
        source = _refuse(record, model, vm, to)
        moves[vm] = Move(to, file_pin(model, vm))
        # every other VM stays where it is (the mapping is asked for the VM's move alone)
        for other, host in record.placement.items():
            if other != vm and other not in moves:
                moves[other] = Move(host, file_pin(model, other))
        try:
            after = prepare(real, virtual, moves=moves, base_dir=base_dir)
        except NetmanagerError as exc:
            diag = exc.diagnostics[0]
            raise _problem(
                "E784",
                f"with VM '{vm}' on host '{to}' the topology does not map: {diag.message}",
                "nothing was changed; " + (diag.hint or "free the capacity it needs there"),
            ) from exc
        # the pins of VMs that did not move are not kept: only the migrated VM's
        kept = {v: m for v, m in moves.items() if v == vm or v in record.moves}
        after = replace(after, moves=kept)
        infra = after.infrastructure
        hosts = sorted(set(record.hosts) | set(after.configs))
        if model.real.host_by_name[to].hypervisor is HypervisorKind.LIBVIRT:
            transports = _transports(record, after, hosts, None)
            try:
                return _run_libvirt(
                    record, after, transports, vm, source, to, start, progress, precopy
                )
            finally:
                for transport in transports.values():
                    transport.close()
        here = dom0s(infra, hosts)
        if source not in here or to not in here:
            raise _problem(
                "E782",
                f"hosts '{source}' and '{to}' must both be emulated here to move a VM's "
                "namespace between them",
            )
        if faults is not None and record.transport != "local":
            raise ValueError("faults number the steps of the local transport")
        transports = _transports(record, after, hosts, faults)
        try:
            plan = _plan(after, vm, source, to, precopy) if precopy is not None else None
            return _run(record, after, transports, vm, source, to, here, start, progress, plan)
        finally:
            for transport in transports.values():
                transport.close()


def _transports(
    record: Record, after: Deployment, hosts: list[str], faults: StepFaults | None
) -> dict[str, HostTransport]:
    infra = after.infrastructure
    if record.transport == "local":
        return _local_transports(infra, hosts, faults)
    real = after.model.real
    infos = agent_procs.ensure_agents(real, dom0s(infra, hosts))
    infos |= agent_procs.remote_agents(real, hosts)
    return _agent_transports(real, infos, "migrate")


def _run(
    record: Record,
    after: Deployment,
    transports: dict[str, HostTransport],
    vm: str,
    source: str,
    to: str,
    here: dict[str, str],
    start: float,
    progress: Progress,
    plan: PrecopyPlan | None = None,
) -> MigrateOutcome:
    topology = record.topology
    applied = records()
    changes: dict[str, int] = {}
    # 1. every host ready for the VM on either side
    ready = _prepare(record, after, transports, vm, source, to, applied, progress)
    prepared = ready.configs
    changes["prepare"] = ready.changes
    prepared_s = time.perf_counter() - start
    stream = _Stream(after, source, to) if plan is not None else None
    if stream is not None and plan is not None:
        progress("pre-copy")
        try:
            stream.send(plan.total_bytes - plan.stop_copy_bytes, plan)
        except OSError as exc:
            _restore(record, transports, prepared, applied)
            raise _problem(
                "E785",
                f"the migration stream from '{source}' to '{to}' failed: {exc}",
                f"VM '{vm}' runs on '{source}' with its network as before",
                MigrateFailed,
            ) from exc
    # the runtime changes of the VM's ports go with it
    from netmanager.apply.runtime import vm_changes

    carried = vm_changes(record, vm)
    # 2. the switch-over: the source lets the VM go (nothing of the network changes
    # there), then the target takes its ports in and wires them in one commit
    progress("switch")
    try:
        run(transports[source].hand_over(topology, vm))
    except HostFailed as exc:
        _restore(record, transports, prepared, applied)
        raise _problem(
            "E785",
            f"host '{source}' could not let VM '{vm}' go: {exc}",
            f"VM '{vm}' runs on '{source}' with its network as before; the target was "
            "returned to what it was",
            MigrateFailed,
        ) from exc
    pause_ms = round(plan.downtime_s * 1000) if plan is not None else 0
    adopt = Adoption(topology, vm, here[source], pause_ms)
    copying = None
    if stream is not None and plan is not None and plan.stop_copy_bytes:
        # the stop-and-copy crosses the underlay while the VM's ports are off (the
        # target's pause): the VM has moved either way, the pause is what it costs
        copying = threading.Thread(
            target=_quietly, args=(stream.send, plan.stop_copy_bytes, plan), daemon=True
        )
        copying.start()
    try:
        result = run(
            transaction(
                topology,
                {to: transports[to]},
                host_candidates(after.configs, topology, applied, [to]),
                progress=progress,
                adopt={to: adopt},
            )
        )
    except ApplyFailed as exc:
        # the target gave the ports back (its commit undone): the source takes the VM
        # again, the target goes back to what it was
        why = exc.diagnostics[0].message
        try:
            run(
                transaction(
                    topology,
                    {source: transports[source]},
                    host_candidates(record.hosts, topology, applied, [source]),
                )
            )
        except ApplyFailed as again:
            raise _problem(
                "E787",
                f"host '{to}' could not take VM '{vm}' in ({why}), and host '{source}' "
                f"could not wire it again: {again.diagnostics[0].message}",
                f"VM '{vm}' and its namespace are on '{source}'; netmanager apply wires its "
                "ports there again",
                MigrateFailed,
            ) from exc
        _restore(record, transports, prepared, applied)
        raise _problem(
            "E785",
            f"host '{to}' could not take VM '{vm}' in: {why}",
            f"VM '{vm}' runs on '{source}' with its network as before (it was off for the "
            "attempt); the target was returned to what it was",
            MigrateFailed,
        ) from exc
    finally:
        if copying is not None:
            copying.join()
    switched_s = time.perf_counter() - start
    changes["wire"] = sum(result.changes.values())
    _follow(record, after, transports, vm, source, to, applied, progress, carried, changes)
    return MigrateOutcome(
        topology,
        vm,
        source,
        to,
        prepared_s,
        switched_s,
        time.perf_counter() - start,
        record.transport,
        changes,
        plan,
    )


#: the user QEMU runs as under Debian's system libvirt daemon: the migration stream's
#: socket is made in a directory it may write
QEMU_USER = "libvirt-qemu"


def _run_libvirt(
    record: Record,
    after: Deployment,
    transports: dict[str, HostTransport],
    vm: str,
    source: str,
    to: str,
    start: float,
    progress: Progress,
    precopy: Precopy | None,
) -> MigrateOutcome:
    """A libvirt domain moves by libvirt's live migration (see the module)."""
    from netmanager.apply.runtime import vm_changes
    from netmanager.hypervisor.migration import MigrationError, MigrationResult, Where

    topology = record.topology
    applied = records()
    absent = sorted(h for h in {*record.hosts, to} if h not in transports)
    if absent:
        raise _problem(
            "E785",
            f"host '{absent[0]}' has no agent netmanager reaches",
            f"nothing was changed; VM '{vm}' runs on '{source}'",
            MigrateFailed,
        )
    changes: dict[str, int] = {}
    prepared = _prepare(record, after, transports, vm, source, to, applied, progress)
    changes["prepare"] = prepared.changes
    prepared_s = time.perf_counter() - start
    real = after.model.real
    local = real.host_by_name[source].embedded_libvirt  # both on this machine
    sockets = _stream_directory() if local else None
    request = _domain_request(record, after, vm, source, to, precopy, sockets)
    carried = vm_changes(record, vm)
    progress("migrate")
    adopt_failed = ""
    began = threading.Event()

    def migrate_there() -> MigrationResult:
        try:
            return run(transports[source].migrate_domain(request, began.set))
        finally:
            began.set()

    called = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="migrate") as pool:
            # the source's agent makes libvirt's call; as soon as it sends (the target's
            # libvirt has the incoming domain, its taps made), the target takes the taps
            # in and wires them, before the switch-over.  A migration that fails before
            # that asks nothing of the target
            migrating = pool.submit(migrate_there)
            began.wait()
            if not migrating.done() or migrating.exception() is None:
                try:
                    result = run(
                        transaction(
                            topology,
                            {to: transports[to]},
                            host_candidates(after.configs, topology, applied, [to]),
                            progress=progress,
                            adopt={to: Adoption(topology, vm, ".")},
                        )
                    )
                    changes["wire"] = sum(result.changes.values())
                except ApplyFailed as exc:
                    adopt_failed = exc.diagnostics[0].message
            try:
                migrated = migrating.result()
            except MigrationError as exc:
                where = exc.where
                why = exc.reason
            except Exception as exc:  # the agent could not be asked: not known where it is
                where, why = Where.UNKNOWN, str(exc)
            else:
                where, why = Where.TARGET, ""
    finally:
        if sockets is not None:
            shutil.rmtree(sockets, ignore_errors=True)
    if why and where is Where.TARGET and "wire" in changes and not adopt_failed:
        # libvirt failed after its switch-over (the source's undefine, say): the domain
        # runs on the target, wired there: the migration stands
        log.warning("migration of %s: %s; the domain runs on %s, wired", vm, why, to)
        migrated = MigrationResult(request.domain, request.dest_uri, time.perf_counter() - called)
        why = ""
    if why and where is Where.SOURCE:
        _restore(record, transports, prepared.configs, applied)
        raise _problem(
            "E785",
            f"libvirt could not migrate VM '{vm}' to host '{to}': {why}",
            f"VM '{vm}' runs on '{source}' with its network as before; the target was "
            "returned to what it was",
            MigrateFailed,
        )
    if why:
        raise _problem(
            "E787",
            f"libvirt's migration of VM '{vm}' to host '{to}' failed: {why} (the domain "
            f"is {where.text})",
            f"see the domain on both hosts (virsh list); netmanager apply defines it on "
            f"'{source}' again where it runs nowhere",
            MigrateFailed,
        )
    if adopt_failed or "wire" not in changes:
        _save(record, after, record.hosts[source].without_vm(vm), source)
        raise _problem(
            "E787",
            f"VM '{vm}' runs on host '{to}' (libvirt migrated it in "
            f"{migrated.duration_s:.2f} s), but the host could not take its taps in: "
            f"{adopt_failed or 'the domain did not appear on the target in time'}",
            "its taps are where the target's libvirt made them, not wired; netmanager "
            "destroy and apply start it over",
            MigrateFailed,
        )
    switched_s = time.perf_counter() - start
    _follow(record, after, transports, vm, source, to, applied, progress, carried, changes)
    return MigrateOutcome(
        topology,
        vm,
        source,
        to,
        prepared_s,
        switched_s,
        time.perf_counter() - start,
        record.transport,
        changes,
        None,
        migrated.duration_s,
    )


def _domain_request(
    record: Record,
    after: Deployment,
    vm: str,
    source: str,
    to: str,
    precopy: Precopy | None,
    sockets: Path | None,
) -> MigrationRequest:
    """What the source's agent asks of libvirt: each NIC (by the MAC netmanager defined
    it with) an ethernet NIC whose tap the target's configuration names, the rate and
    pause allowed; to the target's ``migration-uri`` (peer-to-peer where real.xml says
    so), or, from a libvirt host emulated here, to this machine's system daemon with the
    stream over a unix socket in ``sockets`` (no address of any namespace)."""
    from netmanager.hypervisor.migration import MigrationRequest, TargetNic

    config = record.hosts[source]
    spec = next(v.domain for v in config.vms if v.vm == vm and v.domain is not None)
    taps = {p.network: p.vif for p in after.configs[to].ports if p.vm == vm}
    ports = sorted((p for p in config.ports if p.vm == vm), key=lambda p: p.index)
    bandwidth = 0
    downtime = 0
    if precopy is not None:
        if precopy.bandwidth_bps:
            bandwidth = max(1, int(precopy.bandwidth_bps / 8 / 2**20))
        downtime = round(precopy.max_downtime_s * 1000)
    target = after.model.real.host_by_name[to]
    here = after.model.real.host_by_name[source].embedded_libvirt
    return MigrationRequest(
        spec.name,
        MIGRATION_TARGET_URI if here else target.migration_target or "",
        tuple(TargetNic(p.mac, taps[p.network]) for p in ports),
        data_uri=f"unix://{sockets}/stream.sock" if sockets is not None else "",
        peer2peer=target.migration_p2p and not here,
        bandwidth_mibps=bandwidth,
        max_downtime_ms=downtime,
    )


def _stream_directory() -> Path:
    """A directory of its own for the migration stream's socket, which the target's QEMU
    (as the system daemon's user) creates."""
    directory = Path("/run/netmanager") / f"migrate-{secrets.token_hex(4)}"
    directory.mkdir(parents=True, mode=0o700)
    try:
        user = pwd.getpwnam(QEMU_USER)
    except KeyError:
        return directory
    os.chown(directory, user.pw_uid, user.pw_gid)
    return directory


@dataclass(frozen=True)
class _Prepared:
    configs: dict[str, HostConfig]
    changes: int


def _prepare(
    record: Record,
    after: Deployment,
    transports: dict[str, HostTransport],
    vm: str,
    source: str,
    to: str,
    applied: dict[str, Record],
    progress: Progress,
) -> _Prepared:
    """Step 1: every host ready for the VM on either side — the target without the VM
    yet, the others as they were; each with the forwarding of both sides.  E785 (every
    host rolled back) when a host cannot."""
    prepared = {
        h: transit(
            after.configs[h].without_vm(vm) if h == to else record.hosts[h],
            record.hosts.get(h) if h == to else after.configs.get(h),
        )
        for h in transports
        if h == to or h in record.hosts
    }
    progress("prepare")
    try:
        result = run(
            transaction(
                record.topology,
                {h: transports[h] for h in prepared},
                host_candidates(
                    {**after.configs, **prepared}, record.topology, applied, sorted(prepared)
                ),
                progress=progress,
            )
        )
    except ApplyFailed as exc:
        raise _problem(
            "E785",
            f"the hosts could not be made ready for VM '{vm}': {exc.diagnostics[0].message}",
            f"VM '{vm}' runs on '{source}' with its network as before: every host was rolled back",
            MigrateFailed,
        ) from exc
    return _Prepared(prepared, sum(result.changes.values()))


def _follow(
    record: Record,
    after: Deployment,
    transports: dict[str, HostTransport],
    vm: str,
    source: str,
    to: str,
    applied: dict[str, Record],
    progress: Progress,
    carried: Mapping[Spot, LinkChange],
    changes: dict[str, int],
) -> None:
    """After the switch-over: every other host to the new placement's configuration
    (forwarding towards the VM, the source cleaned), the record saved with the VM on
    ``to``, then its runtime changes made again there; E785 when a step fails (the VM
    is the target's either way)."""
    from netmanager.apply.runtime import carry

    topology = record.topology
    progress("follow")
    others = sorted(h for h in transports if h != to)
    try:
        result = run(
            transaction(
                topology,
                {h: transports[h] for h in others},
                host_candidates(after.configs, topology, applied, others),
                progress=progress,
            )
        )
    except ApplyFailed as exc:
        _save(record, after, record.hosts[source].without_vm(vm), source)
        raise _problem(
            "E787",
            f"VM '{vm}' moved to host '{to}' with its network, but other hosts did not "
            f"follow: {exc.diagnostics[0].message}",
            "netmanager apply finishes it (forwarding towards the VM, what is left of it "
            f"on '{source}')",
            MigrateFailed,
        ) from exc
    changes["follow"] = sum(result.changes.values())
    _save(record, after)
    if carried:
        progress("runtime changes")
        try:
            carry(records()[topology], to, carried)
        except NetmanagerError as exc:
            raise _problem(
                "E787",
                f"VM '{vm}' moved to host '{to}' with its network, but the runtime changes "
                f"of its ports could not be made there: {exc.diagnostics[0].message}",
                "its ports have virtual.xml's values: netmanager set makes them again",
                MigrateFailed,
            ) from exc


def _restore(
    record: Record,
    transports: dict[str, HostTransport],
    prepared: dict[str, HostConfig],
    applied: dict[str, Record],
) -> None:
    """The hosts made ready back to their configuration before the migration (best
    effort: what is left is the next apply's)."""
    hosts = sorted(prepared)
    with contextlib.suppress(ApplyFailed):
        run(
            transaction(
                record.topology,
                {h: transports[h] for h in hosts},
                host_candidates(record.hosts, record.topology, applied, hosts),
            )
        )


def _save(
    record: Record,
    after: Deployment,
    left: HostConfig | None = None,
    source: str = "",
) -> None:
    """The record with the VM on its new host; ``left``: what the source still carries
    of the topology when it could not follow (kept in the record, so that the next apply
    touches the source and removes it)."""
    hosts = dict(after.configs)
    if left is not None and source not in hosts:
        hosts[source] = left
    save_record(
        replace(
            record,
            hosts=hosts,
            occupied=Occupied.of([after.mapping]),
            placement=dict(after.mapping.placement),
            applied_at=time.time(),
            moves=after.moves,
        )
    )


def _quietly(send: Any, count: int, plan: PrecopyPlan) -> None:
    """The stop-and-copy's bytes (the VM has moved either way: a stream that fails only
    costs the emulation its traffic)."""
    with contextlib.suppress(OSError):
        send(count, plan)


def _underlay(after: Deployment, host: str) -> tuple[str, str, int]:
    """(dom0, underlay address, its link's capacity in bit/s) of a host emulated here."""
    dom0 = host_namespace(host)
    for link in after.infrastructure.links:
        if link.a_namespace == dom0 and link.a_address is not None:
            return dom0, str(link.a_address.ip), link.capacity_bps
    raise OSError(f"host '{host}' has no underlay address to send the migration stream to")


def _plan(after: Deployment, vm: str, source: str, to: str, precopy: Precopy) -> PrecopyPlan:
    """The pre-copy model of this migration: the VM's memory, the stream's rate (the
    underlay path's capacity, capped by ``precopy.bandwidth_bps`` or QEMU's default)."""
    memory = after.model.virtual.vm_by_name[vm].memory_mib * 2**20
    try:
        capacity = min(_underlay(after, source)[2], _underlay(after, to)[2])
    except OSError:
        capacity = QEMU_DEFAULT_MAX_BANDWIDTH_BPS
    cap = precopy.bandwidth_bps or QEMU_DEFAULT_MAX_BANDWIDTH_BPS
    return plan_precopy(
        PrecopyParams(
            memory_bytes=memory,
            dirty_bytes_per_s=precopy.dirty_bytes_per_s,
            bandwidth_bps=min(capacity, cap),
            max_downtime_s=precopy.max_downtime_s,
        )
    )


class _Stream:
    """The migration's own traffic, from the source's dom0 to the target's over the
    emulated underlay: an iperf3 TCP stream of a given number of bytes at the plan's
    rate."""

    def __init__(self, after: Deployment, source: str, to: str) -> None:
        self.source, self.source_ip, _ = _underlay(after, source)
        self.target, self.target_ip, _ = _underlay(after, to)

    def send(self, count: int, plan: PrecopyPlan) -> None:
        if count <= 0:
            return
        iperf3 = programs.which("iperf3")
        if iperf3 is None:
            raise OSError("iperf3 is not installed (the migration stream is sent with it)")
        nsenter = programs.path("nsenter")
        rate = int(plan.rounds[0].bytes * 8 / plan.rounds[0].seconds) if plan.rounds else 0
        port = str(5301 + secrets.randbelow(200))
        server = subprocess.Popen(
            [
                nsenter,
                f"--net=/run/netns/{self.target}",
                iperf3,
                "-s",
                "-1",
                "-p",
                port,
                "-B",
                self.target_ip,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            argv = [
                nsenter,
                f"--net=/run/netns/{self.source}",
                iperf3,
                "-c",
                self.target_ip,
                "-p",
                port,
                "-B",
                self.source_ip,
                "-n",
                str(count),
            ]
            if rate:
                argv += ["-b", str(rate)]
            deadline = time.monotonic() + 5
            while True:  # until the server listens
                done = subprocess.run(
                    argv,
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=60 + count * 8 / max(rate, 1),
                )
                if done.returncode == 0:
                    return
                if "refused" not in done.stderr or time.monotonic() > deadline:
                    said = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
                    raise OSError(f"iperf3: {said[-1]}")
                time.sleep(0.05)
        finally:
            try:  # a one-off server ends with the test: what was in flight has landed
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
