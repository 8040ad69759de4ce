"""From a host's logical configuration to the kernel objects that build it (pure).

This runs where the kernel is: in the manager for hosts emulated on this machine, in the
agent on a real host.  Naming and ownership markers come from :mod:`netmanager.compile.hostconfig`;
queue sizes from :mod:`netmanager.kernel.shaping`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import replace

from netmanager.compile.hostconfig import (
    EXTERNAL_HOST,
    INFRA,
    GuestHost,
    HostConfig,
    Infrastructure,
    Nat,
    Port,
    Shaping,
    alias,
)
from netmanager.inputs.model import Encap
from netmanager.kernel import (
    ROOT_NAMESPACE,
    Address,
    FdbEntry,
    Htb,
    HtbClass,
    KernelObject,
    Link,
    LinkKind,
    MirredRedirect,
    Namespace,
    Netem,
    Qdisc,
    Route,
    Sysctl,
    U32Filter,
    VethPeer,
    Vlan,
    Vxlan,
)
from netmanager.kernel.shaping import (
    DEFAULT_WAKEUP_US,
    EMULATED_CPU_WAKEUP_US,
    htb_burst_bytes,
    ifb_ingress,
    netem_for,
    tbf_for_rate,
    tbf_with_netem,
)

UNLIMITED_BPS = 10_000_000_000  # an HTB default class for a port that has no rate of its own
SWITCH_BRIDGE = "br0"


class RenderError(ValueError):
    """A configuration this host's kernel cannot build; the message says what and why."""


def _netem(shaping: Shaping, rate_bps: int | None, mtu: int) -> Netem | None:
    if not shaping.needs_netem:
        return None
    netem = netem_for(
        shaping.delay_us or 0,
        shaping.jitter_us or 0,
        shaping.loss_ppm or 0,
        rate_bps=rate_bps or UNLIMITED_BPS,
        mtu=mtu,
    )
    if shaping.queue_pkts:
        netem = replace(netem, limit_packets=shaping.queue_pkts)
    return netem


def _htb(
    namespace: str,
    ifname: str,
    mtu: int,
    default: Shaping,
    classes: list[tuple[Shaping, tuple[ipaddress.IPv4Address, ...]]],
    match: str,
    wakeup_us: int,
) -> Iterator[KernelObject]:
    """HTB root, a default class (1:1) with ``default``, one class per peer group with
    u32 filters on the peers' addresses (``match`` "src" or "dst"), NetEm under a class
    where it asks for delay, jitter or loss."""
    yield Qdisc(namespace, ifname, Htb(default_minor=1))
    groups: list[tuple[Shaping, tuple[ipaddress.IPv4Address, ...]]] = [(default, ()), *classes]
    handles = iter(range(1, 0x1000))  # u32 node handles of this device's filters
    for n, (shaping, peers) in enumerate(groups, start=1):
        classid = 0x10000 | n
        rate = shaping.rate_bps or default.rate_bps or UNLIMITED_BPS
        yield _htb_class(namespace, ifname, classid, rate, mtu, wakeup_us)
        netem = _netem(shaping, rate, mtu)
        if netem is not None:
            yield Qdisc(namespace, ifname, netem, handle=(0x10 + n) << 16, parent=classid)
        for peer in peers:
            handle = next(handles, None)
            if handle is None:
                raise RenderError(f"{namespace}/{ifname} has more than 4095 shaped peers")
            prefix = ipaddress.IPv4Network(f"{peer}/32")
            yield U32Filter(
                namespace,
                ifname,
                flowid=classid,
                handle=handle,
                src=prefix if match == "src" else None,
                dst=prefix if match == "dst" else None,
            )


def _egress_objects(namespace: str, port: Port, wakeup_us: int) -> Iterator[KernelObject]:
    """Shaping of the traffic towards the VM, on its port in dom0: TBF with NetEm as its
    child; with per-pair classes, HTB on the peers' source addresses."""
    egress = port.egress
    if port.classes:
        classes = [(c.egress, c.peers) for c in port.classes]
        yield from _htb(namespace, port.vif, port.mtu, egress, classes, "src", wakeup_us)
        return
    netem = _netem(egress, egress.rate_bps, port.mtu)
    if egress.rate_bps:
        tbf = tbf_for_rate(egress.rate_bps, mtu=port.mtu, wakeup_us=wakeup_us)
        yield from tbf_with_netem(namespace, port.vif, tbf, netem)
    elif netem is not None:
        yield Qdisc(namespace, port.vif, netem)


