"""The manager's side of SNMP: talk to one host's netmanager-agent (asyncio, pysnmp 7).

Every request goes as SNMPv3 USM authPriv with the ``[write]`` principal of the host's
credentials file (the only one an agent lets change anything).  A candidate travels as
SET PDUs of whole rows (``createAndGo`` with every column that differs from its DEFVAL,
``destroy`` for rows that go), several rows per PDU; the transaction is driven through
``nmTxnOperation`` and watched through ``nmTxnState``.  The agent's own candidate is read
back by walking the configuration tables, so that only the rows that differ are sent.

Raises :class:`AgentError` (with the host's name) for a timeout, an SNMP error status, or
a transaction operation the agent refused or failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from netmanager.agentctl.processes import process_alive
from netmanager.host.candidate import TABLES, Candidate
from netmanager.host.rows import ROWS, PortKey, documented, ports_text, topology_of
from netmanager.snmp import mib
from netmanager.snmp.credentials import Credentials, WriteUser
from netmanager.snmp.tables import MANDATORY, ROW_STATUS, ROW_STATUS_VALUE, TableDef, load_tables

Oid = tuple[int, ...]
VarBind = tuple[Oid, Any]

#: rows per SET PDU (a row has up to a dozen var-binds): well under a UDP datagram
ROWS_PER_SET = 12
#: document chunks per SET PDU (two var-binds each, 255 characters): about 8 KB, so that a
#: host's document (a few KB to tens of KB with VXLAN peers' forwarding entries) goes in
#: a few PDUs; each PDU costs manager and agent far more than its bytes
CHUNKS_PER_SET = 32
BULK_REPETITIONS = 60
#: var-binds asked per GETBULK when walking columns side by side (about 40 KB of counters)
COLUMN_VARBINDS = 1200

STATES = {
    1: "idle",
    2: "staging",
    3: "staged",
    4: "committing",
    5: "pendingConfirm",
    6: "rollingBack",
    7: "failed",
}
RESULTS = {1: "none", 2: "success", 3: "failed", 4: "reverted"}
OPERATIONS = {"none": 1, "stage": 2, "commit": 3, "confirm": 4, "rollback": 5, "discard": 6}
CHANGE_ACTIONS = {1: "+", 2: "~", 3: "-"}
#: IF-MIB ifOperStatus (also nmLinkOperStatus)
OPER_STATUS = {
    1: "up",
    2: "down",
    3: "testing",
    4: "unknown",
    5: "dormant",
    6: "notPresent",
    7: "lowerLayerDown",
}
#: the state each operation ends in when it succeeds
SETTLED = {
    "stage": "staged",
    "commit": "pendingConfirm",
    "confirm": "idle",
    "rollback": "idle",
    "discard": "idle",
}


class AgentError(Exception):
    """A request to a host's agent failed; the message names the host."""

    def __init__(self, host: str, message: str, *, undo_failed: bool = False) -> None:
        super().__init__(f"host '{host}': {message}")
        self.host = host
        #: the operation failed and so did its undo: the host is partly configured
        self.undo_failed = undo_failed


def _raw(varbinds: Sequence[VarBind]) -> list[tuple[Any, Any]]:
    from pysnmp.proto.rfc1902 import ObjectName

    return [(ObjectName(oid), value) for oid, value in varbinds]


def _oid(name: str, *index: int) -> Oid:
    return (*mib.oid_of(name), *index)


_TABLES: list[TableDef] | None = None


def tables() -> list[TableDef]:
    global _TABLES
    if _TABLES is None:
        _TABLES = load_tables()
    return _TABLES


def _row_varbinds(table: TableDef, row: Any, destroy: bool = False) -> list[VarBind]:
    values = asdict(row)
    index = table.encode_index(values)
    status = "destroy" if destroy else "createAndGo"
    out: list[VarBind] = [((*table.status.oid, *index), table.status.to_snmp(status))]
    if destroy:
        return out
    for column in table.data_columns():
        value = values[column.field]
        if column.default is not MANDATORY and column.default == value:
            continue
        out.append(((*column.oid, *index), column.to_snmp(value)))
    return out


