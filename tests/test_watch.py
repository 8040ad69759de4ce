"""netmanager status --watch, the pure parts: rates from counters, the agents' columns
read back into counters, the JSON line and the table (no root, no agent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pysnmp.proto import rfc1902

from netmanager.cli import watch
from netmanager.cli.main import main
from netmanager.cli.watch import Counters, HostReading, Port, RateKeeper

PORT1 = Port("grid", "vm1", "lan", "host1", "eth0", "nv1", "nmh-host1", "agents")
PORT2 = Port("grid", "vm2", "lan", "host2", "eth0", "nv2", "nmh-host2", "agents")


def counters(rx: int, tx: int, at: float, oper: str = "up") -> Counters:
    return Counters(
        oper, rx_bytes=rx, tx_bytes=tx, rx_packets=rx // 100, tx_packets=tx // 100, at=at
    )


def test_rates_are_deltas_over_the_sources_own_time() -> None:
    rates = watch.rates_between(counters(0, 1000, 10.0), counters(125_000, 1000, 10.5))
    assert rates is not None
    assert rates.rx_bps == 2_000_000 and rates.tx_bps == 0
    assert rates.rx_pps == 2500 and rates.tx_pps == 0
    # no time passed, or a counter went back (the port was made again): unknown
    assert watch.rates_between(counters(5, 5, 3.0), counters(9, 9, 3.0)) is None
    assert watch.rates_between(counters(500, 5, 3.0), counters(9, 9, 4.0)) is None


def test_a_reading_the_source_did_not_renew_keeps_the_last_rates() -> None:
    keeper = RateKeeper()
    key = PORT1.key
    assert keeper.update(key, counters(0, 0, 1.0)) is None  # one reading: no rate yet
    first = keeper.update(key, counters(1000, 0, 2.0))
    assert first is not None and first.rx_bps == 8000
    # the agent has not polled again since: same reading, same rates
    assert keeper.update(key, counters(1000, 0, 2.0)) == first
    second = keeper.update(key, counters(1000, 0, 3.0))
    assert second is not None and second.rx_bps == 0
    # the port went away: forgotten
    assert keeper.update(key, None) is None
    assert keeper.update(key, counters(1000, 0, 4.0)) is None


def _column(
    column: tuple[int, ...], values: dict[int, object]
) -> list[tuple[tuple[int, ...], object]]:
    return [((*column, index), value) for index, value in sorted(values.items())]


def test_agent_columns_become_the_vms_counters() -> None:
    """The vif's ifHCInOctets is what the VM sent; its ifHCOutOctets what it received."""
    columns = {
        watch.IF_NAME: _column(
            watch.IF_NAME, {3: rfc1902.OctetString(b"nv1"), 4: rfc1902.OctetString(b"eth0")}
        ),
        watch.IF_OPER_STATUS: _column(
            watch.IF_OPER_STATUS, {3: rfc1902.Integer32(1), 4: rfc1902.Integer32(7)}
        ),
        watch.HC_IN["octets"]: _column(watch.HC_IN["octets"], {3: rfc1902.Counter64(2**40)}),
        watch.HC_IN["ucast"]: _column(watch.HC_IN["ucast"], {3: rfc1902.Counter64(90)}),
        watch.HC_IN["mcast"]: _column(watch.HC_IN["mcast"], {3: rfc1902.Counter64(10)}),
        watch.HC_OUT["octets"]: _column(watch.HC_OUT["octets"], {3: rfc1902.Counter64(777)}),
        watch.HC_OUT["ucast"]: _column(watch.HC_OUT["ucast"], {3: rfc1902.Counter64(7)}),
        watch.HC_OUT["mcast"]: _column(watch.HC_OUT["mcast"], {3: rfc1902.Counter64(0)}),
        watch.NM_LINK_NAMESPACE: _column(
            watch.NM_LINK_NAMESPACE,
            {3: rfc1902.OctetString(b"nmh-host1"), 4: rfc1902.OctetString(b"")},
        ),
        watch.NM_LINK_LAST_POLL: _column(
            watch.NM_LINK_LAST_POLL, {3: rfc1902.TimeTicks(1234), 4: rfc1902.TimeTicks(1250)}
        ),
    }
    links, polls = watch.agent_links(columns)
    assert polls == [1234, 1250]
    assert links[("nmh-host1", "nv1")] == Counters(
        "up", rx_bytes=777, tx_bytes=2**40, rx_packets=7, tx_packets=100, at=12.34
    )
    # a guest host's dom0 is its root namespace: ""
    assert links[("", "eth0")].oper == "lowerLayerDown" and links[("", "eth0")].rx_bytes == 0


