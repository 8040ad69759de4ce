"""``netmanager migrate``: a running VM moves to another host, its network follows it.

Between hosts emulated on this machine (namespace hosts) the VM's namespace keeps running
— its processes and their connections survive — and its ports are re-homed, in three
steps through the same transaction as apply, by the hosts' agents or ``--local``:

1. **prepare the target**: its configuration with the VM's networks, their segment
   (bridge, VXLAN or VLAN), rules and forwarding, but not yet the VM (one transaction on
   the target alone); a failure rolls the target back and nothing else changed;
2. **switch over**: the source hands the VM over (NETMANAGER-MIB's nmTxnHandOver): the
   host ends of its ports move into the target's dom0, and the VM leaves the source's
   running configuration; a failure moves them back, and the target is returned to what
   it was;
3. **follow**: one transaction on every host the topology touches, to the configuration
   mapped with the VM on its new host: the target wires the ports (bridge, shaping both
   ways, isolation, anti-spoofing), every other host's forwarding follows, the source
   removes what is left of the VM there.

The record follows the VM (its placement, and a *move* that pins it there for every later
mapping, until the files change its pin: :mod:`netmanager.mapping.moves`), so that
``plan`` afterwards shows no change and ``status`` shows the new host.  What the target
lacks (CPUs, memory, a VM slot, a feature) is refused before any change, as apply refuses
it.  VMs on guest hosts (QEMU guests) cannot move between guest kernels (E782); libvirt
domains are not migrated yet (E783).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from netmanager.agentctl import processes as agent_procs
from netmanager.apply.commit import Progress, quiet, run, transaction
from netmanager.apply.prepare import Deployment, prepare
from netmanager.apply.records import Record, records, save_record
from netmanager.apply.topology import (
    _agent_transports,
    _local_transports,
    dom0s,
    host_candidates,
)
from netmanager.apply.transport import HostFailed, HostTransport
from netmanager.compile.hostconfig import HostConfig
from netmanager.errors import ApplyFailed, ExitCode, Loc, NetmanagerError, single
from netmanager.inputs.model import HypervisorKind
from netmanager.mapping import Occupied
from netmanager.mapping.moves import Move, file_pin
from netmanager.statedir import apply_lock


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

    def as_json(self) -> dict[str, Any]:
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
        }


def _without(config: HostConfig, vm: str) -> HostConfig:
    """A host's configuration without one VM (its namespace and ports)."""
    return replace(
        config,
        vms=tuple(v for v in config.vms if v.vm != vm),
        ports=tuple(p for p in config.ports if p.vm != vm),
    )


def _refuse(record: Record, deployment: Deployment, vm: str, to: str) -> str:
    """The VM's source host, once every reason to refuse was ruled out (before any
    change): E780–E784."""
    model = deployment.model
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
        if host.hypervisor is HypervisorKind.LIBVIRT:
            raise _problem(
                "E783",
                f"host '{name}' is a libvirt host: migrating libvirt domains is not supported yet",
                'migrate between hosts emulated here (hypervisor="netns")',
                loc=host.loc,
            )
    return source


