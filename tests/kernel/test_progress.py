"""Step progress of an apply, over the in-memory fake kernel (no root)."""

from __future__ import annotations

import pytest

from netmanager.kernel import ApplyError, Engine, Faults, HostState, Link, LinkKind, Namespace
from netmanager.kernel.fake import FakeKernel
from netmanager.kernel.journal import PROGRESS_SLICE
from tests.kernel.helpers import vm

P = "nmp"


def _many(count: int) -> HostState:
    dom0 = f"{P}-d"
    return HostState.checked(
        [
            Namespace(dom0),
            Link(dom0, "br0", LinkKind.BRIDGE, alias="nm:t:br", mtu=1500),
            *(
                o
                for i in range(count)
                for o in vm(
                    dom0,
                    f"{P}-v{i}",
                    f"p{i}",
                    f"10.0.{i // 250}.{i % 250 + 1}/16",
                    gateway="10.0.255.254",
                    rate_bps=1_000_000,
                )
            ),
        ]
    )


def test_progress_reaches_the_total_in_order() -> None:
    state = _many(40)
    seen: list[tuple[int, int]] = []
    result = Engine(FakeKernel()).apply(state, progress=lambda d, t: seen.append((d, t)))
    total = result.steps
    assert total > 2 * PROGRESS_SLICE
    assert len(seen) >= 3, "shown several times along the way"
    assert all(t == total for _, t in seen)
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == total
    # the same kernel state as an apply without progress
    plain = FakeKernel()
    Engine(plain).apply(state)
    shown = FakeKernel()
    Engine(shown).apply(state, progress=lambda d, t: None)
    scope = set(state.namespaces)
    assert Engine(plain).observe(scope) == Engine(shown).observe(scope) != HostState()
    assert plain.executed == shown.executed


def test_progress_stops_where_a_step_fails() -> None:
    seen: list[int] = []
    fail_at = PROGRESS_SLICE + 5
    with pytest.raises(ApplyError):
        Engine(FakeKernel()).apply(
            _many(40), faults=Faults(fail_at=fail_at), progress=lambda d, t: seen.append(d)
        )
    assert seen and max(seen) <= fail_at
