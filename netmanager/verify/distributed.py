"""verify for topologies whose VMs live in other kernels than this machine's: on guest
hosts (``hypervisor="guest"``), or libvirt domains (their guest agent's calls through
:class:`~netmanager.verify.domainguest.DomainGuest`, the VM the guest itself).

A VM of a guest host is a namespace of that guest's kernel, out of this process's reach.
Everything verify measures is therefore done where the VM is:

* **scan** (reachability, isolation, paths, latency, loss): the probes are split by the
  host of their source namespace and the captures by the host of theirs; each guest host
  runs :mod:`netmanager.verify.scanworker` (the same :class:`~netmanager.verify.scan.Scanner`,
  started with ``Guest.spawn``), this machine's namespaces a local Scanner in a thread.
  Two phases: every scanner opens its captures and says ``ready``; only when all are ready
  does the manager say ``go``; each sends its probes and says ``done``, and keeps capturing
  until the manager, once all are done, says ``stop``.  The results are merged into one
  :class:`~netmanager.verify.scan.ScanResult` (a probe seen by another kernel's capture is
  matched by the shared token, a TCP SYN by its ports), so the checks are the usual ones.
  Round trips are timed by the kernel that sent the echo, never across guests.
* **bandwidth**: the iperf3 server is spawned in the sender's namespace inside its guest,
  the client run in the receiver's (another guest, or this machine), its JSON parsed as
  :mod:`netmanager.verify.iperf` does.
* **state**: :mod:`netmanager.verify.stateworker` runs in the guest with netmanager's
  kernel engine and compares what that kernel holds with the host's HostConfig.

:class:`Guests` keeps one control connection per guest for the whole verify (QEMU's
control socket serves one client at a time) and lets go of them at the end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netmanager import programs
from netmanager.apply import readback
from netmanager.apply.prepare import Deployment
from netmanager.compile.hostconfig import GuestHost, HostConfig
from netmanager.errors import ExitCode, Loc, NetmanagerError, single
from netmanager.guests import hosts as guest_hosts
from netmanager.guests.errors import GuestError
from netmanager.guests.qemu import Guest
from netmanager.host.firewall import DISPATCH
from netmanager.hypervisor.keeper import GuestAgent
from netmanager.verify import connectivity, iperf, scanworker, stateworker
from netmanager.verify.connectivity import PING_INTERVAL_S, LatencyPlan
from netmanager.verify.domainguest import DomainGuest
from netmanager.verify.expect import Address, TopologyView
from netmanager.verify.iperf import IperfError, Throughput
from netmanager.verify.pressure import CpuWatch
from netmanager.verify.report import Check, Kind
from netmanager.verify.scan import ArpProbe, IpProbe, IpResult, Scanner, ScanResult
from netmanager.verify.state import _drift_word, netem_checks, not_observed, remote_checks

WORKER = Path(scanworker.__file__).resolve()
PROJECT = WORKER.parents[2]
GUEST_TMP = "/tmp"  # a tmpfs inside every guest
POLL_S = 0.1
# How long a probe from or to a VM on a guest host waits for its answer (ARP included):
# guests on two shared cores answer late, not never.  With 8-10 guests of other test runs
# here (CPU pressure above 90 %), the slowest echo answers seen took 0.9 s (scan worker)
# and 0.3 s (ping); 2 s, and 1 s for ARP, timed out in CI right after a boot.
GUEST_PROBE_TIMEOUT_S = 6.0
# ARP requests a second from each scanner: spread, not in one burst that overflows the
# guests' NIC rings (aef-grid-vlan: some 300 per guest, in 1.5 s)
GUEST_ARP_RATE = 200.0
READY_TIMEOUT_S = 120.0  # a worker's Python start and captures (TCG, a busy machine)
FINISH_TIMEOUT_S = 60.0


class VerifyGuestProblem(NetmanagerError):
    """A guest host stopped answering during verify (exit code 6)."""

    exit_code = ExitCode.ENVIRONMENT


def guest_problem(host: str, message: str, hint: str = "") -> NetmanagerError:
    """E733 for a guest host, or for a domain (its key ``HOST/DOMAIN``)."""
    if "/" in host:
        libvirt_host, domain = host.split("/", 1)
        where = f"domain '{domain}' on libvirt host '{libvirt_host}'"
        default = f"netmanager status; virsh qemu-agent-command {domain} guest-ping"
    else:
        where = f"guest host '{host}'"
        default = f"netmanager hosts status; its console is in {guest_hosts.run_dir(host)}"
    return single(
        "E733",
        Loc("netmanager"),
        f"{where}: {message}",
        hint or default,
        "verify",
        VerifyGuestProblem,
    )


# ------------------------------------------------------------------------- placement

AnyGuest = Guest | DomainGuest


def domain_key(host: str, domain: str) -> str:
    """How verify names the kernel of a domain VM: ``HOST/DOMAIN`` (a host's name has no
    slash)."""
    return f"{host}/{domain}"


@dataclass(frozen=True)
class Placement:
    """Which VM namespaces live in another kernel than this machine's: a guest host's
    (its name), or a libvirt domain's (:func:`domain_key`; the VM is the guest itself)."""

    guest_of: Mapping[str, str]  # namespace -> guest host or domain key
    guests: frozenset[str]  # the guest hosts among them
    # domain key -> (libvirt host, domain, the VM's namespace label)
    domains: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        views: Iterable[TopologyView],
        guest_hosts_: Iterable[str],
        domains: Mapping[str, tuple[str, str]] | None = None,
    ) -> Placement:
        """``domains``: the namespace label of each VM that is a libvirt domain, with its
        (host, domain)."""
        chosen = frozenset(guest_hosts_)
        where = {
            node.namespace: node.host
            for view in views
            for node in view.nodes.values()
            if node.host in chosen
        }
        keyed = {}
        for namespace, (host, domain) in (domains or {}).items():
            key = domain_key(host, domain)
            where[namespace] = key
            keyed[key] = (host, domain, namespace)
        return cls(where, frozenset(chosen & set(where.values())), keyed)

    def host(self, namespace: str) -> str | None:
        return self.guest_of.get(namespace)

    @property
    def kernels(self) -> list[str]:
        """Every guest host and domain that carries VMs, sorted."""
        return sorted(set(self.guest_of.values()))

    def __bool__(self) -> bool:
        return bool(self.guest_of)


