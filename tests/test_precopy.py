"""The cost of a live migration by pre-copy (pure): rounds, downtime and bytes of Akoush's
model (netmanager.compile.precopy), and the slots an emulator sends the stream in."""

from __future__ import annotations

import math
from typing import Any

import pytest

from netmanager.compile.precopy import (
    QEMU_DEFAULT_DOWNTIME_LIMIT_S,
    QEMU_DEFAULT_MAX_BANDWIDTH_BPS,
    PrecopyParams,
    PrecopyPlan,
    Round,
    plan,
    schedule_bytes,
)

GIB = 2**30
GBIT = 10**9  # bit/s; the stream then carries 125e6 bytes/s


def test_defaults_are_qemus() -> None:
    params = PrecopyParams(GIB, 0, GBIT)
    assert params.max_downtime_s == QEMU_DEFAULT_DOWNTIME_LIMIT_S == 0.3
    assert QEMU_DEFAULT_MAX_BANDWIDTH_BPS == 128 * 2**20 * 8
    assert params.min_round_bytes == 16 * 4096
    assert params.stream_bytes_per_s == 125e6


def test_idle_guest_sends_its_memory_once_and_only_the_floor_at_the_pause() -> None:
    result = plan(PrecopyParams(GIB, 0, GBIT))
    assert result.rounds == (Round(1, GIB, GIB / 125e6, 0.0),)
    assert result.converged
    # the floor: 64 KiB of vCPU and device state, 65536 / 125e6 s = 0.52 ms
    assert result.stop_copy_bytes == 65536
    assert result.downtime_s == pytest.approx(65536 / 125e6)
    assert result.total_bytes == GIB + 65536
    assert result.total_s == pytest.approx(GIB / 125e6 + 65536 / 125e6)
    bare = plan(PrecopyParams(GIB, 0, GBIT, min_round_bytes=0))
    assert (bare.stop_copy_bytes, bare.downtime_s, bare.total_bytes) == (0, 0.0, GIB)


def test_worked_example_1gib_over_1gbit_dirtying_12_5mb_per_second() -> None:
    # V = 1 GiB = 1_073_741_824 B, R = 1 Gbit/s = 125e6 B/s, D = 12.5e6 B/s: D/R = 0.1.
    # The 300 ms limit lets 0.3 * 125e6 = 37.5e6 B go in the stop-and-copy.
    # round 1: 1_073_741_824 B in 8.589934592 s; meanwhile 107_374_182.4 B dirtied: too many
    # round 2:   107_374_182 B in 0.858993456 s; meanwhile  10_737_418.2 B dirtied: they fit
    # stop-and-copy: 10_737_418 B in 85.9 ms (Clark et al. report downtimes of tens to
    # hundreds of ms); in all 1_191_853_424 B (11% more than the memory) in 9.53 s.
    result = plan(PrecopyParams(GIB, 12.5e6, GBIT))
    assert [(r.index, r.bytes) for r in result.rounds] == [(1, GIB), (2, 107_374_182)]
    assert [r.seconds for r in result.rounds] == pytest.approx([8.589934592, 0.858993456])
    assert [r.start_s for r in result.rounds] == pytest.approx([0.0, 8.589934592])
    assert result.converged
    assert result.stop_copy_bytes == 10_737_418
    assert result.downtime_s == pytest.approx(0.085899344)
    assert result.total_bytes == 1_191_853_424
    assert result.total_s == pytest.approx(9.534827392)
    assert result.pause_at_s == pytest.approx(8.589934592 + 0.858993456)


