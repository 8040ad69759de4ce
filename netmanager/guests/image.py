"""The guest image: a stock Debian kernel and a small initramfs, cached in a directory.

``kernel(cache)`` downloads Debian's ``linux-image-amd64`` candidate with ``apt-get
download`` (nothing is installed on the host), keeps the uncompressed ELF ``vmlinux`` (QEMU
boots it directly, by PVH) and only the modules listed in :data:`MODULES` plus what they
depend on.  ``initramfs(kernel, cache)`` writes a newc cpio archive with Debian's static
busybox, those modules and an ``/init`` that mounts the host's ``/`` read-only over 9p
and runs the control daemon (:mod:`netmanager.guests.guestd`) chrooted into it.

Both are cached: a second call reads a manifest and returns in milliseconds.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import lzma
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from netmanager import programs
from netmanager.guests.errors import guest_error
from netmanager.statedir import write_json

Progress = Callable[[str], None]

KERNEL_META = "linux-image-amd64"
BUSYBOX_PACKAGE = "busybox-static"
XZ_MAGIC = b"\xfd7zXZ\x00"
ELF_MAGIC = b"\x7fELF"

# Loaded by /init at boot, in this order (with what they depend on first).  Builtin ones
# are skipped.  Everything else in MODULES is in the image and loaded on demand by the
# kernel (request_module runs the initramfs's busybox modprobe).
BOOT_MODULES: tuple[str, ...] = (
    "crc32c_generic",
    "virtio_pci",
    "virtio_mmio",
    "virtio_net",
    "virtio_console",
    "9pnet_virtio",
    "9p",
    "af_packet",
    "8021q",
    "bridge",
    "br_netfilter",
    "veth",
    "vxlan",
    "sch_netem",
    "sch_tbf",
    "sch_htb",
    "sch_ingress",
    "cls_u32",
    "cls_matchall",
    "act_mirred",
    "act_gact",
    "ifb",
    "nf_tables",
    "nft_compat",
    "nft_meta_bridge",
    "nf_conntrack",
    "nf_nat",
    "ip_tables",
    "iptable_filter",
    "iptable_nat",
    "iptable_mangle",
    "ip6_tables",
    "ip6table_filter",
    "xt_comment",
    "xt_conntrack",
    "xt_MASQUERADE",
    "xt_physdev",
    "xt_mark",
    "ebtables",
    "ebtable_filter",
    "ebtable_nat",
)

# Also in the image (modules whose name matches one of these patterns).
MODULE_PATTERNS: tuple[str, ...] = (
    "xt_*",
    "nft_*",
    "nf_*",
    "ebt*",
    "ipt_*",
    "ip6t_*",
    "iptable_*",
    "ip6table_*",
    "arp*table*",
    "arpt_*",
    "ip_set*",
    "sch_*",
    "cls_*",
    "act_*",
    "tun",
    "crc32c*",
    "macvlan",
    "dummy",
    "geneve",
    "openvswitch",
    "vsock*",
    "vmw_vsock_virtio_transport*",
)
MODULES_REVISION = 3  # bump when the lists above change: cached kernels are rebuilt


@dataclass(frozen=True)
class Kernel:
    version: str  # e.g. 6.1.0-57-amd64
    vmlinux: Path  # uncompressed ELF kernel
    modules: Path  # lib/modules/VERSION with the kept modules, modules.builtin, modules.order


# --- small helpers --------------------------------------------------------------------


def _run(argv: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [programs.path(argv[0]), *argv[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def _read_json(path: Path) -> dict[str, object] | None:
    try:
        value = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _candidate_dependency(package: str) -> tuple[str, str]:
    """The package ``package`` (a meta-package) depends on in its candidate version, and
    the candidate version of ``package`` itself."""
    result = _run(["apt-cache", "show", "--no-all-versions", package])
    if result.returncode != 0 or not result.stdout.strip():
        raise guest_error(
            "E750",
            f"apt does not know the package '{package}': {_tail(result.stderr)}",
            "run apt-get update (Debian's main archive must be in the apt sources)",
        )
    version = depends = ""
    for line in result.stdout.splitlines():
        if line.startswith("Version:"):
            version = line.split(":", 1)[1].strip()
        elif line.startswith("Depends:"):
            depends = line.split(":", 1)[1].strip()
    for alternative in depends.split(","):
        name = alternative.strip().split(" ", 1)[0]
        if name.startswith("linux-image-"):
            return name, version
    raise guest_error("E750", f"'{package}' {version} depends on no linux-image package")


def _candidate_version(package: str) -> str:
    result = _run(["apt-cache", "show", "--no-all-versions", package])
    for line in result.stdout.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    raise guest_error(
        "E751",
        f"apt does not know the package '{package}': {_tail(result.stderr)}",
        "run apt-get update (Debian's main archive must be in the apt sources)",
    )


def download(package: str, into: Path, code: str, progress: Progress | None = None) -> Path:
    """``apt-get download package`` into ``into``; runs ``apt-get update`` once if apt has
    no lists.  Returns the .deb."""
    into.mkdir(parents=True, exist_ok=True)
    argv = ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", package]
    result = _run(argv, cwd=into)
    if result.returncode != 0:
        if progress is not None:
            progress("apt-get update")
        update = _run(["apt-get", "update", "-q"])
        if update.returncode != 0:
            raise guest_error(
                code,
                f"apt-get update failed: {_tail(update.stderr)}",
                "the guest image needs Debian's apt archive",
            )
        result = _run(argv, cwd=into)
    debs = sorted(into.glob(f"{package.split('=')[0]}_*.deb"))
    if result.returncode != 0 or not debs:
        raise guest_error(
            code,
            f"apt-get download {package} failed: {_tail(result.stderr)}",
            "the guest image needs Debian's apt archive",
        )
    return debs[-1]


def _unpack(deb: Path, into: Path, code: str) -> None:
    result = _run(["dpkg-deb", "-x", str(deb), str(into)])
    if result.returncode != 0:
        raise guest_error(code, f"dpkg-deb -x {deb.name} failed: {_tail(result.stderr)}")


# --- vmlinux from bzImage -------------------------------------------------------------


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The uncompressed ELF kernel inside an x86 bzImage with an xz payload (Debian's)."""
    start = bzimage.find(XZ_MAGIC)
    while start >= 0:
        decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        try:
            data = decompressor.decompress(bzimage[start:])
        except lzma.LZMAError:
            data = b""
        if decompressor.eof and data.startswith(ELF_MAGIC):
            return data
        start = bzimage.find(XZ_MAGIC, start + 1)
    raise guest_error(
        "E752",
        "no xz-compressed ELF kernel found in the bzImage",
        "the kernel package must have an xz-compressed bzImage (Debian's do)",
    )