class Guests:
    """One control connection per guest host, kept for the whole verify; domains reached
    through one agent connection per libvirt host."""

    def __init__(self, domains: Mapping[str, tuple[str, str, str]] | None = None) -> None:
        self._guests: dict[str, AnyGuest | None] = {}
        self.tmp = f"{GUEST_TMP}/nm-verify-{uuid.uuid4().hex[:10]}"
        self._dirs: set[str] = set()
        self._domains = dict(domains or {})
        self._agents: dict[str, GuestAgent] = {}
        #: why a domain could not be reached (its key's), for the checks that it fails
        self.why: dict[str, str] = {}

    def get(self, host: str) -> AnyGuest | None:
        """The running guest of ``host`` (a domain's key: the domain, when its agent
        answers), or None when it does not run."""
        if host not in self._guests:
            if host in self._domains:
                self._guests[host] = self._domain(host)
            else:
                self._guests[host] = guest_hosts.guest_of(host)
        return self._guests[host]

    def _domain(self, key: str) -> DomainGuest | None:
        libvirt_host, domain, namespace = self._domains[key]
        if libvirt_host not in self._agents:
            try:
                self._agents[libvirt_host] = readback.domain_agent(libvirt_host)
            except NetmanagerError as exc:
                self.why[key] = str(exc.diagnostics[0].message)
                return None
        guest = DomainGuest(self._agents[libvirt_host], libvirt_host, domain, namespace)
        silence = guest.silence()
        if silence is None:
            return guest
        self.why[key] = silence
        return None

    def need(self, host: str) -> AnyGuest:
        guest = self.get(host)
        if guest is None:
            if host in self._domains:
                raise guest_problem(host, self.why.get(host, "its guest agent does not answer"))
            raise guest_problem(host, "its guest does not run", "netmanager apply boots it")
        return guest

    def workdir(self, host: str) -> str:
        """This verify's directory inside the guest, made on first use (removed by
        :meth:`close`)."""
        if host not in self._dirs:
            call(host, self.need(host).write_file, f"{self.tmp}/.verify", "\n")
            self._dirs.add(host)
        return self.tmp

    def namespaces(self, host: str) -> set[str]:
        """The network namespaces inside the guest of ``host`` (none if it does not run;
        a domain's VM, the guest itself, when its agent answers)."""
        guest = self.get(host)
        if guest is None:
            return set()
        if isinstance(guest, DomainGuest):
            return {guest.namespace}
        done = call(host, lambda: guest.run(["ls", "-1", "/run/netns"], timeout=30))
        return set(done.stdout.split()) if done.returncode == 0 else set()

    def close(self) -> None:
        for host, guest in self._guests.items():
            if guest is None:
                continue
            try:
                if host in self._dirs:
                    guest.run(["rm", "-r", "-f", self.tmp], timeout=30)
            except (GuestError, OSError):
                pass
            finally:
                guest.disconnect()
        self._guests.clear()
        for agent in self._agents.values():
            close = getattr(agent, "close", None)
            if close is not None:
                close()
        self._agents.clear()


