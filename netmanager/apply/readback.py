"""Applied topologies read back: from this machine's kernel and firewall, and from the
hosts' agents.

:func:`status` is what ``netmanager status`` shows: each VM port's state from this
machine's kernel (:func:`kernel_status`) and, for topologies applied through agents, what
each host's agent serves of it (``nmLinkTable``).  :func:`machine_plan` compares the
kernel and firewall of this machine with what the applied topologies and the emulated
infrastructure need, object by object (verify's state level).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from netmanager.agentctl.client import OPER_STATUS, AgentClient, AgentError
from netmanager.agentctl.processes import AgentInfo
from netmanager.apply.prepare import Deployment, desired_state
from netmanager.apply.records import Record, owned_namespaces, problem, records
from netmanager.apply.topology import clients, running_agents
from netmanager.compile.hostconfig import HostConfig, Infrastructure
from netmanager.errors import NetmanagerError
from netmanager.gcpause import pausing
from netmanager.host.firewall import Firewall, FirewallChange, Ruleset, desired_rulesets
from netmanager.hypervisor.keeper import GuestAgent
from netmanager.kernel import Address, Engine, Link
from netmanager.kernel.plan import Plan

# -------------------------------------------------------------------------- machine state


def _other_configs(topology: str, applied: dict[str, Record]) -> list[HostConfig]:
    return [c for t, r in sorted(applied.items()) if t != topology for c in r.hosts.values()]


def _dom0s(infrastructure: Infrastructure | None) -> list[str]:
    return list(infrastructure.host_namespaces) if infrastructure else []


def _firewall_changes(
    topology: str, configs: dict[str, HostConfig], dom0s: list[str]
) -> list[FirewallChange]:
    existing = owned_namespaces()
    by_dom0 = {c.dom0: c for c in configs.values()}
    changes = []
    present = [ns for ns in dom0s if ns in existing]
    # the save tools run as processes: read every host's tables at once
    with ThreadPoolExecutor(max_workers=8) as pool:
        observations = dict(
            zip(present, pool.map(lambda ns: Firewall(ns).observe(), present), strict=True)
        )
    for namespace in dom0s:
        observed = observations.get(namespace, (Ruleset(), Ruleset()))
        ipt, ebt = desired_rulesets(observed, topology, by_dom0.get(namespace))
        changes.append(FirewallChange(namespace, "iptables", ipt, observed[0]))
        changes.append(FirewallChange(namespace, "ebtables", ebt, observed[1]))
    return changes


@dataclass
class MachinePlan:
    topology: str
    kernel: Plan
    firewall: list[FirewallChange]

    @property
    def changes(self) -> int:
        return len(self.kernel) + sum(len(f.lines()) for f in self.firewall)

    def lines(self) -> list[str]:
        return self.kernel.lines() + [line for f in self.firewall for line in f.lines()]

    def summary(self) -> str:
        firewall = sum(1 for f in self.firewall if f.changed)
        return f"{self.kernel.summary()}; {firewall} firewall table(s) to replace"

    def as_json(self) -> dict[str, Any]:
        return {
            "topology": self.topology,
            "changes": self.changes,
            "kernel": self.kernel.to_json(),
            "firewall": [line for f in self.firewall for line in f.lines()],
        }


@pausing
def machine_plan(deployment: Deployment) -> MachinePlan:
    """What the kernel and firewall of this machine lack for the topology as applied,
    object by object (verify's state level); nothing is changed.  Only the hosts whose
    dom0 is a namespace of this machine are compared: a real host's kernel (dom0 the root
    namespace, "") is another machine's, its agent's plan says what it lacks."""
    from netmanager.apply.runtime import host_overrides
    from netmanager.host.runtime import apply_overrides

    applied = records()
    record = applied.get(deployment.topology)
    # runtime changes are the topology's own values now (plan says so, not drift)
    overrides = host_overrides(record) if record is not None else {}
    configs = {
        h: apply_overrides(c, overrides[h]) if h in overrides else c
        for h, c in deployment.configs.items()
    }
    here = [
        c for c in _other_configs(deployment.topology, applied) + list(configs.values()) if c.dom0
    ]
    desired = desired_state(here, deployment.infrastructure)
    with Engine() as engine:
        kernel_plan = engine.plan(desired, namespaces=owned_namespaces())
    firewall = _firewall_changes(
        deployment.topology,
        {h: c for h, c in configs.items() if c.dom0},
        _dom0s(deployment.infrastructure),
    )
    return MachinePlan(deployment.topology, kernel_plan, firewall)


# ------------------------------------------------------------------------------- inspect


def kernel_status(topology: str | None = None) -> list[dict[str, Any]]:
    """Applied topologies as read back from this machine's kernel (one, or all)."""
    import datetime

    applied = records()
    if topology is not None and topology not in applied:
        raise problem(
            NetmanagerError,
            "E720",
            f"topology '{topology}' is not applied on this machine",
            "applied here: " + (", ".join(sorted(applied)) or "nothing"),
        )
    chosen = [applied[topology]] if topology is not None else [applied[t] for t in sorted(applied)]
    existing = owned_namespaces()
    namespaces = {
        p.vm_namespace for r in chosen for c in r.hosts.values() for p in c.ports
    } & existing
    with Engine() as engine:
        observed = engine.observe(namespaces)
    links = {(o.namespace, o.ifname): o for o in observed if isinstance(o, Link)}
    addresses = {
        (o.namespace, o.ifname, str(o.address)) for o in observed if isinstance(o, Address)
    }
    documents: list[dict[str, Any]] = []
    for record in chosen:
        vms: list[dict[str, Any]] = []
        guests = set(record.infrastructure.guest_by_name)
        for host, config in sorted(record.hosts.items()):
            ports_of: dict[str, list[Any]] = {}
            for port in config.ports:
                ports_of.setdefault(port.vm, []).append(port)
            for vm in config.vms:
                interfaces = []
                for port in ports_of.get(vm.vm, []):
                    link = links.get((port.vm_namespace, port.ifname))
                    if host in guests or vm.domain is not None:
                        # a guest's kernel, a domain's tap: its agent tells (status)
                        state = "unknown"
                    elif link is None:
                        state = "missing"
                    elif (port.vm_namespace, port.ifname, str(port.ip)) not in addresses:
                        state = "unaddressed"
                    else:
                        state = "up" if link.up else "down"
                    interfaces.append(
                        {
                            "network": port.network,
                            "ifname": port.ifname,
                            "ip": str(port.ip),
                            "mac": port.mac,
                            "state": state,
                        }
                    )
                vms.append(
                    {
                        "name": vm.vm,
                        "host": host,
                        "namespace": vm.namespace if vm.domain is None else "",
                        "domain": vm.domain.name if vm.domain is not None else None,
                        "interfaces": interfaces,
                    }
                )
        documents.append(
            {
                "topology": record.topology,
                "real": record.real,
                "virtual": record.virtual,
                "applied": datetime.datetime.fromtimestamp(record.applied_at).isoformat(
                    timespec="seconds"
                ),
                "vms": sorted(vms, key=lambda v: str(v["name"])),
            }
        )
    return documents