def candidate_pdus(
    want: Candidate, have: Candidate, *, implied: bool = True
) -> list[list[VarBind]]:
    """SET PDUs that turn the agent's candidate ``have`` into ``want``: destroys first
    (dependent tables first), then creations in table order, ``ROWS_PER_SET`` rows a PDU
    (document chunks: ``CHUNKS_PER_SET``).  Without ``implied``, the structured rows that
    ``want``'s documents imply are not created: the agent adds them when it stages
    (:func:`netmanager.host.rows.complete`)."""
    by_attr = {t.attr: t for t in tables()}
    skip = set() if implied else documented(want)
    destroys: list[list[VarBind]] = []
    for attr in reversed(list(TABLES)):
        wanted = set(getattr(want, attr))
        destroys += [
            _row_varbinds(by_attr[attr], r, destroy=True)
            for r in getattr(have, attr)
            if r not in wanted
        ]
    creations: list[list[VarBind]] = []
    chunks: list[list[VarBind]] = []  # the documents' rows, many a PDU
    for attr in TABLES:
        existing = set(getattr(have, attr))
        (chunks if attr == "documents" else creations).extend(
            _row_varbinds(by_attr[attr], r)
            for r in getattr(want, attr)
            if r not in existing and not (attr in ROWS and topology_of(r) in skip)
        )
    # a changed row is a destroy and a creation of the same index: never in one PDU
    return [
        [vb for row in group[i : i + size] for vb in row]
        for group, size in (
            (destroys, ROWS_PER_SET),
            (creations, ROWS_PER_SET),
            (chunks, CHUNKS_PER_SET),
        )
        for i in range(0, len(group), size)
    ]


def candidate_from_walk(varbinds: Sequence[VarBind]) -> Candidate:
    """The active rows of a walk of the configuration tables, as a Candidate."""
    found: dict[tuple[str, Oid], dict[str, Any]] = {}
    status: dict[tuple[str, Oid], str] = {}
    for oid, value in varbinds:
        for table in tables():
            n = len(table.entry)
            if oid[:n] != table.entry or len(oid) <= n + 1:
                continue
            column = table.columns.get(oid[n])
            index = oid[n + 1 :]
            if column is None:
                break
            key = (table.attr, index)
            if column.kind == "status":
                status[key] = ROW_STATUS.get(int(value), "")
            else:
                found.setdefault(key, {})[column.field] = column.to_python(value)
            break
    by_attr = {t.attr: t for t in tables()}
    rows: dict[str, list[Any]] = {attr: [] for attr in TABLES}
    for (attr, index), row_status in status.items():
        if row_status != "active":
            continue
        values = found.get((attr, index), {})
        table = by_attr[attr]
        keys = table.decode_index(index)
        if keys is None:
            continue
        rows[attr].append(table.cls(**{**table.defaults(), **values, **keys}))
    return Candidate.of(**rows)


@dataclass(frozen=True)
class TxnStatus:
    state: str
    last_result: str
    last_error: str
    candidate_version: int
    running_version: int
    changes: int
    steps_done: int = 0
    steps_total: int = 0


#: how often a request still unanswered checks that the agent's process is there
LIVENESS_CHECK_S = 1.0


#: SETs and walks in flight at once from one manager, over all its agents: the agents of
#: a machine share its cores, and a request queued behind sixty others outlives its
#: timeout and is sent again, which only adds work (measured: 64 emulated hosts on two
#: cores, a fifth of the loading SETs retransmitted).  Waits (nmTxnSettledState) and
#: status reads are not counted: they cost an agent little and must not wait behind work.
IN_FLIGHT = 8
_LIMITS: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Semaphore]] = {}


def _limit() -> asyncio.Semaphore:
    """The in-flight limit of this event loop."""
    loop = asyncio.get_running_loop()
    found = _LIMITS.get(id(loop))
    if found is None or found[0] is not loop:
        found = (loop, asyncio.Semaphore(IN_FLIGHT))
        _LIMITS[id(loop)] = found
    return found[1]


