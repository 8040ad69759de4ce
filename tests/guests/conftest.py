"""Fixtures of the guest tests: net-snmp's tool environment (shared with the agent tests),
the guest image, and booting a guest that is stopped whatever happens."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from netmanager.guests import image, qemu
from tests.snmp.conftest import tool_env

__all__ = ["GuestImage", "guest_cache_dir", "guest_image", "running", "tool_env"]


def guest_cache_dir() -> Path:
    """Kernel and initramfs cache shared by runs (downloads take a few seconds)."""
    return Path(os.environ.get("NETMANAGER_GUEST_CACHE", "/var/cache/netmanager-tests/guests"))


@dataclass(frozen=True)
class GuestImage:
    kernel: image.Kernel
    initramfs: Path


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    """The stock Debian kernel and the initramfs (skips where no guest can be booted)."""
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces, taps)")
    if shutil.which(qemu.QEMU) is None:
        pytest.skip(f"needs {qemu.QEMU} (Debian package qemu-system-x86)")
    kern = image.kernel(guest_cache_dir())
    return GuestImage(kern, image.initramfs(kern, guest_cache_dir()))


@contextmanager
def running(spec: qemu.GuestSpec, log: list[str] | None = None) -> Iterator[qemu.Guest]:
    """Launch ``spec``, wait for its guestd, and stop QEMU by its PID afterwards — also when
    booting or the test fails."""
    guest = qemu.launch(spec)
    try:
        guest.ready(timeout=180, progress=None if log is None else log.append)
        yield guest
    finally:
        guest.stop()
