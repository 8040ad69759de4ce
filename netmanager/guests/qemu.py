"""Start, reach and stop QEMU guests (software emulation, ``-accel tcg``).

A guest boots the kernel and initramfs of :mod:`netmanager.guests.image`; its root is
the host's ``/``, read-only over 9p.  It has:

- underlay NICs: tap devices created inside a network namespace netmanager owns (never
  in the root namespace) and handed to QEMU as open descriptors; a tap lives as long as
  QEMU holds it;
- optionally a management NIC on QEMU's user network forwarding
  ``udp:127.0.0.1:agent_port`` to port 161 inside the guest; the guest's init filters the
  NIC's egress (tc) so that only the agent's answers leave it (UDP from port 161 to
  10.0.2.2, QEMU's side) — ``restrict=on`` would drop them too;
- a control channel: a virtio-serial port backed by ``<run_dir>/ctl.sock``, served in the
  guest by :mod:`netmanager.guests.guestd`.

``launch(spec)`` starts QEMU and returns a :class:`Guest`; ``Guest.ready()`` waits for
guestd; ``Guest.run()`` runs a command inside; ``Guest.stop()`` powers it off and ends
QEMU by its PID.  ``<run_dir>/guest.json`` lets another process ``attach()`` and stop it.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from netmanager import programs
from netmanager.guests.errors import GuestError, guest_error
from netmanager.guests.image import Kernel
from netmanager.statedir import write_json

QEMU = "qemu-system-x86_64"
CTL_SOCKET = "ctl.sock"
PIDFILE = "qemu.pid"
RECORD = "guest.json"
CONSOLE = "console.log"
QEMU_LOG = "qemu.log"
MGMT_MAC = "52:54:00:00:00:01"
NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFNAMSIZ = 16
PROJECT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_S = 10.0  # a guest's own poweroff (TCG, two shared cores)
KILL_TIMEOUT_S = 5.0  # QEMU's exit after SIGTERM, then again after SIGKILL
REAP_TIMEOUT_S = 5.0  # another process's exited QEMU, until its parent collects it

_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


@dataclass(frozen=True)
class Nic:
    """An underlay NIC: tap ``tapname`` in namespace ``namespace`` on the host, seen as
    ``guest_ifname`` inside the guest."""

    mac: str
    namespace: str
    tapname: str
    guest_ifname: str


@dataclass(frozen=True)
class GuestSpec:
    name: str
    kernel: Kernel
    initramfs: Path
    run_dir: Path
    memory_mib: int = 256
    cpus: int = 1
    agent_port: int | None = None  # host loopback UDP port forwarded to 161 in the guest
    nics: tuple[Nic, ...] = ()
    cmdline: tuple[str, ...] = ()  # extra kernel command line words
    project_dir: Path = PROJECT  # put on the guest's PYTHONPATH (seen through 9p)
    python: Path = Path("/usr/bin/python3")  # the interpreter guestd runs with
    writable: tuple[str, ...] = ()  # more directories to put a tmpfs on in the guest
    machine: str = "pc"
    p9_cache: str = "loose"
    tb_size_mib: int = 64  # TCG's translation cache (QEMU's default, 1 GiB, costs host memory)
    qemu: str = QEMU


# --- namespaces and taps ---------------------------------------------------------------


def in_namespace(namespace: str, fn: Callable[[], T]) -> T:
    """``fn()`` run in a thread of its own that first enters network namespace
    ``namespace`` (``/run/netns/NAME``); the calling thread never changes namespace."""
    result: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(f"{NETNS_DIR}/{namespace}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"setns {namespace}: {os.strerror(code)}")
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=body, name=f"netns-{namespace}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def open_tap(namespace: str, name: str) -> int:
    """A new tap device ``name`` inside ``namespace``; the descriptor (inheritable) keeps
    it: the tap goes away when the last copy of the descriptor is closed."""
    if not name or len(name.encode()) >= IFNAMSIZ or "/" in name:
        raise guest_error("E758", f"bad tap name {name!r}", "1 to 15 characters, no '/'")

    def create() -> int:
        fd = os.open("/dev/net/tun", os.O_RDWR)
        try:
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TAP | IFF_NO_PI))
        except BaseException:
            os.close(fd)
            raise
        return fd

    try:
        return in_namespace(namespace, create)
    except OSError as exc:
        raise guest_error(
            "E758",
            f"cannot create tap '{name}' in namespace '{namespace}': {exc}",
            "the namespace must exist (/run/netns) and the tap name be free in it",
        ) from exc


def plug(namespace: str, ifname: str, master: str | None = None) -> None:
    """Set ``ifname`` up inside ``namespace``, enslaved to bridge ``master`` if given (a
    helper for tests; netmanager's apply wires taps itself)."""
    from pyroute2 import IPRoute

    def wire() -> None:
        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname=ifname)[0]
            if master is not None:
                ipr.link("set", index=index, master=ipr.link_lookup(ifname=master)[0])
            ipr.link("set", index=index, state="up")

    in_namespace(namespace, wire)


