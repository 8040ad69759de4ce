"""What a live migration by pre-copy costs: its rounds, its downtime, its bytes (pure).

``netmanager migrate VM --to HOST`` moves a VM between emulated hosts.  A real live
migration (QEMU/KVM, Xen) copies the VM's memory over the network while the VM runs:
round 1 sends all of it, and each next round sends the pages the guest dirtied while the
previous round was on the wire.  When what is left could be sent within the allowed
downtime, or when a bound on the rounds is reached (then it goes on anyway), the VM is
paused and the rest is sent: that stop-and-copy is the downtime the guest sees.  This is
the iterative pre-copy of Clark et al., *Live Migration of Virtual Machines* (NSDI 2005),
whose writable working set (the pages a guest keeps rewriting) is why a migration may
never converge.

The model here is the analytic one of Akoush et al., *Predicting the Performance of
Virtual Machine Migration* (MASCOTS 2010): with V the memory, D the rate at which the
guest dirties it and R the rate of the migration stream (both in bytes per second),
round i (counting from 0) sends ``V * (D/R)**i`` bytes and lasts that divided by R; the
migration stops iterating when the next round's bytes fit in the allowed downtime, or
after the last allowed round.  So for D < R the bytes form a geometric series
(``V * (1 - (D/R)**(n+1)) / (1 - D/R)`` for n live rounds and the stop-and-copy), and for
D >= R nothing converges (unless the whole memory fits in the downtime): every round
resends the whole memory (the guest cannot dirty more than it has) until the bound on
rounds stops it with a downtime of V / R, which the plan reports as it is.  The model leaves out what a real stack adds around it:
compression, skipping zero pages, the destination's resume time, CPU throttling
(QEMU's auto-converge) and post-copy.

The knobs are QEMU's migration parameters: ``downtime-limit`` (the allowed downtime,
300 ms by default: ``DEFAULT_MIGRATE_SET_DOWNTIME`` in QEMU's ``migration/options.c``)
and ``max-bandwidth`` (the stream's rate cap, in bytes per second; QEMU's default is
``MAX_THROTTLE``, 128 MiB/s, :data:`QEMU_DEFAULT_MAX_BANDWIDTH_BPS` here in bits).  QEMU
itself has no bound on the rounds (a migration that cannot converge runs until it is
cancelled or throttled); the bound comes from Xen's pre-copy and Akoush's model, and
keeps this one finite.

Everything takes plain numbers in the canonical units of :mod:`netmanager.inputs.units`
where they exist: rates on the wire in bit/s (:func:`~netmanager.inputs.units.parse_rate`
gives them), memory in bytes (:func:`~netmanager.inputs.units.parse_memory` gives MiB:
multiply by ``2**20``).  The dirty rate is in *bytes* per second, as hypervisors report
it (QEMU's ``dirty-pages-rate`` times the page size): a rate parsed from text is in bits
and must be divided by 8 first.  :func:`schedule_bytes` turns a plan into the slots an
emulator sends the migration stream in, at the modelled pace, over a real emulated link.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

QEMU_DEFAULT_DOWNTIME_LIMIT_S = 0.3
QEMU_DEFAULT_MAX_BANDWIDTH_BPS = 128 * 2**20 * 8  # MAX_THROTTLE (bytes/s), in bit/s
PAGE_BYTES = 4096
MAX_ROUNDS = 10_000  # the largest max_rounds accepted: a plan stays small
MAX_SLOTS = 1_000_000  # the most slots schedule_bytes gives: pick a coarser chunk_s


@dataclass(frozen=True)
class PrecopyParams:
    """One migration to model, in plain numbers.

    ``memory_bytes``: the VM's memory (all of it travels in round 1).
    ``dirty_bytes_per_s``: how many bytes of that memory the guest dirties per second
    (bytes, not bits: see the module's docstring); 0 for an idle guest.
    ``bandwidth_bps``: bits per second the migration stream may use on the wire (the
    link's rate, or QEMU's ``max-bandwidth`` if lower).
    ``max_downtime_s``: the pause the guest may see (QEMU's ``downtime-limit``).
    ``max_rounds``: the live rounds allowed before the stop-and-copy happens anyway.
    ``min_round_bytes``: the least any round sends, the stop-and-copy included (or the
    whole memory if that is smaller).  It stands for what is sent at the pause whatever
    the memory does — the vCPUs' registers, the devices' state, the last dirty pages —
    and is this model's choice, not a measurement: 16 pages of 4 KiB (64 KiB) by
    default, 0.5 ms at 1 Gbit/s.  So an idle guest's downtime is that floor, not zero;
    set it to 0 for the bare series.
    ``overhead``: the fraction of the wire's rate taken by protocol headers (TCP/IP,
    the migration stream's framing), from 0 (the default: the stream sends at
    ``bandwidth_bps``) up to but not including 1.  Leave it at 0 when the stream is sent
    for real over an emulated link, whose own headers are then on the wire already.

    Every field is checked when the object is made: a ``ValueError`` names the field.
    """

    memory_bytes: int
    dirty_bytes_per_s: float
    bandwidth_bps: float
    max_downtime_s: float = QEMU_DEFAULT_DOWNTIME_LIMIT_S
    max_rounds: int = 30
    min_round_bytes: int = 16 * PAGE_BYTES
    overhead: float = 0.0

    def __post_init__(self) -> None:
        _whole("memory_bytes", self.memory_bytes, lowest=1)
        _number("dirty_bytes_per_s", self.dirty_bytes_per_s, above_zero=False)
        _number("bandwidth_bps", self.bandwidth_bps, above_zero=True)
        _number("max_downtime_s", self.max_downtime_s, above_zero=False)
        _whole("max_rounds", self.max_rounds, lowest=1, highest=MAX_ROUNDS)
        _whole("min_round_bytes", self.min_round_bytes, lowest=0)
        _number("overhead", self.overhead, above_zero=False)
        if self.overhead >= 1:
            raise ValueError(
                f"PrecopyParams.overhead must be below 1 (a fraction of the wire's rate), "
                f"got {self.overhead!r}"
            )

    @property
    def stream_bytes_per_s(self) -> float:
        """The rate memory travels at: the wire's rate less the headers, in bytes/s."""
        return self.bandwidth_bps * (1 - self.overhead) / 8


@dataclass(frozen=True)
class Round:
    """One live round: the ``index``-th (from 1), sending ``bytes`` of memory over
    ``seconds``, starting ``start_s`` after the migration began."""

    index: int
    bytes: int
    seconds: float
    start_s: float


@dataclass(frozen=True)
class PrecopyPlan:
    """A whole migration: the live rounds, then the stop-and-copy.

    ``stop_copy_bytes`` are sent while the VM is paused, over ``downtime_s``;
    ``total_s`` and ``total_bytes`` count the rounds and the stop-and-copy.
    ``converged`` says whether the stop condition (what is left fits in the allowed
    downtime) was met within ``max_rounds``; when it is False the stop-and-copy was
    forced, and ``downtime_s`` is as long as it takes (it can exceed the limit by far).
    """

    rounds: tuple[Round, ...]
    stop_copy_bytes: int
    downtime_s: float
    total_s: float
    total_bytes: int
    converged: bool

    @property
    def pause_at_s(self) -> float:
        """When the VM is paused, after the migration began: the end of the last round."""
        last = self.rounds[-1]
        return last.start_s + last.seconds


def plan(params: PrecopyParams) -> PrecopyPlan:
    """The rounds of ``params``'s migration, its downtime and its totals (Akoush's model).

    Round 1 sends the whole memory; after each round, the bytes dirtied meanwhile (the
    dirty rate times the round's length, at most the whole memory, at least the floor
    ``min_round_bytes``) are what is left.  If sending them would take no longer than
    ``max_downtime_s`` the VM is paused and they go in the stop-and-copy (converged);
    otherwise they are the next round, unless that would be one round too many, in which
    case they go in the stop-and-copy all the same (not converged).  Bytes are whole:
    each round's amount is rounded to the nearest byte.
    """
    rate = params.stream_bytes_per_s
    memory = params.memory_bytes
    floor = min(params.min_round_bytes, memory)
    rounds: list[Round] = []
    to_send = memory
    clock = 0.0
    while True:
        seconds = to_send / rate
        rounds.append(Round(len(rounds) + 1, to_send, seconds, clock))
        clock += seconds
        dirtied = min(memory, round(to_send * params.dirty_bytes_per_s / rate))
        left = max(dirtied, floor)
        downtime = left / rate
        if downtime <= params.max_downtime_s:
            converged = True
            break
        if len(rounds) == params.max_rounds:
            converged = False
            break
        to_send = left
    return PrecopyPlan(
        rounds=tuple(rounds),
        stop_copy_bytes=left,
        downtime_s=downtime,
        total_s=clock + downtime,
        total_bytes=sum(r.bytes for r in rounds) + left,
        converged=converged,
    )


def schedule_bytes(plan: PrecopyPlan, chunk_s: float) -> list[tuple[float, int]]:
    """The migration stream cut in slots of ``chunk_s`` seconds: (offset, bytes) pairs.

    Each slot starts ``offset`` seconds after the migration began and carries the bytes
    the model sends during it — every round and the stop-and-copy at their own pace (the
    stream's rate), one after the other with no gap — so that an emulator sending each
    slot's bytes at its offset, over a real emulated link, replays the migration's load
    on the underlay.  Offsets rise; the bytes add up to ``plan.total_bytes`` exactly
    (slots that would carry nothing are left out; the last slot takes what is left).
    """
    if (
        isinstance(chunk_s, bool)
        or not isinstance(chunk_s, int | float)
        or not math.isfinite(chunk_s)
        or chunk_s <= 0
    ):
        raise ValueError(f"chunk_s must be a number of seconds above zero, got {chunk_s!r}")
    # each segment: (start, seconds, bytes, bytes sent before it)
    segments: list[tuple[float, float, int, int]] = []
    sent = 0
    for r in plan.rounds:
        segments.append((r.start_s, r.seconds, r.bytes, sent))
        sent += r.bytes
    segments.append((plan.pause_at_s, plan.downtime_s, plan.stop_copy_bytes, sent))
    slots = max(1, math.ceil(plan.total_s / chunk_s - 1e-9))
    if slots > MAX_SLOTS:
        raise ValueError(
            f"chunk_s {chunk_s!r} cuts {plan.total_s:.3f}s into {slots} slots "
            f"(at most {MAX_SLOTS}): choose a longer chunk"
        )
    out: list[tuple[float, int]] = []
    done = 0  # bytes handed out so far
    current = 0  # the segment the slot's end falls in
    for k in range(slots):
        end = (k + 1) * chunk_s
        if k == slots - 1:
            by_end = plan.total_bytes
        else:
            while (
                current < len(segments) - 1 and end >= segments[current][0] + segments[current][1]
            ):
                current += 1
            start, seconds, size, before = segments[current]
            if seconds <= 0 or end >= start + seconds:
                by_end = before + size
            else:
                by_end = before + min(size, math.floor(size * (end - start) / seconds))
        if by_end > done:
            out.append((k * chunk_s, by_end - done))
            done = by_end
    return out


def _number(name: str, value: object, *, above_zero: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"PrecopyParams.{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"PrecopyParams.{name} must be a finite number, got {value!r}")
    if above_zero and value <= 0:
        raise ValueError(f"PrecopyParams.{name} must be above zero, got {value!r}")
    if value < 0:
        raise ValueError(f"PrecopyParams.{name} must not be negative, got {value!r}")


def _whole(name: str, value: object, *, lowest: int, highest: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"PrecopyParams.{name} must be a whole number, got {value!r}")
    if value < lowest:
        raise ValueError(f"PrecopyParams.{name} must be at least {lowest}, got {value!r}")
    if highest is not None and value > highest:
        raise ValueError(f"PrecopyParams.{name} must be at most {highest}, got {value!r}")
