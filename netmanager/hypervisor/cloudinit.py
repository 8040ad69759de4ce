"""cloud-init's NoCloud seed of a domain netmanager defines from a disk image.

A cloud image configures its network at first boot from a seed: a small ISO 9660 volume
labelled ``cidata`` holding ``meta-data``, ``user-data`` and ``network-config`` (version 2,
netplan's schema), attached to the domain as a CD-ROM.  :func:`seed_files` is the seed's
content (pure): each NIC matched by its MAC and named as netmanager names the VM's
interfaces (``eth0``...), with its address, MTU and the VM's routes; IP forwarding where
the VM forwards.  The files are JSON, which is YAML too (cloud-init reads them with a YAML
parser).  :func:`write_seed` makes the volume with genisoimage.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from netmanager import programs

LABEL = "cidata"


@dataclass(frozen=True)
class SeedNic:
    mac: str
    ifname: str
    address: str  # "10.0.0.1/24"
    mtu: int


def seed_files(
    domain: str,
    hostname: str,
    nics: Sequence[SeedNic],
    routes: Sequence[tuple[str, str]] = (),
    forward: bool = False,
) -> dict[str, str]:
    """The seed's files by name: ``meta-data`` (an instance id that changes with the
    network, so that cloud-init applies a new one), ``user-data``, ``network-config``."""
    ethernets: dict[str, dict[str, object]] = {}
    for i, nic in enumerate(nics):
        entry: dict[str, object] = {
            "match": {"macaddress": nic.mac.lower()},
            "set-name": nic.ifname,
            "addresses": [nic.address],
            "mtu": nic.mtu,
            "dhcp4": False,
            "dhcp6": False,
            "accept-ra": False,
            "link-local": [],
        }
        if i == 0 and routes:
            entry["routes"] = [
                {"to": "default" if to == "0.0.0.0/0" else to, "via": via} for to, via in routes
            ]
        ethernets[nic.ifname] = entry
    network = {"network": {"version": 2, "ethernets": ethernets}}
    network_text = json.dumps(network, indent=1, sort_keys=True) + "\n"
    instance = hashlib.sha256(f"{domain}\n{network_text}".encode()).hexdigest()[:12]
    meta = {"instance-id": f"{domain}-{instance}", "local-hostname": hostname}
    user: dict[str, object] = {"preserve_hostname": False, "hostname": hostname}
    if forward:
        user["write_files"] = [
            {
                "path": "/etc/sysctl.d/90-netmanager-forward.conf",
                "content": "net.ipv4.ip_forward = 1\n",
            }
        ]
        user["runcmd"] = [["sysctl", "-w", "net.ipv4.ip_forward=1"]]
    return {
        "meta-data": json.dumps(meta, indent=1, sort_keys=True) + "\n",
        "user-data": "#cloud-config\n" + json.dumps(user, indent=1, sort_keys=True) + "\n",
        "network-config": network_text,
    }


def write_seed(files: dict[str, str], out: Path) -> Path:
    """The seed volume (ISO 9660 with Joliet and Rock Ridge, labelled ``cidata``) at
    ``out``, written whole or not at all."""
    tool = programs.which("genisoimage")
    if tool is None:
        raise OSError(programs.not_installed("genisoimage"))
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        names = []
        for name, text in sorted(files.items()):
            (Path(tmp) / name).write_text(text)
            names.append(str(Path(tmp) / name))
        partial = Path(tmp) / "seed.iso"
        argv = [tool, "-quiet", "-output", str(partial), "-volid", LABEL, "-joliet", "-rock"]
        argv += ["-input-charset", "utf-8", *names]
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise OSError(f"genisoimage failed ({done.returncode}): {done.stderr.strip()}")
        partial.chmod(0o644)
        partial.replace(out)
    return out