def vm_location(vm: str, topology: str | None = None) -> tuple[str, str | None]:
    """(namespace, guest host or None) of an applied VM: a VM on a guest host lives in a
    namespace of that guest's kernel.  Raises NetmanagerError when unknown or ambiguous."""
    found = [
        (t, (v.namespace, h if h in r.infrastructure.guest_by_name else None))
        for t, r in sorted(records().items())
        if topology is None or t == topology
        for h, c in r.hosts.items()
        for v in c.vms
        if v.vm == vm
    ]
    if not found:
        raise problem(
            NetmanagerError,
            "E721",
            f"no applied VM is called '{vm}'",
            "netmanager status lists the VMs",
        )
    if len(found) > 1:
        raise problem(
            NetmanagerError,
            "E722",
            f"VM '{vm}' is in several topologies: {', '.join(t for t, _ in found)}",
            "say which with --topology",
        )
    return found[0][1]


def _remote_agents(chosen: list[Record], hosts: list[str]) -> dict[str, AgentInfo]:
    """The agents of real libvirt hosts (not started by netmanager) among ``hosts``, where
    the topologies' real.xml says they listen."""
    from netmanager.agentctl.processes import remote_agents
    from netmanager.inputs.loader import load

    out: dict[str, AgentInfo] = {}
    for record in chosen:
        if not any(h in record.hosts for h in hosts if h not in out):
            continue
        try:
            real = load(record.real, record.virtual, base_dir=record.base_dir or None).real
        except NetmanagerError:
            continue  # real.xml gone: such a host's agent cannot be found
        out |= remote_agents(real, [h for h in hosts if h in record.hosts])
    return out


def vm_domain(vm: str, topology: str | None = None) -> tuple[str, str] | None:
    """(host, libvirt domain) of an applied VM that is a domain, None for a namespace.
    Raises NetmanagerError when unknown or ambiguous (as :func:`vm_location`)."""
    vm_location(vm, topology)
    for t, r in sorted(records().items()):
        if topology is not None and t != topology:
            continue
        for host, config in r.hosts.items():
            for v in config.vms:
                if v.vm == vm and v.domain is not None:
                    return host, v.domain.name
    return None


