"""Which kernel and userspace features this machine offers (``netmanager doctor``).

Each kernel feature is tried for real, inside a throwaway network namespace that is
removed afterwards: creating a VXLAN, an 802.1Q sub-interface, a VLAN-filtering bridge,
TBF/HTB/NetEm qdiscs, an IFB device.  Nothing outside that namespace is touched.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError


@dataclass(frozen=True)
class Feature:
    name: str
    available: bool
    detail: str
    enables: str


ENABLES = {
    "netns": 'emulated hosts and VMs (hypervisor="netns")',
    "veth": "VM ports and emulated underlay links",
    "bridge": "one L2 domain per virtual network on each host",
    "vxlan": 'networks spanning hosts over VXLAN (encap="vxlan")',
    "8021q": 'networks spanning hosts over 802.1Q VLANs (encap="vlan")',
    "bridge_vlan_filtering": "VLAN trunks on one bridge",
    "tbf": "bandwidth shaping",
    "htb": "per-pair bandwidth between VMs of one network",
    "netem": "latency, jitter and loss",
    "ifb": "shaping of the traffic a VM sends (ingress of its port)",
    "br_netfilter": "iptables isolation of bridged traffic",
    "iptables": "isolation rules and NAT (iptables-restore)",
    "ebtables": "anti-spoofing on VM ports (ebtables-restore)",
}


def _try(action: Callable[[], object]) -> tuple[bool, str]:
    try:
        action()
    except NetlinkError as exc:
        if exc.code == errno.ENOENT:
            return False, "not in this kernel (no such qdisc or module)"
        return False, f"kernel refused: {os.strerror(exc.code)}"
    return True, "works"


def _kernel_features(namespace: str) -> dict[str, tuple[bool, str]]:
    found: dict[str, tuple[bool, str]] = {"netns": (True, "works")}
    with IPRoute(netns=namespace) as ipr:
        found["veth"] = _try(lambda: ipr.link("add", ifname="p0", kind="veth", peer="p1"))
        found["bridge"] = _try(lambda: ipr.link("add", ifname="pbr", kind="bridge"))
        found["vxlan"] = _try(
            lambda: ipr.link("add", ifname="pvx", kind="vxlan", vxlan_id=4242, vxlan_port=4789)
        )
        found["bridge_vlan_filtering"] = _try(
            lambda: ipr.link("add", ifname="pbrf", kind="bridge", br_vlan_filtering=1)
        )
        found["ifb"] = _try(lambda: ipr.link("add", ifname="pifb", kind="ifb"))
        veth = ipr.link_lookup(ifname="p0")
        if veth:
            index = veth[0]
            found["8021q"] = _try(
                lambda: ipr.link("add", ifname="p0.42", kind="vlan", link=index, vlan_id=42)
            )
            found["tbf"] = _try(
                lambda: ipr.tc(
                    "add", "tbf", index=index, handle="1:", rate="1mbit", burst=16000, latency=50000
                ),
            )
            if found["tbf"][0]:
                ipr.tc("del", index=index, handle="1:", root=True)
            found["htb"] = _try(lambda: ipr.tc("add", "htb", index=index, handle="1:", default=0))
            if found["htb"][0]:
                ipr.tc("del", index=index, handle="1:", root=True)
            found["netem"] = _try(
                lambda: ipr.tc("add", "netem", index=index, handle="1:", delay=1000)
            )
        else:
            for name in ("8021q", "tbf", "htb", "netem"):
                found[name] = (False, "not tested: no veth")
    return found


def _tool_version(tool: str) -> str | None:
    path = shutil.which(tool)
    if path is None:
        return None
    result = subprocess.run([path, "-V"], capture_output=True, text=True, check=False, timeout=10)
    return (
        (result.stdout or result.stderr).strip().splitlines()[0] if result.returncode == 0 else None
    )


def _in_namespace(namespace: str, argv: list[str]) -> bool:
    nsenter = shutil.which("nsenter")
    if nsenter is None:
        return False
    result = subprocess.run(
        [nsenter, f"--net=/run/netns/{namespace}", *argv],
        capture_output=True,
        check=False,
        timeout=10,
    )
    return result.returncode == 0


def probe() -> list[Feature]:
    """Probe every feature; needs root (without it, every kernel feature reads as missing)."""
    namespace = f"nmprobe-{os.getpid()}"
    kernel: dict[str, tuple[bool, str]]
    try:
        netns.create(namespace)
    except OSError as exc:
        kernel = {name: (False, f"cannot create a namespace: {exc.strerror}") for name in ENABLES}
        kernel = {
            k: v for k, v in kernel.items() if k not in ("br_netfilter", "iptables", "ebtables")
        }
        namespace = ""
    try:
        if namespace:
            kernel = _kernel_features(namespace)
        bridge_nf = Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists()
        kernel["br_netfilter"] = (
            bridge_nf,
            "loaded" if bridge_nf else "/proc/sys/net/bridge is missing",
        )
        iptables = _tool_version("iptables")
        backend = "nf_tables" if iptables and "nf_tables" in iptables else "legacy"
        if iptables and shutil.which("iptables-restore"):
            works = not namespace or _in_namespace(namespace, ["iptables", "-w", "-S"])
            kernel["iptables"] = (works, f"{backend} backend, {iptables}")
        else:
            kernel["iptables"] = (False, "iptables and iptables-restore are not installed")
        ebtables = _tool_version("ebtables")
        if ebtables and shutil.which("ebtables-restore"):
            works = not namespace or _in_namespace(namespace, ["ebtables", "-L"])
            kernel["ebtables"] = (works, ebtables if works else f"{ebtables}: the kernel refused")
        else:
            kernel["ebtables"] = (False, "ebtables is not installed")
    finally:
        if namespace:
            netns.remove(namespace)
    return [Feature(name, *kernel[name], ENABLES[name]) for name in ENABLES if name in kernel]


ESSENTIAL = ("netns", "veth", "bridge")


def capabilities(features: list[Feature]) -> frozenset[str]:
    """The capability names of real.xml (``capabilities="..."``) that these features give."""
    names = {f.name for f in features if f.available}
    return frozenset(
        n
        for n in (
            "8021q",
            "vxlan",
            "netem",
            "tbf",
            "htb",
            "ifb",
            "bridge",
            "br_netfilter",
            "ebtables",
            "iptables",
        )
        if n in names
    )