def _sample() -> watch.Sample:
    keeper = RateKeeper()
    readings = {
        "host1": HostReading(
            "host1", "agent 127.0.0.1:161", {("nmh-host1", "nv1"): counters(0, 0, 1.0)}, age_s=0.2
        ),
        "host2": HostReading("host2", "agent 127.0.0.1:162", {}, "no answer"),
    }
    watch.build_sample(0, 0.0, 0.5, [PORT1, PORT2], readings, keeper)
    readings["host1"] = HostReading(
        "host1",
        "agent 127.0.0.1:161",
        {("nmh-host1", "nv1"): counters(62_500, 1_250_000, 1.5)},
        age_s=0.25,
    )
    return watch.build_sample(1, 1_700_000_000.0, 0.5, [PORT1, PORT2], readings, keeper)


def test_the_json_line_documents_every_port() -> None:
    doc = watch.sample_json(_sample())
    assert doc["sample"] == 1 and doc["interval_s"] == 0.5 and doc["time"].startswith("2023-11-1")
    vm1, vm2 = doc["ports"]
    assert vm1 == {
        "topology": "grid",
        "vm": "vm1",
        "network": "lan",
        "host": "host1",
        "ifname": "eth0",
        "port": "nv1",
        "oper": "up",
        "rx_bps": 1_000_000.0,
        "tx_bps": 20_000_000.0,
        "rx_pps": 1250.0,
        "tx_pps": 25000.0,
        "rx_bytes": 62_500,
        "tx_bytes": 1_250_000,
        "rx_packets": 625,
        "tx_packets": 12_500,
    }
    assert vm2["oper"] == "unreachable" and vm2["rx_bps"] is None and vm2["rx_bytes"] is None
    assert doc["hosts"] == {
        "host1": {"source": "agent 127.0.0.1:161", "age_s": 0.25, "error": None},
        "host2": {"source": "agent 127.0.0.1:162", "age_s": None, "error": "no answer"},
    }
    json.dumps(doc)


def test_the_table_a_person_reads() -> None:
    text = watch.sample_table(_sample(), "netmanager status --watch grid")
    lines = text.splitlines()
    assert lines[0].startswith("netmanager status --watch grid · every 0.5 s · sample 1 · ")
    assert lines[1].split() == [
        "vm", "network", "host", "if", "state", "rx", "tx", "rx", "pkt/s", "tx", "pkt/s"
    ]  # fmt: skip
    assert lines[2].split() == [
        "vm1", "lan", "host1", "eth0", "up", "1.00", "Mbit/s", "20.0", "Mbit/s", "1250", "25000"
    ]  # fmt: skip
    assert lines[3].split() == ["vm2", "lan", "host2", "eth0", "unreachable", "-", "-", "-", "-"]
    assert "host1: agent 127.0.0.1:161, read 0.2 s ago" in lines  # rounded to a tenth
    assert "host2: no answer" in lines
    # the numbers line up on the right
    assert lines[1].index("tx pkt/s") + len("tx pkt/s") == len(lines[2])


@pytest.mark.parametrize(
    ("bps", "text"),
    [
        (None, "-"),
        (0, "0 bit/s"),
        (999.4, "999 bit/s"),
        (1000, "1.00 kbit/s"),
        (9_870_000, "9.87 Mbit/s"),
        (10_000_000, "10.0 Mbit/s"),
        (123_400_000, "123 Mbit/s"),
        (1.5e9, "1.50 Gbit/s"),
    ],
)
def test_rates_read_at_a_glance(bps: float | None, text: str) -> None:
    assert watch.format_bps(bps) == text


def test_interval_and_count_go_with_watch(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--interval", "1"]) == 2
    assert "--watch" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["status", "--watch", "--interval", "0"])
    assert exit_.value.code == 2


def test_watching_a_topology_that_is_not_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NETMANAGER_STATE_DIR", str(tmp_path / "state"))
    assert main(["status", "--watch", "--topology", "nope", "--count", "1"]) == 1
    assert "E720" in capsys.readouterr().err
    # nothing applied, nothing named: samples of nothing, as long as asked
    assert main(["status", "--watch", "--count", "1", "--interval", "0.05"]) == 0
    assert "nothing is applied on this machine" in capsys.readouterr().out
