"""verify without a kernel: expectations, statistics, rate arithmetic, report forms, the
check logic fed with made-up measurements, and the scanner's refusal to leave its scope."""

from __future__ import annotations

import collections
import ipaddress
import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from netmanager.apply.prepare import prepare
from netmanager.verify import connectivity, throughput
from netmanager.verify.connectivity import Owners, PairPlan
from netmanager.verify.expect import (
    Probe,
    Reach,
    TopologyView,
    arp_expected,
    declared_rate,
    expect,
    frame_rate,
    payload_bytes,
)
from netmanager.verify.iperf import Throughput, parse
from netmanager.verify.report import Check, Kind, Report, kinds_for_level
from netmanager.verify.scan import IpProbe, IpResult, Scanner, ScanResult, ScopeError
from netmanager.verify.stats import binomial_bounds, binomial_cdf, rtt_summary

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
AEF = (EXAMPLES / "aef-grid/real.xml", EXAMPLES / "aef-grid/virtual.xml")
TWO = (EXAMPLES / "two-hosts/real.xml", EXAMPLES / "two-hosts/virtual.xml")
FEATURES = frozenset({"vxlan", "tbf", "htb", "ifb", "bridge"})
A = ipaddress.IPv4Address

ROUTED = """<?xml version="1.0" encoding="UTF-8"?>
<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="routed">
  <network name="left" cidr="10.40.1.0/24" isolated="false">
    <shaping bandwidth="20Mbit"/>
  </network>
  <network name="right" cidr="10.40.2.0/24" isolated="false"/>
  <network name="far" cidr="10.40.3.0/24"/>
  <vm name="gw" forward="true">
    <interface network="left" ip="10.40.1.1"/>
    <interface network="right" ip="10.40.2.1"/>
  </vm>
  <vm name="l1"><interface network="left" ip="10.40.1.11"/>
    <route to="10.40.2.0/24" via="10.40.1.1"/></vm>
  <vm name="r1"><interface network="right" ip="10.40.2.11"/>
    <route to="10.40.1.0/24" via="10.40.2.1"/></vm>
  <vm name="f1"><interface network="far" ip="10.40.3.11"/></vm>
  <rules>
    <deny from="l1" to="r1" protocol="udp"/>
    <allow from="left" to="far" protocol="tcp" ports="22"/>
  </rules>
</virtual>
"""


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NETMANAGER_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def _view(real: Path, virtual: Path) -> TopologyView:
    deployment = prepare(real, virtual, features=FEATURES)
    return TopologyView(deployment.model, deployment.configs)


def _routed(tmp: Path) -> TopologyView:
    virtual = tmp / "routed.xml"
    virtual.write_text(ROUTED)
    return _view(TWO[0], virtual)


def test_aef_grid_expectations_follow_virtual_xml(state: Path) -> None:
    view = _view(*AEF)
    nodes = view.nodes
    by_ip = {str(n.address): n for n in view.nics}
    # inside a site, across hosts: both ways
    assert expect(view, nodes["vmgrid101"], by_ip["10.1.0.18"], Probe("icmp")).reach is Reach.BOTH
    # proxies over the backbone
    assert expect(view, nodes["vmgridpeer1"], by_ip["10.0.0.2"], Probe("icmp")).reach is Reach.BOTH
    # across sites, and to a proxy's backbone address: nothing (no route)
    other_site = expect(view, nodes["vmgrid101"], by_ip["10.2.0.11"], Probe("tcp", 7))
    assert other_site.reach is Reach.NONE and other_site.forward.outcome == "no route"
    assert expect(view, nodes["vmgrid101"], by_ip["10.0.0.1"], Probe("icmp")).reach is Reach.NONE
    # ARP: the owner's MAC on the own network, nobody for another network's address
    nic101 = nodes["vmgrid101"].nics[0]
    assert arp_expected(view, nic101, A("10.1.0.18")) == {by_ip["10.1.0.18"].mac}
    assert arp_expected(view, nic101, A("10.0.0.1")) == set()
    # the backbone is declared 1 Mbit/s in both directions; hosts differ, the underlay
    # (100 Mbit/s) is no limit
    walk = expect(view, nodes["vmgridpeer1"], by_ip["10.0.0.2"], Probe("tcp", 5201)).forward
    limit = declared_rate(view, walk)
    assert limit.declared_bps == 1_000_000 and limit.expected_bps == 1_000_000


