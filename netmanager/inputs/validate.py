"""Semantic checks of a model that passed the schema: references, addressing, routing, capacity.

Every check adds diagnostics and moves on, so that one run reports every problem.
The codes are listed in ``docs/errors.md``.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from netmanager.errors import Diagnostics, Loc
from netmanager.inputs.model import (
    VM,
    External,
    Model,
    Network,
    Protocol,
    Real,
    Shaping,
    Virtual,
)
from netmanager.inputs.units import format_memory


def choices(what: str, names: Iterable[str], limit: int = 12) -> str:
    """A hint listing the valid names (sorted, at most ``limit``)."""
    ordered = sorted(names)
    if not ordered:
        return f"there are no {what}"
    shown = ", ".join(ordered[:limit])
    more = f" (and {len(ordered) - limit} more)" if len(ordered) > limit else ""
    return f"known {what}: {shown}{more}"


def _duplicates(diags: Diagnostics, what: str, items: Iterable[tuple[str, Loc]]) -> None:
    seen: dict[str, Loc] = {}
    for name, loc in items:
        if name in seen:
            diags.error(
                "E301",
                loc,
                f"duplicate {what} name '{name}'",
                f"the first '{name}' is at {seen[name]}; names must be unique",
            )
        else:
            seen[name] = loc


# ---------------------------------------------------------------- real.xml


def check_real(real: Real, diags: Diagnostics, base_dir: Path | None = None) -> None:
    _duplicates(diags, "site", ((s.name, s.loc) for s in real.sites))
    _duplicates(
        diags,
        "host, switch or router",
        sorted(
            [(h.name, h.loc) for h in real.hosts] + [(n.name, n.loc) for n in real.nodes],
            key=lambda item: item[1],
        ),
    )
    sites = real.site_by_name
    for host in real.hosts:
        if host.site not in sites:
            diags.error(
                "E302",
                host.loc,
                f"host '{host.name}' is in unknown site '{host.site}'",
                choices("sites", sites),
            )
        if host.reserved_memory_mib >= host.memory_mib:
            diags.error(
                "E503",
                host.loc,
                f"host '{host.name}' reserves {format_memory(host.reserved_memory_mib)} of its "
                f"{format_memory(host.memory_mib)}: nothing is left for VMs",
                "lower reserved-memory or raise memory",
            )
        _duplicates(
            diags, f"interface of host '{host.name}'", ((i.name, i.loc) for i in host.interfaces)
        )
    for node in real.nodes:
        if node.site is not None and node.site not in sites:
            diags.error(
                "E302",
                node.loc,
                f"{node.kind} '{node.name}' is in unknown site '{node.site}'",
                choices("sites", sites),
            )
    for site in real.sites:
        for kind, ranges in (("VLAN", site.vlan_ranges), ("VNI", site.vni_ranges)):
            ordered = sorted(ranges, key=lambda r: r.first)
            for prev, cur in itertools.pairwise(ordered):
                if cur.first <= prev.last:
                    diags.warning(
                        "W501",
                        cur.loc,
                        f"{kind} range {cur.first}-{cur.last} of site '{site.name}' overlaps "
                        f"{prev.first}-{prev.last}",
                        "merge the ranges",
                    )
    addresses: dict[ipaddress.IPv4Address, Loc] = {}
    for host in real.hosts:
        for iface in host.interfaces:
            if iface.address is None:
                continue
            if iface.address.ip in addresses:
                diags.error(
                    "E411",
                    iface.loc,
                    f"underlay address {iface.address.ip} is already used at {addresses[iface.address.ip]}",
                    "give every underlay interface its own address",
                )
            addresses[iface.address.ip] = iface.loc
    _check_links(real, diags)
    _check_agents(real, diags, base_dir)
    pins: dict[tuple[str, str | None], tuple[str, Loc]] = {}
    for host in real.hosts:
        for pin in host.pinned:
            key = (pin.name, pin.topology)
            if key in pins:
                other, where = pins[key]
                diags.error(
                    "E305",
                    pin.loc,
                    f"VM '{pin.name}' is already running on host '{other}' ({where})",
                    "a VM runs on one host; name its topology if two topologies use the name",
                )
            else:
                pins[key] = (host.name, pin.loc)


def _check_links(real: Real, diags: Diagnostics) -> None:
    hosts = real.host_by_name
    nodes = real.node_by_name
    used: dict[str, Loc] = {}
    seen_pairs: dict[frozenset[str], Loc] = {}
    for link in real.links:
        ends_ok = True
        for end, attr in ((link.a, "a"), (link.b, "b")):
            if end.node in hosts:
                host = hosts[end.node]
                names = [i.name for i in host.interfaces]
                if end.interface is None:
                    diags.error(
                        "E302",
                        link.loc,
                        f"link end '{end}' ({attr}) is a host: name its interface",
                        f"write '{end.node}:{names[0] if names else 'eth0'}'"
                        + (f"; {choices('interfaces', names)}" if names else ""),
                    )
                    ends_ok = False
                elif end.interface not in names:
                    diags.error(
                        "E302",
                        link.loc,
                        f"host '{end.node}' has no interface '{end.interface}'",
                        choices(f"interfaces of '{end.node}'", names),
                    )
                    ends_ok = False
                else:
                    key = str(end)
                    if key in used:
                        diags.error(
                            "E307",
                            link.loc,
                            f"interface '{key}' is already linked at {used[key]}",
                            "an interface has one physical link; put a switch between",
                        )
                    used[key] = link.loc
            elif end.node in nodes:
                if end.interface is not None:
                    diags.error(
                        "E302",
                        link.loc,
                        f"'{end.node}' is a {nodes[end.node].kind}: its link end takes no interface",
                        f"write '{end.node}'",
                    )
            else:
                diags.error(
                    "E302",
                    link.loc,
                    f"link end '{end}' ({attr}) names unknown node '{end.node}'",
                    choices("hosts, switches and routers", list(hosts) + list(nodes)),
                )
                ends_ok = False
        if ends_ok and link.a.node == link.b.node:
            diags.error(
                "E307",
                link.loc,
                f"link from '{link.a.node}' to itself",
                "connect two different nodes",
            )
        pair = frozenset((str(link.a), str(link.b)))
        if (
            ends_ok
            and pair in seen_pairs
            and len(pair) == 2
            and all(e.node in nodes for e in (link.a, link.b))
        ):
            diags.error(
                "E307",
                link.loc,
                f"duplicate link {link.name}",
                f"the first is at {seen_pairs[pair]}",
            )
        seen_pairs.setdefault(pair, link.loc)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long for the file system, a directory we may not enter, ...
        return False


def _check_agents(real: Real, diags: Diagnostics, base_dir: Path | None) -> None:
    endpoints: dict[tuple[str, int], str] = {}
    missing: set[Path] = set()
    for host in real.hosts:
        agent = host.agent
        if not host.emulated and not agent.port:
            diags.error(
                "E310",
                host.loc,
                f"host '{host.name}' is a real libvirt host (hypervisor '{host.uri}'): netmanager "
                "reaches its agent, it does not start it, and real.xml gives no port for it",
                f'give <agent address="..." port="..."/> inside <host name="{host.name}">: '
                "where its netmanager-agent service listens",
            )
        if agent.port:
            key = (agent.address, agent.port)
            if key in endpoints:
                diags.error(
                    "E309",
                    agent.loc,
                    f"agents of '{endpoints[key]}' and '{host.name}' both listen on "
                    f"{agent.address}:{agent.port}",
                    "give each agent its own port",
                )
            endpoints[key] = host.name
        credentials = agent.credentials or real.credentials
        if credentials is None:
            continue
        where = agent.loc if agent.credentials else real.credentials_loc
        path = Path(credentials)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        if not _is_file(path) and (agent.credentials or path not in missing):
            missing.add(path)
            diags.error(
                "E308",
                where,
                f"credentials file '{credentials}' of host '{host.name}' does not exist"
                if agent.credentials
                else f"credentials file '{credentials}' of <snmp> (for every agent without its "
                "own) does not exist",
                f"create it (TOML: [read] community, [write] user, auth_key, priv_key ...); "
                f"looked for {path}",
            )


# ---------------------------------------------------------------- virtual.xml


def _shaping_checks(shaping: Shaping | None, diags: Diagnostics) -> None:
    if shaping is None:
        return
    if shaping.jitter_us and not shaping.delay_us:
        diags.error(
            "E520",
            shaping.loc,
            "jitter without a latency",
            "give a latency the jitter varies around",
        )
    elif shaping.jitter_us and shaping.delay_us and shaping.jitter_us > shaping.delay_us:
        diags.warning(
            "W520",
            shaping.loc,
            "jitter above the latency: packets will be reordered and some delays clipped at zero",
            "keep the jitter below the latency",
        )
    if shaping.loss_ppm == 1_000_000:
        diags.warning(
            "W521", shaping.loc, "100% loss: nothing will pass", "use a rule to cut traffic"
        )


def _host_address(address: ipaddress.IPv4Address, cidr: ipaddress.IPv4Network) -> bool:
    """Whether an address may be given to a host of a network (not its network or broadcast)."""
    if address not in cidr:
        return False
    return cidr.prefixlen >= 31 or address not in (cidr.network_address, cidr.broadcast_address)


def check_virtual(virtual: Virtual, diags: Diagnostics) -> None:
    _duplicates(diags, "network", ((n.name, n.loc) for n in virtual.networks))
    _duplicates(diags, "VM", ((v.name, v.loc) for v in virtual.vms))
    networks: dict[str, Network] = {}
    for n in virtual.networks:
        networks.setdefault(n.name, n)  # a duplicate is reported; references mean the first
    for net in virtual.networks:
        _shaping_checks(net.shaping, diags)
        if net.gateway is not None:
            if net.gateway not in net.cidr:
                diags.error(
                    "E404",
                    net.loc,
                    f"gateway {net.gateway} is outside network '{net.name}' ({net.cidr})",
                    f"pick an address in {net.cidr}",
                )
            elif net.cidr.prefixlen < 31 and net.gateway in (
                net.cidr.network_address,
                net.cidr.broadcast_address,
            ):
                diags.error(
                    "E404",
                    net.loc,
                    f"gateway {net.gateway} is the {'network' if net.gateway == net.cidr.network_address else 'broadcast'} "
                    f"address of '{net.name}'",
                    "pick a host address",
                )
        if net.external is External.OUTBOUND and net.gateway is None:
            diags.error(
                "E412",
                net.loc,
                f"network '{net.name}' asks for outbound access but names no gateway",
                'add gateway="ADDRESS": netmanager\'s NAT gateway takes that address',
            )

    ips: dict[tuple[str, ipaddress.IPv4Address], str] = {}
    macs: dict[tuple[str, str], str] = {}
    for vm in virtual.vms:
        seen_networks: set[str] = set()
        for iface in vm.interfaces:
            _shaping_checks(iface.shaping, diags)
            found = networks.get(iface.network)
            if found is None:
                diags.error(
                    "E302",
                    iface.loc,
                    f"VM '{vm.name}' has an interface in unknown network '{iface.network}'",
                    choices("networks", networks),
                )
                continue
            net = found
            if iface.network in seen_networks:
                diags.error(
                    "E409",
                    iface.loc,
                    f"VM '{vm.name}' has two interfaces in network '{iface.network}'",
                    "give a VM one interface per network",
                )
            seen_networks.add(iface.network)
            ip = iface.ip.ip
            if ip not in net.cidr:
                diags.error(
                    "E403",
                    iface.loc,
                    f"address {ip} of VM '{vm.name}' is outside network '{net.name}' ({net.cidr})",
                    f"pick an address in {net.cidr}",
                )
                continue
            if net.cidr.prefixlen < 31 and ip in (
                net.cidr.network_address,
                net.cidr.broadcast_address,
            ):
                diags.error(
                    "E403",
                    iface.loc,
                    f"address {ip} of VM '{vm.name}' is the "
                    f"{'network' if ip == net.cidr.network_address else 'broadcast'} address of '{net.name}'",
                    "pick a host address",
                )
            key = (net.name, ip)
            if key in ips:
                diags.error(
                    "E401",
                    iface.loc,
                    f"address {ip} of VM '{vm.name}' is already used by VM '{ips[key]}' in network '{net.name}'",
                    "give every interface in a network its own address",
                )
            else:
                ips[key] = vm.name
            if iface.mac is not None:
                mkey = (net.name, iface.mac)
                if mkey in macs:
                    diags.error(
                        "E402",
                        iface.loc,
                        f"MAC {iface.mac} of VM '{vm.name}' is already used by VM '{macs[mkey]}' in network '{net.name}'",
                        "give every interface its own MAC, or leave mac out to have one derived",
                    )
                else:
                    macs[mkey] = vm.name

    holders = {(net, ip): vm for (net, ip), vm in ips.items()}
    vm_by_name = virtual.vm_by_name
    for net in virtual.networks:
        if net.gateway is None or not _host_address(net.gateway, net.cidr):
            continue  # no gateway, or one reported as E404 above
        holder = holders.get((net.name, net.gateway))
        if net.external is External.OUTBOUND:
            if holder is not None:
                diags.error(
                    "E413",
                    net.loc,
                    f"gateway {net.gateway} of '{net.name}' is netmanager's NAT gateway, but VM "
                    f"'{holder}' has that address",
                    "give the VM another address or the network another gateway",
                )
        elif holder is None:
            diags.error(
                "E408",
                net.loc,
                f"no VM of network '{net.name}' has its gateway address {net.gateway}",
                'give a forwarding VM (forward="true") that address, or drop the gateway',
            )
        elif not vm_by_name[holder].forward:
            diags.warning(
                "W408",
                net.loc,
                f"gateway {net.gateway} of '{net.name}' is VM '{holder}', which does not forward",
                f"set forward=\"true\" on VM '{holder}' if it should route",
            )

    _check_pairs(virtual, diags)
    _check_rules(virtual, diags)
    _check_routes(virtual, diags, holders)
    _check_overlaps(virtual, diags)
    _check_schedule(virtual, diags)


#: how many timed changes a schedule may come to, repeated events and traces included
MAX_SCHEDULED = 1_000_000


def schedule_target(virtual: Virtual, target: str) -> list[tuple[str, str, str]] | str:
    """The (VM, network, peer) ports a schedule's target names: a network, VM:NETWORK or
    a VM (peer ""), or a ``<link>`` pair VM1~VM2 (each VM's interfaces in the networks
    of the pair, with the other as peer); or why it names none."""
    if "~" in target:
        a, _, b = target.partition("~")
        for name in (a, b):
            if name not in virtual.vm_by_name:
                return f"no VM '{name}'"
        pairs = [p for p in virtual.pairs if {p.a, p.b} == {a, b} and a != b]
        if not pairs:
            return f"virtual.xml gives no <link> between '{a}' and '{b}'"
        ports = []
        for pair in pairs:
            for one, peer in ((a, b), (b, a)):
                shared = {i.network for i in virtual.vm_by_name[peer].interfaces}
                ports += [
                    (one, i.network, peer)
                    for i in virtual.vm_by_name[one].interfaces
                    if i.network in shared and pair.network in (None, i.network)
                ]
        return sorted(set(ports))
    if ":" in target:
        vm_name, network = target.split(":", 1)
        vm = virtual.vm_by_name.get(vm_name)
        if vm is None:
            return f"no VM '{vm_name}'"
        if vm.interface_in(network) is None:
            return f"VM '{vm_name}' has no interface in network '{network}'"
        return [(vm_name, network, "")]
    if target in virtual.network_by_name:
        return [(vm.name, i.network, "") for vm, i in virtual.members(target)]
    vm = virtual.vm_by_name.get(target)
    if vm is not None:
        return [(vm.name, i.network, "") for i in vm.interfaces]
    return f"no network or VM '{target}'"


def _check_schedule(virtual: Virtual, diags: Diagnostics) -> None:
    schedule = virtual.schedule
    if schedule is None:
        return
    total = 0
    names = sorted(virtual.network_by_name) + sorted(virtual.vm_by_name)
    targets = [(e.target, e.loc) for e in schedule.events]
    targets += [(t.target, t.loc) for t in schedule.traces]
    for target, loc in targets:
        found = schedule_target(virtual, target)
        if isinstance(found, str):
            diags.error(
                "E224",
                loc,
                f"target '{target}': {found}",
                "a network, VM:NETWORK, a VM or a <link> pair VM1~VM2; " + choices("names", names),
            )
    for event in schedule.events:
        if "~" in event.target and event.values.up is not None:
            diags.error(
                "E224",
                event.loc,
                f"target '{event.target}': a <link> pair has no state of its own to take "
                "down or up",
                "take a VM's interface down instead (VM:NETWORK)",
            )
    _check_migrations(virtual, diags)
    for event in schedule.events:
        total += len(event.times(MAX_SCHEDULED + 1))
    total += sum(len(t.rows) for t in schedule.traces)
    if total > MAX_SCHEDULED:
        diags.error(
            "E225",
            schedule.loc,
            f"the schedule comes to more than {MAX_SCHEDULED} timed changes",
            "fewer repeats, or a shorter trace",
        )


def _check_migrations(virtual: Virtual, diags: Diagnostics) -> None:
    """A scheduled move names a VM of virtual.xml (and a measuring peer that shares a
    network with it); one VM's moves never start at the same time.  Its host is
    real.xml's: checked when the schedule starts (E777)."""
    schedule = virtual.schedule
    assert schedule is not None
    vms = virtual.vm_by_name
    starts: dict[tuple[str, int], Loc] = {}
    for move in schedule.migrations:
        if move.vm not in vms:
            diags.error(
                "E224",
                move.loc,
                f"migrate names unknown VM '{move.vm}'",
                choices("VMs", sorted(vms)),
            )
            continue
        if move.peer is not None:
            shared = {i.network for i in vms[move.vm].interfaces}
            peer = vms.get(move.peer)
            if peer is None or move.peer == move.vm:
                diags.error(
                    "E224",
                    move.loc,
                    f"migrate's peer '{move.peer}' is not another VM of virtual.xml",
                    choices("VMs", sorted(set(vms) - {move.vm})),
                )
            elif not shared & {i.network for i in peer.interfaces}:
                diags.error(
                    "E224",
                    move.loc,
                    f"migrate's peer '{move.peer}' shares no network with VM '{move.vm}'",
                    "name a VM on one of its networks: " + ", ".join(sorted(shared)),
                )
        for at in move.times():
            first = starts.setdefault((move.vm, at), move.loc)
            if first is not move.loc:
                diags.error(
                    "E226",
                    move.loc,
                    f"VM '{move.vm}' is moved twice at {at / 1e6:g} s",
                    f"the other move is at line {first.line}: give them different times",
                )


