"""libvirt's domain XML, read and written (pure: strings in, strings and dataclasses out).

Reading gives what netmanager needs of a domain (:class:`DomainInfo`: its state, its
interfaces with their MAC, source, tap and model, and whether netmanager defined it);
writing gives a domain to define from a :class:`~netmanager.hypervisor.spec.DomainSpec`,
and the ``<interface>`` that moves a live interface onto another bridge
(``virDomainUpdateDeviceFlags``), libvirt's own way of re-plugging a NIC so that its view
of the domain stays true.  Every domain netmanager defines carries
``<metadata><nm:owner .../></metadata>`` in :data:`METADATA_NS`: destroy undefines only
those.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from netmanager.hypervisor.spec import DomainSpec, DomainTemplate, DomainType

METADATA_NS = "urn:netmanager:libvirt:1"
METADATA_PREFIX = "nm"
GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"
#: tap names libvirt keeps for itself: a <target dev> starting so is replaced by its own
RESERVED_TAP_PREFIXES = ("vnet", "vif", "macvtap", "macvlan")

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


class DomainXMLError(ValueError):
    """A domain description libvirt gave that netmanager cannot read."""


@dataclass(frozen=True)
class DomainInterface:
    """One ``<interface>`` of a domain."""

    mac: str  # lower case
    type: str  # bridge, network, ethernet, direct, user, ...
    source: str | None  # the bridge, network or device it is plugged into
    target: str | None  # the tap's name (live XML only)
    model: str | None
    xml: str  # the element as libvirt gave it
    link_up: bool = True  # <link state>: the guest's NIC has its carrier

    @property
    def bridge(self) -> str | None:
        """The bridge this interface is a port of, as libvirt sees it."""
        return self.source if self.type == "bridge" else None


@dataclass(frozen=True)
class DomainInfo:
    """What netmanager reads of a domain."""

    name: str
    uuid: str
    interfaces: tuple[DomainInterface, ...]
    owner: tuple[str, str] | None  # (topology, vm) when netmanager defined it
    guest_agent: bool  # has the qemu-guest-agent channel

    def interface_by_mac(self, mac: str) -> DomainInterface | None:
        mac = mac.lower()
        return next((i for i in self.interfaces if i.mac == mac), None)


def _parse(xml: str) -> etree._Element:
    try:
        return etree.fromstring(xml.encode(), _PARSER)
    except etree.XMLSyntaxError as exc:
        raise DomainXMLError(f"unreadable domain XML: {exc}") from exc


def _attr(element: etree._Element | None, name: str) -> str | None:
    if element is None:
        return None
    value = element.get(name)
    return str(value) if value is not None else None


def _source(iface: etree._Element, kind: str) -> str | None:
    src = iface.find("source")
    if src is None:
        return None
    for name in {"bridge": ("bridge",), "network": ("network",), "direct": ("dev",)}.get(
        kind, ("bridge", "network", "dev")
    ):
        value = _attr(src, name)
        if value:
            return value
    return None


def read_domain(xml: str) -> DomainInfo:
    """The :class:`DomainInfo` of a domain's XML (``virDomainGetXMLDesc``)."""
    root = _parse(xml)
    if root.tag != "domain":
        raise DomainXMLError(f"not a domain description (root element <{root.tag}>)")
    name = root.findtext("name")
    if not name:
        raise DomainXMLError("domain XML without a <name>")
    interfaces = []
    for iface in root.iterfind("devices/interface"):
        kind = _attr(iface, "type") or ""
        mac = (_attr(iface.find("mac"), "address") or "").lower()
        interfaces.append(
            DomainInterface(
                mac=mac,
                type=kind,
                source=_source(iface, kind),
                target=_attr(iface.find("target"), "dev"),
                model=_attr(iface.find("model"), "type"),
                xml=etree.tostring(iface, encoding="unicode").strip(),
                link_up=_attr(iface.find("link"), "state") != "down",
            )
        )
    owner = None
    mark = root.find(f"metadata/{{{METADATA_NS}}}owner")
    if mark is not None:
        owner = (mark.get("topology") or "", mark.get("vm") or "")
    agent = any(
        _attr(ch.find("target"), "name") == GUEST_AGENT_CHANNEL
        for ch in root.iterfind("devices/channel")
    )
    return DomainInfo(
        name=name,
        uuid=root.findtext("uuid") or "",
        interfaces=tuple(interfaces),
        owner=owner,
        guest_agent=agent,
    )


def owner_element(topology: str, vm: str) -> str:
    """The metadata element that marks a domain as netmanager's (``virDomainSetMetadata``
    takes it with :data:`METADATA_NS` and :data:`METADATA_PREFIX`)."""
    el = etree.Element(f"{{{METADATA_NS}}}owner", nsmap={METADATA_PREFIX: METADATA_NS})
    el.set("topology", topology)
    el.set("vm", vm)
    return etree.tostring(el, encoding="unicode")


def bridge_interface(current: DomainInterface, bridge: str) -> str:
    """``current`` plugged into ``bridge``: the same device (MAC, model, tap, PCI address,
    alias) with ``<source bridge>``; what ``virDomainUpdateDeviceFlags`` takes to move a
    running domain's NIC from one bridge to another."""
    iface = _parse(current.xml)
    iface.set("type", "bridge")
    for tag in ("source", "virtualport", "actual"):
        for old in iface.findall(tag):
            iface.remove(old)
    source = etree.Element("source")
    source.set("bridge", bridge)
    mac = iface.find("mac")
    iface.insert(1 if mac is not None and iface.index(mac) == 0 else 0, source)
    return etree.tostring(iface, encoding="unicode")


