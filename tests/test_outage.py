"""The outage measurement of ``migrate --measure``: the analysis fed with made-up worker
results (a known gap, known losses, a periodic stream, clocks apart, repeated runs), and
the two workers for real in two namespaces of their own joined by a veth pair, whose link
is taken down for some 300 ms in the middle of the stream."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netmanager.verify import outage
from netmanager.verify.outage import OutageError, OutageRun, Span, analyse, summarise

BOOT = "0b0a1d00-0000-4000-8000-000000000000"


def _results(
    *,
    pps: int = 1000,
    seconds: float = 2.0,
    size: int = 100,
    drop: Any = lambda seq, t: False,
    delay_us: Any = lambda seq: 50,
    echo_hz: int = 100,
    echo_drop: Any = lambda t: False,
    offset_us: int = 0,
    start_us: int = 10_000_000,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A sender's and a receiver's result as the workers write them: ``pps`` datagrams a
    second for ``seconds``, those for which ``drop(seq, t)`` lost (t in seconds since the
    start), each ``delay_us(seq)`` on the way; the echo likewise; the receiver's clock
    ``offset_us`` ahead (and another kernel's) when not 0."""
    interval = 1_000_000 // pps
    sent = int(seconds * pps)
    stream: dict[str, list[int]] = {"seq": [], "sent_us": [], "recv_us": [], "size": []}
    arrivals = []
    for seq in range(sent):
        at = start_us + seq * interval
        if not drop(seq, (at - start_us) / 1e6):
            arrivals.append((at + delay_us(seq) + offset_us, seq, at))
    for recv, seq, at in sorted(arrivals):
        stream["seq"].append(seq)
        stream["sent_us"].append(at)
        stream["recv_us"].append(recv)
        stream["size"].append(size)
    echo: dict[str, list[int | None]] = {"sent_us": [], "peer_us": [], "reply_us": []}
    for n in range(int(seconds * echo_hz)):
        at = start_us + n * 1_000_000 // echo_hz
        lost = echo_drop((at - start_us) / 1e6)
        echo["sent_us"].append(at)
        echo["peer_us"].append(None if lost else at + 100 + offset_us)
        echo["reply_us"].append(None if lost else at + 200)
    clock = {"boot_id": BOOT, "monotonic_us": start_us, "realtime": 1.8e9}
    sender = {
        "format": outage.FORMAT,
        "role": "send",
        "clock": clock,
        "params": {"peer": "10.0.0.2", "rate_bps": pps * size * 8, "size": size},
        "started_us": start_us,
        "stopped_us": start_us + sent * interval,
        "stop": "duration",
        "sent": sent,
        "first_send_us": start_us,
        "last_send_us": start_us + (sent - 1) * interval,
        "skipped": 0,
        "errors": {},
        "stalls": [],
        "echo": echo,
    }
    receiver_clock = dict(clock)
    if offset_us:
        receiver_clock = {
            "boot_id": BOOT.replace("0b0a", "0c0a"),
            "monotonic_us": start_us + offset_us,
            "realtime": 1.8e9,
        }
    receiver = {
        "format": outage.FORMAT,
        "role": "receive",
        "clock": receiver_clock,
        "started_us": start_us + offset_us,
        "stopped_us": start_us + offset_us + sent * interval,
        "stop": "file",
        "stream": stream,
        "echo_answered": 0,
        "foreign": 0,
    }
    return sender, receiver


def _gap(start: float, end: float) -> Any:
    return lambda seq, t: start <= t < end


