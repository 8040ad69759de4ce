"""Reading the kernel without netmanager: ip -j, tc -j, iptables-save, ebtables-save.

A snapshot keeps the fields that define what was built (names, MTUs, masters, addresses,
routes, qdiscs and their options, firewall rules), not counters or timestamps.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

LINK_FIELDS = ("ifname", "mtu", "master", "address", "ifalias", "link_type")


def _json(argv: list[str]) -> Any:
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return json.loads(out or "[]")


def _text(argv: list[str]) -> list[str]:
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line and not line.startswith("#")]


def namespaces(prefix: str = "") -> list[str]:
    return sorted(
        n["name"] for n in _json(["ip", "-j", "netns", "list"]) if n["name"].startswith(prefix)
    )


def _links(ns: list[str]) -> list[dict[str, Any]]:
    links = []
    for link in _json(["ip", *ns, "-j", "-d", "link", "show"]):
        item = {k: link.get(k) for k in LINK_FIELDS}
        item["up"] = "UP" in link.get("flags", [])
        item["kind"] = link.get("linkinfo", {}).get("info_kind")
        if item["kind"] == "vxlan":
            data = link["linkinfo"].get("info_data", {})
            item["vxlan"] = {k: data.get(k) for k in ("id", "local", "port", "learning")}
        links.append(item)
    return sorted(links, key=lambda x: str(x["ifname"]))


def namespace_state(name: str) -> dict[str, Any]:
    ns = ["-n", name]
    addrs = sorted(
        (a["ifname"], i["local"], i["prefixlen"])
        for a in _json(["ip", *ns, "-j", "addr", "show"])
        for i in a.get("addr_info", [])
        if i.get("family") == "inet"
    )
    routes = sorted(
        (r.get("dst"), r.get("gateway"), r.get("dev"), r.get("protocol"))
        for r in _json(["ip", *ns, "-j", "route", "show"])
    )
    qdiscs = sorted(
        (
            q.get("dev"),
            q.get("kind"),
            q.get("handle"),
            q.get("parent"),
            json.dumps(q.get("options"), sort_keys=True),
        )
        for q in _json(["tc", *ns, "-j", "qdisc", "show"])
    )
    fdb = sorted(
        (f.get("ifname"), f.get("mac"), f.get("dst"))
        for f in _json(["bridge", *ns, "-j", "fdb", "show"])
        if f.get("dst")
    )
    iptables = _text(["ip", "netns", "exec", name, "iptables-save", "-t", "filter"])
    ebtables = _text(["ip", "netns", "exec", name, "ebtables-save"])
    return {
        "links": _links(ns),
        "addresses": addrs,
        "routes": routes,
        "qdiscs": qdiscs,
        "fdb": fdb,
        "iptables": [line for line in iptables if not line.startswith(":") or "[" not in line]
        + [line.split(" [")[0] for line in iptables if line.startswith(":")],
        "ebtables": ebtables,
    }


def snapshot(prefix: str) -> dict[str, Any]:
    """Every namespace with ``prefix`` and the root namespace's links."""
    return {
        "namespaces": {name: namespace_state(name) for name in namespaces(prefix)},
        "root_links": sorted(link["ifname"] for link in _json(["ip", "-j", "link", "show"])),
    }
