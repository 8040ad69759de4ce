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
