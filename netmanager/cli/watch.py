"""The live view of applied topologies (``netmanager status --watch``): every VM port's
state and its current rates in both directions, from counters.

Where the counters come from depends on how the topology was applied:

* **through agents** — each host's agent, by SNMP, as any monitoring system would: a
  walk of IF-MIB's ``ifName``, ``ifOperStatus`` and the 64-bit counters of ``ifXTable``
  (``ifHCInOctets``, ``ifHCOutOctets`` and the packet counters), with NETMANAGER-MIB's
  ``nmLinkNamespace`` and ``nmLinkLastPoll`` (when the agent read the counters, in its
  ``sysUpTime``), all columns side by side so that a row's cells come from one
  snapshot.  Reading them makes an agent poll its links every 0.5 s
  (``snmp_agents/monitor.py``), so they are at most that old;
* **with** ``--local`` — the kernel's counters, read here by the same netlink reader the
  agents use.

A port is the VM's interface; it is read on its host side (the vif in the host's
hypervisor domain), whose received bytes the VM sent.  Rates are the VM's: ``rx`` what
it received, ``tx`` what it sent, in bit/s of frames (what shaping counts) and packets/s,
over the time between two readings of the counters as their source timed them.  When a
source has not read its counters again since the last sample (an agent polls every
0.5 s), a port keeps the rates of the last period; before two readings, or after a
counter went back (the port was made again), they are unknown (None).

:class:`Watcher` reads (it holds the SNMP clients and netlink sockets between samples);
:func:`sample_json` and :func:`sample_table` are pure.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from netmanager.agentctl.client import OPER_STATUS
from netmanager.apply.records import Record, records
from netmanager.errors import Loc, single
from netmanager.output import table

#: IF-MIB ifOperStatus, and what a port is when its source cannot tell
OPER = OPER_STATUS
MISSING = "missing"  # the source has no such link
#: how long an agent woken up by the first reading gets to poll its links again
STALE_WAIT_S = 0.5
UNREACHABLE = "unreachable"  # the source did not answer

SYS_UPTIME_0 = (1, 3, 6, 1, 2, 1, 1, 3, 0)
IF_NUMBER_0 = (1, 3, 6, 1, 2, 1, 2, 1, 0)
IF_OPER_STATUS = (1, 3, 6, 1, 2, 1, 2, 2, 1, 8)
IFX_ENTRY = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
IF_NAME = (*IFX_ENTRY, 1)
#: ifHCIn/OutOctets, -UcastPkts, -MulticastPkts (netmanager's agent counts broadcasts with
#: the multicasts, as the kernel does: its ifHC*BroadcastPkts stay 0)
HC_IN = {"octets": (*IFX_ENTRY, 6), "ucast": (*IFX_ENTRY, 7), "mcast": (*IFX_ENTRY, 8)}
HC_OUT = {"octets": (*IFX_ENTRY, 10), "ucast": (*IFX_ENTRY, 11), "mcast": (*IFX_ENTRY, 12)}
NM_LINK_ENTRY = (1, 3, 6, 1, 3, 7171, 1, 3, 1, 1)
NM_LINK_NAMESPACE = (*NM_LINK_ENTRY, 3)
NM_LINK_LAST_POLL = (*NM_LINK_ENTRY, 15)
AGENT_COLUMNS = (
    IF_NAME,
    IF_OPER_STATUS,
    *HC_IN.values(),
    *HC_OUT.values(),
    NM_LINK_NAMESPACE,
    NM_LINK_LAST_POLL,
)


@dataclass(frozen=True)
class Port:
    """One VM interface of an applied topology, and where its host side is."""

    topology: str
    vm: str
    network: str
    host: str
    ifname: str  # in the VM
    vif: str  # its host side, in the host's hypervisor domain
    dom0: str  # that domain's namespace ("" for a guest host's root namespace)
    transport: str  # "agents" or "local"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.topology, self.vm, self.network)


@dataclass(frozen=True)
class Counters:
    """A port's counters, as the VM sees them, and when its source read them (seconds on
    that source's own clock)."""

    oper: str
    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int
    at: float


@dataclass(frozen=True)
class Rates:
    rx_bps: float
    tx_bps: float
    rx_pps: float
    tx_pps: float


@dataclass(frozen=True)
class HostReading:
    """What one host's source gave for a sample: counters by (namespace, vif)."""

    host: str
    source: str  # "agent ADDRESS:PORT" or "kernel"
    links: Mapping[tuple[str, str], Counters]
    error: str | None = None
    age_s: float | None = None  # how old the agent's counters were when asked


@dataclass(frozen=True)
class PortSample:
    port: Port
    oper: str
    counters: Counters | None
    rates: Rates | None


