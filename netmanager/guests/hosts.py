"""Guest hosts' lifecycle: boot, wire, start their agents, find them again, stop them.

A host of real.xml with ``hypervisor="guest"`` is a QEMU guest (:mod:`.qemu`) running the
stock kernel (:mod:`.image`).  :func:`ensure_guests` boots the guests that do not run yet:

* each underlay interface of the host is a virtio NIC whose tap lives in the namespace of
  the switch it is linked to (built by the infrastructure phase before), a port of the
  switch's bridge, shaped to the physical link's capacity towards the guest; inside the
  guest the NIC is named, addressed and shaped as real.xml says (a real host's own
  network configuration);
* the host's agent (``netmanager-agent --backend kernel``, its dom0 the guest's root
  namespace) runs inside the guest with a copy of the credentials, listening on the
  management NIC; QEMU forwards a loopback UDP port of this machine to it, which is the
  only way in.

Everything lives in ``<state>/agents/<host>/``: ``guest/`` is QEMU's run directory
(guest.json, control socket, console.log, qemu.log), ``guest-manager.json`` says which
port and credentials the manager uses.  Guests outlive the command that booted them; the
destroy of the last topology stops them (:func:`stop_guests`), as ``netmanager hosts stop``
does.  Boots run at most :data:`PARALLEL_BOOTS` at a time: a booting guest keeps a core
busy under TCG.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netmanager import programs
from netmanager.agentctl.processes import (
    AgentInfo,
    agents_dir,
    credentials_path,
    generated_credentials,
)
from netmanager.compile.desired import render_guest_taps
from netmanager.compile.hostconfig import (
    INFRA,
    GuestHost,
    Infrastructure,
    guest_as_json,
    namespace_prefix,
)
from netmanager.errors import ExitCode, Loc, NetmanagerError, single
from netmanager.guests import image, qemu
from netmanager.guests.errors import GuestError
from netmanager.inputs.model import Real
from netmanager.kernel import (
    ApplyError,
    Engine,
    HostState,
    KernelStateError,
    Link,
    Scope,
)
from netmanager.kernel.objects import link_key
from netmanager.statedir import read_json, write_json

PARALLEL_BOOTS = 2
BOOT_TIMEOUT_S = 180.0
AGENT_TIMEOUT_S = 120.0
AGENT_REQUEST_TIMEOUT_S = 15.0  # one SNMP request to an agent in a guest (TCG is slow)
GUEST_RUN = "/run/netmanager"  # a tmpfs inside the guest
MANAGER_FILE = "guest-manager.json"
MGMT_ADDRESS = "10.0.2.15"  # QEMU user networking's guest address (hostfwd's default)
PROJECT = Path(__file__).resolve().parents[2]

Progress = Callable[[str], None]


class GuestHostProblem(NetmanagerError):
    """A guest host could not be booted, wired or reached (exit code 6)."""

    exit_code = ExitCode.ENVIRONMENT


def cache_dir() -> Path:
    """Where the guest kernel and initramfs are kept between runs (not the state
    directory: tests give every run its own)."""
    return Path(os.environ.get("NETMANAGER_GUEST_CACHE", "/var/cache/netmanager/guests"))


def host_dir(host: str) -> Path:
    return agents_dir() / host


def run_dir(host: str) -> Path:
    return host_dir(host) / "guest"


@dataclass(frozen=True)
class GuestInfo:
    """A guest host netmanager booted, as ``netmanager hosts status`` shows it."""

    host: str
    pid: int
    port: int
    kernel: str
    memory_mib: int
    started: float
    credentials: str

    def as_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pid": self.pid,
            "agent": f"127.0.0.1:{self.port}",
            "kernel": self.kernel,
            "memory_mib": self.memory_mib,
            "started": self.started,
        }


def _attach(host: str) -> qemu.Guest | None:
    directory = run_dir(host)
    if not (directory / qemu.RECORD).exists():
        return None
    try:
        guest = qemu.attach(directory)
    except GuestError:
        return None
    return guest if guest.alive() else None


def guests() -> dict[str, GuestInfo]:
    """The guest hosts netmanager booted that run now, by host."""
    found: dict[str, GuestInfo] = {}
    where = agents_dir()
    if not where.is_dir():
        return found
    for directory in sorted(p for p in where.iterdir() if p.is_dir()):
        doc = read_json(directory / MANAGER_FILE)
        if not isinstance(doc, dict):
            continue
        guest = _attach(doc["host"])
        if guest is None:
            continue
        found[doc["host"]] = GuestInfo(
            host=doc["host"],
            pid=guest.pid,
            port=int(doc["port"]),
            kernel=guest.spec.kernel.version,
            memory_mib=guest.spec.memory_mib,
            started=float(doc.get("started", 0.0)),
            credentials=str(doc["credentials"]),
        )
    return found


def running() -> dict[str, AgentInfo]:
    """The agents of running guest hosts, as :func:`netmanager.agentctl.processes.running` gives those
    of namespace hosts (``pid`` is QEMU's)."""
    return {
        host: AgentInfo(
            host=host,
            address="127.0.0.1",
            port=info.port,
            pid=info.pid,
            dom0="",
            credentials=info.credentials,
            state_dir=str(host_dir(host)),
            timeout_s=AGENT_REQUEST_TIMEOUT_S,
            retries=1,
        )
        for host, info in guests().items()
    }


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _problem(host: str, real: Real, message: str, hint: str = "") -> GuestHostProblem:
    loc = real.host_by_name[host].loc if host in real.host_by_name else Loc("netmanager")
    error = single("E745", loc, message, hint, "apply", GuestHostProblem)
    assert isinstance(error, GuestHostProblem)
    return error


# ------------------------------------------------------------------------------ wiring


def wire_taps(spec: GuestHost) -> None:
    """The switch side of a guest's NICs, built by the kernel engine in a scope of those
    taps only (the infrastructure owner's, whose marker they get): each tap a port of its
    switch's bridge, shaped to the link's capacity towards the guest
    (:func:`~netmanager.compile.desired.render_guest_taps`).  An apply's infrastructure
    pass keeps them so afterwards (a bridge replaced gets its taps back).  Raises OSError
    when a tap or its bridge is missing or the engine fails."""
    desired = HostState(frozenset(render_guest_taps(spec)))
    scope = Scope.of_links(INFRA, [(nic.switch_namespace, nic.tap) for nic in spec.nics])
    try:
        with Engine() as engine:
            result = engine.apply(desired, scope=scope)
    except (ApplyError, KernelStateError) as exc:
        raise OSError(f"wiring its taps: {exc}") from exc
    found = {o.key for o in result.plan.observed.objects if isinstance(o, Link)}
    missing = [n.tap for n in spec.nics if link_key(n.switch_namespace, n.tap) not in found]
    if missing:  # the engine leaves a tap it cannot find for later: here it must be there
        raise OSError(f"tap {missing[0]} is missing in its switch's namespace")


def _agent_argv(host: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "snmp_agents.agent",
        "--listen",
        f"{MGMT_ADDRESS}:161",
        "--state-dir",
        f"{GUEST_RUN}/agent",
        "--credentials",
        f"{GUEST_RUN}/snmp.toml",
        "--backend",
        "kernel",
        "--dom0",
        ".",
        "--underlay",
        f"{GUEST_RUN}/underlay.json",
        "--sys-name",
        host,
        "--sys-location",
        f"emulated host {host} (QEMU guest, stock kernel)",
    ]


# ------------------------------------------------------------------------------- boot


def ensure_guests(
    real: Real,
    infra: Infrastructure,
    hosts: Iterable[str],
    *,
    progress: Progress | None = None,
) -> dict[str, AgentInfo]:
    """The agents of the given guest hosts, their guests booted, wired and their agents
    started where not running.  Raises GuestHostProblem (E745) naming the host, after
    stopping every guest it booted."""
    say = progress or (lambda _: None)
    wanted = [infra.guest_by_name[h] for h in sorted(set(hosts)) if h in infra.guest_by_name]
    alive = guests()
    todo = [g for g in wanted if g.host not in alive]
    if todo:
        booted: list[qemu.Guest] = []
        try:
            say("guest kernel")
            kern = image.kernel(cache_dir(), progress=say)
            initrd = image.initramfs(kern, cache_dir(), progress=say)
            for start in range(0, len(todo), PARALLEL_BOOTS):
                batch = todo[start : start + PARALLEL_BOOTS]
                booted += _boot(real, batch, kern, initrd, say)
        except GuestError:
            for guest in booted:
                with contextlib.suppress(GuestError, OSError):
                    guest.stop()
            raise
        except OSError as exc:
            for guest in booted:
                with contextlib.suppress(GuestError, OSError):
                    guest.stop()
            host = todo[0].host if not isinstance(exc, _HostFailure) else exc.host
            raise _problem(
                host,
                real,
                f"guest host '{host}': {exc}",
                f"its console and QEMU logs are in {run_dir(host)}",
            ) from exc
        except BaseException:
            for guest in booted:
                with contextlib.suppress(GuestError, OSError):
                    guest.stop()
            raise
    chosen = set(hosts)
    return {h: a for h, a in running().items() if h in chosen}


class _HostFailure(OSError):
    def __init__(self, host: str, message: str) -> None:
        super().__init__(message)
        self.host = host


def _boot(
    real: Real,
    batch: list[GuestHost],
    kern: image.Kernel,
    initrd: Path,
    say: Progress,
) -> list[qemu.Guest]:
    started: list[qemu.Guest] = []
    ports: dict[str, int] = {}
    try:
        for spec in batch:
            host = real.host_by_name[spec.host]
            port = host.agent.port or _free_udp_port()
            ports[spec.host] = port
            guest_spec = qemu.GuestSpec(
                name=spec.host,
                kernel=kern,
                initramfs=initrd,
                run_dir=run_dir(spec.host),
                memory_mib=spec.memory_mib,
                cpus=spec.cpus,
                agent_port=port,
                nics=tuple(qemu.Nic(n.mac, n.switch_namespace, n.tap, n.ifname) for n in spec.nics),
                project_dir=PROJECT,
            )
            host_dir(spec.host).mkdir(parents=True, exist_ok=True, mode=0o700)
            (host_dir(spec.host) / MANAGER_FILE).unlink(missing_ok=True)
            # the manager's memory of what the agent held (agent_transport.KnownCandidates) is of a
            # previous guest: this one's agent starts empty, its versions from the start
            (host_dir(spec.host) / "manager-candidate.json").unlink(missing_ok=True)
            started.append(qemu.launch(guest_spec))
            wire_taps(spec)
        say(f"booting {', '.join(g.spec.name for g in started)}")
        for guest in started:
            t0 = time.monotonic()
            guest.ready(BOOT_TIMEOUT_S)
            say(f"guest {guest.spec.name} up in {time.monotonic() - t0:.1f} s")
        for guest, spec in zip(started, batch, strict=True):
            _provision(real, guest, spec, ports[spec.host])
        for guest, spec in zip(started, batch, strict=True):
            _wait_agent(real, guest, spec.host, ports[spec.host], say)
            guest.disconnect()
    except BaseException:
        for guest in started:
            with contextlib.suppress(GuestError, OSError):
                guest.stop()
        raise
    return started


#: The emulated host speaks IPv4 only: without this, every interface netmanager creates in
#: the guest's root namespace (the dom0), such as a trunk's 802.1Q sub-interface, would
#: send IPv6 link-local chatter (router solicitations, MLD) with the host's own MAC into
#: the VLAN's bridge, where the VMs see it.  (Namespace hosts' dom0s are created so.)
HOST_SYSCTLS = ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
# run inside the guest, whose root is this machine's (over 9p): the path found here
SYSCTL = programs.path("sysctl")


def _provision(real: Real, guest: qemu.Guest, spec: GuestHost, port: int) -> None:
    """The host's own IPv6 setting, then its agent, which builds the host's side of its
    NICs as real.xml says (``--underlay``: through its kernel engine, marked as the
    infrastructure's) before it answers."""
    done = guest.run([SYSCTL, "-q", "-w", *HOST_SYSCTLS], timeout=30)
    if done.returncode != 0:
        raise _HostFailure(spec.host, f"sysctl failed inside the guest: {done.stderr.strip()}")
    guest.write_file(f"{GUEST_RUN}/underlay.json", json.dumps(guest_as_json(spec)), 0o600)
    host = real.host_by_name[spec.host]
    credentials = credentials_path(real, host) or generated_credentials()
    guest.write_file(f"{GUEST_RUN}/snmp.toml", credentials.read_text(), 0o600)
    env = {
        "PYTHONPATH": str(PROJECT),
        "NETMANAGER_NS_PREFIX": namespace_prefix(),
        "NETMANAGER_STATE_DIR": f"{GUEST_RUN}/state",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    pid = guest.spawn(_agent_argv(spec.host), log=f"{GUEST_RUN}/agent.log", env=env)
    write_json(
        host_dir(spec.host) / MANAGER_FILE,
        {
            "host": spec.host,
            "port": port,
            "credentials": str(credentials),
            "agent_pid": pid,
            "started": time.time(),
        },
    )


def _wait_agent(real: Real, guest: qemu.Guest, host: str, port: int, say: Progress) -> None:
    """Until the agent answers an authenticated GET through the forwarded port."""
    from netmanager.agentctl.client import AgentClient, AgentError
    from netmanager.snmp.credentials import load_credentials

    doc = read_json(host_dir(host) / MANAGER_FILE)
    credentials = load_credentials(doc["credentials"])
    pid = int(doc["agent_pid"])
    deadline = time.monotonic() + AGENT_TIMEOUT_S
    t0 = time.monotonic()

    async def ask() -> bool:
        try:
            async with AgentClient(
                host, "127.0.0.1", port, credentials, timeout_s=1.0, retries=0
            ) as client:
                await client.status()
        except AgentError:
            return False
        return True

    while True:
        if asyncio.run(ask()):
            say(f"agent of {host} answering after {time.monotonic() - t0:.1f} s")
            return
        code = guest.poll(pid)
        if code is not None:
            tail = guest.run(["tail", "-n", "5", f"{GUEST_RUN}/agent.log"], timeout=10).stdout
            raise _HostFailure(host, f"its agent exited with status {code}: {tail.strip()}")
        if time.monotonic() > deadline:
            raise _HostFailure(host, f"its agent did not answer within {AGENT_TIMEOUT_S:.0f} s")


# ------------------------------------------------------------------------------- stop


def stop_guests(hosts: Iterable[str] | None = None) -> list[str]:
    """Power off the guest hosts netmanager booted (some, or all), all at once, and return
    when their QEMU processes have exited (:func:`.qemu.stop_all`: QEMU ended by its PID
    if a guest does not go).  Returns the hosts stopped."""
    chosen = set(hosts) if hosts is not None else None
    stopped = [h for h in sorted(guests()) if chosen is None or h in chosen]
    found = {h: g for h in stopped if (g := _attach(h)) is not None}
    try:
        qemu.stop_all(list(found.values()))
    finally:
        for host in stopped:
            guest = found.get(host)
            if guest is None or not guest.alive():
                (host_dir(host) / MANAGER_FILE).unlink(missing_ok=True)
    return stopped


def guest_of(host: str) -> qemu.Guest | None:
    """The running guest of ``host`` (to run commands in it), or None."""
    return _attach(host)
