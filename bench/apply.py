#!/usr/bin/env python3
"""Benchmark (not a test): apply, re-apply and destroy of N VMs over 4 emulated hosts.

Every VM is a namespace with a veth into its host's bridge, an address, a default route
and a TBF on the host side; the hosts (dom0 namespaces) are joined by veths into an
emulated switch, each with a VXLAN in its bridge and static FDB entries to the others.
The same work is done side by side, in the same run, by:

* netmanager: the whole pipeline of ``netmanager apply`` — real.xml and virtual.xml read,
  validated, mapped, compiled, rendered, then the engine and the firewall (one iptables
  and one ebtables restore per host) — then a re-apply of the unchanged files, then
  ``netmanager destroy``;
* engine: ``Engine.apply`` alone of an equivalent HostState built in Python (what the
  pipeline costs beyond the kernel work shows as the difference);
* (a) ``ip -batch``: one batch file per namespace (``ip``, ``tc`` and ``bridge -batch``),
  namespaces added and deleted by one ``ip -batch`` each;
* (b) the Python floor: netlink messages pre-built with pyroute2's encoders (``IPBatch`` as
  a compiler only), sent many per send() on one socket per namespace, every ACK checked,
  namespaces created in-process.  Message building is reported separately;
* Mininet 2.3 (Debian's package, Linux-bridge switch, TCLink TBF): the same N VMs on one
  bridge, built by ``Mininet(...)`` + ``net.start()`` and torn down by ``net.stop()``, run by
  bench/mininet_baseline.py in Debian's Python with its cleanup and sysctl changes
  disabled; skipped, with the reason, where Mininet is not installed
  (``apt-get install -y --no-install-recommends mininet bridge-utils ethtool``).

Prints as its last line ``ratio: <netmanager apply / floor incl. building, at the largest
size> reapply: <seconds>``.  Root only; everything it creates has its own random prefix
and is deleted at the end, also on failure.

    .venv/bin/python bench/apply.py                # 10, 100 and 1000 VMs
    .venv/bin/python bench/apply.py --sizes 10,100
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import mininet_baseline  # bench/mininet_baseline.py: the script's directory is on sys.path
from pyroute2 import IPBatch

from netmanager.kernel import (
    Address,
    Engine,
    FdbEntry,
    HostState,
    KernelObject,
    Link,
    LinkKind,
    Namespace,
    Qdisc,
    Route,
    VethPeer,
    Vxlan,
    netns,
    tbf_for_rate,
)
from netmanager.kernel import netlink as nl
from netmanager.kernel.objects import ipv6_sysctls

HOSTS = 4
RATE_BPS = 100_000_000
TBF = tbf_for_rate(RATE_BPS)
GATEWAY = "10.0.255.254"
MTU = 1450  # the VXLAN over a 1500-byte underlay carries 1450


# ----------------------------------------------------------------------------- the topology


def dom0(prefix: str, host: int) -> str:
    return f"{prefix}-h{host}"


def switch(prefix: str) -> str:
    return f"{prefix}-sw"


def vm_name(prefix: str, host: int, i: int) -> str:
    return f"{prefix}-{host}-{i}"


def vm_address(i: int) -> ipaddress.IPv4Interface:
    return ipaddress.IPv4Interface(f"{ipaddress.IPv4Address('10.0.0.1') + i}/16")


def underlay(host: int) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(f"192.0.2.{host + 1}")


def placement(n: int, hosts: int = HOSTS) -> list[tuple[int, int]]:
    """(host, vm index) for every VM, spread round-robin."""
    return [(i % hosts, i) for i in range(n)]


def namespaces(prefix: str, n: int) -> list[str]:
    return [
        switch(prefix),
        *(dom0(prefix, h) for h in range(HOSTS)),
        *(vm_name(prefix, h, i) for h, i in placement(n)),
    ]


def desired(prefix: str, n: int) -> HostState:
    sw = switch(prefix)
    objects: list[KernelObject] = [
        Namespace(sw),
        Link(sw, "sw0", LinkKind.BRIDGE, alias="nm:fabric:switch"),
    ]
    for h in range(HOSTS):
        d = dom0(prefix, h)
        objects += [
            Namespace(d),
            Link(d, "ul0", LinkKind.VETH, alias="nm:fabric:uplink", peer=VethPeer(sw, f"h{h}")),
            Link(
                sw,
                f"h{h}",
                LinkKind.VETH,
                alias="nm:fabric:port",
                master="sw0",
                peer=VethPeer(d, "ul0"),
            ),
            Address(d, "ul0", ipaddress.IPv4Interface(f"{underlay(h)}/24")),
            Link(d, "br0", LinkKind.BRIDGE, alias="nm:bench:net", mtu=MTU),
            Link(
                d,
                "vx0",
                LinkKind.VXLAN,
                alias="nm:bench:net/vxlan",
                master="br0",
                mtu=MTU,
                vxlan=Vxlan(vni=100, local=underlay(h), underlay="ul0"),
            ),
            *(FdbEntry(d, "vx0", underlay(o)) for o in range(HOSTS) if o != h),
        ]
    for h, i in placement(n):
        d, v = dom0(prefix, h), vm_name(prefix, h, i)
        objects += [
            Namespace(v),
            Link(
                d,
                f"v{i}",
                LinkKind.VETH,
                alias=f"nm:bench:vm{i}",
                master="br0",
                mtu=MTU,
                peer=VethPeer(v, "eth0"),
            ),
            Link(
                v,
                "eth0",
                LinkKind.VETH,
                alias=f"nm:bench:vm{i}",
                mtu=MTU,
                peer=VethPeer(d, f"v{i}"),
            ),
            Address(v, "eth0", vm_address(i)),
            Route(v, ipaddress.IPv4Network("0.0.0.0/0"), "eth0", ipaddress.IPv4Address(GATEWAY)),
            Qdisc(d, f"v{i}", TBF),
        ]
    return HostState.checked(objects)


# ----------------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def timer(into: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        into[key] = time.perf_counter() - start


def settle(limit_s: float = 60.0) -> float:
    """Wait until the CPUs are idle again: namespace teardown is asynchronous, and a run
    must not pay for the previous run's cleanup.  Returns the seconds waited."""
    start = time.perf_counter()

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    while time.perf_counter() - start < limit_s:
        total0, idle0 = sample()
        time.sleep(0.5)
        total1, idle1 = sample()
        if total1 > total0 and (idle1 - idle0) / (total1 - total0) > 0.9:
            break
    return time.perf_counter() - start