# --- launching -------------------------------------------------------------------------


#: the kernel command line every guest of the image boots with (a guest host, or a
#: libvirt domain of netmanager's guest image: netmanager.guests.domains)
BOOT_WORDS = (
    "console=ttyS0",
    "panic=-1",
    "quiet",
    "tsc=reliable",
    "no_timer_check",
    "8250.nr_uarts=1",
)


def kernel_cmdline(spec: GuestSpec) -> str:
    words = [
        *BOOT_WORDS,
        f"nm.hostname={spec.name}",
        f"nm.project={spec.project_dir}",
        f"nm.python={spec.python}",
        f"nm.cache={spec.p9_cache}",
    ]
    if spec.agent_port is not None:
        words.append(f"nm.mgmt={MGMT_MAC}")
    if spec.writable:
        words.append("nm.rw=" + ",".join(spec.writable))
    words += [f"nm.if={nic.mac.lower()}={nic.guest_ifname}" for nic in spec.nics]
    words += spec.cmdline
    for word in words:
        if not word or any(c.isspace() for c in word):
            raise guest_error("E759", f"kernel command line word {word!r} is empty or has a space")
    return " ".join(words)


def qemu_argv(spec: GuestSpec, tap_fds: Sequence[int]) -> list[str]:
    """QEMU's command line (run with the run directory as working directory)."""
    argv = [
        spec.qemu,
        "-name",
        f"guest={spec.name},debug-threads=on",
        "-machine",
        spec.machine,
        "-accel",
        f"tcg,tb-size={spec.tb_size_mib}",
        "-m",
        str(spec.memory_mib),
        "-smp",
        str(spec.cpus),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-monitor",
        "none",
        "-no-reboot",
        "-kernel",
        str(spec.kernel.vmlinux),
        "-initrd",
        str(spec.initramfs),
        "-append",
        kernel_cmdline(spec),
        "-serial",
        f"file:{spec.run_dir / CONSOLE}",
        "-pidfile",
        str(spec.run_dir / PIDFILE),
        "-virtfs",
        "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
        "-chardev",
        f"socket,id=ctl,path={CTL_SOCKET},server=on,wait=off",
        "-device",
        "virtio-serial-pci",
        "-device",
        "virtserialport,chardev=ctl,name=nm.ctl",
    ]
    if spec.agent_port is not None:
        argv += [
            "-netdev",
            # not restrict=on: libslirp's restricted mode drops every UDP datagram of
            # the guest, the agent's answers too.  The guest's init lets only UDP from
            # port 161 to 10.0.2.2 (and ARP) out of its management NIC instead.
            f"user,id=mgmt,ipv6=off,hostfwd=udp:127.0.0.1:{spec.agent_port}-:161",
            "-device",
            f"virtio-net-pci,netdev=mgmt,mac={MGMT_MAC}",
        ]
    for i, (nic, fd) in enumerate(zip(spec.nics, tap_fds, strict=True)):
        argv += [
            "-netdev",
            f"tap,id=u{i},fd={fd}",
            "-device",
            f"virtio-net-pci,netdev=u{i},mac={nic.mac}",
        ]
    return argv