def test_a_known_gap_is_the_downtime() -> None:
    sender, receiver = _results(drop=_gap(1.0, 1.3), echo_drop=lambda t: 1.0 <= t < 1.3)
    run = analyse(sender, receiver, migration=(10.95, 11.40))
    # the last datagram before the gap left at 0.999 s, the first after at 1.300 s
    assert run.downtime_s == pytest.approx(0.301, abs=1e-9)
    assert run.downtime.from_s == pytest.approx(0.999 - 0.95 + 50e-6)
    assert run.lost == 300 and run.sent == 2000 and run.received == 1700
    assert run.lost_ranges == ((1000, 1299),)
    assert run.echo_sent == 200 and run.echo_lost == 30
    assert run.echo_downtime is not None
    assert run.echo_downtime.seconds == pytest.approx(0.31, abs=1e-9)  # 0.99 to 1.30 s
    assert run.migration == Span(0.0, pytest.approx(0.45))
    assert run.migration_s == pytest.approx(0.45)
    assert run.same_clock and run.clock_offset_s == 0.0
    assert run.rtt_ms is not None and run.rtt_ms.p50 == pytest.approx(0.2)
    # 100 ms bins from the migration's start (0.95 s into the stream): 100 datagrams of
    # 800 bits each, none in the gap (0.05 to 0.35 s on the run's axis)
    bins = {round(b.t_s, 3): b for b in run.series}
    assert min(bins) == -1.0 and max(bins) == 1.0
    assert bins[-0.9].bits_per_s == pytest.approx(800_000) and bins[-0.9].packets == 100
    assert bins[0.0].packets == 50
    assert bins[0.1].packets == 0 and bins[0.2].packets == 0 and bins[0.1].bits_per_s == 0
    assert bins[0.4].bits_per_s == pytest.approx(800_000)
    assert bins[0.1].echo_requests == 10 and bins[0.1].echo_replies == 0
    assert bins[0.4].echo_replies == 10 and bins[0.4].rtt_max_ms == pytest.approx(0.2)


def test_losses_are_counted_as_ranges_with_duplicates_and_reordering() -> None:
    lost = {5, 6, 7, 100, 1999}
    sender, receiver = _results(drop=lambda seq, t: seq in lost)
    stream = receiver["stream"]
    # datagram 50 arrives a second time, and 60 and 61 swap places
    i = stream["seq"].index(50)
    for column in stream.values():
        column.insert(i + 1, column[i])
    j = stream["seq"].index(60)
    for column in stream.values():
        column[j], column[j + 1] = column[j + 1], column[j]
    run = analyse(sender, receiver)
    assert run.lost == 5 and run.received == 1995
    assert run.lost_ranges == ((5, 7), (100, 100), (1999, 1999))
    assert run.duplicates == 1 and run.reordered == 1
    assert run.row()["lost_ranges"] == "5-7;100;1999"


def test_an_outage_the_stream_s_end_cut_short_counts() -> None:
    sender, receiver = _results(drop=lambda seq, t: t >= 1.5)
    run = analyse(sender, receiver)
    assert run.downtime_s == pytest.approx(1.999 - 1.499 - 50e-6)  # to the last send
    assert run.migration is None and run.downtime.from_s == pytest.approx(1.499 + 50e-6)


def test_a_periodic_stream_has_no_jitter_and_alternating_delays_some() -> None:
    run = analyse(*_results())
    assert run.jitter_ms == pytest.approx(0.0, abs=1e-9)
    assert run.jitter_max_ms == pytest.approx(0.0, abs=1e-9)
    # delays of 0 and 1 ms in turn: every |D| is 1 ms, to which J converges
    alternating = analyse(*_results(delay_us=lambda seq: 1000 * (seq % 2)))
    assert alternating.jitter_ms == pytest.approx(1.0, rel=1e-3)
    assert all(b.jitter_ms is not None for b in alternating.series if b.packets)


def test_clocks_apart_are_put_together_by_the_echo() -> None:
    same = analyse(*_results(drop=_gap(1.0, 1.3)), migration=(10.95, 11.40))
    apart = analyse(
        *_results(drop=_gap(1.0, 1.3), offset_us=5_000_000_123), migration=(10.95, 11.40)
    )
    assert not apart.same_clock
    assert apart.clock_offset_s == pytest.approx(5000.000123, abs=1e-6)
    assert apart.downtime == same.downtime and apart.migration == same.migration
    # the migration given on the receiver's clock
    receiver_clock = analyse(
        *_results(drop=_gap(1.0, 1.3), offset_us=5_000_000_123),
        migration=(5010.950123, 5011.400123),
        clock="receiver",
    )
    assert receiver_clock.downtime.from_s == pytest.approx(same.downtime.from_s, abs=1e-6)


def test_a_failed_worker_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"format": outage.FORMAT, "role": "send", "error": "OSError: x"}))
    with pytest.raises(OutageError, match="send worker failed"):
        outage.load(path)
    path.write_text(json.dumps({"format": "other/9"}))
    with pytest.raises(OutageError, match="format"):
        outage.load(path)
    sender, receiver = _results()
    with pytest.raises(OutageError):
        analyse(receiver, sender)