def remove_all(prefix: str) -> None:
    """Delete every namespace of ``prefix`` (the safety net; also after failures)."""
    for name in netns.listed(prefix):
        with contextlib.suppress(OSError):
            netns.remove(name)


def check(prefix: str, n: int) -> None:
    """Not timed: the topology works (a VM reaches another across hosts, inside our own
    namespaces only) and has the expected size."""
    assert len(netns.listed(prefix + "-")) == len(namespaces(prefix, n)), prefix
    if n >= 2:
        src = vm_name(prefix, 0, 0)
        dst = vm_address(1).ip  # VM 1 lives on host 1
        for _ in range(5):
            if (
                subprocess.run(
                    ["ip", "netns", "exec", src, "ping", "-c1", "-W1", "-q", str(dst)],
                    check=False,
                    capture_output=True,
                ).returncode
                == 0
            ):
                return
        raise AssertionError(f"{src} does not reach {dst}")


# --------------------------------------------------------------------------------- netmanager


def write_inputs(directory: Path, n: int, hosts: int = HOSTS) -> tuple[Path, Path]:
    """real.xml (``hosts`` emulated hosts on one switch) and virtual.xml (n VMs in one
    network that spans the hosts, each shaped and with a static route), VMs pinned
    round-robin."""
    count = hosts
    hosts = "\n".join(
        f'''  <host name="host{h}" site="lab" hypervisor="netns" cpus="{n}" memory="{n}GB">
    <interface name="eth0" address="192.0.2.{h + 1}/24"/>
  </host>'''
        for h in range(count)
    )
    links = "\n".join(
        f'  <link a="host{h}:eth0" b="sw1" capacity="100Gbit"/>' for h in range(count)
    )
    real = directory / "real.xml"
    real.write_text(
        f"""<real xmlns="urn:netmanager:real:1" version="1.0">
  <site name="lab"><vni-range first="1000" last="1999"/></site>
  <switch name="sw1" site="lab"/>
{hosts}
{links}
</real>
"""
    )
    vms = "\n".join(
        f'''  <vm name="vm{i}" host="host{h}" memory="256MB">
    <interface network="net" ip="{vm_address(i).ip}"/>
    <route to="10.99.0.0/16" via="{vm_address(0 if i else 1).ip}"/>
  </vm>'''
        for i, (h, _) in enumerate(placement(n, count))
    )
    virtual = directory / "virtual.xml"
    virtual.write_text(
        f'''<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="bench">
  <network name="net" cidr="10.0.0.0/16" encap="vxlan">
    <shaping bandwidth="{RATE_BPS // 1_000_000}Mbit"/>
  </network>
{vms}
</virtual>
'''
    )
    return real, virtual


