"""The command responder: GET, GETNEXT, GETBULK and SET over the agent's :class:`OidTree`.

It replaces pysnmp's ``cmdrsp`` responders and, with them, four defects of pysnmp
7.1.30 (see ``shared/notes/snmp.md``):

* **VACM lets read-only principals write** (``is_access_allowed`` returns instead of
  raising ``notInView``).  pysnmp's VACM is not consulted at all: :class:`Policy` decides
  from the message's security model, name and level, and only the ``[write]`` user at
  authPriv may SET.  Everyone else's SET is answered ``noAccess`` (``noSuchName`` for
  SNMPv1) at error-index 1 and changes nothing.  The engine's own tables (USM, VACM,
  community) are not in the served tree, so they cannot be read or written either.
* **Wrong error-index in SET responses**: a refused SET carries the 1-based position of
  the var-bind that failed (:class:`SetError.position`).
* **GETBULK repeats endOfMibView** up to max-repetitions: repetitions stop after the
  first one in which every repeater reached the end of the MIB view.
* **GETBULK caps a reply at 64 var-binds**: the reply is filled up to the message size
  (and at most ``max_bulk_varbinds``).

Speed: var-bindings of read responses are encoded by :mod:`snmp_agents.ber` and handed
to pysnmp as one pre-encoded blob, and SNMPv2c reads with the read community are
answered by :class:`FastV2c` straight from the datagram, without pysnmp's message
processing (the dominant cost per request).  Everything else (SNMPv1, SNMPv3, SET,
anything the fast path does not recognise) goes through pysnmp.

Waiting without polling: a GET that asks for an object whose value is only final once
something ends (``nmTxnSettledState``: the transaction's state once its running operation
has ended) is answered when that happens or after :data:`DEFER_MAX_S`, whichever comes
first (:class:`Responder`'s ``defer``); the agent serves other requests meanwhile.

Requests in a non-default context are dropped.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyasn1.type import univ
from pysnmp.proto import error as proto_error
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.proto.api import v2c
from pysnmp.proto.proxy import rfc2576

from netmanager.snmp.credentials import Credentials
from netmanager.snmp.tables import SetError
from snmp_agents import ber
from snmp_agents.oidtree import Oid, OidTree, varbind_ber_len

log = logging.getLogger(__name__)

GET = rfc1905.GetRequestPDU.tagSet
GETNEXT = rfc1905.GetNextRequestPDU.tagSet
GETBULK = rfc1905.GetBulkRequestPDU.tagSet
SET = rfc1905.SetRequestPDU.tagSet
PDU_TYPES = (GET, GETNEXT, GETBULK, SET)

AUTH_PRIV = 3
USM = 3
#: bytes kept free for the message and PDU headers around the var-binds
HEADER_ROOM = 200
MAX_MESSAGE = 65507
#: longest a GET waits for what it asked to settle (well below a manager's request timeout)
DEFER_MAX_S = 1.0
#: given the OIDs of a GET: something to wait for before answering it, or None
Deferral = Callable[[Sequence[Oid]], "asyncio.Future[Any] | None"]


class Access(enum.IntEnum):
    NONE = 0
    READ = 1
    WRITE = 2


class Policy:
    """Who may do what: the agent's whole access control."""

    def __init__(self, credentials: Credentials) -> None:
        self.write_user = credentials.write.user
        self.read_view = credentials.read_only_view

    def access(self, security_model: int, security_name: Any, security_level: int) -> Access:
        name = bytes(security_name).decode("utf-8", "replace") if security_name is not None else ""
        if security_model == USM and name == self.write_user and security_level == AUTH_PRIV:
            return Access.WRITE
        return Access.READ if self.read_view else Access.NONE