def _check_pairs(virtual: Virtual, diags: Diagnostics) -> None:
    vms = virtual.vm_by_name
    seen: dict[tuple[frozenset[str], str], Loc] = {}
    for pair in virtual.pairs:
        _shaping_checks(pair.shaping, diags)
        missing = [n for n in (pair.a, pair.b) if n not in vms]
        for name in missing:
            diags.error("E302", pair.loc, f"link names unknown VM '{name}'", choices("VMs", vms))
        if missing:
            continue
        if pair.a == pair.b:
            diags.error(
                "E522", pair.loc, f"link from VM '{pair.a}' to itself", "name two different VMs"
            )
            continue
        shared = sorted(
            {i.network for i in vms[pair.a].interfaces}
            & {i.network for i in vms[pair.b].interfaces}
        )
        network = pair.network
        if network is None:
            if not shared:
                diags.error(
                    "E521",
                    pair.loc,
                    f"VMs '{pair.a}' and '{pair.b}' share no network",
                    "shaping between two VMs applies inside one network they are both in",
                )
                continue
            if len(shared) > 1:
                diags.error(
                    "E521",
                    pair.loc,
                    f"VMs '{pair.a}' and '{pair.b}' share networks {', '.join(shared)}: say which",
                    f'add network="{shared[0]}" (or another of them)',
                )
                continue
            network = shared[0]
        elif network not in shared:
            diags.error(
                "E521",
                pair.loc,
                f"VMs '{pair.a}' and '{pair.b}' are not both in network '{network}'",
                choices("shared networks", shared),
            )
            continue
        if pair.shaping.empty:
            diags.warning(
                "W522",
                pair.loc,
                "link without shaping has no effect",
                "add bandwidth, latency, jitter or loss",
            )
        key = (frozenset((pair.a, pair.b)), network)
        if key in seen:
            diags.error(
                "E301",
                pair.loc,
                f"duplicate link {pair.a}–{pair.b}",
                f"the first is at {seen[key]}",
            )
        seen.setdefault(key, pair.loc)


