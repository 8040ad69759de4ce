"""One contract, one suite: every way of reaching a host passes the same tests.

The transaction (netmanager/apply/commit.py) asks each host through a
:class:`~netmanager.apply.transport.HostTransport`; behind it are three implementations
of the host contract (netmanager/host/protocol.py), all run here by the same tests, as
NAPALM runs one suite against every driver:

* ``memory``: the in-memory fake (``MemoryBackend``) in this process;
* ``kernel``: the kernel backend in this process (``--local``), over host1's dom0 of
  examples/two-hosts, built for the test;
* ``agent``: the same host's ``netmanager-agent`` (kernel backend) through its SNMP client
  (``AgentTransport``: SNMPv3 authPriv SETs, stage, commit with a revert timer...).

The candidate is host1's of examples/two-hosts.  Where the host is a kernel, the tests
also read it through ``ip -j``, ``tc -j`` and the save tools (tests/kernelstate.py): what
a stage, a discard, a plan or a refusal leaves must be exactly what was there.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from netmanager.agentctl import processes as agent_procs
from netmanager.apply import topology
from netmanager.apply.agent_transport import AgentTransport, KnownCandidates
from netmanager.apply.local import LocalTransport
from netmanager.apply.prepare import Deployment, prepare
from netmanager.apply.transport import HostFailed, HostTransport, PendingCommit
from netmanager.host.candidate import Candidate
from netmanager.host.memory import MemoryBackend
from netmanager.host.rows import PortKey, candidate_from_host_configs, host_configs_from_candidate
from tests import kernelstate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
REAL = EXAMPLES / "two-hosts/real.xml"
VIRTUAL = EXAMPLES / "two-hosts/virtual.xml"
HOST = "host1"

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


@dataclass
class Host:
    """One implementation of the contract, ready to be reached."""

    kind: str
    #: a new transport to the host, as a new manager process would make one
    reach: Callable[[], HostTransport]
    #: the host's kernel read without netmanager (None for the fake)
    snapshot: Callable[[], Any]
    candidate: Candidate  # host1's of examples/two-hosts
    faster: Candidate  # the same with its 10 Mbit/s link at 20 Mbit/s


def _candidates(tmp_path: Path) -> tuple[Deployment, Candidate, Candidate]:
    faster_xml = tmp_path / "faster.xml"
    faster_xml.write_text(VIRTUAL.read_text().replace('bandwidth="10Mbit"', 'bandwidth="20Mbit"'))
    deployment = prepare(REAL, VIRTUAL)
    faster = prepare(REAL, faster_xml)
    return (
        deployment,
        candidate_from_host_configs([deployment.configs[HOST]]),
        candidate_from_host_configs([faster.configs[HOST]]),
    )


def _needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to build namespaces")


@pytest.fixture(
    params=[
        "memory",
        pytest.param("kernel", marks=pytest.mark.privileged),
        pytest.param("agent", marks=pytest.mark.privileged),
    ]
)
def host(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> Iterator[Host]:
    kind = request.param
    if kind != "memory":
        _needs_root()
    deployment, candidate, faster = _candidates(tmp_path)
    if kind == "memory":
        path = tmp_path / "memory.json"
        yield Host(
            kind,
            lambda: LocalTransport(HOST, MemoryBackend(path)),
            lambda: None,
            candidate,
            faster,
        )
        return
    infra = deployment.infrastructure
    topology.build_infrastructure(infra)
    dom0 = topology.dom0s(infra, [HOST])[HOST]

    def snapshot() -> Any:
        return kernelstate.snapshot(prefix)

    if kind == "kernel":
        yield Host(kind, lambda: LocalTransport.kernel(HOST, dom0), snapshot, candidate, faster)
        return
    infos = agent_procs.ensure_agents(deployment.model.real, {HOST: dom0})

    def reach() -> HostTransport:
        (client,) = topology.clients(deployment.model.real, infos).values()
        return AgentTransport(client, KnownCandidates(agent_procs.agents_dir(), [HOST]))

    yield Host(kind, reach, snapshot, candidate, faster)


async def _session(host: Host, body: Callable[[HostTransport], Awaitable[T]]) -> T:
    transport = host.reach()
    await transport.open()
    try:
        return await body(transport)
    finally:
        transport.close()


def _commit(host: Host, candidate: Candidate) -> None:
    """Stage, commit, verify and confirm ``candidate``, as an apply does."""

    async def body(t: HostTransport) -> None:
        await t.begin(commit=True)
        assert await t.stage(candidate) > 0
        await t.commit(30, None)
        await t.verify()
        await t.confirm()

    run(_session(host, body))


def _staged(host: Host, candidate: Candidate, *, commit: bool = True) -> int:
    """How many changes ``candidate`` would make now (staged, then discarded)."""

    async def body(t: HostTransport) -> int:
        await t.begin(commit=commit)
        count = await t.stage(candidate)
        await t.discard()
        return count

    return run(_session(host, body))


def test_stage_shows_without_changing_commit_builds_and_a_second_stage_finds_nothing(
    host: Host,
) -> None:
    """Stage lists what commit will do and changes nothing (a discard leaves the host as
    it was); commit, verify and confirm build it; staged again, the candidate needs
    nothing; the empty candidate takes everything away again."""
    before = host.snapshot()

    async def look(t: HostTransport) -> tuple[int, list[str]]:
        await t.begin(commit=True)
        count = await t.stage(host.candidate)
        signs = [c.sign for c in await t.changes()]
        await t.discard()
        return count, signs

    count, signs = run(_session(host, look))
    assert count > 0 and len(signs) == count and set(signs) == {"+"}
    assert host.snapshot() == before  # staged and discarded: nothing changed
    assert _staged(host, host.candidate) == count

    _commit(host, host.candidate)
    built = host.snapshot()
    if before is not None:
        assert built != before
    assert _staged(host, host.candidate) == 0
    assert host.snapshot() == built

    _commit(host, Candidate())
    assert _staged(host, Candidate()) == 0
    assert host.snapshot() == before


def test_a_changed_candidate_changes_only_what_differs(host: Host) -> None:
    _commit(host, host.candidate)
    first = _staged(host, Candidate())  # what the whole candidate amounts to, removed
    changed = _staged(host, host.faster)
    assert 0 < changed < first
    _commit(host, host.faster)
    assert _staged(host, host.faster) == 0
    assert _staged(host, host.candidate) > 0  # and back


def test_an_unconfirmed_commit_is_left_alone_by_a_plan_and_rolled_back_by_an_apply(
    host: Host,
) -> None:
    """A manager that died between commit and confirm: the next plan (``begin`` without
    commit) is refused on that host and changes nothing; the next apply rolls the commit
    back first, and the host is as before it."""
    before = host.snapshot()

    async def commit_only(t: HostTransport) -> None:
        await t.begin(commit=True)
        await t.stage(host.candidate)
        await t.commit(600, None)
        await t.verify()

    run(_session(host, commit_only))
    committed = host.snapshot()

    async def plan(t: HostTransport) -> None:
        await t.begin(commit=False)

    with pytest.raises(PendingCommit):
        run(_session(host, plan))
    assert host.snapshot() == committed

    async def apply_begins(t: HostTransport) -> None:
        await t.begin(commit=True)

    run(_session(host, apply_begins))
    assert host.snapshot() == before
    assert _staged(host, host.candidate) > 0


def test_a_candidate_the_host_cannot_read_is_refused_and_changes_nothing(host: Host) -> None:
    _commit(host, host.candidate)
    built = host.snapshot()
    chunk = host.candidate.documents[0]
    # base64 (as the MIB's column takes it) of what is no zlib stream
    broken = replace(host.candidate, documents=(replace(chunk, data="Z2FyYmFnZQ=="),))

    async def stage_broken(t: HostTransport) -> None:
        await t.begin(commit=True)
        await t.stage(broken)

    with pytest.raises(HostFailed, match=r"unreadable document|document chunks"):
        run(_session(host, stage_broken))
    assert host.snapshot() == built
    assert _staged(host, host.candidate) == 0


def _without_qdiscs(state: Any) -> Any:
    """A snapshot less every namespace's queueing disciplines."""
    return {
        **state,
        "namespaces": {
            name: {k: v for k, v in ns.items() if k != "qdiscs"}
            for name, ns in state["namespaces"].items()
        },
    }


