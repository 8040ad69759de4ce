"""The SNMP transport: a host is reached through its netmanager-agent (seed 002: the
manager never touches a host itself; the agent on each host applies what it is sent).

A candidate travels as SETs of the rows that differ from what the agent holds (of the
new rows, the documents only: the agent adds the rows they imply when it stages); the
agent stages, commits (with a revert timer of its own: a host whose manager disappears
reverts by itself), and reports its progress in ``nmTxnStepsDone``/``nmTxnStepsTotal``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netmanager.agentctl.client import AgentClient, AgentError, TxnStatus
from netmanager.apply.transport import HostFailed, PendingCommit
from netmanager.host.candidate import Candidate, Change
from netmanager.host.protocol import Adoption
from netmanager.host.rows import PortKey
from netmanager.kernel.journal import StepProgress
from netmanager.statedir import read_json, write_json

if TYPE_CHECKING:
    from netmanager.hypervisor.migration import MigrationRequest, MigrationResult

#: how long one transaction operation may take on one host
OPERATION_TIMEOUT_S = 900.0


class KnownCandidates:
    """What the manager knows each agent holds, so that a load sends only the rows that
    differ without walking the agent's tables first.  Per host: the candidate and running
    configurations as of their version numbers (``nmTxnCandidateVersion`` and
    ``nmTxnRunningVersion``, which the agent bumps at every change); kept in
    ``<agents>/<host>/manager-candidate.json``.  When a version differs from the agent's,
    the agent's tables are walked instead."""

    FILE = "manager-candidate.json"

    def __init__(self, directory: Path, hosts: Iterable[str]) -> None:
        self.directory = directory
        self.known: dict[str, dict[str, Any]] = {}
        for host in hosts:
            doc = read_json(directory / host / self.FILE)
            if isinstance(doc, dict):
                self.known[host] = doc

    def candidate(self, host: str, candidate_version: int) -> Candidate | None:
        doc = self.known.get(host)
        if doc is None or doc.get("candidate_version") != candidate_version:
            return None
        return Candidate.from_json(doc["candidate"])

    def running(self, host: str, running_version: int) -> Candidate | None:
        doc = self.known.get(host)
        if doc is None or doc.get("running_version") != running_version:
            return None
        return Candidate.from_json(doc["running"])

    def remember(
        self, host: str, status: TxnStatus, candidate: Candidate | None, running: Candidate | None
    ) -> None:
        path = self.directory / host / self.FILE
        if candidate is None or running is None:
            self.known.pop(host, None)
            path.unlink(missing_ok=True)
            return
        doc = {
            "candidate_version": status.candidate_version,
            "running_version": status.running_version,
            "candidate": candidate.to_json(),
            "running": running.to_json(),
        }
        self.known[host] = doc
        if path.parent.is_dir():
            write_json(path, doc, compact=True)


