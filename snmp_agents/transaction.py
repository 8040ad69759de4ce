"""The transaction group of NETMANAGER-MIB: stage, commit with a revert timer, confirm,
rollback, discard (NAPALM's commit-confirm) over a :class:`HostBackend`.

Everything here runs on the agent's event loop; backend calls go to one worker thread,
so GETs are answered while a commit runs.  A SET only checks and *starts* an operation;
the manager follows ``nmTxnState``/``nmTxnLastResult``.  The state that must survive a
restart lives in the state directory:

``candidate.json``  the configuration tables (every row, with its RowStatus)
``confirmed.json``  the last confirmed configuration: what a rollback returns to
``txn.json``        state, versions, revert deadline (wall clock), last result

Edits of the candidate by SET are written down together (``candidate.json`` and
``txn.json`` with its version) at most every ``FLUSH_DELAY_S`` and before any operation
starts: loading a large candidate takes many SETs, and writing the whole candidate after
each one made loading quadratic.  An agent that dies between an edit and its write comes
back with the candidate and version of the last write, which agree with each other.

On start the backend's ``recover()`` runs first; then a commit still pending is given
the rest of its time, or rolled back at once if its deadline passed while the agent was
down — a host whose manager (or agent) disappeared reverts by itself.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pysnmp.proto import rfc1902

from netmanager.host.candidate import Candidate, Change, check_candidate
from netmanager.host.protocol import Adoption, BackendError, HostBackend, UndoFailed
from netmanager.host.rows import PortKey, complete, ports_from_text, ports_text
from netmanager.snmp import mib
from netmanager.snmp.tables import ColumnDef, SetError
from netmanager.statedir import read_json, write_json
from snmp_agents.configstore import ConfigStore
from snmp_agents.oidtree import Oid, Section, dynamic
from snmp_agents.runtime import RuntimeSets
from snmp_agents.schedule import ScheduleRunner

if TYPE_CHECKING:
    from snmp_agents.migration import Migrations

log = logging.getLogger(__name__)


class State(enum.IntEnum):
    idle = 1
    staging = 2
    staged = 3
    committing = 4
    pendingConfirm = 5
    rollingBack = 6
    failed = 7


class Result(enum.IntEnum):
    none = 1
    success = 2
    failed = 3
    reverted = 4


OPERATIONS = {1: "none", 2: "stage", 3: "commit", 4: "confirm", 5: "rollback", 6: "discard"}
OPERATION_VALUE = {v: k for k, v in OPERATIONS.items()}
CHANGE_ACTIONS = {"add": 1, "modify": 2, "remove": 3}
LOCKED = (State.committing, State.pendingConfirm, State.rollingBack)
#: seconds between a candidate edit and its write to disk (an operation writes it first)
FLUSH_DELAY_S = 0.5

Notify = Callable[[str, Sequence[tuple[Oid, Any]]], None]


CHANGE_COLUMNS = ("nmChangeAction", "nmChangeObject", "nmChangeReason")


def _scalar(name: str) -> ColumnDef:
    return ColumnDef.of(mib.symbol(name), name)


def _cloner(syntax: Any, fn: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: syntax.clone(fn())


def _value_cell(arg: tuple[Any, Any]) -> Any:
    """A cell's value, cloned from its syntax when it is read (see _change_items)."""
    syntax, value = arg
    return syntax.clone(value)


def _text_cell(arg: tuple[Any, str]) -> Any:
    syntax, text = arg
    return syntax.clone(_clip(text).encode())


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 255 else text[:252] + "..."


