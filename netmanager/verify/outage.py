"""What a migration did to the network, as Themis measured it (seed 004, Part II): a UDP
stream from the migrated VM to a fixed peer (:mod:`netmanager.verify.outageworker`), and
from the two ends' result files, per run: the downtime (the longest gap between stream
datagrams received, and the longest between echo replies), the datagrams lost and which,
the RFC 3550 jitter, the throughput in 100 ms bins, the migration's duration and the echo
round trips; over repeated runs their spread.  Written as a CSV of the runs, a CSV and a
figure per run, and a summary table (text and JSON).  Pure: no process is started here.

Clocks.  Each worker measures with its own CLOCK_MONOTONIC.  Gaps in the stream are
measured by the receiver's clock only (its receive times), round trips and gaps of the
echo by the sender's only.  A run's time axis is the receiver's clock, its zero the
migration's start (without one, the stream's first datagram sent).  The migration's start
and end given to :func:`analyse` are monotonic seconds of the sender's clock by default
(``clock="receiver"``: of the receiver's); sender times are put on the receiver's clock
by their offset: zero when both ends run on one kernel (the two files' ``boot_id`` agree:
network namespaces of this machine), otherwise estimated from the echoes (the peer stamps
its receive time into each reply: offset = peer time − the request's and reply's midpoint,
over the round trips of the fastest tenth, within half a round trip), or, without a reply,
from the two wall-clock anchors.

Result files (``result.json`` of each worker, JSON; every ``*_us`` an integer of
microseconds of the writer's CLOCK_MONOTONIC unless said otherwise)::

    receiver: {"format": "netmanager-outage/1", "role": "receive",
               "clock": {"boot_id", "monotonic_us", "realtime"},
               "params": {"bind", "port", "echo_port", "session"},
               "started_us", "stopped_us", "stop": "file" | "signal" | "timeout",
               "stream": {"seq": [...], "sent_us": [...] (the sender's clock),
                          "recv_us": [...], "size": [...] (UDP payload bytes)},
                          (one entry per datagram, in order of arrival)
               "echo_answered", "foreign" (datagrams of another session, or malformed)}
    sender:   {"format", "role": "send", "clock", "started_us", "stopped_us", "stop",
               "params": {"peer", "port", "echo_port", "rate_bps", "size", "echo_hz",
                          "duration_s", "session"},
               "sent" (sequence numbers 0 .. sent-1 were sent, or failed to be),
               "first_send_us", "last_send_us",
               "skipped" (datagrams not sent: the sender was over 100 ms behind),
               "errors": {errno name: count} (failed sends, ICMP errors),
               "stalls": [[seq, from_us, to_us], ...] (sends over 10 ms and 5 intervals
                         apart: the sender itself paused; seq the first one after),
               "echo": {"sent_us": [...], "peer_us": [... | null] (the receiver's
                        clock), "reply_us": [... | null]} (one entry per request, its
                        sequence number the index)}

A worker that failed writes ``{"format", "role", "error": "..."}``: :func:`load` raises.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from netmanager.verify import outageworker
from netmanager.verify.stats import quantile

BIN_S = 0.1
WORKER = Path(outageworker.__file__).resolve()
FORMAT = outageworker.FORMAT
PORT = outageworker.PORT
#: the fastest fraction of the round trips whose offsets estimate the clocks' offset
OFFSET_FRACTION = 0.1


class OutageError(ValueError):
    """A result file that cannot be analysed (a worker failed, another format)."""


# -- starting the workers ---------------------------------------------------------------


def receive_argv(
    directory: Path | str,
    *,
    python: str = "python3",
    bind: str = "0.0.0.0",
    port: int = PORT,
    echo_port: int = PORT + 1,
    session: str = "0",
    timeout_s: float = outageworker.TIMEOUT_S,
    worker: Path | str = WORKER,
) -> list[str]:
    """The receiver's argv (to run in the peer's namespace, e.g. after ``ip netns exec
    NS``); it is ready when ``directory/ready`` exists and stops at ``directory/stop``."""
    return [
        *(python, "-I", str(worker), "receive", str(directory)),
        *("--bind", bind, "--port", str(port), "--echo-port", str(echo_port)),
        *("--session", session, "--timeout", repr(float(timeout_s))),
    ]


def send_argv(
    directory: Path | str,
    peer: str,
    *,
    python: str = "python3",
    rate_bps: float = 1e6,
    size: int = 1000,
    echo_hz: float = 100.0,
    duration_s: float = 0.0,
    port: int = PORT,
    echo_port: int = PORT + 1,
    session: str = "0",
    bind: str = "",
    linger_s: float = outageworker.LINGER_S,
    timeout_s: float = outageworker.TIMEOUT_S,
    worker: Path | str = WORKER,
) -> list[str]:
    """The sender's argv (``duration_s`` 0: until ``directory/stop`` or SIGTERM)."""
    argv = [
        *(python, "-I", str(worker), "send", str(directory), "--peer", peer),
        *("--port", str(port), "--echo-port", str(echo_port), "--session", session),
        *("--rate", repr(float(rate_bps)), "--size", str(size)),
        *("--echo-hz", repr(float(echo_hz)), "--duration", repr(float(duration_s))),
        *("--linger", repr(float(linger_s)), "--timeout", repr(float(timeout_s))),
    ]
    return [*argv, "--bind", bind] if bind else argv