# --- modules --------------------------------------------------------------------------


def modinfo(ko: bytes) -> dict[str, list[str]]:
    """The ``.modinfo`` section of an (uncompressed, ELF64 little-endian) kernel module."""
    if not ko.startswith(ELF_MAGIC) or ko[4] != 2 or ko[5] != 1:
        raise ValueError("not an ELF64 little-endian file")
    shoff = struct.unpack_from("<Q", ko, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ko, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        base = shoff + index * shentsize
        name, _type = struct.unpack_from("<II", ko, base)
        offset, size = struct.unpack_from("<QQ", ko, base + 24)
        return name, offset, size

    _, str_offset, _ = section(shstrndx)
    info: dict[str, list[str]] = {}
    for i in range(shnum):
        name_at, offset, size = section(i)
        end = ko.index(b"\0", str_offset + name_at)
        if ko[str_offset + name_at : end] != b".modinfo":
            continue
        for entry in ko[offset : offset + size].split(b"\0"):
            key, sep, value = entry.decode(errors="replace").partition("=")
            if sep:
                info.setdefault(key, []).append(value)
    return info


def module_name(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    return base.removesuffix(".ko").replace("-", "_")


def _dependency_order(
    wanted: Iterable[str], depends: dict[str, list[str]], builtin: set[str]
) -> list[str]:
    """``wanted`` and their dependencies, each after what it depends on; builtin ones left
    out."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen or name in builtin:
            return
        seen.add(name)
        for dep in depends.get(name, []):
            visit(dep)
        order.append(name)

    for name in wanted:
        visit(name)
    return order


def kernel(cache_dir: Path, progress: Progress | None = None, refresh: bool = False) -> Kernel:
    """The guest kernel, from the cache when it is there (``refresh``: ask apt whether the
    candidate changed)."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    current = _read_json(cache_dir / "kernel.json")
    if current is not None and not refresh:
        found = _cached_kernel(cache_dir, str(current.get("version", "")))
        if found is not None:
            return found
    package, _ = _candidate_dependency(KERNEL_META)
    version = package.removeprefix("linux-image-")
    found = _cached_kernel(cache_dir, version)
    if found is None:
        found = _build_kernel(cache_dir, package, version, progress)
    write_json(cache_dir / "kernel.json", {"version": version, "package": package})
    return found


def _cached_kernel(cache_dir: Path, version: str) -> Kernel | None:
    if not version:
        return None
    home = cache_dir / f"kernel-{version}"
    manifest = _read_json(home / "manifest.json")
    if manifest is None or manifest.get("revision") != MODULES_REVISION:
        return None
    found = Kernel(version, home / "vmlinux", home / "lib" / "modules" / version)
    if found.vmlinux.is_file() and (found.modules / "modules.nm").is_file():
        return found
    return None


def _build_kernel(cache_dir: Path, package: str, version: str, progress: Progress | None) -> Kernel:
    home = cache_dir / f"kernel-{version}"
    if progress is not None:
        progress(f"downloading {package}")
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".kernel-") as tmp:
        work = Path(tmp)
        deb = download(package, work / "deb", "E750", progress)
        if progress is not None:
            progress(f"unpacking {deb.name}")
        tree = work / "tree"
        _unpack(deb, tree, "E750")
        bzimages = sorted((tree / "boot").glob("vmlinuz-*"))
        if not bzimages:
            raise guest_error("E750", f"{deb.name} holds no /boot/vmlinuz")
        vmlinux = extract_vmlinux(bzimages[0].read_bytes())
        source = tree / "lib" / "modules" / version
        staged = work / "staged"
        target = staged / "lib" / "modules" / version
        target.mkdir(parents=True)
        (staged / "vmlinux").write_bytes(vmlinux)
        _keep_modules(source, target)
        write_json(
            staged / "manifest.json",
            {"version": version, "package": package, "revision": MODULES_REVISION},
        )
        if home.exists():
            shutil.rmtree(home)
        os.replace(staged, home)
    result = _cached_kernel(cache_dir, version)
    assert result is not None
    return result


def _keep_modules(source: Path, target: Path) -> None:
    """Copy the modules the image needs from the unpacked package ``source`` to ``target``,
    and write ``modules.nm`` (boot order), ``modules.dep`` and ``modules.alias`` for
    busybox's modprobe."""
    builtin = {
        module_name(line.strip())
        for line in (source / "modules.builtin").read_text().splitlines()
        if line.strip()
    }
    paths: dict[str, str] = {}
    for ko in (source / "kernel").rglob("*.ko"):
        paths[module_name(ko.name)] = str(ko.relative_to(source))
    wanted = [n for n in BOOT_MODULES if n not in builtin]
    missing = [n for n in wanted if n not in paths]
    if missing:
        raise guest_error(
            "E753",
            f"the kernel package has no module {', '.join(missing)}",
            "the guest kernel must be a stock Debian amd64 kernel",
        )
    extra = sorted(n for n in paths if any(fnmatch.fnmatchcase(n, p) for p in MODULE_PATTERNS))
    depends: dict[str, list[str]] = {}
    aliases: list[str] = []
    pending = [*wanted, *extra]
    while pending:
        name = pending.pop()
        if name in depends or name in builtin or name not in paths:
            continue
        info = modinfo((source / paths[name]).read_bytes())
        deps = [d.replace("-", "_") for v in info.get("depends", []) for d in v.split(",") if d]
        depends[name] = deps
        aliases.extend(f"alias {a} {name}" for a in info.get("alias", []))
        pending.extend(deps)
    boot = _dependency_order(wanted, depends, builtin)
    kept = _dependency_order([*wanted, *extra], depends, builtin)
    for name in kept:
        destination = target / paths[name]
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / paths[name], destination)
    for meta in ("modules.builtin", "modules.order", "modules.builtin.modinfo"):
        if (source / meta).exists():
            shutil.copyfile(source / meta, target / meta)
    dep_lines = []
    for name in kept:
        closure = _dependency_order(depends[name], depends, builtin)
        dep_lines.append(f"{paths[name]}: {' '.join(paths[d] for d in reversed(closure))}")
    (target / "modules.dep").write_text("\n".join(dep_lines) + "\n")
    (target / "modules.alias").write_text("\n".join(aliases) + "\n")
    (target / "modules.nm").write_text("".join(f"{paths[n]}\n" for n in boot))


