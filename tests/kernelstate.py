"""Reading the kernel without netmanager: ip -j, tc -j, iptables-save, ebtables-save.

A snapshot keeps the fields that define what was built (names, MTUs, masters, addresses,
routes, qdiscs and their options, firewall rules), not counters or timestamps.  The
commands run here, or through any ``run(argv, netns)`` (e.g. inside a guest host).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from typing import Any

LINK_FIELDS = ("ifname", "mtu", "master", "address", "ifalias", "link_type")

#: runs argv (inside network namespace ``netns`` when given) and returns its stdout
Runner = Callable[[list[str], "str | None"], str]


#: how tests/kernel/test_kernel_scope.py names the links it puts in the root namespace on
#: purpose: its prefix (``nmt`` and six hex digits) and a letter
_ROOT_LINK_OF_A_TEST = re.compile(r"nmt[0-9a-f]{6}[a-z]")


def counts_in_root(ifname: str) -> bool:
    """Whether a link of the root namespace counts when a test compares the root namespace
    before and after: not one that a test running at the same time (another pytest-xdist
    worker) puts there on purpose and removes again."""
    return _ROOT_LINK_OF_A_TEST.fullmatch(ifname) is None


def _passing_tap(link: dict[str, Any]) -> bool:
    """A tap nobody marked in the root namespace: a domain's, made there by the system
    libvirt daemon while a test migrates it live, and moved out by that test at once
    (tests/hypervisor/test_libvirt_migration.py); netmanager's own links there are marked
    (their alias) or veths."""
    kind = link.get("linkinfo", {}).get("info_kind")
    return kind == "tun" and not str(link.get("ifalias", "")).startswith("nm:")


def local(argv: list[str], netns: str | None = None) -> str:
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def _json(argv: list[str], run: Runner = local) -> Any:
    return json.loads(run(argv, None) or "[]")


def _lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line and not line.startswith("#")]


def namespaces(prefix: str = "", run: Runner = local) -> list[str]:
    return sorted(
        n["name"] for n in _json(["ip", "-j", "netns", "list"], run) if n["name"].startswith(prefix)
    )


def _links(listing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    links = []
    for link in listing:
        item = {k: link.get(k) for k in LINK_FIELDS}
        item["up"] = "UP" in link.get("flags", [])
        item["kind"] = link.get("linkinfo", {}).get("info_kind")
        if item["kind"] == "vxlan":
            data = link["linkinfo"].get("info_data", {})
            item["vxlan"] = {k: data.get(k) for k in ("id", "local", "port", "learning")}
        links.append(item)
    return sorted(links, key=lambda x: str(x["ifname"]))


#: every reading of one namespace in one command, run inside it (a fixed script: a
#: guest host runs one process per namespace, not seven, each costly under TCG)
_SECTION = "@@kernelstate@@"
_READINGS = (
    "ip -j -d link show",
    "ip -j addr show",
    "ip -j route show",
    "tc -j qdisc show",
    "bridge -j fdb show",
    "iptables-save -t filter",
    "ebtables-save",
)
_SCRIPT = "set -e; " + "; ".join(f"{r}; echo {_SECTION}" for r in _READINGS)


def namespace_state(name: str, run: Runner = local) -> dict[str, Any]:
    """One namespace's state ("" is the root namespace of where ``run`` runs)."""
    out = run(["sh", "-c", _SCRIPT], name or None)
    sections = out.split(_SECTION + "\n")
    if len(sections) != len(_READINGS) + 1:
        raise RuntimeError(f"namespace {name or '(root)'}: not every reading came: {out!r}")
    listing, addr, route, qdisc, fdb, ipt, ebt = (
        json.loads(text.strip() or "[]") if i < 5 else text for i, text in enumerate(sections[:-1])
    )
    addrs = sorted(
        (a["ifname"], i["local"], i["prefixlen"])
        for a in addr
        for i in a.get("addr_info", [])
        if i.get("family") == "inet"
    )
    routes = sorted(
        (r.get("dst"), r.get("gateway"), r.get("dev"), r.get("protocol")) for r in route
    )
    qdiscs = sorted(
        (
            q.get("dev"),
            q.get("kind"),
            q.get("handle"),
            q.get("parent"),
            json.dumps(q.get("options"), sort_keys=True),
        )
        for q in qdisc
    )
    fdb_entries = sorted((f.get("ifname"), f.get("mac"), f.get("dst")) for f in fdb if f.get("dst"))
    iptables = _unloaded_if_empty(_lines(ipt))
    return {
        "links": _links(listing),
        "addresses": addrs,
        "routes": routes,
        "qdiscs": qdiscs,
        "fdb": fdb_entries,
        "iptables": [line for line in iptables if not line.startswith(":") or "[" not in line]
        + [line.split(" [")[0] for line in iptables if line.startswith(":")],
        "ebtables": _unloaded_if_empty(_lines(ebt)),
    }


def _unloaded_if_empty(lines: list[str]) -> list[str]:
    """A firewall table with nothing in it (built-in chains only, policy ACCEPT, no rule)
    filters as no table does: both read as nothing, so that a test comparing a namespace
    before and after does not see the table that the save tools load by reading it."""
    for line in lines:
        if line.startswith("*"):
            continue
        if line.startswith(":") and line.split()[1] == "ACCEPT":
            continue
        return lines
    return []


def _mounted(path: str) -> bool:
    with open("/proc/self/mountinfo", encoding="utf-8") as mounts:
        return any(line.split()[4] == path for line in mounts)


def _local_namespace_state(name: str) -> dict[str, Any]:
    """A namespace of this machine; a name whose file holds no namespace (one whose creator
    was killed or paused between creating ``/run/netns/NAME`` and mounting the namespace on
    it, as with ``ip netns add``) reads as such rather than failing."""
    if not _mounted(f"/run/netns/{name}"):
        return {"unmounted": True}
    return namespace_state(name)


def snapshot(prefix: str) -> dict[str, Any]:
    """Every namespace with ``prefix`` and the root namespace's links."""
    return {
        "namespaces": {name: _local_namespace_state(name) for name in namespaces(prefix)},
        "root_links": sorted(
            link["ifname"]
            for link in _json(["ip", "-j", "-d", "link", "show"])
            if counts_in_root(link["ifname"]) and not _passing_tap(link)
        ),
    }


def host_snapshot(run: Runner) -> dict[str, Any]:
    """A whole host seen through ``run`` (a guest host): its root namespace and every
    namespace in it."""
    return {
        "root": namespace_state("", run),
        "namespaces": {name: namespace_state(name, run) for name in namespaces("", run)},
    }