def test_converges_within_the_downtime_limit() -> None:
    # D/R = 100e6 / 125e6 = 0.8: round i+1 sends V * 0.8**i; the first remainder within
    # 37.5e6 B is V * 0.8**16 = 30_223_145.5 B (0.8**15 * V = 37.8e6 B is just too many),
    # so 16 live rounds and a 242 ms pause
    result = plan(PrecopyParams(GIB, 100e6, GBIT))
    assert result.converged
    assert len(result.rounds) == 16
    assert result.downtime_s <= result.rounds[0].seconds  # sanity: far below one full copy
    assert result.downtime_s <= QEMU_DEFAULT_DOWNTIME_LIMIT_S
    assert result.downtime_s == pytest.approx(GIB * 0.8**16 / 125e6, rel=1e-6)
    assert result.stop_copy_bytes == pytest.approx(30_223_146, abs=16)


@pytest.mark.parametrize(
    ("dirty", "limit"),
    [(12.5e6, 0.3), (100e6, 0.3), (60e6, 0.05), (1e6, 0.001), (110e6, 1.0)],
)
def test_akoush_geometric_series(dirty: float, limit: float) -> None:
    # total = sum of V * rho**i for i = 0..n, n live rounds then the stop-and-copy
    params = PrecopyParams(GIB, dirty, GBIT, max_downtime_s=limit, min_round_bytes=0)
    result = plan(params)
    rho = dirty / 125e6
    n = len(result.rounds)
    assert result.converged
    expected = GIB * (1 - rho ** (n + 1)) / (1 - rho)
    # each round's bytes are rounded: at most 0.5 / (1 - rho) off each, n + 1 of them
    assert abs(result.total_bytes - expected) <= (n + 1) * 0.5 / (1 - rho)
    for i, r in enumerate(result.rounds):
        assert r.bytes == pytest.approx(GIB * rho**i, abs=0.5 / (1 - rho))
        assert r.seconds == pytest.approx(r.bytes / 125e6)
    # the stop condition, and it was not met one round earlier
    assert result.downtime_s <= limit
    if n > 1:
        assert result.rounds[-1].bytes / 125e6 > limit
    assert result.total_s == pytest.approx(expected / 125e6, rel=1e-6)


@pytest.mark.parametrize("dirty", [125e6, 200e6, 1e12])
def test_dirty_rate_at_or_above_bandwidth_never_converges(dirty: float) -> None:
    result = plan(PrecopyParams(GIB, dirty, GBIT, max_rounds=30))
    assert not result.converged
    assert len(result.rounds) == 30
    # the guest cannot dirty more than it has: every round resends all of it, and so does
    # the forced stop-and-copy, 8.6 s of downtime
    assert all(r.bytes == GIB for r in result.rounds)
    assert result.stop_copy_bytes == GIB
    assert result.downtime_s == pytest.approx(GIB / 125e6)
    assert result.downtime_s > 28 * QEMU_DEFAULT_DOWNTIME_LIMIT_S
    assert result.total_bytes == 31 * GIB
    assert result.total_s == pytest.approx(31 * GIB / 125e6)


def test_forced_stop_reports_the_remainder_not_the_limit() -> None:
    # D/R = 0.96 converges, but not within 3 rounds: the remainder after round 3 is sent
    # anyway, V * 0.96**3 bytes, 7.9 s of pause
    result = plan(PrecopyParams(GIB, 120e6, GBIT, max_rounds=3, min_round_bytes=0))
    assert not result.converged
    assert len(result.rounds) == 3
    assert result.stop_copy_bytes == pytest.approx(GIB * 0.96**3, abs=2)
    assert result.downtime_s == pytest.approx(result.stop_copy_bytes / 125e6)
    assert result.downtime_s > result.rounds[0].seconds * 0.88


def test_a_memory_smaller_than_the_downtime_converges_after_one_round() -> None:
    # 16 MiB at 125e6 B/s is 134 ms: even a guest dirtying faster than the link is done
    result = plan(PrecopyParams(16 * 2**20, 1e12, GBIT))
    assert result.converged
    assert len(result.rounds) == 1
    assert result.stop_copy_bytes == 16 * 2**20


