"""A picture of a topology mapped onto its hosts (``netmanager show --graph``).

:func:`topology_drawing` is a pure function of the model and the mapping: every host is a
box holding the VMs the mapping placed on it; every virtual network a node coloured its
own way, with its segment (VLAN id or VXLAN VNI), its shaping and its gateway; a network
that spans hosts has a small bridge in each of them (where the VMs of that host plug
in) joined to the network by a thick line, the tunnel; a network on one host sits inside
that host.  Forwarding VMs (gateways) are drawn apart and the routes through them are
listed in the VMs that use them; an ``external="outbound"`` network gets netmanager's NAT
gateway on its host and an arrow to the outside world.  Shaping is written where it
applies: a network's on the network, an interface's own on the VM's row for it, a
``<link>`` pair's on a dashed line between the two VMs.  Underneath, in grey, the
physical environment: each host's underlay interfaces, the switches and routers and the
links between them with their capacity and latency.

:func:`to_dot` writes the drawing as Graphviz DOT text; :func:`render` runs Graphviz's
``dot`` on it (SVG or PNG).
"""

from __future__ import annotations

import html
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from netmanager import programs
from netmanager.errors import ExitCode, Loc, NetmanagerError, single
from netmanager.inputs.model import (
    VM,
    Encap,
    External,
    Host,
    Interface,
    Model,
    Network,
    NodeKind,
    Shaping,
)
from netmanager.inputs.units import format_memory, format_percent, format_rate, format_time
from netmanager.mapping import Mapping as TopologyMapping

#: the formats ``show --graph`` writes, by file extension
FORMATS = {".svg": "svg", ".png": "png", ".dot": "dot"}

#: the emulated outside world behind every NAT gateway (netmanager/compile/hostconfig.py)
OUTSIDE = "198.18.0.0/15"

# ColorBrewer Dark2 for lines and borders, Pastel2 for fills: one pair per network
STRONG = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")
LIGHT = ("#d5efe6", "#fbe0cc", "#e3e2f0", "#fad4e8", "#e0edd2", "#fbf0c8", "#ede4d2", "#e5e5e5")
GREY = "#9a9a9a"
FONT = "Helvetica"


class GraphError(NetmanagerError):
    """Graphviz is missing or failed."""

    exit_code = ExitCode.ENVIRONMENT


@dataclass(frozen=True)
class Node:
    """One node: ``kind`` is vm, network, bridge, nat, outside, switch, router or underlay;
    ``name`` the thing it stands for (a VM, a network, a host:network pair ...)."""

    id: str
    kind: str
    name: str
    label: str  # a DOT HTML label, without the outer <>
    attrs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Edge:
    """One line: ``kind`` is port (VM to its network), segment (a host's bridge to its
    network), pair (a shaped <link>), nat, outbound, physical or layout (invisible)."""

    tail: str
    head: str
    kind: str
    tail_port: str | None = None  # the row of a VM's interface ("i0", "i1:e" ...)
    head_port: str | None = None
    label: str = ""  # plain text
    attrs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Cluster:
    """A host: the nodes drawn inside it."""

    host: str
    label: str  # HTML, without the outer <>
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class Drawing:
    title: str  # HTML, without the outer <>
    clusters: tuple[Cluster, ...]
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    #: network -> its colour (lines), for a legend or a test
    colors: Mapping[str, str] = field(default_factory=dict)

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def nodes_of(self, kind: str) -> list[Node]:
        return [n for n in self.nodes if n.kind == kind]

    def edges_of(self, kind: str) -> list[Edge]:
        return [e for e in self.edges if e.kind == kind]

    def cluster_of(self, node_id: str) -> str | None:
        for cluster in self.clusters:
            if node_id in cluster.nodes:
                return cluster.host
        return None


# ------------------------------------------------------------------------------ ids


def vm_id(vm: str) -> str:
    return f"vm:{vm}"


def network_id(network: str) -> str:
    return f"net:{network}"


def bridge_id(host: str, network: str) -> str:
    return f"br:{host}:{network}"


def nat_id(network: str) -> str:
    return f"nat:{network}"


def underlay_id(host: str, interface: str) -> str:
    return f"if:{host}:{interface}"


def device_id(name: str) -> str:
    return f"dev:{name}"


OUTSIDE_ID = "outside"


# ---------------------------------------------------------------------------- text


def _t(text: object) -> str:
    return html.escape(str(text), quote=True)


