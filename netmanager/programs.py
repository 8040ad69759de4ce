"""Every external program netmanager runs, and the Debian package that provides it.

Code finds a program through :func:`which` (or :func:`path`), which only answers for the
names listed here: a program looked up without being listed is a bug, raised at once.
``scripts/install`` installs every package of :data:`PROGRAMS` (``--libvirt`` adds those
of libvirt hosts, ``--dev`` those and the packages of the programs only the tests and
benchmarks run); ``tests/test_install.py``
checks this list against ``scripts/install --list`` and against the program names the
source runs, so neither can drift.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Program:
    name: str
    package: str  # the Debian package that provides it
    used_for: str
    dev: bool = False  # only the tests and benchmarks run it (scripts/install --dev)
    libvirt: bool = False  # only libvirt hosts need it (scripts/install --libvirt)


_ALL = (
    Program("ip", "iproute2", "namespaces of verify's runs; the underlay inside guest hosts"),
    Program("tc", "iproute2", "shaping inside guest hosts"),
    Program("nsenter", "util-linux", "firewall tools, iperf3 and `exec` inside a namespace"),
    Program("iptables", "iptables", "isolation rules; doctor's probe"),
    Program("iptables-save", "iptables", "reading netmanager's iptables chains"),
    Program("iptables-restore", "iptables", "replacing netmanager's iptables chains"),
    # Debian's ebtables-nft, the default alternative for ebtables, comes with iptables
    Program("ebtables", "iptables", "doctor's probe of the bridge firewall"),
    Program("ebtables-save", "iptables", "reading netmanager's ebtables chains"),
    Program("ebtables-restore", "iptables", "replacing netmanager's ebtables chains"),
    Program("sysctl", "procps", "the IPv4-only setting of guest hosts"),
    Program("cat", "coreutils", "reading kernel state inside namespaces and guests"),
    Program("tail", "coreutils", "the last lines of a guest's logs"),
    Program("ls", "coreutils", "the namespaces inside a guest host"),
    Program("rm", "coreutils", "verify's and capture's scratch files inside a guest host"),
    Program("base64", "coreutils", "`capture` copies a pcap out of a guest host"),
    Program("modprobe", "kmod", "the kernel loads the modules of vxlan, netem, ... with it"),
    Program("iperf3", "iperf3", "verify's throughput checks"),
    Program("ping", "iputils-ping", "the README's quick start runs it in a VM (`exec`)"),
    Program("tcpdump", "tcpdump", "`capture` records a VM port's traffic"),
    Program("dot", "graphviz", "`show --graph` draws with Graphviz"),
    Program("qemu-system-x86_64", "qemu-system-x86", 'hosts of hypervisor="guest"'),
    Program("python3", "python3", "netmanager's daemon and agent inside guest hosts"),
    Program("apt-get", "apt", "downloading the guests' stock Debian kernel and busybox"),
    Program("apt-cache", "apt", "the candidate versions of the guests' kernel and busybox"),
    Program("dpkg-deb", "dpkg", "unpacking the guests' kernel and busybox"),
    # libvirt hosts (scripts/install --libvirt; --dev includes it)
    Program("libvirtd", "libvirt-daemon", "the hypervisor daemon of libvirt hosts", libvirt=True),
    Program("virtlogd", "libvirt-daemon", "libvirt's log daemon for QEMU domains", libvirt=True),
    Program("virsh", "libvirt-clients", "operators and tests list domains with it", libvirt=True),
    Program(
        "qemu-ga", "qemu-guest-agent", "the guest agent inside libvirt test domains", libvirt=True
    ),
    Program(
        "genisoimage",
        "genisoimage",
        "cloud-init seeds of domains defined from images",
        libvirt=True,
    ),
    # only the tests and benchmarks
    Program("snmpget", "snmp", "tests of the SNMP agent", dev=True),
    Program("snmpset", "snmp", "tests of the SNMP agent", dev=True),
    Program("snmpwalk", "snmp", "tests of the SNMP agent", dev=True),
    Program("snmpbulkwalk", "snmp", "tests of the SNMP agent; bench/snmp.py", dev=True),
    Program("ss", "iproute2", "the live view's test waits for iperf3's port", dev=True),
    Program("bridge", "iproute2", "the tests read bridge ports and forwarding tables", dev=True),
    Program("snmpbulkget", "snmp", "tests of the SNMP agent", dev=True),
    Program("snmptable", "snmp", "tests of the SNMP agent", dev=True),
    Program("snmptranslate", "snmp", "the MIB test", dev=True),
    Program("snmpd", "snmpd", "bench/snmp.py's comparison with net-snmp's agent", dev=True),
    Program("snmptrapd", "snmptrapd", "the trap tests", dev=True),
    Program("smilint", "smitools", "the MIB test", dev=True),
    Program("cpio", "cpio", "the guest image test reads the initramfs with it", dev=True),
    Program("uname", "coreutils", "the guest tests: the guest's own kernel", dev=True),
    Program("mkdir", "coreutils", "the guest tests' scratch directory", dev=True),
    Program("true", "coreutils", "the guest tests' control channel", dev=True),
    Program("hostname", "hostname", "the guest tests: the guest's name", dev=True),
    Program("git", "git", "the package test lists the checkout's files", dev=True),
    Program("isoinfo", "genisoimage", "the cloud-init seed test reads the volume", dev=True),
    Program("sh", "dash", "the tests read a namespace's kernel state in one command", dev=True),
)

#: Program name -> :class:`Program`.
PROGRAMS: dict[str, Program] = {p.name: p for p in _ALL}

#: Debian packages scripts/install installs that provide no program netmanager runs.
SUPPORT_PACKAGES: dict[str, str] = {
    "python3-venv": "the virtualenv in .venv",
    "python3-dev": "building a Python dependency that has no wheel for this machine",
    "gcc": "building a Python dependency that has no wheel for this machine",
    "ebtables": "ebtables-legacy, the other alternative for ebtables",
    "libvirt-daemon-driver-qemu": "libvirt's QEMU driver (libvirtd's, and the embedded one)",
    "libvirt-daemon-system": "the libvirt-qemu user QEMU runs as under libvirtd",
    "libvirt-dev": "building libvirt-python (the libvirt extra)",
    "pkg-config": "building libvirt-python (the libvirt extra)",
}


def program(name: str) -> Program:
    """The listed program ``name``; a name not listed is a programming error."""
    try:
        return PROGRAMS[name]
    except KeyError:
        raise ValueError(f"{name!r} is not listed in netmanager.programs.PROGRAMS") from None


def which(name: str) -> str | None:
    """The path of the listed program ``name`` on PATH, or None when it is not installed."""
    program(name)
    return shutil.which(name)


def path(name: str) -> str:
    """:func:`which`, or the bare name when the program is missing (running it then fails
    with an error that names it)."""
    return which(name) or name


def not_installed(name: str) -> str:
    """The message for a missing program: what it is and what installs it."""
    p = program(name)
    install = (
        "scripts/install --dev"
        if p.dev
        else "scripts/install --libvirt"
        if p.libvirt
        else "scripts/install"
    )
    return f"{name} is not installed (Debian package {p.package}; {install} installs it)"


def packages(*, dev: bool = False, libvirt: bool = False) -> frozenset[str]:
    """The Debian packages of the programs netmanager runs (with ``libvirt``, also those
    of libvirt hosts; with ``dev``, also those the tests and benchmarks run, libvirt's
    included)."""
    return frozenset(
        p.package for p in _ALL if dev or (libvirt and p.libvirt) or not (p.dev or p.libvirt)
    )