def _check_rules(virtual: Virtual, diags: Diagnostics) -> None:
    names = set(virtual.network_by_name) | set(virtual.vm_by_name)
    for rule in virtual.rules:
        for selector, attr in ((rule.src, "from"), (rule.dst, "to")):
            if selector != "*" and selector not in names:
                diags.error(
                    "E306",
                    rule.loc,
                    f"rule {attr}='{selector}' names no network or VM",
                    choices("networks and VMs", names) + "; '*' means any",
                )
        if rule.ports and rule.protocol not in (Protocol.TCP, Protocol.UDP):
            diags.error(
                "E523",
                rule.loc,
                f"ports need protocol tcp or udp (the rule says '{rule.protocol}')",
                'add protocol="tcp" or protocol="udp"',
            )


def _default_gateway(vm: VM, virtual: Virtual) -> ipaddress.IPv4Address | None:
    """The implicit default route of a VM: its first network with a gateway that is not itself."""
    for iface in vm.interfaces:
        net = virtual.network_by_name.get(iface.network)
        if net is not None and net.gateway is not None and net.gateway != iface.ip.ip:
            return net.gateway
    return None


def next_hop(
    vm: VM, virtual: Virtual, dest: ipaddress.IPv4Address
) -> ipaddress.IPv4Address | str | None:
    """Where ``vm`` sends a packet for ``dest``: 'local' when connected, an address, or None."""
    best: tuple[int, ipaddress.IPv4Address | str] | None = None
    for iface in vm.interfaces:
        if dest in iface.ip.network:
            best = (iface.ip.network.prefixlen, "local")
    for route in vm.routes:
        if dest in route.to and (best is None or route.to.prefixlen > best[0]):
            best = (route.to.prefixlen, route.via)
    if best is None:
        gateway = _default_gateway(vm, virtual)
        return gateway
    return best[1]