def call(host: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, a guest's failure turned into E733 naming the host."""
    try:
        return fn(*args, **kwargs)
    except GuestError as exc:
        raise guest_problem(host, str(exc.diagnostics[0].message)) from exc


# ------------------------------------------------------------------------------ scan


@dataclass
class _Part:
    """One scanner's share: where it runs, and what it says."""

    host: str | None  # None: this machine
    ip: list[IpProbe] = field(default_factory=list)
    arp: list[ArpProbe] = field(default_factory=list)
    namespaces: set[str] = field(default_factory=set)
    capture: set[str] = field(default_factory=set)
    directory: str = ""
    pid: int | None = None
    result: dict[str, Any] | None = None
    error: str = ""


class _LocalScan:
    """The local Scanner in a thread, driven by the same phases as the workers."""

    def __init__(self, part: _Part, scanner: Scanner, budget_s: float | None) -> None:
        self.part = part
        self.scanner = scanner
        self.budget_s = budget_s
        self.ready = threading.Event()
        self.go = threading.Event()
        self.done = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._body, name="verify-local-scan", daemon=True)

    def _body(self) -> None:
        def ready() -> None:
            self.ready.set()
            if not self.go.wait(READY_TIMEOUT_S * 4):
                raise TimeoutError("no go from the manager")

        def until() -> bool:
            self.done.set()
            return self.stop.wait(0.02)

        try:
            result = self.scanner.run(
                self.part.ip, self.part.arp, budget_s=self.budget_s, ready=ready, until=until
            )
            self.part.result = scanworker.result_json(self.scanner, result)
        except Exception as exc:
            self.part.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ready.set()
            self.done.set()


def distributed_scan(
    guests: Guests,
    placement: Placement,
    *,
    namespaces: set[str],
    targets: set[Address],
    ip_probes: Sequence[IpProbe],
    arp_probes: Sequence[ArpProbe],
    capture: bool,
    timeout_s: float,
    in_flight: int,
    budget_s: float | None,
    progress: Callable[[int, int], None] | None = None,
) -> ScanResult:
    """The probes sent from where their namespaces are, every capture open before the
    first probe anywhere, the answers merged into one result.  ``timeout_s`` is every
    probe's, ARP's too (see GUEST_PROBE_TIMEOUT_S)."""
    start = time.monotonic()
    parts: dict[str | None, _Part] = {}

    def part(namespace: str) -> _Part:
        host = placement.host(namespace)
        if host not in parts:
            parts[host] = _Part(host)
        return parts[host]

    for namespace in sorted(namespaces):
        p = part(namespace)
        p.namespaces.add(namespace)
        if capture:
            p.capture.add(namespace)
    for probe in ip_probes:
        part(probe.namespace).ip.append(probe)
    for a in arp_probes:
        part(a.namespace).arp.append(a)
    token = os.urandom(8)
    total = len(ip_probes) + len(arp_probes)
    local: _LocalScan | None = None
    try:
        for p in parts.values():
            if p.host is None:
                scanner = Scanner(
                    namespaces=p.namespaces,
                    targets=targets,
                    capture=p.capture,
                    timeout_s=timeout_s,
                    in_flight=in_flight,
                    token=token,
                    arp_timeout_s=timeout_s,
                    arp_rate=GUEST_ARP_RATE,
                )
                local = _LocalScan(p, scanner, budget_s)
                local.thread.start()
            else:
                _start_worker(guests, p, token, targets, timeout_s, in_flight, budget_s)
        _wait_state(guests, parts, local, "ready", READY_TIMEOUT_S)
        for p in parts.values():
            if p.host is not None and not p.error:
                _signal(guests, p, "go")
        if local is not None:
            local.go.set()
        if progress is not None:
            progress(0, total)
        scan_time = (budget_s or 600.0) + 4 * timeout_s + max((p.at for p in ip_probes), default=0)
        _wait_state(guests, parts, local, "done", scan_time + FINISH_TIMEOUT_S, poll_s=0.25)
        for p in parts.values():
            if p.host is not None and not p.error:
                _signal(guests, p, "stop")
        if local is not None:
            local.stop.set()
            local.thread.join(FINISH_TIMEOUT_S)
        _collect(guests, parts)
    finally:
        if local is not None:
            local.go.set()
            local.stop.set()
        for p in parts.values():
            _end_worker(guests, p)
    if progress is not None:
        progress(total, total)
    return merge(parts.values(), ip_probes, arp_probes, time.monotonic() - start)


def _signal(guests: Guests, p: _Part, name: str) -> None:
    assert p.host is not None
    call(p.host, guests.need(p.host).write_file, f"{p.directory}/{name}", f"{name}\n")


