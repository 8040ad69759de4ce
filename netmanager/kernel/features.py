"""Which kernel and userspace features this machine offers (``netmanager doctor``).

(pyroute2 is imported only when a probe runs: ``apply`` usually takes the cached answer.)

Each kernel feature is tried for real, inside a throwaway network namespace that is
removed afterwards: creating a VXLAN, an 802.1Q sub-interface, a VLAN-filtering bridge,
TBF/HTB/NetEm qdiscs, an IFB device.  Nothing outside that namespace is touched.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from netmanager import programs
from netmanager.inputs.model import CAPABILITIES


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
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        action()
    except NetlinkError as exc:
        if exc.code == errno.ENOENT:
            return False, "not in this kernel (no such qdisc or module)"
        return False, f"kernel refused: {os.strerror(exc.code)}"
    return True, "works"


def _kernel_features(namespace: str) -> dict[str, tuple[bool, str]]:
    from pyroute2 import IPRoute

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
    path = programs.which(tool)
    if path is None:
        return None
    result = subprocess.run([path, "-V"], capture_output=True, text=True, check=False, timeout=10)
    return (
        (result.stdout or result.stderr).strip().splitlines()[0] if result.returncode == 0 else None
    )


def _in_namespace(namespace: str, argv: list[str]) -> bool:
    nsenter = programs.which("nsenter")
    if nsenter is None:
        return False
    result = subprocess.run(
        [nsenter, f"--net=/run/netns/{namespace}", *argv],
        capture_output=True,
        check=False,
        timeout=10,
    )
    return result.returncode == 0


#: the throwaway namespace of a probe is this and the probing process's PID
PROBE_NAMESPACE = "nmprobe-"


def stale_probe_namespaces() -> list[str]:
    """Probe namespaces whose process is gone (killed while it probed)."""
    try:
        names = os.listdir("/run/netns")
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        pid = name.removeprefix(PROBE_NAMESPACE)
        if name.startswith(PROBE_NAMESPACE) and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            out.append(name)
    return sorted(out)


def probe() -> list[Feature]:
    """Probe every feature; needs root (without it, every kernel feature reads as missing)."""
    from pyroute2 import netns

    namespace = f"{PROBE_NAMESPACE}{os.getpid()}"
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
        if iptables and programs.which("iptables-restore"):
            works = not namespace or _in_namespace(namespace, ["iptables", "-w", "-S"])
            kernel["iptables"] = (works, f"{backend} backend, {iptables}")
        else:
            kernel["iptables"] = (False, "iptables and iptables-restore are not installed")
        ebtables = _tool_version("ebtables")
        if ebtables and programs.which("ebtables-restore"):
            works = not namespace or _in_namespace(namespace, ["ebtables", "-L"])
            kernel["ebtables"] = (works, ebtables if works else f"{ebtables}: the kernel refused")
        else:
            kernel["ebtables"] = (False, "ebtables is not installed")
    finally:
        if namespace:
            netns.remove(namespace)
    return [Feature(name, *kernel[name], ENABLES[name]) for name in ENABLES if name in kernel]


def machine_key() -> str:
    """What the probe's answer depends on: the boot, the kernel release, the loaded
    modules, and the firewall tools (path and modification time)."""
    parts = [os.uname().release]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text())
    except OSError:
        parts.append("")
    try:  # the names only: reference counts move as devices come and go
        lines = Path("/proc/modules").read_text().splitlines()
        parts.append(" ".join(sorted(line.split(" ", 1)[0] for line in lines)))
    except OSError:
        parts.append("")
    for tool in ("iptables", "iptables-restore", "ebtables", "ebtables-restore", "nsenter"):
        path = programs.which(tool)
        try:
            parts.append(f"{path}:{os.stat(path).st_mtime_ns}" if path else f"{tool}:-")
        except OSError:
            parts.append(f"{tool}:?")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def local_capabilities(cache: Path, *, fresh: bool = False) -> frozenset[str]:
    """:func:`capabilities` of a :func:`probe`, kept in ``cache`` under the
    :func:`machine_key`: a module loaded or a tool installed since makes the next call probe
    again (``fresh`` always does)."""
    key = machine_key()
    if not fresh:
        try:
            cached = json.loads(cache.read_text())
        except (OSError, ValueError):
            cached = None
        if isinstance(cached, dict) and cached.get("key") == key:
            return frozenset(str(c) for c in cached.get("capabilities", ()))
    found = capabilities(probe())
    remember(cache, found, key)
    return found


def remember(cache: Path, found: frozenset[str], key: str | None = None) -> None:
    """Keep a probe's capabilities for :func:`local_capabilities` (best effort)."""
    from netmanager.statedir import write_json

    with contextlib.suppress(OSError):
        write_json(cache, {"key": key or machine_key(), "capabilities": sorted(found)})


ESSENTIAL = ("netns", "veth", "bridge")


def capabilities(features: list[Feature]) -> frozenset[str]:
    """The capability names of real.xml (``capabilities="..."``) that these features give."""
    return CAPABILITIES & {f.name for f in features if f.available}


def main(argv: list[str] | None = None) -> int:
    """``python -m netmanager.kernel.features CACHE``: this machine's capabilities as a JSON
    list (those of :func:`local_capabilities` with that cache).  A process that must not
    create a namespace itself (an agent serving requests) asks a child process so."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m netmanager.kernel.features CACHE", file=sys.stderr)
        return 2
    print(json.dumps(sorted(local_capabilities(Path(args[0])))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
