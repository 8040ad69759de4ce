"""Network namespaces handled inside this process: create, enter, leave, remove.

``ip netns add NAME`` bind-mounts a fresh namespace on ``/run/netns/NAME``; this module does
the same with unshare(2) and mount(2) from the calling thread, without forking a helper
(pyroute2's ``netns.create`` and ``IPRoute(netns=...)`` fork one per namespace, about 5 ms
each).  A netlink socket opened while the thread is inside a namespace stays bound to
that namespace after the thread leaves, so the engine enters each namespace once, opens
its socket and comes back.

Namespaces are per thread: the engine must run on one thread at a time.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from collections.abc import Iterator

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2
SELF = "/proc/thread-self/ns/net"

_libc = ctypes.CDLL(None, use_errno=True)
_prepared = False


def _check(result: int, what: str, path: str = "") -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}", path or None)


def path_of(name: str) -> str:
    return f"{NETNS_DIR}/{name}"


def exists(name: str) -> bool:
    """Whether namespace ``name`` exists: a namespace is mounted on its file (a file
    with nothing mounted on it is what a creator killed half-way left, not a namespace)."""
    return _mounted(path_of(name))


def _mounted(path: str) -> bool:
    try:
        return os.stat(path).st_dev == os.stat(SELF).st_dev  # nsfs, as every namespace
    except FileNotFoundError:
        return False


def listed(prefix: str = "") -> list[str]:
    """Names under /run/netns that start with ``prefix``."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def open_fd(name: str) -> int:
    return os.open(path_of(name), os.O_RDONLY | os.O_CLOEXEC)


def current_fd() -> int:
    """A descriptor of the calling thread's namespace (to come back to)."""
    return os.open(SELF, os.O_RDONLY | os.O_CLOEXEC)


def enter(fd: int) -> None:
    _check(_libc.setns(fd, CLONE_NEWNET), "setns")


@contextlib.contextmanager
def inside(fd: int, home: int) -> Iterator[None]:
    """Run the block inside the namespace ``fd``, then return to ``home``."""
    enter(fd)
    try:
        yield
    finally:
        enter(home)


def _prepare_dir() -> None:
    """Make /run/netns a shared mount point, as iproute2 does, so that the bind mounts of
    namespaces propagate to other mount namespaces."""
    global _prepared
    if _prepared:
        return
    os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)
    directory = NETNS_DIR.encode()
    if _libc.mount(b"", directory, b"none", MS_SHARED | MS_REC, None) != 0:
        if ctypes.get_errno() != errno.EINVAL:
            _check(-1, "make /run/netns shared", NETNS_DIR)
        _check(
            _libc.mount(directory, directory, b"none", MS_BIND | MS_REC, None), "bind /run/netns"
        )
        _check(_libc.mount(b"", directory, b"none", MS_SHARED | MS_REC, None), "share /run/netns")
    _prepared = True


def create(name: str, home: int, sysctls: dict[str, str] | None = None) -> int:
    """Create namespace ``name`` (EEXIST if it exists) and return a descriptor of it.

    ``sysctls`` are written inside it before anything else exists there.  The calling
    thread briefly enters the new namespace and is back in ``home`` when this returns,
    also on failure.
    """
    _prepare_dir()
    path = path_of(name)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))
    except FileExistsError:
        if _mounted(path):
            raise
        # a file with no namespace on it (its creator was killed before mounting): ours
        os.unlink(path)
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))
    try:
        _check(_libc.unshare(CLONE_NEWNET), "unshare", path)
        try:
            _check(_libc.mount(SELF.encode(), path.encode(), b"none", MS_BIND, None), "mount", path)
            for key, value in (sysctls or {}).items():
                _write_sysctl(key, value)
            return current_fd()
        finally:
            enter(home)
    except BaseException:
        _libc.umount2(path.encode(), MNT_DETACH)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise


def remove(name: str) -> None:
    """Remove namespace ``name`` as ``ip netns del`` does.  The kernel tears it down once
    nothing refers to it any more (asynchronously: close your descriptors and sockets)."""
    path = path_of(name)
    if _libc.umount2(path.encode(), MNT_DETACH) != 0 and ctypes.get_errno() not in (
        errno.EINVAL,
        errno.ENOENT,
    ):
        _check(-1, "umount", path)
    os.unlink(path)


def _write_sysctl(name: str, value: str) -> None:
    """Set ``name`` in the calling thread's namespace; a sysctl this kernel lacks (IPv6
    compiled out) is skipped."""
    try:
        fd = os.open("/proc/sys/" + name.replace(".", "/"), os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def set_link_ipv6(fd: int, home: int, ifname: str, enabled: bool) -> None:
    """Turn IPv6 on or off on one link inside namespace ``fd`` (``disable_ipv6`` of the
    link: there is no netlink attribute for it; a name with a dot, ``eth0.100``, is a
    path element of its own)."""
    path = f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"
    with inside(fd, home):
        try:
            out = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # IPv6 compiled out, or the link gone
            return
        try:
            os.write(out, b"0" if enabled else b"1")
        finally:
            os.close(out)


def write_sysctls(fd: int, home: int, values: dict[str, str]) -> None:
    """Set sysctls (dotted names, e.g. net.ipv4.ip_forward) inside namespace ``fd``."""
    with inside(fd, home):
        for name, value in values.items():
            _write_sysctl(name, value)


def read_sysctls(names: list[str]) -> dict[str, str]:
    """Values of ``names`` in the calling thread's current namespace (missing ones skipped)."""
    out: dict[str, str] = {}
    for name in names:
        try:
            fd = os.open("/proc/sys/" + name.replace(".", "/"), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            out[name] = os.read(fd, 256).decode().strip()
        finally:
            os.close(fd)
    return out
