"""The guest image without QEMU: the cpio writer, vmlinux extraction, module metadata and
QEMU's command line."""

from __future__ import annotations

import lzma
import struct
import subprocess
from pathlib import Path

import pytest

from netmanager import programs
from netmanager.guests import image, qemu
from netmanager.guests.errors import GuestError


def test_cpio_round_trip(tmp_path: Path) -> None:
    entries = [
        image.directory("bin"),
        image.regular("bin/busybox", b"\x7fELF" + bytes(range(256)) * 3, 0o755),
        image.symlink("bin/sh", "busybox"),
        image.chardev("dev/console", 5, 1),
        image.regular("init", b"#!/bin/sh\necho hi\n", 0o755),
        image.regular("empty", b""),
        image.regular("odd-name-length", b"x"),
    ]
    out = tmp_path / "a.cpio"
    image.write_cpio(entries, out)
    assert image.read_cpio(out.read_bytes()) == entries
    assert len(out.read_bytes()) % 4 == 0


@pytest.mark.skipif(programs.which("cpio") is None, reason=programs.not_installed("cpio"))
def test_cpio_is_read_by_the_cpio_tool(tmp_path: Path) -> None:
    out = tmp_path / "a.cpio"
    image.write_cpio([image.directory("bin"), image.regular("bin/x", b"data")], out)
    listed = subprocess.run(
        ["cpio", "-t", "--quiet"], input=out.read_bytes(), capture_output=True, check=True
    )
    assert listed.stdout.decode().split() == ["bin", "bin/x"]


def test_vmlinux_is_found_after_a_false_magic_and_before_trailing_data() -> None:
    elf = b"\x7fELF" + b"kernel" * 1000
    payload = lzma.compress(elf, format=lzma.FORMAT_XZ)
    bzimage = b"MZ setup" + image.XZ_MAGIC + b"not xz at all" + payload + b"\0trailer" * 10
    assert image.extract_vmlinux(bzimage) == elf


def test_no_vmlinux_is_a_guest_error() -> None:
    not_elf = lzma.compress(b"no kernel here", format=lzma.FORMAT_XZ)
    with pytest.raises(GuestError) as caught:
        image.extract_vmlinux(b"header" + not_elf)
    assert caught.value.errors[0].code == "E752"


def _module(info: dict[str, str]) -> bytes:
    """A minimal ELF64 with a .modinfo section, as a kernel module has."""
    modinfo = b"".join(f"{k}={v}".encode() + b"\0" for k, v in info.items())
    names = b"\0.modinfo\0.shstrtab\0"
    body_at = 64
    names_at = body_at + len(modinfo)
    shoff = names_at + len(names)
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header += struct.pack("<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 3, 2)
    null = bytes(64)
    info_sh = struct.pack("<IIQQQQIIQQ", 1, 1, 0, 0, body_at, len(modinfo), 0, 0, 1, 0)
    names_sh = struct.pack("<IIQQQQIIQQ", 10, 3, 0, 0, names_at, len(names), 0, 0, 1, 0)
    return header + modinfo + names + null + info_sh + names_sh


def test_modinfo_and_dependency_order() -> None:
    info = image.modinfo(_module({"depends": "llc,stp", "alias": "rtnl-link-bridge"}))
    assert info == {"depends": ["llc,stp"], "alias": ["rtnl-link-bridge"]}
    depends = {"br_netfilter": ["bridge"], "bridge": ["stp", "llc"], "stp": ["llc"], "llc": []}
    order = image._dependency_order(["br_netfilter", "bridge"], depends, builtin={"stp"})
    assert order == ["llc", "bridge", "br_netfilter"]
    assert image.module_name("kernel/net/8021q/8021q.ko") == "8021q"
    assert image.module_name("kernel/drivers/net/nf-foo.ko") == "nf_foo"


def test_qemu_command_line(tmp_path: Path) -> None:
    kern = image.Kernel("6.1.0-1-amd64", tmp_path / "vmlinux", tmp_path / "modules")
    spec = qemu.GuestSpec(
        name="h1",
        kernel=kern,
        initramfs=tmp_path / "initramfs.cpio",
        run_dir=tmp_path / "run",
        agent_port=16161,
        nics=(qemu.Nic("52:54:00:AA:00:01", "nmtgx", "tap0", "eth1"),),
    )
    argv = qemu.qemu_argv(spec, [7])
    assert argv[argv.index("-accel") + 1].startswith("tcg")
    assert "tap,id=u0,fd=7" in argv
    assert "user,id=mgmt,ipv6=off,hostfwd=udp:127.0.0.1:16161-:161" in argv
    cmdline = argv[argv.index("-append") + 1].split()
    assert "nm.if=52:54:00:aa:00:01=eth1" in cmdline
    assert "nm.hostname=h1" in cmdline
    bad = qemu.GuestSpec(
        name="h 1", kernel=kern, initramfs=tmp_path / "i", run_dir=tmp_path / "run"
    )
    with pytest.raises(GuestError):
        qemu.kernel_cmdline(bad)


def test_a_tap_in_a_missing_namespace_is_a_guest_error() -> None:
    with pytest.raises(GuestError) as caught:
        qemu.open_tap("nmtg-no-such-namespace", "nmtgtap0")
    assert caught.value.errors[0].code == "E758"
