"""Segmentation and receive offloads (TSO, GSO, GRO) of a link, through SIOCETHTOOL.

A shaped port should not hand the qdisc 64 KiB super-packets: TBF then has to split
them itself, and at low rates a whole GSO packet is a burst of many milliseconds that
skews short TCP measurements.  ``Link.offloads=False`` turns TSO, GSO and GRO off on such
a port.  The legacy ethtool ioctls (ETHTOOL_[GS]{TSO,GSO,GRO}) are used rather than the
``ethtool`` program: no process per port, and the socket is opened once per namespace,
when the engine enters it for its netlink socket.
"""

from __future__ import annotations

import ctypes
import fcntl
import socket
import struct

SIOCETHTOOL = 0x8946
ETHTOOL_GTSO, ETHTOOL_STSO = 0x1E, 0x1F
ETHTOOL_GGSO, ETHTOOL_SGSO = 0x23, 0x24
ETHTOOL_GGRO, ETHTOOL_SGRO = 0x2B, 0x2C
OFFLOADS = (
    (ETHTOOL_GTSO, ETHTOOL_STSO),
    (ETHTOOL_GGSO, ETHTOOL_SGSO),
    (ETHTOOL_GGRO, ETHTOOL_SGRO),
)
_VALUE = struct.Struct("=II")  # struct ethtool_value
_IFREQ = struct.Struct("@16sP16x")  # struct ifreq with ifr_data (native: a pointer)


class EthtoolSocket:
    """ethtool ioctls, through a socket of the namespace they are for: ``sock`` (not
    closed here), else a datagram socket of its own made in the current namespace.  Any
    socket will do: the kernel hands SIOCETHTOOL to the devices of the socket's namespace
    when the socket's protocol has no use for it, as netlink's has not, so the engine
    passes the netlink socket it already holds in each namespace rather than open a
    second one (a thousand namespaces, a thousand sockets fewer)."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        self._own = sock is None
        self._sock = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def close(self) -> None:
        if self._own:
            self._sock.close()

    def _ioctl(self, ifname: str, cmd: int, data: int = 0) -> int:
        value = ctypes.create_string_buffer(_VALUE.pack(cmd, data), _VALUE.size)
        request = _IFREQ.pack(ifname.encode(), ctypes.addressof(value))
        fcntl.ioctl(self._sock.fileno(), SIOCETHTOOL, request)
        return int(_VALUE.unpack(value.raw)[1])

    def offloads(self, ifname: str) -> bool:
        """True if any of TSO, GSO and GRO is on."""
        return any(self._ioctl(ifname, get) for get, _ in OFFLOADS)

    def set_offloads(self, ifname: str, enabled: bool) -> None:
        for _, set_ in OFFLOADS:
            self._ioctl(ifname, set_, int(enabled))