@dataclass(frozen=True)
class Sample:
    number: int  # 1, 2, ...; 0 is the first reading, which has no rates yet
    time: float  # seconds since the epoch
    interval_s: float
    ports: tuple[PortSample, ...]
    hosts: Mapping[str, HostReading]


# --------------------------------------------------------------------------- pure


def ports_of(chosen: Sequence[Record]) -> list[Port]:
    """Every VM port of the given applied topologies, by topology, VM and network."""
    out = []
    for record in chosen:
        for host, config in record.hosts.items():
            for port in config.ports:
                out.append(
                    Port(
                        record.topology,
                        port.vm,
                        port.network,
                        host,
                        port.ifname,
                        port.vif,
                        config.dom0,
                        record.transport,
                    )
                )
    return sorted(out, key=lambda p: (p.topology, p.vm, p.network))


def rates_between(before: Counters, after: Counters) -> Rates | None:
    """The rates over the time between two readings; None when no time passed or a
    counter went back."""
    seconds = after.at - before.at
    deltas = (
        after.rx_bytes - before.rx_bytes,
        after.tx_bytes - before.tx_bytes,
        after.rx_packets - before.rx_packets,
        after.tx_packets - before.tx_packets,
    )
    if seconds <= 0 or min(deltas) < 0:
        return None
    rx, tx, rx_p, tx_p = deltas
    return Rates(rx * 8 / seconds, tx * 8 / seconds, rx_p / seconds, tx_p / seconds)


