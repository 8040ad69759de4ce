#!/usr/bin/env python3
"""Benchmark (not a test): libvirt hosts — wiring domains against wiring namespaces.

One host, N VMs on one shaped network (N = 1, 4, 8), applied through the host's agent:

* **namespaces**: the host emulated as a namespace (``hypervisor="netns"``), its VMs
  namespaces: the baseline, measured in the same run;
* **attach**: the host a libvirt host emulated here (``qemu:///embed``); N domains defined
  and started beforehand "by the user" (through the host's keeper, as virsh would: on a
  bridge of their own, no netmanager metadata, every guest agent answering, each guest
  carrying its address as cloud-init would have given it); the time of the ``apply``
  that attaches them — each NIC moved onto the network's bridge through libvirt, each tap
  adopted, marked and shaped, each guest's network checked through its agent (no
  process started in it);
* **attach+addr**: the same with the guests' addresses flushed first, so that netmanager
  sets them through each guest agent (one ``ip -batch`` process started in each guest:
  about 0.1 s of a guest's emulated CPU alone, several times that with 8 guests on two
  cores);
* **define**: ``apply`` of the same topology with ``<template source="netmanager"/>``:
  the N domains defined, started, booted (Debian's stock kernel under software emulation),
  wired and addressed, until every guest answers a ping from the first.

The domains boot netmanager's own guest image (``NETMANAGER_GUEST_CACHE``, fetched with
apt on first use).  Prints a table and, as its last line, ``wire_ratio: <attach of 8
domains / namespaces, same topology> boot_s: <define, boot and wire 4 domains, until every
guest answers ping>``.  Goals: wire_ratio <= 2, boot_s <= 60 (software emulation).  Root
only; its own namespace prefix, state directories, keepers and domains, all removed at
the end, also on failure.

    .venv/bin/python bench/libvirt.py
    .venv/bin/python bench/libvirt.py --sizes 1 4
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lxml import etree

from netmanager.agentctl import processes as agent_procs
from netmanager.apply import topology as topologies
from netmanager.apply.prepare import prepare
from netmanager.apply.readback import domain_agent
from netmanager.compile.hostconfig import host_namespace
from netmanager.guests.domains import guest_template
from netmanager.host.domainhost import KEEPER_DIR
from netmanager.hypervisor.domxml import DefinedInterface, domain_xml
from netmanager.hypervisor.keeper import KeeperClient
from netmanager.hypervisor.spec import DomainSpec

REAL = """<?xml version="1.0" encoding="UTF-8"?>
<real xmlns="urn:netmanager:real:1" version="1.0">
  <site name="lab"><vni-range first="6100" last="6199"/></site>
  <switch name="sw1" site="lab"/>
  <host name="lv1" site="lab" hypervisor="{hypervisor}" cpus="16" memory="8GB">
    <interface name="eth0" address="192.0.2.31/24"/>
  </host>
  <link a="lv1:eth0" b="sw1" capacity="1Gbit"/>
</real>
"""
VIRTUAL_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="{topology}">
  <network name="lan" cidr="10.40.0.0/24"><shaping bandwidth="10Mbit"/></network>
"""
MEMORY_MIB = 192


def mac(i: int) -> str:
    return f"52:54:00:40:00:{i:02x}"


def virtual(topology: str, n: int, kind: str) -> str:
    """The topology: N VMs on lan, as namespaces, attached domains or defined ones."""
    out = VIRTUAL_HEAD.format(topology=topology)
    for i in range(1, n + 1):
        ip = f"10.40.0.{i}"
        if kind == "define":
            out += (
                f'  <vm name="vm{i}" host="lv1" memory="{MEMORY_MIB}MB">'
                f'<template source="netmanager"/><interface network="lan" ip="{ip}"/></vm>\n'
            )
        elif kind == "attach":
            out += (
                f'  <vm name="vm{i}" host="lv1" domain="user{i}" memory="{MEMORY_MIB}MB">'
                f'<interface network="lan" ip="{ip}" mac="{mac(i)}"/></vm>\n'
            )
        else:
            out += f'  <vm name="vm{i}" host="lv1"><interface network="lan" ip="{ip}"/></vm>\n'
    return out + "</virtual>\n"


def anchor(kind: str) -> str:
    """A topology of one VM that stays applied while the others are measured, so that
    each apply measures wiring, not the host's agent, keeper and namespace coming up."""
    template = '<template source="netmanager"/>' if kind == "define" else ""
    return (
        VIRTUAL_HEAD.format(topology=f"anchor-{kind}").replace("10.40.0.0/24", "10.41.0.0/24")
        + f'  <vm name="anchor" host="lv1" memory="{MEMORY_MIB}MB">{template}'
        '<interface network="lan" ip="10.41.0.1"/></vm>\n</virtual>\n'
    )


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def timed_apply(real: Path, virtual_xml: Path) -> float:
    start = time.perf_counter()
    topologies.apply(prepare(real, virtual_xml))
    return time.perf_counter() - start


def user_domain(i: int, bridge: str) -> str:
    """A domain as a user defines it: netmanager's guest image, one NIC on the user's
    bridge with a tap libvirt names, no netmanager metadata."""
    template = guest_template()
    spec = DomainSpec(
        f"user{i}",
        type(template)(
            **{
                **template.__dict__,
                "cmdline": f"{template.cmdline} nm.hostname=user{i} nm.if={mac(i)}=eth0",
            }
        ),
        memory_mib=MEMORY_MIB,
    )
    xml = domain_xml(
        spec, [DefinedInterface(mac(i), bridge, "x")], topology="-", vm="-", domain_type="qemu"
    )
    root = etree.fromstring(xml.encode())
    root.remove(root.find("metadata"))
    target = root.find("devices/interface/target")
    assert target is not None
    target.getparent().remove(target)
    return etree.tostring(root, encoding="unicode")


