"""The transaction across a topology's hosts, written once for every transport
(NAPALM's commit-confirm, seed 002's manager driving every host at once):

1. **begin** on every host: settle, and roll back what an earlier apply left unfinished;
2. **stage** each host's whole candidate: the host computes its changes, touching nothing;
3. **commit** on every host that has changes (with a revert timer where the host has one);
4. **verify** that every committed host runs its candidate, pending confirmation;
5. **confirm** everywhere.

A failure before the confirmations discards the staged candidates and rolls back every
host that committed, so nothing is left half-configured; an undo that fails is reported
(E711), never hidden.  Without ``commit`` the transaction is a plan: stage, read the
changes, discard — no host changes, and a host with an unfinished commit is not asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from netmanager.apply.transport import HostFailed, HostTransport, PendingCommit
from netmanager.errors import ApplyFailed, Diagnostic, Loc, Severity
from netmanager.host.candidate import Candidate, Change
from netmanager.host.protocol import Adoption
from netmanager.host.rows import PortKey
from netmanager.kernel.journal import StepProgress

T = TypeVar("T")
#: seconds a host waits for the confirmation before it reverts a commit by itself
REVERT_S = 120

Progress = Callable[[str], None]
#: called with (event, host) as the transaction goes: "staged", "committing", ...
Hook = Callable[[str, str], None]


def quiet(_: str) -> None:
    """A :data:`Progress` that says nothing."""
    return None


def no_hook(_event: str, _host: str) -> None:
    """A :data:`Hook` that does nothing."""
    return None


async def each(
    hosts: Mapping[str, HostTransport], work: Callable[[str, HostTransport], Awaitable[T]]
) -> tuple[dict[str, T], dict[str, HostFailed]]:
    """``work`` on every host at once; (results, failures) by host."""
    names = sorted(hosts)
    results = await asyncio.gather(*(work(h, hosts[h]) for h in names), return_exceptions=True)
    done: dict[str, T] = {}
    failed: dict[str, HostFailed] = {}
    for host, result in zip(names, results, strict=True):
        if isinstance(result, HostFailed):
            failed[host] = result
        elif isinstance(result, OSError | asyncio.TimeoutError):
            failed[host] = HostFailed(host, str(result) or type(result).__name__, "E741")
        elif isinstance(result, BaseException):
            raise result
        else:
            done[host] = result
    return done, failed


@dataclass
class TransactionResult:
    #: changes staged per host
    changes: dict[str, int]
    #: the staged changes themselves, per host (read for a plan only)
    lines: dict[str, list[Change]]
    #: hosts a plan did not ask, with why (something an earlier apply left unfinished)
    pending: dict[str, str] = field(default_factory=dict)


def failure(
    topology: str, failed: Mapping[str, HostFailed], undo_failed: Sequence[HostFailed] = ()
) -> ApplyFailed:
    """The diagnostics of a failed transaction: one per host that failed, one per undo
    that failed (the hint says what is true of the hosts)."""
    undone = not undo_failed and not any(e.code == "E711" for e in failed.values())
    diagnostics = [
        Diagnostic(
            Severity.ERROR,
            exc.code,
            f"{topology}: {exc}",
            Loc("netmanager"),
            "every host was rolled back: nothing was left changed" if undone else "",
        )
        for _, exc in sorted(failed.items())
    ]
    diagnostics += [
        Diagnostic(
            Severity.ERROR,
            "E711",
            f"an undo failed, the host is NOT as it was: {exc}",
            Loc("netmanager"),
            "a host with an agent reverts an unconfirmed commit by itself; "
            "netmanager plan shows what differs",
        )
        for exc in undo_failed
    ]
    return ApplyFailed("apply", diagnostics)


def _summed(steps: StepProgress | None) -> Callable[[str], StepProgress | None]:
    """Per-host step callbacks whose sum goes to ``steps`` (one bar for every host)."""
    of: dict[str, tuple[int, int]] = {}

    def host(name: str) -> StepProgress | None:
        if steps is None:
            return None

        def seen(done: int, total: int) -> None:
            of[name] = (done, total)
            steps(sum(d for d, _ in of.values()), sum(t for _, t in of.values()))

        return seen

    return host


async def transaction(
    topology: str,
    hosts: Mapping[str, HostTransport],
    wanted: Mapping[str, Candidate],
    *,
    revert_s: int = REVERT_S,
    progress: Progress = quiet,
    hook: Hook = no_hook,
    commit: bool = True,
    steps: StepProgress | None = None,
    ports: Mapping[str, Sequence[PortKey]] | None = None,
    adopt: Mapping[str, Adoption] | None = None,
) -> TransactionResult:
    """Stage ``wanted`` on every host, then (``commit``) commit, verify and confirm; or
    roll every host back and raise :class:`ApplyFailed`.  Without ``commit``: stage, read
    the changes and discard (a plan).  With ``ports`` (by host), each host's transaction
    is scoped to those VM ports; with ``adopt`` (by host), that host takes a migrating VM
    in (see :mod:`netmanager.host.protocol`)."""
    opened: list[HostTransport] = []
    try:
        for transport in hosts.values():
            await transport.open()
            opened.append(transport)
        progress(f"staging on {len(hosts)} host(s)")

        lines: dict[str, list[Change]] = {}

        async def stage(host: str, transport: HostTransport) -> int:
            await transport.begin(commit=commit)
            scoped = ports[host] if ports is not None else None
            taken = adopt.get(host) if adopt is not None else None
            if taken is not None:
                count = await transport.stage(wanted[host], scoped, taken)
            else:
                count = await transport.stage(wanted[host], scoped)
            if not commit and count:  # a plan shows them; an apply only needs how many
                lines[host] = list(await transport.changes())
            hook("staged", host)
            return count

        staged, failed = await each(hosts, stage)
        lines = {h: lines.get(h, []) for h in staged}
        pending = {h: str(e) for h, e in failed.items() if isinstance(e, PendingCommit)}
        failed = {h: e for h, e in failed.items() if h not in pending}

        async def discard(_host: str, transport: HostTransport) -> None:
            await transport.discard()

        changed = {h: c for h, c in staged.items() if c}
        if failed or not commit or not changed:
            await each({h: hosts[h] for h in staged}, discard)
            if failed:
                raise failure(topology, failed)
            return TransactionResult(staged, lines, pending)

        committing = {h: hosts[h] for h in changed}
        await each({h: hosts[h] for h in staged if h not in changed}, discard)
        progress(f"committing on {len(committing)} host(s)")
        steps_of = _summed(steps)

        async def commit_host(host: str, transport: HostTransport) -> None:
            hook("committing", host)
            await transport.commit(revert_s, steps_of(host))
            hook("committed", host)

        _, failed = await each(committing, commit_host)

        async def verify(_host: str, transport: HostTransport) -> None:
            await transport.verify()

        if not failed:
            progress("verifying")
            _, failed = await each(committing, verify)
        if failed:
            progress("rolling back")

            async def rollback(host: str, transport: HostTransport) -> None:
                await transport.rollback()
                hook("rolled back", host)

            # a host whose commit failed undid it itself (or says it could not: E711)
            alive = {h: t for h, t in committing.items() if h not in failed}
            _, undo_failed = await each(alive, rollback)
            raise failure(topology, failed, list(undo_failed.values()))

        progress(f"confirming on {len(committing)} host(s)")

        async def confirm(host: str, transport: HostTransport) -> None:
            await transport.confirm()
            hook("confirmed", host)

        _, failed = await each(committing, confirm)
        if failed:
            raise ApplyFailed(
                "apply",
                [
                    Diagnostic(
                        Severity.ERROR,
                        "E742",
                        f"{topology}: {exc}",
                        Loc("netmanager"),
                        "the other hosts kept the change; a host with an agent reverts its "
                        "unconfirmed commit by itself: apply again",
                    )
                    for exc in failed.values()
                ],
            )
        return TransactionResult(staged, lines)
    finally:
        for transport in opened:
            transport.close()


def run(coro: Awaitable[T]) -> T:
    """Run a transaction from synchronous code."""

    async def main() -> T:
        return await coro

    return asyncio.run(main())