# --- busybox --------------------------------------------------------------------------


def busybox(cache_dir: Path, progress: Progress | None = None) -> Path:
    """Debian's static busybox binary, downloaded once into the cache."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    current = _read_json(cache_dir / "busybox.json")
    if current is not None:
        path = cache_dir / str(current.get("file", "-"))
        if path.is_file():
            return path
    version = _candidate_version(BUSYBOX_PACKAGE)
    if progress is not None:
        progress(f"downloading {BUSYBOX_PACKAGE}")
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".busybox-") as tmp:
        work = Path(tmp)
        deb = download(BUSYBOX_PACKAGE, work / "deb", "E751", progress)
        _unpack(deb, work / "tree", "E751")
        binary = work / "tree" / "bin" / "busybox"
        if not binary.is_file():
            raise guest_error("E751", f"{deb.name} holds no /bin/busybox")
        name = "busybox-" + version.replace(":", "_")
        os.replace(binary, cache_dir / name)
    write_json(cache_dir / "busybox.json", {"file": name, "version": version})
    return cache_dir / name


# --- cpio -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One member of a cpio archive: a directory, a regular file or a symlink."""

    name: str  # without a leading slash
    mode: int  # with the file type bits (0o040000 directory, 0o100000 file, 0o120000 link)
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)  # of a device node