def link_state_interface(current: DomainInterface, up: bool) -> str:
    """``current`` with its link up or down (``<link state>``): what
    ``virDomainUpdateDeviceFlags`` takes to give or take the guest's NIC its carrier."""
    iface = _parse(current.xml)
    for old in iface.findall("link"):
        iface.remove(old)
    link = etree.SubElement(iface, "link")
    link.set("state", "up" if up else "down")
    return etree.tostring(iface, encoding="unicode")


@dataclass(frozen=True)
class DefinedInterface:
    """An interface of a domain netmanager defines."""

    mac: str
    bridge: str
    tap: str


def domain_xml(
    spec: DomainSpec,
    interfaces: Sequence[DefinedInterface],
    *,
    topology: str,
    vm: str,
    domain_type: str,
    console_log: str = "",
    seed: str = "",
) -> str:
    """The XML of a domain netmanager defines from ``spec.template``: its NICs in
    ``interfaces`` order, each a port of its bridge with a tap named as netmanager names
    the VM's port (``<target dev>``), marked as netmanager's in its metadata."""
    template = spec.template
    if template is None:
        raise ValueError(f"domain '{spec.name}' has no template: it is attached, not defined")
    for iface in interfaces:
        if iface.tap.startswith(RESERVED_TAP_PREFIXES):
            raise ValueError(f"tap name {iface.tap} is one libvirt keeps for itself")
    E = etree.Element
    dom = E("domain")
    dom.set("type", domain_type)
    _sub(dom, "name", spec.name)
    meta = _sub(dom, "metadata")
    meta.append(etree.fromstring(owner_element(topology, vm)))
    _sub(dom, "memory", str(spec.memory_mib)).set("unit", "MiB")
    _sub(dom, "vcpu", str(spec.cpus))
    os_ = _sub(dom, "os")
    kind = _sub(os_, "type", "hvm")
    kind.set("arch", "x86_64")
    kind.set("machine", "pc")
    if template.kernel:
        _sub(os_, "kernel", template.kernel)
        if template.initrd:
            _sub(os_, "initrd", template.initrd)
        if template.cmdline:
            _sub(os_, "cmdline", template.cmdline)
    else:
        _sub(os_, "boot").set("dev", "hd")
    features = _sub(dom, "features")
    _sub(features, "acpi")
    if domain_type == "qemu" and template.tb_cache_mib:
        tcg = _sub(features, "tcg")
        _sub(tcg, "tb-cache", str(template.tb_cache_mib)).set("unit", "MiB")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")
    devices = _sub(dom, "devices")
    usb = _sub(devices, "controller")
    usb.set("type", "usb")
    usb.set("model", "none")
    if template.image:
        _disk(devices, template.image, template.image_format, "vda", "disk", "virtio")
    if seed:  # cloud-init's NoCloud seed (netmanager.hypervisor.cloudinit)
        _disk(devices, seed, "raw", "hdc", "cdrom", "ide")
    for share in template.shares:
        fs = _sub(devices, "filesystem")
        fs.set("type", "mount")
        fs.set("accessmode", "passthrough")
        _sub(fs, "source").set("dir", share.source)
        _sub(fs, "target").set("dir", share.tag)
        _sub(fs, "readonly")
    for iface in interfaces:
        el = _sub(devices, "interface")
        el.set("type", "bridge")
        _sub(el, "mac").set("address", iface.mac)
        _sub(el, "source").set("bridge", iface.bridge)
        _sub(el, "target").set("dev", iface.tap)
        _sub(el, "model").set("type", "virtio")
    if template.guest_agent:
        ch = _sub(devices, "channel")
        ch.set("type", "unix")
        target = _sub(ch, "target")
        target.set("type", "virtio")
        target.set("name", GUEST_AGENT_CHANNEL)
    serial = _sub(devices, "serial")
    if console_log:
        serial.set("type", "file")
        _sub(serial, "source").set("path", console_log)
    else:
        serial.set("type", "pty")
    _sub(serial, "target").set("port", "0")
    _sub(devices, "memballoon").set("model", "none")
    return etree.tostring(dom, encoding="unicode", pretty_print=True)


def _disk(parent: etree._Element, path: str, fmt: str, dev: str, device: str, bus: str) -> None:
    disk = _sub(parent, "disk")
    disk.set("type", "file")
    disk.set("device", device)
    driver = _sub(disk, "driver")
    driver.set("name", "qemu")
    driver.set("type", fmt)
    _sub(disk, "source").set("file", path)
    target = _sub(disk, "target")
    target.set("dev", dev)
    target.set("bus", bus)
    if device == "cdrom":
        _sub(disk, "readonly")


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, tag)
    if text is not None:
        el.text = text
    return el


def resolve_type(wanted: DomainType | str, kvm_usable: bool) -> str:
    """The domain type to define: ``auto`` is kvm where KVM can run a stock guest, qemu
    (TCG, software emulation) elsewhere."""
    wanted = DomainType(wanted)
    if wanted is DomainType.AUTO:
        return "kvm" if kvm_usable else "qemu"
    return wanted.value


__all__ = [
    "GUEST_AGENT_CHANNEL",
    "METADATA_NS",
    "DefinedInterface",
    "DomainInfo",
    "DomainInterface",
    "DomainTemplate",
    "DomainXMLError",
    "bridge_interface",
    "domain_xml",
    "owner_element",
    "read_domain",
    "resolve_type",
]