def _check_routes(
    virtual: Virtual, diags: Diagnostics, holders: dict[tuple[str, ipaddress.IPv4Address], str]
) -> None:
    vms = virtual.vm_by_name
    by_address: dict[ipaddress.IPv4Address, str] = {ip: vm for (_, ip), vm in holders.items()}
    for vm in virtual.vms:
        for route in vm.routes:
            own = {i.ip.ip for i in vm.interfaces}
            if route.via in own:
                diags.error(
                    "E406",
                    route.loc,
                    f"route via {route.via} points at VM '{vm.name}' itself",
                    "name another VM's address",
                )
                continue
            if not any(
                route.via in i.ip.network
                for i in vm.interfaces
                if i.network in virtual.network_by_name
            ):
                diags.error(
                    "E406",
                    route.loc,
                    f"next hop {route.via} of VM '{vm.name}' is in none of its networks",
                    "the next hop must be on a network the VM has an interface in",
                )
                continue
            # Follow the packet hop by hop; a VM seen twice is a loop.
            dest = route.to.network_address
            if route.to.prefixlen == 0:
                continue  # a default route's destination is everything: loops show on specific routes
            path = [vm.name]
            hop: ipaddress.IPv4Address | str | None = route.via
            while isinstance(hop, ipaddress.IPv4Address):
                holder = by_address.get(hop)
                if holder is None or not vms[holder].forward:
                    break
                if holder in path:
                    diags.error(
                        "E407",
                        route.loc,
                        f"routing loop towards {route.to}: {' -> '.join([*path, holder])}",
                        "fix the routes of the gateways on this path so that one of them delivers",
                    )
                    break
                path.append(holder)
                hop = next_hop(vms[holder], virtual, dest)


