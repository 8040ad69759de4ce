"""Monitoring: a background poller reads netmanager's links and publishes immutable
IF-MIB (ifTable, ifXTable) and NETMANAGER-MIB link-table sections.

Counters never come from the request path: a pyroute2 dump of 1000 links takes
0.3-0.7 s, so a worker thread reads every ``interval`` seconds and swaps freshly built
sections into the :class:`OidTree`; requests are answered from the last snapshot.
Operational state changes between two polls raise IF-MIB ``linkDown``/``linkUp``.

The poll follows demand: every ``interval`` seconds (5 s) while nobody looks, every
``watched_interval`` seconds (0.5 s) from the first request that names an OID of the
interface or link tables until ``watch_hold`` seconds (10 s) after the last one — so a
manager that watches rates (``netmanager status --watch``) reads counters at most half a
second old, and an idle agent costs a poll every few seconds.  A poll never starts
sooner than twice its own duration after the last one ended: a host with thousands of
links keeps its poll thread at most a third busy.

Which links: those of the given network namespaces whose ifalias starts with the
ownership marker (``nm:`` by default).  The alias is read as
``nm:<topology>:<vm>:<network>`` to tell the VM and network of a link when the running
configuration does not name its interface.  The kernel engine will later provide the
link list itself (:class:`LinkReader` is the seam).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pysnmp.proto import rfc1902

from netmanager.host.candidate import Candidate
from netmanager.host.protocol import GUEST_CONFIGURED, GUEST_UNKNOWN
from netmanager.host.rows import PortKey, host_configs_from_candidate
from netmanager.host.runtime import PAIR_CLASS, PortOverride, apply_overrides
from netmanager.kernel.linkstats import LinkReader, LinkSample
from netmanager.snmp import mib
from netmanager.statedir import write_json
from snmp_agents import ber
from snmp_agents.oidtree import Entry, Oid, OidTree, Section, dynamic

log = logging.getLogger(__name__)

INTERFACES: Oid = (1, 3, 6, 1, 2, 1, 2)
IF_NUMBER: Oid = (*INTERFACES, 1, 0)
IF_ENTRY: Oid = (*INTERFACES, 2, 1)
IFX_ROOT: Oid = (1, 3, 6, 1, 2, 1, 31)
IFX_ENTRY: Oid = (*IFX_ROOT, 1, 1, 1)
#: a request naming an OID in one of these makes the poll faster for a while: the
#: counters' tables (not nmLinkNameTable, which a runtime change reads: a poll of many
#: links would compete with the change for the processor)
WATCHED_SUBTREES: tuple[Oid, ...] = (INTERFACES, IFX_ROOT, (*mib.NM_MONITOR, 1))

DOWN_STATES = (2, 7)
IF_TYPES = {"veth": 6, "bridge": 209, "vlan": 135, "vxlan": 6, "dummy": 6, "tun": 131}
MAX32 = 2**32

Integer32 = rfc1902.Integer32
OctetString = rfc1902.OctetString
Gauge32 = rfc1902.Gauge32
Counter32 = rfc1902.Counter32
Counter64 = rfc1902.Counter64
U32 = rfc1902.Unsigned32
TimeTicks = rfc1902.TimeTicks
ObjectIdentifier = rfc1902.ObjectIdentifier
ZERO_DOT_ZERO = ObjectIdentifier((0, 0))


def _c32(n: int) -> Any:
    return Counter32(n % MAX32)


def _g32(n: int) -> Any:
    return Gauge32(min(n, MAX32 - 1))


def _oid(value: Any) -> Any:
    return value


ber.register_integer_maker(_c32, 0x41)
ber.register_integer_maker(_g32, 0x42)


def parse_alias(alias: str) -> tuple[str, str]:
    """The (VM, network) a link's ownership mark names, for a link the running
    configuration does not name (a tap libvirt named): a VM port's
    'nm:<topology>:port:<vm>:<network>' -> ('<topology>/<vm>', '<topology>/<network>'),
    as the configuration qualifies them; the older 'nm:<topology>:<vm>:<network>' ->
    (vm, network); ('', '') for any other link (bridges, tunnels, IFBs)."""
    parts = alias.split(":")
    if len(parts) == 5 and parts[2] == "port":
        topology, vm, network = parts[1], parts[3], parts[4]
        return f"{topology}/{vm}"[:32], f"{topology}/{network}"[:32]
    if len(parts) == 4:
        return parts[2][:32], parts[3][:32]
    return "", ""


class IfIndexMap:
    """Stable ifIndex per (namespace, interface name), kept in the state directory so
    that a restarted agent serves the same rows (RFC 2863 asks ifIndex to stay)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.indexes: dict[str, int] = {}
        self._dirty = False
        if path is not None and path.exists():
            self.indexes = {k: int(v) for k, v in json.loads(path.read_text()).items()}

    def index(self, key: str) -> int:
        idx = self.indexes.get(key)
        if idx is None:
            idx = max(self.indexes.values(), default=0) + 1
            self.indexes[key] = idx
            self._dirty = True
        return idx

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        write_json(self.path, self.indexes)
        self._dirty = False


