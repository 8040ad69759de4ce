"""From the model and the mapping to what each host builds: pure functions.

``compile_topology`` gives one :class:`~netmanager.compile.hostconfig.HostConfig` per host the
topology touches; ``compile_infrastructure`` gives the emulated physical environment
(host and switch namespaces, underlay links) of the hosts emulated on this machine.
The semantics (see docs/design.md): a VM interface is the VM's access link; its bandwidth
holds in both directions, its latency, jitter and loss apply to packets delivered to the
VM, NetEm adds only what the physical path does not already give.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass, replace

from netmanager.compile.hostconfig import (
    GuestHost,
    GuestNic,
    Infrastructure,
    Nat,
    Policy,
    PolicyRule,
    Port,
    PortClass,
    Segment,
    Shaping,
    UnderlayLink,
    Vm,
    VmRoute,
    derived_mac,
    external_namespace,
    guest_mac,
    host_namespace,
    ifname,
    nat_namespace,
    policy_chain,
    switch_namespace,
    uplink_address,
    vm_namespace,
)
from netmanager.compile.hostconfig import (
    HostConfig as HostConfig,
)
from netmanager.hypervisor.spec import DomainSpec, DomainTemplate, DomainType
from netmanager.inputs.model import (
    VM,
    Action,
    Encap,
    External,
    Host,
    HypervisorKind,
    Model,
    PhysicalLink,
    Real,
    TemplateSource,
    Virtual,
)
from netmanager.inputs.model import (
    Shaping as ModelShaping,
)
from netmanager.inputs.validate import routed_components
from netmanager.mapping import Mapping

VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IP 20 + UDP 8 + VXLAN 8
ANY = ipaddress.IPv4Network("0.0.0.0/0")


def in_namespace(host: Host) -> bool:
    """Whether a host is emulated by a network namespace of this machine (its dom0): a
    netns host, or a libvirt host running libvirt's embedded driver there."""
    return host.hypervisor is HypervisorKind.NETNS or host.embedded_libvirt


def dom0_namespace(host: Host) -> str:
    """The namespace that plays a host's hypervisor domain; "" is the root namespace."""
    return host_namespace(host.name) if in_namespace(host) else ""


def domain_spec(vm: VM, ports: list[Port], netmanager_guest: DomainTemplate | None) -> DomainSpec:
    """The libvirt domain that is ``vm`` on a libvirt host: attached (no template), or
    defined from its template (source="netmanager": netmanager's own guest image, given
    as ``netmanager_guest`` with the VM's name and NICs on its kernel command line)."""
    template = None
    t = vm.template
    if t is not None:
        if t.source is TemplateSource.NETMANAGER:
            if netmanager_guest is None:
                raise ValueError(
                    f"VM '{vm.name}' asks for netmanager's guest image, which was not built"
                )
            words = [f"nm.hostname={vm.name}"]
            words += [f"nm.if={p.mac}={p.ifname}" for p in sorted(ports, key=lambda p: p.index)]
            template = replace(
                netmanager_guest,
                cmdline=" ".join([netmanager_guest.cmdline, *words]).strip(),
                domain_type=DomainType(t.domain_type),
                guest_agent=t.guest_agent,
            )
        else:
            template = DomainTemplate(
                kernel=t.kernel,
                initrd=t.initrd,
                cmdline=t.cmdline,
                image=t.image,
                image_format=t.image_format,
                domain_type=DomainType(t.domain_type),
                guest_agent=t.guest_agent,
            )
    return DomainSpec(
        name=vm.domain_name,
        template=template,
        memory_mib=vm.memory_mib,
        cpus=vm.cpus,
        macs=tuple(i.mac or "" for i in vm.interfaces),
    )


def vtep(host: Host) -> tuple[str, ipaddress.IPv4Address] | None:
    """The underlay interface and address a host's tunnels start from."""
    for iface in host.interfaces:
        if iface.address is not None:
            return iface.name, iface.address.ip
    return None


@dataclass(frozen=True)
class _Member:
    vm: VM
    index: int
    network: str
    ip: ipaddress.IPv4Interface
    mac: str
    host: str