def shaping_words(shaping: Shaping | None) -> str:
    """'10Mbit/s · 20ms ±2ms · 0.1% loss' (empty when unshaped)."""
    if shaping is None or shaping.empty:
        return ""
    parts = []
    if shaping.rate_bps is not None:
        parts.append(f"{format_rate(shaping.rate_bps)}/s")
    if shaping.delay_us is not None:
        delay = format_time(shaping.delay_us)
        if shaping.jitter_us:
            delay += f" ±{format_time(shaping.jitter_us)}"
        parts.append(delay)
    elif shaping.jitter_us:
        parts.append(f"±{format_time(shaping.jitter_us)} jitter")
    if shaping.loss_ppm is not None:
        parts.append(f"{format_percent(shaping.loss_ppm)} loss")
    if shaping.queue_pkts is not None:
        parts.append(f"queue {shaping.queue_pkts}p")
    return " · ".join(parts)


def _own_shaping(iface: Interface, network: Network | None) -> str:
    """What an interface declares over its network's shaping (its effective values where
    they differ)."""
    if iface.shaping is None or iface.shaping.empty:
        return ""
    base = network.shaping if network is not None else None
    return shaping_words(iface.shaping.over(base))


# --------------------------------------------------------------------------- drawing


def _colors(model: Model) -> dict[str, tuple[str, str]]:
    return {
        net.name: (STRONG[i % len(STRONG)], LIGHT[i % len(LIGHT)])
        for i, net in enumerate(model.virtual.networks)
    }


def _holders(model: Model) -> dict[tuple[str, str], str]:
    """(network, address) -> the VM that holds it."""
    return {
        (iface.network, str(iface.ip.ip)): vm.name
        for vm in model.virtual.vms
        for iface in vm.interfaces
    }


def _network_hosts(model: Model, mapping: TopologyMapping) -> dict[str, tuple[str, ...]]:
    """The hosts each network is present on: its VMs' (netmanager.compile.configs's rule; a NAT
    network without VMs sits on the first host)."""
    out: dict[str, tuple[str, ...]] = {}
    for net in model.virtual.networks:
        hosts = sorted({mapping.placement[vm.name] for vm, _ in model.virtual.members(net.name)})
        if not hosts and net.external is External.OUTBOUND:
            hosts = sorted(h.name for h in model.real.hosts)[:1]
        out[net.name] = tuple(hosts)
    return out


def _gateway_text(net: Network, holders: Mapping[tuple[str, str], str]) -> str:
    if net.gateway is None:
        return ""
    if net.external is External.OUTBOUND:
        return f"gateway {net.gateway} (NAT, outbound only)"
    holder = holders.get((net.name, str(net.gateway)))
    return f"gateway {net.gateway}" + (f" ({holder})" if holder else "")


def _network_label(
    net: Network,
    mapping: TopologyMapping,
    hosts: tuple[str, ...],
    holders: Mapping[tuple[str, str], str],
    light: str,
    strong: str,
) -> str:
    segment = mapping.segments.get(net.name)
    rows = [f'<TR><TD><FONT POINT-SIZE="12"><B>{_t(net.name)}</B></FONT></TD></TR>']
    rows.append(f"<TR><TD>{_t(net.cidr)}</TD></TR>")
    if segment is not None:
        kind = "VLAN" if segment.encap is Encap.VLAN else "VXLAN VNI"
        where = "across " + ", ".join(hosts) if len(hosts) > 1 else "on " + (hosts or ("-",))[0]
        rows.append(f"<TR><TD>{_t(kind)} {segment.id} · {_t(where)}</TD></TR>")
    shaping = shaping_words(net.shaping)
    if shaping:
        rows.append(f"<TR><TD><B>{_t(shaping)}</B> per port</TD></TR>")
    gateway = _gateway_text(net, holders)
    if gateway:
        rows.append(f"<TR><TD>{_t(gateway)}</TD></TR>")
    if not net.isolated:
        rows.append("<TR><TD><I>routed (not isolated)</I></TD></TR>")
    return (
        f'<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2" STYLE="ROUNDED" '
        f'BGCOLOR="{light}" COLOR="{strong}">{"".join(rows)}</TABLE>'
    )