class MibReader:
    """GET, GETNEXT and GETBULK over the tree, answered as encoded var-bindings."""

    def __init__(self, tree: OidTree, max_bulk_varbinds: int = 2000) -> None:
        self.tree = tree
        self.max_bulk_varbinds = max_bulk_varbinds
        self._watches: list[tuple[tuple[Oid, ...], Callable[[], None]]] = []

    def watch(self, subtrees: Sequence[Oid], callback: Callable[[], None]) -> None:
        """Call ``callback`` for every read request that names an OID in one of
        ``subtrees`` (as requested: a GETBULK that runs on into them from elsewhere does
        not count)."""
        self._watches.append((tuple(subtrees), callback))

    def requested(self, oids: Sequence[Oid]) -> None:
        for subtrees, callback in self._watches:
            if any(oid[: len(root)] == root for oid in oids for root in subtrees):
                callback()

    def get(self, oids: Sequence[Oid]) -> list[bytes]:
        self.requested(oids)
        out = []
        for oid in oids:
            kind, entry = self.tree.get_entry(oid)
            if entry is not None:
                value = ber.encode_entry(*entry)
            elif kind == "noSuchInstance":
                value = ber.NO_SUCH_INSTANCE
            else:
                value = ber.NO_SUCH_OBJECT
            out.append(ber.encode_varbind(oid, value))
        return out

    def next(self, oid: Oid) -> tuple[Oid, bytes, bool]:
        """(next OID, its encoded var-bind, whether the end of the MIB view was hit)."""
        found = self.tree.next_entry(oid)
        if found is None:
            return oid, ber.encode_varbind(oid, ber.END_OF_MIB_VIEW), True
        nxt, entry = found
        return nxt, ber.encode_varbind(nxt, ber.encode_entry(*entry)), False

    def next_all(self, oids: Sequence[Oid]) -> list[bytes]:
        """GETNEXT: the encoded var-bind after each OID."""
        self.requested(oids)
        return [self.next(oid)[1] for oid in oids]

    def bulk(
        self, oids: Sequence[Oid], non_repeaters: int, max_repetitions: int, budget: int
    ) -> list[bytes]:
        """RFC 3416 §4.2.3, filled up to ``budget`` bytes of var-bindings."""
        self.requested(oids)
        n = min(max(non_repeaters, 0), len(oids))
        out: list[bytes] = []
        size = 0
        for oid in oids[:n]:
            vb = self.next(oid)[1]
            out.append(vb)
            size += len(vb)
        cursor = list(oids[n:])
        if not cursor:
            return out
        for _ in range(max(max_repetitions, 0)):
            all_ended = True
            for j, oid in enumerate(cursor):
                nxt, vb, ended = self.next(oid)
                if not ended:
                    all_ended = False
                    cursor[j] = nxt
                size += len(vb)
                if (size > budget and out) or len(out) >= self.max_bulk_varbinds:
                    return out
                out.append(vb)
            if all_ended:
                break  # once every repeater is at the end, one round of endOfMibView is enough
        return out


class FastV2c:
    """SNMPv2c GET/GETNEXT/GETBULK with the read community, answered from the datagram."""

    def __init__(self, reader: MibReader, community: str, count_in: Callable[[], None]) -> None:
        self.reader = reader
        self.community = community.encode("utf-8")
        self.count_in = count_in

    def answer(self, datagram: bytes) -> bytes | None:
        req = ber.decode_v2c_read(datagram)
        if req is None or req.community != self.community:
            return None  # pysnmp answers, or counts the error
        budget = MAX_MESSAGE - HEADER_ROOM - len(self.community)
        if req.pdu_type == ber.GET:
            varbinds = self.reader.get(req.oids)
        elif req.pdu_type == ber.GETNEXT:
            varbinds = self.reader.next_all(req.oids)
        else:
            varbinds = self.reader.bulk(req.oids, req.non_repeaters, req.max_repetitions, budget)
        if req.pdu_type != ber.GETBULK and sum(len(v) for v in varbinds) > budget:
            return None  # pysnmp answers tooBig
        self.count_in()
        return ber.v2c_response(self.community, req.request_id, varbinds)


#: carries out a SET (SetError: refused); what it returns, if anything, is awaited before
#: the response
SetHandler = Callable[[Sequence[tuple[int, Oid, Any]]], "Awaitable[None] | None"]


@dataclass(frozen=True)
class _Request:
    """One request as pysnmp's dispatcher hands it over, to be answered now or later."""

    mpm: int  # message processing model: 0 SNMPv1, 1 SNMPv2c, 3 SNMPv3
    security: tuple[int, Any, int]  # model, name, level
    scope: tuple[Any, Any, int]  # context engine id, context name, PDU version
    pdu: Any  # as SNMPv2 (an SNMPv1 PDU converted)
    v1_pdu: Any  # the SNMPv1 PDU it came as, or None
    max_size: int
    state_reference: Any

    @property
    def budget(self) -> int:
        """Bytes the response's var-binds may take."""
        return max(484, min(self.max_size, MAX_MESSAGE)) - HEADER_ROOM


