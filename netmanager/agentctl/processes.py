"""The SNMP agents of emulated hosts: started, found, checked and stopped by netmanager.

An emulated host (``hypervisor="netns"``) gets the same agent a real host runs,
``netmanager-agent --backend kernel --dom0 <the host's namespace>``, started by ``apply``
as a process of its own that outlives the command.  It listens on the loopback address
that ``real.xml`` gives the host's agent (127.0.0.1 and any free port by default), so it
is reachable from this machine only.  Its state directory is
``<state dir>/agents/<host>``: the agent writes ``agent.json`` ({pid, address, port})
once it listens and removes it on a clean exit; netmanager writes ``manager.json``
beside it (how it started the agent).  An agent is ended only by its PID, and only after
checking that the PID is still that agent (its command line names its state directory).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netmanager import settings
from netmanager.errors import ExitCode, Loc, NetmanagerError, single
from netmanager.inputs.model import EMBED_URI, Host, Real
from netmanager.statedir import read_json, state_dir, write_json

if TYPE_CHECKING:
    from netmanager.agentctl.client import AgentClient

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


class AgentProblem(NetmanagerError):
    """An agent could not be started or reached."""

    exit_code = ExitCode.ENVIRONMENT


def agents_dir() -> Path:
    return state_dir() / "agents"


@dataclass(frozen=True)
class AgentInfo:
    """One agent netmanager started: where it listens and how to reach it."""

    host: str
    address: str
    port: int
    pid: int
    dom0: str
    credentials: str
    state_dir: str
    #: how long one request may take: an agent in a guest under TCG answers a big SET in
    #: seconds (no retransmission meanwhile: the agent would process it twice)
    timeout_s: float = 3.0
    retries: int = 3

    def as_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "address": self.address,
            "port": self.port,
            "pid": self.pid,
            "dom0": self.dom0,
            "credentials": self.credentials,
            "state_dir": self.state_dir,
        }


def credentials_path(real: Real, host: Host) -> Path | None:
    """The credentials file of a host's agent (relative paths are relative to real.xml)."""
    name = host.agent.credentials or real.credentials
    if name is None:
        return None
    path = Path(name)
    if not path.is_absolute():
        path = Path(real.base_dir or Path(real.file).resolve().parent) / path
    return path


def generated_credentials() -> Path:
    """For emulated hosts whose real.xml names no credentials: a private file of random
    keys in the state directory, made once (mode 0600), so that the embedded default runs
    with nothing to set up; its read community and keys are in the file."""
    import secrets

    path = agents_dir() / "credentials.toml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = (
            "# made by netmanager for the agents of emulated hosts (real.xml names none)\n"
            f'[read]\ncommunity = "nm-{secrets.token_hex(8)}"\n\n'
            '[write]\nuser = "nmadmin"\nauth_protocol = "SHA-256"\n'
            f'auth_key = "{secrets.token_hex(16)}"\npriv_protocol = "AES-128"\n'
            f'priv_key = "{secrets.token_hex(16)}"\n'
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
    return path


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, killed and not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


def _alive(pid: int, agent_dir: Path) -> bool:
    """Whether ``pid`` runs and is the agent of ``agent_dir`` (not a recycled PID)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return process_alive(pid) and str(agent_dir).encode() in cmdline


def processes(directory: Path | None = None) -> dict[int, str]:
    """Every live agent process started for a host of this state directory, found by its
    command line (``--state-dir <agents>/<host>``), by PID: also one whose manager died
    before the agent said where it listens.  The host is the state directory's name."""
    where = str(directory or agents_dir())
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode("utf-8", "replace") for a in argv]
        if "snmp_agents.agent" not in words or "--state-dir" not in words:
            continue
        position = words.index("--state-dir") + 1
        state = Path(words[position]) if position < len(words) else None
        if state is not None and str(state.parent) == where and process_alive(int(entry.name)):
            found[int(entry.name)] = state.name
    return found


def end(*pids: int) -> None:
    """End processes netmanager started, by PID (SIGTERM, then SIGKILL after a while)."""
    _end(*pids)


