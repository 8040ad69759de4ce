"""``netmanager set``: change running links at once, in place, without planning the
topology (the hosts keep each change as an override of it: :mod:`netmanager.host.runtime`).

A target is a network (every VM port in it), a VM's interface (``VM:NETWORK``) or a
VM with a single interface.  The ports are found in the applied record; each host gets
one request with all of its ports' changes: through its agent (one GET of
``nmLinkNameIfIndex`` for the ports' rows, one SET of their ``nmLinkRate``,
``nmLinkDelay``, ``nmLinkJitter``, ``nmLinkLoss`` and ``ifAdminStatus``), or for a
topology applied with ``--local`` through this process's backend of the host.  The hosts
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
from dataclasses import dataclass, field
from typing import Any

from netmanager.apply.records import Record, records
from netmanager.errors import ExitCode, Loc, NetmanagerError, single
from netmanager.host.rows import PortKey
from netmanager.host.runtime import FIELD_OF_WORD, PortOverride


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
    """What a runtime change sets (None: unchanged): rate in bit/s (0: no limit), NetEm
    delay and jitter in µs, loss in ppm (0: none), the port up or down."""

    rate_bps: int | None = None
    delay_us: int | None = None
    jitter_us: int | None = None
    loss_ppm: int | None = None
    up: bool | None = None

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
        }


@dataclass(frozen=True)
class SetOutcome:
    topology: str
    target: str
    change: LinkChange
    #: (host, VM, network) of every port changed
    ports: tuple[tuple[str, str, str], ...]
    seconds: float
    transport: str
    timings: Mapping[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "topology": self.topology,
            "target": self.target,
            "change": self.change.as_json(),
            "ports": [{"host": h, "vm": v, "network": n} for h, v, n in self.ports],
            "seconds": round(self.seconds, 4),
            "transport": self.transport,
        }


def resolve(record: Record, target: str) -> dict[str, list[PortKey]]:
    """The ports of ``target`` in an applied topology, by host; E770 when it names
    nothing there."""
    topology = record.topology
    by_host: dict[str, list[PortKey]] = {}
    networks = sorted({p.network for c in record.hosts.values() for p in c.ports})
    vms = sorted({p.vm for c in record.hosts.values() for p in c.ports})

    def pick(want: Any) -> None:
        for host, config in sorted(record.hosts.items()):
            for port in config.ports:
                if want(port):
                    by_host.setdefault(host, []).append((topology, port.vm, port.network))

    if "~" in target:
        raise _problem(
            "E771",
            f"target '{target}': a <link> pair's own shaping cannot be changed at run time yet",
            "change each VM's interface (VM:NETWORK) or the network instead",
        )
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
            theirs = sorted(p[2] for ports in by_host.values() for p in ports)
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
    record = records().get(topology)
    if record is None:
        raise _problem(
            "E730",
            f"topology '{topology}' is not applied on this machine",
            "netmanager apply builds it",
        )
    ports = resolve(record, target)
    _refuse_missing_netem(record, ports, change)
    _change(record, {h: {key: change for key in keys} for h, keys in ports.items()})
    return SetOutcome(
        topology,
        target,
        change,
        tuple((h, vm, net) for h, keys in sorted(ports.items()) for _, vm, net in keys),
        time.perf_counter() - start,
        record.transport,
    )


def _refuse_missing_netem(
    record: Record, ports: Mapping[str, list[PortKey]], change: LinkChange
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


def _change(record: Record, changes: Mapping[str, Mapping[PortKey, LinkChange]]) -> None:
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
        rate_in_bps=change.rate_bps,
        delay_us=change.delay_us,
        jitter_us=change.jitter_us,
        loss_ppm=change.loss_ppm,
        up=change.up,
    )


def _in_process(record: Record, changes: Mapping[str, Mapping[PortKey, LinkChange]]) -> None:
    """A topology applied with --local: this process's backend of each host."""
    from netmanager.apply.local import LocalTransport

    for host, ports in sorted(changes.items()):
        transport = LocalTransport.kernel(host, record.hosts[host].dom0)
        try:
            asyncio.run(transport.runtime({key: _override(c) for key, c in ports.items()}))
        except Exception as exc:
            raise _problem(
                "E772",
                f"host '{host}' refused the change: {exc}",
                "nothing changed there",
                SetFailed,
            ) from exc
        finally:
            transport.close()