@dataclass(frozen=True)
class LinkRow:
    index: int
    sample: LinkSample
    vm: str
    network: str
    rate_kbps: int
    delay_us: int
    jitter_us: int
    loss_ppm: int
    last_change: int
    guest: int = GUEST_UNKNOWN  # nmLinkGuestAddress
    overrides: str = ""  # nmLinkOverrides
    rate_in_kbps: int = 0  # nmLinkRateFromVm


def link_rows(
    samples: Sequence[LinkSample],
    indexes: IfIndexMap,
    running: Candidate,
    last_change: dict[str, int],
    guests: Mapping[str, int] | None = None,
    overrides: Mapping[PortKey, PortOverride] | None = None,
) -> list[LinkRow]:
    """``guests``: nmLinkGuestAddress of the links the backend knows it of (a libvirt
    host's domain ports), by link key; other VM ports are netmanager's to configure.
    ``overrides``: the runtime values in force over the topology's, by port."""
    guests = guests or {}
    by_name = {(f"{t}/{v}", f"{t}/{n}"): o for (t, v, n), o in (overrides or {}).items()}
    by_ifname = {p.ifname: p for p in running.ports if p.ifname}
    rows = []
    for s in samples:
        port = by_ifname.get(s.ifname)
        vm, network = (port.vm, port.network) if port is not None else parse_alias(s.alias)
        shaping = running.port_shaping(vm, network) if vm else None
        override = by_name.get((vm, network)) if vm else None

        def value(own: int | None, name: str, scale: int = 1, o: Any = override) -> int:
            over = getattr(o, name) if o is not None else None
            return int(over // scale) if over is not None else int(own or 0)

        rows.append(
            LinkRow(
                index=indexes.index(s.key),
                sample=s,
                vm=vm,
                network=network,
                rate_kbps=value(shaping.rate_kbps if shaping else 0, "rate_bps", 1000),
                rate_in_kbps=value(shaping.rate_kbps if shaping else 0, "rate_in_bps", 1000),
                delay_us=value(shaping.delay_us if shaping else 0, "delay_us"),
                jitter_us=value(shaping.jitter_us if shaping else 0, "jitter_us"),
                loss_ppm=value(shaping.loss_ppm if shaping else 0, "loss_ppm"),
                last_change=last_change.get(s.key, 0),
                guest=guests.get(
                    s.key, GUEST_CONFIGURED if port is not None and port.vm else GUEST_UNKNOWN
                ),
                overrides=_override_words(override),
            )
        )
    rows.sort(key=lambda r: r.index)
    return rows


@dataclass(frozen=True)
class PairRow:
    """A ``<link>`` pair at a VM port (nmPairTable): the port's ifIndex, the peer VM,
    the values in force, and which of them runtime changes set."""

    index: int
    peer: str
    rate_kbps: int
    delay_us: int
    jitter_us: int
    loss_ppm: int
    overrides: str = ""
    rate_in_kbps: int = 0  # nmPairRateFromVm


def pair_rows(
    rows: Sequence[LinkRow], running: Candidate, overrides: Mapping[PortKey, PortOverride]
) -> list[PairRow]:
    """The pairs of the running configuration's ports that the link table serves."""
    index = {(r.vm, r.network): r.index for r in rows if r.vm and r.network}
    try:
        configs = host_configs_from_candidate(running, check=False)
    except ValueError:  # pragma: no cover - the running configuration was staged
        return []
    out = []
    for config in configs:
        topology = config.topology
        if not any(p.classes for p in config.ports):
            continue
        for port in apply_overrides(config, overrides).ports:
            i = index.get((f"{topology}/{port.vm}", f"{topology}/{port.network}"))
            if i is None:
                continue
            override = overrides.get((topology, port.vm, port.network))
            for found in port.classes:
                if not found.name.startswith(PAIR_CLASS):
                    continue
                peer = found.name.removeprefix(PAIR_CLASS)
                pair = override.pair(peer) if override is not None else None
                out.append(
                    PairRow(
                        i,
                        peer,
                        (found.egress.rate_bps or 0) // 1000,
                        found.egress.delay_us or 0,
                        found.egress.jitter_us or 0,
                        found.egress.loss_ppm or 0,
                        " ".join(pair.words()) if pair is not None else "",
                        (found.ingress.rate_bps or 0) // 1000,
                    )
                )
    return out


PAIR_COLUMNS: list[tuple[int, Callable[[PairRow], Entry]]] = [
    (2, lambda r: (rfc1902.Unsigned32, r.rate_kbps)),
    (3, lambda r: (rfc1902.Unsigned32, r.delay_us)),
    (4, lambda r: (rfc1902.Unsigned32, r.jitter_us)),
    (5, lambda r: (rfc1902.Unsigned32, r.loss_ppm)),
    (6, lambda r: (OctetString, _text(r.overrides))),
    (7, lambda r: (rfc1902.Unsigned32, r.rate_in_kbps)),
]


def _table(
    entry: Oid, rows: Sequence[LinkRow], columns: Sequence[tuple[int, Callable[[LinkRow], Entry]]]
) -> list[tuple[Oid, Entry]]:
    items: list[tuple[Oid, Entry]] = []
    for subid, cell in columns:
        prefix = (*entry, subid)
        items.extend(((*prefix, r.index), cell(r)) for r in rows)
    return items


def _override_words(override: PortOverride | None) -> str:
    return " ".join(override.words()) if override is not None else ""


def _text(s: str) -> bytes:
    return s.encode("utf-8", "replace")[:255]


def _descr(r: LinkRow) -> bytes:
    where = f" in netns {r.sample.netns}" if r.sample.netns else ""
    return _text(f"{r.sample.kind or 'link'} {r.sample.ifname}{where}")


IF_COLUMNS: list[tuple[int, Callable[[LinkRow], Entry]]] = [
    (1, lambda r: (Integer32, r.index)),
    (2, lambda r: (OctetString, _descr(r))),
    (3, lambda r: (Integer32, IF_TYPES.get(r.sample.kind, 6 if len(r.sample.mac) == 6 else 1))),
    (4, lambda r: (Integer32, r.sample.mtu)),
    (5, lambda r: (_g32, r.rate_kbps * 1000)),
    (6, lambda r: (OctetString, r.sample.mac)),
    (7, lambda r: (Integer32, 1 if r.sample.admin_up else 2)),
    (8, lambda r: (Integer32, r.sample.oper)),
    (9, lambda r: (TimeTicks, r.last_change)),
    (10, lambda r: (_c32, r.sample.rx_bytes)),
    (11, lambda r: (_c32, max(r.sample.rx_packets - r.sample.multicast, 0))),
    (12, lambda r: (_c32, r.sample.multicast)),
    (13, lambda r: (_c32, r.sample.rx_dropped)),
    (14, lambda r: (_c32, r.sample.rx_errors)),
    (15, lambda r: (_c32, 0)),
    (16, lambda r: (_c32, r.sample.tx_bytes)),
    (17, lambda r: (_c32, r.sample.tx_packets)),
    (18, lambda r: (_c32, 0)),
    (19, lambda r: (_c32, r.sample.tx_dropped)),
    (20, lambda r: (_c32, r.sample.tx_errors)),
    (21, lambda r: (Gauge32, 0)),
    (22, lambda r: (_oid, ZERO_DOT_ZERO)),
]

IFX_COLUMNS: list[tuple[int, Callable[[LinkRow], Entry]]] = [
    (1, lambda r: (OctetString, _text(r.sample.ifname))),
    (2, lambda r: (_c32, r.sample.multicast)),
    (3, lambda r: (_c32, 0)),
    (4, lambda r: (_c32, 0)),
    (5, lambda r: (_c32, 0)),
    (6, lambda r: (Counter64, r.sample.rx_bytes)),
    (7, lambda r: (Counter64, max(r.sample.rx_packets - r.sample.multicast, 0))),
    (8, lambda r: (Counter64, r.sample.multicast)),
    (9, lambda r: (Counter64, 0)),
    (10, lambda r: (Counter64, r.sample.tx_bytes)),
    (11, lambda r: (Counter64, r.sample.tx_packets)),
    (12, lambda r: (Counter64, 0)),
    (13, lambda r: (Counter64, 0)),
    (14, lambda r: (Integer32, 1)),
    (15, lambda r: (_g32, r.rate_kbps // 1000)),
    (16, lambda r: (Integer32, 2)),
    (17, lambda r: (Integer32, 2)),
    (18, lambda r: (OctetString, _text(r.sample.alias))),
    (19, lambda r: (TimeTicks, 0)),
]


def _link_columns(poll_ticks: int) -> list[tuple[int, Callable[[LinkRow], Entry]]]:
    return [
        (1, lambda r: (OctetString, _text(r.vm))),
        (2, lambda r: (OctetString, _text(r.network))),
        (3, lambda r: (OctetString, _text(r.sample.netns))),
        (4, lambda r: (rfc1902.Unsigned32, r.rate_kbps)),
        (5, lambda r: (rfc1902.Unsigned32, r.delay_us)),
        (6, lambda r: (rfc1902.Unsigned32, r.jitter_us)),
        (7, lambda r: (rfc1902.Unsigned32, r.loss_ppm)),
        (8, lambda r: (Integer32, r.sample.oper)),
        (9, lambda r: (Counter64, r.sample.rx_bytes)),
        (10, lambda r: (Counter64, r.sample.tx_bytes)),
        (11, lambda r: (Counter64, r.sample.rx_packets)),
        (12, lambda r: (Counter64, r.sample.tx_packets)),
        (13, lambda r: (Counter64, r.sample.rx_dropped)),
        (14, lambda r: (Counter64, r.sample.tx_dropped)),
        (15, lambda r: (TimeTicks, poll_ticks)),
        (16, lambda r: (Integer32, r.guest)),
        (17, lambda r: (OctetString, _text(r.overrides))),
        (18, lambda r: (rfc1902.Unsigned32, r.rate_in_kbps)),
    ]


@dataclass(frozen=True)
class PollStats:
    interval_ms: int = 0
    duration_ms: int = 0
    cpu_ms: int = 0


def build_sections(
    rows: Sequence[LinkRow],
    poll_ticks: int,
    stats: Callable[[], PollStats],
    pairs: Sequence[PairRow] = (),
) -> list[Section]:
    """ifNumber + ifTable, ifXTable, nmLinkTable, nmPairTable + the poll scalars (read
    at request time)."""
    if_items: list[tuple[Oid, Entry]] = [(IF_NUMBER, (Integer32, len(rows)))]
    if_items += _table(IF_ENTRY, rows, IF_COLUMNS)
    ifx_items = _table(IFX_ENTRY, rows, IFX_COLUMNS)
    link_entry = mib.oid_of("nmLinkEntry")
    link_items = _table(link_entry, rows, _link_columns(poll_ticks))
    name_column = (*mib.oid_of("nmLinkNameEntry"), 3)
    named = {(r.vm, r.network): r.index for r in rows if r.vm and r.network}
    link_items += [
        ((*name_column, *mib.string_index(vm), *mib.string_index(network)), (Integer32, index))
        for (vm, network), index in named.items()
    ]
    pair_entry = mib.oid_of("nmPairEntry")
    link_items += [
        ((*pair_entry, column, r.index, *mib.string_index(r.peer)), cell(r))
        for column, cell in PAIR_COLUMNS
        for r in pairs
    ]
    link_items += [
        ((*mib.oid_of("nmMonitorPollInterval"), 0), dynamic(lambda: U32(stats().interval_ms))),
        ((*mib.oid_of("nmMonitorPollDuration"), 0), dynamic(lambda: _g32(stats().duration_ms))),
        ((*mib.oid_of("nmMonitorPollCpu"), 0), dynamic(lambda: _g32(stats().cpu_ms))),
        (
            (*mib.oid_of("nmMonitorOverrides"), 0),
            (
                Gauge32,
                len(
                    {r.index for r in rows if r.overrides} | {p.index for p in pairs if p.overrides}
                ),
            ),
        ),
    ]
    link_items.sort(key=lambda item: item[0])
    return [
        Section.build(
            "interfaces",
            INTERFACES,
            if_items,
            [(*INTERFACES, 1)] + [(*IF_ENTRY, c) for c, _ in IF_COLUMNS],
            presorted=True,
        ),
        Section.build(
            "ifx", IFX_ROOT, ifx_items, [(*IFX_ENTRY, c) for c, _ in IFX_COLUMNS], presorted=True
        ),
        Section.build(
            "links",
            mib.NM_MONITOR,
            link_items,
            [(*link_entry, c) for c in range(1, 18)]
            + [name_column]
            + [(*pair_entry, c) for c, _ in PAIR_COLUMNS]
            + [
                mib.oid_of(n)
                for n in (
                    "nmMonitorPollInterval",
                    "nmMonitorPollDuration",
                    "nmMonitorPollCpu",
                    "nmMonitorOverrides",
                )
            ],
            presorted=True,
        ),
    ]


OperChange = Callable[[LinkRow, int, int], None]


class Monitor:
    """Polls a :class:`LinkReader` and keeps the interface sections of an OidTree fresh."""

    def __init__(
        self,
        reader: LinkReader,
        indexes: IfIndexMap,
        tree: OidTree,
        uptime: Callable[[], int],
        executor: Executor,
        interval_s: float = 5.0,
        on_oper_change: OperChange | None = None,
        *,
        watched_interval_s: float = 0.5,
        watch_hold_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader = reader
        self.indexes = indexes
        self.tree = tree
        self.uptime = uptime
        self.executor = executor
        self.interval_s = interval_s
        #: whether a transaction is changing the host now (the agent sets it): the
        #: periodic read waits meanwhile
        self.busy: Callable[[], bool] = lambda: False
        #: 0: the poll never speeds up
        self.watched_interval_s = watched_interval_s
        self.watch_hold_s = watch_hold_s
        self.clock = clock
        self._read_at = -math.inf
        self._wake: asyncio.Event | None = None
        self.on_oper_change = on_oper_change or (lambda row, old, new: None)
        #: nmLinkGuestAddress of the links the backend checks (its guest_addresses),
        #: asked at every read, in the poll thread
        self.guest_addresses: Callable[[], Mapping[str, int]] = dict
        self.guests: Mapping[str, int] = {}
        #: the runtime overrides in force (the backend's port_values), asked at every build
        self.port_values: Callable[[], Mapping[PortKey, PortOverride]] = dict
        #: the last rows served, by ifIndex (what a SET on the link table names)
        self.rows_by_index: dict[int, LinkRow] = {}
        #: the pairs served (ifIndex, peer): what a SET on the pair table names
        self.pairs: set[tuple[int, str]] = set()
        self.running = Candidate()
        self.samples: list[LinkSample] = []
        self.oper: dict[str, int] = {}
        self.last_change: dict[str, int] = {}
        self.stats = PollStats(interval_ms=int(interval_s * 1000))
        self.polls = 0
        self._task: asyncio.Task[None] | None = None
        self._refresh: asyncio.Task[None] | None = None
        for section in build_sections([], 0, lambda: self.stats):
            tree.put(section)

    @property
    def watched(self) -> bool:
        """Whether a request read the counters within the last ``watch_hold_s`` seconds."""
        return self.watched_interval_s > 0 and self.clock() - self._read_at <= self.watch_hold_s

    def current_interval(self) -> float:
        if self.watched:
            return min(self.watched_interval_s, self.interval_s)
        return self.interval_s

    def counters_read(self) -> None:
        """A request named an OID of the interface or link tables (called in the event
        loop): poll faster for a while, and at once if nobody was watching."""
        was = self.watched
        self._read_at = self.clock()
        if not was and self.watched and self._wake is not None:
            self._wake.set()

    def _work(self, read: bool) -> tuple[list[Section], list[tuple[LinkRow, int, int]]]:
        """In the poll thread: read, detect state changes, build the sections.

        The cyclic collector is paused meanwhile: a dump of 1000 links allocates some
        10^5 short-lived objects, and the collections they trigger cost more than the
        dump itself (measured: 0.7 s CPU with, 0.25 s without).
        """
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._work_uncollected(read)
        finally:
            if collecting:
                gc.enable()

    def _work_uncollected(self, read: bool) -> tuple[list[Section], list[tuple[LinkRow, int, int]]]:
        t0, c0 = time.monotonic(), time.thread_time()
        samples = self.reader.read() if read else self.samples
        ticks = self.uptime()
        changed: list[tuple[str, int, int]] = []
        if read:
            for sample in samples:
                old = self.oper.get(sample.key)
                if old is not None and old != sample.oper:
                    self.last_change[sample.key] = ticks
                    changed.append((sample.key, old, sample.oper))
                self.oper[sample.key] = sample.oper
        if read:
            try:
                self.guests = self.guest_addresses()
            except Exception:  # the counters are served all the same
                log.exception("guest address check failed")
        overrides = self.port_values()
        rows = link_rows(
            samples, self.indexes, self.running, self.last_change, self.guests, overrides
        )
        pairs = pair_rows(rows, self.running, overrides)
        self.rows_by_index = {r.index: r for r in rows}
        self.pairs = {(r.index, r.peer) for r in pairs}
        self.indexes.save()
        sections = build_sections(rows, ticks, lambda: self.stats, pairs)
        if read:
            self.samples = samples
            self.polls += 1
            self.stats = PollStats(
                int(self.current_interval() * 1000),
                int((time.monotonic() - t0) * 1000),
                int((time.thread_time() - c0) * 1000),
            )
        by_key = {row.sample.key: row for row in rows}
        return sections, [(by_key[key], old, new) for key, old, new in changed]

    async def poll(self, read: bool = True) -> None:
        loop = asyncio.get_running_loop()
        sections, changes = await loop.run_in_executor(self.executor, self._work, read)
        for section in sections:
            self.tree.put(section)
        for row, old, new in changes:
            self.on_oper_change(row, old, new)

    def set_running(self, running: Candidate) -> None:
        """The configuration in force changed: read the links again now, so that new ports
        are served at once (the poll runs in the poll executor, off the request path)."""
        self.running = running
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._refresh = loop.create_task(self.poll())

    def values_changed(self, read: bool = False) -> asyncio.Task[None] | None:
        """A runtime change: the values in force changed; the links' own state too where
        ``read`` (a port taken down or up: every link read again), else the tables are
        built again from the last read.  Returns the rebuild, for the SET's response to
        wait for: a GET right after the response must serve the new values."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        self._refresh = loop.create_task(self.poll(read=read))
        return self._refresh

    async def run(self) -> None:
        self._wake = asyncio.Event()
        while True:
            started = self.clock()
            if self.busy():
                # a transaction is changing the links: what a read would find is about to
                # change anyway, and the read competes with the change for the CPU
                # (set_running reads again as soon as a commit or rollback is in force)
                await self._pause(started, 0.0)
                continue
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("link poll failed")
            await self._pause(started, self.clock() - started)

    async def _pause(self, started: float, took: float) -> None:
        """Until the next poll is due: ``current_interval()`` after the last one started,
        and at least twice its duration after it ended; a request that starts a watch
        wakes it up to recompute."""
        assert self._wake is not None
        while True:
            due = started + max(self.current_interval(), 3 * took)
            delay = due - self.clock()
            if delay <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                return

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