def directory(name: str, perm: int = 0o755) -> Entry:
    return Entry(name, 0o040000 | perm)


def regular(name: str, data: bytes, perm: int = 0o644) -> Entry:
    return Entry(name, 0o100000 | perm, data)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, 0o120777, target.encode())


def chardev(name: str, major: int, minor: int, perm: int = 0o600) -> Entry:
    return Entry(name, 0o020000 | perm, b"", (major, minor))


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def write_cpio(entries: Iterable[Entry], out: Path) -> None:
    """An uncompressed newc ("070701") cpio archive, as the kernel unpacks an initramfs."""
    with out.open("wb") as f:
        ino = 1
        for entry in [*entries, Entry("TRAILER!!!", 0)]:
            name = entry.name.encode() + b"\0"
            fields = (
                ino,
                entry.mode,
                0,  # uid
                0,  # gid
                2 if entry.mode & 0o170000 == 0o040000 else 1,  # nlink
                0,  # mtime: reproducible archives
                len(entry.data),
                0,  # devmajor
                0,  # devminor
                entry.rdev[0],
                entry.rdev[1],
                len(name),
                0,  # check
            )
            header = b"070701" + b"".join(b"%08X" % v for v in fields)
            f.write(header + name + _pad4(len(header) + len(name)))
            f.write(entry.data + _pad4(len(entry.data)))
            ino += 1


