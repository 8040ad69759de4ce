"""Small statistics for the checks: RTT summaries and the binomial test of packet loss."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def rtt_summary(samples: Sequence[float]) -> dict[str, float]:
    """min, mean, median, p95, max and mean deviation of RTT samples (ms)."""
    if not samples:
        return {}
    ordered = sorted(samples)
    mean = statistics.fmean(ordered)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return {
        "min": ordered[0],
        "mean": mean,
        "median": statistics.median(ordered),
        "p95": p95,
        "max": ordered[-1],
        "mdev": statistics.fmean(abs(x - mean) for x in ordered),
    }


def quantile(samples: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``samples`` (the order statistic at ``q`` of the way from the
    smallest to the largest, interpolated)."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def uniform_sum_quantile(
    half_widths: Sequence[float], q: float, steps: int = 2000
) -> tuple[float, float]:
    """The ``q`` quantile of a sum of independent uniform variables on [-w, w], one per
    half-width (NetEm's jitter without a distribution table is uniform: a round trip
    through several delaying ports adds theirs), and the sum's density there.

    Computed on a grid (``steps`` cells over the whole range); (0, inf) when nothing
    jitters."""
    widths = [w for w in half_widths if w > 0]
    if not widths:
        return 0.0, math.inf
    total = sum(widths)
    cell = 2 * total / steps
    density = [1.0]
    for width in widths:  # convolved with a box of 2w / cell cells (running sums)
        box = max(1, round(2 * width / cell))
        running = [0.0]
        for value in density:
            running.append(running[-1] + value)
        size = len(density) + box - 1
        density = [
            (running[min(k + 1, len(density))] - running[max(0, k + 1 - box)]) / box
            for k in range(size)
        ]
    start = -total
    cumulative = 0.0
    for i, mass in enumerate(density):
        if cumulative + mass >= q:
            x = start + (i + (q - cumulative) / mass) * cell if mass > 0 else start + i * cell
            return x, mass / cell
        cumulative += mass
    return total, 0.0


def _log_pmf(k: int, n: int, p: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0:
        return 1.0
    if p >= 1:
        return 0.0
    return min(1.0, sum(math.exp(_log_pmf(i, n, p)) for i in range(k + 1)))


def binomial_bounds(n: int, p: float, alpha: float = 0.001) -> tuple[int, int]:
    """The losses out of ``n`` that a loss probability ``p`` explains: the interval
    [lo, hi] outside which a two-sided test at level ``alpha`` rejects ``p``."""
    if p <= 0:
        return 0, 0
    if p >= 1:
        return n, n
    lo = 0
    while lo < n and binomial_cdf(lo, n, p) < alpha / 2:
        lo += 1
    hi = n
    while hi > 0 and 1 - binomial_cdf(hi - 1, n, p) < alpha / 2:
        hi -= 1
    return lo, hi


def samples_for_loss(p: float, *, low: int = 20, high: int = 2000) -> int:
    """Pings enough to see a loss probability ``p`` (about 50 expected losses)."""
    if p <= 0:
        return low
    return max(low, min(high, math.ceil(50 / p)))