async def _through_agents(
    record: Record, changes: Mapping[str, Mapping[PortKey, LinkChange]]
) -> None:
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


async def _on_host(client: Any, host: str, changes: Mapping[PortKey, LinkChange]) -> None:
    from pysnmp.proto import rfc1902

    from netmanager.agentctl.client import AgentError
    from netmanager.snmp import mib

    name = mib.oid_of("nmLinkNameEntry")
    link = mib.oid_of("nmLinkEntry")
    admin = (1, 3, 6, 1, 2, 1, 2, 2, 1, 7)
    keys = sorted(changes)
    # the session keeps the client open from one change to the next
    try:
        found = await client.get(
            *(
                (*name, 3, *mib.string_index(f"{t}/{vm}"), *mib.string_index(f"{t}/{net}"))
                for t, vm, net in keys
            )
        )
        varbinds = []
        for key, value in zip(keys, found, strict=True):
            try:
                index = int(value)
            except (TypeError, ValueError):
                raise _problem(
                    "E772",
                    f"host '{host}' serves no port of VM '{key[1]}' in network '{key[2]}' (yet)",
                    "netmanager status shows what the host's agent reports",
                    SetFailed,
                ) from None
            change = changes[key]
            u = rfc1902.Unsigned32
            if change.rate_bps is not None:
                varbinds.append(((*link, 4, index), u(change.rate_bps // 1000)))
            if change.delay_us is not None:
                varbinds.append(((*link, 5, index), u(change.delay_us)))
            if change.jitter_us is not None:
                varbinds.append(((*link, 6, index), u(change.jitter_us)))
            if change.loss_ppm is not None:
                varbinds.append(((*link, 7, index), u(change.loss_ppm)))
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
                out[key] = (host, override.words())
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
    for row in rows.values():
        vm, network, words = row.get(1, ""), row.get(2, ""), row.get(17, "")
        if not words or not vm.startswith(f"{topology}/"):
            continue
        out[(topology, vm.split("/", 1)[1], network.split("/", 1)[-1])] = tuple(words.split())
    return out


def kept_changes(topology: str, new_ports: Mapping[PortKey, Any] | None) -> list[KeptChange]:
    """The runtime changes of an applied topology, and which of them a new configuration
    (``new_ports``: its ports by key, None: the same topology) replaces with its own
    values: those where it differs from the topology as applied."""
    record = records().get(topology)
    if record is None:
        return []
    from netmanager.host.runtime import own_values, ports_by_key

    applied = ports_by_key(record.hosts.values())
    out = []
    for key, (host, words) in sorted(runtime_changes(topology).items()):
        replaced: tuple[str, ...] = ()
        if new_ports is not None and key in applied:
            new = new_ports.get(key)
            before = own_values(applied[key])
            after = own_values(new) if new is not None else before
            replaced = tuple(
                w
                for w in words
                if (before[FIELD_OF_WORD[w]] or 0) != (after[FIELD_OF_WORD[w]] or 0)
            )
        out.append(KeptChange(host, key[1], key[2], words, replaced))
    return out


def reset(topology: str) -> list[KeptChange]:
    """Undo every runtime change of an applied topology: each port back to the values
    it was applied with (the hosts then forget them); what was undone."""
    record = records().get(topology)
    if record is None:
        return []
    from netmanager.host.runtime import own_values, ports_by_key

    applied = ports_by_key(record.hosts.values())
    found = kept_changes(topology, None)
    changes: dict[str, dict[PortKey, LinkChange]] = {}
    for kept in found:
        key = (topology, kept.vm, kept.network)
        own = own_values(applied[key])
        values = {FIELD_OF_WORD[w]: own[FIELD_OF_WORD[w]] for w in kept.values}
        values = {k: (v if v is not None else 0) for k, v in values.items()}
        changes.setdefault(kept.host, {})[key] = LinkChange(**values)
    if changes:
        _change(record, changes)
    return found


async def _last_error(client: Any) -> str:
    from netmanager.snmp import mib

    try:
        (value,) = await client.get((*mib.oid_of("nmTxnLastError"), 0))
        return bytes(value.asOctets()).decode("utf-8", "replace")
    except Exception:
        return ""
