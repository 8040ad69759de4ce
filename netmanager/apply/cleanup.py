"""A clean slate after a crash, as Mininet's ``mn -c``: everything on this machine that
carries netmanager's marks, listed and removed.

What netmanager marks as its own, and all that is looked at: namespaces whose names start
with its prefixes (hosts, switches, VMs, gateways, the emulated outside world: see
``NETMANAGER_NS_PREFIX``) and the feature probe's ``nmprobe-<pid>`` of a process that is
gone, the agents and guest hosts it started (their PIDs and command
lines in the state directory: a PID is signalled only while it is still that process),
and its records in the state directory (applied topologies, segment ids, the local
transport's journals, the agents' and guests' own state).  The feature probe and the
guest image cache stay.  Nothing else on the machine is touched; a topology applied
before has to be applied again.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netmanager.agentctl import processes as agent_procs
from netmanager.apply.local import forget_local_hosts
from netmanager.apply.records import owned_namespaces
from netmanager.kernel import netns
from netmanager.kernel.features import stale_probe_namespaces
from netmanager.mapping.segments import segments_path
from netmanager.statedir import apply_lock, state_dir

#: what the state directory holds of applied topologies (relative names)
RECORDS = ("topologies", "local", "agents", "schedules")


@dataclass
class Cleanup:
    """What was removed (or, ``dry_run``, would be)."""

    dry_run: bool
    agents: list[str] = field(default_factory=list)
    guests: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    #: emulated libvirt hosts whose keeper (and domains) or driver root were left
    libvirt: list[str] = field(default_factory=list)
    #: topologies whose scheduled migrations were still running (their driver)
    migrations: list[str] = field(default_factory=list)

    @property
    def removed(self) -> int:
        return (
            len(self.agents)
            + len(self.guests)
            + len(self.namespaces)
            + len(self.files)
            + len(self.libvirt)
            + len(self.migrations)
        )

    def lines(self) -> list[str]:
        verb = "would " if self.dry_run else ""
        return (
            [f"{verb}stop the scheduled migrations of {t}" for t in self.migrations]
            + [f"{verb}stop the agent of host {h}" for h in self.agents]
            + [f"{verb}power off guest host {h}" for h in self.guests]
            + [f"{verb}stop the libvirt domains of host {h}" for h in self.libvirt]
            + [f"{verb}remove namespace {n}" for n in self.namespaces]
            + [f"{verb}remove {f}" for f in self.files]
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "agents": self.agents,
            "guests": self.guests,
            "libvirt": self.libvirt,
            "migrations": self.migrations,
            "namespaces": self.namespaces,
            "files": self.files,
        }


def cleanup(*, dry_run: bool = False) -> Cleanup:
    """Stop netmanager's agents and guest hosts, remove its namespaces and records."""
    from netmanager.apply.schedule import running_moves, stop_moves
    from netmanager.guests import hosts as guest_hosts

    # the drivers of scheduled migrations first (a move in progress, which holds the
    # apply lock, finishes: then none starts another)
    driving = running_moves()
    if not dry_run:
        for topology in driving:
            stop_moves(topology, wait_s=5.0)
    with apply_lock():
        guests = sorted(guest_hosts.guests())
        # the agents by their records, and any whose manager died before it recorded
        # where the agent listens, by its command line
        processes = agent_procs.processes()
        found = Cleanup(
            dry_run,
            agents=sorted((set(agent_procs.running()) | set(processes.values())) - set(guests)),
            guests=guests,
            namespaces=sorted(owned_namespaces()) + stale_probe_namespaces(),
        )
        found.libvirt = _libvirt_hosts()
        found.migrations = driving
        where = state_dir()
        paths = [where / name for name in RECORDS] + [segments_path()]
        existing = [p for p in paths if p.exists()]
        found.files = [str(p) for p in existing]
        if dry_run:
            return found
        guest_hosts.stop_guests()
        agent_procs.stop_agents()
        forget_local_hosts()  # this process's own backends let go of the namespaces
        agent_procs.end(*agent_procs.processes())
        # an emulated libvirt host's keeper outlives its agent (by design): it goes, with
        # every domain of its embedded driver, also where the agent had died
        for host in found.libvirt:
            agent_procs.stop_libvirt(agent_procs.agents_dir() / host)
        # listed again now that no agent runs: one still committing when the list was
        # made may have created more since
        found.namespaces = sorted(
            set(found.namespaces) | owned_namespaces() | set(stale_probe_namespaces())
        )
        for name in found.namespaces:
            netns.remove(name)
        for path in existing:
            _remove(path)
    return found


def _libvirt_hosts() -> list[str]:
    """The hosts whose agent directory has a keeper that answers, or an embedded
    driver's root left."""
    from netmanager.host.domainhost import KEEPER_DIR
    from netmanager.hypervisor.keeper import running_keeper

    where = agent_procs.agents_dir()
    if not where.is_dir():
        return []
    return sorted(
        d.name
        for d in where.iterdir()
        if d.is_dir()
        and (running_keeper(d / KEEPER_DIR) is not None or agent_procs.embed_root(d).exists())
    )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