def test_overhead_slows_the_stream() -> None:
    result = plan(PrecopyParams(GIB, 0, GBIT, overhead=0.2, min_round_bytes=0))
    assert result.rounds[0].seconds == pytest.approx(GIB / 100e6)


def test_floor_is_capped_by_the_memory() -> None:
    result = plan(PrecopyParams(4096, 0, GBIT))
    assert result.stop_copy_bytes == 4096


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("memory_bytes", 0),
        ("memory_bytes", -1),
        ("memory_bytes", 1.5),
        ("memory_bytes", True),
        ("dirty_bytes_per_s", -1.0),
        ("dirty_bytes_per_s", math.nan),
        ("dirty_bytes_per_s", math.inf),
        ("dirty_bytes_per_s", "100MB/s"),
        ("bandwidth_bps", 0),
        ("bandwidth_bps", -1e9),
        ("bandwidth_bps", math.nan),
        ("max_downtime_s", -0.1),
        ("max_downtime_s", math.nan),
        ("max_rounds", 0),
        ("max_rounds", 2.0),
        ("max_rounds", 10**6),
        ("min_round_bytes", -1),
        ("overhead", -0.1),
        ("overhead", 1.0),
        ("overhead", math.nan),
    ],
)
def test_bad_params_name_the_field(field: str, value: Any) -> None:
    good: dict[str, Any] = {"memory_bytes": GIB, "dirty_bytes_per_s": 0, "bandwidth_bps": GBIT}
    with pytest.raises(ValueError, match=rf"PrecopyParams\.{field} "):
        PrecopyParams(**{**good, field: value})


def test_params_are_frozen() -> None:
    params = PrecopyParams(GIB, 0, GBIT)
    with pytest.raises(AttributeError):
        params.memory_bytes = 1  # type: ignore[misc]


def _check_schedule(result: PrecopyPlan, chunk_s: float) -> list[tuple[float, int]]:
    slots = schedule_bytes(result, chunk_s)
    assert sum(n for _, n in slots) == result.total_bytes
    offsets = [t for t, _ in slots]
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == len(offsets)
    assert all(n > 0 for _, n in slots)
    assert offsets[0] == 0.0
    assert offsets[-1] < result.total_s
    return slots


@pytest.mark.parametrize("chunk_s", [0.001, 0.01, 0.1, 0.37, 1.0, 100.0])
def test_schedule_sums_to_the_total_and_keeps_the_pace(chunk_s: float) -> None:
    result = plan(PrecopyParams(GIB, 100e6, GBIT))
    slots = _check_schedule(result, chunk_s)
    # never faster than the stream: at most one slot's worth of bytes (plus rounding)
    assert max(n for _, n in slots) <= 125e6 * chunk_s + 2
    assert len(slots) == math.ceil(result.total_s / chunk_s)


def test_schedule_of_the_worked_example() -> None:
    result = plan(PrecopyParams(GIB, 12.5e6, GBIT))
    slots = _check_schedule(result, 1.0)
    # 10 slots of a second: 9 full ones at 125e6 B and the last 0.53 s
    assert len(slots) == 10
    assert all(n == pytest.approx(125e6, abs=1) for _, n in slots[:9])
    assert slots[-1] == (9.0, result.total_bytes - sum(n for _, n in slots[:9]))


@pytest.mark.parametrize("dirty", [0.0, 200e6])
def test_schedule_of_idle_and_unconverged_plans(dirty: float) -> None:
    for floor in (0, 65536):
        _check_schedule(plan(PrecopyParams(GIB, dirty, GBIT, min_round_bytes=floor)), 0.25)


@pytest.mark.parametrize("chunk_s", [0, -1.0, math.nan, math.inf, 1e-9])
def test_schedule_refuses_bad_chunks(chunk_s: float) -> None:
    with pytest.raises(ValueError, match="chunk"):
        schedule_bytes(plan(PrecopyParams(GIB, 0, GBIT)), chunk_s)