def ping_all(n: int, timeout_s: float = 120.0) -> None:
    """Until vm1's guest answers... every other guest answers a ping from vm1."""
    agent = domain_agent("lv1")
    deadline = time.monotonic() + timeout_s
    try:
        for i in range(2, n + 1):
            while True:
                code, _out, _err = agent.guest_exec("vm1", ["ping", "-c1", "-W1", f"10.40.0.{i}"])
                if code == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"vm{i} did not answer vm1's ping")
    finally:
        close = getattr(agent, "close", None)
        if close is not None:
            close()


def cleanup(prefix: str) -> None:
    agent_procs.stop_agents()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    for line in listed.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(prefix):
            subprocess.run(["ip", "netns", "del", name], check=False)


def run(sizes: list[int], directory: Path, prefix: str) -> dict[str, dict[int, float]]:
    results: dict[str, dict[int, float]] = {
        "namespaces": {},
        "attach": {},
        "address": {},
        "define": {},
    }
    os.environ["NETMANAGER_NS_PREFIX"] = prefix
    # namespaces: a state of their own (another real.xml)
    os.environ["NETMANAGER_STATE_DIR"] = str(directory / "state-ns")
    real_ns = write(directory, "real-ns.xml", REAL.format(hypervisor="netns"))
    timed_apply(real_ns, write(directory, "anchor-ns.xml", anchor("ns")))
    for n in sizes:
        v = write(directory, f"ns-{n}.xml", virtual(f"ns{n}", n, "ns"))
        results["namespaces"][n] = timed_apply(real_ns, v)
        topologies.destroy(f"ns{n}")
        print(f"namespaces  N={n}: {results['namespaces'][n]:.2f} s", flush=True)
    cleanup(prefix)
    os.environ["NETMANAGER_STATE_DIR"] = str(directory / "state-lv")
    real_lv = write(directory, "real-lv.xml", REAL.format(hypervisor="qemu:///embed"))
    timed_apply(real_lv, write(directory, "anchor-lv.xml", anchor("define")))
    for n in sizes:
        v = write(directory, f"define-{n}.xml", virtual(f"define{n}", n, "define"))
        start = time.perf_counter()
        timed_apply(real_lv, v)
        if n > 1:
            ping_all(n)
        results["define"][n] = time.perf_counter() - start
        print(f"define      N={n}: {results['define'][n]:.2f} s", flush=True)
        topologies.destroy(f"define{n}")
    # attach: the keeper runs (the host's agent started it); domains defined by "the user"
    ns = host_namespace("lv1")
    subprocess.run(["ip", "-n", ns, "link", "add", "br-user", "type", "bridge"], check=True)
    subprocess.run(["ip", "-n", ns, "link", "set", "br-user", "up"], check=True)
    keeper = KeeperClient(agent_procs.agents_dir() / "lv1" / KEEPER_DIR)
    try:
        for n in sizes:
            for i in range(1, n + 1):
                keeper.define(user_domain(i, "br-user"))
                keeper.start(f"user{i}")
            for i in range(1, n + 1):
                if not keeper.wait_guest_agent(f"user{i}", 180):
                    raise RuntimeError(f"user{i}'s guest agent did not answer")
                # the user's guest carries its address already (as cloud-init would give
                # it): attaching wires the host's side and checks the guest's
                for argv in (
                    ["/sbin/ip", "addr", "add", f"10.40.0.{i}/24", "dev", "eth0"],
                    ["/sbin/ip", "link", "set", "eth0", "up"],
                ):
                    code, _out, err = keeper.guest_exec(f"user{i}", argv)
                    assert code == 0, err
            v = write(directory, f"attach-{n}.xml", virtual(f"attach{n}", n, "attach"))
            results["attach"][n] = timed_apply(real_lv, v)
            print(f"attach      N={n}: {results['attach'][n]:.2f} s", flush=True)
            topologies.destroy(f"attach{n}")
            # again, the guests bare: netmanager addresses them too (a process in each)
            for i in range(1, n + 1):
                code, _out, err = keeper.guest_exec(
                    f"user{i}", ["/sbin/ip", "addr", "flush", "dev", "eth0"]
                )
                assert code == 0, err
            results["address"][n] = timed_apply(real_lv, v)
            print(f"attach+addr N={n}: {results['address'][n]:.2f} s", flush=True)
            topologies.destroy(f"attach{n}")
            for i in range(1, n + 1):
                keeper.undefine(f"user{i}")
    finally:
        keeper.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/libvirt.py needs root (namespaces, taps, QEMU)", file=sys.stderr)
        return 2
    prefix = f"nbl{secrets.token_hex(2)}"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            results = run(sorted(args.sizes), Path(tmp), prefix)
        finally:
            cleanup(prefix)
    print()
    print(
        f"{'N':>3} {'namespaces':>11} {'attach':>8} {'ratio':>6} {'attach+addr':>12} "
        f"{'ratio':>6} {'define+boot':>12}"
    )
    for n in sorted(args.sizes):
        ns_s, attach_s = results["namespaces"][n], results["attach"][n]
        address_s = results["address"][n]
        print(
            f"{n:>3} {ns_s:>10.2f}s {attach_s:>7.2f}s {attach_s / ns_s:>6.2f} "
            f"{address_s:>11.2f}s {address_s / ns_s:>6.2f} {results['define'][n]:>11.1f}s"
        )
    big = max(args.sizes)
    boot_n = 4 if 4 in args.sizes else big
    print(f"address_ratio: {results['address'][big] / results['namespaces'][big]:.2f}")
    print(
        f"wire_ratio: {results['attach'][big] / results['namespaces'][big]:.2f} "
        f"boot_s: {results['define'][boot_n]:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