def run_pipeline(prefix: str, n: int) -> dict[str, float]:
    from netmanager.apply import topology
    from netmanager.apply.prepare import local_features, prepare

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NETMANAGER_NS_PREFIX"] = prefix
        os.environ["NETMANAGER_STATE_DIR"] = str(Path(tmp) / "state")
        try:
            real, virtual = write_inputs(Path(tmp), n)
            features = local_features()  # probed once, as a long-lived manager would
            with timer(out, "apply"):
                topology.apply(prepare(real, virtual, features=features), local=True)
            src = f"{prefix}v-bench-vm0"
            for _ in range(5):
                ping = [
                    "ip",
                    "netns",
                    "exec",
                    src,
                    "ping",
                    "-c1",
                    "-W1",
                    "-q",
                    str(vm_address(1).ip),
                ]
                if subprocess.run(ping, check=False, capture_output=True).returncode == 0:
                    break
            else:
                raise AssertionError("vm0 does not reach vm1 across hosts")
            with timer(out, "reapply"):
                again = topology.apply(prepare(real, virtual, features=features), local=True)
            assert again.changes == 0, again.phases
            with timer(out, "destroy"):
                topology.destroy("bench")
        finally:
            os.environ.pop("NETMANAGER_NS_PREFIX", None)
            os.environ.pop("NETMANAGER_STATE_DIR", None)
    return out


def run_netmanager(prefix: str, n: int) -> dict[str, float]:
    state = desired(prefix, n)
    scope = namespaces(prefix, n)
    out: dict[str, float] = {}
    with Engine() as engine, timer(out, "apply"):
        result = engine.apply(state)
    assert result.changes == len(state)
    out.update({f"apply.{k}": v for k, v in result.timings.items()})
    check(prefix, n)
    with Engine() as engine, timer(out, "reapply"):  # a fresh engine: nothing cached
        again = engine.apply(state)
    assert again.changes == 0, again.plan.render()
    out.update({f"reapply.{k}": v for k, v in again.timings.items()})
    with Engine() as engine, timer(out, "destroy"):
        engine.destroy(scope)
    assert netns.listed(prefix + "-") == []
    return out


# ------------------------------------------------------------------------------- (a) ip -batch


def _batch(tool: list[str], lines: list[str], directory: str, name: str) -> list[str]:
    path = os.path.join(directory, name)
    Path(path).write_text("\n".join(lines) + "\n")
    return [*tool, "-batch", path]


