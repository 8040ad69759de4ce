"""From two XML files to a validated :class:`~netmanager.inputs.model.Model`.

Phases, each reporting all of its problems at once:

1. read: size, encoding, no DTD, well-formed, root and version, XSD (``xmlsource``);
2. build: values with units, addresses, names and ranges into frozen dataclasses;
3. check: cross references and meaning (``validate``).

``load`` raises one :class:`~netmanager.errors.NetmanagerError` with every error found;
warnings ride along on the model's side in ``LoadResult``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from lxml import etree

from netmanager.errors import Diagnostic, Diagnostics, Loc, NetmanagerError
from netmanager.inputs import units
from netmanager.inputs.model import (
    CAPABILITIES,
    VM,
    Action,
    AgentEndpoint,
    Encap,
    Endpoint,
    External,
    Host,
    HypervisorKind,
    IdRange,
    Interface,
    LinkValues,
    Model,
    Network,
    NetworkNode,
    NodeKind,
    PairShaping,
    PhysicalLink,
    PinnedVM,
    PortRange,
    Protocol,
    Real,
    Route,
    Rule,
    Schedule,
    ScheduledEvent,
    ScheduledMigration,
    Shaping,
    Site,
    TemplateSource,
    Trace,
    TraceDirection,
    TraceRow,
    TrapReceiver,
    UnderlayInterface,
    Virtual,
    VmTemplate,
)
from netmanager.inputs.validate import check, choices
from netmanager.inputs.xmlsource import NS_REAL, NS_VIRTUAL, Source, read

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
TOPOLOGY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
MAC_RE = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")
LIBVIRT_URI_RE = re.compile(r"[a-z][a-z0-9+.-]*://[^\s]*")

T = TypeVar("T")


@dataclass(frozen=True)
class LoadResult:
    model: Model
    warnings: tuple[Diagnostic, ...]


class _Builder:
    """Turns one parsed source into model objects, recording value errors."""

    def __init__(self, source: Source, namespace: str, diags: Diagnostics) -> None:
        self.source = source
        self.ns = namespace
        self.diags = diags

    def q(self, tag: str) -> str:
        return f"{{{self.ns}}}{tag}"

    def children(self, element: etree._Element, tag: str) -> list[etree._Element]:
        return list(element.iterchildren(self.q(tag)))

    def child(self, element: etree._Element, tag: str) -> etree._Element | None:
        found = self.children(element, tag)
        return found[0] if found else None

    def loc(self, element: etree._Element, attribute: str | None = None) -> Loc:
        return self.source.loc(element, attribute)

    def text(
        self, element: etree._Element, attribute: str, default: str | None = None
    ) -> str | None:
        value = element.get(attribute)
        return value.strip() if value is not None else default

    def name(
        self, element: etree._Element, attribute: str = "name", pattern: re.Pattern[str] = NAME_RE
    ) -> str:
        value = self.text(element, attribute) or ""
        if not pattern.fullmatch(value):
            limit = 32 if pattern is TOPOLOGY_RE else 63
            self.diags.error(
                "E204",
                self.loc(element, attribute),
                f"'{value}' is not a valid name",
                f"use letters, digits, '.', '_' and '-', starting with a letter or digit, "
                f"at most {limit} characters",
            )
        return value

    def convert(
        self,
        element: etree._Element,
        attribute: str,
        parse: Callable[[str], T],
        default: str | None = None,
    ) -> T | None:
        value = self.text(element, attribute, default)
        if value is None:
            return None
        try:
            return parse(value)
        except units.UnitError as exc:
            self.diags.error("E201", self.loc(element, attribute), str(exc), exc.hint)
        except ValueError as exc:
            self.diags.error("E202", self.loc(element, attribute), str(exc), _hint_for(attribute))
        return None

    def integer(
        self, element: etree._Element, attribute: str, default: int | None = None
    ) -> int | None:
        value = self.text(element, attribute)
        if value is None:
            return default
        return int(value)  # the schema has checked it is an integer

    def boolean(self, element: etree._Element, attribute: str, default: bool) -> bool:
        value = self.text(element, attribute)
        if value is None:
            return default
        return value in ("true", "1")

    def shaping(self, element: etree._Element | None) -> Shaping | None:
        if element is None:
            return None
        shaping = Shaping(
            rate_bps=self.convert(element, "bandwidth", units.parse_rate),
            delay_us=self.convert(element, "latency", units.parse_time),
            jitter_us=self.convert(element, "jitter", units.parse_time),
            loss_ppm=self.convert(element, "loss", units.parse_percent),
            queue_pkts=self.integer(element, "queue"),
            loc=self.loc(element),
        )
        return shaping


def _hint_for(attribute: str) -> str:
    return {
        "cidr": "write an IPv4 prefix with its length, e.g. 10.1.0.0/24, with no host bits set",
        "ip": "write an IPv4 address, e.g. 10.1.0.11 (optionally /24)",
        "address": "write an IPv4 address, with /prefix where an interface is meant",
        "gateway": "write an IPv4 address inside the network",
        "via": "write the IPv4 address of the next hop",
        "to": "write an IPv4 prefix such as 10.2.0.0/24, or 'default'",
    }.get(attribute, "check the value")


def _ipv4_network(text: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(text, strict=True)
    except ValueError as exc:
        if "/" not in text:
            raise ValueError(f"'{text}' is not an IPv4 prefix: the /length is missing") from exc
        if "has host bits set" in str(exc):
            raise ValueError(f"'{text}' has host bits set") from exc
        raise ValueError(f"'{text}' is not an IPv4 prefix") from exc


def _ipv4_address(text: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError as exc:
        raise ValueError(f"'{text}' is not an IPv4 address") from exc


def _ipv4_interface(text: str) -> ipaddress.IPv4Interface:
    try:
        return ipaddress.IPv4Interface(text)
    except ValueError as exc:
        raise ValueError(f"'{text}' is not an IPv4 address") from exc


# ---------------------------------------------------------------- real.xml


def _id_ranges(
    b: _Builder, element: etree._Element, tag: str, upper: int, code: str
) -> tuple[IdRange, ...]:
    kind = "VLAN id" if tag == "vlan-range" else "VNI"
    ranges = []
    for r in b.children(element, tag):
        first = b.integer(r, "first") or 0
        last = b.integer(r, "last") or 0
        loc = b.loc(r)
        if not (1 <= first <= upper) or not (1 <= last <= upper):
            bad = "first" if not (1 <= first <= upper) else "last"
            b.diags.error(
                code,
                b.loc(r, bad),
                f"{kind} {first if bad == 'first' else last} is out of bounds",
                f"a {kind} is from 1 to {upper}",
            )
            continue
        if first > last:
            b.diags.error(
                code,
                b.loc(r, "first"),
                f"{tag} {first}-{last} is empty: first is above last",
                "swap first and last",
            )
            continue
        ranges.append(IdRange(first, last, loc))
    return tuple(ranges)


def _hypervisor(b: _Builder, element: etree._Element) -> tuple[HypervisorKind, str | None]:
    value = b.text(element, "hypervisor") or ""
    if value in ("netns", "guest"):
        return HypervisorKind(value), None
    if LIBVIRT_URI_RE.fullmatch(value):
        return HypervisorKind.LIBVIRT, value
    b.diags.error(
        "E206",
        b.loc(element, "hypervisor"),
        f"unknown hypervisor '{value}'",
        "use 'netns' (a host emulated on this machine), 'guest' (a QEMU guest) or a libvirt "
        "URI such as 'qemu+ssh://host1/system'",
    )
    return HypervisorKind.NETNS, None


def _capabilities(b: _Builder, element: etree._Element) -> frozenset[str] | None:
    value = b.text(element, "capabilities")
    if value is None:
        return None
    found = frozenset(value.split())
    unknown = sorted(found - CAPABILITIES)
    if unknown:
        b.diags.error(
            "E207",
            b.loc(element, "capabilities"),
            f"unknown capability '{unknown[0]}'",
            "known capabilities: " + ", ".join(sorted(CAPABILITIES)),
        )
    return found & CAPABILITIES


def _endpoint(b: _Builder, element: etree._Element, attribute: str) -> Endpoint:
    value = b.text(element, attribute) or ""
    node, sep, iface = value.partition(":")
    if sep and not iface:
        b.diags.error(
            "E204",
            b.loc(element, attribute),
            f"link end '{value}' names no interface after ':'",
            "write HOST:INTERFACE, or the name of a switch or router",
        )
    return Endpoint(node, iface or None)


def build_real(source: Source, diags: Diagnostics) -> Real:
    b = _Builder(source, NS_REAL, diags)
    root = source.root
    credentials = None
    credentials_loc = source.loc(root)
    traps: list[TrapReceiver] = []
    snmp = b.child(root, "snmp")
    if snmp is not None:
        credentials = b.text(snmp, "credentials")
        credentials_loc = b.loc(snmp, "credentials")
        for t in b.children(snmp, "trap-receiver"):
            address = b.convert(t, "address", _ipv4_address)
            traps.append(
                TrapReceiver(str(address or ""), b.integer(t, "port", 162) or 162, b.loc(t))
            )
    sites = tuple(
        Site(
            name=b.name(s),
            vlan_ranges=_id_ranges(b, s, "vlan-range", 4094, "E501"),
            vni_ranges=_id_ranges(b, s, "vni-range", 16_777_215, "E502"),
            loc=b.loc(s),
        )
        for s in b.children(root, "site")
    )
    nodes = []
    for element in root.iterchildren(b.q("switch"), b.q("router")):
        kind = NodeKind(etree.QName(element).localname)
        site = b.text(element, "site")
        nodes.append(NetworkNode(b.name(element), kind, site, b.loc(element)))
    hosts = []
    for h in b.children(root, "host"):
        hypervisor, uri = _hypervisor(b, h)
        interfaces = tuple(
            UnderlayInterface(
                name=b.name(i),
                address=b.convert(i, "address", _ipv4_interface),
                mtu=b.integer(i, "mtu", 1500) or 1500,
                speed_bps=b.convert(i, "speed", units.parse_rate),
                loc=b.loc(i),
            )
            for i in b.children(h, "interface")
        )
        for element, i in zip(b.children(h, "interface"), interfaces, strict=True):
            if not 68 <= i.mtu <= 65535:
                diags.error(
                    "E208",
                    b.loc(element, "mtu"),
                    f"MTU {i.mtu} is out of bounds",
                    "an MTU is from 68 to 65535",
                )
        agent_element = b.child(h, "agent")
        agent = AgentEndpoint()
        if agent_element is not None:
            address = b.convert(agent_element, "address", _ipv4_address, "127.0.0.1")
            agent = AgentEndpoint(
                address=str(address or "127.0.0.1"),
                port=b.integer(agent_element, "port", 0) or 0,
                credentials=b.text(agent_element, "credentials"),
                loc=b.loc(agent_element),
            )
        pinned = tuple(
            PinnedVM(b.name(v), b.text(v, "topology"), b.loc(v)) for v in b.children(h, "vm")
        )
        migration_uri = b.text(h, "migration-uri")
        if migration_uri is not None and (
            hypervisor is not HypervisorKind.LIBVIRT or not LIBVIRT_URI_RE.fullmatch(migration_uri)
        ):
            b.diags.error(
                "E211",
                b.loc(h, "migration-uri"),
                f"migration-uri '{migration_uri}' is not a libvirt URI"
                if hypervisor is HypervisorKind.LIBVIRT
                else f"a {hypervisor.value} host has no migration-uri: only a libvirt host's "
                "domains migrate through libvirt",
                "give the URI the other hosts' libvirt reaches this host's with, such as "
                "'qemu+ssh://rack2.lab/system' or 'qemu+tls://rack2.lab/system'"
                if hypervisor is HypervisorKind.LIBVIRT
                else "remove it (a VM of an emulated host moves without libvirt)",
            )
            migration_uri = None
        memory = b.convert(h, "memory", units.parse_memory, "1GB") or 0
        reserved = b.convert(h, "reserved-memory", units.parse_memory) or 0
        hosts.append(
            Host(
                name=b.name(h),
                site=b.text(h, "site") or "",
                hypervisor=hypervisor,
                uri=uri,
                cpus=b.integer(h, "cpus", 1) or 1,
                memory_mib=memory,
                reserved_memory_mib=reserved,
                max_vms=b.integer(h, "max-vms"),
                capabilities=_capabilities(b, h),
                interfaces=interfaces,
                agent=agent,
                pinned=pinned,
                migration_uri=migration_uri,
                migration_p2p=bool(b.boolean(h, "migration-p2p", False)),
                loc=b.loc(h),
            )
        )
    links = []
    for link in b.children(root, "link"):
        links.append(
            PhysicalLink(
                a=_endpoint(b, link, "a"),
                b=_endpoint(b, link, "b"),
                capacity_bps=b.convert(link, "capacity", units.parse_rate) or 0,
                latency_us=b.convert(link, "latency", units.parse_time, "0us") or 0,
                loc=b.loc(link),
            )
        )
    return Real(
        file=source.path,
        sites=sites,
        hosts=tuple(hosts),
        nodes=tuple(nodes),
        links=tuple(links),
        credentials=credentials,
        credentials_loc=credentials_loc,
        trap_receivers=tuple(traps),
        loc=b.loc(root),
    )


# ---------------------------------------------------------------- virtual.xml


def _ports(b: _Builder, element: etree._Element) -> tuple[PortRange, ...]:
    value = b.text(element, "ports")
    if value is None:
        return ()
    ranges = []
    for part in value.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d{1,5})(?:-(\d{1,5}))?", part)
        first = int(m.group(1)) if m else -1
        last = int(m.group(2) or m.group(1)) if m else -1
        if not m or not (1 <= first <= last <= 65535):
            b.diags.error(
                "E209",
                b.loc(element, "ports"),
                f"'{part}' is not a port or a port range",
                "write ports from 1 to 65535 such as '22', '80,443' or '8000-8100'",
            )
            continue
        ranges.append(PortRange(first, last))
    return tuple(ranges)


def _vm(
    b: _Builder, element: etree._Element, networks: dict[str, Network]
) -> tuple[VM, str | None]:
    interfaces = []
    for i in b.children(element, "interface"):
        network_name = b.text(i, "network") or ""
        ip = b.convert(i, "ip", _ipv4_interface)
        network = networks.get(network_name)
        if ip is not None and network is not None:
            if "/" not in (b.text(i, "ip") or ""):
                ip = ipaddress.IPv4Interface(f"{ip.ip}/{network.cidr.prefixlen}")
            elif ip.network.prefixlen != network.cidr.prefixlen:
                b.diags.error(
                    "E410",
                    b.loc(i, "ip"),
                    f"prefix length /{ip.network.prefixlen} differs from network "
                    f"'{network_name}' ({network.cidr})",
                    f"write the address without a prefix, or with /{network.cidr.prefixlen}",
                )
        mac = b.text(i, "mac")
        if mac is not None:
            if not MAC_RE.fullmatch(mac):
                b.diags.error(
                    "E203",
                    b.loc(i, "mac"),
                    f"'{mac}' is not a MAC address",
                    "write six hex bytes separated by colons, e.g. 02:00:00:00:00:01",
                )
            elif int(mac[:2], 16) & 1:
                b.diags.error(
                    "E203",
                    b.loc(i, "mac"),
                    f"'{mac}' is a multicast MAC address",
                    "the first byte must be even; locally administered addresses start with 02",
                )
            mac = mac.lower()
        interfaces.append(
            Interface(
                network=network_name,
                ip=ip or ipaddress.IPv4Interface("0.0.0.0/32"),
                mac=mac,
                shaping=b.shaping(b.child(i, "shaping")),
                loc=b.loc(i),
            )
        )
    routes = []
    for r in b.children(element, "route"):
        to_text = b.text(r, "to") or ""
        to = (
            ipaddress.IPv4Network("0.0.0.0/0")
            if to_text == "default"
            else b.convert(r, "to", _ipv4_network)
        )
        via = b.convert(r, "via", _ipv4_address)
        if to is not None and via is not None:
            routes.append(Route(to, via, b.loc(r)))
    domain = b.text(element, "domain")
    if domain is not None:
        domain = b.name(element, "domain")
    template_element = b.child(element, "template")
    vm = VM(
        name=b.name(element),
        cpus=b.integer(element, "cpus", 1) or 1,
        memory_mib=b.convert(element, "memory", units.parse_memory, "256MB") or 0,
        interfaces=tuple(interfaces),
        routes=tuple(routes),
        forward=b.boolean(element, "forward", False),
        domain=domain,
        template=_template(b, template_element) if template_element is not None else None,
        loc=b.loc(element),
    )
    return vm, b.text(element, "host")


def _template(b: _Builder, element: etree._Element) -> VmTemplate:
    """A VM's <template>: one way to boot (kernel, image or netmanager's own guest), with
    absolute paths (they are the libvirt host's)."""
    source = TemplateSource(b.text(element, "source", "files") or "files")
    given = {a: b.text(element, a) or "" for a in ("kernel", "initrd", "cmdline", "image")}
    ways = [w for w in ("kernel", "image") if given[w]]
    if source is TemplateSource.NETMANAGER:
        ways.append('source="netmanager"')
    if len(ways) != 1:
        b.diags.error(
            "E210",
            b.loc(element),
            "a template boots one way: " + (" and ".join(ways) if ways else "none is given"),
            'give kernel="..." (with initrd and cmdline), image="..." or source="netmanager"',
        )
    elif not given["kernel"] and (given["initrd"] or given["cmdline"]):
        b.diags.error(
            "E210",
            b.loc(element, "initrd" if given["initrd"] else "cmdline"),
            "initrd and cmdline go with a kernel",
            'give kernel="..." too, or leave them out',
        )
    for attribute in ("kernel", "initrd", "image"):
        path = given[attribute]
        if path and not path.startswith("/"):
            b.diags.error(
                "E210",
                b.loc(element, attribute),
                f"{attribute} '{path}' is not an absolute path",
                "paths of a template are the libvirt host's: give them from /",
            )
    return VmTemplate(
        source=source,
        kernel=given["kernel"],
        initrd=given["initrd"],
        cmdline=given["cmdline"],
        image=given["image"],
        image_format=b.text(element, "format", "qcow2") or "qcow2",
        domain_type=b.text(element, "type", "auto") or "auto",
        guest_agent=b.boolean(element, "guest-agent", True),
        loc=b.loc(element),
    )


def build_virtual(source: Source, diags: Diagnostics) -> tuple[Virtual, dict[str, tuple[str, Loc]]]:
    """The virtual topology, and the VMs it pins to hosts (name -> (host, where))."""
    b = _Builder(source, NS_VIRTUAL, diags)
    root = source.root
    topology = b.name(root, "topology", TOPOLOGY_RE)
    networks = []
    for n in b.children(root, "network"):
        cidr = b.convert(n, "cidr", _ipv4_network)
        networks.append(
            Network(
                name=b.name(n),
                cidr=cidr or ipaddress.IPv4Network("0.0.0.0/32"),
                gateway=b.convert(n, "gateway", _ipv4_address),
                encap=Encap(b.text(n, "encap") or "auto"),
                isolated=b.boolean(n, "isolated", True),
                external=External(b.text(n, "external") or "none"),
                shaping=b.shaping(b.child(n, "shaping")),
                loc=b.loc(n),
            )
        )
    network_by_name: dict[str, Network] = {}
    for network in networks:
        network_by_name.setdefault(network.name, network)  # a duplicate is reported later
    vms = []
    pins: dict[str, tuple[str, Loc]] = {}
    for v in b.children(root, "vm"):
        vm, host = _vm(b, v, network_by_name)
        vms.append(vm)
        if host is not None:
            pins[vm.name] = (host, b.loc(v, "host"))
    pairs = []
    for link in b.children(root, "link"):
        shaping = b.shaping(link) or Shaping()
        pairs.append(
            PairShaping(
                a=b.text(link, "a") or "",
                b=b.text(link, "b") or "",
                network=b.text(link, "network"),
                shaping=shaping,
                loc=b.loc(link),
            )
        )
    rules = []
    rules_element = b.child(root, "rules")
    if rules_element is not None:
        for r in rules_element.iterchildren(b.q("allow"), b.q("deny")):
            rules.append(
                Rule(
                    action=Action(etree.QName(r).localname),
                    src=b.text(r, "from") or "",
                    dst=b.text(r, "to") or "",
                    protocol=Protocol(b.text(r, "protocol") or "any"),
                    ports=_ports(b, r),
                    loc=b.loc(r),
                )
            )
    schedule_element = b.child(root, "schedule")
    virtual = Virtual(
        file=source.path,
        topology=topology,
        networks=tuple(networks),
        vms=tuple(vms),
        pairs=tuple(pairs),
        rules=tuple(rules),
        loc=b.loc(root),
        schedule=_schedule(b, schedule_element) if schedule_element is not None else None,
    )
    return virtual, pins


# ------------------------------------------------------------------------------ schedule

#: the columns of a trace (the first one required), as its header names them
TRACE_COLUMNS = ("time", "bandwidth", "latency", "loss")
#: how many rows a trace may have, and how large its file
MAX_TRACE_ROWS = 1_000_000
MAX_TRACE_BYTES = 64 << 20


def _values(b: _Builder, element: etree._Element) -> LinkValues:
    rate = b.convert(element, "bandwidth", _rate_or_zero)
    state = b.text(element, "state")
    return LinkValues(
        rate_bps=rate,
        rate_in_bps=rate,
        delay_us=b.convert(element, "latency", _time_or_zero),
        jitter_us=b.convert(element, "jitter", _time_or_zero),
        loss_ppm=b.convert(element, "loss", _percent_or_zero),
        up=None if state is None else state == "up",
    )


def _rate_or_zero(text: str) -> int:
    return 0 if text.strip() == "0" else units.parse_rate(text)


def _time_or_zero(text: str) -> int:
    return 0 if text.strip() == "0" else units.parse_time(text)


def _percent_or_zero(text: str) -> int:
    return 0 if text.strip() in ("0", "0%") else units.parse_percent(text)


def _schedule(b: _Builder, element: etree._Element) -> Schedule:
    events = []
    traces = []
    for e in b.children(element, "event"):
        values = _values(b, e)
        if values.empty:
            b.diags.error(
                "E220",
                b.loc(e),
                "this event changes nothing",
                "give bandwidth, latency, jitter, loss or state",
            )
        every = b.convert(e, "every", units.parse_time)
        count = b.integer(e, "count")
        until = b.convert(e, "until", units.parse_time)
        if every is not None and every <= 0:
            b.diags.error("E221", b.loc(e, "every"), "every must be above zero")
        if every is not None and count is None and until is None:
            b.diags.error(
                "E221",
                b.loc(e, "every"),
                "a repeated event needs count or until",
                'e.g. every="10s" count="6"',
            )
        if every is None and (count is not None or until is not None):
            attribute = "count" if count is not None else "until"
            b.diags.error(
                "E221", b.loc(e, attribute), f"{attribute} goes with every", 'add every="..."'
            )
        events.append(
            ScheduledEvent(
                at_us=b.convert(e, "at", units.parse_time) or 0,
                target=b.text(e, "target") or "",
                values=values,
                every_us=every,
                count=count,
                until_us=until,
                loc=b.loc(e),
            )
        )
    for t in b.children(element, "trace"):
        direction = TraceDirection(b.text(t, "direction") or "both")
        file = b.text(t, "file") or ""
        traces.append(
            Trace(
                target=b.text(t, "target") or "",
                file=file,
                direction=direction,
                at_us=b.convert(t, "at", units.parse_time, "0s") or 0,
                rows=_trace_rows(b, t, file, direction),
                loc=b.loc(t),
            )
        )
    migrations = []
    for m in b.children(element, "migrate"):
        every = b.convert(m, "every", units.parse_time)
        count = b.integer(m, "count")
        if every is not None and every <= 0:
            b.diags.error("E221", b.loc(m, "every"), "every must be above zero")
        if (every is None) != (count is None):
            attribute = "every" if every is not None else "count"
            b.diags.error(
                "E221",
                b.loc(m, attribute),
                "repeated moves take every and count together",
                'e.g. every="20s" count="4": four moves, back and forth',
            )
        migrations.append(
            ScheduledMigration(
                at_us=b.convert(m, "at", units.parse_time) or 0,
                vm=b.text(m, "vm") or "",
                to=b.text(m, "to") or "",
                every_us=every,
                count=count,
                precopy=b.boolean(m, "precopy", True),
                peer=b.text(m, "peer"),
                loc=b.loc(m),
            )
        )
    return Schedule(tuple(events), tuple(traces), b.loc(element), tuple(migrations))


def _trace_rows(
    b: _Builder, element: etree._Element, file: str, direction: TraceDirection
) -> tuple[TraceRow, ...]:
    """A trace's CSV rows (relative to virtual.xml's directory); every problem an
    error at its line and column in the CSV file, or at the trace's file attribute."""
    import csv
    import io

    where = b.loc(element, "file")
    path = Path(b.source.path).parent / file
    name = str(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_TRACE_BYTES + 1)
    except OSError as exc:
        b.diags.error(
            "E222", where, f"cannot read trace {file}: {exc.strerror or exc}", "check the path"
        )
        return ()
    if len(data) > MAX_TRACE_BYTES:
        b.diags.error("E222", where, f"trace {file} is larger than {MAX_TRACE_BYTES >> 20} MiB")
        return ()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        b.diags.error("E222", where, f"trace {file} is not UTF-8 text (byte {exc.start})")
        return ()
    lines = list(csv.reader(io.StringIO(text)))
    if not lines:
        b.diags.error(
            "E222", where, f"trace {file} is empty", "a header row: time,bandwidth,latency,loss"
        )
        return ()
    header = [h.strip().lower() for h in lines[0]]
    unknown = [h for h in header if h not in TRACE_COLUMNS]
    if unknown or not header or header[0] != "time" or len(set(header)) != len(header):
        b.diags.error(
            "E223",
            Loc(name, 1, 1),
            f"the header is {','.join(header)}: time first, then any of bandwidth, latency, loss",
            "e.g. time,bandwidth,latency,loss",
        )
        return ()
    parse = {
        "bandwidth": _rate_or_zero,
        "latency": _time_or_zero,
        "loss": _percent_or_zero,
    }
    rows: list[TraceRow] = []
    last = -1
    for number, row in enumerate(lines[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(rows) >= MAX_TRACE_ROWS:
            b.diags.error("E223", Loc(name, number, 1), f"more than {MAX_TRACE_ROWS} rows")
            break
        if len(row) > len(header):
            b.diags.error(
                "E223", Loc(name, number, 1), f"{len(row)} cells, the header names {len(header)}"
            )
            continue
        cells = dict(zip(header, (c.strip() for c in row), strict=False))
        col = 1
        values: dict[str, int] = {}
        at = None
        bad = False
        for index, column in enumerate(header):
            cell = cells.get(column, "")
            col = 1 + sum(len(c) + 1 for c in row[:index])
            if column == "time":
                try:
                    seconds = float(cell)
                    if not seconds >= 0 or seconds > 86_400 * 7:
                        raise ValueError(cell)
                    at = round(seconds * 1_000_000)
                except ValueError:
                    b.diags.error(
                        "E223",
                        Loc(name, number, col),
                        f"'{cell}' is not a time in seconds",
                        "e.g. 0.1",
                    )
                    bad = True
                continue
            if not cell:
                continue
            try:
                values[column] = parse[column](cell)
            except units.UnitError as exc:
                b.diags.error("E223", Loc(name, number, col), str(exc), exc.hint)
                bad = True
                continue
            if direction is TraceDirection.UP and column != "bandwidth":
                b.diags.error(
                    "E223",
                    Loc(name, number, col),
                    f'an uplink trace (direction="up") sets the rate from the VM only: no {column}',
                    "latency and loss apply towards the VM: a downlink trace",
                )
                bad = True
        if bad or at is None:
            continue
        if at <= last:
            b.diags.error("E223", Loc(name, number, 1), "the times must increase from row to row")
            continue
        last = at
        rate = values.get("bandwidth")
        rows.append(
            TraceRow(
                at,
                LinkValues(
                    rate_bps=rate if direction is not TraceDirection.UP else None,
                    rate_in_bps=rate if direction is not TraceDirection.DOWN else None,
                    delay_us=values.get("latency"),
                    loss_ppm=values.get("loss"),
                ),
                Loc(name, number, 1),
            )
        )
    return tuple(rows)


def _pin_from_virtual(
    real: Real, virtual: Virtual, pins: dict[str, tuple[str, Loc]], diags: Diagnostics
) -> Real:
    """Fold the pins written in virtual.xml into the real model's hosts."""
    if not pins:
        return real

    hosts = []
    for host in real.hosts:
        extra = tuple(
            PinnedVM(vm, virtual.topology, loc)
            for vm, (name, loc) in sorted(pins.items())
            if name == host.name and real.pinned_host(vm, virtual.topology) is None
        )
        hosts.append(replace(host, pinned=host.pinned + extra) if extra else host)
    for vm, (name, loc) in sorted(pins.items()):
        if name not in real.host_by_name:
            diags.error(
                "E303",
                loc,
                f"VM '{vm}' is pinned to unknown host '{name}'",
                choices("hosts", real.host_by_name),
            )
            continue
        current = real.pinned_host(vm, virtual.topology)
        if current is not None and current.name != name:
            diags.error(
                "E304",
                loc,
                f"VM '{vm}' is pinned to '{name}' here but runs on '{current.name}' in {real.file}",
                "remove one of the two pins",
            )
    return replace(real, hosts=tuple(hosts))


def load_with_warnings(
    real: str | Path, virtual: str | Path, *, base_dir: str | Path | None = None
) -> LoadResult:
    """Load and validate both files; raise NetmanagerError with every error found.
    Relative file names in real.xml are resolved against ``base_dir`` (default: the
    directory of real.xml)."""
    diags = Diagnostics()
    real_source = read(real, "real", diags)
    virtual_source = read(virtual, "virtual", diags)
    diags.raise_if_errors("parse")
    assert real_source is not None and virtual_source is not None
    base = Path(base_dir) if base_dir is not None else Path(real).parent
    real_model = replace(build_real(real_source, diags), base_dir=str(base.resolve()))
    virtual_model, pins = build_virtual(virtual_source, diags)
    diags.raise_if_errors("parse")
    real_model = _pin_from_virtual(real_model, virtual_model, pins, diags)
    model = Model(real_model, virtual_model)
    check(model, diags, base_dir=base)
    diags.raise_if_errors("validate")
    return LoadResult(model, tuple(diags.sorted()))


def load(real: str | Path, virtual: str | Path, *, base_dir: str | Path | None = None) -> Model:
    """The validated model of a real.xml and a virtual.xml.

    Raises :class:`~netmanager.errors.NetmanagerError` carrying every diagnostic.
    """
    return load_with_warnings(real, virtual, base_dir=base_dir).model


__all__ = ["LoadResult", "NetmanagerError", "load", "load_with_warnings"]
