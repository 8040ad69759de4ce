"""The transaction state machine over the in-memory backend, without SNMP on the wire."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pysnmp.proto import rfc1902

from netmanager.host.memory import MemoryBackend
from netmanager.snmp import mib
from netmanager.snmp.tables import SetError
from snmp_agents.configstore import ConfigStore
from snmp_agents.transaction import OPERATION_VALUE, Result, State, Transaction

LAN = (3, *b"lan")
PORT = (3, *b"vm1", *LAN)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


class Host:
    """A Transaction with its store, backend and notifications, on one state directory."""

    def __init__(self, state_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.backend = MemoryBackend(state_dir / "backend.json")
        self.store = ConfigStore()
        self.notes: list[str] = []
        self.executor = ThreadPoolExecutor(1)
        self.txn = Transaction(
            self.store,
            self.backend,
            state_dir,
            self.executor,
            notify=lambda name, vbs: self.notes.append(name),
            clock=clock,
        )

    def set(self, *varbinds: tuple[tuple[int, ...], Any]) -> None:
        self.txn.handle_set([(i, oid, v) for i, (oid, v) in enumerate(varbinds)])

    def op(self, name: str, revert: int | None = None) -> None:
        vbs: list[tuple[tuple[int, ...], Any]] = []
        if revert is not None:
            vbs.append((self.txn.oid_timeout, rfc1902.Unsigned32(revert)))
        vbs.append((self.txn.oid_operation, rfc1902.Integer32(OPERATION_VALUE[name])))
        self.set(*vbs)

    async def op_done(self, name: str, revert: int | None = None) -> None:
        self.op(name, revert)
        await self.txn.idle()

    def load(self) -> None:
        col = mib.oid_of
        self.set(
            ((*col("nmNetworkRowStatus"), *LAN), rfc1902.Integer32(4)),
            ((*col("nmNetworkEncap"), *LAN), rfc1902.Integer32(2)),
            ((*col("nmNetworkSegmentId"), *LAN), rfc1902.Unsigned32(10100)),
        )
        self.set(
            ((*col("nmPortRowStatus"), *PORT), rfc1902.Integer32(4)),
            ((*col("nmPortAddress"), *PORT), rfc1902.IpAddress("10.0.0.1")),
            ((*col("nmPortPrefixLength"), *PORT), rfc1902.Unsigned32(24)),
        )


def refusal(host: Host, name: str) -> str:
    with pytest.raises(SetError) as err:
        host.op(name)
    assert err.value.status == "inconsistentValue"
    return host.txn.last_error


def test_stage_commit_confirm(tmp_path: Path) -> None:
    async def scenario() -> None:
        host = Host(tmp_path)
        await host.txn.start()
        host.load()
        assert host.txn.candidate_version == 2
        await host.op_done("stage")
        assert host.txn.state == State.staged
        assert [c.object for c in host.txn.changes] == ["network lan", "port vm1/lan"]
        await host.op_done("commit", revert=60)
        assert host.txn.state == State.pendingConfirm
        assert 59 <= host.txn.revert_remaining() <= 60
        assert host.backend.undo_point is not None
        # repeats of the operation in force change nothing
        await host.op_done("commit")
        await host.op_done("confirm")
        await host.op_done("confirm")
        assert host.txn.state == State.idle and host.txn.last_result == Result.success
        assert host.backend.log == ["commit", "confirm"]
        assert host.backend.applied.networks[0].segment_id == 10100
        assert host.txn.running_version == host.txn.candidate_version

    run(scenario())


def test_refusals_explain_themselves(tmp_path: Path) -> None:
    async def scenario() -> None:
        host = Host(tmp_path)
        await host.txn.start()
        assert "stage first" in refusal(host, "commit")
        assert "no commit to confirm" in refusal(host, "confirm")
        assert "discard drops a candidate" in refusal(host, "rollback")
        # a port on a network nobody defined: stage refuses at once
        col = mib.oid_of
        host.set(
            ((*col("nmPortRowStatus"), *PORT), rfc1902.Integer32(4)),
            ((*col("nmPortAddress"), *PORT), rfc1902.IpAddress("10.0.0.1")),
            ((*col("nmPortPrefixLength"), *PORT), rfc1902.Unsigned32(24)),
        )
        assert "unknown network 'lan'" in refusal(host, "stage")
        assert host.txn.state == State.idle

    run(scenario())


def test_candidate_is_locked_while_a_commit_is_pending(tmp_path: Path) -> None:
    async def scenario() -> None:
        host = Host(tmp_path)
        await host.txn.start()
        host.load()
        await host.op_done("stage")
        await host.op_done("commit", revert=60)
        before = host.store.to_json()
        with pytest.raises(SetError) as err:
            host.set(
                ((*mib.oid_of("nmNetworkSegmentId"), *LAN), rfc1902.Unsigned32(7)),
            )
        assert (err.value.status, err.value.position) == ("inconsistentValue", 0)
        assert host.store.to_json() == before
        await host.op_done("rollback")
        assert host.txn.state == State.idle
        assert host.backend.applied.networks == ()
        assert host.store.candidate().networks == ()  # tables show the running config
        await host.op_done("rollback")  # repeated: harmless
        assert host.backend.log == ["commit", "rollback"]

    run(scenario())


def test_editing_a_staged_candidate_drops_the_stage(tmp_path: Path) -> None:
    async def scenario() -> None:
        host = Host(tmp_path)
        await host.txn.start()
        host.load()
        await host.op_done("stage")
        host.set(((*mib.oid_of("nmNetworkBridge"), *LAN), rfc1902.OctetString(b"br-lan")))
        assert host.txn.state == State.idle and host.txn.changes == []
        assert "stage first" in refusal(host, "commit")

    run(scenario())


def test_discard_restores_the_running_configuration(tmp_path: Path) -> None:
    async def scenario() -> None:
        host = Host(tmp_path)
        await host.txn.start()
        host.load()
        await host.op_done("discard")
        assert host.store.candidate().networks == ()
        assert host.txn.last_result == Result.success

    run(scenario())


def test_restart_after_the_deadline_reverts(tmp_path: Path) -> None:
    async def first() -> None:
        host = Host(tmp_path)
        await host.txn.start()
        host.load()
        await host.op_done("stage")
        await host.op_done("commit", revert=100)
        assert host.txn.state == State.pendingConfirm

    async def later() -> None:
        host = Host(tmp_path, clock=lambda: time.time() + 200)  # the agent was down 200 s
        await host.txn.start()
        await host.txn.idle()
        assert host.txn.state == State.idle
        assert host.txn.last_result == Result.reverted
        assert host.backend.applied.networks == ()
        assert host.notes == ["nmTxnReverted"]

    run(first())
    run(later())


def test_restart_within_the_deadline_keeps_waiting(tmp_path: Path) -> None:
    async def first() -> None:
        host = Host(tmp_path)
        await host.txn.start()
        host.load()
        await host.op_done("stage")
        await host.op_done("commit", revert=100)

    async def later() -> None:
        host = Host(tmp_path)
        await host.txn.start()
        assert host.txn.state == State.pendingConfirm
        assert 90 <= host.txn.revert_remaining() <= 100
        await host.op_done("confirm")
        assert host.backend.applied.networks[0].name == "lan"
        assert host.backend.undo_point is None

    run(first())
    run(later())


def test_failed_commit_reports_and_notifies(tmp_path: Path) -> None:
    async def scenario() -> None:
        host = Host(tmp_path)
        host.backend.fail = frozenset({"commit"})
        await host.txn.start()
        host.load()
        await host.op_done("stage")
        await host.op_done("commit")
        assert host.txn.state == State.idle and host.txn.last_result == Result.failed
        assert "fault injected" in host.txn.last_error
        assert host.notes == ["nmTxnFailed"]
        assert host.backend.applied.networks == ()

    run(scenario())


def test_a_backend_s_unexpected_exception_fails_the_operation_instead_of_hanging_it(
    tmp_path: Path,
) -> None:
    """A backend bug (an exception the host contract does not name) fails the stage or
    commit as any failure does: the transaction leaves staging/committing, reports the
    exception, and the manager waiting on it is answered."""

    async def scenario() -> None:
        host = Host(tmp_path)
        await host.txn.start()
        host.load()

        def broken(*_args: object) -> object:
            raise ValueError("Expecting value: line 1 column 1 (char 0)")

        real_commit = host.backend.commit
        host.backend.stage = broken  # type: ignore[method-assign,assignment]
        await host.op_done("stage")
        assert host.txn.state == State.idle and host.txn.last_result == Result.failed
        assert host.txn.last_error == "ValueError: Expecting value: line 1 column 1 (char 0)"
        del host.backend.stage
        await host.op_done("stage")
        host.backend.commit = broken  # type: ignore[method-assign]
        await host.op_done("commit")
        assert host.txn.state == State.idle and host.txn.last_result == Result.failed
        assert "ValueError" in host.txn.last_error
        host.backend.commit = real_commit  # type: ignore[method-assign]

    run(scenario())


def test_restart_after_a_commit_that_finished_unrecorded_rolls_back(tmp_path: Path) -> None:
    """The backend committed, the agent died before it wrote pendingConfirm down."""

    async def first() -> None:
        host = Host(tmp_path)
        await host.txn.start()
        host.load()
        await host.op_done("stage")
        await host.op_done("commit", revert=100)
        doc = json.loads((tmp_path / "txn.json").read_text())
        doc["state"] = "committing"
        (tmp_path / "txn.json").write_text(json.dumps(doc))

    async def later() -> None:
        host = Host(tmp_path)
        await host.txn.start()
        await host.txn.idle()
        assert host.txn.state == State.idle and host.txn.last_result == Result.failed
        assert "restarted during the commit" in host.txn.last_error
        assert host.backend.applied.networks == ()
        assert host.store.candidate().networks, "the manager's candidate stays for a re-apply"

    run(first())
    run(later())


def test_candidate_edits_are_written_together_and_before_an_operation(tmp_path: Path) -> None:
    """SET edits reach the disk as one write (candidate and version agreeing), within
    FLUSH_DELAY_S or before any operation, and come back after a restart."""
    from snmp_agents.transaction import FLUSH_DELAY_S

    def on_disk() -> int:
        return int(json.loads((tmp_path / "txn.json").read_text())["candidate_version"])

    async def scenario() -> None:
        host = Host(tmp_path)
        await host.txn.start()
        host.load()  # two SETs
        assert host.txn.candidate_version == 2
        assert on_disk() == 0, "written at once, not together"
        await asyncio.sleep(FLUSH_DELAY_S + 0.3)
        assert on_disk() == 2
        # an edit then an operation: written before the operation starts
        host.set(((*mib.oid_of("nmNetworkSegmentId"), *LAN), rfc1902.Unsigned32(7)))
        await host.op_done("stage")
        assert on_disk() == 3

    async def later() -> None:
        host = Host(tmp_path)
        await host.txn.start()
        assert host.txn.candidate_version == 3
        assert host.store.candidate().networks[0].segment_id == 7

    run(scenario())
    run(later())


def test_stage_adds_the_rows_the_documents_imply(tmp_path: Path) -> None:
    """A manager sends a topology's documents only; stage adds the structured rows they
    imply to the candidate (a new version, walked like any other), and a second stage
    with nothing edited is the harmless repeat."""
    import netmanager
    from netmanager.agentctl.client import candidate_pdus
    from netmanager.compile.configs import compile_topology
    from netmanager.host.rows import candidate_from_host_configs

    examples = Path(__file__).resolve().parents[2] / "examples" / "two-hosts"
    model = netmanager.load(examples / "real.xml", examples / "virtual.xml")
    want = candidate_from_host_configs([compile_topology(model, netmanager.map(model))["host1"]])

    async def scenario() -> None:
        host = Host(tmp_path)
        await host.txn.start()
        for pdu in candidate_pdus(want, host.store.candidate(), implied=False):
            host.set(*pdu)
        assert not host.store.candidate().ports
        sent = host.txn.candidate_version
        await host.op_done("stage")
        assert host.txn.state == State.staged, host.txn.last_error
        assert host.store.candidate() == want
        assert host.txn.candidate_version == sent + 1 == host.txn.staged_version
        host.op("stage")  # nothing edited, nothing missing: already staged
        assert host.txn.candidate_version == sent + 1 and host.txn.state == State.staged
        await host.op_done("commit", revert=0)
        assert host.backend.applied == want

    run(scenario())