def _runs() -> list[OutageRun]:
    base = analyse(*_results(drop=_gap(1.0, 1.1)), migration=(10.9, 11.2))
    return [
        dataclasses.replace(base, run=n, downtime=Span(0.0, d), lost=lost, migration=Span(0.0, m))
        for n, (d, lost, m) in enumerate(
            [(0.5, 40, 3.0), (0.1, 0, 1.0), (0.3, 10, 2.0), (0.2, 20, 5.0), (0.4, 30, 4.0)],
            start=1,
        )
    ]


def test_the_summary_spreads_over_runs() -> None:
    summary = summarise(_runs())
    assert summary.runs == 5
    assert (summary.downtime_s.min, summary.downtime_s.max) == (0.1, 0.5)
    assert summary.downtime_s.median == pytest.approx(0.3)
    assert summary.downtime_s.p95 == pytest.approx(0.48)  # 0.4 + 0.8 * (0.5 - 0.4)
    assert summary.lost.median == 20 and summary.lost.p95 == pytest.approx(38)
    assert summary.migration_s is not None and summary.migration_s.median == 3.0
    doc = json.loads(json.dumps(summary.as_dict()))
    assert doc["downtime_s"]["p95"] == pytest.approx(0.48) and doc["runs"] == 5
    table = summary.table().splitlines()
    assert table[0] == "5 runs"
    assert table[2].split() == ["downtime", "(ms)", "100.0", "300.0", "480.0", "500.0"]
    assert len({len(line) for line in table[1:]}) == 1  # aligned columns
    with pytest.raises(ValueError):
        summarise([])


def test_a_session_is_written(tmp_path: Path) -> None:
    runs = _runs()[:2]
    written = outage.write_session(runs, tmp_path / "session")
    names = {p.name for p in written}
    assert {"runs.csv", "summary.txt", "summary.json", "run-1.csv", "run-2.csv"} <= names
    rows = (tmp_path / "session" / "runs.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("run,rate_bps,")
    series = (tmp_path / "session" / "run-1.csv").read_text().splitlines()
    assert series[0] == ",".join(outage.SERIES_COLUMNS)
    assert len(series) == len(runs[0].series) + 1
    assert json.loads((tmp_path / "session" / "summary.json").read_text())["runs"][1]["run"] == 2
    assert ("run-1.png" in names) == outage.available()


# -- the workers ----------------------------------------------------------------------------


def test_the_workers_stop_on_sigterm_and_report_failures(tmp_path: Path) -> None:
    """On the loopback, on ports of the kernel's choosing (the receiver's ``ready`` tells
    them): both ends stop on SIGTERM and write their results; a sender that cannot start
    writes its error instead."""
    out_send, out_receive = tmp_path / "send", tmp_path / "receive"
    receive = outage.receive_argv(
        out_receive, python=sys.executable, bind="127.0.0.1", port=0, echo_port=0
    )
    receiver = subprocess.Popen(receive, stderr=subprocess.PIPE)
    sender = None
    try:
        _wait_for(out_receive / "ready", receiver)
        ports = json.loads((out_receive / "ready").read_text())
        send = outage.send_argv(
            out_send,
            "127.0.0.1",
            python=sys.executable,
            port=ports["port"],
            echo_port=ports["echo_port"],
            rate_bps=400_000,
            size=500,
        )
        sender = subprocess.Popen(send, stderr=subprocess.PIPE)
        _wait_for(out_send / "ready", sender)
        time.sleep(0.5)
        for process in (sender, receiver):
            process.terminate()
            _, err = process.communicate(timeout=10)
            assert process.returncode == 0, err.decode()
    finally:
        for process in (sender, receiver):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
    sent, received = outage.load(out_send / "result.json"), outage.load(out_receive / "result.json")
    assert sent["stop"] == "signal" and received["stop"] == "signal"
    run = analyse(sent, received)
    assert run.sent >= 20 and run.received >= 20 and run.rtt_ms is not None
    assert run.size == 500 and run.same_clock

    failed = subprocess.run(
        outage.send_argv(tmp_path / "bad", "127.0.0.1", python=sys.executable, rate_bps=0),
        capture_output=True,
        check=False,
    )
    assert failed.returncode == 1
    with pytest.raises(OutageError, match="send worker failed: ValueError"):
        outage.load(tmp_path / "bad" / "result.json")


# -- for real: two namespaces, a veth pair, a link taken down ----------------------------

SENDER_IP, RECEIVER_IP = "10.99.0.1", "10.99.0.2"


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True)


