"""The control daemon inside a guest (standard library only).

Started by the guest's ``/init``, chrooted into the host's root mounted read-only over
9p.  It reads newline-delimited JSON requests from the virtio-serial port ``nm.ctl`` and
answers each with one JSON line carrying the same ``id``:

- ``{"id", "argv", "netns"?, "stdin"?, "timeout"?, "env"?}`` runs a command and answers
  ``{"id", "rc", "stdout", "stderr"}`` (rc -9 and ``"timeout": true`` when it ran out of
  time);
- ``{"id", "op": "hello"}`` answers ``{"id", "hello": "guestd", "kernel", "uptime"}``;
- ``{"id", "op": "spawn", "argv", "netns"?, "log"?, "env"?}`` starts a long-running
  process (output to ``log``, by default ``/tmp/spawn-PID.log``) and answers
  ``{"id", "pid"}``;
- ``{"id", "op": "kill", "pid", "signal"?}`` and ``{"id", "op": "poll", "pid"}`` (``rc``
  is null while it runs) act on spawned processes only;
- ``{"id", "op": "write", "path", "data", "mode"?}`` writes a text file (default mode
  0600; parent directories are made) and answers ``{"id", "path"}``;
- ``{"id", "op": "read", "path"}`` answers ``{"id", "path", "data"}`` with a text file's
  content (at most READ_LIMIT bytes), or ``{"id", "path", "missing": true}``: a file
  read without starting a process (a ``cat`` costs about a second under TCG);
- ``{"id", "op": "poweroff"}`` answers, then powers the guest off.

Requests run concurrently; a request that cannot be parsed is answered with ``error``.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PORT_NAME = "nm.ctl"
READ_LIMIT = 64 << 20  # bytes of a file ``read`` answers with
CLONE_NEWNET = 0x40000000
LINUX_REBOOT_CMD_POWER_OFF = 0x4321FEDC

_libc = ctypes.CDLL(None, use_errno=True)


def find_port(name: str = PORT_NAME) -> str:
    """The device of the virtio-serial port called ``name``."""
    link = Path("/dev/virtio-ports") / name
    if link.exists():
        return str(link)
    for port in sorted(Path("/sys/class/virtio-ports").glob("*")):
        try:
            if (port / "name").read_text().strip() == name:
                return f"/dev/{port.name}"
        except OSError:
            continue
    raise FileNotFoundError(f"no virtio-serial port named {name}")


def _enter_netns(fd: int) -> Callable[[], None]:
    def enter() -> None:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")

    return enter


def read(path: Path) -> dict[str, Any]:
    """The answer to a ``read``: the text of ``path``, or that it is missing."""
    try:
        with path.open("rb") as f:
            data = f.read(READ_LIMIT + 1)
    except FileNotFoundError:
        return {"path": str(path), "missing": True}
    if len(data) > READ_LIMIT:
        raise ValueError(f"{path} is larger than {READ_LIMIT} bytes")
    return {"path": str(path), "data": data.decode("utf-8", "replace")}


class Daemon:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.write_lock = threading.Lock()
        self.spawned: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = threading.Event()

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        with self.write_lock:
            view = memoryview(data)
            while view:
                try:
                    written = os.write(self.fd, view)
                except BlockingIOError:
                    select.select([], [self.fd], [], 1.0)
                    continue
                view = view[written:]

    def serve(self) -> None:
        buffer = b""
        while not self.stopping.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:  # no host connected: wait for one
                time.sleep(0.05)
                continue
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    threading.Thread(target=self.handle, args=(line,), daemon=True).start()

    def handle(self, line: bytes) -> None:
        request_id: object = None
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
            request_id = request.get("id")
            answer = self.answer(request)
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        answer["id"] = request_id
        self.send(answer)
        if answer.get("poweroff"):
            poweroff()

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op", "run")
        if op == "hello":
            return {
                "hello": "guestd",
                "kernel": os.uname().release,
                "uptime": float(Path("/proc/uptime").read_text().split()[0]),
                "pid": os.getpid(),
            }
        if op == "run":
            return self.run(request)
        if op == "spawn":
            return self.spawn(request)
        if op == "kill":
            process = self.spawned[int(request["pid"])]
            process.send_signal(int(request.get("signal", signal.SIGTERM)))
            return {"pid": process.pid}
        if op == "poll":
            process = self.spawned[int(request["pid"])]
            return {"pid": process.pid, "rc": process.poll()}
        if op == "write":
            path = Path(str(request["path"]))
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(str(request["data"]))
            path.chmod(int(request.get("mode", 0o600)))
            return {"path": str(path)}
        if op == "read":
            return read(Path(str(request["path"])))
        if op == "poweroff":
            return {"poweroff": True}
        raise ValueError(f"unknown op {op!r}")

    def _options(self, request: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        argv = request.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError("argv must be a non-empty list of strings")
        options: dict[str, Any] = {"close_fds": True}
        env = request.get("env")
        if env is not None:
            options["env"] = {**os.environ, **{str(k): str(v) for k, v in env.items()}}
        if request.get("cwd"):
            options["cwd"] = str(request["cwd"])
        return argv, options

    def _netns_fd(self, request: dict[str, Any]) -> int | None:
        name = request.get("netns")
        if not name:
            return None
        if "/" in str(name):
            raise ValueError("a namespace name has no '/'")
        return os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        argv, options = self._options(request)
        netns = self._netns_fd(request)
        if netns is not None:
            options["preexec_fn"] = _enter_netns(netns)
        stdin = request.get("stdin")
        timeout = request.get("timeout")
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                **options,
            )
        except OSError as exc:
            return {"rc": 127, "stdout": "", "stderr": f"{argv[0]}: {exc.strerror}\n"}
        finally:
            if netns is not None:
                os.close(netns)
        timed_out = False
        try:
            out, err = process.communicate(
                stdin.encode() if isinstance(stdin, str) else None,
                timeout=float(timeout) if timeout else None,
            )
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            timed_out = True
        answer: dict[str, Any] = {
            "rc": process.returncode,
            "stdout": out.decode(errors="replace"),
            "stderr": err.decode(errors="replace"),
        }
        if timed_out:
            answer["timeout"] = True
        return answer

    def spawn(self, request: dict[str, Any]) -> dict[str, Any]:
        argv, options = self._options(request)
        netns = self._netns_fd(request)
        if netns is not None:
            options["preexec_fn"] = _enter_netns(netns)
        log_path = request.get("log") or f"/tmp/spawn-{time.monotonic_ns()}.log"
        try:
            with open(log_path, "ab") as log:
                process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    **options,
                )
        finally:
            if netns is not None:
                os.close(netns)
        self.spawned[process.pid] = process
        return {"pid": process.pid, "log": log_path}


def poweroff() -> None:
    os.sync()
    _libc.reboot(LINUX_REBOOT_CMD_POWER_OFF)  # glibc adds the magic numbers


def main() -> int:
    try:
        path = find_port()
    except FileNotFoundError as exc:
        print(f"guestd: {exc}", file=sys.stderr)
        return 1
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    print(f"guestd: serving on {path}", file=sys.stderr, flush=True)
    Daemon(fd).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