def _members(model: Model, mapping: Mapping) -> dict[str, list[_Member]]:
    topology = model.topology
    by_network: dict[str, list[_Member]] = defaultdict(list)
    for vm in model.virtual.vms:
        host = mapping.placement[vm.name]
        for index, iface in enumerate(vm.interfaces):
            mac = iface.mac or derived_mac(topology, vm.name, iface.network)
            by_network[iface.network].append(_Member(vm, index, iface.network, iface.ip, mac, host))
    return by_network


def _network_mtu(real: Real, hosts: tuple[str, ...], encap: Encap) -> int:
    if len(hosts) < 2:
        return 1500
    mtus = []
    for name in hosts:
        host = real.host_by_name[name]
        found = vtep(host)
        iface = next((i for i in host.interfaces if found and i.name == found[0]), None)
        mtus.append(iface.mtu if iface else 1500)
    smallest = min(mtus)
    return smallest - VXLAN_OVERHEAD if encap is Encap.VXLAN else smallest


def _egress(shaping: ModelShaping | None, delay_us: int | None) -> Shaping:
    if shaping is None:
        return Shaping()
    return Shaping(
        rate_bps=shaping.rate_bps,
        delay_us=delay_us,
        jitter_us=shaping.jitter_us,
        loss_ppm=shaping.loss_ppm,
        queue_pkts=shaping.queue_pkts,
    )


def _ingress(shaping: ModelShaping | None) -> Shaping:
    if shaping is None or shaping.rate_bps is None:
        return Shaping()
    return Shaping(rate_bps=shaping.rate_bps, queue_pkts=shaping.queue_pkts)


def _delays(mapping: Mapping) -> dict[tuple[str, str], dict[str, int]]:
    """(vm, network) -> {source host: what NetEm adds for packets from there}."""
    found: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for budget in mapping.delays:
        found[(budget.vm, budget.network)][budget.to_host] = budget.netem_delay_us
    return found


def _port_classes(
    model: Model,
    mapping: Mapping,
    member: _Member,
    shaping: ModelShaping | None,
    delays: dict[str, int],
    members: list[_Member],
) -> tuple[Shaping, tuple[PortClass, ...]]:
    """The port's own egress shaping, and classes for sources whose delay differs."""
    own = delays.get(member.host, shaping.delay_us if shaping else None)
    egress = _egress(shaping, own)
    classes: list[PortClass] = []
    for source_host, delay in sorted(delays.items()):
        if source_host == member.host or delay == own:
            continue
        peers = tuple(
            sorted(
                m.ip.ip for m in members if m.host == source_host and m.vm.name != member.vm.name
            )
        )
        if peers:
            classes.append(
                PortClass(f"from {source_host}", peers, _egress(shaping, delay), Shaping())
            )
    virtual = model.virtual
    routes = {(p.a, p.b, p.network): p for p in mapping.pairs}
    for pair in virtual.pairs:
        if member.vm.name not in (pair.a, pair.b):
            continue
        peer_name = pair.b if member.vm.name == pair.a else pair.a
        network = pair.network or member.network
        if network != member.network:
            continue
        peer = next((m for m in members if m.vm.name == peer_name), None)
        if peer is None:
            continue
        route = routes.get((pair.a, pair.b, pair.network)) or routes.get((pair.a, pair.b, network))
        pair_delay = route.netem_delay_us if route is not None else pair.shaping.delay_us
        merged = pair.shaping.over(shaping)
        classes.append(
            PortClass(
                f"pair {peer_name}",
                (peer.ip.ip,),
                _egress(merged, pair_delay if pair.shaping.delay_us is not None else own),
                _ingress(merged),
            )
        )
    return egress, tuple(classes)


def _vm_routes(vm: VM, virtual: Virtual) -> tuple[VmRoute, ...]:
    routes = [VmRoute(r.to, r.via) for r in vm.routes]
    if not any(r.to.prefixlen == 0 for r in routes):
        for iface in vm.interfaces:
            net = virtual.network_by_name[iface.network]
            if net.gateway is not None and net.gateway != iface.ip.ip:
                routes.append(VmRoute(ANY, net.gateway))
                break
    return tuple(routes)