def domain_agent(host: str) -> GuestAgent:
    """What reaches the guest agents of a libvirt host's domains: the keeper of a host
    emulated here, else a libvirt connection of this process to the URI real.xml gives
    the host (``qemu+ssh://...``: libvirt's own authentication)."""
    from netmanager.agentctl.processes import agents_dir
    from netmanager.host.domainhost import KEEPER_DIR
    from netmanager.hypervisor.keeper import DirectClient, KeeperClient, running_keeper
    from netmanager.inputs.loader import load

    directory = agents_dir() / host / KEEPER_DIR
    if running_keeper(directory) is not None:
        return KeeperClient(directory)
    for record in records().values():
        if host not in record.hosts:
            continue
        try:
            real = load(record.real, record.virtual, base_dir=record.base_dir or None).real
        except NetmanagerError:
            continue
        uri = real.host_by_name[host].uri if host in real.host_by_name else None
        if uri and not real.host_by_name[host].embedded_libvirt:
            try:
                return DirectClient(uri)
            except Exception as exc:
                raise problem(
                    NetmanagerError,
                    "E747",
                    f"cannot open libvirt host '{host}' at {uri}: {exc}",
                    "the manager reaches libvirt hosts with libvirt's own authentication "
                    f"(virsh -c {uri} list must work here)",
                ) from exc
    raise problem(
        NetmanagerError,
        "E747",
        f"libvirt host '{host}' cannot be reached: its keeper does not run here and "
        "real.xml gives no URI this machine can open",
        "netmanager apply starts an emulated host's agent and keeper again",
    )


# ------------------------------------------------------------------------------- status

#: nmLinkEntry columns read for status: vm, network, rate, delay, operStatus, in/out
#: octets, whether the guest carries its address, which values are runtime overrides
_LINK_COLUMNS = {
    1: "vm",
    2: "network",
    4: "rate_kbps",
    5: "delay_us",
    8: "oper",
    9: "in_octets",
    10: "out_octets",
    16: "guest_address",
    17: "overrides",
}
#: nmPairEntry columns read for status: the pair's values in force, which are overrides
_PAIR_COLUMNS = {2: "rate_kbps", 3: "delay_us", 4: "jitter_us", 5: "loss_ppm", 6: "overrides"}
#: nmLinkGuestAddress
GUEST_ADDRESS = {1: "unknown", 2: "configured", 3: "answering", 4: "silent"}


async def _links_of(client: AgentClient) -> dict[tuple[str, str], dict[str, Any]]:
    """The agent's link table, by (qualified VM, qualified network)."""
    from netmanager.snmp import mib

    entry = mib.oid_of("nmLinkEntry")
    rows: dict[int, dict[str, Any]] = {}
    async with client:
        for column, name in _LINK_COLUMNS.items():
            for oid, value in await client.walk((*entry, column)):
                cell: Any
                if name in ("vm", "network"):
                    cell = bytes(value.asOctets()).decode("utf-8", "replace")
                elif name == "overrides":
                    cell = bytes(value.asOctets()).decode("utf-8", "replace").split()
                elif name == "oper":
                    cell = OPER_STATUS.get(int(value), str(int(value)))
                elif name == "guest_address":
                    cell = GUEST_ADDRESS.get(int(value), str(int(value)))
                else:
                    cell = int(value)
                rows.setdefault(oid[-1], {})[name] = cell
        # the <link> pairs at each port (nmPairTable: ifIndex, then the peer's name)
        pair_entry = mib.oid_of("nmPairEntry")
        pairs: dict[tuple[int, str], dict[str, Any]] = {}
        for column, name in _PAIR_COLUMNS.items():
            prefix = (*pair_entry, column)
            for oid, value in await client.walk(prefix):
                suffix = oid[len(prefix) :]
                peer = bytes(suffix[2:]).decode("utf-8", "replace")
                pair = pairs.setdefault((suffix[0], peer), {"peer": peer})
                if name == "overrides":
                    pair[name] = bytes(value.asOctets()).decode("utf-8", "replace").split()
                else:
                    pair[name] = int(value)
    for (port, peer), pair in sorted(pairs.items()):
        row = rows.setdefault(port, {})
        row.setdefault("pairs", []).append(pair)
        row["overrides"] = [
            *row.get("overrides", []),
            *(f"{w}~{peer}" for w in pair.get("overrides", ())),
        ]
    return {
        (row.get("vm", ""), row.get("network", "")): {
            k: v for k, v in row.items() if k not in ("vm", "network")
        }
        for row in rows.values()
        if row.get("vm")
    }


async def _links_of_all(
    chosen: dict[str, AgentClient],
) -> tuple[dict[str, dict[tuple[str, str], dict[str, Any]]], dict[str, BaseException]]:
    """Every agent's link table at once; (tables, failures) by host."""
    hosts = sorted(chosen)
    found = await asyncio.gather(*(_links_of(chosen[h]) for h in hosts), return_exceptions=True)
    tables: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    failed: dict[str, BaseException] = {}
    for host, result in zip(hosts, found, strict=True):
        if isinstance(result, AgentError | OSError | asyncio.TimeoutError):
            failed[host] = result
        elif isinstance(result, BaseException):
            raise result
        else:
            tables[host] = result
    return tables, failed


