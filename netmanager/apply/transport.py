"""What the transaction asks of one host, whichever way the host is reached.

A :class:`HostTransport` carries the host contract (:mod:`netmanager.host.protocol`) to
one host: :class:`~netmanager.apply.local.LocalTransport` calls the host's backend in
this process, :class:`~netmanager.apply.agent_transport.AgentTransport` asks its SNMP
agent.  Every method is a coroutine so that the transaction drives all hosts at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from netmanager.host.candidate import Candidate, Change
from netmanager.host.protocol import Adoption
from netmanager.host.rows import PortKey
from netmanager.kernel.journal import StepProgress

if TYPE_CHECKING:
    from netmanager.hypervisor.migration import MigrationRequest, MigrationResult


class HostFailed(Exception):
    """An operation failed on a host.  ``code`` is the diagnostic it is reported as:
    E710 when the host's change failed (and the host undid it), E741 when the host could
    not be reached or its agent failed."""

    def __init__(self, host: str, message: str, code: str = "E710") -> None:
        super().__init__(f"host '{host}': {message}")
        self.host = host
        self.code = code


class PendingCommit(HostFailed):
    """A plan found what an earlier apply left unfinished on the host (a commit not
    confirmed, or cut short): a plan does not roll it back (it changes nothing), so that
    host is not asked."""


class HostTransport(Protocol):
    host: str

    async def open(self) -> None:
        """Get ready (connect); called once before anything else."""
        ...

    def close(self) -> None: ...

    async def begin(self, *, commit: bool) -> None:
        """Wait until what runs on the host has settled.  For a transaction that will
        commit: roll back what an earlier one left unfinished (its manager died before
        confirming).  For a plan (``commit=False``): raise :class:`PendingCommit` instead,
        changing nothing."""
        ...

    async def stage(
        self,
        candidate: Candidate,
        ports: Sequence[PortKey] | None = None,
        adopt: Adoption | None = None,
    ) -> int:
        """Send the host's whole candidate and stage it: how many changes it would make.
        With ``ports``, scoped to those VM ports; with ``adopt``, taking a migrating VM in
        from another host of the same kernel (:mod:`netmanager.host.protocol`)."""
        ...

    async def changes(self) -> Sequence[Change]:
        """The staged changes themselves (read by a plan only: through an agent, they
        are a walk of its change table)."""
        ...

    async def discard(self) -> None:
        """Forget the staged candidate."""
        ...

    async def commit(self, revert_s: int, steps: StepProgress | None) -> None:
        """Commit the staged candidate; unconfirmed, it is undone by itself after
        ``revert_s`` where the host has a timer of its own.  ``steps`` is told
        (done, in all) as the host's kernel steps go."""
        ...

    async def verify(self) -> None:
        """Check that the host runs the committed candidate, pending confirmation."""
        ...

    async def rollback(self) -> None:
        """Undo whatever this transaction left on the host: a commit (finished, running
        or pending confirmation) is rolled back, a staged candidate discarded."""
        ...

    async def confirm(self) -> None:
        """Make the commit permanent."""
        ...

    async def hand_over(self, topology: str, vm: str) -> int:
        """Let running VM ``vm`` go to another host emulated on this host's kernel, which
        takes its ports (a migration's switch-over; see
        :meth:`netmanager.host.kernelhost.KernelBackend.hand_over`)."""
        ...

    async def migrate_domain(
        self, request: MigrationRequest, started: Callable[[], None] = ...
    ) -> MigrationResult:
        """Live-migrate one of the host's libvirt domains, the host's agent making
        libvirt's call; ``started`` is told once it sends (the target's libvirt has the
        incoming domain, its taps made).  Raises
        :class:`~netmanager.hypervisor.migration.MigrationError` saying where the domain
        is when it failed."""
        ...