def running(directory: Path | None = None) -> dict[str, AgentInfo]:
    """The agents netmanager started that are alive now, by host."""
    where = directory or agents_dir()
    found: dict[str, AgentInfo] = {}
    if not where.is_dir():
        return found
    for agent_dir in sorted(p for p in where.iterdir() if p.is_dir()):
        listening = read_json(agent_dir / "agent.json")
        started = read_json(agent_dir / "manager.json")
        if not isinstance(listening, dict) or not isinstance(started, dict):
            continue
        pid = int(listening.get("pid", 0))
        if pid <= 0 or not _alive(pid, agent_dir):
            continue
        found[started["host"]] = AgentInfo(
            host=started["host"],
            address=str(listening["address"]),
            port=int(listening["port"]),
            pid=pid,
            dom0=started.get("dom0", ""),
            credentials=started.get("credentials", ""),
            state_dir=str(agent_dir),
        )
    return found


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _command(real: Real, host: Host, dom0: str, agent_dir: Path, credentials: Path) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "snmp_agents.agent",
        "--listen",
        f"{host.agent.address}:{host.agent.port}",
        "--state-dir",
        str(agent_dir),
        "--credentials",
        str(credentials),
        "--backend",
        "kernel",
        "--dom0",
        dom0,
        "--sys-name",
        host.name,
        "--sys-location",
        f"emulated host {host.name} (network namespace {dom0})",
    ]
    if host.embedded_libvirt:
        # its VMs are domains of libvirt's embedded QEMU driver, in the host's namespace
        command += ["--libvirt", embed_uri(agent_dir)]
        # its domains may be migrated live to the system daemon named in real.xml: the
        # keeper must open it before the embedded driver (see migration_peers)
        for peer in migration_peers(real):
            command += ["--libvirt-peer", peer]
    for receiver in real.trap_receivers:
        command += ["--trap-receiver", f"{receiver.address}:{receiver.port}"]
    return command


#: the one libvirt an emulated libvirt host's domain migrates to on one machine (libvirt
#: 9.0: embedded -> system daemon; system -> embedded and embedded -> embedded fail)
MIGRATION_TARGET_URI = "qemu:///system"


def migration_peers(real: Real) -> list[str]:
    """The libvirt URIs the keepers of emulated libvirt hosts open first, so that their
    domains can be live-migrated there: the system daemon, where real.xml has a host on
    it."""
    return sorted({h.uri for h in real.hosts if h.uri == MIGRATION_TARGET_URI})


def remote_agents(real: Real, hosts: Iterable[str]) -> dict[str, AgentInfo]:
    """The agents of ``hosts`` that netmanager does not emulate (real libvirt hosts):
    where real.xml says they listen, with the credentials it names; netmanager neither
    starts nor stops them (they run as a service on their host)."""
    out = {}
    for name in sorted(set(hosts)):
        host = real.host_by_name.get(name)
        if host is None or host.emulated or not host.agent.port:
            continue
        credentials = credentials_path(real, host)
        out[name] = AgentInfo(
            host=name,
            address=host.agent.address,
            port=host.agent.port,
            pid=0,
            dom0="",
            credentials=str(credentials) if credentials is not None else "",
            state_dir="",
        )
    return out


def embed_root(agent_dir: Path) -> Path:
    """The root of the embedded libvirt driver of an emulated libvirt host: short (QEMU's
    monitor sockets live under it), one per agent directory, in /run (an emulated host
    does not outlive a reboot either)."""
    digest = hashlib.sha256(os.fsencode(str(agent_dir.resolve()))).hexdigest()[:12]
    return Path("/run/netmanager") / f"libvirt-{digest}"


def embed_uri(agent_dir: Path) -> str:
    return f"{EMBED_URI}?root={embed_root(agent_dir)}"


def stop_libvirt(agent_dir: Path) -> bool:
    """An emulated libvirt host goes: every domain of its embedded driver stopped, the
    keeper that held the connection ended, the driver's root removed; whether it had one."""
    from netmanager.host.domainhost import KEEPER_DIR
    from netmanager.hypervisor.keeper import stop_keeper

    had = stop_keeper(agent_dir / KEEPER_DIR, destroy_domains=True)
    root = embed_root(agent_dir)
    if root.exists():
        shutil.rmtree(root, ignore_errors=True)
        had = True
    return had