def status(topology: str | None = None) -> list[dict[str, Any]]:
    """:func:`kernel_status`, and for topologies applied through agents what
    each host's agent reports of every VM port (its link table: operational state,
    configured rate and delay, octet counters) and where the agent listens."""
    documents = kernel_status(topology)
    applied = records()
    through = [d for d in documents if applied[d["topology"]].transport == "agents"]
    if not through:
        return documents
    hosts = sorted({vm["host"] for d in through for vm in d["vms"]})
    infos = {h: a for h, a in running_agents().items() if h in hosts}
    infos |= _remote_agents([applied[d["topology"]] for d in through], hosts)
    chosen = clients(None, infos, "status")  # E741 where the credentials are refused
    links, failed = asyncio.run(_links_of_all(chosen))
    for document in through:
        name = document["topology"]
        guests = set(applied[name].infrastructure.guest_by_name)
        document["agents"] = {
            h: (f"{infos[h].address}:{infos[h].port}" if h in links else None)
            for h in sorted({vm["host"] for vm in document["vms"]})
        }
        for vm in document["vms"]:
            table = links.get(vm["host"])
            for interface in vm["interfaces"]:
                key = (f"{name}/{vm['name']}", f"{name}/{interface['network']}")
                # None: the agent did not answer; {}: it has no such link (yet)
                interface["link"] = table.get(key, {}) if table is not None else None
                if vm["host"] in guests or vm.get("domain"):
                    # a guest's kernel, a domain's tap: what its agent reads there
                    found = interface["link"]
                    interface["state"] = (
                        "unreachable" if found is None else str(found.get("oper", "missing"))
                    )
        if failed:
            document["agent_errors"] = {h: str(e) for h, e in sorted(failed.items())}
    return documents


@dataclass(frozen=True)
class GuestDuty:
    """What the guest of a domain VM netmanager cannot configure (no qemu-guest-agent)
    must carry by itself, and whether its host found it doing so: each NIC's address
    (CIDR), its MAC when virtual.xml gives one (else "": the domain's NIC in that place)
    and the host's ARP check (``answering``, ``silent``, ``unknown``); the VM's routes
    (destination, next hop)."""

    vm: str
    host: str
    domain: str
    nics: tuple[tuple[str, str, str], ...]
    routes: tuple[tuple[str, str], ...]

    @property
    def carried(self) -> bool:
        return all(state == "answering" for _, _, state in self.nics)

    def as_json(self) -> dict[str, Any]:
        return {
            "vm": self.vm,
            "host": self.host,
            "domain": self.domain,
            "carried": self.carried,
            "nics": [{"address": a, "mac": m or None, "arp": s} for a, m, s in self.nics],
            "routes": [{"to": t, "via": v} for t, v in self.routes],
        }

    def text(self) -> str:
        checks = {
            "answering": "it answers ARP for it",
            "silent": "it does NOT answer ARP for it",
        }
        nics = "; ".join(
            f"{address} on {f'its NIC {mac}' if mac else f'its NIC #{n}'} "
            f"({checks.get(state, 'not checked yet')})"
            for n, (address, mac, state) in enumerate(self.nics, 1)
        )
        routes = "".join(f"; route {to} via {via}" for to, via in self.routes)
        return (
            f"VM '{self.vm}' is domain '{self.domain}' on host '{self.host}' without "
            f"qemu-guest-agent: its guest must carry {nics}{routes}"
        )


def guest_duties(deployment: Deployment) -> list[GuestDuty]:
    """The domain VMs of an applied topology whose guests netmanager cannot configure,
    as their hosts' agents report them (their link tables' nmLinkGuestAddress)."""
    virtual = deployment.model.virtual
    if not any(vm.domain is not None for c in deployment.configs.values() for vm in c.vms):
        return []
    documents = status(deployment.topology)
    out = []
    for vm in documents[0]["vms"] if documents else ():
        if not vm.get("domain"):
            continue
        declared = virtual.vm_by_name[vm["name"]]
        nics = []
        for i in vm["interfaces"]:
            given = declared.interface_in(i["network"])
            state = str((i.get("link") or {}).get("guest_address", "unknown"))
            nics.append((i["ip"], (given.mac or "") if given else "", state))
        if not any(state in ("answering", "silent") for _, _, state in nics):
            continue  # configured through its guest agent (or its host did not say)
        routes = tuple((str(r.to), str(r.via)) for r in declared.routes)
        out.append(GuestDuty(vm["name"], vm["host"], vm["domain"], tuple(nics), routes))
    return out