def test_routes_rules_and_ports_through_a_gateway(state: Path) -> None:
    view = _routed(state)
    nodes = view.nodes
    r1 = next(n for n in view.nics if n.node == "r1")
    f1 = next(n for n in view.nics if n.node == "f1")
    icmp = expect(view, nodes["l1"], r1, Probe("icmp"))
    assert icmp.reach is Reach.BOTH
    assert [h.receiver.node for h in icmp.forward.hops] == ["gw", "r1"]
    assert [h.receiver.node for h in icmp.reply.hops] == ["gw", "l1"]  # type: ignore[union-attr]
    # the deny rule comes first for UDP
    udp = expect(view, nodes["l1"], r1, Probe("udp", 7))
    assert udp.reach is Reach.NONE and "deny" in udp.forward.reason
    # 'far' is isolated: only tcp/22 from 'left' is allowed, and l1 has no route there
    assert expect(view, nodes["l1"], f1, Probe("tcp", 22)).forward.outcome == "no route"
    probes = {str(p) for p in connectivity.probes_between(view, nodes["l1"], f1, 7)}
    assert {"icmp", "tcp/7", "udp/7"} <= probes
    # a path through the gateway: its address towards the sender, then the destination
    plans, probes = connectivity.plan_paths(
        [view],
        sample=None,
        rng=random.Random(0),
        keys=connectivity.Keys(),
        sources={n.namespace for n in view.vms},
    )
    to_right = next(p for p in plans if p.src.name == "l1" and p.dst.network == "right")
    assert to_right.expected[0] == "10.40.1.1" and len(to_right.expected) == 2
    assert {p.ttl for p in probes if p.key in to_right.keys} == {1, 2, 3, 4}
    # bandwidth: left is 20 Mbit/s, right unshaped: the path l1 -> r1 holds 20 Mbit/s
    assert declared_rate(view, icmp.forward).declared_bps == 20_000_000


def test_rate_arithmetic_goodput_and_frames() -> None:
    # a full TCP frame at MTU 1450 (VXLAN) carries 1398 bytes in 1464
    assert payload_bytes(1450, "tcp") == 1398
    assert payload_bytes(1450, "udp") == 1422
    assert frame_rate(10_000_000 * 1398 / 1464, 1450, 1398) == pytest.approx(10_000_000)


def test_statistics() -> None:
    assert binomial_bounds(100, 0.0) == (0, 0)
    lo, hi = binomial_bounds(1000, 0.05)
    assert lo < 50 < hi and lo > 25 and hi < 80
    assert binomial_cdf(1000, 1000, 0.3) == 1.0
    summary = rtt_summary([1.0, 2.0, 3.0, 4.0])
    assert summary["mean"] == 2.5 and summary["min"] == 1.0 and summary["max"] == 4.0


def test_iperf_json_is_read_from_the_receiver_intervals() -> None:
    document = {
        "start": {"tcp_mss_default": 1398},
        "intervals": [
            {"sum": {"bytes": 1, "seconds": 1.0, "bits_per_second": 8}},
            {"sum": {"bytes": 125_000, "seconds": 1.0, "bits_per_second": 1e6}},
            {"sum": {"bytes": 125_000, "seconds": 1.0, "bits_per_second": 1e6}},
        ],
        "end": {"sum_sent": {"retransmits": 3, "bytes": 250_001, "seconds": 3.0}},
    }
    result = parse(json.dumps(document), "tcp", skip=1)
    assert result.goodput_bps == pytest.approx(1e6) and result.mss == 1398
    assert result.retransmits == 3


def test_bandwidth_checks_compare_frames_with_the_declared_rate(state: Path) -> None:
    view = _view(*TWO)
    directions = throughput.directions([view], None)
    assert {(d.sender.node, d.receiver.node) for d in directions} == {
        ("vm1", "vm2"),
        ("vm2", "vm1"),
    }
    mtu = directions[0].sender.mtu

    def good(**kw: object) -> Throughput:
        return Throughput("tcp", 10e6 * (mtu - 52) / (mtu + 14) * 0.995, 4.0, mss=mtu - 52)

    def bad(**kw: object) -> Throughput:
        return Throughput("tcp", 5e6, 4.0, mss=mtu - 52)

    sources = {n.namespace for n in view.vms}
    checks = throughput.bandwidth_checks(
        directions, udp=False, port=5201, budget_s=30, sources=sources, runner=good
    )
    assert len(checks) == 2 and all(c.passed for c in checks)
    assert checks[0].configured == 10_000_000 and checks[0].error_pct == pytest.approx(-0.5)
    assert checks[0].extra["placement"] == "remote"
    failed = throughput.bandwidth_checks(
        directions[:1], udp=False, port=5201, budget_s=30, sources=sources, runner=bad
    )
    assert not failed[0].passed and failed[0].error_pct is not None and failed[0].error_pct < -40