def _start_worker(
    guests: Guests,
    p: _Part,
    token: bytes,
    targets: set[Address],
    timeout_s: float,
    in_flight: int,
    budget_s: float | None,
) -> None:
    assert p.host is not None
    host = p.host
    guest = guests.get(host)
    if guest is None:
        p.error = f"guest host '{host}' does not run"
        return
    p.directory = f"{guests.workdir(host)}/scan-{uuid.uuid4().hex[:8]}"
    doc = {
        "token": token.hex(),
        "namespaces": sorted(p.namespaces),
        "targets": sorted(str(t) for t in targets),
        "capture": sorted(p.capture),
        "timeout_s": timeout_s,
        "arp_timeout_s": timeout_s,
        "arp_rate": GUEST_ARP_RATE,
        "in_flight": in_flight,
        "budget_s": budget_s,
        "wait_s": READY_TIMEOUT_S * 4,
        **scanworker.probes_json(p.ip, p.arp),
    }
    directory = p.directory
    worker = str(WORKER)
    if isinstance(guest, DomainGuest):
        # the VM is the guest itself; its NICs carry the guest's own names
        doc["root"] = sorted(p.namespaces)
        names = call(host, guest.ifname_of)
        doc["arp"] = [[*a[:2], names.get(a[3].lower(), a[2]), *a[3:]] for a in doc["arp"]]
        worker = call(host, guest.stage_worker, guests.workdir(host))
    call(host, lambda: guest.write_file(f"{directory}/input.json", json.dumps(doc)))
    python = str(guest.spec.python)
    p.pid = call(
        host, guest.spawn, [python, "-I", worker, directory], log=f"{directory}/worker.log"
    )


def _state_of(guests: Guests, p: _Part, state: str) -> bool:
    """Whether the worker of ``p`` reached ``state`` (or ended: a worker that ended early
    failed, and says why in its result).  ``ready`` and ``done`` are read from its state
    file, ``finished`` is its exit (guestd reads and polls: no process is started in
    the guest while anything is measured)."""
    assert p.host is not None and p.pid is not None
    host, directory = p.host, p.directory
    guest = guests.need(host)
    if call(host, guest.poll, p.pid) is not None:
        return True
    reached = {"ready": ("ready", "done", "finished"), "done": ("done", "finished")}
    if state not in reached:
        return False
    text = call(host, guest.read_file, f"{directory}/state")
    return text is not None and text.strip() in reached[state]


def _wait_state(
    guests: Guests,
    parts: Mapping[str | None, _Part],
    local: _LocalScan | None,
    state: str,
    timeout_s: float,
    poll_s: float = POLL_S,
) -> None:
    """Until every scanner has reached ``state``."""
    deadline = time.monotonic() + timeout_s
    waiting = {h for h, p in parts.items() if h is not None and not p.error}
    while waiting:
        for host in sorted(waiting):
            if _state_of(guests, parts[host], state):
                waiting.discard(host)
        if not waiting:
            break
        if time.monotonic() > deadline:
            for host in waiting:
                parts[host].error = f"its scan worker was not {state} within {timeout_s:.0f}s"
            break
        time.sleep(poll_s)
    if local is not None:
        event = local.ready if state == "ready" else local.done
        if not event.wait(max(1.0, deadline - time.monotonic())):
            local.part.error = f"the local scan was not {state} within {timeout_s:.0f}s"


def _collect(guests: Guests, parts: Mapping[str | None, _Part]) -> None:
    _wait_state(guests, parts, None, "finished", FINISH_TIMEOUT_S)
    for p in parts.values():
        if p.host is None or p.error:
            continue
        host, directory = p.host, p.directory
        guest = guests.need(host)
        text = call(host, guest.read_file, f"{directory}/result.json")
        try:
            doc = json.loads(text) if text is not None else None
        except json.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict):
            log = call(host, guest.run, ["tail", "-n", "5", f"{directory}/worker.log"])
            p.error = f"its scan worker left no result: {log.stdout.strip()[-300:]}"
        elif "error" in doc:
            p.error = f"its scan worker failed: {doc['error']}"
        else:
            p.result = doc


def _end_worker(guests: Guests, p: _Part) -> None:
    """The worker ended by its PID if it still runs (a failure on the way), and reaped."""
    if p.host is None:
        return
    guest = guests.get(p.host)
    if guest is None:
        return
    if p.pid is not None:
        _stop_spawned(guest, p.pid)


def _stop_spawned(guest: AnyGuest, pid: int) -> None:
    """A process ``guest.spawn`` started: ended by its PID if it still runs, and waited
    for (up to 10 s); a guest that no longer answers has nothing left to end."""
    try:
        if guest.poll(pid) is None:
            guest.kill(pid)
            deadline = time.monotonic() + 10
            while guest.poll(pid) is None and time.monotonic() < deadline:
                time.sleep(POLL_S)
    except (GuestError, OSError):
        pass