def _selector(virtual: Virtual, name: str) -> tuple[ipaddress.IPv4Network, ...]:
    if name == "*":
        return (ANY,)
    if name in virtual.network_by_name:
        return (virtual.network_by_name[name].cidr,)
    vm = virtual.vm_by_name[name]
    return tuple(ipaddress.IPv4Network(f"{i.ip.ip}/32") for i in vm.interfaces)


def _policies(virtual: Virtual, topology: str) -> dict[str, Policy]:
    """The rules for traffic entering each network's bridge from one of its VM ports."""
    component_of: dict[str, frozenset[str]] = {}
    for group in routed_components(virtual):
        for name in group:
            component_of[name] = frozenset(group)
    user = tuple(
        PolicyRule(
            action=r.action,
            src=_selector(virtual, r.src),
            dst=_selector(virtual, r.dst),
            protocol=r.protocol,
            ports=tuple((p.first, p.last) for p in r.ports),
            reason=f"rule {r.action} {r.src} -> {r.dst} ({r.loc})",
        )
        for r in virtual.rules
    )
    policies = {}
    for net in virtual.networks:
        rules = list(user)
        rules.append(
            PolicyRule(Action.ALLOW, (net.cidr,), (net.cidr,), reason=f"inside {net.name}")
        )
        for other in virtual.networks:
            if other.name == net.name or other.name not in component_of[net.name]:
                continue
            if net.isolated or other.isolated:
                continue
            rules.append(
                PolicyRule(
                    Action.ALLOW,
                    (net.cidr,),
                    (other.cidr,),
                    reason=f"{net.name} routed to {other.name}",
                )
            )
            rules.append(
                PolicyRule(
                    Action.ALLOW,
                    (other.cidr,),
                    (net.cidr,),
                    reason=f"{other.name} routed to {net.name}",
                )
            )
        if net.external is External.OUTBOUND:
            inside = tuple(sorted({n.cidr for n in virtual.networks}))
            rules.append(
                PolicyRule(Action.DENY, (ANY,), inside, reason="no other network of the topology")
            )
            rules.append(PolicyRule(Action.ALLOW, (net.cidr,), (ANY,), reason="outbound access"))
        rules.append(PolicyRule(Action.DENY, (ANY,), (ANY,), reason="isolation (fail closed)"))
        policies[net.name] = Policy(
            topology, net.name, policy_chain(topology, net.name), tuple(rules)
        )
    return policies


