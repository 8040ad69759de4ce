"""How verify judges the latency of VMs on guest hosts, without guests: ping's output
read, the low quantile less the guests' own round trip and the jitter's quantile, tries
again where contention delays a series, inconclusive only where this machine's CPUs were
contended (pure, no root)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from netmanager import programs
from netmanager.apply.prepare import Deployment, prepare
from netmanager.verify import connectivity, distributed
from netmanager.verify.connectivity import Keys, LatencyPlan
from netmanager.verify.distributed import GuestPings, Placement, parse_ping, ping_argv
from netmanager.verify.expect import TopologyView
from netmanager.verify.report import Kind
from netmanager.verify.scan import IpResult, ScanResult
from netmanager.verify.stats import quantile, uniform_sum_quantile

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GUESTS = (EXAMPLES / "two-hosts-guests/real.xml", EXAMPLES / "two-hosts-guests/virtual.xml")
FEATURES = frozenset({"vxlan", "tbf", "htb", "ifb", "bridge", "netem", "vlan"})

PING = """PING 10.20.0.2 (10.20.0.2) from 10.20.0.1 : 56(84) bytes of data.
64 bytes from 10.20.0.2: icmp_seq=1 ttl=64 time=41.9 ms
64 bytes from 10.20.0.2: icmp_seq=2 ttl=64 time=40.2 ms
64 bytes from 10.20.0.2: icmp_seq=2 ttl=64 time=40.9 ms (DUP!)
64 bytes from 10.20.0.2: icmp_seq=4 ttl=64 time=112 ms