def _htb_class(
    namespace: str, ifname: str, classid: int, rate: int, mtu: int, wakeup_us: int
) -> HtbClass:
    burst = htb_burst_bytes(rate, mtu, wakeup_us)
    return HtbClass(namespace, ifname, classid, rate, rate, burst, burst)


def _ingress_objects(namespace: str, port: Port, wakeup_us: int) -> Iterator[KernelObject]:
    """Shaping of the traffic the VM sends: everything the port receives is redirected to
    an IFB device in dom0 whose qdisc shapes it (TBF, or HTB on the peers' addresses)."""
    classes = [(c.ingress, c.peers) for c in port.classes if c.ingress.rate_bps]
    if not port.ingress.rate_bps and not classes:
        return
    ifb_alias = alias(port.topology, "ifb", port.vm, port.network)
    if not classes:
        assert port.ingress.rate_bps is not None
        tbf = tbf_for_rate(port.ingress.rate_bps, mtu=port.mtu, wakeup_us=wakeup_us)
        yield from ifb_ingress(namespace, port.vif, port.ifb, ifb_alias, tbf, mtu=port.mtu)
        return
    yield Link(namespace, port.ifb, LinkKind.IFB, alias=ifb_alias, mtu=port.mtu)
    yield Qdisc.ingress(namespace, port.vif)
    yield MirredRedirect(namespace, port.vif, port.ifb)
    yield from _htb(namespace, port.ifb, port.mtu, port.ingress, classes, "dst", wakeup_us)


def render_host(config: HostConfig) -> list[KernelObject]:
    """The kernel objects of one topology on one host."""
    topology, dom0 = config.topology, config.dom0
    wakeup_us = EMULATED_CPU_WAKEUP_US if config.emulated_cpu else DEFAULT_WAKEUP_US
    objects: list[KernelObject] = []
    if dom0:
        objects.append(Namespace(dom0))
    for segment in config.segments:
        objects.append(
            Link(
                dom0,
                segment.bridge,
                LinkKind.BRIDGE,
                alias(topology, "net", segment.network),
                mtu=segment.mtu,
            )
        )
        if segment.tunnel is None:
            continue
        if segment.encap is Encap.VLAN:
            if segment.underlay is None:
                raise RenderError(f"network '{segment.network}': no underlay interface to trunk on")
            objects.append(
                Link(
                    dom0,
                    segment.tunnel,
                    LinkKind.VLAN,
                    alias(topology, "vlan", segment.network),
                    mtu=segment.mtu,
                    master=segment.bridge,
                    vlan=Vlan(segment.segment_id, segment.underlay),
                )
            )
            continue
        objects.append(
            Link(
                dom0,
                segment.tunnel,
                LinkKind.VXLAN,
                alias(topology, "vxlan", segment.network),
                mtu=segment.mtu,
                master=segment.bridge,
                vxlan=Vxlan(vni=segment.segment_id, local=segment.local, underlay=segment.underlay),
            )
        )
        for remote in segment.remotes:
            objects.append(FdbEntry(dom0, segment.tunnel, remote))
        for mac, remote in segment.fdb:
            objects.append(FdbEntry(dom0, segment.tunnel, remote, mac))
    domains = config.domain_vms
    for port in config.ports:
        shaped = port.shaped
        if port.vm in domains:
            # the VM is a libvirt domain: its port is the domain's tap (libvirt creates
            # it; the engine adopts it: marks, plugs and shapes it); what is inside the
            # VM is the guest's, set through its guest agent
            objects.append(
                Link(
                    dom0,
                    port.vif,
                    LinkKind.TAP,
                    alias(topology, "port", port.vm, port.network),
                    mtu=port.mtu,
                    master=port.bridge,
                    up=port.up,
                )
            )
            objects.extend(_egress_objects(dom0, port, wakeup_us))
            objects.extend(_ingress_objects(dom0, port, wakeup_us))
            continue
        objects.append(
            Link(
                dom0,
                port.vif,
                LinkKind.VETH,
                alias(topology, "port", port.vm, port.network),
                mtu=port.mtu,
                master=port.bridge,
                peer=VethPeer(port.vm_namespace, port.ifname),
                offloads=False if shaped else None,
                up=port.up,
            )
        )
        objects.append(
            Link(
                port.vm_namespace,
                port.ifname,
                LinkKind.VETH,
                alias(topology, "vif", port.vm, port.network),
                mtu=port.mtu,
                mac=port.mac,
                peer=VethPeer(dom0, port.vif),
                offloads=False if shaped else None,
            )
        )
        objects.append(Address(port.vm_namespace, port.ifname, port.ip))
        objects.extend(_egress_objects(dom0, port, wakeup_us))
        objects.extend(_ingress_objects(dom0, port, wakeup_us))
    ports_of: dict[str, list[Port]] = {}
    for port in config.ports:
        ports_of.setdefault(port.vm, []).append(port)
    for vm in config.vms:
        if vm.domain is not None:
            continue
        objects.append(Namespace(vm.namespace))
        if vm.forward:
            objects.append(Sysctl(vm.namespace, "net.ipv4.ip_forward", "1"))
        for route in vm.routes:
            dev = next(
                (p.ifname for p in ports_of.get(vm.vm, []) if route.via in p.ip.network), None
            )
            if dev is None:
                raise RenderError(f"route of VM '{vm.vm}' via {route.via}: no interface reaches it")
            objects.append(Route(vm.namespace, route.to, dev, via=route.via))
    mtu_of = {s.network: s.mtu for s in config.segments}
    for nat in config.nats:
        objects.extend(_nat_objects(config, nat, mtu_of.get(nat.network, 1500)))
    if dom0 == ROOT_NAMESPACE:
        # a real host's root namespace, shared with everything else on it: IPv6 off on
        # each link netmanager creates or adopts there (no autoconfiguration, router
        # solicitation or DAD onto experiment networks), the host's own setting untouched
        objects = [
            replace(o, ipv6=False) if isinstance(o, Link) and o.namespace == dom0 else o
            for o in objects
        ]
    return objects


