"""The host engine: observe, plan, apply (transactionally), destroy — over any backend."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from netmanager.kernel.contract import Backend
from netmanager.kernel.journal import Faults, StepProgress, execute
from netmanager.kernel.objects import HostState, KernelStateError, Link, LinkKind, validate, where
from netmanager.kernel.plan import Op, Plan, plan
from netmanager.kernel.scope import Scope


class StalePlanError(RuntimeError):
    """The kernel changed since the plan was made; make a new plan."""


class MissingNamespaceError(KernelStateError):
    """A shared namespace that the desired state puts objects in does not exist."""


SETTLE_S = 2.0
"""How long an apply waits at most for the links it brought up to run (see settle())."""


@dataclass(frozen=True)
class ApplyResult:
    """``unsettled``: (namespace, ifname) of links that were up with carrier but still not
    running when the apply returned (the kernel had not activated their queues in
    :data:`SETTLE_S`); normally empty."""

    plan: Plan
    steps: int  # requests-level steps sent (implied changes excluded)
    timings: dict[str, float] = field(default_factory=dict)
    unsettled: tuple[tuple[str, str], ...] = ()

    @property
    def changes(self) -> int:
        return len(self.plan)

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": self.changes,
            "steps": self.steps,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "unsettled": [list(link) for link in self.unsettled],
            "plan": self.plan.to_json(),
        }


class Engine:
    """Turns a desired :class:`HostState` into reality on one backend.

    Without a ``scope``, the engine owns every netmanager object of the namespaces it is
    given (``namespaces`` widen that beyond the namespaces of the desired state: owned
    namespaces that are no longer desired are only deleted if they are in scope).  With
    a :class:`~netmanager.kernel.scope.Scope`, it sees and changes only the objects of
    the scope's owner, and never creates or deletes the scope's shared namespaces; the
    namespaces the desired state declares are added to the scope's own.
    """

    def __init__(self, backend: Backend | None = None) -> None:
        if backend is None:
            from netmanager.kernel.backend import NetlinkBackend

            backend = NetlinkBackend()
        self.backend = backend

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.backend.close()

    def prune(self) -> None:
        """Let go of what the backend holds of namespaces that are gone (see
        :meth:`NetlinkBackend.prune <netmanager.kernel.backend.NetlinkBackend.prune>`)."""
        prune = getattr(self.backend, "prune", None)
        if prune is not None:
            prune()

    def observe(self, scope: Scope | Iterable[str]) -> HostState:
        """The objects of ``scope``, or every netmanager object of some namespaces."""
        return self.backend.observe(Scope.coerce(scope))

    def _scope(self, desired: HostState, namespaces: Iterable[str], scope: Scope | None) -> Scope:
        """The scope of a plan: validated, with the desired namespaces; shared namespaces
        that the desired state uses must exist."""
        wanted = set(desired.namespaces) | set(namespaces)
        full = Scope.of(None, wanted) if scope is None else scope.including(wanted)
        problems = [] if desired.valid_for(scope) else validate(desired, scope)
        if problems:
            raise KernelStateError(problems)
        used = {obj.namespace for obj in desired.objects} & full.shared
        missing = sorted(self.backend.absent(used)) if used else []
        if missing:
            owner = full.owner if full.owner is not None else "any"
            raise MissingNamespaceError(
                [
                    f"shared namespace {where(name)} does not exist: the scope of owner"
                    f" '{owner}' puts objects there but never creates it (its own owner"
                    " must be applied first); nothing was changed"
                    for name in missing
                ]
            )
        return full

    def plan(
        self,
        desired: HostState,
        *,
        namespaces: Iterable[str] = (),
        scope: Scope | None = None,
    ) -> Plan:
        """What :meth:`apply` would change, and why; nothing is changed.  Raises
        :class:`~netmanager.kernel.objects.KernelStateError` for an impossible state."""
        full = self._scope(desired, namespaces, scope)
        return plan(desired, self.backend.observe(full), scope=full)

    def apply(
        self,
        desired: HostState | Plan,
        *,
        namespaces: Iterable[str] = (),
        scope: Scope | None = None,
        faults: Faults | None = None,
        progress: StepProgress | None = None,
    ) -> ApplyResult:
        """Apply a desired state (observe, plan, execute) or a plan made earlier;
        ``progress`` is told (steps done, steps in all) as the steps go.

        Raises :class:`~netmanager.kernel.journal.ApplyError` after rolling back when a
        step fails, :class:`StalePlanError` when a given plan no longer matches the
        kernel, :class:`~netmanager.kernel.objects.KernelStateError` for an impossible state
        (:class:`MissingNamespaceError` when a shared namespace it needs does not exist).
        """
        timings: dict[str, float] = {}
        start = time.perf_counter()
        if isinstance(desired, Plan):
            the_plan = desired
            observed = self.backend.observe(the_plan.effective_scope)
            timings["observe"] = time.perf_counter() - start
            if observed != the_plan.observed:
                raise StalePlanError(
                    "the kernel changed since this plan was made; nothing was changed"
                )
        else:
            full = self._scope(desired, namespaces, scope)
            observed = self.backend.observe(full)
            timings["observe"] = time.perf_counter() - start
            mark = time.perf_counter()
            the_plan = plan(desired, observed, scope=full)
            timings["plan"] = time.perf_counter() - mark
        mark = time.perf_counter()
        result = execute(the_plan, self.backend, faults=faults, progress=progress)
        timings["execute"] = time.perf_counter() - mark
        mark = time.perf_counter()
        unsettled = self.backend.settle(_carrier_later(the_plan), SETTLE_S)
        timings["settle"] = time.perf_counter() - mark
        timings["total"] = time.perf_counter() - start
        return ApplyResult(
            plan=the_plan, steps=result.steps, timings=timings, unsettled=tuple(unsettled)
        )

    def destroy(
        self, scope: Scope | Iterable[str] = (), *, faults: Faults | None = None
    ) -> ApplyResult:
        """Delete every object of ``scope`` (its own namespaces included, never its shared
        ones), or everything netmanager owns in some namespaces, those namespaces included."""
        if isinstance(scope, Scope):
            return self.apply(HostState(), scope=scope, faults=faults)
        return self.apply(HostState(), namespaces=scope, faults=faults)


def _carrier_later(the_plan: Plan) -> list[tuple[str, str]]:
    """The links of a plan whose carrier comes on after the request that brought them up:
    the creating end of a veth pair (when its far end comes up, in a later batch; both
    ends when a pair is only modified) and bridges (when a port starts forwarding)."""
    out: list[tuple[str, str]] = []
    for change in the_plan.changes:
        link = change.obj
        if change.implied or change.op is Op.DELETE or not isinstance(link, Link) or not link.up:
            continue
        if link.kind is LinkKind.BRIDGE or (link.peer is not None and change.op is Op.MODIFY):
            out.append((link.namespace, link.ifname))
        if link.peer is not None:
            creator = link if link.creates_pair else link.peer
            out.append((creator.namespace, creator.ifname))
    return out