class RateKeeper:
    """Rates per port from successive readings: a reading the source made no later than
    the last one keeps the last period's rates."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, str, str], Counters] = {}
        self.rates: dict[tuple[str, str, str], Rates | None] = {}

    def update(self, key: tuple[str, str, str], counters: Counters | None) -> Rates | None:
        if counters is None:
            self.last.pop(key, None)
            self.rates.pop(key, None)
            return None
        before = self.last.get(key)
        if before is not None and counters.at == before.at:
            return self.rates.get(key)
        rates = rates_between(before, counters) if before is not None else None
        self.last[key] = counters
        self.rates[key] = rates
        return rates


def build_sample(
    number: int,
    when: float,
    interval_s: float,
    ports: Sequence[Port],
    readings: Mapping[str, HostReading],
    keeper: RateKeeper,
) -> Sample:
    out = []
    for port in ports:
        reading = readings.get(port.host)
        counters = None
        if reading is None or reading.error is not None:
            oper = UNREACHABLE
        else:
            counters = reading.links.get((port.dom0, port.vif))
            oper = counters.oper if counters is not None else MISSING
        out.append(PortSample(port, oper, counters, keeper.update(port.key, counters)))
    return Sample(number, when, interval_s, tuple(out), dict(readings))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def sample_json(sample: Sample) -> dict[str, Any]:
    """One sample as a JSON document (one line of ``status --watch --json``)."""
    stamp = datetime.datetime.fromtimestamp(sample.time).astimezone()
    return {
        "sample": sample.number,
        "time": stamp.isoformat(timespec="milliseconds"),
        "interval_s": sample.interval_s,
        "ports": [
            {
                "topology": p.port.topology,
                "vm": p.port.vm,
                "network": p.port.network,
                "host": p.port.host,
                "ifname": p.port.ifname,
                "port": p.port.vif,
                "oper": p.oper,
                "rx_bps": _round(p.rates.rx_bps if p.rates else None),
                "tx_bps": _round(p.rates.tx_bps if p.rates else None),
                "rx_pps": _round(p.rates.rx_pps if p.rates else None),
                "tx_pps": _round(p.rates.tx_pps if p.rates else None),
                "rx_bytes": p.counters.rx_bytes if p.counters else None,
                "tx_bytes": p.counters.tx_bytes if p.counters else None,
                "rx_packets": p.counters.rx_packets if p.counters else None,
                "tx_packets": p.counters.tx_packets if p.counters else None,
            }
            for p in sample.ports
        ],
        "hosts": {
            host: {
                "source": reading.source,
                "age_s": None if reading.age_s is None else round(reading.age_s, 2),
                "error": reading.error,
            }
            for host, reading in sorted(sample.hosts.items())
        },
    }


def format_bps(value: float | None) -> str:
    """'9.87 Mbit/s', '512 bit/s', '-' (unknown)."""
    if value is None:
        return "-"
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor * 0.9995:
            scaled = value / factor
            digits = 2 if scaled < 10 else 1 if scaled < 100 else 0
            return f"{scaled:.{digits}f} {prefix}bit/s"
    return f"{value:.0f} bit/s"


def format_pps(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def sample_table(sample: Sample, title: str = "") -> str:
    """A sample as the terminal shows it: a line of title, a table of ports, the sources."""
    stamp = datetime.datetime.fromtimestamp(sample.time).strftime("%H:%M:%S")
    head = f"{title} · " if title else ""
    lines = [
        f"{head}every {sample.interval_s:g} s · sample {sample.number} · {stamp}"
        "   (rx: received by the VM, tx: sent by it)"
    ]
    topologies = {p.port.topology for p in sample.ports}
    header = ["vm", "network", "host", "if", "state", "rx", "tx", "rx pkt/s", "tx pkt/s"]
    if len(topologies) > 1:
        header.insert(0, "topology")
    rows = []
    for p in sample.ports:
        row = [
            p.port.vm,
            p.port.network,
            p.port.host,
            p.port.ifname,
            p.oper,
            format_bps(p.rates.rx_bps if p.rates else None),
            format_bps(p.rates.tx_bps if p.rates else None),
            format_pps(p.rates.rx_pps if p.rates else None),
            format_pps(p.rates.tx_pps if p.rates else None),
        ]
        if len(topologies) > 1:
            row.insert(0, p.port.topology)
        rows.append(row)
    if not rows:
        lines.append("nothing is applied on this machine")
    else:
        numeric = {len(header) - i for i in range(1, 5)}
        lines.extend(table([header, *rows], right=numeric))
    sources = []
    for host, reading in sorted(sample.hosts.items()):
        if reading.error is not None:
            sources.append(f"{host}: {reading.error}")
        elif reading.age_s is not None:
            sources.append(f"{host}: {reading.source}, read {reading.age_s:.1f} s ago")
        else:
            sources.append(f"{host}: {reading.source}")
    if sources:
        lines.append("")
        lines.extend(sources)
    return "\n".join(lines)


# ------------------------------------------------------------------------- reading


def _chosen(topology: str | None) -> list[Record]:
    applied = records()
    if topology is None:
        return [applied[t] for t in sorted(applied)]
    if topology not in applied:
        raise single(
            "E720",
            Loc("netmanager"),
            f"topology '{topology}' is not applied on this machine",
            "applied here: " + (", ".join(sorted(applied)) or "nothing"),
            "status",
        )
    return [applied[topology]]


def _counters_from_sample(sample: Any, at: float) -> Counters:
    """A kernel link (netmanager.kernel.linkstats.LinkSample) of a vif, as its VM sees it."""
    return Counters(
        OPER.get(sample.oper, "unknown"),
        rx_bytes=sample.tx_bytes,
        tx_bytes=sample.rx_bytes,
        rx_packets=sample.tx_packets,
        tx_packets=sample.rx_packets,
        at=at,
    )


def agent_links(
    columns: Mapping[tuple[int, ...], Sequence[tuple[tuple[int, ...], Any]]],
) -> tuple[dict[tuple[str, str], Counters], list[int]]:
    """An agent's walked columns -> counters by (namespace, ifName), as the VM on the
    other side of each link sees them; and the nmLinkLastPoll of every row (ticks)."""
    cells: dict[int, dict[tuple[int, ...], Any]] = {}
    for column, varbinds in columns.items():
        for oid, value in varbinds:
            cells.setdefault(oid[-1], {})[column] = value
    out: dict[tuple[str, str], Counters] = {}
    polls = []
    for row in cells.values():
        if IF_NAME not in row or NM_LINK_LAST_POLL not in row:
            continue

        def number(column: tuple[int, ...], row: dict[tuple[int, ...], Any] = row) -> int:
            value = row.get(column)
            return int(value) if value is not None else 0

        name = bytes(row[IF_NAME].asOctets()).decode("utf-8", "replace")
        namespace = row.get(NM_LINK_NAMESPACE)
        netns = bytes(namespace.asOctets()).decode("utf-8", "replace") if namespace else ""
        ticks = number(NM_LINK_LAST_POLL)
        polls.append(ticks)
        in_packets = number(HC_IN["ucast"]) + number(HC_IN["mcast"])
        out_packets = number(HC_OUT["ucast"]) + number(HC_OUT["mcast"])
        out[(netns, name)] = Counters(
            OPER.get(number(IF_OPER_STATUS), "unknown"),
            rx_bytes=number(HC_OUT["octets"]),
            tx_bytes=number(HC_IN["octets"]),
            rx_packets=out_packets,
            tx_packets=in_packets,
            at=ticks / 100,
        )
    return out, polls


class Watcher:
    """Reads the counters of the ports of applied topologies, sample after sample.

    Use as a context manager; :meth:`read` is synchronous (it runs the SNMP requests of
    every host at once in its own event loop)."""

    def __init__(self, topology: str | None = None, *, interval_s: float = 1.0) -> None:
        self.topology = topology
        self.interval_s = interval_s
        self.keeper = RateKeeper()
        self._runner: asyncio.Runner | None = None
        self._clients: dict[str, Any] = {}
        self._reader: Any = None
        self._reader_namespaces: tuple[str, ...] = ()

    def __enter__(self) -> Watcher:
        _chosen(self.topology)  # E720 at once when the topology is not applied
        self._runner = asyncio.Runner()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def read(self, number: int) -> Sample:
        """A sample of every port now (``number`` is only carried along)."""
        chosen = _chosen(self.topology)
        ports = ports_of(chosen)
        readings: dict[str, HostReading] = {}
        local = [p for p in ports if p.transport != "agents"]
        if local:
            readings |= self._read_kernel(local)
        through = sorted({p.host for p in ports if p.transport == "agents"})
        if through:
            readings |= self._read_agents(through)
        return build_sample(number, time.time(), self.interval_s, ports, readings, self.keeper)

    # ---------------------------------------------------------------- the kernel

    def _read_kernel(self, ports: Sequence[Port]) -> dict[str, HostReading]:
        from netmanager.compile.hostconfig import MARKER
        from netmanager.kernel.linkstats import NetnsLinkReader

        # a namespace that is gone has no links (its ports show as missing)
        namespaces = tuple(
            sorted({p.dom0 for p in ports if os.path.exists(f"/run/netns/{p.dom0}")})
        )
        if self._reader is None or namespaces != self._reader_namespaces:
            if self._reader is not None:
                self._reader.close()
            self._reader = NetnsLinkReader(namespaces, MARKER)
            self._reader_namespaces = namespaces
        at = time.monotonic()
        links = {(s.netns, s.ifname): _counters_from_sample(s, at) for s in self._reader.read()}
        return {
            host: HostReading(host, "kernel", links) for host in sorted({p.host for p in ports})
        }

    # ---------------------------------------------------------------- the agents

    def _client(self, host: str, info: Any) -> Any:
        from netmanager.agentctl.processes import client as agent_client

        client = self._clients.get(host)
        if client is not None and (client.address, client.port) == (info.address, info.port):
            return client
        if client is not None:
            client.close()
        # a watch must not stall on a host: one retry, within about the interval
        client = agent_client(
            info, timeout_s=min(info.timeout_s, max(1.0, self.interval_s)), retries=1
        )
        self._clients[host] = client
        return client

    def _read_agents(self, hosts: Sequence[str]) -> dict[str, HostReading]:
        from netmanager.agentctl.client import AgentError
        from netmanager.apply.topology import running_agents
        from netmanager.snmp.credentials import CredentialsError

        running = running_agents()
        readings: dict[str, HostReading] = {}
        clients: dict[str, Any] = {}
        for host in hosts:
            info = running.get(host)
            if info is None:
                readings[host] = HostReading(
                    host, "agent", {}, "its agent is not running (netmanager apply starts it)"
                )
                continue
            try:
                clients[host] = self._client(host, info)
            except CredentialsError as exc:
                readings[host] = HostReading(
                    host, f"agent {info.address}:{info.port}", {}, str(exc)
                )

        async def one(host: str, client: Any) -> HostReading:
            source = f"agent {client.address}:{client.port}"
            try:
                if not client.is_open:
                    await client.open()
                uptime, rows = await client.get(SYS_UPTIME_0, IF_NUMBER_0)
                columns = await client.walk_columns(AGENT_COLUMNS, int(rows))
            except (TimeoutError, AgentError, OSError, ValueError, TypeError) as exc:
                client.close()
                return HostReading(host, source, {}, str(exc))
            links, polls = agent_links(columns)
            age = max(0.0, (int(uptime) - max(polls)) / 100) if polls else None
            return HostReading(host, source, links, None, age)

        async def every() -> list[HostReading]:
            return list(await asyncio.gather(*(one(h, c) for h, c in clients.items())))

        if clients:
            assert self._runner is not None
            for reading in self._runner.run(every()):
                readings[reading.host] = reading
        return readings


def samples(watcher: Watcher, count: int | None, interval_s: float) -> Iterator[Sample]:
    """The first reading (sample 0, no rates yet), then ``count`` samples (or until
    interrupted) due every ``interval_s`` seconds after it; when a reading takes longer
    than the interval, the next one starts as soon as it is done.

    An agent that nobody watched polls its links every few seconds, and the first
    reading is what it read last; the request wakes it up, so when some host's counters
    were older than the interval, they are read once more, fresh, before the first
    period starts."""
    first = watcher.read(0)
    yield first
    if any(r.age_s is not None and r.age_s > interval_s for r in first.hosts.values()):
        time.sleep(min(interval_s, STALE_WAIT_S))
        watcher.read(0)
    due = time.monotonic() + interval_s
    done = 0
    while count is None or done < count:
        time.sleep(max(0.0, due - time.monotonic()))
        done += 1
        yield watcher.read(done)
        due = max(due + interval_s, time.monotonic())