def migrate(
    real: str | Path,
    virtual: str | Path,
    vm: str,
    to: str,
    *,
    progress: Progress = quiet,
    base_dir: str | Path | None = None,
) -> MigrateOutcome:
    """Move running VM ``vm`` of an applied topology to host ``to`` (see the module);
    raises NetmanagerError: E780–E784 before any change, E785 when a host failed (what
    happened to the VM is said)."""
    start = time.perf_counter()
    with apply_lock():
        from netmanager.inputs.loader import load

        topology = load(real, virtual, base_dir=base_dir).topology
        record = records().get(topology)
        if record is None:
            raise _problem(
                "E730",
                f"topology '{topology}' is not applied on this machine",
                "netmanager apply builds it",
            )
        moves = dict(record.moves)
        before = prepare(real, virtual, moves=moves, base_dir=base_dir)
        source = _refuse(record, before, vm, to)
        moves[vm] = Move(to, file_pin(before.model, vm))
        # every other VM stays where it is (the mapping is asked for the VM's move alone)
        for other, host in record.placement.items():
            if other != vm and other not in moves:
                moves[other] = Move(host, file_pin(before.model, other))
        try:
            after = prepare(real, virtual, moves=moves, base_dir=base_dir)
        except NetmanagerError as exc:
            diag = exc.diagnostics[0]
            raise _problem(
                "E784",
                f"VM '{vm}' cannot go to host '{to}': {diag.message}",
                "nothing was changed; " + (diag.hint or "free the capacity it needs there"),
            ) from exc
        # the pins of VMs that did not move are not kept: only the migrated VM's
        kept = {v: m for v, m in moves.items() if v == vm or v in record.moves}
        after = replace(after, moves=kept)
        infra = after.infrastructure
        hosts = sorted(set(record.hosts) | set(after.configs))
        here = dom0s(infra, hosts)
        if source not in here or to not in here:
            raise _problem(
                "E782",
                f"hosts '{source}' and '{to}' must both be emulated here to move a VM's "
                "namespace between them",
            )
        transports = _transports(record, after, hosts)
        try:
            return _run(record, after, transports, vm, source, to, here, start, progress)
        finally:
            for transport in transports.values():
                transport.close()


def _transports(record: Record, after: Deployment, hosts: list[str]) -> dict[str, HostTransport]:
    infra = after.infrastructure
    if record.transport == "local":
        return _local_transports(infra, hosts)
    real = after.model.real
    infos = agent_procs.ensure_agents(real, dom0s(infra, hosts))
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
) -> MigrateOutcome:
    topology = record.topology
    applied = records()
    changes: dict[str, int] = {}
    # 1. the target, without the VM yet
    prepared = {**after.configs, to: _without(after.configs[to], vm)}
    progress("prepare")
    result = run(
        transaction(
            topology,
            {to: transports[to]},
            host_candidates(prepared, topology, applied, [to]),
            progress=progress,
        )
    )
    changes["prepare"] = sum(result.changes.values())
    prepared_s = time.perf_counter() - start
    # 2. the switch-over
    progress("switch")
    try:
        run(transports[source].hand_over(topology, vm, here[to]))
    except HostFailed as exc:
        _restore_target(record, transports[to], to, applied)
        raise _problem(
            "E785",
            f"host '{source}' could not hand VM '{vm}' over: {exc}",
            f"VM '{vm}' runs on '{source}' with its network as before; the target was "
            "returned to what it was",
            MigrateFailed,
        ) from exc
    # 3. every host follows
    progress("follow")
    hosts = sorted(transports)
    try:
        result = run(
            transaction(
                topology,
                transports,
                host_candidates(after.configs, topology, applied, hosts),
                progress=progress,
            )
        )
    except ApplyFailed as exc:
        _save(record, after)  # the VM is the target's now: the next apply finishes it
        raise _problem(
            "E785",
            f"VM '{vm}' moved to host '{to}', but its network did not follow: "
            f"{exc.diagnostics[0].message}",
            "netmanager apply finishes it (the record has the VM on its new host)",
            MigrateFailed,
        ) from exc
    switched_s = time.perf_counter() - start
    changes["follow"] = sum(result.changes.values())
    _save(record, after)
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
    )


def _restore_target(
    record: Record, transport: HostTransport, host: str, applied: dict[str, Record]
) -> None:
    """The target back to its configuration before the migration (best effort: what is
    left is the next apply's)."""
    with contextlib.suppress(ApplyFailed):
        run(
            transaction(
                record.topology,
                {host: transport},
                host_candidates(record.hosts, record.topology, applied, [host]),
            )
        )


def _save(record: Record, after: Deployment) -> None:
    save_record(
        replace(
            record,
            hosts=after.configs,
            occupied=Occupied.of([after.mapping]),
            placement=dict(after.mapping.placement),
            applied_at=time.time(),
            moves=after.moves,
        )
    )
