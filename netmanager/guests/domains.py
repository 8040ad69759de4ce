"""netmanager's own guest image as a libvirt domain template (``<template
source="netmanager">``): the stock Debian kernel and initramfs of the guest hosts
(:mod:`netmanager.guests.image`), booted with ``nm.ga=1`` so that its ``/init`` runs this
machine's qemu-guest-agent (seen over 9p) instead of netmanager's guest daemon; the
host's ``/`` shared read-only.  What libvirt hosts emulated on this machine run in the
tests and in ``examples/libvirt``: no cloud image can be fetched here.
"""

from __future__ import annotations

from netmanager.guests import image
from netmanager.guests.hosts import cache_dir
from netmanager.guests.qemu import BOOT_WORDS, PROJECT
from netmanager.hypervisor.spec import DomainTemplate, Share

#: QEMU's translation cache for these guests (as for guest hosts: QEMU's 1 GiB default
#: costs host memory)
TB_CACHE_MIB = 64


def guest_template(progress: image.Progress | None = None) -> DomainTemplate:
    """The template (the kernel and initramfs downloaded and built once, then cached)."""
    kern = image.kernel(cache_dir(), progress=progress)
    initrd = image.initramfs(kern, cache_dir(), progress=progress)
    words = [
        *BOOT_WORDS,
        f"nm.project={PROJECT}",
        "nm.cache=loose",
        "nm.ga=1",
    ]
    return DomainTemplate(
        kernel=str(kern.vmlinux),
        initrd=str(initrd),
        cmdline=" ".join(words),
        shares=(Share("/", "hostroot"),),
        tb_cache_mib=TB_CACHE_MIB,
    )


#: the init of a guest that needs nothing of the host while it runs, so that QEMU can
#: migrate it: QEMU refuses to migrate a guest that has a host directory mounted over
#: virtio-9p (what :func:`guest_template`'s guest runs from, measured here), so this one
#: mounts none and runs no guest agent: its NICs (``nm.addr=MAC=CIDR``) are addressed from
#: the kernel's command line, then it idles, answering ping
MIGRATABLE_INIT = (
    r"""#!/bin/sh
# netmanager migratable guest init: modules, NICs addressed from the command line, idle.
export PATH=/sbin:/bin
say() { echo "nm-init: $*" > /dev/console; }
"""
    + image.NM_ADDRESSES
    + r"""
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
V=$(cat /modules.version)
while read -r m; do
    insmod "/lib/modules/$V/$m" 2>/dev/null || echo "nm-init: insmod $m failed" > /dev/console
done < /modules.nm
set -- $(cat /proc/cmdline)
ip link set lo up
nm_addresses "$@"
say "up"
while :; do sleep 3600; done
"""
)


def migratable_template(
    addresses: dict[str, str] | None = None, progress: image.Progress | None = None
) -> DomainTemplate:
    """A template of netmanager's guest kernel whose guest QEMU can live-migrate: no host
    share, no guest agent, each NIC of ``addresses`` (MAC -> CIDR) addressed at boot."""
    kern = image.kernel(cache_dir(), progress=progress)
    initrd = image.initramfs(kern, cache_dir(), progress=progress, init=MIGRATABLE_INIT)
    words = [
        *BOOT_WORDS,
        *(f"nm.addr={mac.lower()}={cidr}" for mac, cidr in (addresses or {}).items()),
    ]
    return DomainTemplate(
        kernel=str(kern.vmlinux),
        initrd=str(initrd),
        cmdline=" ".join(words),
        guest_agent=False,
        tb_cache_mib=TB_CACHE_MIB,
    )
