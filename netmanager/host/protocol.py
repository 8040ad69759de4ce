"""The host contract: what a transaction asks of one host, whoever drives it.

A host is driven through a :class:`HostBackend` — by its SNMP agent (which collects the
:class:`~netmanager.host.candidate.Candidate` from the NETMANAGER-MIB tables), or in the
manager's own process for ``--local`` (:mod:`netmanager.apply.local`); either way the
same backend code runs.  Implementations: :class:`~netmanager.host.kernelhost.KernelBackend`
(netmanager's kernel engine, for real and emulated hosts) and
:class:`~netmanager.host.memory.MemoryBackend` (a fake for tests, ``--backend memory``).

The contract (every implementation, one call at a time, from a worker thread):

``recover()``
    Called once when the agent starts, before anything else.  Finish or undo what an
    operation interrupted by a crash left behind (the journal on disk).  Returns a
    sentence for the log, or None when there was nothing to do.  After it, the host is
    in the last *committed* configuration (pending or confirmed), never half-way.
``pending() -> str | None``
    What an operation left unfinished, without changing anything: "an interrupted
    commit" (or rollback) that ``recover()`` undoes, "an unconfirmed commit" that
    ``rollback()`` undoes, or None.  A plan asks it and leaves such a host alone.
``stage(candidate) -> Sequence[Change]``
    Compute, without touching the host, the changes that would turn the host's current
    configuration into ``candidate``, in the order ``commit`` applies them.  Raise
    :class:`BackendError` for a candidate the host cannot realise (an underlay interface
    it lacks, a name already used by something it does not own).
``stage(candidate, ports)``
    The same, scoped to some VM ports, each ``(topology, vm, network)``: only those
    ports' links and what hangs on them are observed, planned and, at commit, changed —
    the rest of the host is neither read nor touched.  The candidate must differ from
    the running configuration in those ports' shaping only, else :class:`BackendError`.
    The following ``commit``, ``rollback`` and ``recover`` keep to the same ports.
``stage(candidate, adopt=Adoption(...))``  (the kernel backend only)
    The same, for a migration's switch-over between hosts emulated on one kernel: the
    candidate has VM ``adopt.vm``, whose ports' links are still in another host's dom0
    (``adopt.source``); the commit moves them here after the host's rules are in place,
    wires them at once, announces the VM, then converges the rest.  Its undo (a failed
    commit, a rollback, a recovery) moves them back first and never removes the VM's
    namespace.
``commit()``
    Apply the last staged candidate as a journal of steps.  On failure undo the steps
    done, in reverse, and raise :class:`BackendError`; if an undo step fails too, raise
    :class:`UndoFailed` naming what is left.  The journal survives a crash (``recover``).
``confirm()``
    Make the last commit permanent: forget its undo journal.
``rollback()``
    Undo the last commit that was not confirmed, returning the host to the configuration
    before it.  Idempotent: with no unconfirmed commit it does nothing.
``discard()``
    Forget the staged candidate.
``running() -> Candidate``
    The configuration in force (the last commit, confirmed or not).

Callers call these from one worker thread per host (the kernel engine's namespace switching
is per thread); the agent keeps answering GETs meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from netmanager.host.candidate import Candidate, Change
from netmanager.host.rows import PortKey

#: whether a VM's guest carries the address virtual.xml gives it, as a host reports it
#: for each VM port (NETMANAGER-MIB's nmLinkGuestAddress): not known (not a VM port, or
#: not checked yet), set by netmanager (a namespace; a domain through its guest agent),
#: or for a domain netmanager cannot configure (no guest agent) whether the guest
#: answers ARP for it from its NIC's MAC
GUEST_UNKNOWN = 1
GUEST_CONFIGURED = 2
GUEST_ANSWERING = 3
GUEST_SILENT = 4


class BackendError(Exception):
    """The operation failed; the host is as it was before it."""


class UndoFailed(BackendError):
    """The operation failed and undoing it failed too: the host is partly configured."""


@dataclass(frozen=True)
class Adoption:
    """A VM that moves here from another host emulated on the same kernel, whose dom0 is
    namespace ``source``: a commit staged with it takes the host ends of the VM's ports
    from there (see the module's ``stage(candidate, adopt=...)``); for a libvirt domain
    migrated live, its taps from the namespace the target's libvirt made them in
    (``.``: the root namespace), as soon as they appear."""

    topology: str
    vm: str
    source: str
    #: how long the VM's ports stay off once here, before they are wired (a live
    #: migration's modelled stop-and-copy), in milliseconds
    pause_ms: int = 0

    @property
    def namespace(self) -> str:
        """The source's namespace as the kernel backend names it: ``.`` is the root
        namespace (a libvirt domain migrated to the system daemon of this machine: its
        taps appear there)."""
        return "" if self.source == "." else self.source

    def text(self) -> str:
        """As NETMANAGER-MIB's nmTxnAdopt carries it: ``TOPOLOGY VM NAMESPACE [PAUSE_MS]``."""
        base = f"{self.topology} {self.vm} {self.source}"
        return f"{base} {self.pause_ms}" if self.pause_ms else base

    @classmethod
    def from_text(cls, text: str) -> Adoption:
        """ValueError unless three words — topology, VM, the source's dom0 namespace —
        and perhaps the pause in milliseconds (0 to 60000)."""
        words = text.split()
        if len(words) not in (3, 4):
            raise ValueError("'TOPOLOGY VM NAMESPACE [PAUSE_MS]'")
        pause = 0
        if len(words) == 4:
            if not words[3].isdigit() or int(words[3]) > 60000:
                raise ValueError(f"the pause is milliseconds from 0 to 60000, not '{words[3]}'")
            pause = int(words[3])
        return cls(words[0], words[1], words[2], pause)


@runtime_checkable
class HostBackend(Protocol):
    def recover(self) -> str | None: ...

    def pending(self) -> str | None: ...

    def stage(
        self, candidate: Candidate, ports: Sequence[PortKey] | None = None
    ) -> Sequence[Change]: ...

    def commit(self) -> None: ...

    def confirm(self) -> None: ...

    def rollback(self) -> None: ...

    def discard(self) -> None: ...

    def running(self) -> Candidate: ...