def _nat_objects(config: HostConfig, nat: Nat, mtu: int) -> Iterator[KernelObject]:
    """An outbound-only NAT gateway: a namespace with one leg on the network's bridge
    (holding the network's gateway address) and one in the emulated outside world."""
    if not nat.external_namespace or nat.uplink_address is None:
        raise RenderError(
            f"network '{nat.network}' asks for outbound access: only hosts emulated on "
            "this machine have an emulated outside world to reach"
        )
    topology, dom0, ns = config.topology, config.dom0, nat.namespace
    yield Namespace(ns)
    yield Link(
        dom0,
        nat.inside,
        LinkKind.VETH,
        alias(topology, "nat", nat.network),
        mtu=mtu,
        master=nat.bridge,
        peer=VethPeer(ns, "eth0"),
    )
    yield Link(
        ns,
        "eth0",
        LinkKind.VETH,
        alias(topology, "nat-inside", nat.network),
        mtu=mtu,
        mac=nat.mac,
        peer=VethPeer(dom0, nat.inside),
    )
    yield Address(ns, "eth0", nat.address)
    yield Link(
        ns,
        "eth1",
        LinkKind.VETH,
        alias(topology, "nat-uplink", nat.network),
        peer=VethPeer(nat.external_namespace, nat.uplink),
    )
    yield Link(
        nat.external_namespace,
        nat.uplink,
        LinkKind.VETH,
        alias(topology, "uplink", nat.network),
        master=SWITCH_BRIDGE,
        peer=VethPeer(ns, "eth1"),
    )
    yield Address(ns, "eth1", nat.uplink_address)
    yield Route(ns, ipaddress.IPv4Network("0.0.0.0/0"), "eth1", via=EXTERNAL_HOST.ip)
    yield Sysctl(ns, "net.ipv4.ip_forward", "1")


