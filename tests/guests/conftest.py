"""Fixtures of the guest tests: net-snmp's tool environment (shared with the agent tests),
the guest image, booting a guest that is stopped whatever happens, and a place of its own
for a test that applies topologies on guest hosts."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from netmanager.agentctl import processes as agent_procs
from netmanager.guests import hosts, image, qemu
from tests import kernelstate
from tests.snmp.conftest import tool_env

__all__ = [
    "GUEST_HOSTS",
    "GuestImage",
    "guest_cache_dir",
    "guest_image",
    "own_guest_hosts",
    "running",
    "tool_env",
]

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups, and -m the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests here that boot QEMU guests (the privileged ones) are slow, and they run one
    after the other on one pytest-xdist worker (group ``guests``): guests emulate their CPUs
    (TCG), and two modules' guests at once on two cores make boots and probes time out."""
    for item in items:
        if HERE in item.path.parents and item.get_closest_marker("privileged") is not None:
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group("guests"))
    # The four guests of aef-grid-vlan last: they keep both cores busy, and measure best
    # once the other workers are done (on CI, run first, its apply and verify took 1.6
    # times as long as on a quiet machine); the two-guest modules mind the company less.
    last = [item for item in items if item.path.name in LAST]
    if last:
        items[:] = [item for item in items if item.path.name not in LAST] + last


#: the guest modules that run after every other (see pytest_collection_modifyitems)
LAST = ("test_aef_grid_vlan.py",)

#: pytestmark of the tests that apply topologies on guest hosts
GUEST_HOSTS = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, taps, QEMU)"),
    pytest.mark.skipif(
        shutil.which(qemu.QEMU) is None, reason=f"needs {qemu.QEMU} (Debian's qemu-system-x86)"
    ),
]


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


@contextmanager
def own_guest_hosts(letter: str, state: Path) -> Iterator[str]:
    """A namespace prefix (``nm<letter><random>``) and state directory of the test's own,
    the guest image cache shared between runs; afterwards the guests it booted are powered
    off (QEMU by PID), the agents ended and its namespaces deleted, also on failure."""
    prefix = f"nm{letter}{uuid.uuid4().hex[:5]}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NETMANAGER_NS_PREFIX", prefix)
        env.setenv("NETMANAGER_STATE_DIR", str(state))
        env.setenv("NETMANAGER_GUEST_CACHE", str(guest_cache_dir()))
        try:
            yield prefix
        finally:
            hosts.stop_guests()
            agent_procs.stop_agents()
            for name in kernelstate.namespaces(prefix):
                subprocess.run(["ip", "netns", "del", name], check=False)