class _Engines:
    """One pysnmp engine per event loop and write principal, shared by the clients that
    use both: building an engine costs about 0.13 s, so that one engine per host made an
    apply on 64 hosts spend seconds building them.  (Clients with other credentials get
    an engine of their own: the engine's user table has one entry per user name.)"""

    _open: ClassVar[dict[tuple[int, WriteUser], tuple[asyncio.AbstractEventLoop, Any, int]]] = {}
    #: event loops of several threads share the table (a libvirt migration follows the
    #: source's agent in one while the target's commit runs in another)
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def take(cls, write: WriteUser) -> Any:
        from pysnmp.hlapi.v3arch import asyncio as hl

        loop = asyncio.get_running_loop()
        key = (id(loop), write)
        with cls._lock:
            found = cls._open.get(key)
            if found is not None and found[0] is loop and not loop.is_closed():
                cls._open[key] = (loop, found[1], found[2] + 1)
                return found[1]
        engine = hl.SnmpEngine()
        with cls._lock:
            cls._open[key] = (loop, engine, 1)
        return engine

    @classmethod
    def give_back(cls, engine: Any) -> None:
        with cls._lock:
            for key, (loop, shared, users) in list(cls._open.items()):
                if shared is engine:
                    if users > 1:
                        cls._open[key] = (loop, shared, users - 1)
                        return
                    del cls._open[key]
                    break
        engine.close_dispatcher()