class AgentTransport:
    """One host's agent, through an :class:`~netmanager.agentctl.client.AgentClient`."""

    def __init__(self, client: AgentClient, known: KnownCandidates) -> None:
        self.host = client.host
        self.client = client
        self.known = known
        self._wanted: Candidate | None = None
        self._begun: TxnStatus | None = None

    async def _op(self, op: str, **options: Any) -> TxnStatus:
        try:
            return await self.client.operate(op, timeout_s=OPERATION_TIMEOUT_S, **options)
        except AgentError as exc:
            raise _failed(exc) from exc

    async def _status(self, *, settled: bool = False) -> TxnStatus:
        try:
            return await self.client.status(settled=settled)
        except AgentError as exc:
            raise _failed(exc) from exc

    async def open(self) -> None:
        await self.client.open()

    def close(self) -> None:
        self.client.close()

    async def _settled(self) -> TxnStatus:
        """The agent's state once what is running has settled (nothing sent but GETs,
        each answered when the agent's operation ends or after a second)."""
        status = await self._status(settled=True)
        deadline = time.monotonic() + OPERATION_TIMEOUT_S
        while status.state in ("staging", "committing", "rollingBack"):
            if time.monotonic() > deadline:
                raise HostFailed(self.host, f"the agent stays {status.state}", "E741")
            status = await self._status(settled=True)
        return status

    async def begin(self, *, commit: bool) -> None:
        status = await self._settled()
        self._begun = status
        if status.state != "pendingConfirm":
            return
        if not commit:
            raise PendingCommit(
                self.host,
                "a commit that an earlier apply left unconfirmed is pending; its agent "
                "reverts it by itself when its timer ends, and apply rolls it back first",
                "E741",
            )
        # the apply lock is ours: the commit's manager (or the agent) died; undo it
        await self._op("rollback")

    async def stage(
        self,
        candidate: Candidate,
        ports: Sequence[PortKey] | None = None,
        adopt: Adoption | None = None,
    ) -> int:
        # the state begin read, unless begin had to roll back (this manager holds the
        # apply lock: nothing else changes the agent's candidate in between)
        begun, self._begun = self._begun, None
        status = begun if begun is not None and begun.state != "pendingConfirm" else None
        if status is None:
            status = await self._status()
        try:
            await self.client.load(
                candidate, self.known.candidate(self.host, status.candidate_version)
            )
        except AgentError as exc:
            raise _failed(exc) from exc
        self._wanted = candidate
        if adopt is not None:
            return (await self._op("stage", scope=ports, adopt=adopt.text())).changes
        return (await self._op("stage", scope=ports)).changes

    async def changes(self) -> Sequence[Change]:
        try:
            lines = await self.client.changes()
        except AgentError as exc:
            raise _failed(exc) from exc
        return [Change.of_sign(sign, obj, why) for sign, obj, why in lines]

    async def discard(self) -> None:
        before = await self._status()
        running = self.known.running(self.host, before.running_version)
        status = await self._op("discard")
        # after a discard the agent's candidate is its running configuration again
        self.known.remember(self.host, status, running, running)

    async def commit(self, revert_s: int, steps: StepProgress | None) -> None:
        def seen(status: TxnStatus) -> None:
            if steps is None or not status.steps_total:
                return
            if status.state == "committing":
                steps(status.steps_done, status.steps_total)
            elif status.state == "pendingConfirm":  # done: all of its steps
                steps(status.steps_total, status.steps_total)

        await self._op("commit", revert_s=revert_s, on_status=seen)

    async def verify(self) -> None:
        status = await self._status()
        if status.state != "pendingConfirm" or status.running_version != status.candidate_version:
            raise HostFailed(
                self.host,
                f"after commit the agent is {status.state} running version "
                f"{status.running_version}, not {status.candidate_version}",
                "E741",
            )

    async def rollback(self) -> None:
        status = await self._status()
        try:
            if status.state in ("pendingConfirm", "committing", "rollingBack"):
                if status.state == "committing":
                    status = await self.client.wait("commit", OPERATION_TIMEOUT_S)
                await self._op("rollback")
            elif status.state == "staged":
                await self._op("discard")
        except AgentError as exc:
            raise _failed(exc) from exc
        finally:
            self.known.remember(self.host, status, None, None)

    async def confirm(self) -> None:
        status = await self._op("confirm")
        self.known.remember(self.host, status, self._wanted, self._wanted)

    async def hand_over(self, topology: str, vm: str) -> int:
        """The VM let go to another host of this kernel (NETMANAGER-MIB's nmTxnHandOver;
        the agent answers once done)."""
        async with self.client:
            return await self._hand_over(topology, vm)

    async def _hand_over(self, topology: str, vm: str) -> int:
        from pysnmp.proto import rfc1902

        from netmanager.snmp import mib

        self.known.remember(self.host, await self._status(), None, None)  # its running changes
        try:
            await self.client.set(
                [
                    (
                        (*mib.oid_of("nmTxnHandOver"), 0),
                        rfc1902.OctetString(f"{topology} {vm}".encode()),
                    )
                ]
            )
        except AgentError as exc:
            try:
                (why,) = await self.client.get((*mib.oid_of("nmTxnLastError"), 0))
                exc = AgentError(
                    exc.host, bytes(why.asOctets()).decode("utf-8", "replace") or str(exc)
                )
            except AgentError:
                pass  # why it refused stays the SET's error
            raise _failed(exc) from exc
        return 1

    async def migrate_domain(
        self, request: MigrationRequest, started: Callable[[], None] = lambda: None
    ) -> MigrationResult:
        """Live-migrate one of the host's libvirt domains: the agent makes libvirt's call
        (NETMANAGER-MIB's nmTxnMigrate), ``started`` is told once it sends (the target's
        libvirt has the incoming domain then), and its end is waited for
        (nmTxnMigrateState, each GET answered when the state changes or after a second).
        MigrationError saying where the domain is when it failed."""
        async with self.client:
            return await self._migrate_domain(request, started)

    async def _migrate_domain(
        self, request: MigrationRequest, started: Callable[[], None]
    ) -> MigrationResult:
        from pysnmp.proto import rfc1902

        from netmanager.hypervisor.migration import (
            MIGRATION_WAIT_S,
            MigrationError,
            MigrationResult,
            Where,
        )
        from netmanager.snmp import mib

        written = json.dumps(request.as_json(), sort_keys=True).encode()
        state_oid = (*mib.oid_of("nmTxnMigrateState"), 0)
        request_oid = (*mib.oid_of("nmTxnMigrate"), 0)

        def octets(value: Any) -> bytes:
            """An OCTET STRING's bytes; b"" for noSuchObject (an agent without the MIB's
            migration objects: of an older netmanager)."""
            try:
                return bytes(value.asOctets())
            except AttributeError:
                return b""

        def state_of(raw: Any) -> dict[str, Any]:
            try:
                doc = json.loads(octets(raw))
            except ValueError:
                doc = None
            return doc if isinstance(doc, dict) else {"state": "unreadable"}

        async def state() -> dict[str, Any]:
            (raw,) = await self.client.get(state_oid)
            return state_of(raw)

        try:
            await self.client.set([(request_oid, rfc1902.OctetString(written))])
        except AgentError as exc:
            # the SET sent again after a lost answer finds its own migration running
            try:
                raw, again, why = await self.client.get(
                    state_oid, request_oid, (*mib.oid_of("nmTxnLastError"), 0)
                )
                now = state_of(raw)
            except AgentError:
                # not known whether the SET arrived: the migration may run
                raise MigrationError(
                    f"host '{self.host}' could not be asked to migrate: {exc}", Where.UNKNOWN
                ) from exc
            if not (now.get("state") == "running" and octets(again) == written):
                reason = octets(why).decode("utf-8", "replace") or str(exc)
                raise MigrationError(
                    f"host '{self.host}' did not start the migration: {reason}", Where.SOURCE
                ) from exc
        told = False
        deadline = time.monotonic() + MIGRATION_WAIT_S
        while True:
            try:
                now = await state()
            except AgentError as exc:
                raise MigrationError(
                    f"host '{self.host}' could not be asked how the migration went: {exc}",
                    Where.UNKNOWN,
                ) from exc
            if now.get("domain") != request.domain or now.get("state") not in (
                "running",
                "migrated",
                "failed",
            ):
                raise MigrationError(
                    f"host '{self.host}' lost track of the migration (its agent restarted?): {now}",
                    Where.UNKNOWN,
                )
            if now.get("transferring") and not told:
                started()
                told = True
            if now["state"] == "migrated":
                return MigrationResult(
                    request.domain, request.dest_uri, float(now.get("duration_s", 0.0))
                )
            if now["state"] == "failed":
                try:
                    where = Where(str(now.get("where")))
                except ValueError:
                    where = Where.UNKNOWN
                raise MigrationError(str(now.get("error", "")), where)
            if time.monotonic() > deadline:
                raise MigrationError(
                    f"the migration did not end within {MIGRATION_WAIT_S:.0f} s", Where.UNKNOWN
                )


def _failed(exc: AgentError) -> HostFailed:
    message = str(exc).removeprefix(f"host '{exc.host}': ")
    return HostFailed(exc.host, message, "E711" if exc.undo_failed else "E741")


__all__ = ["OPERATION_TIMEOUT_S", "AgentTransport", "Callable", "KnownCandidates"]