def _route_via(
    vm: VM, model: Model, holders: Mapping[tuple[str, str], str]
) -> list[tuple[str, str]]:
    """(destination, 'via ADDRESS (holder)') for each route of a VM."""
    out = []
    for route in vm.routes:
        holder = next(
            (h for (_, ip), h in holders.items() if ip == str(route.via) and h != vm.name), None
        )
        if holder is None:
            nat = next(
                (
                    n
                    for n in model.virtual.networks
                    if n.external is External.OUTBOUND and n.gateway == route.via
                ),
                None,
            )
            holder = "NAT" if nat is not None else None
        to = "default" if route.to.prefixlen == 0 else str(route.to)
        out.append((to, f"via {route.via}" + (f" ({holder})" if holder else "")))
    return out


def _vm_label(
    vm: VM,
    model: Model,
    colors: Mapping[str, tuple[str, str]],
    holders: Mapping[tuple[str, str], str],
    gateways: Mapping[tuple[str, str], list[str]],
) -> str:
    virtual = model.virtual
    head = "#fff1c1" if vm.forward else "#ececec"
    title = f"<B>{_t(vm.name)}</B>"
    if vm.forward:
        title += " ⇄ forwards"
    rows = [f'<TR><TD BGCOLOR="{head}">{title}</TD></TR>']
    for index, iface in enumerate(vm.interfaces):
        _, light = colors.get(iface.network, (GREY, "#ffffff"))
        text = _t(iface.ip.ip)
        if len(vm.interfaces) > 1:
            text = f"{_t(iface.network)} {text}"
        own = _own_shaping(iface, virtual.network_by_name.get(iface.network))
        if own:
            text += f"<BR/><B>{_t(own)}</B>"
        served = gateways.get((iface.network, str(iface.ip.ip)), [])
        if served:
            text += "<BR/><I>gateway for " + _t(", ".join(served)) + "</I>"
        rows.append(f'<TR><TD PORT="i{index}" BGCOLOR="{light}">{text}</TD></TR>')
    for to, via in _route_via(vm, model, holders):
        rows.append(f'<TR><TD><FONT POINT-SIZE="8">→ {_t(to)} {_t(via)}</FONT></TD></TR>')
    return (
        '<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3" BGCOLOR="white">'
        + "".join(rows)
        + "</TABLE>"
    )


def _gateways_served(model: Model) -> dict[tuple[str, str], list[str]]:
    """(network, address) of a VM -> what goes through it: 'default' for a network's
    gateway, and every destination other VMs route via that address."""
    served: dict[tuple[str, str], list[str]] = {}
    for net in model.virtual.networks:
        if net.gateway is not None and net.external is not External.OUTBOUND:
            served.setdefault((net.name, str(net.gateway)), []).append(f"{net.name} (default)")
    for vm in model.virtual.vms:
        for route in vm.routes:
            for iface_vm in model.virtual.vms:
                for iface in iface_vm.interfaces:
                    if iface.ip.ip == route.via and iface_vm.name != vm.name:
                        to = "default" if route.to.prefixlen == 0 else str(route.to)
                        targets = served.setdefault((iface.network, str(iface.ip.ip)), [])
                        if to not in targets:
                            targets.append(to)
    return served


def _pair_port(vm: VM | None, network: str | None, other: str, model: Model) -> str | None:
    """The row of ``vm``'s interface a <link> to ``other`` goes through, east side."""
    if vm is None:
        return None
    peer = model.virtual.vm_by_name.get(other)
    shared = {i.network for i in peer.interfaces} if peer is not None else set()
    for index, iface in enumerate(vm.interfaces):
        if iface.network == network or (network is None and iface.network in shared):
            return f"i{index}:e"
    return None


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _host_label(host: Host, vms: int, network_count: int) -> str:
    kind = host.uri or str(host.hypervisor)
    placed = f"{vms} of {host.max_vms} VMs" if host.max_vms is not None else _count(vms, "VM")
    if network_count:
        placed += ", " + _count(network_count, "network")
    return (
        f'<FONT POINT-SIZE="13"><B>{_t(host.name)}</B></FONT>'
        f'<BR/><FONT POINT-SIZE="9">{_t(kind)} · {host.cpus} CPUs, '
        f"{_t(format_memory(host.vm_memory_mib))} for VMs · {_t(placed)}</FONT>"
    )


def _underlay_label(host: Host, name: str) -> str:
    iface = next((i for i in host.interfaces if i.name == name), None)
    text = f"<B>{_t(name)}</B>"
    if iface is not None and iface.address is not None:
        text += f" {_t(iface.address)}"
    return f'<FONT POINT-SIZE="8" COLOR="#555555">{text}</FONT>'


