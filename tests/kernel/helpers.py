"""Test helpers: host states to apply, and the kernel read back through iproute2's JSON.

The kernel is checked with ``ip -j``, ``tc -j`` and ``bridge -j``, never through the engine
under test.  :func:`snapshot` gives a normalized picture of some namespaces and of the
root namespace's links, fit for comparing "before" with "after".
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from collections.abc import Iterable
from typing import Any

from netmanager.kernel import (
    Address,
    FdbEntry,
    HostState,
    KernelObject,
    Link,
    LinkKind,
    Namespace,
    Netem,
    Qdisc,
    Route,
    Scope,
    Sysctl,
    VethPeer,
    Vxlan,
    ifb_ingress,
    tbf_for_rate,
    tbf_with_netem,
)
from tests.kernelstate import counts_in_root

ip_if = ipaddress.ip_interface
ip_net = ipaddress.ip_network
ip_addr = ipaddress.ip_address


def vm(
    dom0: str,
    name: str,
    port: str,
    address: str,
    *,
    bridge: str = "br0",
    gateway: str | None = None,
    rate_bps: int | None = None,
    mtu: int = 1500,
    topology: str = "t",
) -> list[KernelObject]:
    """A VM namespace with eth0, its port ``port`` in ``bridge`` of ``dom0``, an address,
    a default route if ``gateway``, and a TBF on the port if ``rate_bps``."""
    objects: list[KernelObject] = [
        Namespace(name),
        Link(
            dom0,
            port,
            LinkKind.VETH,
            alias=f"nm:{topology}:{name}/eth0",
            master=bridge,
            mtu=mtu,
            peer=VethPeer(name, "eth0"),
        ),
        Link(
            name,
            "eth0",
            LinkKind.VETH,
            alias=f"nm:{topology}:{name}/eth0",
            mtu=mtu,
            peer=VethPeer(dom0, port),
        ),
        Address(name, "eth0", ip_if(address)),
    ]
    if gateway:
        objects.append(Route(name, ip_net("0.0.0.0/0"), "eth0", ip_addr(gateway)))
    if rate_bps:
        objects.append(Qdisc(dom0, port, tbf_for_rate(rate_bps, mtu=mtu)))
    return objects


def small_host(prefix: str, *, rate_bps: int = 10_000_000, vni: int = 100) -> HostState:
    """dom0 with a bridge and an unplugged VXLAN, two VMs on the bridge, one shaped."""
    dom0 = f"{prefix}-d"
    return HostState.checked(
        [
            Namespace(dom0),
            Link(dom0, "br0", LinkKind.BRIDGE, alias="nm:t:net1", mtu=1450),
            Link(
                dom0,
                "vx0",
                LinkKind.VXLAN,
                alias="nm:t:net1/vx",
                master="br0",
                mtu=1450,
                vxlan=Vxlan(vni=vni, local=ipaddress.IPv4Address("192.0.2.1")),
            ),
            FdbEntry(dom0, "vx0", ipaddress.IPv4Address("192.0.2.2")),
            *vm(
                dom0,
                f"{prefix}-v1",
                "p1",
                "10.77.0.1/24",
                gateway="10.77.0.2",
                rate_bps=rate_bps,
                mtu=1450,
            ),
            *vm(dom0, f"{prefix}-v2", "p2", "10.77.0.2/24", mtu=1450),
        ]
    )


def shaped_host(
    prefix: str,
    *,
    egress_bps: int = 20_000_000,
    ingress_bps: int | None = 10_000_000,
    netem: Netem | None = None,
    ifb: str = "ib1",
) -> HostState:
    """dom0 with a bridge and two VMs; v1's port p1 shaped both ways as the design says:
    a TBF towards the VM (NetEm as its child if ``netem``) and, if ``ingress_bps``, what
    the VM sends redirected to the IFB ``ifb`` whose TBF shapes it."""
    dom0 = f"{prefix}-d"
    objects: list[KernelObject] = [
        Namespace(dom0),
        Link(dom0, "br0", LinkKind.BRIDGE, alias="nm:t:net1"),
        *vm(dom0, f"{prefix}-v1", "p1", "10.78.0.1/24"),
        *vm(dom0, f"{prefix}-v2", "p2", "10.78.0.2/24"),
        *tbf_with_netem(dom0, "p1", tbf_for_rate(egress_bps), netem),
    ]
    if ingress_bps:
        objects += ifb_ingress(dom0, "p1", ifb, f"nm:t:{prefix}-v1/ifb", tbf_for_rate(ingress_bps))
    return HostState.checked(objects)


# ------------------------------------------------------------------- owners sharing a dom0


def infra_state(dom0: str) -> HostState:
    """A host's own namespace, owned by '-': an underlay link with an address and a route,
    forwarding on."""
    return HostState.checked(
        [
            Namespace(dom0),
            Link(dom0, "ul0", LinkKind.BRIDGE, alias="nm:-:underlay"),
            Address(dom0, "ul0", ip_if("192.0.2.1/24")),
            Route(dom0, ip_net("198.51.100.0/24"), "ul0", ip_addr("192.0.2.254")),
            Sysctl(dom0, "net.ipv4.ip_forward", "1"),
        ],
        Scope.of("-", [dom0]),
    )


def owner_scope(prefix: str, owner: str, vms: list[str], dom0: str) -> Scope:
    """The scope of ``owner``: its VM namespaces, and ``dom0`` shared."""
    return Scope.of(owner, [f"{prefix}-{owner.lower()}{v}" for v in vms], shared=[dom0])


def owner_state(
    prefix: str,
    owner: str,
    net: int,
    vms: list[str],
    dom0: str,
    *,
    rate_bps: int = 10_000_000,
    vni: int = 100,
) -> HostState:
    """One owner's network in ``dom0``: a bridge with an address and a route through it, a
    VXLAN on the infrastructure's underlay ``ul0`` (not the owner's), and VMs whose ports
    are shaped both ways (TBF, and an IFB for what the VM sends)."""
    tag = owner.lower()
    bridge = f"br{tag}"
    objects: list[KernelObject] = [
        Link(dom0, bridge, LinkKind.BRIDGE, alias=f"nm:{owner}:net", mtu=1450),
        Address(dom0, bridge, ip_if(f"10.{net}.0.254/24")),
        Route(dom0, ip_net(f"10.{net}.100.0/24"), bridge, ip_addr(f"10.{net}.0.1")),
        Link(
            dom0,
            f"vx{tag}",
            LinkKind.VXLAN,
            alias=f"nm:{owner}:net/vx",
            master=bridge,
            mtu=1450,
            vxlan=Vxlan(vni, underlay="ul0"),
        ),
        FdbEntry(dom0, f"vx{tag}", ipaddress.IPv4Address("192.0.2.2")),
    ]
    for v in vms:
        name = f"{prefix}-{tag}{v}"
        port = f"{tag}{v}p"
        objects += vm(
            dom0,
            name,
            port,
            f"10.{net}.0.{v}/24",
            bridge=bridge,
            gateway=f"10.{net}.0.254",
            rate_bps=rate_bps,
            mtu=1450,
            topology=owner,
        )
        objects += ifb_ingress(
            dom0, port, f"{tag}{v}i", f"nm:{owner}:{name}/ifb", tbf_for_rate(rate_bps // 2)
        )
    return HostState.checked(objects, owner_scope(prefix, owner, vms, dom0))


# ------------------------------------------------------------------------ reading the kernel


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def jrun(*argv: str) -> Any:
    out = run(*argv)
    return json.loads(out) if out.strip() else []


def netns_names(prefix: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir("/run/netns") if n.startswith(prefix))
    except FileNotFoundError:
        return []


def root_links() -> list[tuple[str, int]]:
    """The root namespace's links (those other tests running at the same time put there
    and remove again left out: :func:`tests.kernelstate.counts_in_root`)."""
    return sorted(
        (link["ifname"], link["ifindex"])
        for link in jrun("ip", "-j", "link")
        if counts_in_root(link["ifname"])
    )


def _link(link: dict[str, Any], nsids: dict[int, str]) -> dict[str, Any]:
    info = link.get("linkinfo", {})
    data = info.get("info_data", {})
    out = {
        "ifindex": link["ifindex"],
        "ifname": link["ifname"],
        "flags": sorted(link["flags"]),
        "mtu": link["mtu"],
        "master": link.get("master"),
        "address": link.get("address"),
        "ifalias": link.get("ifalias"),
        "kind": info.get("info_kind"),
        "peer": (
            nsids.get(link["link_netnsid"], "?") if "link_netnsid" in link else None,
            link.get("link_index", link.get("link")),
        ),
    }
    if info.get("info_kind") == "vxlan":
        out["vxlan"] = {k: data.get(k) for k in ("id", "local", "port", "learning", "link")}
    if info.get("info_kind") == "vlan":
        out["vlan"] = data.get("id")
    if info.get("info_kind") == "bridge":
        out["mcast_snooping"] = data.get("mcast_snooping")
    return out


def _filter(entry: dict[str, Any]) -> str:
    """A filter as tc -j shows it, without the action's kernel-chosen index and counts
    (a filter created again by a rollback gets a new action instance)."""
    options = dict(entry.get("options", {}))
    options["actions"] = [
        {k: v for k, v in action.items() if k not in ("index", "ref", "bind")}
        for action in options.get("actions", [])
    ]
    return json.dumps({**entry, "options": options}, sort_keys=True)


def filters(namespace: str) -> list[str]:
    """Every filter below an ingress or HTB qdisc of ``namespace``, normalized."""
    out: list[str] = []
    for q in jrun("tc", "-n", namespace, "-j", "qdisc", "show"):
        if q.get("kind") in ("ingress", "htb"):
            parent = "ffff:" if q["kind"] == "ingress" else q["handle"]
            shown = jrun(
                "tc", "-n", namespace, "-j", "filter", "show", "dev", q["dev"], "parent", parent
            )
            out += [f"{q['dev']} {_filter(f)}" for f in shown]
    return sorted(out)


def _autoconf(address: str) -> bool:
    """IPv6 link-local addresses and routes: made by the kernel from the MAC address (which
    is compared) once duplicate address detection ends, so they appear with a delay."""
    return address.startswith("fe80:")


def _multicast(mac: str) -> bool:
    return mac.startswith(("33:33:", "01:00:5e:"))


def snapshot(namespaces: Iterable[str]) -> dict[str, Any]:
    """A normalized picture of ``namespaces`` and of the root namespace's links."""
    out: dict[str, Any] = {"root": root_links(), "netns": {}}
    for ns in sorted(namespaces):
        nsids = {
            e["nsid"]: e.get("name", "?") for e in jrun("ip", "-n", ns, "-j", "netns", "list-id")
        }
        links = [_link(link, nsids) for link in jrun("ip", "-n", ns, "-j", "-d", "link")]
        addrs = sorted(
            (a["ifname"], i["local"], i["prefixlen"])
            for a in jrun("ip", "-n", ns, "-j", "addr")
            for i in a.get("addr_info", [])
            if not _autoconf(i["local"])
        )
        routes = sorted(
            json.dumps(
                {
                    k: r.get(k)
                    for k in (
                        "dst",
                        "gateway",
                        "dev",
                        "protocol",
                        "table",
                        "metric",
                        "scope",
                        "type",
                    )
                },
                sort_keys=True,
            )
            for r in jrun("ip", "-n", ns, "-j", "route", "show", "table", "all")
            if not _autoconf(r.get("dst", ""))
        )
        qdiscs = sorted(
            json.dumps(
                {k: q.get(k) for k in ("dev", "kind", "handle", "parent", "root", "options")},
                sort_keys=True,
            )
            for q in jrun("tc", "-n", ns, "-j", "qdisc", "show")
        )
        fdb = sorted(
            json.dumps(
                {k: e.get(k) for k in ("mac", "ifname", "dst", "state", "flags")}, sort_keys=True
            )
            for e in jrun("bridge", "-n", ns, "-j", "fdb", "show")
            if e.get("dst") or (e.get("state") == "permanent" and not _multicast(e["mac"]))
        )
        sysctl = run(
            "nsenter", f"--net=/run/netns/{ns}", "cat", "/proc/sys/net/ipv4/ip_forward"
        ).strip()
        out["netns"][ns] = {
            "links": sorted(links, key=lambda link: link["ifname"]),
            "addrs": addrs,
            "routes": routes,
            "qdiscs": qdiscs,
            "filters": filters(ns),
            "fdb": fdb,
            "ip_forward": sysctl,
        }
    return out