def load(path: Path | str) -> dict[str, Any]:
    """A worker's result file; :class:`OutageError` if the worker failed."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise OutageError(f"{path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise OutageError(f"{path}: not a result of the outage worker")
    if "error" in doc:
        raise OutageError(f"{path}: the {doc.get('role', '?')} worker failed: {doc['error']}")
    if doc.get("format") != FORMAT:
        raise OutageError(f"{path}: format {doc.get('format')!r}, not {FORMAT!r}")
    return doc


# -- the analysis -----------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """An interval of a run's time axis (seconds from its zero, the receiver's clock)."""

    from_s: float
    to_s: float

    @property
    def seconds(self) -> float:
        return self.to_s - self.from_s


@dataclass(frozen=True)
class Bin:
    """One bin of a run's time series: what arrived in [t_s, t_s + bin_s)."""

    t_s: float
    bits_per_s: float  # UDP payload received
    packets: int
    jitter_ms: float | None  # the RFC 3550 estimate after the bin's last datagram
    echo_requests: int  # sent in the bin (their send time on the run's axis)
    echo_replies: int  # of those, answered
    rtt_max_ms: float | None


@dataclass(frozen=True)
class Echo:
    t_s: float  # sent, on the run's axis
    rtt_ms: float | None  # None: no reply


@dataclass(frozen=True)
class Percentiles:
    min: float
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Percentiles:
        return cls(
            min(values),
            quantile(values, 0.5),
            quantile(values, 0.95),
            quantile(values, 0.99),
            max(values),
        )


@dataclass(frozen=True)
class OutageRun:
    """One migration's measurement.  Times ``*_s`` of spans are on the run's axis."""

    run: int
    rate_bps: float  # configured (payload)
    size: int  # UDP payload bytes per datagram
    sent: int
    received: int  # distinct sequence numbers
    lost: int  # sent - received
    lost_ranges: tuple[tuple[int, int], ...]  # inclusive ranges of sequence numbers
    duplicates: int
    reordered: int  # arrived after a higher sequence number
    downtime: Span  # the longest gap between datagrams received (the receiver's clock)
    echo_sent: int
    echo_lost: int
    echo_downtime: Span | None  # the longest gap between echo replies (the sender's clock)
    rtt_ms: Percentiles | None  # echo round trips (the sender's clock)
    jitter_ms: float  # RFC 3550 interarrival jitter at the end of the stream
    jitter_max_ms: float  # its highest value during the stream
    throughput_bps: float  # payload received over the stream's span
    migration: Span | None
    sender_stall_s: float  # the sender's longest pause between two sends
    skipped: int
    send_errors: int
    same_clock: bool
    clock_offset_s: float  # receiver's clock - sender's (0 on one kernel)
    origin: float  # the axis' zero: monotonic seconds of the receiver's clock
    bin_s: float
    series: tuple[Bin, ...]
    echoes: tuple[Echo, ...]

    @property
    def downtime_s(self) -> float:
        return self.downtime.seconds

    @property
    def migration_s(self) -> float | None:
        return self.migration.seconds if self.migration is not None else None

    def row(self) -> dict[str, Any]:
        """The run's scalars (a row of the session's CSV; JSON-able)."""
        rtt = self.rtt_ms
        echo = self.echo_downtime
        return {
            "run": self.run,
            "rate_bps": self.rate_bps,
            "size": self.size,
            "sent": self.sent,
            "received": self.received,
            "lost": self.lost,
            "lost_ranges": ";".join(f"{a}-{b}" if a != b else str(a) for a, b in self.lost_ranges),
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "downtime_ms": _r(self.downtime.seconds * 1e3),
            "downtime_from_s": _r(self.downtime.from_s),
            "downtime_to_s": _r(self.downtime.to_s),
            "echo_downtime_ms": _r(echo.seconds * 1e3) if echo else None,
            "echo_sent": self.echo_sent,
            "echo_lost": self.echo_lost,
            "rtt_min_ms": _r(rtt.min) if rtt else None,
            "rtt_p50_ms": _r(rtt.p50) if rtt else None,
            "rtt_p95_ms": _r(rtt.p95) if rtt else None,
            "rtt_p99_ms": _r(rtt.p99) if rtt else None,
            "rtt_max_ms": _r(rtt.max) if rtt else None,
            "jitter_ms": _r(self.jitter_ms),
            "jitter_max_ms": _r(self.jitter_max_ms),
            "throughput_bps": _r(self.throughput_bps),
            "migration_s": _r(self.migration.seconds) if self.migration else None,
            "sender_stall_ms": _r(self.sender_stall_s * 1e3),
            "skipped": self.skipped,
            "send_errors": self.send_errors,
            "same_clock": self.same_clock,
            "clock_offset_ms": _r(self.clock_offset_s * 1e3),
        }