def _physical_words(capacity_bps: int, latency_us: int) -> str:
    words = f"{format_rate(capacity_bps)}/s"
    if latency_us:
        words += f" · {format_time(latency_us)}"
    return words


def topology_drawing(model: Model, mapping: TopologyMapping) -> Drawing:
    """The drawing of ``model`` placed as ``mapping`` says (pure)."""
    real, virtual = model.real, model.virtual
    colors = _colors(model)
    holders = _holders(model)
    served = _gateways_served(model)
    net_hosts = _network_hosts(model, mapping)
    nodes: list[Node] = []
    edges: list[Edge] = []
    inside: dict[str, list[str]] = {h.name: [] for h in real.hosts}

    # networks: inside their host when on one host, between the hosts otherwise
    for net in virtual.networks:
        strong, light = colors[net.name]
        hosts = net_hosts[net.name]
        nodes.append(
            Node(
                network_id(net.name),
                "network",
                net.name,
                _network_label(net, mapping, hosts, holders, light, strong),
                (("shape", "plain"),),
            )
        )
        if len(hosts) == 1 and hosts[0] in inside:
            inside[hosts[0]].append(network_id(net.name))
        elif len(hosts) > 1:
            for host in hosts:
                bid = bridge_id(host, net.name)
                nodes.append(
                    Node(
                        bid,
                        "bridge",
                        f"{host}:{net.name}",
                        "",
                        (
                            ("shape", "circle"),
                            ("width", "0.16"),
                            ("fixedsize", "true"),
                            ("style", "filled"),
                            ("fillcolor", strong),
                            ("color", strong),
                            ("label", ""),
                            ("tooltip", f"bridge of {net.name} on {host}"),
                        ),
                    )
                )
                inside.setdefault(host, []).append(bid)
                edges.append(
                    Edge(
                        network_id(net.name),
                        bid,
                        "segment",
                        attrs=(("color", strong), ("penwidth", "3.5")),
                    )
                )

    # VMs in the host the mapping placed them on, each interface to its network
    for vm in virtual.vms:
        host = mapping.placement.get(vm.name, "")
        nodes.append(
            Node(
                vm_id(vm.name),
                "vm",
                vm.name,
                _vm_label(vm, model, colors, holders, served),
                (("shape", "plain"),),
            )
        )
        if host in inside:
            inside[host].append(vm_id(vm.name))
        for index, iface in enumerate(vm.interfaces):
            strong, _ = colors.get(iface.network, (GREY, ""))
            hosts = net_hosts.get(iface.network, ())
            target = bridge_id(host, iface.network) if len(hosts) > 1 else network_id(iface.network)
            width = "2.4" if (iface.network, str(iface.ip.ip)) in served else "1.4"
            edges.append(
                Edge(
                    target,
                    vm_id(vm.name),
                    "port",
                    head_port=f"i{index}",
                    attrs=(("color", strong), ("penwidth", width)),
                )
            )

    # shaped <link> pairs: between the rows of the two interfaces, on their right side
    for pair in virtual.pairs:
        words = shaping_words(pair.shaping)
        edges.append(
            Edge(
                vm_id(pair.a),
                vm_id(pair.b),
                "pair",
                tail_port=_pair_port(virtual.vm_by_name.get(pair.a), pair.network, pair.b, model),
                head_port=_pair_port(virtual.vm_by_name.get(pair.b), pair.network, pair.a, model),
                label=words + (f" ({pair.network})" if pair.network else ""),
                attrs=(
                    ("style", "dashed"),
                    ("color", "#333333"),
                    ("penwidth", "1.6"),
                    ("constraint", "false"),
                    ("fontcolor", "#333333"),
                ),
            )
        )

    # NAT gateways and the outside world
    nat_networks = [
        n for n in virtual.networks if n.external is External.OUTBOUND and n.gateway is not None
    ]
    if nat_networks:
        nodes.append(
            Node(
                OUTSIDE_ID,
                "outside",
                "outside",
                f"<B>outside world</B><BR/>{_t(OUTSIDE)}",
                (("shape", "box"), ("style", "rounded,dashed"), ("color", "#b03030")),
            )
        )
    for net in nat_networks:
        strong, _ = colors[net.name]
        hosts = net_hosts[net.name]
        host = hosts[0] if hosts else ""
        nid = nat_id(net.name)
        nodes.append(
            Node(
                nid,
                "nat",
                net.name,
                f"<B>NAT gateway</B><BR/>{_t(net.gateway)}<BR/>"
                '<FONT POINT-SIZE="8">masquerade, outbound only</FONT>',
                (
                    ("shape", "box"),
                    ("style", "rounded,filled"),
                    ("fillcolor", "#fde2e2"),
                    ("color", "#b03030"),
                ),
            )
        )
        if host in inside:
            inside[host].append(nid)
        anchor = bridge_id(host, net.name) if len(hosts) > 1 else network_id(net.name)
        edges.append(Edge(anchor, nid, "nat", attrs=(("color", strong), ("penwidth", "2.4"))))
        edges.append(
            Edge(
                nid,
                OUTSIDE_ID,
                "outbound",
                label="outbound only",
                attrs=(
                    ("dir", "forward"),
                    ("color", "#b03030"),
                    ("fontcolor", "#b03030"),
                    ("penwidth", "1.6"),
                ),
            )
        )

    # the physical environment, in grey underneath
    used_ifaces: dict[str, list[str]] = {}
    for link in real.links:
        for end in (link.a, link.b):
            if end.interface is not None and end.node in inside:
                used_ifaces.setdefault(end.node, [])
                if end.interface not in used_ifaces[end.node]:
                    used_ifaces[end.node].append(end.interface)
    for real_host in real.hosts:
        for name in used_ifaces.get(real_host.name, []):
            uid = underlay_id(real_host.name, name)
            nodes.append(
                Node(
                    uid,
                    "underlay",
                    f"{real_host.name}:{name}",
                    _underlay_label(real_host, name),
                    (("shape", "box"), ("style", "rounded"), ("color", GREY), ("height", "0.2")),
                )
            )
            inside[real_host.name].append(uid)
            # keep the underlay to the right of the VMs of the host
            for node_id in inside[real_host.name]:
                if node_id.startswith("vm:"):
                    edges.append(Edge(node_id, uid, "layout", attrs=(("style", "invis"),)))
    for device in real.nodes:
        shape = "box3d" if device.kind is NodeKind.SWITCH else "octagon"
        nodes.append(
            Node(
                device_id(device.name),
                str(device.kind),
                device.name,
                f'<FONT COLOR="#444444"><B>{_t(device.name)}</B></FONT>'
                f'<BR/><FONT POINT-SIZE="8" COLOR="#666666">{_t(device.kind)}</FONT>',
                (("shape", shape), ("color", GREY), ("style", "filled"), ("fillcolor", "#f2f2f2")),
            )
        )

    def end_id(node: str, interface: str | None) -> str:
        if interface is not None and node in inside:
            return underlay_id(node, interface)
        return device_id(node)

    for link in real.links:
        edges.append(
            Edge(
                end_id(link.a.node, link.a.interface),
                end_id(link.b.node, link.b.interface),
                "physical",
                label=_physical_words(link.capacity_bps, link.latency_us),
                attrs=(
                    ("color", GREY),
                    ("fontcolor", "#666666"),
                    ("style", "dashed"),
                    ("fontsize", "8"),
                ),
            )
        )

    clusters = tuple(
        Cluster(
            host.name,
            _host_label(
                host,
                len(mapping.vms_on(host.name)),
                sum(1 for hosts in net_hosts.values() if host.name in hosts),
            ),
            tuple(inside[host.name]),
        )
        for host in real.hosts
    )
    used = len(set(mapping.placement.values()))
    facts = [
        f"{_count(len(virtual.vms), 'VM')} on {used} of {_count(len(real.hosts), 'host')}",
        _count(len(virtual.networks), "network"),
    ]
    if mapping.cut_bps:
        facts.append(f"{format_rate(mapping.cut_bps)}/s declared across hosts")
    title = (
        f'<FONT POINT-SIZE="16"><B>{_t(virtual.topology)}</B></FONT><BR/>'
        f'<FONT POINT-SIZE="10">{_t(" · ".join(facts))}</FONT>'
    )
    return Drawing(
        title,
        clusters,
        tuple(nodes),
        tuple(edges),
        {name: strong for name, (strong, _) in colors.items()},
    )