class Transaction:
    def __init__(
        self,
        store: ConfigStore,
        backend: HostBackend,
        state_dir: Path,
        executor: Executor,
        notify: Notify | None = None,
        on_running: Callable[[Candidate], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.backend = backend
        self.state_dir = state_dir
        self.executor = executor
        self.notify = notify or (lambda name, vbs: None)
        self.on_running = on_running or (lambda c: None)
        self.clock = clock

        self.state = State.idle
        self.last_op = "none"
        self.last_result = Result.none
        self.last_error = ""
        self.candidate_version = 0
        self.running_version = 0
        self.confirmed_version = 0
        self.staged_version: int | None = None
        self.committing_version = 0
        self.revert_timeout = 0
        self.revert_deadline: float | None = None
        self.commits = 0
        self.rollbacks = 0
        self.changes: list[Change] = []
        self.running = Candidate()
        self.confirmed = Candidate()

        self._timer: asyncio.TimerHandle | None = None
        self._flush_at: asyncio.TimerHandle | None = None
        self._unsaved = False
        self._written: dict[str, Any] | None = None  # txn.json as last written
        self._task: asyncio.Task[None] | None = None
        self.section_changed: Callable[[], None] = lambda: None
        self._section_cache: tuple[list[Change], Section] | None = None
        #: the scalars' var-binds and the objects of the section, built once
        self._scalars: tuple[list[tuple[Oid, Any]], list[Oid], dict[str, Any]] | None = None

        self.col_operation = _scalar("nmTxnOperation")
        self.col_timeout = _scalar("nmTxnRevertTimeout")
        self.col_scope = _scalar("nmTxnScope")
        self.col_hand_over = _scalar("nmTxnHandOver")
        self.oid_hand_over = (*self.col_hand_over.oid, 0)
        #: the last hand-over written (nmTxnHandOver)
        self.handed_over = ""
        self.oid_operation = (*self.col_operation.oid, 0)
        self.oid_timeout = (*self.col_timeout.oid, 0)
        self.oid_scope = (*self.col_scope.oid, 0)
        self.oid_migrate = (*mib.oid_of("nmTxnMigrate"), 0)
        self.col_adopt = _scalar("nmTxnAdopt")
        self.oid_adopt = (*self.col_adopt.oid, 0)
        #: the migrating VM the last stage takes in (nmTxnAdopt), None: none
        self.adopt: Adoption | None = None
        #: runtime SETs of the link table (None: the backend makes none)
        self.runtime: RuntimeSets | None = None
        #: the schedule this host plays (None: the backend makes no runtime change)
        self.schedule: ScheduleRunner | None = None
        #: the VM ports the last stage was scoped to (nmTxnScope), None: the whole host
        self.scope: tuple[PortKey, ...] | None = None
        #: live migrations of this host's domains (None: the backend makes none)
        self.migrations: Migrations | None = None

    def settling(self) -> asyncio.Task[None] | None:
        """The operation running now, or None (nmTxnSettledState is answered when it ends)."""
        task = self._task
        return task if task is not None and not task.done() else None

    def busy(self) -> bool:
        """Whether an operation is changing (or about to change) the host."""
        return self.state in (State.staging, State.committing, State.rollingBack)

    # ---------------------------------------------------------------- persistence

    def _save(self) -> None:
        if self._unsaved:
            # the version written below must never run ahead of the candidate on disk
            self._unsaved = False
            self._save_candidate()
        doc = {
            "state": self.state.name,
            "last_op": self.last_op,
            "last_result": self.last_result.name,
            "last_error": self.last_error,
            "candidate_version": self.candidate_version,
            "running_version": self.running_version,
            "confirmed_version": self.confirmed_version,
            "committing_version": self.committing_version,
            "revert_timeout": self.revert_timeout,
            "revert_deadline": self.revert_deadline,
        }
        # an operation saves as it starts, changes state and ends, often with nothing new
        # to say: each write is an fsync, which blocks the agent's loop
        if doc != self._written:
            write_json(self.state_dir / "txn.json", doc)
            self._written = doc

    def _save_candidate(self) -> None:
        write_json(self.state_dir / "candidate.json", self.store.to_json(), compact=True)

    def _edited(self) -> None:
        """The candidate changed: write it (and the version) soon."""
        self._unsaved = True
        if self._flush_at is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_at = loop.call_later(FLUSH_DELAY_S, self.flush)

    def flush(self) -> None:
        """Write down candidate edits not yet written (also called at shutdown)."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        if self._unsaved:
            self._save()

    def _save_confirmed(self) -> None:
        write_json(
            self.state_dir / "confirmed.json",
            {"version": self.confirmed_version, "config": self.confirmed.to_json()},
            compact=True,
        )

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn`` in the backend's thread.  An exception the host contract does not name
        (a bug) becomes a BackendError, so that the operation fails as any other would
        and the transaction never stays in the state it was in (a manager would wait on
        it until its timeout)."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        except (BackendError, UndoFailed):
            raise
        except Exception as exc:
            log.exception("%s raised", getattr(fn, "__name__", fn))
            raise BackendError(f"{type(exc).__name__}: {exc}") from exc

    async def start(self) -> None:
        """Load the saved state, let the backend recover, resume a pending commit."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        doc = read_json(self.state_dir / "txn.json", {}) or {}
        cand = read_json(self.state_dir / "candidate.json")
        if cand:
            self.store.load_json(cand)
        conf = read_json(self.state_dir / "confirmed.json")
        if conf:
            self.confirmed = Candidate.from_json(conf.get("config"))
            self.confirmed_version = int(conf.get("version", 0))
        saved = State[doc.get("state", "idle")]
        self.last_op = doc.get("last_op", "none")
        self.last_result = Result[doc.get("last_result", "none")]
        self.last_error = doc.get("last_error", "")
        self.candidate_version = int(doc.get("candidate_version", 0))
        self.running_version = int(doc.get("running_version", 0))
        self.committing_version = int(doc.get("committing_version", 0))
        self.revert_timeout = int(doc.get("revert_timeout", 0))
        self.revert_deadline = doc.get("revert_deadline")

        recovered = await self.call(self.backend.recover)
        if recovered:
            log.warning("backend recovery: %s", recovered)
        self.running = await self.call(self.backend.running)
        self.on_running(self.running)

        if saved in (State.staging, State.staged):
            self.state = State.idle
        elif saved == State.committing:
            # the commit may have been cut short (recover() undid it) or have finished
            # unconfirmed just before the crash: either way the host goes back
            self.state = State.rollingBack
            self._launch(self._undo_interrupted_commit(recovered))
        elif saved == State.pendingConfirm:
            self.state = State.pendingConfirm
            remaining = (self.revert_deadline or 0) - self.clock()
            if remaining <= 0:
                log.warning(
                    "commit of version %d was not confirmed before the agent restarted: reverting",
                    self.running_version,
                )
                self._launch(self._rollback(revert=True))
            else:
                self._arm(remaining)
        elif saved == State.rollingBack:
            self.state = State.pendingConfirm
            self._launch(self._rollback(revert=self.last_result == Result.reverted))
        else:
            self.state = saved
        self._save()
        self.section_changed()

    # ---------------------------------------------------------------- SET

    def handle_set(self, varbinds: Sequence[tuple[int, Oid, Any]]) -> Awaitable[None] | None:
        """Check and carry out one SET PDU (positions are 0-based); SetError on refusal.
        A runtime change (:mod:`snmp_agents.runtime`) returns what to await before the
        response: the kernel carrying it."""
        if any(oid == self.oid_hand_over for _, oid, _ in varbinds):
            return self._hand_over_set(varbinds)
        if any(oid == self.oid_migrate for _, oid, _ in varbinds):
            if self.migrations is None:
                raise SetError(
                    "notWritable", 0, "this host runs no libvirt domains: nothing migrates"
                )
            try:
                self.migrations.handle_set(varbinds)
            except SetError as exc:
                self.last_error = _clip(exc.message)
                self.section_changed()
                raise
            return None
        runtime = self.runtime
        if runtime is not None and any(runtime.owns(oid) for _, oid, _ in varbinds):
            return self._runtime_set(runtime, varbinds)
        schedule = self.schedule
        if schedule is not None and any(schedule.owns(oid) for _, oid, _ in varbinds):
            if not all(schedule.owns(oid) for _, oid, _ in varbinds):
                raise SetError(
                    "inconsistentValue", 0, "the schedule's objects go alone in their request"
                )
            schedule.handle_set(varbinds)
            return None
        config: list[tuple[int, Oid, Any]] = []
        op: tuple[int, str] | None = None
        timeout: int | None = None
        scope: tuple[int, tuple[PortKey, ...] | None] | None = None
        adopt: tuple[int, Adoption | None] | None = None
        for position, oid, value in varbinds:
            if oid[: len(mib.NM_CONFIG)] == mib.NM_CONFIG:
                config.append((position, oid, value))
            elif oid == self.oid_operation:
                op = (position, self.col_operation.check(value, position))
            elif oid == self.oid_timeout:
                timeout = self.col_timeout.check(value, position)
            elif oid == self.oid_scope:
                try:
                    ports = ports_from_text(self.col_scope.check(value, position))
                except ValueError as exc:
                    raise SetError("wrongValue", position, f"nmTxnScope: {exc}") from exc
                scope = (position, ports)
            elif oid == self.oid_adopt:
                if value.tagSet != rfc1902.OctetString.tagSet:
                    raise SetError("wrongType", position, "nmTxnAdopt takes an OCTET STRING")
                text = bytes(value.asOctets()).decode("utf-8", "replace")
                try:
                    adopt = (position, Adoption.from_text(text) if text.strip() else None)
                except ValueError as exc:
                    raise SetError("wrongValue", position, f"nmTxnAdopt: {exc}") from exc
            else:
                raise SetError("notWritable", position)

        plan = self.store.plan(config) if config else None
        if plan is not None and plan.changed and self.state in LOCKED:
            self.last_error = _clip(
                f"the candidate is locked while the transaction is {self.state.name}; "
                "confirm or roll back first"
            )
            raise SetError("inconsistentValue", plan.touched[0], self.last_error)
        if scope is not None and (op is None or op[1] != "stage"):
            raise SetError(
                "inconsistentValue", scope[0], "nmTxnScope is set with nmTxnOperation stage"
            )
        if adopt is not None and (op is None or op[1] != "stage"):
            raise SetError(
                "inconsistentValue", adopt[0], "nmTxnAdopt is set with nmTxnOperation stage"
            )
        completed: Candidate | None = None  # the candidate to stage, rows implied added
        if op is not None and op[1] != "none":
            candidate = None
            if op[1] == "stage":
                if plan is not None:
                    saved = self.store.tables
                    self.store.apply(plan)
                    candidate = self.store.candidate()
                    self.store.tables = saved
                else:
                    candidate = self.store.candidate()
                completed = complete(candidate)
                if completed is candidate:
                    completed = None
                else:
                    candidate = completed
            editing = (plan is not None and plan.changed) or completed is not None
            refusal = self._refusal(op[1], candidate, editing)
            if refusal == "":
                op = None  # idempotent repeat: nothing to start
            elif refusal is not None:
                # a refusal changes no state; nmTxnLastError tells the manager why
                self.last_error = _clip(refusal)
                self._save()
                raise SetError("inconsistentValue", op[0], refusal)

        # everything checked: apply
        if (plan is not None and plan.changed) or completed is not None:
            if plan is not None:
                self.store.apply(plan)
            if completed is not None:  # the structured rows its documents imply
                self.store.load_candidate(completed)
            self.candidate_version += 1
            if self.state == State.staged:
                self.state = State.idle
                self.staged_version = None
                self.changes = []
            self._edited()
            self.section_changed()
        if timeout is not None:
            self.revert_timeout = timeout
        if op is not None and op[1] != "none":
            if op[1] == "stage":
                self.scope = scope[1] if scope is not None else None
                self.adopt = adopt[1] if adopt is not None else None
            self.flush()
            self._begin(op[1])
        if op is not None or timeout is not None:
            self._save()
        return None

    def _runtime_set(
        self, runtime: RuntimeSets, varbinds: Sequence[tuple[int, Oid, Any]]
    ) -> Awaitable[None]:
        for position, oid, _ in varbinds:
            if not runtime.owns(oid):
                raise SetError(
                    "inconsistentValue",
                    position,
                    "a runtime change (link table, ifAdminStatus) goes alone in its request",
                )
        if self.state in (*LOCKED, State.staging):
            self.last_error = _clip(f"no runtime change while the transaction is {self.state.name}")
            self.section_changed()
            raise SetError("resourceUnavailable", 0, self.last_error)
        try:
            changes = runtime.plan(varbinds)
        except SetError as exc:
            self.last_error = _clip(exc.message)  # the manager reads why in nmTxnLastError
            self.section_changed()
            raise

        async def carried_out() -> None:
            try:
                await runtime.run(changes)
            except SetError as exc:
                self.last_error = _clip(exc.message)
                self.section_changed()
                raise

        return carried_out()

    def _hand_over_set(self, varbinds: Sequence[tuple[int, Oid, Any]]) -> Awaitable[None]:
        """nmTxnHandOver: the VM given to another host of this kernel, once checked."""
        if len(varbinds) != 1:
            raise SetError("inconsistentValue", 0, "nmTxnHandOver goes alone in its request")
        position, _, value = varbinds[0]
        if value.tagSet != rfc1902.OctetString.tagSet:
            raise SetError("wrongType", position, "nmTxnHandOver takes an OCTET STRING")
        words = bytes(value.asOctets()).decode("utf-8", "replace").split()
        if len(words) != 2:
            raise SetError("wrongValue", position, "nmTxnHandOver: 'TOPOLOGY VM'")
        give = getattr(self.backend, "hand_over", None)
        if give is None:
            raise SetError("notWritable", position, "this host's backend cannot hand a VM over")
        if self.state in (*LOCKED, State.staging):
            self.last_error = _clip(f"no hand-over while the transaction is {self.state.name}")
            self.section_changed()
            raise SetError("resourceUnavailable", position, self.last_error)

        async def carried_out() -> None:
            try:
                await self.call(give, *words)
            except BackendError as exc:
                self.last_error = _clip(str(exc))
                self.section_changed()
                raise SetError(
                    "undoFailed" if isinstance(exc, UndoFailed) else "commitFailed",
                    position,
                    str(exc),
                ) from exc
            self.handed_over = " ".join(words)
            self.last_error = ""
            self.running = await self.call(self.backend.running)
            self.on_running(self.running)
            self.section_changed()

        return carried_out()

    def _refusal(self, op: str, candidate: Candidate | None, editing: bool) -> str | None:
        """Why ``op`` cannot start now; "" for a harmless repeat; None to go ahead."""
        s = self.state
        if op == "stage":
            if s in LOCKED:
                return f"cannot stage while the transaction is {s.name}"
            if not editing and s == State.staging:
                return ""
            if not editing and s == State.staged and self.staged_version == self.candidate_version:
                return ""
            problems = check_candidate(candidate or Candidate())
            if problems:
                return "; ".join(problems)
            return None
        if editing:
            return f"cannot {op} and change the candidate in one request"
        if op == "commit":
            if s == State.staged:
                return None
            if (
                s in (State.committing, State.pendingConfirm)
                and self.committing_version == self.candidate_version
            ):
                return ""
            if (
                s == State.idle
                and self.last_op == "commit"
                and self.last_result == Result.success
                and self.running_version == self.candidate_version
            ):
                return ""
            return f"cannot commit while the transaction is {s.name}; stage first"
        if op == "confirm":
            if s == State.pendingConfirm:
                return None
            if s == State.idle and self.last_op == "confirm" and self.last_result == Result.success:
                return ""
            if self.last_result == Result.reverted:
                return "too late: the commit was rolled back by the revert timer"
            return f"no commit to confirm (the transaction is {s.name})"
        if op == "rollback":
            if s == State.pendingConfirm:
                return None
            if s == State.rollingBack:
                return ""
            if (
                s == State.idle
                and self.last_op in ("rollback", "revert")
                and self.last_result
                in (
                    Result.success,
                    Result.reverted,
                )
            ):
                return ""
            return (
                f"no commit to roll back (the transaction is {s.name}); discard drops a candidate"
            )
        if op == "discard":
            if s in LOCKED or s == State.staging:
                return f"cannot discard while the transaction is {s.name}"
            return None
        return f"unknown operation {op}"

    # ---------------------------------------------------------------- operations

    def _launch(self, coro: Any) -> None:
        self._task = asyncio.get_running_loop().create_task(coro)

    def _begin(self, op: str) -> None:
        self.last_op = op
        self.last_error = ""
        if op == "stage":
            self._set_state(State.staging)
            self._launch(
                self._stage(self.candidate_version, self.store.candidate(), self.scope, self.adopt)
            )
        elif op == "commit":
            self.committing_version = self.candidate_version
            self._set_state(State.committing)
            self._launch(self._commit(self.revert_timeout))
        elif op == "confirm":
            self._disarm()
            self._launch(self._confirm())
        elif op == "rollback":
            self._disarm()
            self._set_state(State.rollingBack)
            self._launch(self._rollback(revert=False))
        elif op == "discard":
            self.store.load_candidate(self.running)
            self.candidate_version += 1
            self.changes = []
            self.staged_version = None
            self._set_state(State.idle)
            self._save_candidate()
            self.executor.submit(self.backend.discard)
            self._finish("discard", Result.success, "")

    def _set_state(self, state: State) -> None:
        self.state = state
        self._save()
        self.section_changed()

    def _finish(self, op: str, result: Result, error: str, state: State | None = None) -> None:
        """An operation ended (in ``state`` if given): one write of the state file, not
        one for the state and one for the result (each is an fsync)."""
        if state is not None:
            self.state = state
        self.last_op = op
        self.last_result = result
        self.last_error = _clip(error)
        self._save()
        self.section_changed()
        if result == Result.failed:
            log.error("%s failed: %s", op, error)
            self.notify("nmTxnFailed", self.notification_varbinds("nmTxnState", "nmTxnLastError"))

    async def _stage(
        self,
        version: int,
        candidate: Candidate,
        scope: tuple[PortKey, ...] | None,
        adopt: Adoption | None = None,
    ) -> None:
        try:
            if adopt is None:
                changes = list(await self.call(self.backend.stage, candidate, scope))
            else:
                changes = list(await self.call(self.backend.stage, candidate, scope, adopt))
        except BackendError as exc:
            self._finish("stage", Result.failed, str(exc), state=State.idle)
            return
        if version != self.candidate_version or self.state != State.staging:
            self._finish(
                "stage",
                Result.failed,
                "the candidate changed during stage; stage again",
                state=State.idle if self.state == State.staging else None,
            )
            return
        self.changes = changes
        self.staged_version = version
        self._finish("stage", Result.success, "", state=State.staged)

    async def _commit(self, revert_timeout: int) -> None:
        try:
            await self.call(self.backend.commit)
        except UndoFailed as exc:
            self._finish("commit", Result.failed, str(exc), state=State.failed)
            return
        except BackendError as exc:
            self.changes = []
            self._finish("commit", Result.failed, str(exc), state=State.idle)
            return
        self.commits += 1
        self.running_version = self.committing_version
        self.running = await self.call(self.backend.running)
        self.on_running(self.running)
        self.changes = []
        self.staged_version = None
        if revert_timeout > 0:
            self.revert_deadline = self.clock() + revert_timeout
            self._set_state(State.pendingConfirm)
            self._arm(revert_timeout)
            self._finish("commit", Result.success, "")
        else:
            await self._confirm(op="commit")

    async def _confirm(self, op: str = "confirm") -> None:
        try:
            await self.call(self.backend.confirm)
        except BackendError as exc:
            self._finish(op, Result.failed, str(exc), state=State.failed)
            return
        self.revert_deadline = None
        self.confirmed = self.running
        self.confirmed_version = self.running_version
        self._save_confirmed()
        self._finish(op, Result.success, "", state=State.idle)

    async def _rollback(self, revert: bool) -> None:
        self._disarm()
        self._set_state(State.rollingBack)
        reverted_version = self.running_version
        if revert:
            self.last_result = Result.reverted
            self._save()
        try:
            await self.call(self.backend.rollback)
        except BackendError as exc:
            self._finish(
                "revert" if revert else "rollback", Result.failed, str(exc), state=State.failed
            )
            return
        self.rollbacks += 1
        self.revert_deadline = None
        self.running = await self.call(self.backend.running)
        self.on_running(self.running)
        self.running_version = self.confirmed_version
        self.store.load_candidate(self.confirmed)
        self.candidate_version += 1
        self._save_candidate()
        self._set_state(State.idle)
        if revert:
            self._finish(
                "revert",
                Result.reverted,
                f"commit of candidate version {reverted_version} was not confirmed in time; rolled back",
            )
            log.warning("%s", self.last_error)
            self.notify(
                "nmTxnReverted", self.notification_varbinds("nmTxnRunningVersion", "nmTxnLastError")
            )
        else:
            self._finish("rollback", Result.success, "")

    async def _undo_interrupted_commit(self, recovered: str | None) -> None:
        try:
            await self.call(self.backend.rollback)
        except BackendError as exc:
            self._finish(
                "commit",
                Result.failed,
                f"the agent restarted during the commit: {exc}",
                state=State.failed,
            )
            return
        self.running = await self.call(self.backend.running)
        self.on_running(self.running)
        self.running_version = self.confirmed_version
        self.revert_deadline = None
        self._finish(
            "commit",
            Result.failed,
            "the agent restarted during the commit; the host was returned to the "
            f"configuration before it ({recovered or 'the commit had completed'})",
            state=State.idle,
        )

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(seconds, self._revert_due)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _revert_due(self) -> None:
        self._timer = None
        if self.state == State.pendingConfirm:
            self._launch(self._rollback(revert=True))

    async def idle(self) -> None:
        """Wait for the operation running in the background, if any (tests, shutdown)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    # ---------------------------------------------------------------- serving

    def revert_remaining(self) -> int:
        if self.state != State.pendingConfirm or self.revert_deadline is None:
            return 0
        return max(0, int(self.revert_deadline - self.clock() + 0.999))

    def _values(self) -> dict[str, Callable[[], Any]]:
        return {
            "nmTxnOperation": lambda: OPERATION_VALUE.get(
                "rollback" if self.last_op == "revert" else self.last_op, 1
            ),
            "nmTxnRevertTimeout": lambda: self.revert_timeout,
            "nmTxnState": lambda: int(self.state),
            "nmTxnRevertRemaining": self.revert_remaining,
            "nmTxnLastResult": lambda: int(self.last_result),
            "nmTxnLastError": lambda: self.last_error.encode("utf-8", "replace")[:255],
            "nmTxnCandidateVersion": lambda: self.candidate_version,
            "nmTxnRunningVersion": lambda: self.running_version,
            "nmTxnChanges": lambda: len(self.changes),
            "nmTxnCommits": lambda: self.commits,
            "nmTxnRollbacks": lambda: self.rollbacks,
            # the backend's progress, when it tells any (read from its worker thread's ints)
            "nmTxnStepsDone": lambda: int(getattr(self.backend, "steps_done", 0)),
            "nmTxnStepsTotal": lambda: int(getattr(self.backend, "steps_total", 0)),
            "nmTxnScope": lambda: ports_text(self.scope).encode("ascii"),
            "nmTxnSettledState": lambda: int(self.state),
            "nmTxnHandOver": lambda: self.handed_over.encode("utf-8", "replace")[:255],
            "nmTxnAdopt": lambda: (self.adopt.text() if self.adopt else "").encode(
                "utf-8", "replace"
            )[:255],
            "nmTxnMigrate": lambda: self.migrations.written if self.migrations else b"",
            "nmTxnMigrateState": lambda: (
                self.migrations.state_text() if self.migrations else b'{"state": "idle"}'
            ),
        }

    def notification_varbinds(self, *names: str) -> list[tuple[Oid, Any]]:
        values = self._values()
        out = []
        for name in names:
            obj = mib.symbol(name)
            out.append(((*obj.name, 0), obj.syntax.clone(values[name]())))
        return out

    def section(self) -> Section:
        """The transaction's subtree.  Its scalars are read at request time, so the
        section is only built again when the change list is another one: a state change
        (every operation makes several) costs nothing here."""
        cached = self._section_cache
        if cached is not None and cached[0] is self.changes:
            return cached[1]
        if self._scalars is None:
            scalars: list[tuple[Oid, Any]] = []
            objects: list[Oid] = []
            for name, fn in self._values().items():
                obj = mib.symbol(name)
                objects.append(tuple(obj.name))
                scalars.append(((*obj.name, 0), dynamic(_cloner(obj.syntax, fn))))
            cols = {n: mib.symbol(n) for n in CHANGE_COLUMNS}
            objects.extend(tuple(c.name) for c in cols.values())
            self._scalars = (scalars, objects, cols)
        scalars, objects, cols = self._scalars
        built = Section.build("txn", mib.NM_TXN, [*scalars, *self._change_items(cols)], objects)
        self._section_cache = (self.changes, built)
        return built

    def _change_items(self, cols: dict[str, Any]) -> list[tuple[Oid, Any]]:
        """The change table's cells, each cloned only when read (cloning thousands of
        pyasn1 values per build cost an agent more than its kernel work when 64 of them
        shared two cores); built once per change list, with the section."""
        action, obj, reason = (cols[n].syntax for n in CHANGE_COLUMNS)
        action_oid, obj_oid, reason_oid = (tuple(cols[n].name) for n in CHANGE_COLUMNS)
        items: list[tuple[Oid, Any]] = []
        for i, change in enumerate(self.changes, start=1):
            items.append(((*action_oid, i), (_value_cell, (action, CHANGE_ACTIONS[change.action]))))
            items.append(((*obj_oid, i), (_text_cell, (obj, change.object))))
            items.append(((*reason_oid, i), (_text_cell, (reason, change.reason))))
        return items