def _r(value: float) -> float:
    return round(value, 6)


def _check(doc: Mapping[str, Any], role: str) -> None:
    if "error" in doc:
        raise OutageError(f"the {role} worker failed: {doc['error']}")
    if doc.get("format") != FORMAT or doc.get("role") != role:
        raise OutageError(f"not a {role} result of format {FORMAT}")


def clock_offset_us(sender: Mapping[str, Any], receiver: Mapping[str, Any]) -> tuple[bool, float]:
    """(one clock?, the receiver's clock minus the sender's in microseconds): see the
    module's documentation."""
    boot = sender["clock"].get("boot_id")
    if boot and boot == receiver["clock"].get("boot_id"):
        return True, 0.0
    echo = sender["echo"]
    samples = sorted(
        (reply - sent, peer - (sent + reply) / 2)
        for sent, peer, reply in zip(
            echo["sent_us"], echo["peer_us"], echo["reply_us"], strict=True
        )
        if reply is not None and peer is not None
    )
    if samples:
        fastest = samples[: max(1, int(len(samples) * OFFSET_FRACTION))]
        return False, statistics.median(offset for _, offset in fastest)

    def wall_minus_monotonic(doc: Mapping[str, Any]) -> float:
        return float(doc["clock"]["realtime"]) * 1e6 - float(doc["clock"]["monotonic_us"])

    return False, wall_minus_monotonic(sender) - wall_minus_monotonic(receiver)


def _longest_gap(times: Sequence[float]) -> tuple[float, float]:
    """The two consecutive times furthest apart (``times`` in order, at least two)."""
    best = max(range(1, len(times)), key=lambda i: times[i] - times[i - 1])
    return times[best - 1], times[best]


