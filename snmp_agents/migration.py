"""Live migrations made by this host's agent: NETMANAGER-MIB's ``nmTxnMigrate`` and
``nmTxnMigrateState`` (issue #17).

On a libvirt host the domain's libvirt connection is this host's (its keeper holds it),
so the source host's agent makes libvirt's call, never the manager: a manager writes a
:class:`~netmanager.hypervisor.migration.MigrationRequest` (JSON) to ``nmTxnMigrate``;
the request is checked (it parses, the domain is one netmanager defined here, no other
migration and no commit runs) and the response comes as soon as the migration started,
in a thread of its own (the backend's thread stays free, libvirt's call takes seconds to
minutes).  ``nmTxnMigrateState`` says how it goes: ``running``, with ``transferring``
once libvirt's job has sent memory (the target's libvirt then has the incoming domain,
its taps made: the target's host may take them in, before the switch-over), then
``migrated`` or ``failed``; a GET asking for it while the migration runs is answered
when the state changes, or after at most a second (:meth:`Migrations.waiting`), so that a
manager follows it without polling hard and no SNMP request outlives its timeout.  The target of the migration is opened by this host's
libvirt (peer-to-peer) or by its keeper, with libvirt's own authentication (SSH keys,
TLS certificates): the manager needs no access to either host's libvirt.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pysnmp.proto import rfc1902

from netmanager.host.protocol import BackendError
from netmanager.hypervisor.migration import MigrationError, MigrationRequest, MigrationResult
from netmanager.snmp import mib
from netmanager.snmp.tables import SetError
from snmp_agents.oidtree import Oid

log = logging.getLogger(__name__)

#: the longest request written to nmTxnMigrate (its SYNTAX's size)
MAX_REQUEST = 2048
#: the longest state served (nmTxnMigrateState's size)
MAX_STATE = 1024
#: how often libvirt's job is asked whether the migration sends yet
JOB_POLL_S = 0.02


def parse_request(raw: bytes) -> MigrationRequest:
    """A request as written to nmTxnMigrate; ValueError saying what is wrong."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"not a JSON object: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    try:
        request = MigrationRequest.from_json(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a migration request: {exc!r}") from exc
    if not request.domain or not request.dest_uri or "://" not in request.dest_uri:
        raise ValueError("a migration request names a domain and a libvirt URI (dest_uri)")
    if request.bandwidth_mibps < 0 or request.max_downtime_ms < 0:
        raise ValueError("bandwidth_mibps and max_downtime_ms are 0 or more")
    return request


class Migrations:
    """The migrations of one host.  ``migrate``: the backend's ``migrate_domain`` (checks
    the domain and makes libvirt's call, in the calling thread); ``committing``: whether
    a transaction changes the host now (no migration starts meanwhile)."""

    def __init__(
        self,
        migrate: Callable[[MigrationRequest], MigrationResult],
        committing: Callable[[], bool] = lambda: False,
        on_change: Callable[[], None] = lambda: None,
        job: Callable[[str], Mapping[str, int]] | None = None,
    ) -> None:
        self.migrate = migrate
        self.committing = committing
        self.on_change = on_change
        #: the backend's migration_job (None: the target is told at once)
        self.job = job
        self.oid = (*mib.oid_of("nmTxnMigrate"), 0)
        self.written = b""
        self.state: dict[str, Any] = {"state": "idle"}
        self._task: asyncio.Future[MigrationResult] | None = None
        self._watch: asyncio.Task[None] | None = None
        #: resolved at the next change of the state (what a deferred GET waits for)
        self._changed: asyncio.Future[None] | None = None
        # libvirt's call blocks its thread for the whole migration; its job is asked in
        # another
        self._executor = ThreadPoolExecutor(2, thread_name_prefix="nm-migrate")

    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def waiting(self) -> asyncio.Future[None] | None:
        """While a migration runs, the next change of its state (a GET of
        nmTxnMigrateState waits for it); None otherwise."""
        if not self.running():
            return None
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        return self._changed

    def _set_state(self, state: dict[str, Any]) -> None:
        self.state = state
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self.on_change()

    def state_text(self) -> bytes:
        text = json.dumps(self.state, sort_keys=True).encode("utf-8")
        if len(text) <= MAX_STATE:
            return text
        clipped = dict(self.state, error=str(self.state.get("error", ""))[:600] + "...")
        return json.dumps(clipped, sort_keys=True).encode("utf-8")[:MAX_STATE]

    def handle_set(self, varbinds: Sequence[tuple[int, Oid, Any]]) -> None:
        """Check a SET of nmTxnMigrate and start the migration (SetError: nothing started)."""
        if len(varbinds) != 1:
            raise SetError("inconsistentValue", 0, "nmTxnMigrate goes alone in its request")
        position, _, value = varbinds[0]
        if value.tagSet != rfc1902.OctetString.tagSet:
            raise SetError("wrongType", position, "nmTxnMigrate takes an OCTET STRING")
        raw = bytes(value.asOctets())
        if len(raw) > MAX_REQUEST:
            raise SetError("wrongLength", position, f"nmTxnMigrate: over {MAX_REQUEST} bytes")
        try:
            request = parse_request(raw)
        except ValueError as exc:
            raise SetError("wrongValue", position, f"nmTxnMigrate: {exc}") from exc
        if self.running():
            raise SetError(
                "resourceUnavailable",
                position,
                f"domain '{self.state.get('domain')}' is migrating; one migration at a time",
            )
        if self.committing():
            raise SetError(
                "resourceUnavailable", position, "a transaction is changing this host now"
            )
        loop = asyncio.get_running_loop()
        self.written = raw
        base = {"state": "running", "domain": request.domain, "dest_uri": request.dest_uri}
        task = loop.run_in_executor(self._executor, self.migrate, request)
        self._task = task
        task.add_done_callback(lambda done: self._ended(request, done))
        if self.job is None:
            self._set_state({**base, "transferring": True})
        else:
            self._set_state(base)
            self._watch = loop.create_task(self._watch_job(request, base))

    async def _watch_job(self, request: MigrationRequest, base: dict[str, Any]) -> None:
        """``transferring`` once libvirt's job has sent anything (or once its job cannot
        be asked: the target is then told at once, and waits for the taps itself)."""
        assert self.job is not None
        loop = asyncio.get_running_loop()
        while self.running():
            try:
                stats = await loop.run_in_executor(self._executor, self.job, request.domain)
            except Exception as exc:
                log.info("migration of %s: its job cannot be asked (%s)", request.domain, exc)
                break
            if stats.get("memory_processed", 0) > 0 or stats.get("data_processed", 0) > 0:
                break
            await asyncio.sleep(JOB_POLL_S)
        if self.running():
            self._set_state({**base, "transferring": True})

    def _ended(self, request: MigrationRequest, done: asyncio.Future[MigrationResult]) -> None:
        base = {"domain": request.domain, "dest_uri": request.dest_uri}
        try:
            result = done.result()
        except MigrationError as exc:
            self.state = {**base, "state": "failed", "where": str(exc.where), "error": exc.reason}
        except BackendError as exc:  # refused before libvirt was asked: nothing moved
            self.state = {**base, "state": "failed", "where": "source", "error": str(exc)}
        except Exception as exc:  # the keeper's own failure: where the domain is is unknown
            log.exception("migration of %s failed", request.domain)
            self.state = {**base, "state": "failed", "where": "unknown", "error": str(exc)}
        else:
            self.state = {**base, "state": "migrated", "duration_s": round(result.duration_s, 4)}
        log.info("migration of %s: %s", request.domain, self.state["state"])
        self._set_state(self.state)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