def routed_components(virtual: Virtual) -> list[set[str]]:
    """Sets of networks joined by forwarding VMs (each set can route between its members)."""
    parent = {n.name: n.name for n in virtual.networks}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for vm in virtual.vms:
        if not vm.forward:
            continue
        nets = [i.network for i in vm.interfaces if i.network in parent]
        for other in nets[1:]:
            parent[find(other)] = find(nets[0])
    groups: dict[str, set[str]] = defaultdict(set)
    for name in parent:
        groups[find(name)].add(name)
    return list(groups.values())


def _check_overlaps(virtual: Virtual, diags: Diagnostics) -> None:
    networks = virtual.network_by_name
    for group in routed_components(virtual):
        members = sorted((networks[n] for n in group), key=lambda n: n.loc)
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                if a.cidr.overlaps(b.cidr):
                    diags.error(
                        "E405",
                        b.loc,
                        f"network '{b.name}' ({b.cidr}) overlaps '{a.name}' ({a.cidr}) and they are "
                        "routed to each other through a forwarding VM",
                        "give routed networks disjoint prefixes; identical addresses are fine "
                        "only in networks (or topologies) that never meet",
                    )


# ---------------------------------------------------------------- both


def check_placement(model: Model, diags: Diagnostics) -> None:
    real, virtual = model.real, model.virtual
    for host in real.hosts:
        for pin in host.pinned:
            if pin.topology == virtual.topology and pin.name not in virtual.vm_by_name:
                diags.warning(
                    "W302",
                    pin.loc,
                    f"VM '{pin.name}' pinned for topology '{virtual.topology}' is not in {virtual.file}",
                    "remove the pin or add the VM",
                )
    hosts = real.hosts
    if not hosts:
        return
    cpus = sum(v.cpus for v in virtual.vms)
    memory = sum(v.memory_mib for v in virtual.vms)
    count = len(virtual.vms)
    total_cpus = sum(h.cpus for h in hosts)
    total_memory = sum(h.vm_memory_mib for h in hosts)
    total_slots = sum(h.max_vms if h.max_vms is not None else count for h in hosts)
    loc = virtual.loc
    if cpus > total_cpus:
        diags.error(
            "E510",
            loc,
            f"the VMs need {cpus} CPUs; all hosts together have {total_cpus}",
            "add hosts, raise their cpus, or ask for fewer CPUs",
        )
    if memory > total_memory:
        diags.error(
            "E510",
            loc,
            f"the VMs need {format_memory(memory)} of memory; all hosts together give "
            f"{format_memory(total_memory)} to VMs",
            "add hosts or memory, or ask for less memory",
        )
    if count > total_slots:
        diags.error(
            "E510",
            loc,
            f"{count} VMs; all hosts together may run {total_slots}",
            "add hosts or raise max-vms",
        )
    biggest_cpus = max(h.cpus for h in hosts)
    biggest_memory = max(h.vm_memory_mib for h in hosts)
    for vm in virtual.vms:
        if vm.cpus > biggest_cpus or vm.memory_mib > biggest_memory:
            diags.error(
                "E512",
                vm.loc,
                f"VM '{vm.name}' ({vm.cpus} CPU{'s' if vm.cpus != 1 else ''}, "
                f"{format_memory(vm.memory_mib)}) fits on no host: "
                f"the largest has {biggest_cpus} CPUs and {format_memory(biggest_memory)} for VMs",
                "make the VM smaller or add a larger host",
            )


def check(model: Model, diags: Diagnostics, base_dir: Path | None = None) -> None:
    """All semantic checks of both inputs."""
    check_real(model.real, diags, base_dir)
    check_virtual(model.virtual, diags)
    check_placement(model, diags)
