"""The process that holds a host's libvirt connection, and its client.

A libvirt host's agent reaches its domains through a *keeper*: a small process that opens
the host's libvirt URI once and keeps it open, and serves a fixed set of operations
(JSON lines over a unix socket in the agent's state directory).  It is its own process
for two reasons measured in ``../shared/notes/guests.md``:

- libvirt's embedded QEMU driver (``qemu:///embed?root=DIR``, what the tests' libvirt
  hosts run inside an emulated host's network namespace) shuts down every running domain
  of its root when a process opens that root again: the connection must outlive any
  restart of the agent.  The keeper is started in a session of its own and an agent
  that restarts finds it again by its socket;
- a domain's taps are created in the network namespace of the process that starts it:
  the keeper runs in the host's hypervisor domain (its dom0 namespace), wherever the
  agent runs.

With ``qemu:///system`` (a real host) nothing is lost when a connection closes, but the
same keeper serves it: one code path.  The keeper never decides anything: what to
define, wire or undefine is the host backend's (:mod:`netmanager.hypervisor.domains`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netmanager import programs

if TYPE_CHECKING:
    from netmanager.hypervisor.migration import MigrationRequest, MigrationResult

log = logging.getLogger("netmanager.keeper")

SOCKET = "keeper.sock"
RECORD = "keeper.json"
LOG = "keeper.log"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
CALL_TIMEOUT_S = 120.0  # a define on a fresh embedded root probes QEMU for seconds
MAX_REQUEST = 1 << 20
#: written into an embedded root before its first open: QEMU's output goes to files, not
#: through the system's virtlogd (which the embedded driver would need otherwise); QEMU
#: runs as root with no security driver, as the process that embeds the driver does (as
#: libvirt-qemu it would see only the world-readable files of a share of the host's /)
EMBED_QEMU_CONF = """\
# written by netmanager's libvirt keeper for an embedded QEMU driver
stdio_handler = "file"
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
"""
#: after an embedded root is opened again, libvirt reconnects to the domains that run
#: (asynchronously): destroying one before that races the reconnection, which then shuts
#: the domain down as if its daemon had gone (measured: about 0.2 s; ../shared/notes)
RECONNECT_GRACE_S = 1.0


class KeeperError(RuntimeError):
    """An operation the keeper could not do; ``code`` is libvirt's error number if any."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


# libvirt's error numbers that callers tell apart (virErrorNumber)
ERR_NO_DOMAIN = 42
ERR_OPERATION_INVALID = 55
ERR_ARGUMENT_UNSUPPORTED = 74  # e.g. a guest agent asked of a domain without its channel
ERR_AGENT_UNRESPONSIVE = 86
ERR_AGENT_UNSYNCED = 97

#: what one guest-file-read asks for (qemu-guest-agent answers up to 48 MiB at once; the
#: answer travels base64-encoded through libvirt)
READ_CHUNK = 1 << 20


def socket_path(directory: Path) -> Path:
    """Where the keeper of ``directory`` listens: in it, or where a unix socket's path
    would be too long (108 bytes: a deep state directory), in /run/netmanager under a
    hash of it."""
    path = directory / SOCKET
    if len(os.fsencode(str(path))) < 100:
        return path
    digest = hashlib.sha256(os.fsencode(str(directory.resolve()))).hexdigest()[:16]
    return Path("/run/netmanager") / f"keeper-{digest}.sock"


def embed_root(uri: str) -> Path | None:
    """The root directory of an embedded driver's URI, None for any other URI."""
    head, _, query = uri.partition("?")
    if not head.endswith("/embed"):
        return None
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == "root" and value:
            return Path(value)
    return None


# ------------------------------------------------------------------------- the server


