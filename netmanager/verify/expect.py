"""What the network must do, computed from virtual.xml and what was compiled for it (pure).

A :class:`TopologyView` is one applied topology seen as nodes (VMs and NAT gateways) with
their interfaces ("NICs": namespace, interface, address, MAC, host).  On it:

* :func:`walk` follows a packet hop by hop as the kernel would: the sender's longest
  matching route, the next hop on the sender's L2 network, the policy of that network
  (the compiled first-match rules of virtual.xml, :class:`~netmanager.compile.hostconfig.Policy`)
  for what enters the bridge from a VM port, forwarding VMs passing it on;
* :func:`expect` says whether a probe must be answered (both ways), only delivered (the
  replies are dropped) or not delivered at all — replies pass where the request's
  connection was seen on the way (conntrack) or where the rules allow them anyway;
* :func:`declared_rtt`, :func:`declared_loss` and :func:`declared_rate` give the latency,
  loss and bandwidth virtual.xml declares along a path, in both directions.

Rates are the Ethernet-frame rate at the VM's port (what TBF counts).
"""

from __future__ import annotations

import enum
import ipaddress
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

from netmanager.compile.hostconfig import HostConfig, Policy, Port, VmRoute
from netmanager.inputs.model import Action, Encap, Model, Protocol, Shaping

Address = ipaddress.IPv4Address

ETH_HEADER = 14
VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
VLAN_TAG = 4
MAX_HOPS = 16


@dataclass(frozen=True)
class Nic:
    """An interface of a node: a VM's (with its port in dom0) or a NAT gateway's inside leg."""

    topology: str
    node: str
    network: str
    ifname: str
    ip: ipaddress.IPv4Interface
    mac: str
    host: str
    namespace: str
    mtu: int
    port: Port | None = None

    @property
    def address(self) -> Address:
        return self.ip.ip

    def label(self) -> str:
        return f"{self.node} {self.address}"


@dataclass(frozen=True)
class Node:
    """A VM, or netmanager's NAT gateway of a network (``kind="nat"``)."""

    topology: str
    name: str
    host: str
    namespace: str
    forward: bool
    nics: tuple[Nic, ...]
    routes: tuple[VmRoute, ...] = ()
    kind: str = "vm"

    def owns(self, address: Address) -> bool:
        return any(n.address == address for n in self.nics)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str


@dataclass(frozen=True)
class Hop:
    """One L2 hop: ``sender`` puts the packet on ``out``'s network towards ``receiver``."""

    sender: Node
    out: Nic
    receiver: Nic
    verdict: Verdict


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    NO_ROUTE = "no route"
    NO_HOST = "no such host on the network"
    BLOCKED = "blocked"
    NOT_FORWARDED = "not forwarded"
    LOOP = "routing loop"


@dataclass(frozen=True)
class Walk:
    hops: tuple[Hop, ...]
    outcome: Outcome
    reason: str = ""
    src: Address | None = None

    @property
    def delivered(self) -> bool:
        return self.outcome is Outcome.DELIVERED

    def receivers(self) -> set[tuple[str, str]]:
        """(topology, node) of every node the packet legitimately reaches."""
        return {(h.receiver.topology, h.receiver.node) for h in self.hops if h.verdict.allowed}


class Reach(enum.StrEnum):
    BOTH = "reachable"  # delivered, and the answer comes back
    ONE_WAY = "one-way"  # delivered, the answer is dropped
    NONE = "isolated"  # not delivered


@dataclass(frozen=True)
class Probe:
    """What a scan sends: ``proto`` icmp, tcp or udp; ``port`` for tcp/udp."""

    proto: str
    port: int = 0

    def __str__(self) -> str:
        return self.proto if self.proto == "icmp" else f"{self.proto}/{self.port}"


@dataclass(frozen=True)
class Expectation:
    src: Node
    dst: Nic
    probe: Probe
    reach: Reach
    forward: Walk
    reply: Walk | None

    @property
    def src_address(self) -> Address | None:
        return self.forward.src

    def why(self) -> str:
        if self.reach is Reach.BOTH:
            return "allowed both ways"
        if self.reach is Reach.ONE_WAY and self.reply is not None:
            return f"replies {self.reply.outcome}: {self.reply.reason}"
        return f"{self.forward.outcome}: {self.forward.reason}"


# ----------------------------------------------------------------------------- the view


