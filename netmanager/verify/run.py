"""``verify``: measure applied topologies against their virtual.xml, level by level.

Levels, each including the ones before it (like Emulab's linktest): 1 reachability,
2 isolation, 3 paths, 4 latency, 5 loss, 6 bandwidth, 7 state.  ``only`` picks kinds
instead.  Several topologies verified together are also scanned for leaks between them:
every VM namespace of each is captured while all of them probe.

Everything runs inside the topologies' own VM namespaces, towards their own addresses;
the scanner refuses anything else.  A shared lock on the state directory keeps apply and
destroy from changing the network during the measurements.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from netmanager.apply.prepare import Deployment, EnvironmentProblem, local_features, prepare
from netmanager.apply.records import records
from netmanager.errors import Loc, NetmanagerError, single
from netmanager.kernel import netns
from netmanager.statedir import apply_lock
from netmanager.verify import connectivity, throughput
from netmanager.verify.connectivity import Keys, Owners
from netmanager.verify.distributed import (
    GUEST_PROBE_TIMEOUT_S,
    GuestIperf,
    GuestPings,
    Guests,
    Placement,
    distributed_scan,
    guest_state_checks,
)
from netmanager.verify.expect import Address, TopologyView
from netmanager.verify.report import LEVELS, Check, Kind, Report, kinds_for_level
from netmanager.verify.scan import ArpProbe, IpProbe, Scanner, ScanResult
from netmanager.verify.state import state_checks

Target = str | tuple[str | Path, str | Path]


class Progress(Protocol):
    def __call__(self, stage: str, done: int, total: int) -> None: ...


def _quiet(stage: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class Options:
    """How to verify.  ``budget_s`` bounds each check (an iperf3 run, a scan);
    ``jobs`` how many probes run at once (ping series; sockets in flight are 64 per job)."""

    kinds: tuple[Kind, ...] = LEVELS
    sample: int | None = None
    jobs: int = 4
    budget_s: float = 60.0
    udp: bool = True
    seed: int = 0
    probe_port: int = 7
    iperf_port: int = 5201
    timeout_s: float = 2.0


@dataclass(frozen=True)
class Subject:
    view: TopologyView
    deployment: Deployment


def domain_vms(subjects: Sequence[Subject]) -> dict[str, tuple[str, str]]:
    """The VMs that are libvirt domains: each one's namespace label (the guest itself is
    the VM) with its host and domain."""
    return {
        vm.namespace: (host, vm.domain.name)
        for s in subjects
        for host, config in s.deployment.configs.items()
        for vm in config.vms
        if vm.domain is not None
    }


class VerifyEnvironmentError(EnvironmentProblem):
    """verify cannot run here (not root, a tool missing)."""


def _problem(
    code: str, message: str, hint: str = "", *, environment: bool = False
) -> NetmanagerError:
    cls = VerifyEnvironmentError if environment else NetmanagerError
    return single(code, Loc("netmanager"), message, hint, "verify", cls)


def _targets(target: Target | Sequence[Target]) -> list[Target]:
    if isinstance(target, str):
        return [target]
    if (
        isinstance(target, tuple)
        and len(target) == 2
        and all(isinstance(t, str | Path) for t in target)
        and str(target[1]).endswith(".xml")
    ):
        return [target]  # type: ignore[list-item]
    return list(target)  # type: ignore[arg-type]


def load_subjects(targets: Sequence[Target]) -> list[Subject]:
    """Each target (a topology's name, or its real.xml and virtual.xml) as applied."""
    applied = records()
    subjects = []
    for target in targets:
        real: str | Path
        virtual: str | Path
        base_dir: str | None = None
        if isinstance(target, str):
            record = applied.get(target)
            if record is None:
                raise _problem(
                    "E730",
                    f"topology '{target}' is not applied on this machine",
                    "applied here: " + (", ".join(sorted(applied)) or "nothing"),
                )
            real, virtual, base_dir = record.real, record.virtual, record.base_dir or None
        else:
            real, virtual = target
        deployment = prepare(real, virtual, base_dir=base_dir)
        if deployment.topology not in applied:
            raise _problem(
                "E730",
                f"topology '{deployment.topology}' is not applied on this machine",
                "netmanager apply builds it; applied here: "
                + (", ".join(sorted(applied)) or "nothing"),
            )
        subjects.append(Subject(TopologyView(deployment.model, deployment.configs), deployment))
    names = [s.view.name for s in subjects]
    if len(set(names)) != len(names):
        raise _problem("E732", f"a topology is named twice: {', '.join(names)}")
    return subjects


def _owners(views: Sequence[TopologyView]) -> Owners:
    namespaces: dict[str, tuple[str, str]] = {}
    macs: dict[str, str] = {}
    for topology, record in records().items():
        for config in record.hosts.values():
            for port in config.ports:
                macs[port.mac] = f"{topology}/{port.vm}"
                namespaces[port.vm_namespace] = (topology, port.vm)
            for nat in config.nats:
                macs[nat.mac] = f"{topology}/gateway:{nat.network}"
                namespaces[nat.namespace] = (topology, f"gateway:{nat.network}")
        for guest in record.infrastructure.guests:
            for gnic in guest.nics:  # its 802.1Q sub-interfaces carry the same MAC
                macs[gnic.mac.lower()] = f"infrastructure/{guest.host}:{gnic.ifname}"
    for view in views:
        for node in view.nodes.values():
            namespaces[node.namespace] = (view.name, node.name)
            for nic in node.nics:
                macs[nic.mac] = f"{view.name}/{node.name}"
    return Owners(namespaces, macs)


def _netem() -> bool:
    return "netem" in local_features()


def run(subjects: Sequence[Subject], options: Options, progress: Progress = _quiet) -> Report:
    """Verify ``subjects`` (already loaded) with ``options``."""
    if os.geteuid() != 0:
        raise _problem(
            "E731",
            "verify needs root: it probes from inside the VMs' network namespaces",
            "run it as root (sudo netmanager verify ...)",
            environment=True,
        )
    start = time.monotonic()
    kinds = tuple(k for k in LEVELS if k in options.kinds)
    views = [s.view for s in subjects]
    report = Report(tuple(v.name for v in views), kinds)
    rng = random.Random(options.seed)
    keys = Keys()
    namespaces = {n.namespace for v in views for n in v.nodes.values()}
    placement = Placement.of(
        views,
        {h for s in subjects for h in s.deployment.infrastructure.guest_by_name},
        domain_vms(subjects),
    )
    owners = _owners(views)
    if options.sample is not None:
        report.notes.append(
            f"sampled: at most {options.sample} destinations per VM and kind, "
            f"{options.sample} pairs per network (seed {options.seed})"
        )
    guests = Guests(placement.domains)
    try:
        with apply_lock(shared=True):
            _levels(
                subjects,
                options,
                progress,
                report,
                rng,
                keys,
                namespaces,
                placement,
                guests,
                owners,
            )
    finally:
        guests.close()
    report.seconds = time.monotonic() - start
    return report


# At most this many unanswered probes get a second look: more than that is a path broken,
# not answers lost to a busy machine, and the second look would only double the wait.
SECOND_LOOK_MAX = 64


def _levels(
    subjects: Sequence[Subject],
    options: Options,
    progress: Progress,
    report: Report,
    rng: random.Random,
    keys: Keys,
    namespaces: set[str],
    placement: Placement,
    guests: Guests,
    owners: Owners,
) -> None:
    kinds = report.kinds
    views = [s.view for s in subjects]
    existing = (set(netns.listed()) & namespaces) - set(placement.guest_of)
    for host in placement.kernels:
        here = {ns for ns, h in placement.guest_of.items() if h == host}
        found = guests.namespaces(host)
        if guests.get(host) is None:
            if host in placement.domains:
                libvirt_host, domain, _ = placement.domains[host]
                report.notes.append(
                    f"domain '{domain}' on libvirt host '{libvirt_host}': its VM was not "
                    f"measured ({guests.why.get(host, 'its guest agent does not answer')})"
                )
            else:
                report.notes.append(f"guest host '{host}' does not run: its VMs are missing")
        existing |= here & found
    missing: dict[str, str] = {}
    for ns in namespaces - existing:
        key = placement.host(ns)
        if key is not None and key in placement.domains:
            missing[ns] = guests.why.get(key, "its guest agent does not answer")
        else:
            missing[ns] = f"namespace {ns} does not exist"
    targets = connectivity.targets_of(views)
    if placement.guests:
        report.notes.append(
            "VMs on guest host(s) "
            + ", ".join(sorted(placement.guests))
            + " were probed, measured and observed from inside their guests"
        )
    if placement.domains:
        report.notes.append(
            "VMs that are libvirt domains ("
            + ", ".join(sorted(d for _, d, _ in placement.domains.values()))
            + ") were probed and measured from inside their guests, through qemu-guest-agent"
        )

    def scan(
        ip_probes: list[IpProbe], arp_probes: list[ArpProbe], stage: str, capture: bool = True
    ) -> ScanResult:
        if placement:
            # probes wait longer for answers from guests, and the budget stretches with
            # their timeout: the same probes in flight take that much longer to send
            timeout_s = max(options.timeout_s, GUEST_PROBE_TIMEOUT_S)
            return distributed_scan(
                guests,
                placement,
                namespaces=existing,
                targets=targets,
                ip_probes=ip_probes,
                arp_probes=arp_probes,
                capture=capture,
                timeout_s=timeout_s,
                in_flight=64 * max(1, options.jobs),
                budget_s=options.budget_s * timeout_s / options.timeout_s,
                progress=lambda done, total: progress(stage, done, total),
            )
        return _scan(
            options, existing, targets, ip_probes, arp_probes, stage, progress, capture=capture
        )

    if Kind.REACHABILITY in kinds or Kind.ISOLATION in kinds:
        pairs, ip_probes, arp_probes = connectivity.plan_scan(
            views,
            kinds,
            port=options.probe_port,
            sample=options.sample,
            rng=rng,
            keys=keys,
            sources=existing,
        )
        result = scan(ip_probes, arp_probes, "scan")
        # A second look at the probes that had to be answered and were not: an answer
        # lost once on a busy machine (a guest's vCPU descheduled past the probe's
        # timeout and its retry) is not a broken path, which fails both looks.
        ip_again, arp_again = connectivity.unanswered(pairs, result)
        count = len(ip_again) + len(arp_again)
        if count and count <= SECOND_LOOK_MAX:
            again = scan(
                [p for p in ip_probes if p.key in ip_again],
                [a for a in arp_probes if a.key in arp_again],
                "scan",
            )
            answered = connectivity.merge_second_look(result, again)
            report.notes.append(
                f"{count} probe(s) that had to be answered were not; sent again, "
                f"{answered} answered"
            )
        report.checks += connectivity.scan_checks(pairs, result, kinds, owners, missing)
        if Kind.ISOLATION in kinds:
            report.checks += connectivity.capture_checks(views, result, owners)
    if Kind.PATH in kinds:
        plans, probes = connectivity.plan_paths(
            views, sample=options.sample, rng=rng, keys=keys, sources=existing
        )
        result = scan(probes, [], "paths", capture=False)
        report.checks += connectivity.path_checks(plans, result)
    if Kind.LATENCY in kinds or Kind.LOSS in kinds:
        netem = _netem()
        local_vms = any(n.host not in placement.guests for v in views for n in v.vms)
        if not netem and local_vms:
            report.notes.append(
                "this kernel has no NetEm: where virtual.xml declares no latency or loss, "
                "the round trip is reported as measured (not applicable)"
            )
        # with guest hosts, one series at a time (several at once on a guest's one
        # emulated CPU added up to +24 ms on aef-grid-vlan), those of VMs on guests run
        # by GuestPings (ping inside the guest, after the guests' own round trip)
        series_jobs = 1 if placement else options.jobs
        if placement.guests:
            report.notes.append(
                "latency series one at a time; from VMs on guest hosts, ping inside the "
                "guest, each pair between guests judged on its 10th percentile round trip "
                "less that of the guests' own"
            )
        elif placement:
            report.notes.append("latency series one at a time, ping inside the domains")
        latency_plans, probes = connectivity.plan_latency(
            views,
            sample=options.sample,
            jobs=series_jobs,
            with_loss=Kind.LOSS in kinds,
            keys=keys,
            sources=existing,
            guest_hosts=placement.guests,
        )
        in_guests = [p for p in latency_plans if placement.host(p.src.namespace) is not None]
        from_here = [p for p in probes if placement.host(p.namespace) is None]
        if from_here or not in_guests:
            result = _scan(
                options,
                existing - set(placement.guest_of),
                targets,
                from_here,
                [],
                "latency",
                progress,
                capture=False,
            )
        else:
            result = ScanResult({}, {}, {})
        if in_guests:
            pings = GuestPings(
                guests,
                placement,
                {
                    h: g
                    for s in subjects
                    for h, g in s.deployment.infrastructure.guest_by_name.items()
                },
                frozenset(targets),
                timeout_s=max(options.timeout_s, GUEST_PROBE_TIMEOUT_S),
            )
            result.ip.update(
                pings.run(in_guests, lambda done, total: progress("latency", done, total))
            )
        report.checks += connectivity.latency_checks(
            latency_plans, result, kinds, netem=netem, guest_hosts=placement.guests
        )
    if Kind.BANDWIDTH in kinds:
        directions = throughput.directions(views, options.sample)
        runner = {"runner": GuestIperf(guests, placement)} if placement else {}
        report.checks += throughput.bandwidth_checks(
            directions,
            udp=options.udp,
            port=options.iperf_port,
            budget_s=options.budget_s,
            sources=existing,
            progress=lambda done, total: progress("bandwidth", done, total),
            **runner,
        )
    if Kind.STATE in kinds:
        for index, subject in enumerate(subjects):
            progress("state", index, len(subjects))
            if subject.deployment.infrastructure.guest_by_name:
                report.checks += guest_state_checks(
                    subject.view, subject.deployment, guests, placement
                )
            else:
                report.checks += state_checks(subject.view, subject.deployment)
        progress("state", len(subjects), len(subjects))


def _scan(
    options: Options,
    namespaces: set[str],
    targets: set[Address],
    ip_probes: list[IpProbe],
    arp_probes: list[ArpProbe],
    stage: str,
    progress: Progress,
    *,
    capture: bool = True,
) -> ScanResult:
    scanner = Scanner(
        namespaces=namespaces,
        targets=targets,
        capture=namespaces if capture else (),
        timeout_s=options.timeout_s,
        in_flight=64 * max(1, options.jobs),
    )
    return scanner.run(
        ip_probes,
        arp_probes,
        progress=lambda done, total: progress(stage, done, total),
        budget_s=options.budget_s,
    )


def verify(
    target: Target | Sequence[Target],
    *,
    level: int = len(LEVELS),
    only: Iterable[Kind | str] | None = None,
    sample: int | None = None,
    jobs: int = 4,
    budget_s: float = 60.0,
    udp: bool = True,
    seed: int = 0,
    progress: Progress = _quiet,
) -> Report:
    """Measure applied topologies against their virtual.xml; see :class:`Report`.

    ``target``: a topology's name, a ``(real.xml, virtual.xml)`` pair, or a list of those
    (verified together, and against each other).  ``level`` 1-7 runs the kinds up to it
    (reachability, isolation, path, latency, loss, bandwidth, state); ``only`` picks
    kinds instead.  Raises NetmanagerError when a topology is not applied or verify
    cannot run here; a failed measurement is a failed check, never an exception.
    """
    kinds = tuple(Kind(k) for k in only) if only is not None else kinds_for_level(level)
    subjects = load_subjects(_targets(target))
    options = Options(kinds=kinds, sample=sample, jobs=jobs, budget_s=budget_s, udp=udp, seed=seed)
    return run(subjects, options, progress)


__all__ = ["Check", "Kind", "Options", "Report", "Subject", "load_subjects", "run", "verify"]
