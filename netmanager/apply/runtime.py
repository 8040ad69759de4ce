"""``netmanager set``: change running links at once, in place, without planning the
topology (the hosts keep each change as an override of it: :mod:`netmanager.host.runtime`).

A target is a network (every VM port in it), a VM's interface (``VM:NETWORK``), a VM
with a single interface, or a ``<link>`` pair (``VM1~VM2``: the class each of the two
ports has for the other).  The ports are found in the applied record; each host gets
one request with all of its ports' changes: through its agent (one GET of
``nmLinkNameIfIndex`` for the ports' rows, one SET of their ``nmLinkRate``,
``nmLinkDelay``, ``nmLinkJitter``, ``nmLinkLoss`` and ``ifAdminStatus``, or of a pair's
``nmPairRate``, ...), or for a topology applied with ``--local`` through this process's
backend of the host.  The hosts
are changed at once, each answering when its kernel carries the change; a host that
refuses (a value its kernel lacks: NetEm) changes nothing, and says why.

Values are the port's qdiscs': the rate holds both ways (TBF towards the VM and on what
it sends); delay, jitter and loss are NetEm's towards the VM — the delay added at the
port, to which the physical path's own latency comes on top.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from netmanager.apply.records import Record, applied_record, records
from netmanager.errors import ExitCode, Loc, NetmanagerError, single
from netmanager.host.rows import PortKey
from netmanager.host.runtime import PortOverride


class SetFailed(NetmanagerError):
    """A runtime change a host refused or could not make (exit code 4, nothing changed
    there)."""

    exit_code = ExitCode.APPLY_FAILED


def _problem(
    code: str, message: str, hint: str = "", cls: type[NetmanagerError] = NetmanagerError
) -> NetmanagerError:
    return single(code, Loc("netmanager"), message, hint, "set", cls)


@dataclass(frozen=True)
class LinkChange:
    """What a runtime change sets (None: unchanged): rate in bit/s (0: no limit), both
    ways unless ``rate_in_bps`` gives the rate from the VM apart, NetEm delay and jitter
    in µs, loss in ppm (0: none), the port up or down."""

    rate_bps: int | None = None
    delay_us: int | None = None
    jitter_us: int | None = None
    loss_ppm: int | None = None
    up: bool | None = None
    rate_in_bps: int | None = None

    @property
    def empty(self) -> bool:
        return all(v is None for v in self.as_json().values())

    def as_json(self) -> dict[str, Any]:
        return {
            "rate_bps": self.rate_bps,
            "delay_us": self.delay_us,
            "jitter_us": self.jitter_us,
            "loss_ppm": self.loss_ppm,
            "up": self.up,
            "rate_in_bps": self.rate_in_bps,
        }


#: where a runtime change goes: a port, and the peer VM of one of its ``<link>`` pairs
#: ("": the port's own values)
Spot = tuple[PortKey, str]


@dataclass(frozen=True)
class SetOutcome:
    topology: str
    target: str
    change: LinkChange
    #: (host, VM, network, peer) of every port changed (peer: of the pair changed there)
    ports: tuple[tuple[str, str, str, str], ...]
    seconds: float
    transport: str
    timings: Mapping[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "topology": self.topology,
            "target": self.target,
            "change": self.change.as_json(),
            "ports": [
                {"host": h, "vm": v, "network": n, **({"peer": p} if p else {})}
                for h, v, n, p in self.ports
            ],
            "seconds": round(self.seconds, 4),
            "transport": self.transport,
        }


def resolve(record: Record, target: str) -> dict[str, list[Spot]]:
    """The ports of ``target`` in an applied topology, by host; E770 when it names
    nothing there."""
    from netmanager.host.runtime import pair_class, pair_peers

    topology = record.topology
    by_host: dict[str, list[Spot]] = {}
    networks = sorted({p.network for c in record.hosts.values() for p in c.ports})
    vms = sorted({p.vm for c in record.hosts.values() for p in c.ports})

    def pick(want: Any, peer: Any = lambda port: "") -> None:
        for host, config in sorted(record.hosts.items()):
            for port in config.ports:
                if want(port):
                    spot = ((topology, port.vm, port.network), peer(port))
                    by_host.setdefault(host, []).append(spot)

    if "~" in target:
        a, _, b = target.partition("~")
        ends = {a: b, b: a}
        pick(
            lambda p: p.vm in ends and pair_class(p, ends[p.vm]) is not None,
            lambda p: ends[p.vm],
        )
        if not by_host:
            pairs = sorted(
                "~".join(sorted((p.vm, peer)))
                for c in record.hosts.values()
                for p in c.ports
                for peer in pair_peers(p)
            )
            raise _problem(
                "E770",
                f"topology '{topology}' has no <link> pair {target}",
                f"its pairs: {', '.join(dict.fromkeys(pairs))}"
                if pairs
                else "its virtual.xml gives no <link>",
            )
        return by_host
    if ":" in target:
        vm, network = target.split(":", 1)
        pick(lambda p: p.vm == vm and p.network == network)
        if not by_host:
            theirs = sorted(p.network for c in record.hosts.values() for p in c.ports if p.vm == vm)
            hint = (
                f"VM '{vm}' has interfaces in: {', '.join(theirs)}"
                if theirs
                else f"its VMs: {', '.join(vms)}"
            )
            raise _problem("E770", f"topology '{topology}' has no interface {target}", hint)
        return by_host
    if target in networks:
        pick(lambda p: p.network == target)
        return by_host
    if target in vms:
        pick(lambda p: p.vm == target)
        if sum(len(v) for v in by_host.values()) > 1:
            theirs = sorted(key[2] for spots in by_host.values() for key, _ in spots)
            raise _problem(
                "E770",
                f"VM '{target}' has several interfaces: name one",
                "as " + ", ".join(f"{target}:{n}" for n in theirs),
            )
        return by_host
    raise _problem(
        "E770",
        f"topology '{topology}' has no network or VM '{target}'",
        f"a network ({', '.join(networks)}), VM:NETWORK, or a VM with one interface",
    )


def set_links(topology: str, target: str, change: LinkChange) -> SetOutcome:
    """Change the running ports of ``target`` in an applied topology at once (see the
    module); raises NetmanagerError (E770/E771 before anything, E772 when a host
    refused: nothing changed there)."""
    start = time.perf_counter()
    if change.empty:
        raise _problem(
            "E773",
            "nothing to set",
            "give --bandwidth, --latency, --jitter, --loss, --up or --down",
        )
    record = applied_record(topology, "set")
    ports = resolve(record, target)
    if change.up is not None and "~" in target:
        raise _problem(
            "E771",
            f"target '{target}': a <link> pair has no state of its own to take down or up",
            "take a VM's interface down instead (VM:NETWORK --down)",
        )
    _refuse_missing_netem(record, ports, change)
    _change(record, {h: {spot: change for spot in spots} for h, spots in ports.items()})
    return SetOutcome(
        topology,
        target,
        change,
        tuple(
            (h, vm, net, peer) for h, spots in sorted(ports.items()) for (_, vm, net), peer in spots
        ),
        time.perf_counter() - start,
        record.transport,
    )


def _refuse_missing_netem(
    record: Record, ports: Mapping[str, list[Spot]], change: LinkChange
) -> None:
    """Delay, jitter or loss on a host emulated on this machine whose kernel has no NetEm:
    E772 before anything (another kernel's host — a guest, a real host — finds out itself,
    and refuses as well before it changes anything)."""
    if not (change.delay_us or change.jitter_us or change.loss_ppm):
        return
    here = [h for h in sorted(ports) if record.hosts[h].dom0]
    if not here:
        return
    from netmanager.apply.prepare import local_features

    if "netem" not in local_features():
        raise _problem(
            "E772",
            f"host '{here[0]}' is emulated on this machine, whose kernel has no NetEm "
            "(sch_netem): no delay, jitter or loss",
            'guest hosts (hypervisor="guest") run a kernel that has it; nothing was changed',
            SetFailed,
        )


def _change(record: Record, changes: Mapping[str, Mapping[Spot, LinkChange]]) -> None:
    """Each host's ports changed, through its agent or this process's backend."""
    if record.transport == "agents":
        _SESSION.run(_through_agents(record, changes))
    else:
        _in_process(record, changes)


class _Session:
    """An event loop of its own (in a thread) with the agents' clients kept open, for the
    runtime changes of this process: the second change of a host costs two SNMP round
    trips, not a new SNMP engine (some 0.1 s) and its keys."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self.clients: dict[tuple[str, str, int, str], Any] = {}

    def run(self, coro: Any) -> Any:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                self._loop = asyncio.new_event_loop()
                threading.Thread(
                    target=self._loop.run_forever, name="netmanager-set", daemon=True
                ).start()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    async def client(self, fresh: Any) -> Any:
        """An open client of the agent ``fresh`` (an unopened AgentClient) reaches."""
        from netmanager.statedir import state_dir

        key = (str(state_dir()), fresh.host, fresh.address, fresh.port)
        kept = self.clients.get(key)
        if kept is None:
            kept = await fresh.open()
            self.clients[key] = kept
        return kept

    def forget(self, client: Any) -> None:
        for key, kept in list(self.clients.items()):
            if kept is client:
                del self.clients[key]
                client.close()


