"""Executing a plan as a journal: every step has an undo; a failure undoes all done steps.

The journal hands the plan's steps to a backend in order (the backend batches them).  If
one fails, every step that took effect — including steps the kernel ran after the failed
one in the same batch, and the implied changes of those steps — is undone in reverse
order, and every undo that fails is reported, never dropped.

Faults can be injected for tests: ``Faults(fail_at=k)`` makes step ``k`` (counting the
steps that are sent, from 0) fail as if the kernel had refused it, and
``fail_undo_at=j`` makes undo step ``j`` fail too.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from netmanager.kernel.contract import NOT_RUN, Action, ActionResult, Backend
from netmanager.kernel.plan import Change, Plan


class InjectedFault(OSError):
    def __init__(self, what: str) -> None:
        super().__init__(errno.EIO, f"injected fault at {what}")


@dataclass(frozen=True)
class Faults:
    """Failures to inject.  ``fail_at``: the index of the sent step to fail, or a predicate
    over (index, change); ``fail_undo_at``: the index of the undo step to fail."""

    fail_at: int | Callable[[int, Change], bool] | None = None
    fail_undo_at: int | None = None

    def step_to_fail(self, steps: Sequence[Change]) -> int | None:
        if self.fail_at is None:
            return None
        if isinstance(self.fail_at, int):
            return self.fail_at if 0 <= self.fail_at < len(steps) else None
        for i, change in enumerate(steps):
            if self.fail_at(i, change):
                return i
        return None


@dataclass(frozen=True)
class UndoFailure:
    change: Change
    error: OSError

    def line(self) -> str:
        return f"could not undo '{self.change.line()}': {self.error}"


class ApplyError(Exception):
    """A step failed; what was done has been undone except ``undo_failures``."""

    def __init__(
        self,
        failed: Change,
        error: OSError,
        *,
        undone: int,
        undo_failures: list[UndoFailure],
    ) -> None:
        self.failed = failed
        self.error = error
        self.undone = undone
        self.undo_failures = undo_failures
        lines = [f"failed: {failed.line()}: {error}"]
        if undo_failures:
            lines.append(
                f"rolled back {undone} step(s), but {len(undo_failures)} undo(s) failed;"
                " the kernel is NOT as it was:"
            )
            lines.extend("  " + f.line() for f in undo_failures)
        else:
            lines.append(f"rolled back {undone} step(s): the kernel is as it was")
        super().__init__("\n".join(lines))

    @property
    def rolled_back(self) -> bool:
        return not self.undo_failures

    def to_json(self) -> dict[str, Any]:
        return {
            "failed": self.failed.line(),
            "error": str(self.error),
            "undone": self.undone,
            "undo_failures": [f.line() for f in self.undo_failures],
        }


@dataclass(frozen=True)
class JournalResult:
    steps: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


#: (steps done, steps in all), called as an apply goes
StepProgress = Callable[[int, int], None]

#: without a progress callback a plan goes to the backend whole; with one, in slices of
#: at least this many steps (about a hundred slices), so that progress can be shown
PROGRESS_SLICE = 64


def _sliced(
    backend: Backend,
    actions: Sequence[Action],
    *,
    stop_on_error: bool,
    progress: StepProgress | None,
    offset: int,
    total: int,
) -> list[ActionResult]:
    """``backend.execute``, in slices with a progress report after each."""
    if progress is None or not actions:
        return backend.execute(actions, stop_on_error=stop_on_error)
    size = max(PROGRESS_SLICE, total // 100)
    results: list[ActionResult] = []
    for start in range(0, len(actions), size):
        part = backend.execute(actions[start : start + size], stop_on_error=stop_on_error)
        results += part
        progress(offset + len(results), total)
        if stop_on_error and any(not r.ok for r in part):
            break
    return results + [NOT_RUN] * (len(actions) - len(results))


def _run(
    backend: Backend,
    actions: Sequence[Action],
    *,
    stop_on_error: bool,
    fail_at: int | None,
    progress: StepProgress | None = None,
) -> list[ActionResult]:
    """Execute actions; an injected failure at ``fail_at`` replaces that action."""
    total = len(actions)
    if fail_at is None or fail_at >= len(actions):
        return _sliced(
            backend,
            actions,
            stop_on_error=stop_on_error,
            progress=progress,
            offset=0,
            total=total,
        )
    head = _sliced(
        backend,
        actions[:fail_at],
        stop_on_error=stop_on_error,
        progress=progress,
        offset=0,
        total=total,
    )
    fault = ActionResult(applied=False, error=InjectedFault(actions[fail_at].label()))
    if stop_on_error:
        if any(not r.ok for r in head):
            return [*head, NOT_RUN, *([NOT_RUN] * (len(actions) - fail_at - 1))]
        return [*head, fault, *([NOT_RUN] * (len(actions) - fail_at - 1))]
    tail = _sliced(
        backend,
        actions[fail_at + 1 :],
        stop_on_error=False,
        progress=progress,
        offset=fail_at + 1,
        total=total,
    )
    return [*head, fault, *tail]


def execute(
    plan: Plan,
    backend: Backend,
    *,
    faults: Faults | None = None,
    progress: StepProgress | None = None,
) -> JournalResult:
    """Make every change of ``plan``; on a failure undo and raise :class:`ApplyError`.
    ``progress`` is told (steps done, steps in all) as the steps go."""
    started = time.perf_counter()
    faults = faults or Faults()
    indices = plan.steps
    changes = plan.changes
    actions: list[Action] = []
    for i in indices:
        action = changes[i].do()
        assert action is not None
        actions.append(action)
    fail_at = faults.step_to_fail([changes[i] for i in indices])
    results = _run(backend, actions, stop_on_error=True, fail_at=fail_at, progress=progress)

    done: set[int] = {i for i, r in zip(indices, results, strict=True) if r.applied}
    failure = next(
        ((changes[i], r.error) for i, r in zip(indices, results, strict=True) if r.error), None
    )
    if failure is None:
        return JournalResult(steps=len(actions), seconds=time.perf_counter() - started)

    for i, change in enumerate(changes):
        if change.implied_by is not None and change.implied_by in done:
            done.add(i)
    undo_changes: list[Change] = []
    undo_actions: list[Action] = []
    for i in sorted(done, reverse=True):
        undo = changes[i].undo()
        if undo is not None:
            undo_changes.append(changes[i])
            undo_actions.append(undo)
    undo_results = _run(backend, undo_actions, stop_on_error=False, fail_at=faults.fail_undo_at)
    failures = [
        UndoFailure(change, r.error)
        for change, r in zip(undo_changes, undo_results, strict=True)
        if r.error is not None
    ]
    failed_change, error = failure
    assert error is not None
    raise ApplyError(failed_change, error, undone=len(undo_actions), undo_failures=failures)
