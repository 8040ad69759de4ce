"""A libvirt domain as verify's "guest": the kernel a VM of a libvirt host runs in, reached
through its qemu-guest-agent (:class:`~netmanager.hypervisor.keeper.GuestAgent`: the
keeper of a host emulated here, or a libvirt connection to a real host).

It offers what :mod:`netmanager.verify.distributed` asks of a guest host's
:class:`~netmanager.guests.qemu.Guest` — run, spawn, poll, kill, read and write a file —
so that the scan, the ping series, iperf3 and the checks run inside the domain as they
run inside a guest host, by one code path.  The differences are the domain's:

* the VM is the guest's root namespace: a ``netns`` that names the VM's own namespace is
  the guest's root (the label the topology gives it), any other is refused;
* commands are found on the guest's ``PATH`` by their name (the guest is not this
  machine): every process starts through one fixed ``/bin/sh`` script that takes the
  command as its positional parameters, never a string built from input;
* the scan worker and the two modules it needs are written into the guest's work
  directory before it starts (nothing of netmanager need be installed in a guest; its
  Python 3 and iproute2's ``ip`` are what it must have);
* the guest's interface names are its own: :meth:`ifname_of` finds them by MAC.
"""

from __future__ import annotations

import posixpath
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from netmanager.guests.errors import GuestError, guest_error
from netmanager.hypervisor.keeper import ERR_ARGUMENT_UNSUPPORTED, GuestAgent, KeeperError

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHELL = "/bin/sh"
# each script gets its arguments as positional parameters: nothing is parsed by the shell
RUN = f'PATH={PATH}; export PATH; exec "$@"'
SPAWN = f'PATH={PATH}; export PATH; log=$1; shift; exec "$@" >"$log" 2>&1 </dev/null'
KILL = 'exec kill -s "$1" "$2"'
MKDIR = 'exec mkdir -p "$1"'
#: the modules the scan worker imports (the standard library besides), as
#: paths relative to the project: written into the guest under its work directory
WORKER_FILES = (
    "netmanager/verify/scanworker.py",
    "netmanager/verify/scan.py",
    "netmanager/kernel/netns.py",
)
PROJECT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DomainSpec:
    """What verify's code reads of a guest's spec."""

    name: str
    python: str = "python3"