def launch(spec: GuestSpec) -> Guest:
    """Start QEMU for ``spec`` (it returns at once: wait with ``Guest.ready()``)."""
    binary = programs.which(spec.qemu)
    if binary is None:
        raise guest_error(
            "E754",
            f"{spec.qemu} is not installed",
            f"install Debian's {programs.program(spec.qemu).package} (scripts/install does)",
        )
    run_dir = Path(spec.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in (CTL_SOCKET, PIDFILE, RECORD, CONSOLE):
        (run_dir / stale).unlink(missing_ok=True)
    fds: list[int] = []
    try:
        for nic in spec.nics:
            fds.append(open_tap(nic.namespace, nic.tapname))
        argv = qemu_argv(spec, fds)
        with (run_dir / QEMU_LOG).open("ab") as log:
            process = subprocess.Popen(
                argv,
                cwd=run_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=fds,
                start_new_session=True,
            )
    except OSError as exc:
        raise guest_error("E755", f"cannot start QEMU for guest '{spec.name}': {exc}") from exc
    finally:
        for fd in fds:
            os.close(fd)
    guest = Guest(spec, process.pid, process)
    guest.record(argv)
    return guest


def attach(run_dir: Path) -> Guest:
    """The guest recorded in ``run_dir/guest.json`` (started by another process)."""
    try:
        doc = json.loads((Path(run_dir) / RECORD).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise guest_error("E759", f"no guest recorded in {run_dir}: {exc}") from exc
    spec_doc = dict(doc["spec"])
    kernel_doc = spec_doc.pop("kernel")
    kern = Kernel(kernel_doc["version"], Path(kernel_doc["vmlinux"]), Path(kernel_doc["modules"]))
    spec = GuestSpec(
        **{
            **spec_doc,
            "kernel": kern,
            "initramfs": Path(spec_doc["initramfs"]),
            "run_dir": Path(spec_doc["run_dir"]),
            "project_dir": Path(spec_doc["project_dir"]),
            "python": Path(spec_doc["python"]),
            "nics": tuple(Nic(**n) for n in spec_doc["nics"]),
            "cmdline": tuple(spec_doc["cmdline"]),
            "writable": tuple(spec_doc["writable"]),
        }
    )
    return Guest(spec, int(doc["pid"]), None)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# --- a running guest -------------------------------------------------------------------


@dataclass
class Guest:
    spec: GuestSpec
    pid: int
    process: subprocess.Popen[bytes] | None = None
    hello: dict[str, Any] = field(default_factory=dict)
    _sock: socket.socket | None = None
    _buffer: bytes = b""
    _next_id: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _console_at: int = 0

    @property
    def run_dir(self) -> Path:
        return Path(self.spec.run_dir)

    def record(self, argv: list[str]) -> None:
        doc = {
            "pid": self.pid,
            "argv": argv,
            "name": self.spec.name,
            "agent_port": self.spec.agent_port,
            "control": str(self.run_dir / CTL_SOCKET),
            "console": str(self.run_dir / CONSOLE),
            "kernel": self.spec.kernel.version,
            "started": time.time(),
            "spec": _jsonable(asdict(self.spec)),
        }
        write_json(self.run_dir / RECORD, doc)

    # -- process ------------------------------------------------------------------------

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return self._is_ours()

    def _is_ours(self) -> bool:
        """Whether PID is still the QEMU started for this run directory."""
        try:
            words = Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return False
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return False
        return (
            str(self.run_dir / PIDFILE).encode() in words
            and bool(words)
            and (os.path.basename(words[0]).startswith(b"qemu-system"))
        )

    def _why_gone(self) -> str:
        code = self.process.poll() if self.process is not None else None
        tails = []
        for name in (QEMU_LOG, CONSOLE):
            with contextlib.suppress(OSError):
                text = (self.run_dir / name).read_text(errors="replace").strip().splitlines()
                if text:
                    tails.append(f"{name}: " + " | ".join(text[-3:]))
        status = f" with status {code}" if code is not None else ""
        return f"QEMU of guest '{self.spec.name}' exited{status}; " + "; ".join(tails)

    # -- control channel ---------------------------------------------------------------

    def _connect(self) -> socket.socket | None:
        if self._sock is not None:
            return self._sock
        path = self.run_dir / CTL_SOCKET
        if not path.exists():
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            if len(str(path)) < 100:
                sock.connect(str(path))
            else:  # too long for sun_path: go through a descriptor of the directory
                dirfd = os.open(self.run_dir, os.O_PATH | os.O_CLOEXEC)
                try:
                    sock.connect(f"/proc/self/fd/{dirfd}/{CTL_SOCKET}")
                finally:
                    os.close(dirfd)
        except OSError:
            sock.close()
            return None
        self._sock = sock
        self._buffer = b""
        return sock

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def disconnect(self) -> None:
        """Let go of the control socket (QEMU serves one client at a time: another
        process can then ``attach()``); the next request connects again."""
        with self._lock:
            self._close()

    def _console_lines(self) -> Iterator[str]:
        try:
            with (self.run_dir / CONSOLE).open("rb") as f:
                f.seek(self._console_at)
                data = f.read()
        except OSError:
            return
        end = data.rfind(b"\n") + 1
        self._console_at += end
        for line in data[:end].decode(errors="replace").splitlines():
            line = line.strip()
            if line:
                yield line

    def _request(
        self,
        message: dict[str, Any],
        timeout: float,
        progress: Callable[[str], None] | None = None,
        connect_until: float | None = None,
        late: str = "E757",
    ) -> dict[str, Any]:
        """Send ``message`` and wait for its answer.  ``connect_until``: keep trying to
        connect until then (at boot the socket appears a moment after QEMU starts)."""
        with self._lock:
            request_id = self._next_id
            self._next_id += 1
            deadline = time.monotonic() + timeout
            sent = False
            while True:
                if progress is not None:
                    for line in self._console_lines():
                        progress(line)
                if not self.alive():
                    self._close()
                    raise guest_error("E755", self._why_gone())
                now = time.monotonic()
                if now > deadline:
                    raise guest_error(
                        late,
                        f"guest '{self.spec.name}' did not answer within {timeout:.0f} s: "
                        f"{json.dumps(message)[:200]}",
                        f"its console is {self.run_dir / CONSOLE}",
                    )
                sock = self._connect()
                if sock is None:
                    if connect_until is None or now > connect_until:
                        raise guest_error(
                            "E757",
                            f"cannot connect to the control socket of guest '{self.spec.name}'",
                            f"{self.run_dir / CTL_SOCKET}",
                        )
                    time.sleep(0.05)
                    continue
                if not sent:
                    try:
                        sock.sendall((json.dumps({**message, "id": request_id}) + "\n").encode())
                    except OSError:
                        self._close()
                        continue
                    sent = True
                answer = self._read_answer(sock, request_id, min(0.2, deadline - now))
                if answer is not None:
                    return answer

    def _read_answer(
        self, sock: socket.socket, request_id: int, wait: float
    ) -> dict[str, Any] | None:
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([sock], [], [], max(wait, 0))
            if not ready:
                return None
            chunk = sock.recv(1 << 16)
            if not chunk:
                self._close()
                raise guest_error(
                    "E757", f"the control channel of guest '{self.spec.name}' was closed"
                )
            self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            with contextlib.suppress(json.JSONDecodeError):
                answer = json.loads(line)
                if isinstance(answer, dict) and answer.get("id") == request_id:
                    return answer
        return None

    def ready(self, timeout: float = 120, progress: Callable[[str], None] | None = None) -> None:
        """Wait until guestd answers; ``progress`` gets each new console line."""
        deadline = time.monotonic() + timeout
        answer = self._request(
            {"op": "hello"}, timeout, progress, connect_until=deadline, late="E756"
        )
        if answer.get("hello") != "guestd":
            raise guest_error("E757", f"unexpected hello from guest '{self.spec.name}': {answer}")
        self.hello = answer

    def run(
        self,
        argv: Sequence[str],
        netns: str | None = None,
        timeout: float = 60,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the guest (in its namespace ``netns`` if given)."""
        message: dict[str, Any] = {"argv": list(argv), "timeout": timeout}
        if netns is not None:
            message["netns"] = netns
        if stdin is not None:
            message["stdin"] = stdin
        if env is not None:
            message["env"] = env
        answer = self._request(message, timeout + 15)
        if "error" in answer:
            raise guest_error(
                "E757", f"guest '{self.spec.name}' refused {argv[0]}: {answer['error']}"
            )
        result = subprocess.CompletedProcess(
            list(argv), int(answer["rc"]), str(answer["stdout"]), str(answer["stderr"])
        )
        if check:
            result.check_returncode()
        return result

    def spawn(
        self,
        argv: Sequence[str],
        netns: str | None = None,
        log: str | None = None,
        env: dict[str, str] | None = None,
    ) -> int:
        """Start a long-running process inside the guest; its PID there."""
        message: dict[str, Any] = {"op": "spawn", "argv": list(argv)}
        if netns is not None:
            message["netns"] = netns
        if log is not None:
            message["log"] = log
        if env is not None:
            message["env"] = env
        answer = self._request(message, 30)
        if "error" in answer:
            raise guest_error(
                "E757", f"guest '{self.spec.name}' refused {argv[0]}: {answer['error']}"
            )
        return int(answer["pid"])

    def write_file(self, path: str, data: str, mode: int = 0o600) -> None:
        """Write a text file inside the guest (on one of its tmpfs: /tmp, /run, ...)."""
        answer = self._request({"op": "write", "path": path, "data": data, "mode": mode}, 30)
        if "error" in answer:
            raise guest_error(
                "E757", f"guest '{self.spec.name}' cannot write {path}: {answer['error']}"
            )

    def read_file(self, path: str) -> str | None:
        """A text file inside the guest, None if there is none (guestd reads it: no
        process is started)."""
        answer = self._request({"op": "read", "path": path}, 30)
        if "error" in answer:
            raise guest_error(
                "E757", f"guest '{self.spec.name}' cannot read {path}: {answer['error']}"
            )
        return None if answer.get("missing") else str(answer["data"])

    def kill(self, pid: int, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to a process ``spawn`` started inside the guest."""
        answer = self._request({"op": "kill", "pid": pid, "signal": int(sig)}, 30)
        if "error" in answer:
            raise guest_error(
                "E757", f"guest '{self.spec.name}' cannot signal {pid}: {answer['error']}"
            )

    def poll(self, pid: int) -> int | None:
        """The exit status of a process ``spawn`` started, None while it runs."""
        answer = self._request({"op": "poll", "pid": pid}, 30)
        if "error" in answer:
            raise guest_error(
                "E757", f"guest '{self.spec.name}' knows no process {pid}: {answer['error']}"
            )
        rc = answer.get("rc")
        return None if rc is None else int(rc)

    # -- stopping ----------------------------------------------------------------------

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Power the guest off and return once QEMU has exited (see :func:`stop_all`)."""
        stop_all([self], timeout)

    def _pidfd(self) -> int | None:
        """A pidfd of this guest's QEMU, or None when it is gone.  Opened first, then
        checked to be this guest's QEMU (a PID reused before the open fails the check), so
        every wait and signal through it reaches this QEMU and nothing else."""
        if self.process is not None and self.process.poll() is not None:
            return None
        try:
            fd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            return None
        if self.process is None and not self._is_ours():
            os.close(fd)
            return None
        return fd

    def _reap(self, pidfd: int, started: str | None) -> None:
        """Collect QEMU's exit status where this process started it; else wait (up to
        :data:`REAP_TIMEOUT_S`) for its parent, often init once the command that booted
        it has ended, to collect it: until then ``ps`` still lists it, a zombie."""
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=1)
            return
        try:
            os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
            return
        except ChildProcessError:
            pass
        deadline = time.monotonic() + REAP_TIMEOUT_S
        while _start_time(self.pid) == started and time.monotonic() < deadline:
            time.sleep(0.02)

    def _forget(self) -> None:
        self._close()
        for name in (CTL_SOCKET, PIDFILE, RECORD):
            (self.run_dir / name).unlink(missing_ok=True)


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks after boot: tells a PID reused since
    from the process it was), None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _exited(pidfd: int, timeout: float) -> bool:
    """Whether the process of ``pidfd`` has exited (its threads gone, its descriptors and
    memory released), waiting up to ``timeout`` seconds."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(max(0, int(timeout * 1000))))


def stop_all(guests: Sequence[Guest], timeout: float = STOP_TIMEOUT_S) -> None:
    """Power the guests off, all at once, and return only when every QEMU has exited:
    each PID is waited on through a pidfd opened while it was still the guest's own;
    a QEMU still there after ``timeout`` gets SIGTERM, then SIGKILL, through the same
    pidfd (each waited on for :data:`KILL_TIMEOUT_S`).  QEMU processes started by this
    process are reaped, the others waited on until their parent has reaped them.  Removes each guest's control socket, pidfile and guest.json.
    Raises E759 naming a QEMU that survived SIGKILL."""
    pidfds: dict[int, int] = {}
    started: dict[int, str | None] = {}
    left: dict[int, int] = {}
    try:
        for index, guest in enumerate(guests):
            fd = guest._pidfd()
            if fd is not None:
                pidfds[index] = fd
                started[index] = _start_time(guest.pid)
        for index in pidfds:
            guest = guests[index]
            with contextlib.suppress(GuestError, OSError):
                if guest._connect() is not None:
                    guest._request({"op": "poweroff"}, min(timeout, 5))
            guest.disconnect()
        left.update(pidfds)
        steps = (
            (None, timeout),
            (signal.SIGTERM, KILL_TIMEOUT_S),
            (signal.SIGKILL, KILL_TIMEOUT_S),
        )
        for sig, wait in steps:
            if sig is not None:
                for fd in left.values():
                    with contextlib.suppress(ProcessLookupError):
                        signal.pidfd_send_signal(fd, sig)
            deadline = time.monotonic() + wait
            for index, fd in list(left.items()):
                if _exited(fd, deadline - time.monotonic()):
                    del left[index]
            if not left:
                break
        for index, fd in pidfds.items():
            if index not in left:
                guests[index]._reap(fd, started[index])
    finally:
        for fd in pidfds.values():
            os.close(fd)
    for index, guest in enumerate(guests):
        if index not in left:
            guest._forget()
    if left:
        names = ", ".join(f"'{guests[i].spec.name}' (pid {guests[i].pid})" for i in left)
        raise guest_error("E759", f"QEMU of guest {names} did not end")