def analyse(
    sender: Mapping[str, Any],
    receiver: Mapping[str, Any],
    migration: tuple[float, float] | None = None,
    *,
    clock: Literal["sender", "receiver"] = "sender",
    run: int = 1,
    bin_s: float = BIN_S,
) -> OutageRun:
    """One run from the two workers' results (:func:`load`) and the migration's start and
    end (monotonic seconds of the ``clock`` side's CLOCK_MONOTONIC; None: no migration)."""
    _check(sender, "send")
    _check(receiver, "receive")
    same, offset = clock_offset_us(sender, receiver)
    params = sender["params"]
    n_sent = int(sender["sent"])
    stream = receiver["stream"]
    seqs: list[int] = stream["seq"]
    sent_us: list[int] = stream["sent_us"]
    recv_us: list[int] = stream["recv_us"]
    sizes: list[int] = stream["size"]

    # the stream's span and the axis' zero, on the receiver's clock (µs)
    if n_sent:
        first, last = sender["first_send_us"] + offset, sender["last_send_us"] + offset
    else:
        first = last = sender["started_us"] + offset
    span_migration: tuple[float, float] | None = None
    if migration is not None:
        shift = offset if clock == "sender" else 0.0
        span_migration = (migration[0] * 1e6 + shift, migration[1] * 1e6 + shift)
    origin = span_migration[0] if span_migration else first

    def axis(t_us: float) -> float:
        return (t_us - origin) / 1e6

    # which arrived: distinct, duplicated, out of order; the jitter in order of arrival
    seen: set[int] = set()
    duplicates = reordered = 0
    highest = -1
    jitter = jitter_max = 0.0
    jitter_at: list[float | None] = [None] * len(seqs)  # the estimate after each arrival
    previous: tuple[int, int] | None = None
    for index, seq in enumerate(seqs):
        if seq in seen:
            duplicates += 1
            continue
        seen.add(seq)
        if seq < highest:
            reordered += 1
        highest = max(highest, seq)
        if previous is not None:
            d = (recv_us[index] - previous[1]) - (sent_us[index] - previous[0])
            jitter += (abs(d) - jitter) / 16
            jitter_max = max(jitter_max, jitter)
        previous = (sent_us[index], recv_us[index])
        jitter_at[index] = jitter / 1e3
    distinct = sorted(s for s in seen if 0 <= s < n_sent)
    lost_ranges: list[tuple[int, int]] = []
    expected = 0
    for seq in distinct:
        if seq > expected:
            lost_ranges.append((expected, seq - 1))
        expected = seq + 1
    if expected < n_sent:
        lost_ranges.append((expected, n_sent - 1))

    # the downtime: also from the first send to the first arrival, and from the last
    # arrival to the last send (an outage the stream's end cut short)
    gap_from, gap_to = _longest_gap([first, *recv_us, max(last, first)])
    downtime = Span(axis(gap_from), axis(gap_to))

    # the echo, on the sender's clock; its times put on the run's axis
    echo = sender["echo"]
    requests: list[int] = echo["sent_us"]
    replies: list[int | None] = echo["reply_us"]
    echoes = tuple(
        Echo(axis(s + offset), (r - s) / 1e3 if r is not None else None)
        for s, r in zip(requests, replies, strict=True)
    )
    rtts = [e.rtt_ms for e in echoes if e.rtt_ms is not None]
    echo_downtime = None
    if requests:
        answered = sorted(r for r in replies if r is not None)
        a, b = _longest_gap([requests[0], *answered, max(requests[-1], requests[0])])
        echo_downtime = Span(axis(a + offset), axis(b + offset))

    # the time series
    bin_us = bin_s * 1e6
    times = [first, last, *recv_us[:1], *recv_us[-1:]]
    if requests:
        times += [requests[0] + offset, requests[-1] + offset]
    low = math.floor((min(times) - origin) / bin_us)
    high = math.floor((max(times) - origin) / bin_us)
    count = high - low + 1
    bits = [0] * count
    packets = [0] * count
    jitters: list[float | None] = [None] * count
    for index, t in enumerate(recv_us):
        k = math.floor((t - origin) / bin_us) - low
        bits[k] += 8 * sizes[index]
        packets[k] += 1
        if jitter_at[index] is not None:
            jitters[k] = jitter_at[index]
    asked = [0] * count
    answered_in = [0] * count
    rtt_max: list[float | None] = [None] * count
    for e in echoes:
        k = min(max(math.floor(e.t_s * 1e6 / bin_us) - low, 0), count - 1)
        asked[k] += 1
        if e.rtt_ms is not None:
            answered_in[k] += 1
            rtt_max[k] = max(rtt_max[k] or 0.0, e.rtt_ms)
    last_jitter: float | None = None
    series = []
    for k in range(count):
        last_jitter = jitters[k] if jitters[k] is not None else last_jitter
        series.append(
            Bin(
                t_s=round((low + k) * bin_s, 9),
                bits_per_s=bits[k] / bin_s,
                packets=packets[k],
                jitter_ms=last_jitter if packets[k] else None,
                echo_requests=asked[k],
                echo_replies=answered_in[k],
                rtt_max_ms=rtt_max[k],
            )
        )

    stalls = sender.get("stalls", [])
    return OutageRun(
        run=run,
        rate_bps=float(params["rate_bps"]),
        size=int(params["size"]),
        sent=n_sent,
        received=len(distinct),
        lost=n_sent - len(distinct),
        lost_ranges=tuple(lost_ranges),
        duplicates=duplicates,
        reordered=reordered,
        downtime=downtime,
        echo_sent=len(requests),
        echo_lost=len(requests) - len(rtts),
        echo_downtime=echo_downtime,
        rtt_ms=Percentiles.of(rtts) if rtts else None,
        jitter_ms=jitter / 1e3,
        jitter_max_ms=jitter_max / 1e3,
        throughput_bps=8 * sum(sizes) / ((last - first) / 1e6) if last > first else 0.0,
        migration=Span(0.0, axis(span_migration[1])) if span_migration else None,
        sender_stall_s=max(((to - at) / 1e6 for _, at, to in stalls), default=0.0),
        skipped=int(sender.get("skipped", 0)),
        send_errors=sum(sender.get("errors", {}).values()),
        same_clock=same,
        clock_offset_s=offset / 1e6,
        origin=origin / 1e6,
        bin_s=bin_s,
        series=tuple(series),
        echoes=echoes,
    )


