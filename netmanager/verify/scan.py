"""Probes sent from inside VM namespaces, and a capture in every VM namespace, in-process.

One thread and one selector do all of it: a socket is made inside a namespace (the thread
enters it with setns(2), creates the socket and comes back; the socket stays bound to
that namespace), so a scan of a thousand probes costs no process at all.

* ICMP echo through a raw socket per (namespace, source address): replies, ICMP errors
  (time exceeded for traceroute, unreachable) and kernel receive timestamps for RTTs;
* TCP: a non-blocking connect; SYN-ACK or RST is an answer, silence is not;
* UDP: a connected datagram; a reply or ICMP port-unreachable is an answer;
* ARP: requests on a VM interface through a packet socket; every MAC that answers;
* capture: a packet socket in each VM namespace records which probes arrived there (so a
  probe delivered but not answered — a one-way leak — is seen) and the source MAC of
  every frame that arrived (a frame from another topology's VM is a leak by itself).

Every probe names its namespace and its destination; the scanner refuses any namespace
or address outside the sets it was given (the topology's own).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import random
import selectors
import socket
import struct
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from netmanager.kernel import netns

Address = ipaddress.IPv4Address

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
PACKET_HOST = 0
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23  # Linux 4.20: a packet socket not handed what its host sends
CAPTURE_SNAP = 128  # bytes of a captured frame read: headers, token and key
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
BROADCAST = b"\xff" * 6
ICMP_ECHO_REPLY, ICMP_UNREACHABLE, ICMP_ECHO, ICMP_TIME_EXCEEDED = 0, 3, 8, 11
SOURCE_PORTS = (20000, 32000)  # below the kernel's ephemeral range


@dataclass(frozen=True)
class IpProbe:
    """One packet (and a retry) from ``namespace`` with source ``src`` to ``dst``."""

    key: int
    namespace: str
    src: Address
    dst: Address
    proto: str  # icmp, tcp or udp
    port: int = 0
    ttl: int = 64
    at: float = 0.0  # seconds after the start of the scan
    retry: bool = True


@dataclass
class IpResult:
    answer: str = ""  # echo reply, syn-ack, reset, port unreachable, udp reply
    error: str = ""  # no route, host unreachable, not run, ...
    responder: Address | None = None
    time_exceeded: bool = False
    rtt_ms: float | None = None
    delivered: set[str] = field(default_factory=set)  # namespaces it arrived in, for them

    @property
    def answered(self) -> bool:
        return bool(self.answer)

    def summary(self) -> str:
        parts = [self.answer or self.error or "no answer"]
        if self.delivered:
            parts.append("delivered to " + ", ".join(sorted(self.delivered)))
        return "; ".join(parts)


@dataclass(frozen=True)
class ArpProbe:
    key: int
    namespace: str
    ifname: str
    mac: str
    src: Address
    target: Address


@dataclass
class ScanResult:
    ip: dict[int, IpResult]
    arp: dict[int, set[str]]  # probe key -> MACs that answered
    frames: dict[str, Counter[str]]  # namespace -> source MAC -> frames that arrived
    seconds: float = 0.0


class ScopeError(ValueError):
    """A probe outside the namespaces or addresses the scanner may use."""


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def _mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


@dataclass
class _Inflight:
    kind: str  # icmp, tcp, udp, arp
    key: int
    deadline: float
    retry_at: float | None = None
    sock: socket.socket | None = None
    again: socket.socket | None = None  # a TCP probe's second connection (the retry)


class Scanner:
    """Runs probes inside the given namespaces, towards the given addresses only."""

    def __init__(
        self,
        *,
        namespaces: Iterable[str],
        targets: Iterable[Address],
        capture: Iterable[str] = (),
        timeout_s: float = 2.0,
        in_flight: int = 256,
        token: bytes | None = None,
        arp_timeout_s: float | None = None,
        arp_rate: float | None = None,
        root: Iterable[str] = (),
    ) -> None:
        self.namespaces = frozenset(namespaces)
        # namespaces that are the scanner's own (a libvirt domain's VM is its guest's
        # root namespace: the scanner runs there, and enters nothing)
        self.root = frozenset(root)
        self.targets = frozenset(targets)
        self.capture_namespaces = sorted(set(capture))
        self.timeout_s = timeout_s
        # an ARP request is answered by the neighbour's kernel at once (1 s, unless
        # guests on a busy machine answer it); asked again every 30 % of that (each
        # time a little earlier or later: the requests of every VM go out at once, and
        # a guest's NIC ring drops what a burst of broadcasts overflows) until answered
        self.arp_timeout_s = min(timeout_s, 1.0) if arp_timeout_s is None else arp_timeout_s
        self._jitter = random.Random(int.from_bytes(os.urandom(8)))
        # ARP requests sent a second at most (None: no limit): each is a broadcast that
        # every VM of its network receives, and a guest under TCG whose ring overflows
        # drops the answers to other probes too
        self.arp_rate = arp_rate
        self.in_flight = max(1, in_flight)
        # the 8 bytes every probe's payload starts with: scanners that capture each
        # other's probes (a distributed scan, one per kernel) share one
        self.token = token if token is not None else os.urandom(8)
        self._fds: dict[str, int] = {}
        self._home = -1
        self._selector = selectors.DefaultSelector()
        self._icmp_socks: dict[tuple[str, Address], tuple[socket.socket, int]] = {}
        self._icmp_seq: dict[tuple[str, Address], int] = {}
        self._icmp_map: dict[tuple[int, int], tuple[int, float]] = {}  # (id, seq) -> key, sent
        self._arp_socks: dict[tuple[str, str], socket.socket] = {}
        self._arp_map: dict[tuple[str, str, Address], list[int]] = {}
        self._syn_map: dict[tuple[Address, int, Address, int], int] = {}
        self._next_id = int.from_bytes(os.urandom(2), "big")
        self._next_port = SOURCE_PORTS[0] + int.from_bytes(os.urandom(2), "big") % 1000
        self._ip: dict[int, IpResult] = {}
        self._arp: dict[int, set[str]] = {}
        self._frames: dict[str, Counter[bytes]] = {}  # namespace -> source MAC -> frames
        self._snap = bytearray(CAPTURE_SNAP)
        self._inflight: dict[int, _Inflight] = {}
        self._by_fd: dict[int, socket.socket] = {}
        self._probes_by_key: dict[int, IpProbe] = {}
        self._probes_arp: dict[int, ArpProbe] = {}
        # probes of another scanner (same token) that arrived in a captured namespace
        self.foreign_delivered: dict[int, set[str]] = {}
        # TCP SYNs no probe of this scanner sent: (src, sport, dst, dport, namespace)
        self.foreign_syns: set[tuple[Address, int, Address, int, str]] = set()

    # ------------------------------------------------------------------ namespaces

    def _fd(self, namespace: str) -> int:
        if namespace not in self._fds:
            if namespace in self.root:
                self._fds[namespace] = os.dup(self._home)
            else:
                self._fds[namespace] = netns.open_fd(namespace)
        return self._fds[namespace]

    @contextlib.contextmanager
    def _inside(self, namespace: str) -> Iterator[None]:
        with netns.inside(self._fd(namespace), self._home):
            yield

    def _socket_in(self, namespace: str, family: int, kind: int, proto: int) -> socket.socket:
        with self._inside(namespace):
            sock = socket.socket(family, kind | socket.SOCK_CLOEXEC, proto)
        sock.setblocking(False)
        return sock

    def close(self) -> None:
        for sock in list(self._by_fd.values()):
            self._unregister(sock)
            sock.close()
        for sock, _ in self._icmp_socks.values():
            sock.close()
        for sock in self._arp_socks.values():
            sock.close()
        for inflight in self._inflight.values():
            for owned in (inflight.sock, inflight.again):
                if owned is not None:
                    owned.close()
        self._inflight.clear()
        self._selector.close()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self._home >= 0:
            os.close(self._home)
            self._home = -1

    # ---------------------------------------------------------------------- the run

    def run(
        self,
        ip: Iterable[IpProbe] = (),
        arp: Iterable[ArpProbe] = (),
        *,
        progress: Callable[[int, int], None] | None = None,
        budget_s: float | None = None,
        ready: Callable[[], None] | None = None,
        until: Callable[[], bool] | None = None,
    ) -> ScanResult:
        """Send every probe, wait for answers up to the timeout, return what happened.
        ``budget_s`` bounds the whole run: probes not sent by then are marked 'not run'.

        A scan spread over several kernels (one scanner in each) is run in two phases:
        ``ready()`` is called once the captures are open and returns when every scanner
        is ready (nothing is sent before); after its own probes this scanner keeps
        capturing until ``until()`` is true (the others may still be sending)."""
        ip_probes = sorted(ip, key=lambda p: (p.at, p.key))
        arp_probes = list(arp)
        for probe in ip_probes:
            self._guard(probe.namespace, probe.dst)
        for a in arp_probes:
            self._guard(a.namespace, a.target)
        self._home = netns.current_fd()
        start = time.monotonic()
        try:
            for namespace in self.capture_namespaces:
                self._open_capture(namespace)
            if ready is not None:
                ready()
                start = time.monotonic()
            self._loop(ip_probes, arp_probes, start, progress, budget_s)
            if until is not None:
                self._linger(until)
        finally:
            self.close()
        frames = {
            namespace: Counter({_mac_text(mac): n for mac, n in counter.items()})
            for namespace, counter in self._frames.items()
        }
        return ScanResult(self._ip, self._arp, frames, time.monotonic() - start)

    def _linger(self, until: Callable[[], bool]) -> None:
        """Keep the captures (and late answers) going until ``until()``."""
        while not until():
            self._dispatch(0.02)
        end = time.monotonic() + 0.1
        while time.monotonic() < end:  # drain
            self._dispatch(0.02)

    def syn_map(self) -> dict[tuple[Address, int, Address, int], int]:
        """(src, sport, dst, dport) -> key of the TCP probes sent (to match the SYNs
        another scanner captured)."""
        return dict(self._syn_map)

    def _guard(self, namespace: str, target: Address) -> None:
        if namespace not in self.namespaces:
            raise ScopeError(f"namespace {namespace} is not one of the topology's own")
        if target not in self.targets:
            raise ScopeError(f"{target} is not an address of the topology")

    def _loop(
        self,
        ip_probes: list[IpProbe],
        arp_probes: list[ArpProbe],
        start: float,
        progress: Callable[[int, int], None] | None,
        budget_s: float | None,
    ) -> None:
        pending_ip = deque(ip_probes)
        pending_arp = deque(arp_probes)
        total = len(ip_probes) + len(arp_probes)
        last_report = 0.0
        stop_sending = start + budget_s if budget_s is not None else None
        quiet_until = 0.0
        arp_sent = 0
        while pending_ip or pending_arp or self._inflight or time.monotonic() < quiet_until:
            now = time.monotonic()
            if stop_sending is not None and now > stop_sending:
                for probe in pending_ip:
                    self._ip[probe.key] = IpResult(error="not run (time budget)")
                for a in pending_arp:
                    self._arp[a.key] = set()
                pending_ip.clear()
                pending_arp.clear()
            arp_allowed = (
                len(pending_arp)
                if self.arp_rate is None
                else int((now - start) * self.arp_rate) + 1 - arp_sent
            )
            while pending_arp and arp_allowed > 0 and len(self._inflight) < self.in_flight:
                self._send_arp(pending_arp.popleft(), now)
                arp_sent += 1
                arp_allowed -= 1
            while (
                pending_ip
                and len(self._inflight) < self.in_flight
                and pending_ip[0].at <= now - start
            ):
                self._send_ip(pending_ip.popleft(), now)
            due = [
                key
                for key, inflight in self._inflight.items()
                if now >= inflight.deadline
                or (inflight.retry_at is not None and now >= inflight.retry_at)
            ]
            if due:
                # answers already there are answers, not losses: this loop can be late
                # (a guest's CPU taken away, its captures read), the kernel was not
                self._dispatch(0, captures=False)
            for key in due:
                inflight = self._inflight.get(key)
                if inflight is None:
                    continue
                if inflight.retry_at is not None and now >= inflight.retry_at:
                    inflight.retry_at = None
                    self._retry(key, inflight)
                if now >= inflight.deadline:
                    self._expire(key, inflight)
            wake = [0.05]
            if pending_arp and self.arp_rate is not None:
                wake.append(max(0.0, start + arp_sent / self.arp_rate - now))
            if pending_ip:
                wake.append(max(0.0, pending_ip[0].at - (now - start)))
            if self._inflight:
                wake.append(max(0.0, min(i.deadline for i in self._inflight.values()) - now))
            self._dispatch(min(wake))
            if not self._inflight and not pending_ip and not pending_arp and not quiet_until:
                quiet_until = time.monotonic() + 0.1  # let the captures drain
            if progress is not None and time.monotonic() - last_report > 0.1:
                last_report = time.monotonic()
                left = len(pending_ip) + len(pending_arp) + len(self._inflight)
                progress(total - left, total)
        if progress is not None:
            progress(total, total)

    # -------------------------------------------------------------------- capture

    def _open_capture(self, namespace: str) -> None:
        sock = self._socket_in(
            namespace, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)
        )
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20)
        with contextlib.suppress(OSError):
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        self._frames[namespace] = Counter()
        self._register(sock, lambda: self._on_capture(namespace, sock), capture=True)

    def _register(
        self,
        sock: socket.socket,
        handler: Callable[[], object],
        events: int = 1,
        *,
        capture: bool = False,
    ) -> None:
        self._by_fd[sock.fileno()] = sock
        self._selector.register(sock, events, (handler, capture))

    def _dispatch(self, timeout: float, *, captures: bool = True) -> None:
        """Wait up to ``timeout`` for sockets, and run the handler of each that is ready
        and still registered: a handler before it in the same batch may have closed it
        (a TCP probe's answer on one connection ends its other one).

        The probes' own sockets first, the captures after (``captures=False``: not at
        all): in a guest under TCG, reading what a burst brought to every VM's capture
        took this loop up to ten seconds, and answers that came meanwhile must not wait
        behind it."""
        ready = self._selector.select(timeout)
        for capture_round in (False, True) if captures else (False,):
            for selected, _ in ready:
                handler, capture = selected.data
                if capture != capture_round:
                    continue
                try:
                    current = self._selector.get_key(selected.fileobj) is selected
                except (KeyError, ValueError):  # unregistered; closed (fileno -1)
                    current = False
                if current:
                    handler()

    def _unregister(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)
        self._by_fd.pop(sock.fileno(), None)

    def _on_capture(self, namespace: str, sock: socket.socket) -> None:
        """Read what arrived, a few frames at a time (the loop comes back), only their
        first bytes: under TCG, each frame read costs this process more than the
        kernel's delivering it."""
        buffer = self._snap
        for _ in range(64):
            try:
                size, address = sock.recvfrom_into(buffer, CAPTURE_SNAP)
            except (BlockingIOError, InterruptedError):
                return
            ifname, _, pkttype = address[0], address[1], address[2]
            if pkttype == PACKET_OUTGOING or ifname == "lo" or size < 14:
                continue
            data = bytes(buffer[:size])
            self._frames[namespace][data[6:12]] += 1
            if pkttype != PACKET_HOST or struct.unpack("!H", data[12:14])[0] != ETH_P_IP:
                continue
            key = self._probe_in_frame(data[14:], namespace)
            if key is None:
                continue
            if key in self._ip:
                self._ip[key].delivered.add(namespace)
            else:
                self.foreign_delivered.setdefault(key, set()).add(namespace)

    def _probe_in_frame(self, packet: bytes, namespace: str = "") -> int | None:
        if len(packet) < 20:
            return None
        ihl = (packet[0] & 0x0F) * 4
        proto = packet[9]
        src, dst = Address(packet[12:16]), Address(packet[16:20])
        body = packet[ihl:]
        echo = proto == socket.IPPROTO_ICMP and body[:1] == bytes([ICMP_ECHO])
        if (echo or proto == socket.IPPROTO_UDP) and len(body) >= 20:
            # ICMP and UDP headers are both 8 bytes; our payload starts with the token
            if body[8:16] == self.token:
                return int(struct.unpack("!I", body[16:20])[0])
        elif proto == socket.IPPROTO_TCP and len(body) >= 14:
            sport, dport = struct.unpack("!HH", body[0:4])
            flags = body[13]
            if flags & 0x02 and not flags & 0x10:
                key = self._syn_map.get((src, sport, dst, dport))
                if key is None:
                    self.foreign_syns.add((src, sport, dst, dport, namespace))
                return key
        return None

    # ------------------------------------------------------------------- sending

    def _source_port(self) -> int:
        port = self._next_port
        self._next_port += 1
        if self._next_port >= SOURCE_PORTS[1]:
            self._next_port = SOURCE_PORTS[0]
        return port

    def _payload(self, key: int) -> bytes:
        return self.token + struct.pack("!I", key) + b"netmanager verify"

    def _send_ip(self, probe: IpProbe, now: float) -> None:
        result = IpResult()
        self._ip[probe.key] = result
        retry = now + self.timeout_s / 2 if probe.retry else None
        try:
            if probe.proto == "icmp":
                self._send_echo(probe)
                self._inflight[probe.key] = _Inflight(
                    "icmp", probe.key, now + self.timeout_s, retry
                )
                self._probes_by_key[probe.key] = probe
            elif probe.proto == "tcp":
                self._send_syn(probe, now)
            elif probe.proto == "udp":
                self._send_udp(probe, now, retry)
            else:
                raise ValueError(f"unknown protocol {probe.proto}")
        except OSError as exc:
            result.error = _error_text(exc)

    def _echo_socket(self, namespace: str, src: Address) -> tuple[socket.socket, int]:
        found = self._icmp_socks.get((namespace, src))
        if found is None:
            sock = self._socket_in(namespace, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 1 << 20)
            sock.bind((str(src), 0))
            self._next_id = (self._next_id + 1) & 0xFFFF
            found = (sock, self._next_id)
            self._icmp_socks[(namespace, src)] = found
            self._icmp_seq[(namespace, src)] = 0
            self._register(sock, lambda: self._on_icmp(sock))
        return found

    def _send_echo(self, probe: IpProbe) -> None:
        sock, ident = self._echo_socket(probe.namespace, probe.src)
        seq = self._icmp_seq[(probe.namespace, probe.src)]
        self._icmp_seq[(probe.namespace, probe.src)] = (seq + 1) & 0xFFFF
        payload = self._payload(probe.key)
        header = struct.pack("!BBHHH", ICMP_ECHO, 0, 0, ident, seq)
        packet = struct.pack("!BBHHH", ICMP_ECHO, 0, _checksum(header + payload), ident, seq)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, probe.ttl)
        sent = time.time()
        self._icmp_map[(ident, seq)] = (probe.key, sent)
        sock.sendto(packet + payload, (str(probe.dst), 0))

    def _send_syn(self, probe: IpProbe, now: float) -> None:
        sock = self._connect(probe)
        retry = now + self.timeout_s / 2 if probe.retry else None
        self._inflight[probe.key] = _Inflight("tcp", probe.key, now + self.timeout_s, retry, sock)
        self._probes_by_key[probe.key] = probe

    def _connect(self, probe: IpProbe) -> socket.socket:
        """A connection from a source port of ours, whose SYN the kernel sends (and
        resends); its reset or SYN-ACK ends the probe (:meth:`_on_tcp`)."""
        sock = self._socket_in(probe.namespace, socket.AF_INET, socket.SOCK_STREAM, 0)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, probe.ttl)
            port = self._bind(sock, probe.src)
            self._syn_map[(probe.src, port, probe.dst, probe.port)] = probe.key
            code = sock.connect_ex((str(probe.dst), probe.port))
        except OSError:
            sock.close()
            raise
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            raise OSError(code, os.strerror(code))
        key = probe.key
        self._register(sock, lambda: self._on_tcp(key, sock), selectors.EVENT_WRITE)
        return sock

    def _bind(self, sock: socket.socket, src: Address) -> int:
        for _ in range(16):
            port = self._source_port()
            try:
                sock.bind((str(src), port))
                return port
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
        sock.bind((str(src), 0))
        return int(sock.getsockname()[1])

    def _send_udp(self, probe: IpProbe, now: float, retry: float | None) -> None:
        sock = self._socket_in(probe.namespace, socket.AF_INET, socket.SOCK_DGRAM, 0)
        try:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, probe.ttl)
            self._bind(sock, probe.src)
            sock.connect((str(probe.dst), probe.port))
            sock.send(self._payload(probe.key))
        except OSError:
            sock.close()
            raise
        self._inflight[probe.key] = _Inflight("udp", probe.key, now + self.timeout_s, retry, sock)
        key = probe.key
        self._register(sock, lambda: self._on_udp(key, sock))

    def _send_arp(self, probe: ArpProbe, now: float) -> None:
        self._arp[probe.key] = set()
        sock = self._arp_socks.get((probe.namespace, probe.ifname))
        if sock is None:
            # protocol 0: nothing is received until bound to the one interface (a socket
            # opened for ARP takes every interface's ARP until its bind, and an answer
            # on the VM's other network, read as this one's, was a leak that was none)
            sock = self._socket_in(probe.namespace, socket.AF_PACKET, socket.SOCK_RAW, 0)
            sock.bind((probe.ifname, ETH_P_ARP))
            self._arp_socks[(probe.namespace, probe.ifname)] = sock
            namespace, ifname, arp_sock = probe.namespace, probe.ifname, sock
            self._register(sock, lambda: self._on_arp(namespace, ifname, arp_sock))
        self._arp_map.setdefault((probe.namespace, probe.ifname, probe.target), []).append(
            probe.key
        )
        self._arp_request(sock, probe)
        self._inflight[probe.key] = _Inflight(
            "arp", probe.key, now + self.arp_timeout_s, now + self._arp_interval()
        )
        self._probes_arp[probe.key] = probe

    @staticmethod
    def _arp_request(sock: socket.socket, probe: ArpProbe) -> None:
        mac = _mac_bytes(probe.mac)
        frame = (
            BROADCAST
            + mac
            + struct.pack("!HHHBBH", ETH_P_ARP, 1, ETH_P_IP, 6, 4, 1)
            + mac
            + probe.src.packed
            + b"\0" * 6
            + probe.target.packed
        )
        with contextlib.suppress(OSError):
            sock.send(frame.ljust(60, b"\0"))

    def _retry(self, key: int, inflight: _Inflight) -> None:
        result = self._ip.get(key)
        with contextlib.suppress(OSError):
            if inflight.kind == "icmp" and result is not None and not result.answered:
                self._send_echo(self._probes_by_key[key])
            elif inflight.kind == "udp" and inflight.sock is not None:
                inflight.sock.send(self._payload(key))
            elif inflight.kind == "tcp" and result is not None and not result.answered:
                # a second connection from another port: the first one's SYN, or the
                # answer to it, can be lost on a busy path (the kernel resends a SYN only
                # after a second, then three)
                inflight.again = self._connect(self._probes_by_key[key])
            elif inflight.kind == "arp" and not self._arp.get(key):
                probe = self._probes_arp[key]
                self._arp_request(self._arp_socks[(probe.namespace, probe.ifname)], probe)
                again = time.monotonic() + self._arp_interval()
                if again < inflight.deadline - 0.2 * self.arp_timeout_s:
                    inflight.retry_at = again

    def _arp_interval(self) -> float:
        return 0.3 * self.arp_timeout_s * self._jitter.uniform(0.7, 1.3)

    def _expire(self, key: int, inflight: _Inflight) -> None:
        del self._inflight[key]
        self._close(inflight)
        result = self._ip.get(key)
        if result is not None and not result.answered and not result.error:
            result.error = "no answer"

    def _finish(self, key: int) -> int:
        inflight = self._inflight.pop(key, None)
        if inflight is None:
            return 0
        self._close(inflight)
        return 1

    def _close(self, inflight: _Inflight) -> None:
        for sock in (inflight.sock, inflight.again):
            if sock is not None:
                self._unregister(sock)
                sock.close()

    # ------------------------------------------------------------------ receiving

    def _on_icmp(self, sock: socket.socket) -> int:
        finished = 0
        for _ in range(256):
            try:
                data, ancdata, _, _ = sock.recvmsg(65535, socket.CMSG_SPACE(16))
            except (BlockingIOError, InterruptedError):
                break
            received = time.time()
            for level, ctype, cdata in ancdata:
                if level == socket.SOL_SOCKET and ctype == SO_TIMESTAMPNS and len(cdata) >= 16:
                    sec, nsec = struct.unpack("qq", cdata[:16])
                    received = sec + nsec / 1e9
            finished += self._icmp_packet(data, received)
        return finished

    def _icmp_packet(self, packet: bytes, received: float) -> int:
        if len(packet) < 28:
            return 0
        ihl = (packet[0] & 0x0F) * 4
        responder = Address(packet[12:16])
        icmp = packet[ihl:]
        kind = icmp[0]
        if kind == ICMP_ECHO_REPLY:
            ident, seq = struct.unpack("!HH", icmp[4:8])
            found = self._icmp_map.get((ident, seq))
            if found is None or icmp[8:16] != self.token:
                return 0
            key, sent = found
            result = self._ip[key]
            if result.answered:
                return 0
            result.answer = "echo reply"
            result.responder = responder
            result.rtt_ms = max(0.0, (received - sent) * 1000)
            return self._finish(key)
        if kind in (ICMP_TIME_EXCEEDED, ICMP_UNREACHABLE) and len(icmp) >= 8 + 28:
            inner = icmp[8:]
            inner_ihl = (inner[0] & 0x0F) * 4
            if inner[9] != socket.IPPROTO_ICMP or len(inner) < inner_ihl + 8:
                return 0
            ident, seq = struct.unpack("!HH", inner[inner_ihl + 4 : inner_ihl + 8])
            found = self._icmp_map.get((ident, seq))
            if found is None:
                return 0
            key, sent = found
            result = self._ip[key]
            if result.answered or result.responder is not None:
                return 0
            result.responder = responder
            result.rtt_ms = max(0.0, (received - sent) * 1000)
            if kind == ICMP_TIME_EXCEEDED:
                result.time_exceeded = True
                result.error = "time exceeded"
            else:
                result.error = f"unreachable (code {icmp[1]}) from {responder}"
            return self._finish(key)
        return 0

    def _on_tcp(self, key: int, sock: socket.socket) -> int:
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        result = self._ip[key]
        if code == 0:
            result.answer = "syn-ack"
        elif code == errno.ECONNREFUSED:
            result.answer = "reset"
        elif code == errno.EINPROGRESS:
            return 0
        else:
            result.error = os.strerror(code).lower()
        return self._finish(key)

    def _on_udp(self, key: int, sock: socket.socket) -> int:
        result = self._ip[key]
        try:
            sock.recv(2048)
            result.answer = "udp reply"
        except (BlockingIOError, InterruptedError):
            return 0
        except ConnectionRefusedError:
            result.answer = "port unreachable"
        except OSError as exc:
            result.error = _error_text(exc)
        return self._finish(key)

    def _on_arp(self, namespace: str, ifname: str, sock: socket.socket) -> None:
        for _ in range(256):
            try:
                frame, address = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            if len(frame) < 42 or address[0] != ifname:
                continue
            op = struct.unpack("!H", frame[20:22])[0]
            if op != 2:
                continue
            sender_mac = _mac_text(frame[22:28])
            sender_ip = Address(frame[28:32])
            for key in self._arp_map.get((namespace, ifname, sender_ip), []):
                self._arp[key].add(sender_mac)


def _error_text(exc: OSError) -> str:
    if exc.errno == errno.ENETUNREACH:
        return "no route"
    if exc.errno == errno.EHOSTUNREACH:
        return "host unreachable"
    if exc.errno == errno.EACCES:
        return "refused locally (EACCES)"
    return (exc.strerror or str(exc)).lower()
