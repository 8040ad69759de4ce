"""The host engine: observe, plan, apply (transactionally), destroy — over any backend."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from netmanager.kernel.contract import Backend
from netmanager.kernel.journal import Faults, execute
from netmanager.kernel.objects import HostState, KernelStateError, validate
from netmanager.kernel.plan import Plan, plan


class StalePlanError(RuntimeError):
    """The kernel changed since the plan was made; make a new plan."""


@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    steps: int  # requests-level steps sent (implied changes excluded)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def changes(self) -> int:
        return len(self.plan)

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": self.changes,
            "steps": self.steps,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "plan": self.plan.to_json(),
        }


class Engine:
    """Turns a desired :class:`HostState` into reality on one backend.

    ``namespaces`` arguments widen the scope beyond the namespaces of the desired state:
    owned namespaces that are no longer desired are only deleted if they are in scope.
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

    def observe(self, namespaces: Iterable[str]) -> HostState:
        return self.backend.observe(namespaces)

    def plan(self, desired: HostState, *, namespaces: Iterable[str] = ()) -> Plan:
        problems = validate(desired)
        if problems:
            raise KernelStateError(problems)
        scope = set(desired.namespaces) | set(namespaces)
        return plan(desired, self.backend.observe(scope), scope)

    def apply(
        self,
        desired: HostState | Plan,
        *,
        namespaces: Iterable[str] = (),
        faults: Faults | None = None,
    ) -> ApplyResult:
        """Apply a desired state (observe, plan, execute) or a plan made earlier.

        Raises :class:`~netmanager.kernel.journal.ApplyError` after rolling back when a
        step fails, :class:`StalePlanError` when a given plan no longer matches the
        kernel, :class:`~netmanager.kernel.objects.KernelStateError` for an impossible state.
        """
        timings: dict[str, float] = {}
        start = time.perf_counter()
        if isinstance(desired, Plan):
            the_plan = desired
            observed = self.backend.observe(the_plan.namespaces)
            timings["observe"] = time.perf_counter() - start
            if observed != the_plan.observed:
                raise StalePlanError(
                    "the kernel changed since this plan was made; nothing was changed"
                )
        else:
            problems = validate(desired)
            if problems:
                raise KernelStateError(problems)
            scope = set(desired.namespaces) | set(namespaces)
            observed = self.backend.observe(scope)
            timings["observe"] = time.perf_counter() - start
            mark = time.perf_counter()
            the_plan = plan(desired, observed, scope)
            timings["plan"] = time.perf_counter() - mark
        mark = time.perf_counter()
        result = execute(the_plan, self.backend, faults=faults)
        timings["execute"] = time.perf_counter() - mark
        timings["total"] = time.perf_counter() - start
        return ApplyResult(plan=the_plan, steps=result.steps, timings=timings)

    def destroy(self, namespaces: Iterable[str], *, faults: Faults | None = None) -> ApplyResult:
        """Delete everything netmanager owns in ``namespaces``, the namespaces included."""
        return self.apply(HostState(), namespaces=namespaces, faults=faults)