def analyse_files(
    sender: Path | str,
    receiver: Path | str,
    migration: tuple[float, float] | None = None,
    *,
    clock: Literal["sender", "receiver"] = "sender",
    run: int = 1,
    bin_s: float = BIN_S,
) -> OutageRun:
    return analyse(load(sender), load(receiver), migration, clock=clock, run=run, bin_s=bin_s)


# -- over repeated runs ------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    min: float
    median: float
    p95: float  # interpolated between the order statistics
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(min(values), quantile(values, 0.5), quantile(values, 0.95), max(values))


@dataclass(frozen=True)
class OutageSummary:
    runs: int
    downtime_s: Spread
    lost: Spread
    migration_s: Spread | None  # None: no run had a migration
    echo_downtime_s: Spread | None

    def as_dict(self) -> dict[str, Any]:
        def spread(s: Spread | None) -> dict[str, float] | None:
            if s is None:
                return None
            return {"min": s.min, "median": s.median, "p95": s.p95, "max": s.max}

        return {
            "runs": self.runs,
            "downtime_s": spread(self.downtime_s),
            "lost": spread(self.lost),
            "migration_s": spread(self.migration_s),
            "echo_downtime_s": spread(self.echo_downtime_s),
        }

    def table(self) -> str:
        """An aligned text table: one line per quantity, min / median / p95 / max."""
        rows: list[list[str]] = [["", "min", "median", "p95", "max"]]
        for label, s, factor, digits in (
            ("downtime (ms)", self.downtime_s, 1e3, 1),
            ("echo downtime (ms)", self.echo_downtime_s, 1e3, 1),
            ("packets lost", self.lost, 1.0, 1),
            ("migration (s)", self.migration_s, 1.0, 3),
        ):
            if s is not None:
                values = (s.min, s.median, s.p95, s.max)
                rows.append([label, *(f"{v * factor:.{digits}f}" for v in values)])
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = [f"{self.runs} run{'s' if self.runs != 1 else ''}"]
        for row in rows:
            cells = [row[0].ljust(widths[0])] + [
                c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
            ]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines) + "\n"


def summarise(runs: Sequence[OutageRun]) -> OutageSummary:
    if not runs:
        raise ValueError("no runs to summarise")
    migrations = [r.migration.seconds for r in runs if r.migration is not None]
    echo = [r.echo_downtime.seconds for r in runs if r.echo_downtime is not None]
    return OutageSummary(
        runs=len(runs),
        downtime_s=Spread.of([r.downtime.seconds for r in runs]),
        lost=Spread.of([float(r.lost) for r in runs]),
        migration_s=Spread.of(migrations) if migrations else None,
        echo_downtime_s=Spread.of(echo) if echo else None,
    )


# -- writers ------------------------------------------------------------------------------

SERIES_COLUMNS = (
    "t_s",
    "bits_per_s",
    "packets",
    "jitter_ms",
    "echo_requests",
    "echo_replies",
    "rtt_max_ms",
)


def _cell(value: object) -> object:
    return "" if value is None else value


def write_runs_csv(runs: Sequence[OutageRun], path: Path) -> Path:
    """The session's CSV: one row per run (:meth:`OutageRun.row`)."""
    rows = [run.row() for run in runs]
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["run"])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
    return path


