"""What the hosts' agents report of applied topologies: each VM port's link as its
host's agent serves it (``nmLinkTable``), beside what :func:`netmanager.deploy.status`
reads from this machine's kernel.
"""

from __future__ import annotations

import asyncio
from typing import Any

from netmanager.agentclient import OPER_STATUS, AgentClient, AgentError
from netmanager.apply.topology import clients, running_agents
from netmanager.deploy import records

# ------------------------------------------------------------------------------- status

#: nmLinkEntry columns read for status: vm, network, rate, delay, operStatus, in/out octets
_LINK_COLUMNS = {
    1: "vm",
    2: "network",
    4: "rate_kbps",
    5: "delay_us",
    8: "oper",
    9: "in_octets",
    10: "out_octets",
}


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
                elif name == "oper":
                    cell = OPER_STATUS.get(int(value), str(int(value)))
                else:
                    cell = int(value)
                rows.setdefault(oid[-1], {})[name] = cell
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
    """:func:`netmanager.deploy.status`, and for topologies applied through agents what
    each host's agent reports of every VM port (its link table: operational state,
    configured rate and delay, octet counters) and where the agent listens."""
    from netmanager import deploy

    documents = deploy.status(topology)
    applied = records()
    through = [d for d in documents if applied[d["topology"]].transport == "agents"]
    if not through:
        return documents
    hosts = sorted({vm["host"] for d in through for vm in d["vms"]})
    infos = {h: a for h, a in running_agents().items() if h in hosts}
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
                if vm["host"] in guests:  # a guest's kernel: what its agent reads there
                    found = interface["link"]
                    interface["state"] = (
                        "unreachable" if found is None else str(found.get("oper", "missing"))
                    )
        if failed:
            document["agent_errors"] = {h: str(e) for h, e in sorted(failed.items())}
    return documents
