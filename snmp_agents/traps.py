"""SNMPv2c notifications (traps) to the receivers named in real.xml.

Built directly as SNMPv2-Trap PDUs and sent from their own UDP socket: no pysnmp
notification originator, hence no VACM "notify" view to configure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from pyasn1.codec.ber import encoder
from pysnmp.proto import rfc1902
from pysnmp.proto.api import v2c

from snmp_agents.oidtree import Oid

log = logging.getLogger(__name__)

SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SNMP_TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
LINK_DOWN = (1, 3, 6, 1, 6, 3, 1, 1, 5, 3)
LINK_UP = (1, 3, 6, 1, 6, 3, 1, 1, 5, 4)


def parse_endpoint(text: str, default_port: int) -> tuple[str, int]:
    """'127.0.0.1:16162' or '127.0.0.1' -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    return host, int(port)


class TrapSender(asyncio.DatagramProtocol):
    def __init__(
        self,
        receivers: Sequence[tuple[str, int]],
        community: str,
        uptime: Callable[[], int],
    ) -> None:
        self.receivers = list(receivers)
        self.community = community
        self.uptime = uptime
        self.transport: asyncio.DatagramTransport | None = None
        self.sent = 0

    async def open(self) -> None:
        if not self.receivers:
            return
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("0.0.0.0", 0))
        self.transport = transport

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def error_received(self, exc: Exception) -> None:
        log.debug("trap receiver unreachable: %s", exc)

    def encode(self, trap_oid: Oid, varbinds: Sequence[tuple[Oid, Any]]) -> bytes:
        pdu = v2c.TrapPDU()
        v2c.apiTrapPDU.set_defaults(pdu)
        v2c.apiTrapPDU.set_varbinds(
            pdu,
            [
                (SYS_UPTIME, rfc1902.TimeTicks(self.uptime())),
                (SNMP_TRAP_OID, rfc1902.ObjectIdentifier(trap_oid)),
                *varbinds,
            ],
        )
        msg = v2c.Message()
        v2c.apiMessage.set_defaults(msg)
        v2c.apiMessage.set_community(msg, self.community)
        v2c.apiMessage.set_pdu(msg, pdu)
        return bytes(encoder.encode(msg))

    def send(self, trap_oid: Oid, varbinds: Sequence[tuple[Oid, Any]]) -> None:
        if self.transport is None:
            return
        data = self.encode(trap_oid, varbinds)
        for host, port in self.receivers:
            try:
                self.transport.sendto(data, (host, port))
                self.sent += 1
            except OSError as exc:
                log.warning("trap to %s:%d not sent: %s", host, port, exc)