def run_ip_batch(prefix: str, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    sw = switch(prefix)
    names = namespaces(prefix, n)
    with tempfile.TemporaryDirectory(prefix="nmbench") as tmp:
        commands: list[list[str]] = [
            _batch(["ip"], [f"netns add {ns}" for ns in names], tmp, "netns-add"),
            _batch(
                ["ip", "-n", sw],
                ["link add sw0 type bridge", "link set sw0 addrgenmode none", "link set sw0 up"],
                tmp,
                "sw",
            ),
        ]
        fabric: list[str] = []
        for h in range(HOSTS):
            d = dom0(prefix, h)
            # IPv6 off as in netmanager's namespaces: no link-local address on any port
            lines = [
                "link add br0 type bridge",
                "link set br0 addrgenmode none",
                "link set br0 up",
                f"link add ul0 type veth peer name h{h} netns {sw}",
                "link set ul0 addrgenmode none",
                "link set ul0 up",
                f"addr add {underlay(h)}/24 dev ul0",
                f"link add vx0 type vxlan id 100 local {underlay(h)} dev ul0 dstport 4789"
                " nolearning",
                "link set vx0 addrgenmode none",
                "link set vx0 master br0 up",
            ]
            tc: list[str] = []
            for host, i in placement(n):
                if host == h:
                    lines += [
                        f"link add v{i} mtu {MTU} type veth peer name eth0 mtu {MTU}"
                        f" netns {vm_name(prefix, h, i)}",
                        f"link set v{i} addrgenmode none",
                        f"link set v{i} master br0 up",
                    ]
                    tc.append(
                        f"qdisc add dev v{i} root handle 1: tbf rate {RATE_BPS}bit"
                        f" burst {TBF.burst_bytes} limit {TBF.limit_bytes}"
                    )
            fdb = [
                f"fdb append 00:00:00:00:00:00 dev vx0 dst {underlay(o)}"
                for o in range(HOSTS)
                if o != h
            ]
            commands += [
                _batch(["ip", "-n", d], lines, tmp, f"h{h}"),
                _batch(["bridge", "-n", d], fdb, tmp, f"h{h}-fdb"),
            ]
            if tc:
                commands.append(_batch(["tc", "-n", d], tc, tmp, f"h{h}-tc"))
            fabric += [f"link set h{h} addrgenmode none", f"link set h{h} master sw0 up"]
        commands.append(_batch(["ip", "-n", sw], fabric, tmp, "sw-ports"))
        for h, i in placement(n):
            v = vm_name(prefix, h, i)
            commands.append(
                _batch(
                    ["ip", "-n", v],
                    [
                        "link set lo up",
                        "link set eth0 addrgenmode none",
                        "link set eth0 up",
                        f"addr add {vm_address(i)} dev eth0",
                        f"route add default via {GATEWAY} dev eth0",
                    ],
                    tmp,
                    v,
                )
            )
        with timer(out, "apply"):
            for argv in commands:
                subprocess.run(argv, check=True, capture_output=True)
        check(prefix, n)
        with timer(out, "destroy"):
            subprocess.run(
                _batch(["ip"], [f"netns del {ns}" for ns in names], tmp, "netns-del"),
                check=True,
                capture_output=True,
            )
    return out


# ------------------------------------------------------------------------- (b) the Python floor


def _send_all(sock: socket.socket, data: bytes, count: int) -> None:
    """Send pre-built requests (many per send()) and check every ACK."""
    sock.send(data)
    acked = 0
    while acked < count:
        for msg in nl.messages(sock.recv(1 << 16)):
            if msg.type == nl.NLMSG_ERROR:
                code, note = nl.decode_error(msg)
                if code:
                    raise nl.NetlinkError(code, note, "floor")
                acked += 1


def run_floor(prefix: str, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    names = namespaces(prefix, n)
    home = netns.current_fd()
    fds: dict[str, int] = {}
    socks: dict[str, socket.socket] = {}
    batch = IPBatch()
    plans: list[tuple[str, bytes, int]] = []

    def compile_for(ns: str, build: Callable[[], int]) -> None:
        batch.reset()
        count = build()
        plans.append((ns, bytes(batch.batch), count))

    try:
        with timer(out, "create_netns"):
            for ns in names:
                fds[ns] = netns.create(ns, home, ipv6_sysctls(False))  # as netmanager
                with netns.inside(fds[ns], home):
                    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
                sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
                sock.setsockopt(socket.SOL_SOCKET, 32, 8 << 20)  # SO_SNDBUFFORCE
                sock.setsockopt(nl.SOL_NETLINK, nl.NETLINK_CAP_ACK, 1)
                sock.bind((0, 0))
                socks[ns] = sock
        sw = switch(prefix)
        with timer(out, "build"):

            def switch_bridge() -> int:
                batch.link("add", index=2, ifname="sw0", kind="bridge", state="up")
                return 1

            compile_for(sw, switch_bridge)
            for h in range(HOSTS):
                d = dom0(prefix, h)

                def host(h: int = h) -> int:
                    batch.link("add", index=2, ifname="br0", kind="bridge", state="up")
                    batch.link(
                        "add",
                        index=3,
                        ifname="ul0",
                        kind="veth",
                        state="up",
                        peer={"ifname": f"h{h}", "net_ns_fd": fds[sw]},
                    )
                    batch.addr("add", index=3, address=str(underlay(h)), prefixlen=24)
                    batch.link(
                        "add",
                        index=4,
                        ifname="vx0",
                        kind="vxlan",
                        vxlan_id=100,
                        vxlan_local=str(underlay(h)),
                        vxlan_link=3,
                        vxlan_port=4789,
                        vxlan_learning=0,
                        master=2,
                        state="up",
                    )
                    count = 4
                    for o in range(HOSTS):
                        if o != h:
                            batch.fdb(
                                "append",
                                ifindex=4,
                                lladdr="00:00:00:00:00:00",
                                dst=str(underlay(o)),
                            )
                            count += 1
                    for host_of, i in placement(n):
                        if host_of == h:
                            batch.link(
                                "add",
                                index=100 + i,
                                ifname=f"v{i}",
                                kind="veth",
                                master=2,
                                state="up",
                                mtu=MTU,
                                peer={
                                    "ifname": "eth0",
                                    "mtu": MTU,
                                    "net_ns_fd": fds[vm_name(prefix, h, i)],
                                },
                            )
                            batch.tc(
                                "add",
                                kind="tbf",
                                index=100 + i,
                                handle="1:",
                                rate=RATE_BPS // 8,
                                burst=TBF.burst_bytes,
                                limit=TBF.limit_bytes,
                            )
                            count += 2
                    return count

                compile_for(d, host)

            def ports() -> int:
                for h in range(HOSTS):  # the switch ends got indexes 3.. in creation order
                    batch.link("set", index=3 + h, master=2, state="up")
                return HOSTS

            compile_for(sw, ports)
            for h, i in placement(n):

                def guest(i: int = i) -> int:
                    batch.link("set", index=1, state="up")
                    batch.link("set", index=2, state="up")
                    batch.addr("add", index=2, address=str(vm_address(i).ip), prefixlen=16)
                    batch.route("add", dst="0.0.0.0/0", gateway=GATEWAY, oif=2)
                    return 4

                compile_for(vm_name(prefix, h, i), guest)
        with timer(out, "send"):
            for ns, data, count in plans:
                _send_all(socks[ns], data, count)
        out["apply"] = out["create_netns"] + out["send"]
        out["apply+build"] = out["apply"] + out["build"]
        check(prefix, n)
        for sock in socks.values():
            sock.close()
        socks.clear()
        for fd in fds.values():
            os.close(fd)
        fds.clear()
        with timer(out, "destroy"):
            for ns in names:
                netns.remove(ns)
    finally:
        for sock in socks.values():
            sock.close()
        for fd in fds.values():
            os.close(fd)
        os.close(home)
    return out


# -------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000", help="comma-separated VM counts")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (best is kept)")
    parser.add_argument("--skip-ip-batch", action="store_true", help="skip baseline (a)")
    parser.add_argument("--skip-mininet", action="store_true", help="skip the Mininet baseline")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/apply.py needs root (it creates namespaces)", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",") if s]
    base = f"nmb{secrets.token_hex(2)}"
    methods: list[tuple[str, Callable[[str, int], dict[str, float]]]] = [
        ("netmanager", run_pipeline),
        ("engine", run_netmanager),
        ("floor", run_floor),
    ]
    if not args.skip_ip_batch:
        methods.append(("ip-batch", run_ip_batch))
    results: dict[tuple[str, int], dict[str, float]] = {}
    try:
        for n in sizes:
            for name, run in methods:
                best: dict[str, float] | None = None
                for attempt in range(args.repeat):
                    prefix = f"{base}{name[0]}{attempt}"
                    settle()
                    try:
                        got = run(prefix, n)
                    finally:
                        remove_all(prefix)
                    if best is None or got["apply"] < best["apply"]:
                        best = got
                assert best is not None
                results[(name, n)] = best
                detail = "  ".join(f"{k} {v:.3f}" for k, v in sorted(best.items()))
                print(f"{name:>10} N={n:<5} {detail}", flush=True)
            if not args.skip_mininet:
                mininet_baseline.settle()
                got = mininet_baseline.measure(n)
                if got is not None:
                    results[("mininet", n)] = got
                    detail = "  ".join(f"{k} {v:.3f}" for k, v in sorted(got.items()))
                    print(f"{'mininet':>10} N={n:<5} {detail}", flush=True)
    finally:
        for name, _ in methods:
            for attempt in range(args.repeat):
                remove_all(f"{base}{name[0]}{attempt}")
    print()
    print(
        f"{'N':>6} {'netmanager':>11} {'reapply':>8} {'destroy':>8} {'engine':>7} {'floor':>7} "
        f"{'+build':>7} {'ip-batch':>9} {'mininet':>8} {'mn/nm':>6} {'ratio':>6}"
    )
    for n in sizes:
        nm, fl = results[("netmanager", n)], results[("floor", n)]
        en = results[("engine", n)]["apply"]
        ib = results.get(("ip-batch", n), {}).get("apply", float("nan"))
        mn = results.get(("mininet", n), {}).get("apply", float("nan"))
        print(
            f"{n:>6} {nm['apply']:>11.3f} {nm['reapply']:>8.3f} {nm['destroy']:>8.3f} "
            f"{en:>7.3f} {fl['apply']:>7.3f} {fl['apply+build']:>7.3f} {ib:>9.3f} "
            f"{mn:>8.3f} {mn / nm['apply']:>6.1f} {nm['apply'] / fl['apply+build']:>6.2f}"
        )
    largest = max(sizes)
    nm, fl = results[("netmanager", largest)], results[("floor", largest)]
    print(f"ratio: {nm['apply'] / fl['apply+build']:.2f} reapply: {nm['reapply']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
