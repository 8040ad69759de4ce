#!/usr/bin/env python3
"""Benchmark (not a test): guest hosts — booting and provisioning them, and how exactly
NetEm's latency shows between VMs on two of them.

* boot: ``apply`` of examples/aef-grid-vlan (32 VMs, a VLAN per network) on 2 and on 4
  guest hosts (the 2-host variant pins host3's VMs on host1 and host4's on host2), from
  nothing: guests booted (two at a time), their agents started, everything configured
  through SNMP; then the re-apply and the destroy that powers them off;
* latency: two guest hosts, one VM on each, a network over the 802.1Q trunk with a
  declared latency L of 0, 1, 5, 20, 100 and 500 ms (each re-applied in place: only the
  NetEm qdiscs change); for each, SAMPLES echoes between the two guests themselves (from
  host1's root namespace to host2's underlay address: the path's own round trip), then
  SAMPLES from one VM to the other, both with ``ping`` inside host1's guest, as verify
  measures a guest pair.  The one-way latency measured is (10th percentile RTT - the own
  round trip's 10th percentile) / 2 (verify's estimate,
  :func:`netmanager.verify.connectivity.guest_estimate`); its error against L is the
  table's; the median and the RTTs' spread are shown beside it, and the share of the
  time some task on this machine waited for a CPU meanwhile (PSI).

Prints both tables and, as its last line, ``boot: <s for 4 hosts> latency_err_ms: <the
worst error>``.  Root only; its own namespace prefix, state directory and guests, all
removed at the end, also on failure.  The guest kernel is cached as for apply
(``NETMANAGER_GUEST_CACHE``).

    .venv/bin/python bench/guests.py
    .venv/bin/python bench/guests.py --skip-boot --samples 100
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from netmanager import programs
from netmanager.apply import topology as topologies
from netmanager.apply.prepare import prepare
from netmanager.apply.readback import vm_location
from netmanager.guests import hosts
from netmanager.verify.connectivity import GUEST_LATENCY_QUANTILE, guest_estimate
from netmanager.verify.distributed import parse_ping, ping_argv
from netmanager.verify.expect import Declared
from netmanager.verify.pressure import cpu_stall_us
from netmanager.verify.stats import quantile

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GRID_REAL = EXAMPLES / "aef-grid-vlan/real.xml"
GRID_VIRTUAL = EXAMPLES / "aef-grid-vlan/virtual.xml"
TWO_REAL = EXAMPLES / "two-hosts-guests/real.xml"
LATENCIES_MS = (0, 1, 5, 20, 100, 500)
NS = "urn:netmanager:real:1"

VIRTUAL = """<?xml version="1.0" encoding="UTF-8"?>
<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="bench-latency">
  <network name="lan" cidr="10.20.0.0/24" encap="vlan">
    <shaping bandwidth="100Mbit"{latency}/>
  </network>
  <vm name="vm1" host="host1"><interface network="lan" ip="10.20.0.1"/></vm>
  <vm name="vm2" host="host2"><interface network="lan" ip="10.20.0.2"/></vm>
</virtual>
"""


def two_host_grid(directory: Path) -> Path:
    """aef-grid-vlan's real.xml on host1 and host2 only, with the VMs of host3 and host4
    pinned to them."""
    tree = etree.parse(str(GRID_REAL))
    root = tree.getroot()
    by_name = {h.get("name"): h for h in root.iter(f"{{{NS}}}host")}
    for gone, keeper in (("host3", "host1"), ("host4", "host2")):
        for vm in by_name[gone].findall(f"{{{NS}}}vm"):
            by_name[keeper].append(vm)
        root.remove(by_name[gone])
        for link in root.findall(f"{{{NS}}}link"):
            if link.get("a", "").startswith(f"{gone}:") or link.get("b", "").startswith(f"{gone}:"):
                root.remove(link)
    for keeper in ("host1", "host2"):
        by_name[keeper].set("max-vms", "16")
        by_name[keeper].set("cpus", "16")
        by_name[keeper].set("memory", "5GB")
    path = directory / "real.xml"
    tree.write(str(path), xml_declaration=True, encoding="UTF-8")
    (directory / "snmp.toml").write_text((GRID_REAL.parent / "snmp.toml").read_text())
    (directory / "snmp.toml").chmod(0o600)
    return path


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def boot(real: Path, virtual: Path) -> dict[str, float]:
    out = {"apply": timed(lambda: topologies.apply(prepare(real, virtual)))}
    out["reapply"] = timed(lambda: topologies.apply(prepare(real, virtual)))
    topology = prepare(real, virtual).topology
    out["destroy"] = timed(lambda: topologies.destroy(topology))
    return out


def ping(where: str, dst: str, samples: int, interval: float) -> list[float]:
    """``samples`` echoes from VM ``where`` (or from host1's root namespace, where it is
    a host) to ``dst``, ping inside host1's guest; their round trips."""
    namespace: str | None = None
    host: str | None = "host1"
    src = "192.0.2.11"
    if where != "host1":
        namespace, host = vm_location(where, "bench-latency")
        src = "10.20.0.1"
    assert host is not None
    guest = hosts.guest_of(host)
    assert guest is not None
    try:
        argv = ping_argv(
            programs.path("ping"), src, dst, count=samples, interval_s=interval, timeout_s=6.0
        )
        done = guest.run(argv, netns=namespace, timeout=samples * 2 + 60)
    finally:
        guest.disconnect()
    series = parse_ping(done.stdout)
    return [series.rtts[k] for k in sorted(series.rtts)]