def ensure_agents(
    real: Real,
    dom0s: dict[str, str],
    *,
    progress: Callable[[str], None] | None = None,
) -> dict[str, AgentInfo]:
    """The agents of the given emulated hosts (host -> dom0 namespace), started where not
    running.  Raises AgentProblem naming the host when one cannot be started."""
    alive = running()
    wanted = {h: ns for h, ns in dom0s.items() if h not in alive}
    started: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    problems: list[tuple[Host, str, str]] = []
    for name, dom0 in sorted(wanted.items()):
        host = real.host_by_name[name]
        if not ipaddress.ip_address(host.agent.address).is_loopback:
            problems.append(
                (
                    host,
                    f"the agent of emulated host '{name}' would listen on {host.agent.address}: "
                    "agents of emulated hosts listen on this machine's loopback only",
                    'use <agent address="127.0.0.1"/> (or leave the address out)',
                )
            )
            continue
        credentials = credentials_path(real, host) or generated_credentials()
        agent_dir = agents_dir() / name
        agent_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (agent_dir / "agent.json").unlink(missing_ok=True)
        write_json(
            agent_dir / "manager.json",
            {"host": name, "dom0": dom0, "credentials": str(credentials), "started": time.time()},
        )
        log = (agent_dir / "agent.log").open("ab")
        try:
            process = subprocess.Popen(
                _command(real, host, dom0, agent_dir, credentials),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                env=settings.child_env(),
            )
        finally:
            log.close()
        started[name] = (process, agent_dir)
    if progress is not None and started:
        progress(f"starting {len(started)} agent(s)")
    deadline = time.monotonic() + START_TIMEOUT_S
    for name, (process, agent_dir) in started.items():
        host = real.host_by_name[name]
        while True:
            listening = read_json(agent_dir / "agent.json")
            if isinstance(listening, dict) and listening.get("pid") == process.pid:
                break
            code = process.poll()
            if code is not None:
                problems.append(
                    (
                        host,
                        f"the agent of host '{name}' exited with status {code}: "
                        f"{_tail(agent_dir / 'agent.log')}",
                        f"its log is {agent_dir / 'agent.log'}",
                    )
                )
                break
            if time.monotonic() > deadline:
                _end(process.pid)
                problems.append(
                    (
                        host,
                        f"the agent of host '{name}' did not listen within {START_TIMEOUT_S:.0f} s",
                        f"its log is {agent_dir / 'agent.log'}",
                    )
                )
                break
            time.sleep(0.05)
    if problems:
        # leave nothing half-started behind
        _end(*(p.pid for p, _ in started.values() if p.poll() is None))
        host, message, hint = problems[0]
        raise single("E740", host.loc or Loc("netmanager"), message, hint, "apply", AgentProblem)
    return {h: a for h, a in running().items() if h in dom0s}


def _end(*pids: int) -> None:
    """SIGTERM to each, then SIGKILL to those still there after STOP_TIMEOUT_S."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    left = set(pids)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while left and time.monotonic() < deadline:
        for pid in list(left):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0]:
                    left.discard(pid)
                    continue
            if not Path(f"/proc/{pid}").exists():
                left.discard(pid)
        if left:
            time.sleep(0.05)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def stop_agents(hosts: Iterable[str] | None = None) -> list[AgentInfo]:
    """End the agents netmanager started (of some hosts, or all), by PID; returns them."""
    chosen = set(hosts) if hosts is not None else None
    stopping = [
        agent for name, agent in sorted(running().items()) if chosen is None or name in chosen
    ]
    _end(*(a.pid for a in stopping))
    for agent in stopping:
        stop_libvirt(Path(agent.state_dir))
    return stopping


def client(
    info: AgentInfo, *, timeout_s: float | None = None, retries: int | None = None
) -> AgentClient:
    """The client of one running agent, from what its record says (the one place a client
    is built for an agent netmanager started; the agent's own timeout and retries unless
    given).  Raises CredentialsError where its credentials file is unreadable, malformed,
    or readable by group or others."""
    from netmanager.agentctl.client import AgentClient
    from netmanager.snmp.credentials import load_credentials

    return AgentClient(
        info.host,
        info.address,
        info.port,
        load_credentials(info.credentials),
        timeout_s=info.timeout_s if timeout_s is None else timeout_s,
        retries=info.retries if retries is None else retries,
        pid=info.pid or None,
    )


def agent_health(agents: dict[str, AgentInfo]) -> dict[str, str]:
    """'ok' or why not, for each agent: an SNMPv3 GET of its transaction state."""
    import asyncio

    from netmanager.agentctl.client import AgentError
    from netmanager.snmp.credentials import CredentialsError

    async def check(agent: AgentInfo) -> str:
        try:
            reach = client(agent, timeout_s=min(agent.timeout_s, 5.0), retries=1)
        except CredentialsError as exc:
            return f"credentials: {exc}"
        try:
            async with reach:
                status = await reach.status()
        except AgentError as exc:
            return str(exc)
        return "ok" if status.state != "failed" else f"transaction failed: {status.last_error}"

    async def check_all() -> list[str]:
        return list(await asyncio.gather(*(check(a) for a in agents.values())))

    return dict(zip(agents, asyncio.run(check_all()), strict=True)) if agents else {}
