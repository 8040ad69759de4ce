"""Runtime changes through SET, as AEF's manager made them: NETMANAGER-MIB's nmLinkRate,
nmLinkDelay, nmLinkJitter and nmLinkLoss, and IF-MIB's ifAdminStatus, of a VM port's
row (its ifIndex: nmLinkNameTable finds it by names).

One SET request is one change of one or several ports: every var-bind is checked first
(a row that is not a VM port, a wrong type or value, NetEm on a host without it: refused,
nothing changed), then the backend changes those ports in place, in its own thread, and
the response comes once the kernel carries the new values (commitFailed, everything
undone, when it refused them).  The backend keeps each change as an override of the
port's topology (:mod:`netmanager.host.runtime`).  Only SNMPv3 authPriv may SET (the
responder's policy); a runtime change waits for no transaction but is refused while one
changes the host.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from pysnmp.proto import rfc1902

from netmanager.host.protocol import BackendError, UndoFailed
from netmanager.host.rows import PortKey
from netmanager.host.runtime import PortOverride
from netmanager.snmp import mib
from netmanager.snmp.tables import SetError
from snmp_agents.oidtree import Oid

IF_ADMIN_STATUS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 7)
#: nmLinkEntry columns: the override's field and the unit's factor to it
COLUMNS = {
    4: ("rate_bps", 1000),
    5: ("delay_us", 1),
    6: ("jitter_us", 1),
    7: ("loss_ppm", 1),
    18: ("rate_in_bps", 1000),  # nmLinkRateFromVm
}
#: nmPairEntry's, likewise
PAIR_COLUMNS = {
    2: ("rate_bps", 1000),
    3: ("delay_us", 1),
    4: ("jitter_us", 1),
    5: ("loss_ppm", 1),
    7: ("rate_in_bps", 1000),  # nmPairRateFromVm
}
log = logging.getLogger(__name__)

NETEM = ("delay_us", "jitter_us", "loss_ppm")
MAX_LOSS_PPM = 1_000_000


class RuntimeSets:
    """Checks and carries out runtime SETs.  ``rows``: the link table's rows by ifIndex
    (vm and network as the table names them); ``change``: runs the backend's runtime
    change in its thread; ``netem``: whether the host's kernel has NetEm, None while that
    is not known yet (the backend then finds out, before changing anything)."""

    def __init__(
        self,
        rows: Callable[[], Mapping[int, Any]],
        change: Callable[[dict[PortKey, PortOverride]], Any],
        netem: Callable[[], bool | None],
        done: Callable[[bool], Awaitable[None] | None] = lambda read: None,
        pairs: Callable[[], set[tuple[int, str]]] = set,
    ) -> None:
        self.rows = rows
        self.change = change
        self.netem = netem
        self.done = done
        #: the pair table's rows, (ifIndex, peer)
        self.pairs = pairs
        self.link_entry = mib.oid_of("nmLinkEntry")
        self.pair_entry = mib.oid_of("nmPairEntry")
        self.last_error = ""

    def owns(self, oid: Oid) -> bool:
        """Whether a var-bind names a runtime column (of any row)."""
        n = len(self.link_entry)
        if oid[:n] == self.link_entry and len(oid) == n + 2 and oid[n] in COLUMNS:
            return True
        m = len(self.pair_entry)
        if oid[:m] == self.pair_entry and len(oid) > m + 2 and oid[m] in PAIR_COLUMNS:
            return True
        return (
            oid[: len(IF_ADMIN_STATUS)] == IF_ADMIN_STATUS and len(oid) == len(IF_ADMIN_STATUS) + 1
        )

    def plan(self, varbinds: Sequence[tuple[int, Oid, Any]]) -> dict[PortKey, PortOverride]:
        """The ports' changes a request asks for; SetError at the first var-bind refused."""
        rows = self.rows()
        wanted: dict[PortKey, dict[str, Any]] = {}
        paired: dict[PortKey, dict[str, dict[str, Any]]] = {}
        #: (port, peer) whose rate from the VM the request writes itself
        apart: set[tuple[PortKey, str]] = set()
        m = len(self.pair_entry)
        for position, oid, value in varbinds:
            peer = ""
            if oid[:m] == self.pair_entry:
                index, peer = self._pair_index(position, oid[m + 1 :])
            else:
                index = oid[-1]
            row = rows.get(index)
            if row is None:
                raise SetError("noCreation", position, f"no link has ifIndex {index}")
            key = _port_key(row.vm, row.network)
            if key is None:
                raise SetError(
                    "notWritable",
                    position,
                    f"ifIndex {index} is not a VM's port (runtime changes are a port's)",
                )
            if oid[: len(IF_ADMIN_STATUS)] == IF_ADMIN_STATUS:
                if value.tagSet != rfc1902.Integer32.tagSet:
                    raise SetError("wrongType", position)
                if int(value) not in (1, 2):
                    raise SetError("wrongValue", position, "ifAdminStatus: up(1) or down(2)")
                wanted.setdefault(key, {})["up"] = int(value) == 1
                continue
            if peer:
                name, factor = PAIR_COLUMNS[oid[m]]
            else:
                name, factor = COLUMNS[oid[len(self.link_entry)]]
            if value.tagSet != rfc1902.Unsigned32.tagSet:
                raise SetError("wrongType", position)
            number = int(value)
            if name == "loss_ppm" and number > MAX_LOSS_PPM:
                raise SetError("wrongValue", position, "nmLinkLoss: at most 1000000 ppm")
            if name in NETEM and number and self.netem() is False:
                raise SetError(
                    "inconsistentValue",
                    position,
                    "this host's kernel has no NetEm (sch_netem): no delay, jitter or loss",
                )
            values = paired.setdefault(key, {}).setdefault(peer, {}) if peer else None
            if values is None:
                values = wanted.setdefault(key, {})
            values[name] = number * factor
            if name == "rate_in_bps":  # nmLinkRateFromVm, nmPairRateFromVm: that way alone
                apart.add((key, peer))
            elif name == "rate_bps" and (key, peer) not in apart:
                values["rate_in_bps"] = number * factor  # nmLinkRate, nmPairRate: both ways
        return {
            key: PortOverride(
                **wanted.get(key, {}),
                pairs=tuple(
                    (peer, PortOverride(**v)) for peer, v in sorted(paired.get(key, {}).items())
                ),
            )
            for key in sorted({*wanted, *paired})
        }

    def _pair_index(self, position: int, index: Oid) -> tuple[int, str]:
        """nmPairTable's index (ifIndex, then the peer as a string: its length and
        octets): the ifIndex and peer of a pair the table serves; SetError otherwise."""
        if len(index) < 2 or index[1] != len(index) - 2 or not 1 <= index[1] <= 32:
            raise SetError("noCreation", position, "not an index of nmPairTable")
        try:
            peer = bytes(index[2:]).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise SetError("noCreation", position, "not an index of nmPairTable") from None
        if (index[0], peer) not in self.pairs():
            raise SetError(
                "noCreation", position, f"ifIndex {index[0]} has no <link> pair with '{peer}'"
            )
        return index[0], peer

    async def run(self, changes: dict[PortKey, PortOverride]) -> None:
        """Carry the changes out (the backend's thread); SetError commitFailed (everything
        undone) or undoFailed when the kernel refused them."""
        try:
            await self.change(changes)
        except UndoFailed as exc:
            self.last_error = str(exc)
            raise SetError("undoFailed", 0, str(exc)) from exc
        except BackendError as exc:
            self.last_error = str(exc)
            raise SetError("commitFailed", 0, str(exc)) from exc
        finally:
            # a port taken down or up: its state is read again; values alone: the
            # tables are rebuilt from the last read.  The response waits for the
            # rebuild: a GET right after it serves the values in force (it served the
            # old ones while the rebuild was still queued behind a poll)
            refresh = self.done(any(o.up is not None for o in changes.values()))
            if refresh is not None:
                try:
                    await refresh
                except Exception:  # the poll logs its own failures; the SET's outcome stands
                    log.exception("tables not rebuilt after a runtime change")
        self.last_error = ""


def _port_key(vm: str, network: str) -> PortKey | None:
    """A link table row's port: its VM and network as the table qualifies them
    (``topology/name``); None for a link that is no VM's port."""
    if not vm or not network or "/" not in vm or "/" not in network:
        return None
    topology, name = vm.split("/", 1)
    other, net = network.split("/", 1)
    if topology != other:
        return None
    return (topology, name, net)