def compile_topology(
    model: Model, mapping: Mapping, netmanager_guest: DomainTemplate | None = None
) -> dict[str, HostConfig]:
    """What each host builds for this topology, by host name (only hosts it touches).

    A VM placed on a libvirt host is a domain (:func:`domain_spec`; ``netmanager_guest``
    is the template of netmanager's own guest image where a VM asks for it)."""
    real, virtual, topology = model.real, model.virtual, model.topology
    members = _members(model, mapping)
    network_hosts = {
        net.name: tuple(sorted({m.host for m in members.get(net.name, [])}))
        for net in virtual.networks
    }
    for net in virtual.networks:
        if net.external is External.OUTBOUND and not network_hosts[net.name]:
            network_hosts[net.name] = (sorted(real.host_by_name)[0],)
    delays = _delays(mapping)
    policies = _policies(virtual, topology)
    segments: dict[str, list[Segment]] = defaultdict(list)
    ports: dict[str, list[Port]] = defaultdict(list)
    vms: dict[str, list[Vm]] = defaultdict(list)
    nats: dict[str, list[Nat]] = defaultdict(list)
    for net in virtual.networks:
        hosts = network_hosts[net.name]
        segment = mapping.segments[net.name]
        mtu = _network_mtu(real, hosts, segment.encap)
        bridge = ifname("nb", topology, net.name)
        for host_name in hosts:
            host = real.host_by_name[host_name]
            tunnel = underlay = None
            local = None
            remotes: tuple[ipaddress.IPv4Address, ...] = ()
            fdb: tuple[tuple[str, ipaddress.IPv4Address], ...] = ()
            if len(hosts) > 1:
                own = vtep(host)
                if own is not None:
                    underlay, local = own
                others = {h: vtep(real.host_by_name[h]) for h in hosts if h != host_name}
                remotes = tuple(sorted(v[1] for v in others.values() if v is not None))
                fdb = tuple(
                    sorted(
                        (m.mac, v[1])
                        for m in members.get(net.name, [])
                        if m.host != host_name and (v := others.get(m.host)) is not None
                    )
                )
                if segment.encap is Encap.VXLAN:
                    tunnel = ifname("nx", topology, net.name)
                else:  # an 802.1Q trunk needs no tunnel endpoints: the switch forwards
                    sub = f"{underlay}.{segment.id}"
                    tunnel = sub if len(sub) <= 15 else ifname("nq", topology, net.name)
                    remotes, fdb = (), ()
            segments[host_name].append(
                Segment(
                    topology,
                    net.name,
                    segment.encap,
                    segment.id,
                    bridge,
                    mtu,
                    tunnel,
                    underlay,
                    local,
                    remotes,
                    fdb,
                )
            )
        if net.external is External.OUTBOUND and net.gateway is not None:
            host_name = hosts[0]
            nats[host_name].append(
                Nat(
                    topology=topology,
                    network=net.name,
                    namespace=nat_namespace(topology, net.name),
                    address=ipaddress.IPv4Interface(f"{net.gateway}/{net.cidr.prefixlen}"),
                    bridge=bridge,
                    inside=ifname("ng", topology, net.name),
                    mac=derived_mac(topology, "-nat-", net.name),
                    uplink=ifname("nu", topology, net.name, "uplink"),
                    uplink_address=uplink_address(topology, net.name),
                    external_namespace=external_namespace(),
                )
            )
    for net_name, net_members in sorted(members.items()):
        net = virtual.network_by_name[net_name]
        mtu = _network_mtu(real, network_hosts[net_name], mapping.segments[net_name].encap)
        for member in net_members:
            iface = member.vm.interfaces[member.index]
            shaping = virtual.interface_shaping(iface)
            egress, classes = _port_classes(
                model,
                mapping,
                member,
                shaping,
                delays.get((member.vm.name, net_name), {}),
                net_members,
            )
            ports[member.host].append(
                Port(
                    topology=topology,
                    vm=member.vm.name,
                    network=net.name,
                    index=member.index,
                    vif=ifname("nv", topology, member.vm.name, net.name),
                    ifname=f"eth{member.index}",
                    vm_namespace=vm_namespace(topology, member.vm.name),
                    mac=member.mac,
                    ip=member.ip,
                    mtu=mtu,
                    bridge=ifname("nb", topology, net.name),
                    ifb=ifname("ni", topology, member.vm.name, net.name),
                    egress=egress,
                    ingress=_ingress(shaping),
                    classes=classes,
                    forward=member.vm.forward,
                )
            )
    for vm in virtual.vms:
        host_name = mapping.placement[vm.name]
        libvirt = real.host_by_name[host_name].hypervisor is HypervisorKind.LIBVIRT
        vms[host_name].append(
            Vm(
                topology,
                vm.name,
                vm_namespace(topology, vm.name),
                _vm_routes(vm, virtual),
                vm.forward,
                domain=domain_spec(
                    vm, [p for p in ports[host_name] if p.vm == vm.name], netmanager_guest
                )
                if libvirt
                else None,
            )
        )
    result = {}
    touched = sorted(set(segments) | set(ports) | set(vms) | set(nats))
    for host_name in touched:
        host = real.host_by_name[host_name]
        here = {s.network for s in segments[host_name]}
        result[host_name] = HostConfig(
            topology=topology,
            host=host_name,
            dom0=dom0_namespace(host),
            segments=tuple(sorted(segments[host_name], key=lambda s: s.network)),
            ports=tuple(sorted(ports[host_name], key=lambda p: (p.vm, p.index))),
            vms=tuple(sorted(vms[host_name], key=lambda v: v.vm)),
            nats=tuple(nats[host_name]),
            policies=tuple(policies[n] for n in sorted(here)),
            emulated_cpu=host.hypervisor is HypervisorKind.GUEST,  # QEMU under TCG
        )
    return result