def latency_table(directory: Path, samples: int) -> list[dict[str, float]]:
    virtual = directory / "latency.xml"
    rows: list[dict[str, float]] = []
    try:
        for latency in LATENCIES_MS:
            attribute = f' latency="{latency}ms"' if latency else ""
            virtual.write_text(VIRTUAL.format(latency=attribute))
            topologies.apply(prepare(TWO_REAL, virtual))
            ping("vm1", "10.20.0.2", 3, 0.2)  # ARP resolved, queues settled
            interval = 0.01 if latency < 100 else 0.05
            stall, start = cpu_stall_us(), time.monotonic()
            own = ping("host1", "192.0.2.12", samples, interval)
            rtts = ping("vm1", "10.20.0.2", samples, interval)
            stalled, seconds = cpu_stall_us(), time.monotonic() - start
            estimate = guest_estimate(rtts, own, Declared(2.0 * latency, 0.0, 0.0))
            assert estimate.rtt_ms is not None
            one_way = estimate.rtt_ms / 2
            rows.append(
                {
                    "declared_ms": float(latency),
                    "rtt_median_ms": statistics.median(rtts),
                    "rtt_p10_ms": quantile(rtts, GUEST_LATENCY_QUANTILE),
                    "own_p10_ms": estimate.own_ms,
                    "one_way_ms": one_way,
                    "error_ms": one_way - latency,
                    "p5_ms": quantile(rtts, 0.05),
                    "p95_ms": quantile(rtts, 0.95),
                    "received": float(len(rtts)),
                    "cpu_pressure": (stalled - stall) / 1e6 / seconds
                    if stall is not None and stalled is not None
                    else float("nan"),
                }
            )
    finally:
        topologies.destroy("bench-latency")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200, help="echoes per latency")
    parser.add_argument("--skip-boot", action="store_true", help="only the latency table")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/guests.py needs root (namespaces, taps, QEMU)", file=sys.stderr)
        return 2
    prefix = f"nbg{secrets.token_hex(2)}"
    boots: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        os.environ["NETMANAGER_NS_PREFIX"] = prefix
        os.environ["NETMANAGER_STATE_DIR"] = str(directory / "state")
        try:
            if not args.skip_boot:
                for n, real in ((2, two_host_grid(directory)), (4, GRID_REAL)):
                    boots[n] = boot(real, GRID_VIRTUAL)
                    print(
                        f"aef-grid-vlan on {n} guest hosts: "
                        + "  ".join(f"{k} {v:.1f} s" for k, v in boots[n].items()),
                        flush=True,
                    )
            rows = latency_table(directory, args.samples)
        finally:
            hosts.stop_guests()
            listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
            for line in listed.stdout.splitlines():
                name = line.split()[0] if line.split() else ""
                if name.startswith(prefix):
                    subprocess.run(["ip", "netns", "del", name], check=False)
    if boots:
        print()
        print(f"{'hosts':>5} {'apply (boot)':>13} {'re-apply':>9} {'destroy':>8}")
        for n, got in sorted(boots.items()):
            print(f"{n:>5} {got['apply']:>12.1f}s {got['reapply']:>8.1f}s {got['destroy']:>7.1f}s")
    print()
    print(
        f"{'declared':>9} {'RTT p10':>8} {'own p10':>8} {'one way':>8} {'error':>7} "
        f"{'RTT median':>11} {'RTT p5':>7} {'RTT p95':>8} {'echoes':>7} {'CPU pressure':>13}"
    )
    for row in rows:
        print(
            f"{row['declared_ms']:>7.0f}ms {row['rtt_p10_ms']:>6.2f}ms {row['own_p10_ms']:>6.2f}ms "
            f"{row['one_way_ms']:>6.2f}ms {row['error_ms']:>+6.2f}ms "
            f"{row['rtt_median_ms']:>9.2f}ms "
            f"{row['p5_ms']:>5.2f}ms {row['p95_ms']:>6.2f}ms {row['received']:>7.0f} "
            f"{row['cpu_pressure']:>12.0%}"
        )
    worst = max((abs(r["error_ms"]) for r in rows if r["declared_ms"] > 0), default=0.0)
    boot4 = boots.get(4, {}).get("apply", float("nan"))
    print(f"boot: {boot4:.1f} latency_err_ms: {worst:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
