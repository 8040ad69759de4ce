"""The backend contract: what the journal asks of a kernel, whichever kernel it is.

A backend observes the objects netmanager owns in a set of namespaces, and executes a
sequence of primitive actions in order, batching them however it likes, reporting for
each action whether it took effect and whether it failed.  Implementations: the local
kernel through netlink (:mod:`netmanager.kernel.backend`) and an in-memory fake that fails
like the kernel (:mod:`netmanager.kernel.fake`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from netmanager.kernel.objects import HostState, KernelObject
from netmanager.kernel.scope import Scope


class Verb(enum.StrEnum):
    CREATE = "create"
    MODIFY = "modify"
    DELETE = "delete"


@dataclass(frozen=True)
class Action:
    """One primitive kernel action.  For MODIFY, ``old`` is the object as it is now and
    ``obj`` as it shall be; a backend changes only the fields that differ."""

    verb: Verb
    obj: KernelObject
    old: KernelObject | None = None

    def label(self) -> str:
        return f"{self.verb} {self.obj.label()}"


@dataclass(frozen=True)
class ActionResult:
    """``applied``: the action changed the kernel (so undoing it is needed);
    ``error``: why it failed, if it did.  A MODIFY that failed half-way is applied."""

    applied: bool
    error: OSError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


NOT_RUN = ActionResult(applied=False)


class Backend(Protocol):
    def observe(self, scope: Scope | Iterable[str]) -> HostState:
        """The objects of ``scope`` (namespace names: every netmanager object in them);
        absent namespaces are simply absent."""
        ...

    def absent(self, namespaces: Iterable[str]) -> set[str]:
        """Which of ``namespaces`` do not exist (the root namespace always does)."""
        ...

    def settle(self, links: Iterable[tuple[str, str]], timeout_s: float) -> list[tuple[str, str]]:
        """Wait until each (namespace, ifname) that is up and has carrier also runs (its
        queue is active); the ones still waiting after ``timeout_s``."""
        ...

    def execute(self, actions: Sequence[Action], *, stop_on_error: bool) -> list[ActionResult]:
        """Run ``actions`` in order.  With ``stop_on_error``, stop after the batch in which
        an action failed; the results of actions never run are :data:`NOT_RUN`."""
        ...

    def move_link(self, namespace: str, ifname: str, to: str) -> None:
        """Move link ``ifname`` of ``namespace`` into namespace ``to`` under its name: a
        veth keeps its peer, the link comes down, off its master, without its qdiscs and
        addresses (as the kernel moves one).  OSError when refused."""
        ...

    def close(self) -> None: ...