_SESSION = _Session()


def _override(change: LinkChange) -> PortOverride:
    return PortOverride(
        rate_bps=change.rate_bps,
        rate_in_bps=change.rate_in_bps if change.rate_in_bps is not None else change.rate_bps,
        delay_us=change.delay_us,
        jitter_us=change.jitter_us,
        loss_ppm=change.loss_ppm,
        up=change.up,
    )


def overrides_of(changes: Mapping[Spot, LinkChange]) -> dict[PortKey, PortOverride]:
    """One host's changes as its backend takes them: by port, a pair's inside its port's."""
    own: dict[PortKey, PortOverride] = {}
    pairs: dict[PortKey, list[tuple[str, PortOverride]]] = {}
    for (key, peer), change in sorted(changes.items()):
        if peer:
            pairs.setdefault(key, []).append((peer, _override(change)))
        else:
            own[key] = _override(change)
    return {
        key: PortOverride(**own.get(key, PortOverride()).values(), pairs=tuple(pairs.get(key, ())))
        for key in sorted({*own, *pairs})
    }


def _in_process(record: Record, changes: Mapping[str, Mapping[Spot, LinkChange]]) -> None:
    """A topology applied with --local: this process's backend of each host."""
    from netmanager.apply.local import LocalTransport

    for host, ports in sorted(changes.items()):
        transport = LocalTransport.kernel(host, record.hosts[host].dom0)
        try:
            asyncio.run(transport.runtime(overrides_of(ports)))
        except Exception as exc:
            raise _problem(
                "E772",
                f"host '{host}' refused the change: {exc}",
                "nothing changed there",
                SetFailed,
            ) from exc
        finally:
            transport.close()