def test_a_stage_scoped_to_ports_changes_their_shaping_only_and_refuses_more(
    host: Host,
) -> None:
    """``stage(candidate, ports)``: only those VM ports' links and what hangs on them are
    planned and changed — their qdiscs, in place — and the commit, verify, confirm and a
    rollback keep to them; a candidate that differs in anything else is refused and
    changes nothing."""
    _commit(host, host.candidate)
    built = host.snapshot()
    (config,) = host_configs_from_candidate(host.faster)
    ports = [(config.topology, p.vm, p.network) for p in config.ports]

    def scoped(candidate: Candidate, named: list[PortKey]) -> int:
        async def body(t: HostTransport) -> int:
            await t.begin(commit=True)
            count = await t.stage(candidate, named)
            await t.discard()
            return count

        return run(_session(host, body))

    for wrong, named in (
        (Candidate(), ports),  # everything goes: more than shaping
        (host.faster, [(config.topology, "nosuchvm", ports[0][2])]),
        *([(host.faster, ports[:1])] if len(ports) > 1 else []),  # other ports change too
    ):
        with pytest.raises(HostFailed, match=r"changes|no port|would go"):
            scoped(wrong, named)
        assert host.snapshot() == built

    count = scoped(host.faster, ports)
    assert count == _staged(host, host.faster) > 0
    assert host.snapshot() == built

    async def commit_scoped(t: HostTransport, candidate: Candidate, confirm: bool) -> None:
        await t.begin(commit=True)
        assert await t.stage(candidate, ports) == count
        await t.commit(600, None)
        await t.verify()
        if confirm:
            await t.confirm()

    run(_session(host, lambda t: commit_scoped(t, host.faster, True)))
    assert _staged(host, host.faster) == 0
    faster = host.snapshot()
    if built is not None:
        assert faster != built and _without_qdiscs(faster) == _without_qdiscs(built)
    # back, unconfirmed: the next apply's begin rolls it back, in the same scope
    run(_session(host, lambda t: commit_scoped(t, host.candidate, False)))
    assert host.snapshot() == built
    run(_session(host, lambda t: t.begin(commit=True)))
    assert host.snapshot() == faster
    assert _staged(host, host.faster) == 0
