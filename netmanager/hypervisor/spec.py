"""What a host is told about the libvirt domain that is one of its VMs (pure, frozen).

A VM of ``virtual.xml`` placed on a libvirt host is a domain: *attached* when the domain
exists already (netmanager reads it and wires its interfaces), *defined* when
``virtual.xml`` gives a template (netmanager defines and starts it, and marks it as its
own).  :class:`DomainSpec` travels to the host inside the VM's configuration
(:class:`netmanager.compile.hostconfig.Vm`); :class:`DomainTemplate` is the template with
every path made concrete for the host that boots it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class DomainType(enum.StrEnum):
    AUTO = "auto"  # kvm where /dev/kvm can run a guest, qemu (TCG) elsewhere
    KVM = "kvm"
    QEMU = "qemu"


@dataclass(frozen=True)
class Share:
    """A directory of the host shown to the guest over virtio-9p (read-only)."""

    source: str
    tag: str


@dataclass(frozen=True)
class DomainTemplate:
    """How netmanager defines a domain: direct kernel boot (``kernel``, ``initrd``,
    ``cmdline``) or a disk ``image`` (with a cloud-init NoCloud seed, ``seed``: the path
    of the seed's ISO on the host, written by the host); paths are the host's."""

    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    image: str = ""
    image_format: str = "qcow2"
    shares: tuple[Share, ...] = ()
    domain_type: DomainType = DomainType.AUTO
    guest_agent: bool = True  # a virtio-serial channel for qemu-guest-agent
    #: TCG's translation cache where the domain runs under software emulation (QEMU's
    #: default, 1 GiB, costs host memory); 0: QEMU's default
    tb_cache_mib: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel,
            "initrd": self.initrd,
            "cmdline": self.cmdline,
            "image": self.image,
            "image_format": self.image_format,
            "shares": [[s.source, s.tag] for s in self.shares],
            "domain_type": self.domain_type.value,
            "guest_agent": self.guest_agent,
            "tb_cache_mib": self.tb_cache_mib,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DomainTemplate:
        return cls(
            kernel=str(d.get("kernel", "")),
            initrd=str(d.get("initrd", "")),
            cmdline=str(d.get("cmdline", "")),
            image=str(d.get("image", "")),
            image_format=str(d.get("image_format", "qcow2")),
            shares=tuple(Share(str(a), str(b)) for a, b in d.get("shares", ())),
            domain_type=DomainType(d.get("domain_type", "auto")),
            guest_agent=bool(d.get("guest_agent", True)),
            tb_cache_mib=int(d.get("tb_cache_mib", 0)),
        )


@dataclass(frozen=True)
class DomainSpec:
    """The domain that is a VM: its name, and the template when netmanager defines it
    (``None``: the domain exists and is attached)."""

    name: str
    template: DomainTemplate | None = None
    memory_mib: int = 256
    cpus: int = 1
    #: the MACs virtual.xml gives, per interface in document order ("" where none is
    #: given): attach matches the domain's interfaces by them, else in order
    macs: tuple[str, ...] = field(default=())

    @property
    def defined(self) -> bool:
        return self.template is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "template": self.template.as_json() if self.template is not None else None,
            "memory_mib": self.memory_mib,
            "cpus": self.cpus,
            "macs": list(self.macs),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DomainSpec:
        template = d.get("template")
        return cls(
            name=str(d["name"]),
            template=DomainTemplate.from_json(template) if template is not None else None,
            memory_mib=int(d.get("memory_mib", 256)),
            cpus=int(d.get("cpus", 1)),
            macs=tuple(str(m) for m in d.get("macs", ())),
        )
