"""One end of an outage measurement (``netmanager migrate --measure``), run inside a VM's
network namespace or a guest: the standard library only, so that it starts at once also
under TCG.  As Themis (seed 004, Part II) measured a live migration: a UDP stream at a
fixed rate from one VM to a fixed peer, whose gaps and losses are the migration's outage,
here with a 100 Hz echo besides (its round trips, and its own gaps).

``python3 -I .../outageworker.py receive DIR [--bind ADDR] [--port P] [--echo-port Q]
[--session HEX] [--timeout S]`` — in the peer's namespace: receives the stream (sequence
number, the sender's send time and its own receive time of every datagram, kept in memory)
and answers every echo request at once, with its own receive time in the reply.

``python3 -I .../outageworker.py send DIR --peer ADDR [--port P] [--echo-port Q]
[--rate BITS_PER_S] [--size BYTES] [--echo-hz HZ] [--duration S] [--session HEX]
[--bind ADDR] [--linger S] [--timeout S]`` — in the measured VM's namespace: the stream
(``--size`` bytes of UDP payload per datagram, ``--rate`` bits per second of payload), an
echo request every 1/``--echo-hz`` s, for ``--duration`` seconds or until stopped; it keeps
the replies (sequence number, send time, the peer's receive time, reply receive time).

Both write ``DIR/ready`` (JSON: pid, clock, ports) once their sockets are bound, stop on
SIGTERM or SIGINT, on ``DIR/stop`` appearing (polled every 20 ms) or after ``--timeout``
seconds (default 3600: a worker nobody stops ends by itself), and write
``DIR/result.json`` atomically (a failure as ``{"error": ...}``, exit status 1).  The
formats are :data:`FORMAT`'s, described in :mod:`netmanager.verify.outage`.

Every time in a file is an integer number of microseconds of the writing side's
CLOCK_MONOTONIC, except ``sent_us`` of the receiver's stream, which each datagram carried
from the sender: the two clocks are one only when both ends run on one kernel (``boot_id``
in ``clock`` tells), so gaps are measured on one side's clock only.

Datagram (network byte order): magic ``NMO1``, type (1 stream, 2 echo request, 3 echo
reply), 3 bytes of zero, session (u32), sequence number (u64), send time (u64 ns of the
sender's CLOCK_MONOTONIC); an echo reply adds the peer's receive time (u64 ns of its
clock); a stream datagram is padded with zeros to ``--size``.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from array import array
from pathlib import Path
from typing import Any

FORMAT = "netmanager-outage/1"
MAGIC = b"NMO1"
STREAM, ECHO_REQUEST, ECHO_REPLY = 1, 2, 3
HEADER = struct.Struct("!4sB3xIQQ")  # magic, type, session, sequence, send time (ns)
PEER_TIME = struct.Struct("!Q")  # an echo reply's peer receive time (ns)
MIN_SIZE = HEADER.size

PORT = 5301  # not iperf3's 5201: an iperf3 server may run in the same VM
POLL_S = 0.02  # how often the stop file is looked for
MAX_BEHIND_S = 0.1  # further behind its schedule, the sender skips instead of bursting
STALL_S = 0.01  # sends further apart than this (and 5 intervals) are a stall of the sender
LINGER_S = 0.2
TIMEOUT_S = 3600.0
RCVBUF = 8 << 20
BATCH = 256  # datagrams read per readiness before the clocks are looked at again


def now_us() -> int:
    return time.monotonic_ns() // 1000


def clock() -> dict[str, Any]:
    """Which CLOCK_MONOTONIC this is (the kernel's boot id: two namespaces of one kernel
    share it) and where it stood against the wall clock."""
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot_id = ""
    return {"boot_id": boot_id, "monotonic_us": now_us(), "realtime": time.time()}


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _socket(family: socket.AddressFamily, bind: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, RCVBUF)
            break
        except OSError:
            continue
    sock.bind((bind, port))
    sock.setblocking(False)
    return sock


class Stopper:
    """Why the worker is to stop: a signal, the stop file, its deadline (checked every
    :data:`POLL_S`)."""

    def __init__(self, directory: Path, timeout_s: float) -> None:
        self.stop_file = directory / "stop"
        self.deadline = time.monotonic() + timeout_s
        self.reason = ""
        self._next = 0.0
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._signal)

    def _signal(self, signum: int, frame: object) -> None:
        self.reason = self.reason or "signal"

    def check(self, now: float) -> bool:
        if not self.reason and now >= self._next:
            self._next = now + POLL_S
            if self.stop_file.exists():
                self.reason = "file"
            elif now >= self.deadline:
                self.reason = "timeout"
        return bool(self.reason)


def _ready(directory: Path, ports: dict[str, int]) -> dict[str, Any]:
    anchor = clock()
    _write(directory / "ready", json.dumps({"pid": os.getpid(), "clock": anchor, **ports}))
    return anchor


def receive(directory: Path, args: argparse.Namespace) -> dict[str, Any]:
    session = int(args.session, 16)
    family = _family(args.bind)
    stream = _socket(family, args.bind, args.port)
    echo = _socket(family, args.bind, args.echo_port)
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ, STREAM)
    selector.register(echo, selectors.EVENT_READ, ECHO_REQUEST)
    seqs, sent, received, sizes = array("q"), array("q"), array("q"), array("l")
    answered = foreign = 0
    buffer = bytearray(65536)
    stopper = Stopper(directory, args.timeout)
    anchor = _ready(
        directory, {"port": stream.getsockname()[1], "echo_port": echo.getsockname()[1]}
    )
    started = now_us()
    while not stopper.check(time.monotonic()):
        for key, _ in selector.select(POLL_S):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            for _ in range(BATCH):
                try:
                    size, sender = sock.recvfrom_into(buffer)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:  # an ICMP error of an earlier reply: nothing to read
                    continue
                at = time.monotonic_ns()
                if size < MIN_SIZE:
                    foreign += 1
                    continue
                magic, kind, sid, seq, sent_ns = HEADER.unpack_from(buffer)
                if magic != MAGIC or sid != session or kind != key.data:
                    foreign += 1
                elif kind == STREAM:
                    seqs.append(seq)
                    sent.append(sent_ns // 1000)
                    received.append(at // 1000)
                    sizes.append(size)
                else:
                    reply = HEADER.pack(MAGIC, ECHO_REPLY, sid, seq, sent_ns) + PEER_TIME.pack(at)
                    try:
                        sock.sendto(reply, sender)
                        answered += 1
                    except OSError:
                        pass
    stopped = now_us()
    for sock in (stream, echo):
        selector.unregister(sock)
        sock.close()
    return {
        "format": FORMAT,
        "role": "receive",
        "clock": anchor,
        "params": {
            "bind": args.bind,
            "port": args.port,
            "echo_port": args.echo_port,
            "session": args.session,
        },
        "started_us": started,
        "stopped_us": stopped,
        "stop": stopper.reason,
        "stream": {
            "seq": seqs.tolist(),
            "sent_us": sent.tolist(),
            "recv_us": received.tolist(),
            "size": sizes.tolist(),
        },
        "echo_answered": answered,
        "foreign": foreign,
    }


def send(directory: Path, args: argparse.Namespace) -> dict[str, Any]:
    session = int(args.session, 16)
    size = max(MIN_SIZE, args.size)
    interval = size * 8 / args.rate
    echo_interval = 1.0 / args.echo_hz if args.echo_hz > 0 else 0.0
    family = _family(args.peer)
    bind = args.bind or ("::" if family == socket.AF_INET6 else "0.0.0.0")
    stream = _socket(family, bind, 0)
    stream.connect((args.peer, args.port))
    echo = _socket(family, bind, 0)
    echo.connect((args.peer, args.echo_port))
    selector = selectors.DefaultSelector()
    selector.register(echo, selectors.EVENT_READ)
    payload = bytearray(size)
    echo_sent, echo_peer, echo_reply = array("q"), array("q"), array("q")
    errors: dict[str, int] = {}
    stalls: list[list[int]] = []
    seq = skipped = 0
    first_send = last_send = 0
    stall_ns = int(max(STALL_S, 5 * interval) * 1e9)
    buffer = bytearray(4096)

    def count_error(exc: OSError) -> None:
        name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        errors[name] = errors.get(name, 0) + 1

    def take_replies() -> None:
        while True:
            try:
                got = echo.recv_into(buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ICMP errors of earlier requests
                count_error(exc)
                continue
            at = time.monotonic_ns() // 1000
            if got < HEADER.size + PEER_TIME.size:
                continue
            magic, kind, sid, number, _ = HEADER.unpack_from(buffer)
            if magic != MAGIC or kind != ECHO_REPLY or sid != session:
                continue
            if 0 <= number < len(echo_sent) and echo_reply[number] < 0:
                echo_reply[number] = at
                echo_peer[number] = PEER_TIME.unpack_from(buffer, HEADER.size)[0] // 1000

    stopper = Stopper(directory, args.timeout)
    anchor = _ready(
        directory, {"port": stream.getsockname()[1], "echo_port": echo.getsockname()[1]}
    )
    started = now_us()
    start = time.monotonic()
    end = start + args.duration if args.duration > 0 else float("inf")
    next_data = next_echo = start
    while True:
        now = time.monotonic()
        if now >= end:
            stopper.reason = stopper.reason or "duration"
        if stopper.check(now):
            break
        if now >= next_data:
            if now - next_data > MAX_BEHIND_S:  # paused (a guest stopped, a busy CPU)
                skipped += int((now - next_data) / interval)
                next_data = now
            for _ in range(BATCH):
                if next_data > now:
                    break
                at = time.monotonic_ns()
                HEADER.pack_into(payload, 0, MAGIC, STREAM, session, seq, at)
                try:
                    stream.send(payload)
                except OSError as exc:
                    count_error(exc)
                if seq == 0:
                    first_send = at
                elif at - last_send > stall_ns:
                    stalls.append([seq, last_send // 1000, at // 1000])
                last_send = at
                seq += 1
                next_data += interval
        if echo_interval and now >= next_echo:
            at = time.monotonic_ns()
            number = len(echo_sent)
            echo_sent.append(at // 1000)
            echo_peer.append(-1)
            echo_reply.append(-1)
            try:
                echo.send(HEADER.pack(MAGIC, ECHO_REQUEST, session, number, at))
            except OSError as exc:
                count_error(exc)
            next_echo += echo_interval
            if next_echo < now:
                next_echo = now + echo_interval
        take_replies()
        wait = min(next_data, next_echo if echo_interval else end, end) - time.monotonic()
        if wait > 0:
            selector.select(min(wait, POLL_S))
    stopped = now_us()
    linger_end = time.monotonic() + args.linger
    while time.monotonic() < linger_end:  # the replies still under way
        selector.select(max(0.0, min(POLL_S, linger_end - time.monotonic())))
        take_replies()
    selector.unregister(echo)
    stream.close()
    echo.close()
    return {
        "format": FORMAT,
        "role": "send",
        "clock": anchor,
        "params": {
            "peer": args.peer,
            "port": args.port,
            "echo_port": args.echo_port,
            "rate_bps": args.rate,
            "size": size,
            "echo_hz": args.echo_hz,
            "duration_s": args.duration,
            "session": args.session,
        },
        "started_us": started,
        "stopped_us": stopped,
        "stop": stopper.reason,
        "sent": seq,
        "first_send_us": first_send // 1000,
        "last_send_us": last_send // 1000,
        "skipped": skipped,
        "errors": errors,
        "stalls": stalls,
        "echo": {
            "sent_us": echo_sent.tolist(),
            "peer_us": [None if t < 0 else t for t in echo_peer],
            "reply_us": [None if t < 0 else t for t in echo_reply],
        },
    }


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="outageworker.py", description=__doc__.split("\n\n")[0])
    roles = top.add_subparsers(dest="role", required=True)
    receiver = roles.add_parser("receive")
    sender = roles.add_parser("send")
    for role in (receiver, sender):
        role.add_argument("directory", type=Path)
        role.add_argument("--port", type=int, default=PORT)
        role.add_argument("--echo-port", type=int, default=PORT + 1)
        role.add_argument("--session", default="0", help="hex: datagrams of others are ignored")
        role.add_argument("--timeout", type=float, default=TIMEOUT_S)
    receiver.add_argument("--bind", default="0.0.0.0")
    sender.add_argument("--peer", required=True)
    sender.add_argument("--bind", default="")
    sender.add_argument("--rate", type=float, default=1e6, help="payload bits per second")
    sender.add_argument("--size", type=int, default=1000, help="UDP payload bytes")
    sender.add_argument("--echo-hz", type=float, default=100.0)
    sender.add_argument("--duration", type=float, default=0.0, help="0: until stopped")
    sender.add_argument("--linger", type=float, default=LINGER_S)
    return top


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    directory: Path = args.directory
    directory.mkdir(parents=True, exist_ok=True)
    for stale in ("ready", "result.json"):
        (directory / stale).unlink(missing_ok=True)
    try:
        if args.role == "send" and not args.rate > 0:
            raise ValueError("--rate must be positive")
        out = send(directory, args) if args.role == "send" else receive(directory, args)
        code = 0
    except Exception as exc:  # reported in the result, which the analysis refuses
        traceback.print_exc()
        out = {"format": FORMAT, "role": args.role, "error": f"{type(exc).__name__}: {exc}"}
        code = 1
    _write(directory / "result.json", json.dumps(out, separators=(",", ":")))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