async def _through_agents(record: Record, changes: Mapping[str, Mapping[Spot, LinkChange]]) -> None:
    hosts = sorted(changes)
    chosen = _agent_clients(record, hosts)
    opened = {h: await _SESSION.client(chosen[h]) for h in hosts}
    results = await asyncio.gather(
        *(_on_host(opened[h], h, changes[h]) for h in hosts), return_exceptions=True
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        # each host answered for itself: those not named here carry the change
        raise failed[0]


def _agent_clients(record: Record, hosts: list[str]) -> dict[str, Any]:
    from netmanager.apply.readback import _remote_agents
    from netmanager.apply.topology import clients, running_agents

    infos = {h: a for h, a in running_agents().items() if h in hosts}
    if any(h not in infos for h in hosts):
        # real hosts' agents run as services where real.xml says (it is read for them)
        infos |= _remote_agents([record], [h for h in hosts if h not in infos])
    missing = [h for h in hosts if h not in infos]
    if missing:
        raise _problem(
            "E772",
            f"host '{missing[0]}': its agent is not running",
            "netmanager apply starts it again",
            SetFailed,
        )
    return clients(None, infos, "set")


async def _on_host(client: Any, host: str, changes: Mapping[Spot, LinkChange]) -> None:
    from pysnmp.proto import rfc1902

    from netmanager.agentctl.client import AgentError
    from netmanager.snmp import mib

    name = mib.oid_of("nmLinkNameEntry")
    link = mib.oid_of("nmLinkEntry")
    pair = mib.oid_of("nmPairEntry")
    admin = (1, 3, 6, 1, 2, 1, 2, 2, 1, 7)
    keys = sorted({key for key, _ in changes})
    # the session keeps the client open from one change to the next
    try:
        found = await client.get(
            *(
                (*name, 3, *mib.string_index(f"{t}/{vm}"), *mib.string_index(f"{t}/{net}"))
                for t, vm, net in keys
            )
        )
        indexes = {}
        for key, value in zip(keys, found, strict=True):
            try:
                indexes[key] = int(value)
            except (TypeError, ValueError):
                raise _problem(
                    "E772",
                    f"host '{host}' serves no port of VM '{key[1]}' in network '{key[2]}' (yet)",
                    "netmanager status shows what the host's agent reports",
                    SetFailed,
                ) from None
        varbinds = []
        u = rfc1902.Unsigned32
        for (key, peer), change in sorted(changes.items()):
            index = indexes[key]
            if peer:  # nmPairTable: rate 2, delay 3, jitter 4, loss 5
                row: tuple[int, ...] = (index, *mib.string_index(peer))
                table, first = pair, 2
            else:  # nmLinkTable: rate 4, delay 5, jitter 6, loss 7
                row, table, first = (index,), link, 4
            values = (change.rate_bps, change.delay_us, change.jitter_us, change.loss_ppm)
            for offset, number in enumerate(values):
                if number is not None:
                    scaled = number // 1000 if offset == 0 else number
                    varbinds.append(((*table, first + offset, *row), u(scaled)))
            if change.rate_in_bps is not None:  # nmLinkRateFromVm 18, nmPairRateFromVm 7
                column = 7 if peer else 18
                varbinds.append(((*table, column, *row), u(change.rate_in_bps // 1000)))
            if change.up is not None:
                varbinds.append(((*admin, index), rfc1902.Integer32(1 if change.up else 2)))
        await client.set(varbinds)
    except AgentError as exc:
        why = await _last_error(client)
        if not why:
            _SESSION.forget(client)  # no answer: the next change opens it again
        raise _problem(
            "E772",
            f"host '{host}' refused the change: {why or exc}",
            "nothing changed there",
            SetFailed,
        ) from exc


# ------------------------------------------------------------------ kept, and reset


@dataclass(frozen=True)
class KeptChange:
    """A port's values that runtime changes set, as its host reports them, and what a
    new virtual.xml does to them: ``replaced`` are those it changes itself (its value
    wins), the others are kept by an apply (unless ``--reset``)."""

    host: str
    vm: str
    network: str
    values: tuple[str, ...]
    replaced: tuple[str, ...] = ()

    @property
    def kept(self) -> tuple[str, ...]:
        return tuple(v for v in self.values if v not in self.replaced)

    def text(self) -> str:
        out = f"{self.vm}:{self.network} on {self.host}: "
        parts = []
        if self.kept:
            parts.append(f"{' '.join(self.kept)} set at run time, kept")
        if self.replaced:
            parts.append(f"{' '.join(self.replaced)} set at run time, replaced by virtual.xml's")
        return out + "; ".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "vm": self.vm,
            "network": self.network,
            "kept": list(self.kept),
            "replaced": list(self.replaced),
        }


def runtime_changes(topology: str) -> dict[PortKey, tuple[str, tuple[str, ...]]]:
    """The ports of an applied topology that runtime changes set values of: (host, the
    values' words), as the hosts report them ({} when none is, or it is not applied)."""
    record = records().get(topology)
    if record is None:
        return {}
    out: dict[PortKey, tuple[str, tuple[str, ...]]] = {}
    if record.transport == "agents":
        hosts = sorted(record.hosts)
        try:
            chosen = _agent_clients(record, hosts)
        except NetmanagerError:
            return {}  # an agent not running: apply starts it, with its journal

        async def all_hosts() -> list[Any]:
            return await asyncio.gather(
                *(_overrides_of(chosen[h], topology) for h in hosts), return_exceptions=True
            )

        for host, found in zip(hosts, asyncio.run(all_hosts()), strict=True):
            if isinstance(found, BaseException):
                continue  # what the host could not say, the next status shows
            for key, words in found.items():
                out[key] = (host, words)
        return out
    from netmanager.apply.local import LocalTransport

    for host, config in sorted(record.hosts.items()):
        transport = LocalTransport.kernel(host, config.dom0)
        try:
            values: dict[PortKey, PortOverride] = getattr(transport.backend, "port_values", dict)()
        finally:
            transport.close()
        for key, override in values.items():
            if key[0] == topology:
                out[key] = (host, override.all_words())
    return out


async def _overrides_of(client: Any, topology: str) -> dict[PortKey, tuple[str, ...]]:
    """A host's ports of ``topology`` with runtime changes (its link table: read only
    where nmMonitorOverrides says there are any)."""
    from netmanager.snmp import mib

    entry = mib.oid_of("nmLinkEntry")
    out: dict[PortKey, tuple[str, ...]] = {}
    async with client:
        (count,) = await client.get((*mib.oid_of("nmMonitorOverrides"), 0))
        try:
            if not int(count):
                return out
        except (TypeError, ValueError):
            return out  # an agent of before runtime changes
        rows: dict[int, dict[int, str]] = {}
        for column in (1, 2, 17):
            for oid, value in await client.walk((*entry, column)):
                text = bytes(value.asOctets()).decode("utf-8", "replace")
                rows.setdefault(oid[-1], {})[column] = text
        # the pairs' (nmPairOverrides: ifIndex, then the peer's length and octets)
        pairs = (*mib.oid_of("nmPairEntry"), 6)
        paired: dict[int, list[str]] = {}
        for oid, value in await client.walk(pairs):
            index = oid[len(pairs) :]
            peer = bytes(index[2:]).decode("utf-8", "replace")
            words = bytes(value.asOctets()).decode("utf-8", "replace").split()
            paired.setdefault(index[0], []).extend(f"{w}~{peer}" for w in words)
    for index, row in rows.items():
        vm, network = row.get(1, ""), row.get(2, "")
        words = [*row.get(17, "").split(), *paired.get(index, ())]
        if not words or not vm.startswith(f"{topology}/"):
            continue
        out[(topology, vm.split("/", 1)[1], network.split("/", 1)[-1])] = tuple(words)
    return out


def vm_changes(record: Record, vm: str) -> dict[Spot, LinkChange]:
    """The runtime changes in force on a VM's ports (and their pairs), as changes to make
    again elsewhere (a migrated VM's, on its new host): each value that a runtime change
    set, at the value in force — the rate from the VM apart where it differs."""
    host = record.placement.get(vm)
    if host is None:
        return {}
    topology = record.topology
    found: dict[Spot, dict[str, Any]] = {}
    if record.transport == "agents":
        try:
            client = _agent_clients(record, [host])[host]
        except NetmanagerError:
            return {}
        found = asyncio.run(_values_of(client, topology, vm))
    else:
        from netmanager.apply.local import LocalTransport

        transport = LocalTransport.kernel(host, record.hosts[host].dom0)
        try:
            values: dict[PortKey, PortOverride] = getattr(transport.backend, "port_values", dict)()
        finally:
            transport.close()
        for key, override in values.items():
            if key[:2] == (topology, vm):
                found[(key, "")] = _change_values(override)
                for peer, pair in override.pairs:
                    found[(key, peer)] = _change_values(pair)
    return {spot: LinkChange(**values) for spot, values in found.items() if values}


def _change_values(override: PortOverride) -> dict[str, Any]:
    """An override's own values as a LinkChange takes them: the rate towards the VM, and
    the rate from it apart where that differs."""
    values = dict(override.values())
    if "rate_bps" in values and values.get("rate_in_bps") == values["rate_bps"]:
        del values["rate_in_bps"]
    return values


#: an override's words, with the field each stands for, its factor from the table's unit,
#: and its column in nmLinkTable and in nmPairTable
_COLUMNS = {
    "rate": ("rate_bps", 1000, 4, 2),
    "delay": ("delay_us", 1, 5, 3),
    "jitter": ("jitter_us", 1, 6, 4),
    "loss": ("loss_ppm", 1, 7, 5),
}


async def _values_of(
    client: Any, topology: str, vm: str | None = None
) -> dict[Spot, dict[str, Any]]:
    """A VM's runtime changes on its host (None: every VM's of the topology): the words
    of its link rows (and pair rows), with the values in force."""
    from netmanager.snmp import mib

    link = mib.oid_of("nmLinkEntry")
    pair_entry = mib.oid_of("nmPairEntry")
    out: dict[Spot, dict[str, Any]] = {}
    async with client:
        rows: dict[int, dict[int, Any]] = {}
        for column in (1, 2, 4, 5, 6, 7, 8, 17, 18):
            for oid, value in await client.walk((*link, column)):
                rows.setdefault(oid[-1], {})[column] = value
        pairs: dict[tuple[int, str], dict[int, Any]] = {}
        for column in (2, 3, 4, 5, 6, 7):
            prefix = (*pair_entry, column)
            for oid, value in await client.walk(prefix):
                index = oid[len(prefix) :]
                peer = bytes(index[2:]).decode("utf-8", "replace")
                pairs.setdefault((index[0], peer), {})[column] = value

    def text(value: Any) -> str:
        return bytes(value.asOctets()).decode("utf-8", "replace") if value is not None else ""

    for index, row in rows.items():
        named = text(row.get(1))
        if not named.startswith(f"{topology}/") or (vm is not None and named != f"{topology}/{vm}"):
            continue
        key = (topology, named.split("/", 1)[1], text(row.get(2)).split("/", 1)[-1])
        own: dict[str, Any] = {}
        for word in text(row.get(17)).split():
            if word == "state":
                own["up"] = int(row.get(8, 1)) == 1
            elif word in _COLUMNS:
                name, factor, column, _ = _COLUMNS[word]
                own[name] = int(row[column]) * factor
                if word == "rate":  # and the rate from the VM (an agent without it: both)
                    own["rate_in_bps"] = int(row.get(18, row[column])) * factor
        if own:
            out[(key, "")] = own
        for (where, peer), cells in pairs.items():
            if where != index:
                continue
            values: dict[str, Any] = {}
            for word in text(cells.get(6)).split():
                if word in _COLUMNS:
                    name, factor, _, column = _COLUMNS[word]
                    values[name] = int(cells[column]) * factor
                    if word == "rate":
                        values["rate_in_bps"] = int(cells.get(7, cells[column])) * factor
            if values:
                out[(key, peer)] = values
    return out


def host_overrides(record: Record) -> dict[str, dict[PortKey, PortOverride]]:
    """The runtime overrides each host of an applied topology keeps for it, by host (the
    state verify compares the kernel with): the backend's own where it runs in this
    process; through an agent, as its link table serves them (a rate both ways)."""
    topology = record.topology
    out: dict[str, dict[PortKey, PortOverride]] = {}
    if record.transport != "agents":
        from netmanager.apply.local import LocalTransport

        for host, config in sorted(record.hosts.items()):
            transport = LocalTransport.kernel(host, config.dom0)
            try:
                kept: dict[PortKey, PortOverride] = getattr(
                    transport.backend, "port_values", dict
                )()
            finally:
                transport.close()
            out[host] = {k: o for k, o in kept.items() if k[0] == topology}
        return out
    hosts = sorted(record.hosts)
    try:
        chosen = _agent_clients(record, hosts)
    except NetmanagerError:
        return {}

    async def every_host() -> list[Any]:
        return list(
            await asyncio.gather(
                *(_values_of(chosen[h], topology) for h in hosts), return_exceptions=True
            )
        )

    for host, found in zip(hosts, asyncio.run(every_host()), strict=True):
        if isinstance(found, BaseException):
            continue
        by_port: dict[PortKey, PortOverride] = {}
        for (key, peer), values in sorted(found.items()):
            both = dict(values)
            if "rate_bps" in both:
                both.setdefault("rate_in_bps", both["rate_bps"])
            so_far = by_port.get(key, PortOverride())
            if peer:
                pair = (peer, PortOverride(**both))
                by_port[key] = replace(so_far, pairs=(*so_far.pairs, pair))
            else:
                by_port[key] = replace(PortOverride(**both), pairs=so_far.pairs)
        out[host] = by_port
    return out


def carry(record: Record, host: str, changes: Mapping[Spot, LinkChange]) -> None:
    """Make runtime changes again on ``host`` (a migrated VM's, on its new host)."""
    if changes:
        _change(record, {host: changes})


def kept_changes(topology: str, new_ports: Mapping[PortKey, Any] | None) -> list[KeptChange]:
    """The runtime changes of an applied topology, and which of them a new configuration
    (``new_ports``: its ports by key, None: the same topology) replaces with its own
    values: those where it differs from the topology as applied."""
    record = records().get(topology)
    if record is None:
        return []
    from netmanager.host.runtime import ports_by_key

    applied = ports_by_key(record.hosts.values())
    out = []
    for key, (host, words) in sorted(runtime_changes(topology).items()):
        replaced: tuple[str, ...] = ()
        if new_ports is not None and key in applied:
            new = new_ports.get(key)
            replaced = (
                tuple(w for w in words if _value_of(applied[key], w) != _value_of(new, w))
                if new is not None
                else ()
            )
        out.append(KeptChange(host, key[1], key[2], words, replaced))
    return out


def reset(topology: str) -> list[KeptChange]:
    """Undo every runtime change of an applied topology: each port back to the values
    it was applied with (the hosts then forget them); what was undone."""
    record = records().get(topology)
    if record is None:
        return []
    from netmanager.host.runtime import ports_by_key, split_word

    applied = ports_by_key(record.hosts.values())
    found = kept_changes(topology, None)
    changes: dict[str, dict[Spot, LinkChange]] = {}
    for kept in found:
        key = (topology, kept.vm, kept.network)
        by_peer: dict[str, dict[str, Any]] = {}
        for word in kept.values:
            name, peer = split_word(word)
            by_peer.setdefault(peer, {})[name] = _value_of(applied[key], word)
        for peer, values in by_peer.items():
            values = {k: (v if v is not None else 0) for k, v in values.items()}
            changes.setdefault(kept.host, {})[(key, peer)] = LinkChange(**values)
    if changes:
        _change(record, changes)
    return found


def _value_of(port: Any, word: str) -> Any:
    """The topology's own value that an override's word names, at ``port`` (a pair's:
    of the port's class for the peer; None where the port has no such pair), 0 for
    none."""
    from netmanager.host.runtime import own_values, pair_class, split_word

    name, peer = split_word(word)
    if peer:
        found = pair_class(port, peer)
        if found is None:
            return None
        return own_values(found)[name] or 0
    value = own_values(port)[name]
    return value if name == "up" else (value or 0)


async def _last_error(client: Any) -> str:
    from netmanager.snmp import mib

    try:
        (value,) = await client.get((*mib.oid_of("nmTxnLastError"), 0))
        return bytes(value.asOctets()).decode("utf-8", "replace")
    except Exception:
        return ""