class _Libvirt:
    """The keeper's connection and the operations it serves (libvirt-python)."""

    def __init__(self, uri: str, peers: Sequence[str] = ()) -> None:
        import libvirt

        self.libvirt = libvirt
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        #: the libvirts this one migrates domains to, opened first: a process that has
        #: opened an embedded driver can no longer open qemu:///system ("Missing URI
        #: parameter 'root'", ../shared/notes/guests.md).  One that does not answer now
        #: is left out (a migration to it then says so): the host runs its domains anyway
        self.peers: dict[str, Any] = {}
        for peer in peers:
            try:
                self.peers[peer] = libvirt.open(peer)
            except libvirt.libvirtError as exc:
                log.warning("cannot open %s to migrate domains to: %s", peer, exc)
        root = embed_root(uri)
        if root is not None:
            conf = root / "etc" / "qemu.conf"
            if not conf.exists():
                conf.parent.mkdir(parents=True, exist_ok=True)
                conf.write_text(EMBED_QEMU_CONF)
            # the embedded driver needs an event loop in the opening process
            libvirt.virEventRegisterDefaultImpl()
            threading.Thread(target=self._events, daemon=True, name="libvirt-events").start()
        self.uri = uri
        self.conn = libvirt.open(uri)
        self.lock = threading.Lock()
        if root is not None and self.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            time.sleep(RECONNECT_GRACE_S)

    def _events(self) -> None:
        while True:
            self.libvirt.virEventRunDefaultImpl()

    def _domain(self, name: str) -> Any:
        return self.conn.lookupByName(name)

    def _describe(self, dom: Any) -> dict[str, Any]:
        state, reason = dom.state()
        return {
            "name": dom.name(),
            "active": bool(dom.isActive()),
            "persistent": bool(dom.isPersistent()),
            "state": int(state),
            "reason": int(reason),
            "xml": dom.XMLDesc(0),
        }

    def hello(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "uri": self.uri,
            "type": self.conn.getType(),
            "version": self.conn.getVersion(),
            "netns": _netns_inode(),
            "peers": sorted(self.peers),
        }

    def list(self) -> list[dict[str, Any]]:
        return [self._describe(d) for d in self.conn.listAllDomains(0)]

    def get(self, name: str) -> dict[str, Any]:
        return self._describe(self._domain(name))

    def define(self, xml: str) -> dict[str, Any]:
        return self._describe(self.conn.defineXML(xml))

    def start(self, name: str) -> dict[str, Any]:
        dom = self._domain(name)
        if not dom.isActive():
            dom.create()
        return self._describe(dom)

    def destroy(self, name: str) -> dict[str, Any]:
        dom = self._domain(name)
        if dom.isActive():
            dom.destroy()
        return self._describe(dom)

    def undefine(self, name: str) -> dict[str, Any]:
        lv = self.libvirt
        dom = self._domain(name)
        if dom.isActive():
            dom.destroy()
        flags = (
            lv.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
            | lv.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
            | lv.VIR_DOMAIN_UNDEFINE_NVRAM
        )
        try:
            dom.undefineFlags(flags)
        except lv.libvirtError:
            dom.undefine()
        return {"name": name}

    def update(self, name: str, xml: str) -> dict[str, Any]:
        lv = self.libvirt
        dom = self._domain(name)
        flags = lv.VIR_DOMAIN_AFFECT_LIVE if dom.isActive() else 0
        if dom.isPersistent():
            flags |= lv.VIR_DOMAIN_AFFECT_CONFIG
        dom.updateDeviceFlags(xml, flags)
        return self._describe(dom)

    def set_metadata(self, name: str, xml: str, key: str, uri: str) -> dict[str, Any]:
        lv = self.libvirt
        dom = self._domain(name)
        flags = lv.VIR_DOMAIN_AFFECT_LIVE if dom.isActive() else 0
        if dom.isPersistent():
            flags |= lv.VIR_DOMAIN_AFFECT_CONFIG
        dom.setMetadata(lv.VIR_DOMAIN_METADATA_ELEMENT, xml, key, uri, flags)
        return self._describe(dom)

    def destroy_all(self) -> dict[str, Any]:
        """Stop every running domain (an emulated host going away takes its domains)."""
        stopped = []
        for dom in self.conn.listAllDomains(self.libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            dom.destroy()
            stopped.append(dom.name())
        return {"stopped": stopped}

    def agent(self, name: str, command: str, timeout: int) -> dict[str, Any]:
        import libvirt_qemu

        answer = libvirt_qemu.qemuAgentCommand(self._domain(name), command, timeout, 0)
        return {"answer": answer}

    def migrate(self, request: dict[str, Any]) -> dict[str, Any]:
        """Live-migrate a domain (:mod:`netmanager.hypervisor.migration`)."""
        from netmanager.hypervisor import migration

        req = migration.MigrationRequest.from_json(request)
        dest = None if req.peer2peer else self._peer(req.dest_uri, req.domain)
        dom = self._domain(req.domain)
        return migration.migrate(dom, req, dest=dest, error=self.libvirt.libvirtError).as_json()

    def job(self, name: str) -> dict[str, Any]:
        """The domain's current job as libvirt reports it (``virDomainGetJobStats``, which
        libvirt answers while a migration runs): its type and what it processed."""
        stats = self._domain(name).jobStats(0)
        return {
            "type": int(stats.get("type", 0)),
            "memory_processed": int(stats.get("memory_processed", 0)),
            "data_processed": int(stats.get("data_processed", 0)),
        }

    def _peer(self, uri: str, domain: str) -> Any:
        from netmanager.hypervisor.migration import MigrationError, Where

        if uri not in self.peers:
            if embed_root(self.uri) is not None:
                raise MigrationError(
                    f"cannot migrate domain '{domain}' to {uri}: this keeper of an embedded "
                    f"driver did not open {uri} when it started (libvirt opens no other "
                    "URI in a process after an embedded driver)",
                    Where.SOURCE,
                )
            self.peers[uri] = self.libvirt.open(uri)
        return self.peers[uri]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()
        for peer in self.peers.values():
            with contextlib.suppress(Exception):
                peer.close()


OPERATIONS = frozenset(
    {"hello", "list", "get", "define", "start", "destroy", "undefine", "update"}
    | {"set_metadata", "agent", "destroy_all", "migrate", "job"}
)


#: operations that need no lock (a libvirt connection is thread-safe; the others change
#: domains, one at a time)
CONCURRENT = frozenset({"hello", "get", "list", "agent", "job"})


def _netns_inode() -> int:
    try:
        return os.stat("/proc/self/ns/net").st_ino
    except OSError:  # pragma: no cover
        return 0


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(MAX_REQUEST + 1)
            if not line:
                return
            answer = self.server.answer(line)
            self.wfile.write(json.dumps(answer).encode() + b"\n")
            self.wfile.flush()


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 64  # an agent configures guests from several threads at once

    def __init__(self, path: str, backend: _Libvirt) -> None:
        self.backend = backend
        self.stopping = threading.Event()
        super().__init__(path, _Handler)

    def answer(self, line: bytes) -> dict[str, Any]:
        if len(line) > MAX_REQUEST:
            return {"error": "request too long"}
        try:
            request = json.loads(line)
            op = request["op"]
            args = request.get("args", {})
            if not isinstance(args, dict):
                raise TypeError("args must be an object")
        except (ValueError, KeyError, TypeError) as exc:
            return {"error": f"bad request: {exc}"}
        if op == "quit":
            self.stopping.set()
            threading.Thread(target=self.shutdown, daemon=True).start()
            return {"result": None}
        if op not in OPERATIONS:
            return {"error": f"unknown operation {op!r}"}
        lv = self.backend.libvirt
        try:
            if op in CONCURRENT:  # a guest agent's answer may take long: others go on
                return {"result": getattr(self.backend, op)(**args)}
            with self.backend.lock:
                return {"result": getattr(self.backend, op)(**args)}
        except lv.libvirtError as exc:
            return {"error": str(exc), "code": exc.get_error_code() or 0}
        except KeeperError as exc:
            answer: dict[str, Any] = {"error": str(exc), "code": exc.code}
            where = getattr(exc, "where", None)
            if where is not None:  # a migration's: where its domain is
                answer["where"] = str(where)
                answer["reason"] = str(getattr(exc, "reason", exc))
            return answer
        except TypeError as exc:
            return {"error": f"bad arguments for {op}: {exc}"}


def serve(uri: str, directory: Path, peers: Sequence[str] = ()) -> int:
    """Open ``peers`` (the libvirts it migrates to), then ``uri``, and serve it on
    ``directory``/keeper.sock until told to quit."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = socket_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        backend = _Libvirt(uri, peers)
    except Exception as exc:
        print(f"netmanager keeper: cannot open {uri}: {exc}", file=sys.stderr)
        return 2
    path.unlink(missing_ok=True)
    server = _Server(str(path), backend)
    os.chmod(path, 0o600)
    (directory / RECORD).write_text(
        json.dumps({"pid": os.getpid(), "uri": uri, "started": time.time()})
    )

    def stop(_sig: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("serving %s on %s", uri, path)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        backend.close()
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            record = json.loads((directory / RECORD).read_text())
            if record.get("pid") == os.getpid():
                (directory / RECORD).unlink()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m netmanager.hypervisor.keeper",
        description="holds a libvirt connection for netmanager's agent (see the module's doc)",
    )
    p.add_argument("--uri", required=True)
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument(
        "--peer",
        action="append",
        default=[],
        help="a libvirt URI to migrate domains to, opened before --uri (repeatable)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s keeper %(message)s")
    return serve(args.uri, args.dir, args.peer)


# ------------------------------------------------------------------------- the client


@dataclass(frozen=True)
class Domain:
    """A domain as the keeper describes it."""

    name: str
    active: bool
    persistent: bool
    state: int
    reason: int
    xml: str

    @classmethod
    def of(cls, d: dict[str, Any]) -> Domain:
        return cls(
            name=str(d["name"]),
            active=bool(d["active"]),
            persistent=bool(d["persistent"]),
            state=int(d["state"]),
            reason=int(d["reason"]),
            xml=str(d["xml"]),
        )

    @property
    def state_name(self) -> str:
        return STATE_NAMES.get(self.state, f"state {self.state}")


#: virDomainState
STATE_NAMES = {
    0: "no state",
    1: "running",
    2: "blocked",
    3: "paused",
    4: "shutting down",
    5: "shut off",
    6: "crashed",
    7: "suspended by the guest",
}


class GuestAgent:
    """qemu-guest-agent calls, over :meth:`agent` (a keeper's, or a libvirt connection
    of this process's: :class:`DirectClient`)."""

    def agent(self, name: str, command: dict[str, Any], timeout: int = 10) -> Any:
        raise NotImplementedError

    def guest_ping(self, name: str, timeout: int = 2) -> bool:
        """Whether the domain's qemu-guest-agent answers."""
        try:
            self.agent(name, {"execute": "guest-ping"}, timeout)
        except KeeperError as exc:
            if exc.code in (ERR_AGENT_UNRESPONSIVE, ERR_AGENT_UNSYNCED, ERR_OPERATION_INVALID):
                return False
            raise
        return True

    def wait_guest_agent(self, name: str, timeout_s: float) -> bool:
        """Wait until the domain's qemu-guest-agent answers (a guest booting)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.guest_ping(name):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.25)

    def guest_read(self, name: str, path: str, limit: int = 16 << 20) -> bytes:
        """A file of the guest (guest-file-open/read/close: no process is started in the
        guest, which costs a tenth of a second under software emulation), read to its end
        in pieces of :data:`READ_CHUNK` (at most ``limit`` bytes)."""
        handle = self.agent(
            name, {"execute": "guest-file-open", "arguments": {"path": path, "mode": "r"}}
        )
        data = bytearray()
        try:
            while len(data) < limit:
                count = min(READ_CHUNK, limit - len(data))
                read = self.agent(
                    name,
                    {"execute": "guest-file-read", "arguments": {"handle": handle, "count": count}},
                )
                data += base64.b64decode(read.get("buf-b64", ""))
                if read.get("eof") or not int(read.get("count", 0)):
                    break
        finally:
            self.agent(name, {"execute": "guest-file-close", "arguments": {"handle": handle}})
        return bytes(data)

    def guest_write(self, name: str, path: str, data: bytes) -> None:
        """Write a file of the guest (a sysctl, a sysfs attribute), as guest_read does."""
        handle = self.agent(
            name, {"execute": "guest-file-open", "arguments": {"path": path, "mode": "w"}}
        )
        try:
            self.agent(
                name,
                {
                    "execute": "guest-file-write",
                    "arguments": {"handle": handle, "buf-b64": base64.b64encode(data).decode()},
                },
            )
        finally:
            self.agent(name, {"execute": "guest-file-close", "arguments": {"handle": handle}})

    def guest_exec_start(
        self, name: str, argv: Sequence[str], *, capture: bool = True, stdin: bytes = b""
    ) -> int:
        """Start ``argv`` in the guest (guest-exec); the guest's PID of it, for
        :meth:`guest_exec_status`.  The agent keeps its status until it is read once
        after the end."""
        arguments: dict[str, Any] = {
            "path": argv[0],
            "arg": list(argv[1:]),
            "capture-output": capture,
        }
        if stdin:
            arguments["input-data"] = base64.b64encode(stdin).decode()
        started = self.agent(name, {"execute": "guest-exec", "arguments": arguments})
        return int(started["pid"])

    def guest_exec_status(self, name: str, pid: int) -> tuple[int, bytes, bytes] | None:
        """None while the process :meth:`guest_exec_start` started runs; then its exit code
        (128 + the signal that ended it), standard output and error (read once: the agent
        forgets the process then)."""
        status = self.agent(name, {"execute": "guest-exec-status", "arguments": {"pid": pid}})
        if not status.get("exited"):
            return None
        out = base64.b64decode(status.get("out-data", ""))
        err = base64.b64decode(status.get("err-data", ""))
        code = status.get("exitcode")
        if code is None:  # ended by a signal
            code = 128 + int(status.get("signal", 0))
        return int(code), out, err

    def guest_exec(
        self, name: str, argv: Sequence[str], timeout_s: float = 60.0, stdin: bytes = b""
    ) -> tuple[int, bytes, bytes]:
        """Run ``argv`` in the guest through its qemu-guest-agent (guest-exec): exit code,
        standard output and error.  Raises KeeperError if it does not end in time."""
        pid = self.guest_exec_start(name, argv, stdin=stdin)
        deadline = time.monotonic() + timeout_s
        pause = 0.01
        while True:
            done = self.guest_exec_status(name, pid)
            if done is not None:
                return done
            if time.monotonic() > deadline:
                raise KeeperError(
                    f"domain {name}: {argv[0]} did not end within {timeout_s:.0f} s (guest pid {pid})"
                )
            time.sleep(pause)
            pause = min(pause * 1.5, 0.1)


class DirectClient(GuestAgent):
    """A libvirt connection of this process (the manager reaching a real libvirt host at
    the URI real.xml gives it, e.g. ``qemu+ssh://hv1/system``), for its guest agents."""

    def __init__(self, uri: str) -> None:
        self._libvirt = _Libvirt(uri)

    def agent(self, name: str, command: dict[str, Any], timeout: int = 10) -> Any:
        lv = self._libvirt.libvirt
        try:
            answer = self._libvirt.agent(name, json.dumps(command), timeout)["answer"]
        except lv.libvirtError as exc:
            raise KeeperError(str(exc), exc.get_error_code() or 0) from exc
        return json.loads(answer).get("return")

    def close(self) -> None:
        self._libvirt.close()


class KeeperClient(GuestAgent):
    """Calls on a keeper's socket (one connection, opened on first use)."""

    def __init__(self, directory: Path, timeout: float = CALL_TIMEOUT_S) -> None:
        self.directory = directory
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._file: Any = None
        #: one request at a time on the one connection (a client shared by threads)
        self._lock = threading.Lock()

    def _connect(self) -> None:
        path = str(socket_path(self.directory))
        for attempt in range(50):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(path)
                break
            except BlockingIOError:  # the keeper's backlog is full for a moment
                sock.close()
                if attempt == 49:
                    raise
                time.sleep(0.01)
            except OSError:
                sock.close()
                raise
        self._sock, self._file = sock, sock.makefile("rwb")

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._file.close()
                self._sock.close()
        self._sock = self._file = None

    def request(self, op: str, **args: Any) -> Any:
        with self._lock:
            return self._request(op, args)

    def _request(self, op: str, args: dict[str, Any]) -> Any:
        if self._sock is None:
            try:
                self._connect()
            except OSError as exc:
                raise KeeperError(
                    f"no libvirt keeper at {socket_path(self.directory)}: {exc}"
                ) from exc
        try:
            self._file.write(json.dumps({"op": op, "args": args}).encode() + b"\n")
            self._file.flush()
            line = self._file.readline(1 << 26)
        except OSError as exc:
            self.close()
            raise KeeperError(f"the libvirt keeper did not answer {op}: {exc}") from exc
        if not line:
            self.close()
            raise KeeperError(f"the libvirt keeper closed the connection during {op}")
        answer = json.loads(line)
        if "error" in answer:
            if "where" in answer:
                from netmanager.hypervisor.migration import MigrationError, Where

                raise MigrationError(
                    str(answer.get("reason", answer["error"])),
                    Where(answer["where"]),
                    int(answer.get("code", 0)),
                )
            raise KeeperError(str(answer["error"]), int(answer.get("code", 0)))
        return answer.get("result")

    # typed helpers
    def hello(self) -> dict[str, Any]:
        return dict(self.request("hello"))

    def domains(self) -> list[Domain]:
        return [Domain.of(d) for d in self.request("list")]

    def domain(self, name: str) -> Domain | None:
        try:
            return Domain.of(self.request("get", name=name))
        except KeeperError as exc:
            if exc.code == ERR_NO_DOMAIN:
                return None
            raise

    def define(self, xml: str) -> Domain:
        return Domain.of(self.request("define", xml=xml))

    def start(self, name: str) -> Domain:
        return Domain.of(self.request("start", name=name))

    def destroy(self, name: str) -> Domain:
        return Domain.of(self.request("destroy", name=name))

    def undefine(self, name: str) -> None:
        self.request("undefine", name=name)

    def update(self, name: str, xml: str) -> Domain:
        return Domain.of(self.request("update", name=name, xml=xml))

    def set_metadata(self, name: str, xml: str, key: str, uri: str) -> Domain:
        return Domain.of(self.request("set_metadata", name=name, xml=xml, key=key, uri=uri))

    def agent(self, name: str, command: dict[str, Any], timeout: int = 10) -> Any:
        answer = self.request("agent", name=name, command=json.dumps(command), timeout=timeout)
        return json.loads(answer["answer"]).get("return")

    def destroy_all(self) -> list[str]:
        return list(self.request("destroy_all")["stopped"])

    def migrate(self, request: MigrationRequest) -> MigrationResult:
        """Live-migrate a domain of this keeper's libvirt; raises
        :class:`~netmanager.hypervisor.migration.MigrationError` saying where it is."""
        from netmanager.hypervisor.migration import MigrationResult

        return MigrationResult.from_json(self.request("migrate", request=request.as_json()))

    def job(self, name: str) -> dict[str, int]:
        """The domain's current job (a migration's progress): type, memory_processed,
        data_processed."""
        return {k: int(v) for k, v in self.request("job", name=name).items()}

    def quit(self) -> None:
        with contextlib.suppress(KeeperError):
            self.request("quit")
        self.close()


def running_keeper(directory: Path) -> int | None:
    """The PID of the keeper serving ``directory``, if one answers there."""
    client = KeeperClient(directory, timeout=5.0)
    try:
        return int(client.hello()["pid"])
    except (KeeperError, OSError, ValueError, KeyError):
        return None
    finally:
        client.close()


def stop_keeper(directory: Path, *, destroy_domains: bool = False) -> bool:
    """End the keeper serving ``directory`` (first stopping every domain it runs, with
    ``destroy_domains``: an emulated host going away); whether one was running."""
    client = KeeperClient(directory, timeout=30.0)
    try:
        pid = int(client.hello()["pid"])
    except KeeperError:
        client.close()
        return False
    try:
        if destroy_domains:
            client.destroy_all()
    finally:
        client.quit()
    # it closes its connection before it exits (the embedded driver takes seconds)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if Path(f"/proc/{pid}").exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return True


def ensure_keeper(
    uri: str,
    directory: Path,
    *,
    netns: str = "",
    peers: Sequence[str] = (),
) -> KeeperClient:
    """A client of the keeper of ``uri`` in ``directory``, started (in a session of its
    own, so that it outlives its starter, inside network namespace ``netns`` if given,
    having opened ``peers`` first: the libvirts it may migrate domains to) when none
    answers there.  Raises KeeperError when it cannot start, with its log."""
    client = KeeperClient(directory)
    try:
        hello = client.hello()
    except KeeperError:
        client.close()
    else:
        if hello.get("uri") != uri:
            client.close()
            raise KeeperError(
                f"the libvirt keeper in {directory} serves {hello.get('uri')}, not {uri}"
            )
        return client
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    argv = [sys.executable, "-m", "netmanager.hypervisor.keeper", "--uri", uri]
    argv += ["--dir", str(directory)]
    for peer in peers:
        argv += ["--peer", peer]
    if netns:
        argv = [programs.path("ip"), "netns", "exec", netns, *argv]
    with (directory / LOG).open("ab") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise KeeperError(
                f"the libvirt keeper for {uri} exited with status {code}: {_tail(directory / LOG)}"
            )
        try:
            client.hello()
        except KeeperError:
            client.close()
            time.sleep(0.05)
            continue
        # reaped by this thread whenever it ends (it outlives its starter otherwise)
        threading.Thread(target=process.wait, daemon=True, name="keeper-reaper").start()
        return client
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    raise KeeperError(f"the libvirt keeper for {uri} did not answer within {START_TIMEOUT_S} s")


def _tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


if __name__ == "__main__":
    # run as the imported module, not as __main__: the errors it raises and catches
    # (KeeperError, migration's MigrationError) are then one class each
    from netmanager.hypervisor import keeper as _keeper

    sys.exit(_keeper.main())