class Responder:
    """pysnmp's entry point for every request that :class:`FastV2c` did not answer."""

    def __init__(
        self,
        engine: Any,
        tree: OidTree,
        policy: Policy,
        on_set: SetHandler,
        max_bulk_varbinds: int = 2000,
        defer: Deferral | None = None,
    ) -> None:
        self.engine = engine
        self.defer = defer
        self._deferred: set[asyncio.Task[None]] = set()
        self.tree = tree
        self.reader = MibReader(tree, max_bulk_varbinds)
        self.policy = policy
        self.on_set = on_set
        engine.message_dispatcher.register_context_engine_id(
            engine.snmpEngineID, PDU_TYPES, self.process_pdu
        )

    # ---------------------------------------------------------------- dispatcher entry

    def process_pdu(
        self,
        snmp_engine: Any,
        message_processing_model: int,
        security_model: int,
        security_name: Any,
        security_level: int,
        context_engine_id: Any,
        context_name: Any,
        pdu_version: int,
        pdu: Any,
        max_size_response_scoped_pdu: int,
        state_reference: Any,
    ) -> None:
        try:
            self._process(
                _Request(
                    message_processing_model,
                    (security_model, security_name, security_level),
                    (context_engine_id, context_name, pdu_version),
                    rfc2576.v1_to_v2(pdu) if message_processing_model == 0 else pdu,
                    pdu if message_processing_model == 0 else None,
                    int(max_size_response_scoped_pdu),
                    state_reference,
                )
            )
        except Exception:
            log.exception("request dropped: unexpected error while answering")

    def _process(self, request: _Request) -> None:
        scope = request.scope
        if bytes(scope[1]):
            log.debug("request for context %r dropped", bytes(scope[1]))
            return
        pdu = request.pdu
        access = self.policy.access(*request.security)
        tag = pdu.tagSet
        varbinds = [(tuple(oid), value) for oid, value in v2c.apiPDU.get_varbinds(pdu)]
        oids = [oid for oid, _ in varbinds]

        error_status, error_index = 0, 0
        out: list[tuple[Oid, Any]] | list[bytes] = varbinds
        if access == Access.NONE:
            error_status, error_index = 16, 1  # authorizationError
        elif tag == SET:
            if access != Access.WRITE:
                error_status, error_index = 6, 1  # noAccess
            else:
                try:
                    pending = self.on_set(
                        [(i, oid, value) for i, (oid, value) in enumerate(varbinds)]
                    )
                except SetError as exc:
                    error_status = _ERROR_STATUS[exc.status]
                    error_index = exc.position + 1
                    log.info(
                        "SET refused: %s at var-bind %d: %s", exc.status, error_index, exc.message
                    )
                else:
                    if pending is not None:
                        # a change the response waits for (a runtime change: the kernel
                        # carrying it); other requests are served meanwhile
                        task = asyncio.get_running_loop().create_task(
                            self._set_later(pending, request, varbinds)
                        )
                        self._deferred.add(task)
                        task.add_done_callback(self._deferred.discard)
                        return
        elif request.mpm == 0:
            out = self._v1_read(tag, oids)
        elif tag == GET:
            waiter = self.defer(oids) if self.defer is not None else None
            if waiter is not None:
                task = asyncio.get_running_loop().create_task(self._answer_later(waiter, request))
                self._deferred.add(task)
                task.add_done_callback(self._deferred.discard)
                return
            out = self.reader.get(oids)
        elif tag == GETNEXT:
            out = self.reader.next_all(oids)
        elif tag == GETBULK:
            out = self.reader.bulk(
                oids,
                int(v2c.apiBulkPDU.get_non_repeaters(pdu)),
                int(v2c.apiBulkPDU.get_max_repetitions(pdu)),
                request.budget,
            )
        self._send(request, out, error_status, error_index)

    async def _set_later(
        self, pending: Awaitable[None], request: _Request, varbinds: list[tuple[Oid, Any]]
    ) -> None:
        """The response to a SET once what it started is done (or refused)."""
        error_status, error_index = 0, 0
        try:
            await pending
        except SetError as exc:
            error_status, error_index = _ERROR_STATUS[exc.status], exc.position + 1
            log.info("SET failed: %s: %s", exc.status, exc.message)
        except Exception:
            log.exception("SET failed unexpectedly")
            error_status, error_index = _ERROR_STATUS["genErr"], 1
        try:
            self._send(request, varbinds, error_status, error_index)
        except Exception:
            log.exception("SET response dropped: unexpected error while answering")

    async def _answer_later(self, waiter: asyncio.Future[Any], request: _Request) -> None:
        """A deferred GET: answered once ``waiter`` is done, or after DEFER_MAX_S."""
        try:
            await asyncio.wait_for(asyncio.shield(waiter), DEFER_MAX_S)
        except (TimeoutError, asyncio.CancelledError):
            pass
        except Exception:  # the operation's own failure: the GET reads the outcome
            pass
        try:
            oids = [tuple(oid) for oid, _ in v2c.apiPDU.get_varbinds(request.pdu)]
            self._send(request, self.reader.get(oids), 0, 0)
        except Exception:
            log.exception("deferred request dropped: unexpected error while answering")

    def _send(
        self,
        request: _Request,
        out: list[tuple[Oid, Any]] | list[bytes],
        error_status: int,
        error_index: int,
    ) -> None:
        pdu = request.pdu
        tag = pdu.tagSet
        if tag in (GET, GETNEXT) and _size(out) > request.budget:
            out, error_status, error_index = [], 1, 0  # tooBig
        while True:
            try:
                rsp = v2c.apiPDU.get_response(pdu)
                v2c.apiPDU.set_error_status(rsp, error_status)
                v2c.apiPDU.set_error_index(rsp, error_index)
                if out and isinstance(out[0], bytes):
                    blob = univ.Any(ber.varbind_list(out))
                    rsp.setComponentByPosition(
                        3, blob, verifyConstraints=False, matchTags=False, matchConstraints=False
                    )
                else:
                    v2c.apiPDU.set_varbinds(rsp, out)
                if request.mpm == 0:
                    rsp = rfc2576.v2_to_v1(rsp, request.v1_pdu)
                self.engine.message_dispatcher.return_response_pdu(
                    self.engine,
                    request.mpm,
                    *request.security,
                    *request.scope,
                    rsp,
                    request.max_size,
                    request.state_reference,
                    {},
                )
                return
            except proto_error.StatusInformation as exc:
                indication = exc.get("errorIndication")
                if indication is None or "tooBig" not in str(indication):
                    log.info("response not sent: %s", indication)
                    return
                if tag == GETBULK and len(out) > 1:
                    out = out[: max(1, len(out) * 3 // 4)]
                    continue
                if out:
                    out, error_status, error_index = [], 1, 0
                    continue
                log.info("response too big even empty; dropped")
                return

    def _v1_read(self, tag: Any, oids: list[Oid]) -> list[tuple[Oid, Any]]:
        """SNMPv1 needs pyasn1 values: pysnmp's v2-to-v1 translation reads them."""
        self.reader.requested(oids)
        if tag == GET:
            out = []
            for oid in oids:
                kind, value = self.tree.get(oid)
                exc = rfc1905.noSuchInstance if kind == "noSuchInstance" else rfc1905.noSuchObject
                out.append((oid, value if kind == "value" else exc))
            return out
        result = []
        for oid in oids:
            found = self.tree.next(oid, skip=_skip_counter64)
            result.append(found if found is not None else (oid, rfc1905.endOfMibView))
        return result


def _size(varbinds: Sequence[Any]) -> int:
    return sum(
        len(vb) if isinstance(vb, bytes) else varbind_ber_len(vb[0], vb[1]) for vb in varbinds
    )


def _skip_counter64(_oid: Oid, value: Any) -> bool:
    """SNMPv1 has no Counter64: GETNEXT skips such values (RFC 2576 §4.1.2.1)."""
    return bool(value.tagSet == rfc1902.Counter64.tagSet)


_ERROR_STATUS = {
    "noError": 0,
    "tooBig": 1,
    "noSuchName": 2,
    "badValue": 3,
    "readOnly": 4,
    "genErr": 5,
    "noAccess": 6,
    "wrongType": 7,
    "wrongLength": 8,
    "wrongEncoding": 9,
    "wrongValue": 10,
    "noCreation": 11,
    "inconsistentValue": 12,
    "resourceUnavailable": 13,
    "commitFailed": 14,
    "undoFailed": 15,
    "authorizationError": 16,
    "notWritable": 17,
    "inconsistentName": 18,
}
