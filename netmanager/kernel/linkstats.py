"""Link counters and states of a set of namespaces, read from the kernel: what the
agent's link monitor serves as IF-MIB rows and ``netmanager status --watch`` shows.
The states are given as IF-MIB's ifOperStatus values of the kernel's operstates."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: IF-MIB ifOperStatus of each kernel operstate (IFLA_OPERSTATE)
OPER_STATUS = {
    "UP": 1,
    "DOWN": 2,
    "TESTING": 3,
    "UNKNOWN": 4,
    "DORMANT": 5,
    "NOTPRESENT": 6,
    "LOWERLAYERDOWN": 7,
}


IFF_UP, IFF_LOWER_UP = 0x1, 0x10000


def _oper(operstate: str, flags: int) -> int:
    """ifOperStatus: the kernel's operstate, except where a driver keeps none (a tap
    says UNKNOWN): there the link is up when it is up with its carrier (RFC 2863's
    reading, as iproute2 and NetworkManager do)."""
    if operstate == "UNKNOWN" and flags & IFF_UP and flags & IFF_LOWER_UP:
        return OPER_STATUS["UP"]
    return OPER_STATUS.get(operstate, 4)


@dataclass(frozen=True)
class LinkSample:
    """One interface as read from the kernel."""

    netns: str
    ifname: str
    alias: str = ""
    kind: str = ""
    mtu: int = 1500
    mac: bytes = b""
    admin_up: bool = True
    oper: int = 4
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_packets: int = 0
    tx_packets: int = 0
    rx_dropped: int = 0
    tx_dropped: int = 0
    rx_errors: int = 0
    tx_errors: int = 0
    multicast: int = 0

    @property
    def key(self) -> str:
        return f"{self.netns}/{self.ifname}"


class LinkReader(Protocol):
    def read(self) -> list[LinkSample]: ...

    def close(self) -> None: ...


class NetnsLinkReader:
    """pyroute2 link dumps of a set of namespaces ('' is the agent's own), filtered by
    ifalias prefix.  Called from one worker thread only (pyroute2's sync IPRoute
    refuses to run inside the event loop)."""

    def __init__(self, namespaces: Sequence[str], alias_prefix: str) -> None:
        self.namespaces = list(namespaces) or [""]
        self.alias_prefix = alias_prefix
        self._sockets: dict[str, Any] = {}
        self._failed: set[str] = set()

    def _ipr(self, netns: str) -> Any:
        ipr = self._sockets.get(netns)
        if ipr is None:
            from pyroute2 import IPRoute

            ipr = IPRoute(netns=netns) if netns else IPRoute()
            self._sockets[netns] = ipr
        return ipr

    def read(self) -> list[LinkSample]:
        out: list[LinkSample] = []
        for netns in self.namespaces:
            try:
                links = self._ipr(netns).get_links()
            except Exception as exc:  # namespace gone, netlink error: skip it this round
                if netns not in self._failed:
                    log.warning("cannot read links of namespace %r: %s", netns, exc)
                    self._failed.add(netns)
                ipr = self._sockets.pop(netns, None)
                if ipr is not None:
                    try:
                        ipr.close()
                    except Exception:
                        log.debug("closing the socket of %r failed", netns)
                continue
            self._failed.discard(netns)
            for msg in links:
                sample = _sample(netns, msg, self.alias_prefix)
                if sample is not None:
                    out.append(sample)
        return out

    def close(self) -> None:
        for ipr in self._sockets.values():
            try:
                ipr.close()
            except Exception:
                log.debug("closing a netlink socket failed")
        self._sockets.clear()


def _sample(netns: str, msg: Any, alias_prefix: str) -> LinkSample | None:
    alias = msg.get_attr("IFLA_IFALIAS") or ""
    if alias_prefix and not alias.startswith(alias_prefix):
        return None
    info = msg.get_attr("IFLA_LINKINFO")
    kind = (info.get_attr("IFLA_INFO_KIND") if info is not None else None) or ""
    stats = msg.get_attr("IFLA_STATS64") or {}
    mac = msg.get_attr("IFLA_ADDRESS") or ""
    try:
        mac_bytes = bytes.fromhex(mac.replace(":", ""))
    except ValueError:
        mac_bytes = b""
    return LinkSample(
        netns=netns,
        ifname=msg.get_attr("IFLA_IFNAME") or "",
        alias=alias,
        kind=kind,
        mtu=msg.get_attr("IFLA_MTU") or 0,
        mac=mac_bytes,
        admin_up=bool(msg["flags"] & 1),
        oper=_oper(msg.get_attr("IFLA_OPERSTATE") or "UNKNOWN", msg["flags"]),
        rx_bytes=stats.get("rx_bytes", 0),
        tx_bytes=stats.get("tx_bytes", 0),
        rx_packets=stats.get("rx_packets", 0),
        tx_packets=stats.get("tx_packets", 0),
        rx_dropped=stats.get("rx_dropped", 0),
        tx_dropped=stats.get("tx_dropped", 0),
        rx_errors=stats.get("rx_errors", 0),
        tx_errors=stats.get("tx_errors", 0),
        multicast=stats.get("multicast", 0),
    )