def write_series_csv(run: OutageRun, path: Path) -> Path:
    """A run's time series: one row per bin (:class:`Bin`), ``t_s`` from the axis' zero."""
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(SERIES_COLUMNS)
        for b in run.series:
            writer.writerow(
                [
                    _r(b.t_s),
                    _r(b.bits_per_s),
                    b.packets,
                    _cell(None if b.jitter_ms is None else _r(b.jitter_ms)),
                    b.echo_requests,
                    b.echo_replies,
                    _cell(None if b.rtt_max_ms is None else _r(b.rtt_max_ms)),
                ]
            )
    return path


def available() -> bool:
    """Whether figures can be drawn (matplotlib is optional)."""
    try:
        import matplotlib  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


def write_figure(run: OutageRun, path: Path) -> bool:
    """The run's figure: received throughput over time with the migration's start and end
    marked and the downtime shaded, the echo round trips below.  False without
    matplotlib (nothing written)."""
    if not available():
        return False
    import matplotlib  # type: ignore[import-not-found,unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found,unused-ignore]

    figure, (top, bottom) = plt.subplots(
        2, 1, sharex=True, figsize=(8, 5.5), dpi=110, gridspec_kw={"height_ratios": [3, 1.6]}
    )
    if run.series:
        xs = [b.t_s for b in run.series] + [run.series[-1].t_s + run.bin_s]
        ys = [b.bits_per_s / 1e6 for b in run.series]
        top.step(xs, [*ys, ys[-1]], where="post", color="tab:blue", label="received")
    top.axhline(run.rate_bps / 1e6, linestyle="--", color="grey", linewidth=1, label="sent")
    for ax in (top, bottom):
        ax.axvspan(
            run.downtime.from_s,
            run.downtime.to_s,
            color="tab:red",
            alpha=0.25,
            label=f"downtime {run.downtime.seconds * 1e3:.0f} ms" if ax is top else None,
        )
        if run.migration is not None:
            for x, name in ((run.migration.from_s, "start"), (run.migration.to_s, "end")):
                ax.axvline(
                    x,
                    color="black",
                    linestyle=":" if name == "end" else "-.",
                    linewidth=1,
                    label=f"migration {name}" if ax is top else None,
                )
        ax.grid(True, alpha=0.3)
    answered = [(e.t_s, e.rtt_ms) for e in run.echoes if e.rtt_ms is not None]
    unanswered = [e.t_s for e in run.echoes if e.rtt_ms is None]
    if answered:
        bottom.plot(*zip(*answered, strict=True), ".", markersize=2, label="round trip")
    if unanswered:
        bottom.plot(unanswered, [0.0] * len(unanswered), "x", color="tab:red", label="no reply")
    top.set_ylim(bottom=0)
    top.set_ylabel("throughput (Mbit/s)")
    bottom.set_ylabel("echo RTT (ms)")
    bottom.set_xlabel(
        "time since the migration's start (s)"
        if run.migration is not None
        else "time since the stream's start (s)"
    )
    title = (
        f"Run {run.run}: downtime {run.downtime.seconds * 1e3:.0f} ms, "
        f"{run.lost} of {run.sent} packets lost"
    )
    if run.migration is not None:
        title += f", migration {run.migration.seconds:.2f} s"
    top.set_title(title)
    top.legend(loc="lower right", fontsize="small")
    if answered or unanswered:
        bottom.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return True


def write_session(
    runs: Sequence[OutageRun], directory: Path, *, figures: bool = True
) -> list[Path]:
    """Everything of a session in ``directory``: ``runs.csv``, ``summary.txt``,
    ``summary.json`` (the summary and the runs' rows) and per run ``run-N.csv`` and
    ``run-N.png`` (the figure when matplotlib is there)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = [write_runs_csv(runs, directory / "runs.csv")]
    if runs:
        summary = summarise(runs)
        text = directory / "summary.txt"
        text.write_text(summary.table())
        doc = {"summary": summary.as_dict(), "runs": [r.row() for r in runs]}
        data = directory / "summary.json"
        data.write_text(json.dumps(doc, indent=1) + "\n")
        written += [text, data]
    for run in runs:
        written.append(write_series_csv(run, directory / f"run-{run.run}.csv"))
        png = directory / f"run-{run.run}.png"
        if figures and write_figure(run, png):
            written.append(png)
    return written
