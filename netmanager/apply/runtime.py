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
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netmanager.apply.records import Record, records
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
    override = PortOverride(
        rate_bps=change.rate_bps,
        delay_us=change.delay_us,
        jitter_us=change.jitter_us,
        loss_ppm=change.loss_ppm,
        up=change.up,
    )
    if record.transport == "agents":
        asyncio.run(_through_agents(record, ports, change))
    else:
        _in_process(record, ports, override)
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


def _in_process(record: Record, ports: Mapping[str, list[PortKey]], override: PortOverride) -> None:
    """A topology applied with --local: this process's backend of each host."""
    from netmanager.apply.local import LocalTransport

    for host, keys in sorted(ports.items()):
        transport = LocalTransport.kernel(host, record.hosts[host].dom0)
        try:
            asyncio.run(transport.runtime({key: override for key in keys}))
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
    record: Record, ports: Mapping[str, list[PortKey]], change: LinkChange
) -> None:
    from netmanager.apply.readback import _remote_agents
    from netmanager.apply.topology import clients, running_agents

    hosts = sorted(ports)
    infos = {h: a for h, a in running_agents().items() if h in hosts}
    infos |= _remote_agents([record], hosts)
    missing = [h for h in hosts if h not in infos]
    if missing:
        raise _problem(
            "E772",
            f"host '{missing[0]}': its agent is not running",
            "netmanager apply starts it again",
            SetFailed,
        )
    chosen = clients(None, infos, "set")
    results = await asyncio.gather(
        *(_on_host(chosen[h], h, ports[h], change) for h in hosts), return_exceptions=True
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        # each host answered for itself: those not named here carry the change
        raise failed[0]


async def _on_host(client: Any, host: str, keys: list[PortKey], change: LinkChange) -> None:
    from pysnmp.proto import rfc1902

    from netmanager.agentctl.client import AgentError
    from netmanager.snmp import mib

    name = mib.oid_of("nmLinkNameEntry")
    link = mib.oid_of("nmLinkEntry")
    admin = (1, 3, 6, 1, 2, 1, 2, 2, 1, 7)
    async with client:
        try:
            found = await client.get(
                *((*name, 3, *_index(f"{t}/{vm}"), *_index(f"{t}/{net}")) for t, vm, net in keys)
            )
            varbinds = []
            for key, value in zip(keys, found, strict=True):
                try:
                    index = int(value)
                except (TypeError, ValueError):
                    raise _problem(
                        "E772",
                        f"host '{host}' serves no port of VM '{key[1]}' in network "
                        f"'{key[2]}' (yet)",
                        "netmanager status shows what the host's agent reports",
                        SetFailed,
                    ) from None
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
            raise _problem(
                "E772",
                f"host '{host}' refused the change: {why or exc}",
                "nothing changed there",
                SetFailed,
            ) from exc


async def _last_error(client: Any) -> str:
    from netmanager.snmp import mib

    try:
        (value,) = await client.get((*mib.oid_of("nmTxnLastError"), 0))
        return bytes(value.asOctets()).decode("utf-8", "replace")
    except Exception:
        return ""


def _index(text: str) -> tuple[int, ...]:
    octets = text.encode("utf-8")[:32]
    return (len(octets), *octets)