--- 10.20.0.2 ping statistics ---
5 packets transmitted, 3 received, +1 duplicates, 40% packet loss, time 45ms
rtt min/avg/max/mdev = 40.200/64.700/112.000/33.500 ms
"""


@pytest.fixture
def view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[TopologyView, Deployment]:
    monkeypatch.setenv("NETMANAGER_STATE_DIR", str(tmp_path / "state"))
    deployment = prepare(*GUESTS, features=FEATURES)
    return TopologyView(deployment.model, deployment.configs), deployment


def _plan(view: TopologyView) -> LatencyPlan:
    plans, _ = connectivity.plan_latency(
        [view],
        sample=None,
        jobs=1,
        with_loss=False,
        keys=Keys(),
        sources={n.namespace for n in view.nodes.values()},
        guest_hosts={"host1", "host2"},
    )
    (plan,) = plans
    return plan


def _result(plan: LatencyPlan, series: Sequence[float], own: Sequence[float]) -> ScanResult:
    ip = {
        k: IpResult(answer="echo reply", rtt_ms=r) for k, r in zip(plan.keys, series, strict=True)
    }
    ip.update(
        {
            k: IpResult(answer="echo reply", rtt_ms=r)
            for k, r in zip(plan.own_keys, own, strict=True)
        }
    )
    return ScanResult(ip, {}, {})


def _check(plan: LatencyPlan, result: ScanResult) -> connectivity.Check:
    (check,) = connectivity.latency_checks(
        [plan], result, [Kind.LATENCY], netem=False, guest_hosts={"host1", "host2"}
    )
    return check


def test_ping_output_and_command_line() -> None:
    series = parse_ping(PING)
    assert series.sent == 5 and dict(series.rtts) == {1: 41.9, 2: 40.2, 4: 112.0}
    assert parse_ping("connect: Network is unreachable\n").error
    argv = ping_argv("/bin/ping", "10.20.0.1", "10.20.0.2", count=20, interval_s=0.01, timeout_s=6)
    assert argv == [
        "/bin/ping", "-n", "-c", "20", "-i", "0.01", "-W", "6", "-I", "10.20.0.1", "10.20.0.2"
    ]  # fmt: skip


@pytest.mark.privileged
def test_ping_sends_every_echo_and_waits_only_after_the_last(tmp_path: Path) -> None:
    """In a namespace of ours that drops every other echo request on its loopback: the
    series sends all its echoes (no deadline cuts it short), answers half, and ends
    about ``timeout_s`` after the last one."""
    if os.geteuid() != 0:
        pytest.skip("needs root (a network namespace)")
    binary = programs.which("ping")
    if binary is None:
        pytest.skip("ping is not installed (scripts/install)")
    namespace = f"nmp{uuid.uuid4().hex[:8]}"
    subprocess.run([programs.path("ip"), "netns", "add", namespace], check=True)
    try:
        ip_ns = [programs.path("ip"), "-n", namespace]
        subprocess.run([*ip_ns, "link", "set", "lo", "up"], check=True)
        rules = (
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p icmp --icmp-type echo-request "
            "-m statistic --mode nth --every 2 --packet 1 -j DROP\nCOMMIT\n"
        )
        subprocess.run(
            [programs.path("ip"), "netns", "exec", namespace, programs.path("iptables-restore")],
            input=rules,
            text=True,
            check=True,
        )
        argv = ping_argv(binary, "127.0.0.1", "127.0.0.1", count=40, interval_s=0.01, timeout_s=1)
        done = subprocess.run(
            [programs.path("ip"), "netns", "exec", namespace, *argv],
            capture_output=True,
            text=True,
            timeout=60,
        )
        series = parse_ping(done.stdout)
        assert series.sent == 40 and len(series.rtts) == 20, done.stdout
        assert sorted(series.rtts) == list(range(1, 41, 2))
    finally:
        subprocess.run([programs.path("ip"), "netns", "del", namespace], check=False)


def test_quantiles_of_samples_and_of_netem_jitter() -> None:
    assert quantile([4.0, 1.0, 3.0, 2.0], 0.0) == 1.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == pytest.approx(2.5)
    # two ports with 2 ms of uniform jitter: a triangle on [-4, 4]
    low, density = uniform_sum_quantile([2.0, 2.0], 0.1)
    assert low == pytest.approx(-4 + 4 * 0.2**0.5, abs=0.01)
    assert density == pytest.approx(0.2**0.5 / 4, rel=0.01)
    assert uniform_sum_quantile([2.0], 0.1)[0] == pytest.approx(-1.6, abs=0.01)
    assert uniform_sum_quantile([], 0.1) == (0.0, float("inf"))


def test_a_guest_pair_is_judged_on_its_low_quantile_less_its_own_round_trip(
    view: tuple[TopologyView, Deployment],
) -> None:
    topology, _ = view
    plan = _plan(topology)
    assert len(plan.own_keys) == connectivity.OWN_ECHOES
    want = connectivity.declared(topology, plan.expectation)
    assert want.rtt_ms == 40 and want.jitters_ms == (2.0, 2.0)
    jitter_low, _ = uniform_sum_quantile(want.jitters_ms, connectivity.GUEST_LATENCY_QUANTILE)
    own = [2.0] * 20
    # every echo 40 ms + the guests' 2 ms + the jitter, but 80 % of them delayed by bursts
    # of contention: the median is far off, the 10th percentile is not
    clean = [42.0 + jitter_low + 0.3 * i for i in range(4)]
    late = [70.0 + i for i in range(16)]
    check = _check(plan, _result(plan, clean + late, own))
    assert check.passed and check.applicable, check
    assert check.measured == pytest.approx(40.0, abs=0.6)
    assert check.extra["own_p10_ms"] == 2.0 and check.probe == "icmp rtt p10 - own p10"
    # the guests only ever add delay: the band reaches further over than under (here
    # each side widened by 3 standard errors of the jitter's 10th percentile, 1.8 ms)
    check = _check(plan, _result(plan, [x + 5 for x in clean + late], own))
    assert check.passed and check.tolerance == "-3.201/+6.201ms", check.tolerance
    assert not _check(plan, _result(plan, [x - 4 for x in clean + late], own)).passed
    # a NetEm missing in one direction: 20 ms short in every echo
    missing = _check(plan, _result(plan, [x - 20 for x in clean + late], own))
    assert not missing.passed and "off by -" in missing.detail
    # the same, while this machine's CPUs were contended: still a failure, unless the
    # pressure was high in every try
    plan.pressure, plan.attempts = 0.2, 3
    assert not _check(plan, _result(plan, [x - 20 for x in clean + late], own)).passed
    plan.pressure = 0.9
    busy = _check(plan, _result(plan, [x - 20 for x in clean + late], own))
    assert busy.passed and not busy.applicable and busy.detail.startswith("inconclusive")
    assert busy.extra["cpu_pressure"] == 0.9 and busy.extra["attempts"] == 3


@dataclass
class FakeGuest:
    """Answers ``run`` with canned ping outputs, one per call, and records the calls."""

    outputs: list[str]
    calls: list[tuple[list[str], str | None]] = field(default_factory=list)

    def run(self, argv: list[str], netns: str | None = None, timeout: float = 60) -> object:
        self.calls.append((list(argv), netns))
        return subprocess.CompletedProcess(argv, 0, self.outputs.pop(0), "")


@dataclass
class FakeGuests:
    guest: FakeGuest

    def need(self, host: str) -> FakeGuest:
        return self.guest


def _ping_output(rtts: Sequence[float]) -> str:
    lines = [
        f"64 bytes from x: icmp_seq={i + 1} ttl=64 time={r:.1f} ms" for i, r in enumerate(rtts)
    ]
    return "\n".join([*lines, f"{len(rtts)} packets transmitted, {len(rtts)} received"]) + "\n"


def test_guest_series_run_in_the_guest_and_are_measured_again_when_off(
    view: tuple[TopologyView, Deployment], monkeypatch: pytest.MonkeyPatch
) -> None:
    topology, deployment = view
    plan = _plan(topology)
    own = _ping_output([2.0] * 20)
    far_off = _ping_output([90.0] * 20)  # contention: every echo late
    right = _ping_output([42.0 - 2.2 + 0.1 * i for i in range(20)])
    guest = FakeGuest([own, far_off, own, far_off, own, right])
    monkeypatch.setattr(distributed.programs, "which", lambda name: "/bin/ping")
    placement = Placement.of([topology], {"host1", "host2"})
    pings = GuestPings(
        FakeGuests(guest),  # type: ignore[arg-type]
        placement,
        deployment.infrastructure.guest_by_name,
        frozenset(n.address for n in topology.nics),
        timeout_s=6.0,
    )
    results = pings.run([plan])
    assert plan.attempts == 3
    # the guests' own round trip from host1's root namespace to host2's underlay address
    own_argv, own_netns = guest.calls[0]
    assert own_netns is None and own_argv[-3:] == ["-I", "192.0.2.11", "192.0.2.12"]
    series_argv, series_netns = guest.calls[1]
    assert series_netns == plan.src.namespace and series_argv[-1] == "10.20.0.2"
    check = _check(plan, ScanResult(results, {}, {}))
    assert check.passed and check.applicable
    # never right: the closest of the three tries is kept, and fails
    plan = _plan(topology)
    guest.outputs = [own, far_off, own, _ping_output([60.0] * 20), own, far_off]
    results = pings.run([plan])
    assert plan.attempts == 3 and results[plan.keys[0]].rtt_ms == 60.0