@pytest.fixture
def pair(prefix: str) -> Iterator[tuple[str, str]]:
    """Two namespaces (the test's prefix and a letter), a veth pair between them: ``o0``
    in the sender's with 10.99.0.1/24, ``o1`` in the receiver's with 10.99.0.2/24."""
    names = (f"{prefix}a", f"{prefix}b")
    try:
        for name in names:
            _ip("netns", "add", name)
        a, b = names
        _ip("-n", a, "link", "add", "o0", "type", "veth", "peer", "name", "o1", "netns", b)
        for ns, ifname, address in ((a, "o0", SENDER_IP), (b, "o1", RECEIVER_IP)):
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", ifname)
            _ip("-n", ns, "link", "set", ifname, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield names
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def _wait_for(path: Path, process: subprocess.Popen[bytes], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()[1].decode()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.01)


@pytest.mark.privileged
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create namespaces")
def test_a_link_down_for_300_ms_is_measured(pair: tuple[str, str], tmp_path: Path) -> None:
    """2 Mbit/s of 1000-byte datagrams for 3 s; after about 1.2 s the sender's end of the
    veth goes down for 320 ms (times taken after ``down`` returned and before ``up`` was
    asked: the link was down at least that long).  The analysis finds that outage."""
    sender_ns, receiver_ns = pair
    out_send, out_receive = tmp_path / "send", tmp_path / "receive"
    rate = 2e6
    processes: list[subprocess.Popen[bytes]] = []
    try:
        receiver = subprocess.Popen(
            [
                *("ip", "netns", "exec", receiver_ns),
                *outage.receive_argv(out_receive, python=sys.executable, bind=RECEIVER_IP),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        processes.append(receiver)
        _wait_for(out_receive / "ready", receiver)
        sender = subprocess.Popen(
            [
                *("ip", "netns", "exec", sender_ns),
                *outage.send_argv(
                    out_send, RECEIVER_IP, python=sys.executable, rate_bps=rate, duration_s=3.0
                ),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        processes.append(sender)
        _wait_for(out_send / "ready", sender)
        time.sleep(1.2)
        _ip("-n", sender_ns, "link", "set", "o0", "down")
        down = time.monotonic()
        time.sleep(0.32)
        up = time.monotonic()
        _ip("-n", sender_ns, "link", "set", "o0", "up")
        _, err = sender.communicate(timeout=30)
        assert sender.returncode == 0, err.decode()
        (out_receive / "stop").touch()
        _, err = receiver.communicate(timeout=30)
        assert receiver.returncode == 0, err.decode()
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(10)

    run = outage.analyse_files(
        out_send / "result.json", out_receive / "result.json", migration=(down, up)
    )
    assert run.same_clock
    assert 0.25 <= run.downtime_s <= 0.6, run.row()
    assert run.downtime.from_s < 0.32 and run.downtime.to_s > 0.0  # that outage, not another
    assert run.lost > 0 and run.lost_ranges, run.row()
    assert run.echo_downtime is not None and run.echo_downtime.seconds >= 0.25
    assert run.rtt_ms is not None and run.echo_lost > 0
    # nothing arrives while the link is down; about the rate before and after
    inside = [b for b in run.series if b.t_s >= 0.05 and b.t_s + run.bin_s <= 0.32]
    assert inside and all(b.bits_per_s < 0.05 * rate for b in inside), inside
    first, last = run.series[0].t_s, run.series[-1].t_s
    outside = [
        b.bits_per_s
        for b in run.series
        if first + 0.2 <= b.t_s <= run.downtime.from_s - 0.2
        or run.downtime.to_s + 0.2 <= b.t_s <= last - 0.2
    ]
    assert len(outside) >= 10
    mean = sum(outside) / len(outside)
    assert 0.85 * rate <= mean <= 1.1 * rate, outside
    assert sorted(outside)[len(outside) // 2] == pytest.approx(rate, rel=0.15), outside

    png = tmp_path / "run.png"
    if outage.available():
        assert outage.write_figure(run, png)
        assert png.read_bytes()[:4] == b"\x89PNG"
    else:
        assert not outage.write_figure(run, png) and not png.exists()