def compile_infrastructure(real: Real) -> Infrastructure:
    """The emulated physical environment of the hosts emulated on this machine.

    Every switch and router becomes a namespace with one bridge; every physical link with
    a namespace-emulated host at one end becomes a veth: the host's underlay interface in
    its namespace, the other end a port of the switch's bridge (or the other host's
    interface).  A guest host's link (``hypervisor="guest"``, always to a switch) becomes a
    virtio NIC of the guest named as the interface in real.xml, whose tap is a port of the
    switch's bridge (see :mod:`netmanager.guests.hosts`).
    """
    emulated = {h.name for h in real.hosts if in_namespace(h)}
    guests = {h.name for h in real.hosts if h.hypervisor is HypervisorKind.GUEST}
    if not emulated and not guests:
        return Infrastructure()
    switches = tuple(
        (switch_namespace(n.name), "br0") for n in sorted(real.nodes, key=lambda n: n.name)
    )
    links = []
    nics: dict[str, list[GuestNic]] = {g: [] for g in guests}
    for link in real.links:
        a, b = link.a, link.b
        if b.node in guests:
            a, b = b, a
        if a.node in guests:
            iface = next(i for i in real.host_by_name[a.node].interfaces if i.name == a.interface)
            nics[a.node].append(
                GuestNic(
                    ifname=iface.name,
                    mac=guest_mac(a.node, iface.name),
                    switch_namespace=switch_namespace(b.node),
                    bridge="br0",
                    tap=ifname("nq", a.node, iface.name),
                    capacity_bps=link.capacity_bps,
                    address=iface.address,
                    mtu=iface.mtu,
                )
            )
            continue
        if (
            a.node not in emulated
            and b.node not in emulated
            and not (a.node in real.node_by_name and b.node in real.node_by_name)
        ):
            continue
        if a.node not in emulated and b.node in emulated:
            a, b = b, a
        a_ns = host_namespace(a.node) if a.node in emulated else switch_namespace(a.node)
        b_ns = host_namespace(b.node) if b.node in emulated else switch_namespace(b.node)
        a_if = a.interface or ifname("nu", b.node, a.node)
        b_if = b.interface or ifname("nu", a.node, str(a), b.node)
        address = None
        mtu = 1500
        if a.node in emulated and a.interface is not None:
            iface = next(i for i in real.host_by_name[a.node].interfaces if i.name == a.interface)
            address, mtu = iface.address, iface.mtu
        links.append(UnderlayLink(a_ns, a_if, b_ns, b_if, link.capacity_bps, address, mtu))
    return Infrastructure(
        host_namespaces=tuple(host_namespace(h) for h in sorted(emulated)),
        switch_namespaces=switches,
        links=tuple(links),
        external_namespace=external_namespace(),
        guests=tuple(
            GuestHost(g, tuple(sorted(nics[g], key=lambda n: n.ifname))) for g in sorted(guests)
        ),
    )


def guest_link_problems(real: Real) -> list[tuple[PhysicalLink, str]]:
    """Physical links a guest host cannot have: every guest link ends at a switch, on a
    named underlay interface."""
    guests = {h.name for h in real.hosts if h.hypervisor is HypervisorKind.GUEST}
    out = []
    for link in real.links:
        for end, other in ((link.a, link.b), (link.b, link.a)):
            if end.node not in guests:
                continue
            if end.interface is None:
                out.append((link, f"the link {link.name} names no interface of guest '{end.node}'"))
            elif other.node not in real.node_by_name:
                out.append(
                    (
                        link,
                        f"the link {link.name} joins guest host '{end.node}' to '{other.node}', "
                        "not to a switch: guest hosts are wired through switches",
                    )
                )
    return out