def ping(namespace: str, address: str, attempts: int = 3) -> bool:
    """Whether a ping from inside ``namespace`` is answered within ``attempts`` tries of one
    second (only ever to addresses of our own namespaces)."""
    for _ in range(attempts):
        result = subprocess.run(
            ["ip", "netns", "exec", namespace, "ping", "-c1", "-W1", "-q", address],
            capture_output=True,
            check=False,
        )
        if result.returncode == 0:
            return True
    return False


def delete_namespaces(prefix: str) -> None:
    for name in netns_names(prefix):
        subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)


def kernel_has_qdisc(kind: str, prefix: str) -> bool:
    """Probe for a qdisc in a throwaway namespace of ours."""
    probe = f"{prefix}-probe"
    try:
        run("ip", "netns", "add", probe)
        result = subprocess.run(
            ["tc", "-n", probe, "qdisc", "add", "dev", "lo", "root", kind],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0
    finally:
        subprocess.run(["ip", "netns", "delete", probe], check=False, capture_output=True)


def kernel_has_link(prefix: str, *args: str) -> bool:
    """Probe for a link type in a throwaway namespace of ours that holds a bridge ``b0``:
    ``ip link add ARGS`` (e.g. ``link b0 name x0 type vlan id 5``) must succeed."""
    probe = f"{prefix}-probe"
    try:
        run("ip", "netns", "add", probe)
        run("ip", "-n", probe, "link", "add", "b0", "type", "bridge")
        result = subprocess.run(
            ["ip", "-n", probe, "link", "add", *args], capture_output=True, check=False
        )
        return result.returncode == 0
    finally:
        subprocess.run(["ip", "netns", "delete", probe], check=False, capture_output=True)


def with_sysctl(objects: list[KernelObject], namespace: str) -> list[KernelObject]:
    return [*objects, Sysctl(namespace, "net.ipv4.ip_forward", "1")]