def merge(
    parts: Iterable[_Part],
    ip_probes: Sequence[IpProbe],
    arp_probes: Sequence[ArpProbe],
    seconds: float,
) -> ScanResult:
    """One result out of every scanner's: each probe's outcome from the scanner that sent
    it, its deliveries from every capture that saw it."""
    ip: dict[int, IpResult] = {}
    arp: dict[int, set[str]] = {}
    frames: dict[str, Any] = {}
    syn_map: dict[tuple[str, int, str, int], int] = {}
    from collections import Counter

    done = [p for p in parts]
    for p in done:
        if p.result is None:
            why = p.error or "no result"
            where = f"guest host '{p.host}'" if p.host else "this machine"
            for probe in p.ip:
                ip[probe.key] = IpResult(error=f"not run ({where}: {why})")
            for a in p.arp:
                arp[a.key] = set()
            continue
        doc = p.result
        for key, (answer, error, responder, exceeded, rtt, delivered) in doc["ip"].items():
            ip[int(key)] = IpResult(
                answer=answer,
                error=error,
                responder=Address(responder) if responder else None,
                time_exceeded=bool(exceeded),
                rtt_ms=rtt,
                delivered=set(delivered),
            )
        for key, macs in doc["arp"].items():
            arp[int(key)] = set(macs)
        for namespace, counts in doc["frames"].items():
            frames[namespace] = Counter(counts)
        for s, sp, d, dp, key in doc["syn_map"]:
            syn_map[(s, int(sp), d, int(dp))] = int(key)
    for p in done:
        if p.result is None:
            continue
        for key, namespaces in p.result["foreign"].items():
            if int(key) in ip:
                ip[int(key)].delivered.update(namespaces)
        for s, sp, d, dp, namespace in p.result["syns"]:
            found = syn_map.get((s, int(sp), d, int(dp)))
            if found is not None and found in ip:
                ip[found].delivered.add(namespace)
    for probe in ip_probes:
        ip.setdefault(probe.key, IpResult(error="not run"))
    for a in arp_probes:
        arp.setdefault(a.key, set())
    return ScanResult(ip, arp, frames, seconds)


# --------------------------------------------------------------------------- latency

LATENCY_ATTEMPTS = 3


@dataclass(frozen=True)
class PingSeries:
    """What ``ping`` printed: how many echoes it sent and the round trip of each one
    answered, by sequence number (1 for the first)."""

    sent: int
    rtts: Mapping[int, float]
    error: str = ""


def ping_argv(
    binary: str, src: str, dst: str, *, count: int, interval_s: float, timeout_s: float
) -> list[str]:
    """``count`` echoes from ``src`` to ``dst``, one every ``interval_s``; ping sends every
    one of them however late a busy guest's timers fire, and waits for the answers until
    ``timeout_s`` after the last one is sent (``-W``).  A deadline (``-w``) would stop a
    series slowed by an emulated CPU before it had sent its echoes; the caller's own
    timeout bounds the whole."""
    return [
        binary,
        "-n",
        "-c",
        str(count),
        "-i",
        f"{interval_s:g}",
        "-W",
        f"{timeout_s:g}",
        "-I",
        src,
        dst,
    ]


_ECHO = re.compile(r"icmp_seq=(\d+) .*time=([0-9.]+) ms")
_SENT = re.compile(r"(\d+) packets transmitted")


def parse_ping(out: str) -> PingSeries:
    """iputils ping's output: one line per answer (duplicates left out), then the
    summary."""
    rtts: dict[int, float] = {}
    for line in out.splitlines():
        found = _ECHO.search(line)
        if found is not None and "(DUP!)" not in line:
            rtts.setdefault(int(found[1]), float(found[2]))
    sent = _SENT.search(out)
    if sent is None:
        tail = out.strip()[-200:] or "nothing"
        return PingSeries(0, rtts, error=f"ping printed no summary: {tail}")
    return PingSeries(int(sent[1]), rtts)


def _results(series: PingSeries, keys: Sequence[int]) -> dict[int, IpResult]:
    out: dict[int, IpResult] = {}
    for index, key in enumerate(keys):
        rtt = series.rtts.get(index + 1)
        if rtt is not None:
            out[key] = IpResult(answer="echo reply", rtt_ms=rtt)
        elif series.error:
            out[key] = IpResult(error=series.error)
        elif index < series.sent:
            out[key] = IpResult(error="no answer")
        else:
            out[key] = IpResult(error="not run (ping stopped before sending it)")
    return out