def read_cpio(data: bytes) -> list[Entry]:
    """Members of a newc archive (to check what ``write_cpio`` wrote)."""
    entries: list[Entry] = []
    at = 0
    while True:
        if data[at : at + 6] != b"070701":
            raise ValueError(f"no newc header at offset {at}")
        fields = [int(data[at + 6 + 8 * i : at + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize, rdev = fields[1], fields[6], fields[11], (fields[9], fields[10])
        name_at = at + 110
        name = data[name_at : name_at + namesize - 1].decode()
        at = name_at + namesize
        at += -at % 4
        body = data[at : at + size]
        at += size
        at += -at % 4
        if name == "TRAILER!!!":
            return entries
        entries.append(Entry(name, mode, body, rdev))


# --- initramfs ------------------------------------------------------------------------

APPLETS = (
    "sh",
    "mount",
    "umount",
    "mkdir",
    "insmod",
    "modprobe",
    "cat",
    "ln",
    "ip",
    "hostname",
    "chroot",
    "sleep",
    "poweroff",
    "echo",
    "basename",
    "sed",
    "[",
    "test",
)

#: shell function of the guests' inits: each NIC named by ``nm.addr=MAC=CIDR`` among its
#: arguments (the kernel's command line) up with that address; ``say`` reports a failure
NM_ADDRESSES = r"""
nm_addresses() {
    for arg; do
        case "$arg" in nm.addr=*=*)
            spec="${arg#nm.addr=}"; mac="${spec%=*}"
            for dev in /sys/class/net/*; do
                [ "$(cat "$dev/address")" = "$mac" ] || continue
                ip link set dev "$(basename "$dev")" up
                ip addr add "${spec##*=}" dev "$(basename "$dev")" || say "cannot add $spec"
            done ;;
        esac
    done
}
"""

INIT = (
    r"""#!/bin/sh
# netmanager guest init: modules, host root over 9p, network, then guestd in a chroot.
export PATH=/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "nm-init: $*" > /dev/console; }
"""
    + NM_ADDRESSES
    + r"""
say "modules"
V=$(cat /modules.version)
echo /sbin/modprobe > /proc/sys/kernel/modprobe
while read -r m; do
    insmod "/lib/modules/$V/$m" 2>/dev/null || say "insmod $m failed"
done < /modules.nm

HOSTNAME=guest; PROJECT=/; PYTHON=/usr/bin/python3; RW=; MGMT=; CACHE=loose; GA=
set -- $(cat /proc/cmdline)
for arg; do
    case "$arg" in
        nm.hostname=*) HOSTNAME="${arg#nm.hostname=}" ;;
        nm.project=*) PROJECT="${arg#nm.project=}" ;;
        nm.python=*) PYTHON="${arg#nm.python=}" ;;
        nm.rw=*) RW="${arg#nm.rw=}" ;;
        nm.mgmt=*) MGMT="${arg#nm.mgmt=}" ;;
        nm.cache=*) CACHE="${arg#nm.cache=}" ;;
        nm.ga=*) GA="${arg#nm.ga=}" ;;
    esac
done
hostname "$HOSTNAME"

say "mounting the host root"
mkdir -p /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=$CACHE hostroot /newroot \
    || { say "cannot mount the host root"; sleep 1; poweroff -f; }
for d in /proc /sys /dev; do mount -o bind "$d" "/newroot$d"; done
mkdir -p /dev/shm /dev/pts /dev/virtio-ports
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t devpts devpts /dev/pts
for p in /sys/class/virtio-ports/*; do
    [ -e "$p/name" ] && ln -sf "../$(basename "$p")" "/dev/virtio-ports/$(cat "$p/name")"
done
# the project may live under a directory that gets a tmpfs (a clone in /tmp): keep it seen
if [ "$PROJECT" != / ] && [ -d "/newroot$PROJECT" ]; then
    mkdir -p /keep && mount -o bind "/newroot$PROJECT" /keep
fi
for d in /tmp /run /var/tmp /var/lib/netmanager $(echo "$RW" | sed 's/,/ /g'); do
    [ -d "/newroot$d" ] || { say "no directory $d to put a tmpfs on"; continue; }
    mount -t tmpfs -o mode=1777 tmpfs "/newroot$d" || say "no tmpfs on $d"
done
if [ -d /keep ] && [ ! -e "/newroot$PROJECT/netmanager" ]; then
    mkdir -p "/newroot$PROJECT" && mount -o bind /keep "/newroot$PROJECT" \
        || say "cannot show the project at $PROJECT"
fi
mkdir -p /newroot/run/netns

say "network"
ip link set lo up
n=0
for dev in /sys/class/net/*; do
    name=$(basename "$dev"); [ -e "$dev/device" ] || continue
    ip link set dev "$name" name "nmtmp$n"; n=$((n + 1))
done
for dev in /sys/class/net/nmtmp*; do
    tmp=$(basename "$dev"); mac=$(cat "$dev/address"); new=
    [ "$mac" = "$MGMT" ] && new=mgmt0
    for arg; do
        case "$arg" in nm.if=$mac=*) new="${arg#nm.if=$mac=}" ;; esac
    done
    [ -n "$new" ] && ip link set dev "$tmp" name "$new"
done
if [ -n "$MGMT" ]; then
    ip addr add 10.0.2.15/24 dev mgmt0
    # only the agent's answers leave the management NIC: UDP from port 161 to 10.0.2.2,
    # and the later fragments of a big answer (no UDP header: offset != 0); any other
    # first fragment or whole datagram is dropped, so no datagram can be completed
    TC="chroot /newroot /usr/sbin/tc"
    $TC qdisc add dev mgmt0 clsact \
    && $TC filter add dev mgmt0 egress prio 1 protocol ip u32 match ip protocol 17 0xff \
        match ip sport 161 0xffff match ip dst 10.0.2.2/32 action pass \
    && $TC filter add dev mgmt0 egress prio 2 protocol ip u32 match ip protocol 17 0xff \
        match u16 0 0x1fff at 6 action drop \
    && $TC filter add dev mgmt0 egress prio 3 protocol ip u32 match ip protocol 17 0xff \
        match ip dst 10.0.2.2/32 action pass \
    && $TC filter add dev mgmt0 egress prio 4 protocol arp matchall action pass \
    && $TC filter add dev mgmt0 egress prio 5 matchall action drop \
    && ip link set mgmt0 up \
    || say "cannot filter the management NIC: it stays down"
fi

if [ "$GA" = 1 ]; then
    # a libvirt domain: addresses it carries by itself (nm.addr=MAC=CIDR, as a user's
    # own image configures itself), then qemu-guest-agent (this machine's, through 9p)
    # as its control; a domain defined without the agent's channel runs without one
    nm_addresses "$@"
    if [ -e /dev/virtio-ports/org.qemu.guest_agent.0 ]; then
        say "qemu-ga"
        chroot /newroot /usr/sbin/qemu-ga -m virtio-serial \
            -p /dev/virtio-ports/org.qemu.guest_agent.0 -t /run -f /run/qemu-ga.pid
        say "qemu-ga exited with status $?"
        poweroff -f
    fi
    say "no guest agent channel: running without one"
    while :; do sleep 3600; done
fi

say "guestd"
cd "/newroot$PROJECT" 2>/dev/null || cd /newroot
PYTHONPATH="$PROJECT" PYTHONDONTWRITEBYTECODE=1 HOME=/tmp \
    chroot /newroot "$PYTHON" -S "$PROJECT/netmanager/guests/guestd.py"
say "guestd exited with status $?"
poweroff -f
"""
)


def initramfs(
    kern: Kernel, cache_dir: Path, progress: Progress | None = None, init: str = INIT
) -> Path:
    """The initramfs for ``kern``, cached under a hash of what goes into it."""
    cache_dir = Path(cache_dir)
    box = busybox(cache_dir, progress)
    boot = (kern.modules / "modules.nm").read_text()
    members: list[tuple[str, Path]] = []  # (name in the archive, file on the host)
    prefix = f"lib/modules/{kern.version}"
    for path in sorted(kern.modules.rglob("*")):
        if path.is_file():
            members.append((f"{prefix}/{path.relative_to(kern.modules)}", path))
    key = hashlib.sha256()
    key.update(init.encode() + b"\0" + kern.version.encode() + b"\0" + boot.encode())
    for name, path in [("bin/busybox", box), *members]:
        st = path.stat()
        key.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    out = cache_dir / f"initramfs-{key.hexdigest()[:16]}.cpio"
    if out.is_file():
        return out
    if progress is not None:
        progress("writing the initramfs")
    entries: list[Entry] = [directory(d) for d in ("bin", "sbin", "dev", "proc", "sys", "lib")]
    entries += [directory("newroot"), directory("lib/modules"), directory(prefix)]
    entries.append(chardev("dev/console", 5, 1))
    entries.append(regular("bin/busybox", box.read_bytes(), 0o755))
    entries += [symlink(f"bin/{a}", "busybox") for a in APPLETS]
    entries += [symlink(f"sbin/{a}", "../bin/busybox") for a in ("modprobe", "insmod")]
    entries.append(regular("init", init.encode(), 0o755))
    entries.append(regular("modules.version", kern.version.encode() + b"\n"))
    entries.append(regular("modules.nm", boot.encode()))
    made = {prefix}
    for name, path in members:
        parts = name.split("/")
        for i in range(len(parts) - 1):
            parent = "/".join(parts[: i + 1])
            if parent not in made and parent not in ("lib", "lib/modules"):
                made.add(parent)
                entries.append(directory(parent))
        entries.append(regular(name, path.read_bytes()))
    tmp = out.with_name(out.name + ".tmp")
    write_cpio(entries, tmp)
    os.replace(tmp, out)
    return out