@dataclass
class DomainGuest:
    """One domain of a libvirt host, reached through ``agent``."""

    agent: GuestAgent
    host: str
    domain: str
    namespace: str  # the label of the VM's namespace in the topology: the guest's root
    spec: DomainSpec = field(init=False)
    _exited: dict[int, int] = field(default_factory=dict, init=False)
    _dirs: set[str] = field(default_factory=set, init=False)
    _staged: dict[str, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.spec = DomainSpec(f"{self.host}/{self.domain}")

    # -- errors ----------------------------------------------------------------------

    def _error(self, what: str, exc: Exception) -> GuestError:
        return guest_error(
            "E757",
            f"domain '{self.domain}' on libvirt host '{self.host}': {what}: {exc}",
            "does the guest run qemu-guest-agent (virsh qemu-agent-command "
            f'{self.domain} \'{{"execute":"guest-ping"}}\')?',
        )

    def _where(self, netns: str | None) -> None:
        if netns not in (None, "", self.namespace):
            raise guest_error(
                "E757",
                f"domain '{self.domain}' has no namespace {netns}: its VM is the guest itself",
            )

    # -- what verify asks of a guest --------------------------------------------------

    def silence(self) -> str | None:
        """Why the guest's agent does not answer; None when it does."""
        try:
            if self.agent.guest_ping(self.domain):
                return None
            return f"the qemu-guest-agent of domain '{self.domain}' does not answer"
        except KeeperError as exc:
            if exc.code == ERR_ARGUMENT_UNSUPPORTED:  # no agent channel
                return (
                    f"domain '{self.domain}' has no qemu-guest-agent: nothing can be probed "
                    "from inside it (its host checks its address by ARP: netmanager status)"
                )
            return f"domain '{self.domain}': {exc}"

    def run(
        self,
        argv: Sequence[str],
        netns: str | None = None,
        timeout: float = 60,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the guest (its first word found on the guest's PATH by name);
        a run that outlasts ``timeout`` is ended and reported as -9, as a guest host's."""
        self._where(netns)
        command = [SHELL, "-c", RUN, "sh", *_named(argv, env)]
        try:
            pid = self.agent.guest_exec_start(self.domain, command, stdin=(stdin or "").encode())
            done = self._wait(pid, timeout)
        except KeeperError as exc:
            raise self._error(f"cannot run {argv[0]}", exc) from exc
        if done is None:
            self._signal(pid, signal.SIGKILL)
            result = subprocess.CompletedProcess(list(argv), -9, "", "timed out")
        else:
            code, out, err = done
            result = subprocess.CompletedProcess(
                list(argv), code, out.decode(errors="replace"), err.decode(errors="replace")
            )
        if check and result.returncode != 0:
            raise guest_error(
                "E757",
                f"domain '{self.domain}': {argv[0]} failed ({result.returncode}): "
                f"{result.stderr.strip()[-300:]}",
            )
        return result

    def _wait(self, pid: int, timeout: float) -> tuple[int, bytes, bytes] | None:
        deadline = time.monotonic() + timeout
        pause = 0.01
        while True:
            done = self.agent.guest_exec_status(self.domain, pid)
            if done is not None:
                return done
            if time.monotonic() > deadline:
                return None
            time.sleep(pause)
            pause = min(pause * 1.5, 0.1)

    def spawn(
        self,
        argv: Sequence[str],
        netns: str | None = None,
        log: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> int:
        """Start a long-running process in the guest, its output into ``log``; its PID."""
        self._where(netns)
        command = [SHELL, "-c", SPAWN, "sh", log or "/dev/null", *_named(argv, env)]
        try:
            return self.agent.guest_exec_start(self.domain, command, capture=False)
        except KeeperError as exc:
            raise self._error(f"cannot start {argv[0]}", exc) from exc

    def poll(self, pid: int) -> int | None:
        """The exit status of a process :meth:`spawn` started, None while it runs."""
        if pid in self._exited:
            return self._exited[pid]
        try:
            done = self.agent.guest_exec_status(self.domain, pid)
        except KeeperError as exc:
            raise self._error(f"knows no process {pid}", exc) from exc
        if done is None:
            return None
        self._exited[pid] = done[0]
        return done[0]

    def kill(self, pid: int, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to a process :meth:`spawn` started."""
        if pid in self._exited:
            return
        try:
            self._signal(pid, sig)
        except KeeperError as exc:
            raise self._error(f"cannot signal {pid}", exc) from exc

    def _signal(self, pid: int, sig: int) -> None:
        name = signal.Signals(sig).name.removeprefix("SIG")
        self.agent.guest_exec(self.domain, [SHELL, "-c", KILL, "sh", name, str(pid)], 30)

    def read_file(self, path: str) -> str | None:
        """A text file of the guest, None if there is none (read by the agent's file
        calls: no process is started)."""
        try:
            return self.agent.guest_read(self.domain, path).decode(errors="replace")
        except KeeperError as exc:
            if "No such file" in str(exc):
                return None
            raise self._error(f"cannot read {path}", exc) from exc

    def write_file(self, path: str, data: str, mode: int = 0o600) -> None:
        """Write a text file of the guest, its directory made first if need be (``mode``
        is the guest's umask's: the files are verify's own, in its work directory)."""
        directory = posixpath.dirname(path)
        try:
            if directory and directory not in self._dirs:
                code, _out, err = self.agent.guest_exec(
                    self.domain, [SHELL, "-c", MKDIR, "sh", directory], 30
                )
                if code != 0:
                    raise KeeperError(err.decode(errors="replace").strip())
                self._dirs.add(directory)
            self.agent.guest_write(self.domain, path, data.encode())
        except KeeperError as exc:
            raise self._error(f"cannot write {path}", exc) from exc

    def disconnect(self) -> None:
        """Nothing to let go of: the host's agent connection is shared (see
        :class:`~netmanager.verify.distributed.Guests`)."""

    # -- the domain's own --------------------------------------------------------------

    def stage_worker(self, workdir: str) -> str:
        """The scan worker written into the guest under ``workdir`` (once); its path
        there."""
        if workdir not in self._staged:
            base = f"{workdir}/lib"
            for relative in WORKER_FILES:
                self.write_file(f"{base}/{relative}", (PROJECT / relative).read_text())
            self._staged[workdir] = f"{base}/{WORKER_FILES[0]}"
        return self._staged[workdir]

    def ifname_of(self) -> dict[str, str]:
        """The guest's interface names by MAC (lower case), as its agent reports them."""
        try:
            found = self.agent.agent(self.domain, {"execute": "guest-network-get-interfaces"})
        except KeeperError as exc:
            raise self._error("cannot list its interfaces", exc) from exc
        return {
            str(i.get("hardware-address", "")).lower(): str(i.get("name", ""))
            for i in found or ()
            if i.get("hardware-address")
        }


def _named(argv: Sequence[str], env: Mapping[str, str] | None) -> list[str]:
    """``argv`` with its program by name (found on the guest's PATH), behind ``env``'s
    assignments through env(1) when there are any."""
    words = [posixpath.basename(argv[0]), *argv[1:]]
    if env:
        return ["env", *(f"{k}={v}" for k, v in env.items()), *words]
    return words
