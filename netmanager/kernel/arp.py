"""Who answers for an address behind an interface: ARP probes (RFC 5227: sender address
0.0.0.0, so that no neighbour learns anything from them) sent out of an interface of a
namespace, their answers read on the same interface.

What a host uses to check that a guest netmanager cannot configure (a libvirt domain
without qemu-guest-agent) carries the address virtual.xml gives it: the probe goes out of
the domain's tap, i.e. straight into the guest's NIC, and the guest's answer comes back
on the tap before any bridge, rule or other VM sees it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import select
import socket
import struct
import time
from collections.abc import Iterable, Mapping

from netmanager.kernel import netns

ETH_P_ARP = 0x0806
ETH_P_ALL = 0x0003
ARP_REQUEST = 1
ARP_REPLY = 2
BROADCAST = b"\xff" * 6
#: probes sent per address, spread over the timeout (a guest's NIC ring may drop one)
TRIES = 3


def _frame(src_mac: bytes, target: ipaddress.IPv4Address) -> bytes:
    header = BROADCAST + src_mac + struct.pack("!H", ETH_P_ARP)
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, ARP_REQUEST)
    body += src_mac + b"\0\0\0\0" + b"\0" * 6 + target.packed
    return (header + body).ljust(60, b"\0")


def _answer(frame: bytes) -> tuple[ipaddress.IPv4Address, str] | None:
    """(sender address, sender MAC) of an ARP reply frame, None for anything else."""
    if len(frame) < 42 or frame[12:14] != struct.pack("!H", ETH_P_ARP):
        return None
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    if (htype, ptype, hlen, plen, op) != (1, 0x0800, 6, 4, ARP_REPLY):
        return None
    mac = frame[22:28].hex(":")
    return ipaddress.IPv4Address(frame[28:32]), mac


def who_has(
    namespace: str,
    targets: Mapping[str, Iterable[ipaddress.IPv4Address]],
    timeout_s: float = 1.0,
) -> dict[tuple[str, ipaddress.IPv4Address], set[str]]:
    """For each interface of ``namespace`` ("" for this process's) and each address
    ``targets`` names on it: the MACs (lower case) that answered an ARP probe for it
    within ``timeout_s``.  An interface that does not exist (or is down) has no answers."""
    wanted = {ifname: set(addresses) for ifname, addresses in targets.items() if addresses}
    found: dict[tuple[str, ipaddress.IPv4Address], set[str]] = {
        (ifname, a): set() for ifname, addresses in wanted.items() for a in addresses
    }
    socks: dict[int, tuple[str, socket.socket, bytes]] = {}
    home = netns.current_fd()
    fd = netns.open_fd(namespace) if namespace else os.dup(home)
    try:
        with netns.inside(fd, home):
            for ifname in sorted(wanted):
                # every protocol: a socket for ARP alone sees nothing on a bridge port (the
                # bridge takes the frame before protocol handlers; taps of all protocols
                # come first); answers are picked out below, the probes sent are ARP
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                try:
                    sock.bind((ifname, ETH_P_ALL))
                    mac = bytes(sock.getsockname()[4])[:6]
                except OSError:
                    sock.close()
                    continue
                sock.setblocking(False)
                socks[sock.fileno()] = (ifname, sock, mac)
        start = time.monotonic()
        sent = 0
        while True:
            now = time.monotonic() - start
            if sent < TRIES and now >= sent * timeout_s / TRIES:
                for ifname, sock, mac in socks.values():
                    for address in wanted[ifname]:
                        if not found[(ifname, address)]:
                            with contextlib.suppress(OSError):
                                sock.sendto(_frame(mac, address), (ifname, ETH_P_ARP))
                sent += 1
            if now >= timeout_s or all(found.values()):
                break
            next_send = sent * timeout_s / TRIES if sent < TRIES else timeout_s
            ready, _, _ = select.select(list(socks), [], [], max(0.0, next_send - now))
            for fileno in ready:
                ifname, sock, _mac = socks[fileno]
                while True:
                    try:
                        frame, where = sock.recvfrom(2048)
                    except BlockingIOError:
                        break
                    if where[2] == socket.PACKET_OUTGOING:
                        continue  # only what comes from behind the interface
                    got = _answer(frame)
                    if got is not None and (ifname, got[0]) in found:
                        found[(ifname, got[0])].add(got[1])
    finally:
        for _ifname, sock, _mac in socks.values():
            sock.close()
        os.close(fd)
        os.close(home)
    return found


# ------------------------------------------------------------------------- announcing

ETH_P_RARP = 0x8035
RARP_REQUEST_REVERSE = 3
#: when a moved VM announces itself, after its ports are wired (seconds from then): as
#: QEMU's self-announce after a live migration (its first rounds, 50 ms then +100 ms)
ANNOUNCE_AT_S = (0.0, 0.05, 0.15, 0.3)


def _rarp(mac: bytes) -> bytes:
    """A RARP "reverse request" from ``mac`` to everyone, as QEMU's self-announce sends:
    every switch (bridge, VXLAN) on the way learns where the MAC is now, no neighbour's
    ARP cache changes."""
    header = BROADCAST + mac + struct.pack("!H", ETH_P_RARP)
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, RARP_REQUEST_REVERSE)
    body += mac + b"\0\0\0\0" + mac + b"\0\0\0\0"
    return (header + body).ljust(60, b"\0")


class Announcer:
    """The announcements of a VM that moved: a RARP frame out of each of its interfaces
    (in its namespace), sent now and again at :data:`ANNOUNCE_AT_S` by a thread of its
    own, so that the bridges of the hosts on the way forward to the VM's new port at
    once (they learnt its MAC behind the old one)."""

    def __init__(self, namespace: str, ifnames: Iterable[str]) -> None:
        self._socks: list[tuple[str, socket.socket, bytes]] = []
        home = netns.current_fd()
        fd = netns.open_fd(namespace) if namespace else os.dup(home)
        try:
            with netns.inside(fd, home):
                for ifname in sorted(set(ifnames)):
                    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
                    try:
                        sock.bind((ifname, 0))
                        mac = bytes(sock.getsockname()[4])[:6]
                    except OSError:
                        sock.close()
                        continue
                    self._socks.append((ifname, sock, mac))
        finally:
            os.close(fd)
            os.close(home)

    def send(self) -> int:
        """One announcement out of each interface; how many went."""
        sent = 0
        for ifname, sock, mac in self._socks:
            try:
                sock.sendto(_rarp(mac), (ifname, ETH_P_RARP))
                sent += 1
            except OSError:  # down, or gone: the next round may pass
                continue
        return sent

    def close(self) -> None:
        for _ifname, sock, _mac in self._socks:
            sock.close()
        self._socks = []


def announce(namespace: str, ifnames: Iterable[str], at_s: Iterable[float] = ANNOUNCE_AT_S) -> int:
    """Announce a moved VM (see :class:`Announcer`): the first round now, in this thread
    (returns how many frames went), the others from a daemon thread."""
    import threading

    announcer = Announcer(namespace, ifnames)
    times = sorted(at_s)
    first = announcer.send() if times and times[0] <= 0 else 0
    later = [t for t in times if t > 0]

    def rest() -> None:
        start = time.monotonic()
        try:
            for at in later:
                time.sleep(max(0.0, at - (time.monotonic() - start)))
                announcer.send()
        finally:
            announcer.close()

    if later:
        threading.Thread(target=rest, name="announce", daemon=True).start()
    else:
        announcer.close()
    return first
