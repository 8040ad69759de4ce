"""The interface snapshot and the OID tree it lands in, from made-up samples (no kernel)."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

from pysnmp.proto import rfc1902

from netmanager.host.candidate import Candidate, PortConfig, ShapingConfig
from netmanager.kernel.linkstats import LinkSample
from netmanager.snmp import mib
from snmp_agents.monitor import (
    IF_ENTRY,
    IFX_ENTRY,
    IfIndexMap,
    Monitor,
    PollStats,
    build_sections,
    link_rows,
    parse_alias,
)
from snmp_agents.oidtree import OidTree, Section, const, varbind_ber_len


def samples(n: int) -> list[LinkSample]:
    return [
        LinkSample(
            netns="nmh1",
            ifname=f"nm-vm{i}-lan",
            alias=f"nm:grid:vm{i}:lan",
            kind="veth",
            mac=bytes([2, 0, 0, 0, 0, i % 256]),
            oper=1,
            rx_bytes=2**40 + i,
            tx_bytes=i,
            rx_packets=10,
            multicast=3,
        )
        for i in range(1, n + 1)
    ]


def test_alias_names_vm_and_network() -> None:
    assert parse_alias("nm:grid:vmgrid101:lan") == ("vmgrid101", "lan")
    assert parse_alias("nm:grid") == ("", "")
    assert parse_alias("nm:lab:port:app:lan-x") == ("lab/app", "lab/lan-x")
    assert parse_alias("nm:lab:ifb:app:lan-x") == ("", "")


def test_ifindex_is_stable_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "ifindex.json"
    first = IfIndexMap(path)
    assert [first.index(k) for k in ("a/x", "a/y", "b/x")] == [1, 2, 3]
    first.save()
    again = IfIndexMap(path)
    assert again.index("b/x") == 3 and again.index("c/z") == 4


def test_sections_are_sorted_and_carry_the_running_shaping(tmp_path: Path) -> None:
    running = Candidate.of(
        ports=[
            PortConfig(
                vm="vm1",
                network="lan",
                address=IPv4Address("10.0.0.1"),
                prefix_length=24,
                ifname="nm-vm1-lan",
            )
        ],
        shapings=[ShapingConfig(vm="vm1", network="lan", rate_kbps=100_000, delay_us=20_000)],
    )
    rows = link_rows(samples(50), IfIndexMap(None), running, {})
    sections = build_sections(rows, 1234, lambda: PollStats(5000, 12, 7))
    tree = OidTree()
    for section in sections:
        assert list(section.oids) == sorted(section.oids), section.name
        tree.put(section)
    assert tree.get((*IF_ENTRY, 5, 1)) == ("value", rfc1902.Gauge32(100_000_000))
    assert tree.get((*IFX_ENTRY, 15, 1)) == ("value", rfc1902.Gauge32(100))
    assert tree.get((*IF_ENTRY, 10, 1))[1] == rfc1902.Counter32(1)  # 2**40 + 1 wraps
    assert tree.get((*IFX_ENTRY, 6, 1))[1] == rfc1902.Counter64(2**40 + 1)
    assert tree.get((*IF_ENTRY, 11, 1))[1] == rfc1902.Counter32(7)  # unicast = total - multicast
    assert tree.get((*IF_ENTRY, 5, 99))[0] == "noSuchInstance"
    assert tree.get((*IF_ENTRY, 99, 1))[0] == "noSuchObject"
    # walking the whole tree visits every value once, in order
    seen, oid = [], (0,)
    while (found := tree.next(oid)) is not None:
        seen.append(found[0])
        oid = found[0]
    # ifNumber, ifTable, ifXTable, nmLinkTable, the poll scalars, nmLinkNameTable
    assert (
        seen == sorted(seen) and len(seen) == len(tree) == 1 + 22 * 50 + 19 * 50 + 18 * 50 + 4 + 50
    )
    # nmLinkNameTable: a port's ifIndex by its VM's and network's names
    name = (*mib.oid_of("nmLinkNameEntry"), 3, 3, *b"vm7", 3, *b"lan")
    assert tree.get(name)[1] == rfc1902.Integer32(7)
    # nmLinkGuestAddress: netmanager configures the running configuration's VM ports; the
    # backend's word where it checks (a domain without guest agent); unknown otherwise
    guest = (*mib.oid_of("nmLinkEntry"), 16)
    assert tree.get((*guest, 1))[1] == rfc1902.Integer32(2)
    assert tree.get((*guest, 2))[1] == rfc1902.Integer32(1)
    rows = link_rows(samples(3), IfIndexMap(None), running, {}, {"nmh1/nm-vm3-lan": 4})
    assert [r.guest for r in rows] == [2, 1, 4]


def test_next_can_skip_counter64_for_v1() -> None:
    tree = OidTree()
    tree.put(
        Section.build(
            "t",
            (1, 3),
            [
                ((1, 3, 1), const(rfc1902.Counter64(5))),
                ((1, 3, 2), const(rfc1902.Integer32(6))),
            ],
        )
    )
    skip = lambda _oid, v: v.tagSet == rfc1902.Counter64.tagSet  # noqa: E731
    assert tree.next((1, 3), skip=skip) == ((1, 3, 2), rfc1902.Integer32(6))


def test_lazy_sections_are_built_on_first_use() -> None:
    tree = OidTree()
    built: list[int] = []

    def factory() -> Section:
        built.append(1)
        return Section.build("lazy", (1, 4), [((1, 4, 1), const(rfc1902.Integer32(1)))])

    tree.invalidate("lazy", (1, 4), factory)
    tree.invalidate("lazy", (1, 4), factory)
    assert built == []
    assert tree.next((1, 3, 9)) == ((1, 4, 1), rfc1902.Integer32(1))
    tree.next((1, 3, 9))
    assert built == [1]


def test_varbind_size_estimate_is_close() -> None:
    from pyasn1.codec.ber import encoder
    from pysnmp.proto import rfc1905

    cases = [
        ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1000), rfc1902.Counter64(2**63)),
        ((1, 3, 6, 1, 2, 1, 2, 2, 1, 2, 7), rfc1902.OctetString(b"x" * 200)),
        ((1, 3, 6, 1, 2, 1, 2, 2, 1, 22, 7), rfc1902.ObjectIdentifier((0, 0))),
        ((1, 3, 6, 1, 2, 1, 1, 3, 0), rfc1902.TimeTicks(123456)),
        ((1, 3, 6, 1, 2, 1, 1, 3, 0), rfc1905.endOfMibView),
    ]
    for oid, value in cases:
        vb = rfc1905.VarBind()
        vb.setComponentByPosition(0, rfc1902.ObjectName(oid))
        vb.setComponentByPosition(1).getComponentByPosition(1).setComponentByType(
            value.getTagSet(),
            value,
            verifyConstraints=False,
            matchTags=False,
            matchConstraints=False,
        )
        real = len(encoder.encode(vb))
        assert abs(varbind_ber_len(oid, value) - real) <= 2, (oid, value, real)


class FakeReader:
    def __init__(self) -> None:
        self.samples = samples(2)

    def read(self) -> list[LinkSample]:
        return list(self.samples)

    def close(self) -> None:
        pass


def test_monitor_reports_state_changes_once() -> None:
    import asyncio
    import dataclasses
    from concurrent.futures import ThreadPoolExecutor

    from netmanager.snmp import mib

    async def scenario() -> None:
        reader = FakeReader()
        tree = OidTree()
        seen: list[tuple[int, int, int]] = []
        ticks = iter(range(100, 10_000, 100))
        monitor = Monitor(
            reader,
            IfIndexMap(None),
            tree,
            lambda: next(ticks),
            ThreadPoolExecutor(1),
            interval_s=1,
            on_oper_change=lambda row, old, new: seen.append((row.index, old, new)),
        )
        await monitor.poll()
        assert tree.get((*IF_ENTRY, 8, 2))[1] == rfc1902.Integer32(1)
        reader.samples[1] = dataclasses.replace(reader.samples[1], oper=2)
        await monitor.poll()
        await monitor.poll()
        assert seen == [(2, 1, 2)]
        assert tree.get((*IF_ENTRY, 8, 2))[1] == rfc1902.Integer32(2)
        assert int(tree.get((*IF_ENTRY, 9, 2))[1]) > 0  # ifLastChange moved
        assert int(tree.get((*IF_ENTRY, 9, 1))[1]) == 0
        interval = tree.get((*mib.oid_of("nmMonitorPollInterval"), 0))[1]
        assert int(interval) == 1000

    asyncio.run(scenario())


def test_reading_the_counters_makes_the_poll_faster_for_a_while() -> None:
    from concurrent.futures import ThreadPoolExecutor

    now = [100.0]
    monitor = Monitor(
        FakeReader(),
        IfIndexMap(None),
        OidTree(),
        lambda: 0,
        ThreadPoolExecutor(1),
        interval_s=5,
        watched_interval_s=0.5,
        watch_hold_s=10,
        clock=lambda: now[0],
    )
    assert not monitor.watched and monitor.current_interval() == 5
    monitor.counters_read()
    assert monitor.watched and monitor.current_interval() == 0.5
    now[0] += 9.9
    assert monitor.current_interval() == 0.5
    now[0] += 0.2  # 10.1 s after the last read: back to the idle interval
    assert monitor.current_interval() == 5
    # 0 turns the speed-up off
    monitor.watched_interval_s = 0
    monitor.counters_read()
    assert monitor.current_interval() == 5


def test_a_watch_wakes_an_idle_poll_loop() -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    async def scenario() -> None:
        monitor = Monitor(
            FakeReader(),
            IfIndexMap(None),
            OidTree(),
            lambda: 0,
            ThreadPoolExecutor(1),
            interval_s=600,
            watched_interval_s=0.05,
        )
        task = asyncio.get_running_loop().create_task(monitor.run())
        try:
            while monitor.polls < 1:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)
            assert monitor.polls == 1  # idle: the next poll is 600 s away
            monitor.counters_read()  # somebody watches: at once, then every 50 ms
            for _ in range(1000):
                if monitor.polls >= 4:
                    break
                monitor.counters_read()
                await asyncio.sleep(0.01)
            assert monitor.polls >= 4
        finally:
            task.cancel()

    asyncio.run(scenario())


def test_requests_naming_the_counters_are_reported() -> None:
    from netmanager.snmp import mib
    from snmp_agents.monitor import WATCHED_SUBTREES
    from snmp_agents.responder import MibReader

    tree = OidTree()
    tree.put(
        Section.build(
            "config",
            mib.NM_CONFIG,
            [((*mib.NM_CONFIG, 1, 1), const(rfc1902.Integer32(1)))],
        )
    )
    for section in build_sections(
        link_rows(samples(2), IfIndexMap(None), Candidate(), {}), 0, PollStats
    ):
        tree.put(section)
    reader = MibReader(tree)
    reads: list[int] = []
    reader.watch(WATCHED_SUBTREES, lambda: reads.append(1))
    # a GETBULK of the configuration runs on into the monitor's tables: not a read of them
    assert len(reader.bulk([mib.NM_CONFIG], 0, 50, 60_000)) > 2
    reader.get([(1, 3, 6, 1, 2, 1, 1, 3, 0)])
    assert reads == []
    reader.bulk([(*IFX_ENTRY, 6)], 0, 10, 60_000)
    reader.next_all([(*IF_ENTRY, 8)])
    reader.get([(*mib.oid_of("nmLinkInOctets"), 1)])
    assert reads == [1, 1, 1]