def render_infrastructure(infra: Infrastructure) -> list[KernelObject]:
    """The emulated physical environment: host and switch namespaces, underlay links."""
    objects: list[KernelObject] = [Namespace(ns) for ns in infra.host_namespaces]
    switches = {ns: bridge for ns, bridge in infra.switch_namespaces}
    for ns, bridge in infra.switch_namespaces:
        objects.append(Namespace(ns))
        mtus = [
            link.mtu for link in infra.links if link.b_namespace == ns or link.a_namespace == ns
        ] + [nic.mtu for guest in infra.guests for nic in guest.nics if nic.switch_namespace == ns]
        objects.append(
            Link(
                ns, bridge, LinkKind.BRIDGE, alias(INFRA, "switch", ns), mtu=min(mtus, default=1500)
            )
        )
    for link in infra.links:
        ends = ((link.a_namespace, link.a_ifname), (link.b_namespace, link.b_ifname))
        for (ns, ifname), (peer_ns, peer_ifname) in (ends, ends[::-1]):
            objects.append(
                Link(
                    ns,
                    ifname,
                    LinkKind.VETH,
                    alias(INFRA, "underlay", ns, ifname),
                    mtu=link.mtu,
                    master=switches.get(ns),
                    peer=VethPeer(peer_ns, peer_ifname),
                )
            )
        if link.a_address is not None:
            objects.append(Address(link.a_namespace, link.a_ifname, link.a_address))
        for ns, ifname in ((link.a_namespace, link.a_ifname), (link.b_namespace, link.b_ifname)):
            objects.append(Qdisc(ns, ifname, tbf_for_rate(link.capacity_bps, mtu=link.mtu)))
    for guest in infra.guests:
        objects.extend(render_guest_taps(guest))
    if infra.external_namespace:
        ns = infra.external_namespace
        objects.append(Namespace(ns))
        objects.append(Link(ns, SWITCH_BRIDGE, LinkKind.BRIDGE, alias(INFRA, "external", ns)))
        objects.append(Address(ns, SWITCH_BRIDGE, EXTERNAL_HOST))
    return objects


def render_guest_taps(guest: GuestHost) -> list[KernelObject]:
    """The switch side of a guest host's NICs: each tap (QEMU holds it; the engine adopts
    it) a port of its switch's bridge, shaped to the physical link's capacity towards the
    guest (TBF sized as for the underlay veths; the guest shapes the other direction on
    its own NIC)."""
    objects: list[KernelObject] = []
    for nic in guest.nics:
        ns = nic.switch_namespace
        objects.append(
            Link(
                ns,
                nic.tap,
                LinkKind.TAP,
                alias(INFRA, "tap", guest.host, nic.ifname),
                mtu=nic.mtu,
                master=nic.bridge,
            )
        )
        objects.append(Qdisc(ns, nic.tap, tbf_for_rate(nic.capacity_bps, mtu=nic.mtu)))
    return objects


def render_guest_underlay(guest: GuestHost) -> list[KernelObject]:
    """Inside a guest host, the host's own side of its NICs as real.xml describes them:
    each NIC (the guest's virtio device: adopted, never created) up with its MTU and
    address, shaped to the link's capacity away from the guest (the switch's tap shapes
    the other direction: :func:`render_guest_taps`).  In the guest's root namespace,
    which the infrastructure owner shares with everything else there."""
    objects: list[KernelObject] = []
    for nic in guest.nics:
        objects.append(
            Link(
                ROOT_NAMESPACE,
                nic.ifname,
                LinkKind.NIC,
                alias(INFRA, "underlay", guest.host, nic.ifname),
                mtu=nic.mtu,
            )
        )
        if nic.address is not None:
            objects.append(Address(ROOT_NAMESPACE, nic.ifname, nic.address))
        objects.append(
            Qdisc(ROOT_NAMESPACE, nic.ifname, tbf_for_rate(nic.capacity_bps, mtu=nic.mtu))
        )
    return objects


def render_all(
    configs: Iterable[HostConfig], infra: Infrastructure | None = None
) -> list[KernelObject]:
    objects = render_infrastructure(infra) if infra is not None else []
    for config in configs:
        objects.extend(render_host(config))
    return objects