# ------------------------------------------------------------------------------ DOT


def _id(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _attrs(pairs: Iterable[tuple[str, str]]) -> str:
    out = []
    for key, value in pairs:
        if key in ("label", "xlabel") and value.startswith("<") and value.endswith(">"):
            out.append(f"{key}={value}")
        else:
            out.append(f"{key}={_id(value)}")
    return ", ".join(out)


def _port(port: str | None) -> str:
    """':"i0"' or ':"i1":e' (a compass point stays unquoted)."""
    if not port:
        return ""
    name, _, compass = port.partition(":")
    return f":{_id(name)}" + (f":{compass}" if compass else "")


def to_dot(drawing: Drawing) -> str:
    """Graphviz DOT text of a drawing (an undirected graph, hosts as clusters)."""
    lines = [
        "graph netmanager {",
        f"  graph [{_attrs([('fontname', FONT), ('rankdir', 'LR'), ('compound', 'true'), ('newrank', 'true'), ('nodesep', '0.18'), ('ranksep', '0.9'), ('labelloc', 't'), ('pad', '0.3'), ('bgcolor', 'white'), ('label', f'<{drawing.title}>')])}];",
        f"  node [{_attrs([('fontname', FONT), ('fontsize', '10')])}];",
        f"  edge [{_attrs([('fontname', FONT), ('fontsize', '9')])}];",
    ]
    by_id = {n.id: n for n in drawing.nodes}
    clustered: set[str] = set()

    def node_line(node: Node, indent: str) -> str:
        attrs = list(node.attrs)
        if node.label and not any(k == "label" for k, _ in attrs):
            attrs.insert(0, ("label", f"<{node.label}>"))
        return f"{indent}{_id(node.id)} [{_attrs(attrs)}];"

    for index, cluster in enumerate(drawing.clusters):
        lines.append(f"  subgraph {_id(f'cluster_{index}')} {{")
        lines.append(
            "    graph ["
            + _attrs(
                [
                    ("label", f"<{cluster.label}>"),
                    ("style", "rounded,filled"),
                    ("fillcolor", "#f7f7f7"),
                    ("color", "#7a7a7a"),
                    ("penwidth", "1.5"),
                    ("labeljust", "l"),
                ]
            )
            + "];"
        )
        if not cluster.nodes:
            lines.append(
                f'    {_id(f"empty:{cluster.host}")} [label="no VMs", shape=plaintext, '
                'fontcolor="#888888"];'
            )
        for node_id in cluster.nodes:
            lines.append(node_line(by_id[node_id], "    "))
            clustered.add(node_id)
        lines.append("  }")
    for node in drawing.nodes:
        if node.id not in clustered:
            lines.append(node_line(node, "  "))
    for edge in drawing.edges:
        tail = _id(edge.tail) + _port(edge.tail_port)
        head = _id(edge.head) + _port(edge.head_port)
        attrs = list(edge.attrs)
        if edge.label:
            attrs.insert(0, ("label", edge.label))
        lines.append(f"  {tail} -- {head}" + (f" [{_attrs(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


def topology_dot(model: Model, mapping: TopologyMapping) -> str:
    """DOT text of the topology placed by ``mapping`` (pure)."""
    return to_dot(topology_drawing(model, mapping))


# --------------------------------------------------------------------------- render


def graph_format(path: str) -> str | None:
    """The format a file name asks for (svg, png, dot), or None."""
    return FORMATS.get(Path(path).suffix.lower())


def dot_command() -> str | None:
    return programs.which("dot")


def render(dot_text: str, fmt: str, out: Path) -> None:
    """Write the picture: DOT text as is, SVG and PNG through Graphviz's ``dot``.  Raises
    GraphError when ``dot`` is missing or fails."""
    if fmt == "dot":
        out.write_text(dot_text, encoding="utf-8")
        return
    dot = dot_command()
    if dot is None:
        raise single(
            "E760",
            Loc("netmanager"),
            f"drawing {out.name} needs Graphviz's 'dot', which is not installed",
            "scripts/install installs it (apt-get install graphviz); "
            "or write the DOT text with --graph FILE.dot",
            "show",
            GraphError,
        )
    try:
        done = subprocess.run(
            [dot, f"-T{fmt}", "-o", str(out)],
            input=dot_text.encode("utf-8"),
            capture_output=True,
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise single(
            "E761", Loc("netmanager"), f"dot failed: {exc}", "", "show", GraphError
        ) from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise single(
            "E761",
            Loc("netmanager"),
            f"dot exited with status {done.returncode}: {' | '.join(message[-3:])}",
            f"the DOT text is what --graph {out.with_suffix('.dot').name} writes",
            "show",
            GraphError,
        )