def test_a_rate_off_only_while_the_cpus_are_contended_is_inconclusive(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run off the rate while some task waited for a CPU most of the time is tried
    again; off in every try so, it is inconclusive (passed, not applicable) with the
    pressure kept.  Short on a quiet machine, it is measured up to three times (a sender
    descheduled for a moment does not show in a PSI average) and fails when short in each;
    far above the rate however busy, it fails at once."""
    view = _view(*TWO)
    (direction, *_) = throughput.directions([view], None)
    mtu = direction.sender.mtu
    sources = {n.namespace for n in view.vms}
    shares: list[float] = []
    monkeypatch.setattr(throughput.CpuWatch, "share", lambda self: shares.pop(0))
    runs: list[float] = []

    def run_at(*rates: float) -> Callable[..., Throughput]:
        queue = list(rates)

        def runner(**kw: object) -> Throughput:
            runs.append(queue[0])
            return Throughput("tcp", queue.pop(0) * (mtu - 52) / (mtu + 14), 4.0, mss=mtu - 52)

        return runner

    def check(runner: Callable[..., Throughput]) -> Check:
        runs.clear()
        (one,) = throughput.bandwidth_checks(
            [direction], udp=False, port=5201, budget_s=30, sources=sources, runner=runner
        )
        return one

    shares[:] = [0.9, 0.8, 0.95]
    busy = check(run_at(9.3e6, 9.4e6, 9.2e6))
    assert len(runs) == 3 and busy.passed and not busy.applicable
    assert busy.error_pct == pytest.approx(-6.0, abs=0.1)  # the closest try is kept
    assert busy.extra["cpu_pressure"] == [0.9, 0.8, 0.95] and "inconclusive" in busy.detail

    shares[:] = [0.9, 0.7]
    second = check(run_at(9.3e6, 9.95e6))
    assert len(runs) == 2 and second.passed and second.applicable

    shares[:] = [0.9, 0.1, 0.1]  # quiet in the last tries and still short: the shaper is slow
    slow = check(run_at(9.3e6, 9.3e6, 9.3e6))
    assert len(runs) == 3 and not slow.passed and slow.applicable

    shares[:] = [0.2, 0.1]  # quiet and short once, then on the rate: the better try
    quiet = check(run_at(9.7e6, 9.95e6))
    assert len(runs) == 2 and quiet.passed and quiet.applicable
    assert quiet.extra["cpu_pressure"] == [0.2, 0.1]

    shares[:] = [0.2, 0.1, 0.1]  # quiet and short three times: the shaper is slow
    short = check(run_at(9.7e6, 9.6e6, 9.6e6))
    assert len(runs) == 3 and not short.passed and short.applicable

    shares[:] = [0.9, 0.9, 0.9]  # above, by less than the omitted second's share (1/4)
    inflated = check(run_at(11.1e6, 11.2e6, 11.0e6))
    assert len(runs) == 3 and inflated.passed and not inflated.applicable

    shares[:] = [0.9]  # far above the rate: no busy machine explains a missing shaper
    fast = check(run_at(20e6))
    assert len(runs) == 1 and not fast.passed and fast.applicable

    # UDP: short on a quiet machine, then a try whose sender could not even offer the
    # rate (inconclusive: it was not scheduled) is contention too, and gets a third try
    # (CI's guests once failed on the first try's -2.8 % with the second cut short)
    def udp_at(*tries: tuple[float, float]) -> Callable[..., Throughput]:
        queue = list(tries)

        def runner(**kw: object) -> Throughput:
            if kw["proto"] == "tcp":  # on the rate
                return Throughput("tcp", 10e6 * (mtu - 52) / (mtu + 14), 4.0, mss=mtu - 52)
            goodput, offered = queue.pop(0)
            runs.append(goodput)
            payload = mtu - 28
            scale = payload / (mtu + 14)
            return Throughput("udp", goodput * scale, 4.0, offered_bps=offered * scale)

        return runner

    def udp_check(runner: Callable[..., Throughput]) -> Check:
        runs.clear()
        checks = throughput.bandwidth_checks(
            [direction], udp=True, port=5201, budget_s=30, sources=sources, runner=runner
        )
        (one,) = [c for c in checks if c.probe == "iperf3 udp"]
        return one

    shares[:] = [0.1, 0.36, 0.59, 0.3]  # the TCP run first
    third = udp_check(udp_at((9.72e6, 12.5e6), (9.0e6, 9.2e6), (9.97e6, 12.5e6)))
    assert len(runs) == 3 and third.passed and third.applicable
    assert third.extra["tries_bps"] == [pytest.approx(9.72e6, rel=1e-3)] + [
        pytest.approx(r, rel=1e-3) for r in (9.0e6, 9.97e6)
    ]
    shares[:] = [0.1, 0.36, 0.59, 0.3]  # short again on the third, quiet: the shaper is slow
    slow_udp = udp_check(udp_at((9.72e6, 12.5e6), (9.0e6, 9.2e6), (9.7e6, 12.5e6)))
    assert len(runs) == 3 and not slow_udp.passed and slow_udp.applicable


def test_scan_checks_find_leaks(state: Path) -> None:
    """The same probes read as pass or leak depending on what came back."""
    view = _view(*AEF)
    nodes = view.nodes
    by_ip = {str(n.address): n for n in view.nics}
    src, far, near = nodes["vmgrid101"], by_ip["10.2.0.11"], by_ip["10.1.0.18"]
    owners = Owners(
        {n.namespace: (view.name, n.name) for n in view.nodes.values()},
        {nic.mac: f"{view.name}/{nic.node}" for nic in view.nics},
    )
    isolated = PairPlan(view, src, far)
    isolated.ip.append((Probe("icmp"), expect(view, src, far, Probe("icmp")), 1))
    isolated.arp.append((src.nics[0], set(), 2))
    reachable = PairPlan(view, src, near)
    reachable.ip.append((Probe("icmp"), expect(view, src, near, Probe("icmp")), 3))
    reachable.arp.append((src.nics[0], {near.mac}, 4))
    quiet = ScanResult(
        {1: IpResult(error="no route"), 3: IpResult(answer="echo reply")},
        {2: set(), 4: {near.mac}},
        {},
    )
    checks = connectivity.scan_checks([isolated, reachable], quiet, kinds_for_level(2), owners, {})
    assert [(c.kind, c.passed) for c in checks] == [
        (Kind.ISOLATION, True),
        (Kind.REACHABILITY, True),
    ]
    intruder = "02:00:00:00:00:99"
    leaky = ScanResult(
        {
            1: IpResult(error="no answer", delivered={far.namespace}),
            3: IpResult(error="no answer"),
        },
        {2: {far.mac}, 4: {near.mac, intruder}},
        {},
    )
    checks = connectivity.scan_checks([isolated, reachable], leaky, kinds_for_level(2), owners, {})
    failed = {(c.kind, c.dst): c for c in checks if not c.passed}
    assert "one-way leak" in failed[(Kind.ISOLATION, far.label())].detail
    assert "vmgrid201" in failed[(Kind.ISOLATION, far.label())].detail
    assert "unknown 02:00:00:00:00:99" in failed[(Kind.ISOLATION, near.label())].detail
    assert failed[(Kind.REACHABILITY, near.label())].measured == "unreachable"
    # a frame from outside the topology is a leak by itself
    frames = ScanResult({}, {}, {src.namespace: collections.Counter({intruder: 3})})
    capture = connectivity.capture_checks([view], frames, owners)
    assert any(not c.passed and c.dst == "vmgrid101" for c in capture)

    # a second look: only the probe that had to be answered is sent again; its answer
    # then counts, and what arrived anywhere in the first look stays a leak
    assert connectivity.unanswered([isolated, reachable], leaky) == ({3}, set())
    assert connectivity.unanswered([isolated, reachable], quiet) == (set(), set())
    silent = ScanResult({3: IpResult(answer="echo reply")}, {2: set(), 4: set()}, {})
    assert connectivity.unanswered([isolated, reachable], silent) == (set(), {4})
    again = ScanResult({3: IpResult(answer="echo reply")}, {}, {})
    assert connectivity.merge_second_look(leaky, again) == 1
    assert connectivity.merge_second_look(silent, ScanResult({}, {4: {near.mac}}, {})) == 1
    assert silent.arp[4] == {near.mac}
    checks = connectivity.scan_checks([isolated, reachable], leaky, kinds_for_level(2), owners, {})
    failed = {(c.kind, c.dst): c for c in checks if not c.passed}
    assert (Kind.REACHABILITY, near.label()) not in failed
    assert "one-way leak" in failed[(Kind.ISOLATION, far.label())].detail
    lost = ScanResult({3: IpResult(error="no answer")}, {}, {})
    still = ScanResult({3: IpResult(error="no answer", delivered={far.namespace})}, {}, {})
    assert connectivity.merge_second_look(lost, still) == 0
    assert lost.ip[3].delivered == {far.namespace}


def test_report_forms() -> None:
    report = Report(
        ("t",),
        (Kind.REACHABILITY, Kind.BANDWIDTH),
        [
            Check(Kind.REACHABILITY, "a", "b 10.0.0.2", "reachable", "reachable", True, "t"),
            Check(
                Kind.BANDWIDTH,
                "a",
                "b",
                10_000_000,
                9_000_000.0,
                False,
                "t",
                probe="iperf3 tcp",
                unit="bit/s",
                tolerance="±2%",
                error_pct=-10.0,
                detail="too slow",
            ),
        ],
    )
    document = report.as_json()
    assert document["passed"] is False
    assert set(document["checks"][1]) >= {
        "kind",
        "src",
        "dst",
        "configured",
        "measured",
        "unit",
        "passed",
    }
    assert (
        document["checks"][1]["unit"] == "bit/s" and document["summary"]["bandwidth"]["failed"] == 1
    )
    assert report.csv_text().splitlines()[0].startswith("kind,topology,src,dst,probe,configured")
    text = report.table()
    assert "FAIL" in text and "1 check(s) failed" in text and "-10.00%" in text
    assert "bandwidth a -> b [iperf3 tcp]" in text


def test_plots_are_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    report = Report(("t",), (Kind.LATENCY, Kind.BANDWIDTH))
    for rate, measured, placement in ((1e6, 0.99e6, "local"), (1e7, 1.001e7, "remote")):
        report.checks.append(
            Check(
                Kind.BANDWIDTH,
                "a",
                "b",
                rate,
                measured,
                True,
                "t",
                probe="iperf3 tcp",
                unit="bit/s",
                extra={"placement": placement},
            )
        )
    report.checks.append(
        Check(
            Kind.LATENCY,
            "a",
            "b",
            0.0,
            0.2,
            True,
            "t",
            unit="ms",
            applicable=False,
            extra={"placement": "local"},
        )
    )
    written = report.write(tmp_path / "out")
    names = {p.name for p in written}
    assert names == {"report.json", "checks.csv", "bandwidth.png", "latency.png"}
    assert (tmp_path / "out" / "bandwidth.png").read_bytes()[:4] == b"\x89PNG"


def test_the_scanner_refuses_anything_outside_its_scope() -> None:
    scanner = Scanner(namespaces={"nmv-t-a"}, targets={A("10.0.0.2")})
    with pytest.raises(ScopeError):
        scanner.run([IpProbe(1, "nmv-t-a", A("10.0.0.1"), A("192.0.2.1"), "icmp")])
    with pytest.raises(ScopeError):
        scanner.run([IpProbe(1, "somebody-else", A("10.0.0.1"), A("10.0.0.2"), "icmp")])


def test_levels_and_unknown_topology(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert kinds_for_level(1) == (Kind.REACHABILITY,)
    assert kinds_for_level(7)[-1] is Kind.STATE
    with pytest.raises(ValueError):
        kinds_for_level(8)
    from netmanager.cli.main import main

    assert main(["verify", *map(str, TWO)]) == 1  # not applied: E730
    assert "E730" in capsys.readouterr().err
    assert main(["verify", "--only", "speed", *map(str, TWO)]) == 2


def test_probes_across_a_slow_link_are_spread_over_time(state: Path) -> None:
    """aef-grid's backbone has 1 Mbit/s: the scan's probes that cross it (and their
    answers) leave a quarter of it at most, each some 6.4 ms after the one before; the
    probes that stay inside unshaped sites go at once."""
    import itertools

    view = _view(*AEF)
    counter = itertools.count(1)
    _, probes, _ = connectivity.plan_scan(
        [view],
        [Kind.REACHABILITY, Kind.ISOLATION],
        port=7,
        sample=None,
        rng=random.Random(0),
        keys=lambda: next(counter),
        sources={n.namespace for n in view.vms},
    )
    paced = sorted(p.at for p in probes if p.at > 0)
    assert paced and len(paced) < len(probes) // 10
    gap = connectivity.PROBE_FRAME_BITS / (connectivity.PROBE_RATE_SHARE * 1_000_000)
    assert all(b - a >= gap - 1e-9 for a, b in itertools.pairwise([0.0, *paced]))
