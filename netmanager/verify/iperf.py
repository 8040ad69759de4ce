"""Throughput between two VMs with iperf3, measured where the data arrives.

For a direction ``sender -> receiver`` the iperf3 server runs in the sender's namespace and
the client in the receiver's, in reverse mode (``-R``): the server sends, and the client
counts what arrives, interval by interval.  The measured goodput is the bytes of the
intervals after the first ``omit`` seconds (slow start, the queue filling) over their
seconds, so that the receiver's own clock measures it.  The first seconds are skipped
here rather than with iperf3's ``-O``: in reverse mode iperf3 3.12 loses about half a
second of data at the end of ``-O`` in some runs (a 1 Mbit/s TCP flow then reads 17 %
low), and its summary of a UDP receiver counts datagrams from sequence gaps, which
overstates loss around that boundary.

Both processes are ours: the server is started one-off (``-1``) and is killed by its PID
when the run ends, whatever happens; nothing is ever killed by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from netmanager import programs


class IperfError(RuntimeError):
    """iperf3 could not measure (not installed, no connection, bad output)."""


@dataclass(frozen=True)
class Throughput:
    proto: str
    goodput_bps: float
    seconds: float
    mss: int | None = None
    retransmits: int | None = None
    lost_percent: float | None = None
    offered_bps: float | None = None  # what the sender sent, over the whole run
    intervals_bps: tuple[float, ...] = field(default_factory=tuple)


def in_namespace(namespace: str, argv: list[str]) -> list[str]:
    """``argv`` run inside network namespace ``namespace`` of this machine."""
    nsenter = programs.path("nsenter")
    return [nsenter, f"--net=/run/netns/{namespace}", *argv]


def iperf3() -> str:
    found = programs.which("iperf3")
    if found is None:
        raise IperfError(programs.not_installed("iperf3"))
    return found


def wait_listening(server: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Until the server says it listens (read from the pipe's descriptor: a buffered
    reader would hold lines the selector no longer sees)."""
    assert server.stdout is not None
    fd = server.stdout.fileno()
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    seen = b""
    try:
        while time.monotonic() < deadline:
            if selector.select(max(0.0, deadline - time.monotonic())):
                chunk = os.read(fd, 4096)
                seen += chunk
                if b"listening" in seen.lower():
                    return
                if not chunk:
                    break
        if server.poll() is not None:
            raise IperfError(f"iperf3 server exited at start: {seen.decode(errors='replace')}")
        raise IperfError("iperf3 server did not start listening in time")
    finally:
        selector.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def server_argv(binary: str, sender_ip: str, port: int) -> list[str]:
    """The one-off server, in the sender's namespace."""
    return [binary, "-s", "-1", "-B", sender_ip, "-p", str(port), "--forceflush"]


def client_argv(
    binary: str,
    sender_ip: str,
    receiver_ip: str,
    *,
    port: int,
    proto: str,
    seconds: int,
    udp_rate_bps: float | None = None,
    udp_length: int | None = None,
) -> list[str]:
    """The client in reverse mode (``-R``: the server sends), in the receiver's namespace,
    its report as JSON."""
    argv = [
        binary,
        "-c",
        sender_ip,
        "-B",
        receiver_ip,
        "-p",
        str(port),
        "-R",
        "-J",
        "-t",
        str(seconds),
    ]
    if proto == "udp":
        argv += ["-u", "-b", str(int(udp_rate_bps or 1_000_000))]
        if udp_length:
            argv += ["-l", str(udp_length)]
    return argv


def measure(
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
    """Goodput from ``sender`` to ``receiver`` (see the module docstring)."""
    binary = iperf3()
    server = subprocess.Popen(
        in_namespace(sender_ns, server_argv(binary, sender_ip, port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(server, 5.0)
        argv = client_argv(
            binary,
            sender_ip,
            receiver_ip,
            port=port,
            proto=proto,
            seconds=seconds + omit,
            udp_rate_bps=udp_rate_bps,
            udp_length=udp_length,
        )
        limit = timeout_s if timeout_s is not None else seconds + omit + 15
        try:
            client = subprocess.run(
                in_namespace(receiver_ns, argv),
                capture_output=True,
                text=True,
                timeout=limit,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise IperfError(f"iperf3 did not finish within {limit:.0f}s") from exc
        return parse(client.stdout, proto, skip=omit)
    finally:
        stop(server)


def parse(text: str, proto: str, skip: int = 0) -> Throughput:
    """The receiver's goodput out of iperf3's JSON (client in reverse mode), without the
    first ``skip`` intervals."""
    try:
        document: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IperfError(f"iperf3 printed no JSON: {text[:200]!r}") from exc
    if document.get("error"):
        raise IperfError(f"iperf3: {document['error']}")
    intervals = [
        i["sum"] for i in document.get("intervals", []) if not i.get("sum", {}).get("omitted")
    ][skip:]
    total_bytes = sum(float(i.get("bytes", 0)) for i in intervals)
    total_seconds = sum(float(i.get("seconds", 0)) for i in intervals)
    if total_seconds <= 0:
        raise IperfError("iperf3 measured no interval")
    end = document.get("end", {})
    start = document.get("start", {})
    mss = start.get("tcp_mss_default") if proto == "tcp" else None
    retransmits = end.get("sum_sent", {}).get("retransmits") if proto == "tcp" else None
    lost = end.get("sum", {}).get("lost_percent") if proto == "udp" else None
    sent = end.get("sum_sent", {})
    offered = (
        float(sent["bytes"]) * 8 / float(sent["seconds"])
        if sent.get("bytes") and sent.get("seconds")
        else None
    )
    return Throughput(
        proto=proto,
        goodput_bps=total_bytes * 8 / total_seconds,
        seconds=total_seconds,
        mss=int(mss) if mss else None,
        retransmits=int(retransmits) if retransmits is not None else None,
        lost_percent=float(lost) if lost is not None else None,
        offered_bps=offered,
        intervals_bps=tuple(float(i.get("bits_per_second", 0)) for i in intervals),
    )