@dataclass
class TopologyView:
    """One topology as applied: its nodes, NICs, policies and the model it came from."""

    model: Model
    configs: dict[str, HostConfig]
    nodes: dict[str, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.nodes:
            self.nodes = _nodes(self.configs)

    @property
    def name(self) -> str:
        return self.model.topology

    @cached_property
    def nics(self) -> list[Nic]:
        return [n for node in self.nodes.values() for n in node.nics]

    @cached_property
    def vms(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind == "vm"]

    @cached_property
    def policies(self) -> dict[str, Policy]:
        return {p.network: p for c in self.configs.values() for p in c.policies}

    @cached_property
    def encap(self) -> dict[str, Encap]:
        return {s.network: s.encap for c in self.configs.values() for s in c.segments}

    @cached_property
    def macs(self) -> dict[str, Nic]:
        return {n.mac: n for n in self.nics}

    def nic_at(self, network: str, address: Address) -> Nic | None:
        for nic in self.nics:
            if nic.network == network and nic.address == address:
                return nic
        return None

    def owner(self, address: Address) -> list[Nic]:
        return [n for n in self.nics if n.address == address]

    def node_of(self, nic: Nic) -> Node:
        return self.nodes[nic.node]


def _nodes(configs: dict[str, HostConfig]) -> dict[str, Node]:
    nodes: dict[str, Node] = {}
    for host, config in sorted(configs.items()):
        ports: dict[str, list[Port]] = {}
        for port in config.ports:
            ports.setdefault(port.vm, []).append(port)
        mtu_of = {s.network: s.mtu for s in config.segments}
        for vm in config.vms:
            nics = tuple(
                Nic(
                    topology=config.topology,
                    node=vm.vm,
                    network=p.network,
                    ifname=p.ifname,
                    ip=p.ip,
                    mac=p.mac,
                    host=host,
                    namespace=p.vm_namespace,
                    mtu=p.mtu,
                    port=p,
                )
                for p in sorted(ports.get(vm.vm, []), key=lambda p: p.index)
            )
            nodes[vm.vm] = Node(
                config.topology, vm.vm, host, vm.namespace, vm.forward, nics, vm.routes
            )
        for nat in config.nats:
            name = f"gateway:{nat.network}"
            nic = Nic(
                topology=config.topology,
                node=name,
                network=nat.network,
                ifname="eth0",
                ip=nat.address,
                mac=nat.mac,
                host=host,
                namespace=nat.namespace,
                mtu=mtu_of.get(nat.network, 1500),
            )
            # The gateway routes everything else to the outside world: inside the
            # topology it forwards nothing.
            nodes[name] = Node(config.topology, name, host, nat.namespace, False, (nic,), (), "nat")
    return nodes


# ------------------------------------------------------------------------------ policy


def decide(policy: Policy | None, src: Address, dst: Address, probe: Probe) -> Verdict:
    """The first rule of ``policy`` that matches a new packet decides (iptables' order)."""
    if policy is None:
        return Verdict(False, "the network has no policy chain (fails closed)")
    for rule in policy.rules:
        if not any(src in n for n in rule.src) or not any(dst in n for n in rule.dst):
            continue
        if rule.protocol is not Protocol.ANY and rule.protocol.value != probe.proto:
            continue
        if rule.ports and not any(a <= probe.port <= b for a, b in rule.ports):
            continue
        return Verdict(rule.action is Action.ALLOW, rule.reason)
    return Verdict(False, "no rule matched")


# ----------------------------------------------------------------------------- routing


def route(node: Node, dst: Address) -> tuple[Nic, Address | None] | None:
    """The interface and gateway (None: on-link) ``node`` sends a packet for ``dst`` by."""
    best: tuple[int, int, Nic, Address | None] | None = None
    for nic in node.nics:
        if dst in nic.ip.network:
            candidate: tuple[int, int, Nic, Address | None] = (
                nic.ip.network.prefixlen,
                1,
                nic,
                None,
            )
            if best is None or candidate[:2] > best[:2]:
                best = candidate
    for r in node.routes:
        if dst not in r.to:
            continue
        out = next((n for n in node.nics if r.via in n.ip.network), None)
        if out is None:
            continue
        candidate = (r.to.prefixlen, 0, out, r.via)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    if best is None:
        return None
    return best[2], best[3]


def walk(
    view: TopologyView,
    start: Node,
    dst: Address,
    probe: Probe,
    *,
    src: Address | None = None,
    established: frozenset[tuple[str, str, str]] = frozenset(),
) -> Walk:
    """Follow a packet from ``start`` to ``dst``.  ``established`` lists (network, from,
    to) hops whose connection the firewall has seen the other way (replies pass there)."""
    node = start
    hops: list[Hop] = []
    seen = {start.name}
    for _ in range(MAX_HOPS):
        found = route(node, dst)
        if found is None:
            return Walk(tuple(hops), Outcome.NO_ROUTE, f"{node.name} has no route to {dst}", src)
        out, via = found
        if src is None:
            src = out.address
        target = via if via is not None else dst
        receiver = view.nic_at(out.network, target)
        if receiver is None:
            return Walk(tuple(hops), Outcome.NO_HOST, f"nothing has {target} in {out.network}", src)
        if out.port is None:
            verdict = Verdict(True, "not a VM port (not filtered)")
        elif (out.network, receiver.node, node.name) in established:
            verdict = Verdict(True, "reply of a connection seen on the way (conntrack)")
        else:
            verdict = decide(view.policies.get(out.network), src, dst, probe)
        hops.append(Hop(node, out, receiver, verdict))
        if not verdict.allowed:
            return Walk(tuple(hops), Outcome.BLOCKED, f"{out.network}: {verdict.reason}", src)
        next_node = view.node_of(receiver)
        if next_node.owns(dst):
            return Walk(tuple(hops), Outcome.DELIVERED, "", src)
        if not next_node.forward:
            return Walk(
                tuple(hops),
                Outcome.NOT_FORWARDED,
                f"{next_node.name} ({receiver.address}) does not forward",
                src,
            )
        if next_node.name in seen:
            return Walk(tuple(hops), Outcome.LOOP, f"{next_node.name} seen twice", src)
        seen.add(next_node.name)
        node = next_node
    return Walk(tuple(hops), Outcome.LOOP, f"more than {MAX_HOPS} hops", src)


def expect(view: TopologyView, src: Node, dst: Nic, probe: Probe) -> Expectation:
    forward = walk(view, src, dst.address, probe)
    if not forward.delivered or forward.src is None:
        return Expectation(src, dst, probe, Reach.NONE, forward, None)
    established = frozenset((h.out.network, h.sender.name, h.receiver.node) for h in forward.hops)
    answering = view.node_of(forward.hops[-1].receiver)
    reply = walk(view, answering, forward.src, probe, src=dst.address, established=established)
    if reply.delivered and reply.hops and reply.hops[-1].receiver.node == src.name:
        return Expectation(src, dst, probe, Reach.BOTH, forward, reply)
    return Expectation(src, dst, probe, Reach.ONE_WAY, forward, reply)


def probes_between(view: TopologyView, src: Node, dst: Nic, base_port: int) -> list[Probe]:
    """ICMP, TCP and UDP to ``base_port``, and one port of every port range a rule on the
    way names (so that port rules are tried both where they allow and where they do not)."""
    probes = [Probe("icmp"), Probe("tcp", base_port), Probe("udp", base_port)]
    found = route(src, dst.address)
    networks = {found[0].network} if found else set()
    for network in sorted(networks):
        policy = view.policies.get(network)
        if policy is None:
            continue
        for rule in policy.rules:
            if not rule.ports or rule.protocol not in (Protocol.TCP, Protocol.UDP):
                continue
            for first, _ in rule.ports[:2]:
                probe = Probe(rule.protocol.value, first)
                if probe not in probes:
                    probes.append(probe)
    return probes[:7]


def arp_expected(view: TopologyView, nic: Nic, target: Address) -> set[str]:
    """The MACs that must answer an ARP request for ``target`` on ``nic``'s network."""
    return {n.mac for n in view.nics if n.network == nic.network and n.address == target}


# ------------------------------------------------------------------- declared shaping


def _model_shaping(view: TopologyView, nic: Nic, peer: str) -> Shaping | None:
    """The shaping virtual.xml declares for packets delivered to ``nic`` from ``peer``
    (and sent by ``nic`` to it): the pair's over the interface's over the network's."""
    virtual = view.model.virtual
    vm = virtual.vm_by_name.get(nic.node)
    if vm is None:
        return None
    iface = vm.interface_in(nic.network)
    if iface is None:
        return None
    own = virtual.interface_shaping(iface)
    for pair in virtual.pairs:
        if {pair.a, pair.b} == {nic.node, peer} and (pair.network or nic.network) == nic.network:
            return pair.shaping.over(own)
    return own


def shaped_rates(view: TopologyView, walk_: Walk) -> Iterator[tuple[Nic, int]]:
    """Every port along ``walk_`` with a declared rate, and that rate (bit/s)."""
    for hop in walk_.hops:
        for nic, peer in ((hop.out, hop.receiver.node), (hop.receiver, hop.sender.name)):
            shaping = _model_shaping(view, nic, peer)
            if shaping is not None and shaping.rate_bps is not None:
                yield nic, shaping.rate_bps


def _hop_pairs(walk_: Walk) -> Iterable[tuple[Nic, str]]:
    for hop in walk_.hops:
        yield hop.receiver, hop.sender.name


@dataclass(frozen=True)
class Declared:
    """Latency or loss declared along a round trip."""

    rtt_ms: float
    jitter_ms: float
    loss: float  # probability that a request or its reply is lost
    jitters_ms: tuple[float, ...] = ()  # each NetEm's jitter along the round trip

    @property
    def any(self) -> bool:
        return self.rtt_ms > 0 or self.jitter_ms > 0 or self.loss > 0


def declared(view: TopologyView, expectation: Expectation) -> Declared:
    """Round trip: the one-way delay declared for each delivery, request and reply."""
    delay_us = 0
    jitters_us: list[int] = []
    survive = 1.0
    walks = [expectation.forward] + ([expectation.reply] if expectation.reply else [])
    for w in walks:
        for nic, peer in _hop_pairs(w):
            shaping = _model_shaping(view, nic, peer)
            if shaping is None:
                continue
            delay_us += shaping.delay_us or 0
            if shaping.jitter_us:
                jitters_us.append(shaping.jitter_us)
            survive *= 1 - (shaping.loss_ppm or 0) / 1e6
    return Declared(
        delay_us / 1000,
        sum(jitters_us) / 1000,
        1 - survive,
        tuple(j / 1000 for j in jitters_us),
    )


@dataclass(frozen=True)
class RateLimit:
    """The bandwidth a direction is declared to have, and what else bounds it."""

    declared_bps: int | None  # None: nothing declared along the path
    underlay_bps: float | None  # what the physical path carries of the VM's frames
    bottleneck: Nic | None  # the NIC whose frames the declared rate counts
    note: str = ""

    @property
    def expected_bps(self) -> float | None:
        values = [v for v in (self.declared_bps, self.underlay_bps) if v is not None]
        return min(values) if values else None


def declared_rate(view: TopologyView, forward: Walk) -> RateLimit:
    """The declared rate of a direction: on each hop, the smaller of what the sender's
    and the receiver's ports hold (pair shaping where the pair declares it)."""
    best = min(
        ((rate, nic) for nic, rate in shaped_rates(view, forward)), key=lambda b: b[0], default=None
    )
    underlay: float | None = None
    note = ""
    for hop in forward.hops:
        if hop.sender.host != hop.receiver.host:
            capacity = physical_capacity(view, hop.sender.host, hop.receiver.host)
            if capacity is not None:
                frame = hop.out.mtu + ETH_HEADER
                encap = view.encap.get(hop.out.network, Encap.VXLAN)
                overhead = VXLAN_OVERHEAD if encap is Encap.VXLAN else VLAN_TAG
                carried = capacity * frame / (frame + overhead)
                if underlay is None or carried < underlay:
                    underlay = carried
                    note = (
                        f"{hop.sender.host}-{hop.receiver.host} underlay {capacity / 1e6:g}Mbit/s"
                        f" carries {carried / 1e6:.4g}Mbit/s of {frame}-byte frames"
                        f" ({encap} adds {overhead} bytes)"
                    )
    return RateLimit(best[0] if best else None, underlay, best[1] if best else None, note)


def physical_capacity(view: TopologyView, a: str, b: str) -> int | None:
    """The smallest capacity on the physical path between hosts ``a`` and ``b`` (the
    path with the fewest links), or None where none is known."""
    real = view.model.real
    adjacent: dict[str, list[tuple[str, int]]] = {}
    for link in real.links:
        adjacent.setdefault(link.a.node, []).append((link.b.node, link.capacity_bps))
        adjacent.setdefault(link.b.node, []).append((link.a.node, link.capacity_bps))
    queue: deque[tuple[str, int | None]] = deque([(a, None)])
    seen = {a}
    while queue:
        node, bottleneck = queue.popleft()
        if node == b:
            return bottleneck
        for other, capacity in adjacent.get(node, []):
            if other in seen:
                continue
            seen.add(other)
            queue.append((other, capacity if bottleneck is None else min(bottleneck, capacity)))
    return None


def payload_bytes(mtu: int, proto: str, tcp_payload: int | None = None) -> int:
    """Application bytes in a full frame: TCP's MSS with timestamps, or a UDP datagram
    that fills the MTU."""
    if proto == "udp":
        return mtu - 20 - 8
    return tcp_payload if tcp_payload else mtu - 20 - 20 - 12


def frame_rate(goodput_bps: float, mtu: int, payload: int) -> float:
    """The Ethernet-frame rate (what TBF counts) that carries ``goodput_bps`` of
    application data in full frames of ``mtu``."""
    return goodput_bps * (mtu + ETH_HEADER) / payload
