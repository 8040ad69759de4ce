"""The in-process transport (``--local``): each host's backend runs in this process.

Every emulated host of this machine gets a :class:`~netmanager.host.kernelhost.
KernelBackend` over its dom0 namespace — the backend its agent would run — with its
journal in ``<state>/local/<host>/``, so the hosts are driven at once as agents are.

Each host's backend is bound to one worker thread (the kernel engine switches namespaces
per thread); the hosts share as many threads as this machine has CPUs, so that their
Python work does not contend for the interpreter lock more than the CPUs can run.

There is no revert timer: the manager is the only process involved, and a commit it
left unconfirmed (it died between commit and confirm) is found by the next transaction
(:meth:`LocalTransport.begin`): apply rolls it back, plan leaves it and says so.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from netmanager.apply.transport import HostFailed, PendingCommit
from netmanager.host.candidate import Candidate, Change
from netmanager.host.kernelhost import KernelBackend, StepFaults
from netmanager.host.protocol import Adoption, BackendError, HostBackend, UndoFailed
from netmanager.host.rows import PortKey
from netmanager.host.runtime import PortOverride
from netmanager.kernel.journal import StepProgress
from netmanager.statedir import state_dir

if TYPE_CHECKING:
    from netmanager.hypervisor.migration import MigrationRequest, MigrationResult

T = TypeVar("T")


_WORKERS: list[ThreadPoolExecutor] = []
_NEXT = itertools.count()


def _worker() -> ThreadPoolExecutor:
    """One of the process's host worker threads, round robin (created on first use, kept
    for the process's life: a backend's engine stays bound to its thread)."""
    if not _WORKERS:
        _WORKERS.extend(
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="netmanager-host")
            for _ in range(max(1, os.cpu_count() or 1))
        )
    return _WORKERS[next(_NEXT) % len(_WORKERS)]


def local_dir(host: str) -> Path:
    """Where the in-process backend of ``host`` keeps its journal."""
    return state_dir() / "local" / host


#: this process's kernel backends, kept from one transaction to the next as an agent keeps
#: its own (its engine's namespace handles, its rendered states), each with the worker
#: thread its engine is bound to; by state directory, host and dom0.  A journal written
#: by another process since is read again (KernelBackend.reload_if_changed), namespaces
#: gone are let go after each transaction (prune).
_BACKENDS: dict[tuple[str, str, str], tuple[KernelBackend, ThreadPoolExecutor]] = {}


def forget_local_hosts() -> None:
    """Remove every in-process backend's journal (the last topology went), and close the
    backends this process kept for them."""
    where = str(state_dir())
    for key in [k for k in _BACKENDS if k[0] == where]:
        backend, thread = _BACKENDS.pop(key)
        thread.submit(backend.close).result()
    shutil.rmtree(state_dir() / "local", ignore_errors=True)


class LocalTransport:
    """One host's backend, called in this process from a thread of its own.

    ``serial`` (a lock shared by the transports of one transaction) makes their commits
    run one after the other, so that injected faults (:class:`StepFaults`, shared) number
    the steps of every host in one deterministic order."""

    def __init__(
        self,
        host: str,
        backend: HostBackend,
        *,
        faults: StepFaults | None = None,
        serial: asyncio.Lock | None = None,
        thread: ThreadPoolExecutor | None = None,
        kept: bool = False,
    ) -> None:
        self.host = host
        self.backend = backend
        self.faults = faults
        self.serial = serial
        self._thread = thread if thread is not None else _worker()
        #: the backend outlives this transport (see _BACKENDS): not closed, only pruned
        self._kept = kept
        self._staged: Candidate | None = None
        self._changes: list[Change] = []

    @classmethod
    def kernel(cls, host: str, dom0: str, **options: Any) -> LocalTransport:
        """The transport of an emulated host whose dom0 is namespace ``dom0``, over the
        backend this process keeps for it."""
        key = (str(state_dir()), host, dom0)
        kept = _BACKENDS.get(key)
        if kept is None:
            kept = (KernelBackend(dom0, local_dir(host)), _worker())
            _BACKENDS[key] = kept
        else:
            kept[0].reload_if_changed()
        backend, thread = kept
        return cls(host, backend, thread=thread, kept=True, **options)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)
        except UndoFailed as exc:
            raise HostFailed(self.host, str(exc), "E711") from exc
        except (BackendError, OSError) as exc:
            raise HostFailed(self.host, str(exc)) from exc

    async def open(self) -> None:
        return None

    async def runtime(self, changes: Mapping[PortKey, PortOverride]) -> int:
        """A runtime change of some running ports (the backend's ``runtime``)."""
        change = getattr(self.backend, "runtime", None)
        if change is None:
            raise HostFailed(self.host, "its backend makes no runtime changes")
        return int(await self._call(change, dict(changes)))

    async def hand_over(self, topology: str, vm: str) -> int:
        """A VM let go to another host of this kernel (the backend's ``hand_over``)."""
        give = getattr(self.backend, "hand_over", None)
        if give is None:
            raise HostFailed(self.host, "its backend cannot hand a VM over")
        return int(await self._call(give, topology, vm))

    async def migrate_domain(
        self, request: MigrationRequest, started: Callable[[], None] = lambda: None
    ) -> MigrationResult:
        """A libvirt host is reached through its agent (which holds the connection)."""
        raise HostFailed(
            self.host, "a libvirt domain migrates through its host's agent, not in this process"
        )

    def close(self) -> None:
        # the kernel engine is bound to the worker thread: close or prune it there
        done = getattr(self.backend, "prune" if self._kept else "close", None)
        if done is not None:
            self._thread.submit(done).result()

    async def begin(self, *, commit: bool) -> None:
        left = await self._call(self.backend.pending)
        if left is None:
            return
        if not commit:
            raise PendingCommit(
                self.host,
                f"{left} that an earlier apply left is pending; apply undoes it first",
            )
        if left.startswith("an interrupted"):
            await self._call(self.backend.recover)
        else:
            await self._call(self.backend.rollback)

    async def stage(
        self,
        candidate: Candidate,
        ports: Sequence[PortKey] | None = None,
        adopt: Adoption | None = None,
    ) -> int:
        if adopt is None:
            self._changes = list(await self._call(self.backend.stage, candidate, ports))
        elif isinstance(self.backend, KernelBackend):
            self._changes = list(await self._call(self.backend.stage, candidate, ports, adopt))
        else:
            raise HostFailed(self.host, "its backend cannot take a migrating VM in")
        self._staged = candidate
        return len(self._changes)

    async def changes(self) -> Sequence[Change]:
        return self._changes

    async def discard(self) -> None:
        await self._call(self.backend.discard)

    async def commit(self, revert_s: int, steps: StepProgress | None) -> None:
        del revert_s  # no timer in this process: see the module's docstring
        backend = self.backend
        if isinstance(backend, KernelBackend):
            backend.on_steps = steps
            backend.faults = self.faults
        if self.serial is None:
            await self._call(backend.commit)
            return
        async with self.serial:
            await self._call(backend.commit)

    async def verify(self) -> None:
        if await self._call(self.backend.running) != self._staged:
            raise HostFailed(self.host, "after commit the host does not run the staged candidate")

    async def rollback(self) -> None:
        await self._call(self.backend.rollback)

    async def confirm(self) -> None:
        await self._call(self.backend.confirm)