@dataclass
class GuestPings:
    """The latency series of pairs whose first VM is on a guest host: ``ping`` run inside
    that guest, in the VM's namespace (a C program that sleeps between echoes, where a
    scan worker's Python would keep the guest's one emulated CPU busy), one series at a
    time with nothing else measuring meanwhile, so that the link carries only the series.

    Ahead of each series between two guests, the guests' own round trip: ``ping`` from
    the first guest's root namespace to the other's underlay address (real.xml's; its
    own address where both VMs share a guest), the path without the VMs' NetEm.  A
    series whose estimate (:func:`~netmanager.verify.connectivity.guest_estimate`) is
    outside the tolerance is measured again, own round trip included, up to
    :data:`LATENCY_ATTEMPTS` times, and the closest try is kept: contention on this
    machine only delays echoes now and then, while a NetEm missing or doubled is off by
    the same in every try.  The share of each try during which some task here waited
    for a CPU (PSI) is kept with it."""

    guests: Guests
    placement: Placement
    underlay: Mapping[str, GuestHost]
    targets: frozenset[Address]
    timeout_s: float
    attempts: int = LATENCY_ATTEMPTS

    def run(
        self,
        plans: Sequence[LatencyPlan],
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[int, IpResult]:
        binary = programs.which("ping")
        results: dict[int, IpResult] = {}
        total = sum(len(p.keys) for p in plans)
        done = 0
        for plan in plans:
            if progress is not None:
                progress(done, total)
            if binary is None:
                missing = IpResult(error="not run (ping is not installed: scripts/install)")
                results.update({key: missing for key in [*plan.keys, *plan.own_keys]})
            else:
                results.update(self._series(binary, plan))
            done += len(plan.keys)
        if progress is not None:
            progress(total, total)
        return results

    def _series(self, binary: str, plan: LatencyPlan) -> dict[int, IpResult]:
        host = self.placement.host(plan.src.namespace)
        source = plan.expectation.src_address
        if host is None or source is None or plan.dst.address not in self.targets:
            raise ValueError(f"{plan.src.name} -> {plan.dst.label()} is not a guest pair")
        guest = self.guests.need(host)
        count = len(plan.keys)
        interval = PING_INTERVAL_S if count <= 200 else PING_INTERVAL_S / 2
        series_argv = ping_argv(
            binary,
            str(source),
            str(plan.dst.address),
            count=count,
            interval_s=interval,
            timeout_s=self.timeout_s,
        )
        own_path = self._own_path(plan) if plan.own_keys else None
        best: tuple[float, dict[int, IpResult], float | None] | None = None
        plan.attempts = 0
        while plan.attempts < self.attempts:
            plan.attempts += 1
            got: dict[int, IpResult] = {}
            watch = CpuWatch()
            if plan.own_keys:
                if own_path is None:
                    why = "no underlay address of both guest hosts in one subnet (real.xml)"
                    got.update({key: IpResult(error=f"not run ({why})") for key in plan.own_keys})
                else:
                    own_argv = ping_argv(
                        binary,
                        own_path[0],
                        own_path[1],
                        count=len(plan.own_keys),
                        interval_s=PING_INTERVAL_S,
                        timeout_s=self.timeout_s,
                    )
                    got.update(_results(self._ping(host, guest, own_argv, None), plan.own_keys))
            got.update(
                _results(
                    self._ping(host, guest, series_argv, plan.src.namespace, count * interval),
                    plan.keys,
                )
            )
            pressure = watch.share()
            excess = connectivity.guest_series_excess(plan, ScanResult(got, {}, {}))
            if best is None or excess < best[0]:
                best = (excess, got, pressure)
            if excess <= 0:
                break
        assert best is not None
        _, got, plan.pressure = best
        return got

    def _ping(
        self, host: str, guest: AnyGuest, argv: list[str], netns: str | None, length_s: float = 0
    ) -> PingSeries:
        limit = length_s + self.timeout_s + 60.0  # ping's start under TCG
        done = call(host, lambda: guest.run(argv, netns=netns, timeout=limit))
        series = parse_ping(done.stdout)
        if series.error and done.stderr.strip():
            return PingSeries(series.sent, series.rtts, f"ping: {done.stderr.strip()[-200:]}")
        return series

    def _own_path(self, plan: LatencyPlan) -> tuple[str, str] | None:
        """(source, target) of the guests' own round trip: an underlay address of the
        first VM's guest and one of the second's in the same subnet."""
        first = self.underlay.get(plan.src.host)
        second = self.underlay.get(plan.dst.host)
        if first is None or second is None:
            return None
        for mine in first.nics:
            for theirs in second.nics:
                if mine.address is None or theirs.address is None:
                    continue
                if mine.address.network == theirs.address.network:
                    return str(mine.address.ip), str(theirs.address.ip)
        return None


# ------------------------------------------------------------------------- bandwidth


IPERF_ATTEMPTS = 2


@dataclass
class GuestIperf:
    """A runner for :func:`netmanager.verify.throughput.bandwidth_checks` that starts
    each iperf3 where its namespace is (this machine, or a guest)."""

    guests: Guests
    placement: Placement
    runs: int = 0

    def __call__(self, **run: Any) -> Throughput:
        """One iperf3 run (the arguments of :func:`netmanager.verify.iperf.measure`)."""
        server_host = self.placement.host(run["sender_ns"])
        client_host = self.placement.host(run["receiver_ns"])
        if server_host is None and client_host is None:
            return iperf.measure(**run)
        # the run's own set-up crosses the link it measures: under declared loss the first
        # UDP datagram of iperf3's handshake can be lost ("unable to read from stream
        # socket"), so a run that fails so is tried once more
        for attempt in range(IPERF_ATTEMPTS):
            try:
                return self._run(server_host, client_host, **run)
            except IperfError:
                if attempt + 1 == IPERF_ATTEMPTS:
                    raise
                time.sleep(1.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def _run(
        self,
        server_host: str | None,
        client_host: str | None,
        *,
        sender_ns: str,
        sender_ip: str,
        receiver_ns: str,
        receiver_ip: str,
        proto: str = "tcp",
        seconds: int = 4,
        omit: int = 1,
        port: int = 5201,
        udp_rate_bps: float | None = None,
        udp_length: int | None = None,
        timeout_s: float | None = None,
    ) -> Throughput:
        binary = iperf.iperf3()
        self.runs += 1
        server_argv = iperf.server_argv(binary, sender_ip, port)
        client_argv = iperf.client_argv(
            binary,
            sender_ip,
            receiver_ip,
            port=port,
            proto=proto,
            seconds=seconds + omit,
            udp_rate_bps=udp_rate_bps,
            udp_length=udp_length,
        )
        # TCG: both ends start slowly, and the client's run is longer than its -t
        limit = max(timeout_s or 0.0, seconds + omit + 30.0)
        stop_server = self._server(server_host, sender_ns, server_argv)
        try:
            if client_host is None:
                try:
                    done = subprocess.run(
                        iperf.in_namespace(receiver_ns, client_argv),
                        capture_output=True,
                        text=True,
                        timeout=limit,
                        check=False,
                    )
                except subprocess.TimeoutExpired as exc:
                    raise IperfError(f"iperf3 did not finish within {limit:.0f}s") from exc
                out = done.stdout
            else:
                guest = self.guests.need(client_host)
                result = call(
                    client_host,
                    lambda: guest.run(client_argv, netns=receiver_ns, timeout=limit),
                )
                out = result.stdout
                if result.returncode == -9 and not out:
                    raise IperfError(f"iperf3 did not finish within {limit:.0f}s")
            return iperf.parse(out, proto, skip=omit)
        finally:
            stop_server()

    def _server(self, host: str | None, namespace: str, argv: list[str]) -> Callable[[], None]:
        """Start the server; returns what stops it (by its PID, whatever happened)."""
        if host is None:
            server = subprocess.Popen(
                iperf.in_namespace(namespace, argv),
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            try:
                iperf.wait_listening(server, 10.0)
            except BaseException:
                iperf.stop(server)
                raise
            return lambda: iperf.stop(server)
        guest = self.guests.need(host)
        log = f"{self.guests.workdir(host)}/iperf-{self.runs}.log"
        pid: int = call(host, lambda: guest.spawn(argv, netns=namespace, log=log))

        def stop() -> None:
            _stop_spawned(guest, pid)

        deadline = time.monotonic() + 30.0
        try:
            while True:
                seen = call(host, lambda: guest.read_file(log)) or ""
                if "listening" in seen.lower():
                    break
                if call(host, lambda: guest.poll(pid)) is not None:
                    raise IperfError(f"iperf3 server exited at start: {seen.strip()[-200:]}")
                if time.monotonic() > deadline:
                    raise IperfError("iperf3 server did not start listening in time")
                time.sleep(POLL_S)
        except BaseException:
            stop()
            raise
        return stop


def iperf_available() -> bool:
    return programs.which("iperf3") is not None


# ----------------------------------------------------------------------------- state

STATE_TIMEOUT_S = 300.0  # netmanager's engine imported and run under TCG: ~15 s alone


def _observe_in(guests: Guests, host: str, config: HostConfig) -> dict[str, Any]:
    guest = guests.need(host)
    env = {
        "PYTHONPATH": str(PROJECT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "NETMANAGER_STATE_DIR": f"{guests.workdir(host)}/state",
    }
    argv = [sys.executable, "-m", "netmanager.verify.stateworker"]
    done = call(
        host,
        lambda: guest.run(
            argv, stdin=json.dumps(config.as_json()), env=env, timeout=STATE_TIMEOUT_S
        ),
    )
    try:
        doc = json.loads(done.stdout) if done.returncode == 0 else None
    except json.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        tail = (done.stderr.strip() or done.stdout.strip())[-300:]
        return {"error": f"the state worker failed (status {done.returncode}): {tail}"}
    return doc


def state_observations(
    guests: Guests, configs: Mapping[str, HostConfig], placement: Placement
) -> dict[str, dict[str, Any]]:
    """Each host's observation (:mod:`~netmanager.verify.stateworker`): inside its guest
    for a guest host (the guests in parallel, one thread each), in this process for a
    host of this machine."""
    from concurrent.futures import ThreadPoolExecutor

    out: dict[str, dict[str, Any]] = {}
    in_guests = {h: c for h, c in configs.items() if h in placement.guests}
    with ThreadPoolExecutor(max_workers=max(1, len(in_guests))) as pool:
        futures = {h: pool.submit(_observe_in, guests, h, c) for h, c in in_guests.items()}
        for host, config in configs.items():
            if host in in_guests or not config.dom0:
                continue  # a real host's kernel is another machine's: see remote_checks
            try:
                out[host] = stateworker.observe(config)
            except Exception as exc:  # a failed observation is a failed check
                out[host] = {"error": f"{type(exc).__name__}: {exc}"}
        for host, future in futures.items():
            try:
                out[host] = future.result()
            except NetmanagerError as exc:
                out[host] = {"error": str(exc.diagnostics[0].message)}
    return out


def guest_state_checks(
    view: TopologyView,
    deployment: Deployment,
    guests: Guests,
    placement: Placement,
) -> list[Check]:
    """The state level of a topology with guest hosts, host by host, each observed by
    the kernel that carries it (the same checks as :func:`~netmanager.verify.state.
    state_checks`; the emulated infrastructure on this machine is not compared)."""
    topology = view.name
    checks: list[Check] = []
    observations = state_observations(guests, deployment.configs, placement)
    netem_on: set[tuple[str, str]] = set()
    rules = 0
    for host, doc in sorted(observations.items()):
        where = deployment.configs[host].dom0 or host
        if "error" in doc:
            checks.append(not_observed(host, topology, "plan", str(doc["error"])))
            continue
        label = f"{host}:{where}" if deployment.configs[host].dom0 else host
        for op, namespace, obj, line in doc["kernel"]:
            checks.append(
                Check(
                    Kind.STATE,
                    f"{host}:{namespace}" if namespace else host,
                    obj,
                    "as planned",
                    _drift_word(op),
                    False,
                    topology,
                    probe="kernel",
                    detail=f"apply would {line}",
                )
            )
        for table, chain, want, have in doc["firewall"]:
            added = [r for r in have if r not in want]
            missing = [r for r in want if r not in have]
            parts = [f"+ {r}" for r in added] + [f"- {r}" for r in missing]
            checks.append(
                Check(
                    Kind.STATE,
                    label,
                    f"{table} chain {chain}",
                    f"{len(want)} rules as planned",
                    f"{len(have)} rules",
                    False,
                    topology,
                    probe=table,
                    detail="; ".join(parts) or "the rules are in another order",
                )
            )
        for table in doc["unhooked"]:
            checks.append(
                Check(
                    Kind.STATE,
                    label,
                    f"{table} FORWARD hook",
                    "present",
                    "missing",
                    False,
                    topology,
                    probe=table,
                    detail=f"FORWARD does not jump to {DISPATCH}: no rule applies",
                )
            )
        if doc["before_hook"]:
            checks.append(
                Check(
                    Kind.STATE,
                    label,
                    "iptables FORWARD",
                    f"netmanager's hook ({DISPATCH}) first",
                    f"{len(doc['before_hook'])} rule(s) before it",
                    False,
                    topology,
                    probe="iptables",
                    detail="; ".join(f"+ {r}" for r in doc["before_hook"]),
                )
            )
        if doc["bridge_nf"] is not None and doc["bridge_nf"] != "1":
            checks.append(
                Check(
                    Kind.STATE,
                    label,
                    "bridge-nf-call-iptables",
                    "1",
                    str(doc["bridge_nf"]),
                    False,
                    topology,
                    probe="sysctl",
                    detail="bridged traffic skips iptables here: no isolation rule applies",
                )
            )
        rules += int(doc["rules"])
        netem_on |= {(ns, ifname) for ns, ifname in doc["netem_on"]}
    observed = [h for h, d in observations.items() if "error" not in d]
    checks += netem_checks(view, deployment, netem_on, hosts=observed)
    remote = sorted(
        h for h, c in deployment.configs.items() if not c.dom0 and h not in placement.guests
    )
    checks += remote_checks(deployment, remote)
    if not checks:
        checks.append(
            Check(
                Kind.STATE,
                ", ".join(sorted(observations)),
                "kernel objects and rules",
                "as planned",
                "as planned",
                True,
                topology,
                probe="plan",
                detail=f"no kernel change pending; {rules} firewall rules as planned "
                f"(observed inside guest host(s) {', '.join(sorted(placement.guests & set(observations)))})",
            )
        )
    return checks