class AgentClient:
    """One agent, reached over UDP with SNMPv3 authPriv; use inside one event loop."""

    def __init__(
        self,
        host: str,
        address: str,
        port: int,
        credentials: Credentials,
        *,
        timeout_s: float = 3.0,
        retries: int = 3,
        pid: int | None = None,
    ) -> None:
        self.host = host
        self.address = address
        self.port = port
        self.credentials = credentials
        self.timeout_s = timeout_s
        self.retries = retries
        # the process that answers for the agent on this machine (the agent, or the QEMU
        # of its guest), where known: a request to it fails as soon as it has exited,
        # not after every timeout and retry
        self.pid = pid
        self._engine: Any = None
        self._target: Any = None

    async def open(self) -> AgentClient:
        from pysnmp.hlapi.v3arch import asyncio as hl
        from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD

        from netmanager.snmp.usm import AUTH, PRIV

        write = self.credentials.write
        self._engine = _Engines.take(write)
        user = hl.UsmUserData(
            write.user,
            write.auth_key,
            write.priv_key,
            authProtocol=AUTH[write.auth_protocol],
            privProtocol=PRIV[write.priv_protocol],
        )
        target = await hl.UdpTransportTarget.create(
            (self.address, self.port), timeout=self.timeout_s, retries=self.retries
        )
        # the target's name in the engine's configuration; requests then go through the
        # command generators with numeric OIDs, never through a MIB lookup (the hlapi
        # calls resolve every var-bind against the MIBs, and build a MIB compiler first)
        self._target, _ = LCD.configure(self._engine, user, target, b"")
        return self

    @property
    def is_open(self) -> bool:
        return self._engine is not None

    def close(self) -> None:
        if self._engine is not None:
            _Engines.give_back(self._engine)
            self._engine = None

    async def __aenter__(self) -> AgentClient:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests

    async def _request(
        self, what: str, send: Callable[..., Any], *args: Any, heavy: bool = False
    ) -> list[VarBind]:
        """Send one request through a pysnmp command generator; its var-binds.  A
        ``heavy`` one (work for the agent) waits for a place among :data:`IN_FLIGHT`."""
        if heavy:
            async with _limit():
                return await self._request(what, send, *args)
        future: asyncio.Future[list[VarBind]] = asyncio.get_running_loop().create_future()
        sent: Sequence[VarBind] = args[-1]

        def done(
            _engine: Any,
            _handle: Any,
            indication: Any,
            status: Any,
            index: Any,
            varbinds: Any,
            _ctx: Any,
        ) -> None:
            if future.done():
                return
            if indication:
                future.set_exception(AgentError(self.host, f"{what}: {indication}"))
            elif status:
                detail = ""
                if 0 < int(index) <= len(sent):
                    detail = f" at {'.'.join(map(str, sent[int(index) - 1][0]))}"
                future.set_exception(
                    AgentError(self.host, f"{what}: {status.prettyPrint()}{detail}")
                )
            else:
                future.set_result([(tuple(name), value) for name, value in varbinds])

        send(self._engine, self._target, None, b"", *args[:-1], _raw(sent), done)
        if self.pid is None:
            return await future
        while True:
            try:
                return await asyncio.wait_for(asyncio.shield(future), LIVENESS_CHECK_S)
            except TimeoutError:
                if not process_alive(self.pid):
                    # its answer, should one still come, is nobody's
                    future.add_done_callback(lambda f: f.cancelled() or f.exception())
                    raise AgentError(
                        self.host, f"{what}: its process (PID {self.pid}) has exited"
                    ) from None

    async def get(self, *oids: Oid) -> list[Any]:
        """The values of some OIDs, in order."""
        from pysnmp.entity.rfc3413 import cmdgen
        from pysnmp.proto.rfc1902 import Null

        out = await self._request(
            "GET", cmdgen.GetCommandGenerator().send_varbinds, [(o, Null("")) for o in oids]
        )
        return [value for _, value in out]

    async def set(self, varbinds: Sequence[VarBind]) -> None:
        from pysnmp.entity.rfc3413 import cmdgen

        await self._request(
            "SET", cmdgen.SetCommandGenerator().send_varbinds, list(varbinds), heavy=True
        )

    async def walk(self, prefix: Oid) -> list[VarBind]:
        """Every (OID, value) under ``prefix``, by GETBULK."""
        from pysnmp.entity.rfc3413 import cmdgen
        from pysnmp.proto.rfc1902 import Null
        from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject

        bulk = cmdgen.BulkCommandGenerator().send_varbinds
        out: list[VarBind] = []
        cursor = prefix
        while True:
            page = await self._request(
                "GETBULK", bulk, 0, BULK_REPETITIONS, [(cursor, Null(""))], heavy=True
            )
            if not page:
                return out
            for oid, value in page:
                if oid[: len(prefix)] != prefix or isinstance(
                    value, EndOfMibView | NoSuchObject | NoSuchInstance
                ):
                    return out
                out.append((oid, value))
                cursor = oid

    async def walk_columns(
        self, columns: Sequence[Oid], rows: int | None = None
    ) -> dict[Oid, list[VarBind]]:
        """Several columns of one table walked side by side: each GETBULK carries a
        var-bind per column still going, so a row's cells come in the same response (the
        agent answers a request from one snapshot).  ``rows``, the number of rows
        expected (ifNumber), sizes the requests so that the agent does not fill them with
        what lies beyond the table.  Returns the (OID, value) of each column."""
        from pysnmp.entity.rfc3413 import cmdgen
        from pysnmp.proto.rfc1902 import Null
        from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject

        bulk = cmdgen.BulkCommandGenerator().send_varbinds
        out: dict[Oid, list[VarBind]] = {c: [] for c in columns}
        cursors = list(columns)
        going = list(range(len(columns)))
        while going:
            repetitions = max(1, COLUMN_VARBINDS // len(going))
            if rows is not None:
                repetitions = min(repetitions, rows - len(out[columns[going[0]]]) + 1)
            request = [(cursors[i], Null("")) for i in going]
            page = await self._request("GETBULK", bulk, 0, max(repetitions, 1), request)
            if not page:
                break
            ended: set[int] = set()
            for position, (oid, value) in enumerate(page):
                i = going[position % len(going)]
                column = columns[i]
                if i in ended:
                    continue
                if oid[: len(column)] != column or isinstance(
                    value, EndOfMibView | NoSuchObject | NoSuchInstance
                ):
                    ended.add(i)
                    continue
                out[column].append((oid, value))
                cursors[i] = oid
            going = [i for i in going if i not in ended]
        return out

    # ------------------------------------------------------------------ transaction

    async def status(self, *, settled: bool = False) -> TxnStatus:
        """The transaction's state; ``settled``: once the operation running has ended, or
        after at most a second (the agent answers then: nmTxnSettledState)."""
        values = await self.get(
            _oid("nmTxnSettledState" if settled else "nmTxnState", 0),
            _oid("nmTxnLastResult", 0),
            _oid("nmTxnLastError", 0),
            _oid("nmTxnCandidateVersion", 0),
            _oid("nmTxnRunningVersion", 0),
            _oid("nmTxnChanges", 0),
            _oid("nmTxnStepsDone", 0),
            _oid("nmTxnStepsTotal", 0),
        )
        state, result, error, candidate, running, changes, done, total = values
        return TxnStatus(
            STATES.get(int(state), str(int(state))),
            RESULTS.get(int(result), str(int(result))),
            bytes(error.asOctets()).decode("utf-8", "replace"),
            int(candidate),
            int(running),
            int(changes),
            int(done),
            int(total),
        )

    async def candidate(self) -> Candidate:
        return candidate_from_walk(await self.walk(mib.NM_CONFIG))

    async def load(self, want: Candidate, have: Candidate | None = None) -> int:
        """Make the agent's candidate ``want`` once it is staged (the structured rows that
        its documents imply are added by the agent then, not sent); returns the number of
        SET PDUs sent."""
        if have is None:
            have = await self.candidate()
        pdus = candidate_pdus(want, have, implied=False)
        for pdu in pdus:
            await self.set(pdu)
        return len(pdus)

    async def operate(
        self,
        op: str,
        *,
        revert_s: int | None = None,
        scope: Sequence[PortKey] | None = None,
        adopt: str | None = None,
        timeout_s: float = 600.0,
        on_status: Callable[[TxnStatus], None] | None = None,
    ) -> TxnStatus:
        """Start a transaction operation and wait until it settles; AgentError when the
        agent refuses it or it ends anywhere but where it should.  ``scope``: the VM ports
        a stage is scoped to (nmTxnScope); ``adopt``: the migrating VM it takes in
        (nmTxnAdopt, 'TOPOLOGY VM NAMESPACE')."""
        from pysnmp.proto import rfc1902

        varbinds: list[VarBind] = []
        if revert_s is not None:
            varbinds.append((_oid("nmTxnRevertTimeout", 0), rfc1902.Unsigned32(revert_s)))
        if scope is not None:
            varbinds.append((_oid("nmTxnScope", 0), rfc1902.OctetString(ports_text(scope))))
        if adopt is not None:
            varbinds.append((_oid("nmTxnAdopt", 0), rfc1902.OctetString(adopt.encode())))
        varbinds.append((_oid("nmTxnOperation", 0), rfc1902.Integer32(OPERATIONS[op])))
        try:
            await self.set(varbinds)
        except AgentError as exc:
            reason = ""
            with contextlib.suppress(AgentError):
                reason = (await self.status()).last_error
            raise AgentError(self.host, f"{op} refused: {reason or exc}") from exc
        return await self.wait(op, timeout_s, on_status)

    async def wait(
        self, op: str, timeout_s: float, on_status: Callable[[TxnStatus], None] | None = None
    ) -> TxnStatus:
        want = SETTLED[op]
        deadline = time.monotonic() + timeout_s
        delay = 0.02
        while True:
            asked = time.monotonic()
            status = await self.status(settled=True)
            if on_status is not None:
                on_status(status)
            if status.state == want and not (op == "confirm" and status.last_result == "failed"):
                if op in ("stage", "commit", "confirm") and status.last_result == "failed":
                    raise AgentError(self.host, f"{op} failed: {status.last_error}")
                return status
            if status.state == "failed":
                raise AgentError(
                    self.host,
                    f"{op} failed, undo incomplete: {status.last_error}",
                    undo_failed=True,
                )
            if status.state == "idle" and op in ("stage", "commit"):
                raise AgentError(
                    self.host, f"{op} failed: {status.last_error or status.last_result}"
                )
            if time.monotonic() > deadline:
                raise AgentError(self.host, f"{op} did not finish within {timeout_s:.0f} s")
            if time.monotonic() - asked < 0.05:  # answered at once: nothing was running
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 0.25)

    async def changes(self) -> list[tuple[str, str, str]]:
        """The staged changes (nmChangeTable): (+|~|-, object, reason)."""
        entry = mib.oid_of("nmChangeEntry")
        cells: dict[int, dict[int, Any]] = {}
        for oid, value in await self.walk(entry):
            column, index = oid[len(entry)], oid[len(entry) + 1]
            cells.setdefault(index, {})[column] = value
        out = []
        for index in sorted(cells):
            row = cells[index]
            action = CHANGE_ACTIONS.get(int(row.get(2, 0)), "?")
            obj = bytes(row[3].asOctets()).decode("utf-8", "replace") if 3 in row else ""
            why = bytes(row[4].asOctets()).decode("utf-8", "replace") if 4 in row else ""
            out.append((action, obj, why))
        return out


__all__ = [
    "ROW_STATUS_VALUE",
    "AgentClient",
    "AgentError",
    "TxnStatus",
    "candidate_from_walk",
    "candidate_pdus",
]
