#!/usr/bin/env python3
"""A small distributed experiment on the AEF grid, driven only through netmanager's
Python API (``from netmanager import Testbed``), the way an experiment runner would:

1. build examples/aef-grid (4 hosts, 3 isolated sites, 32 VMs) and wait until every port
   is up;
2. inside each site, a ping matrix between VMs on different hosts (all pings of a source
   run at once, each a process in its VM: ``Testbed.popen``);
3. between sites, one ping per pair of sites: isolation says none may answer;
4. throughput with iperf3: over the 1 Mbit/s backbone (proxy to proxy) and inside a site
   across hosts (unshaped);
5. write ``results.csv`` and ``grid.png`` (the round-trip matrices and the throughputs),
   and take the testbed away, also when something above fails.

    sudo .venv/bin/python examples/frameworks/grid_experiment.py --out results/grid

Needs root (it builds namespaces), ping and iperf3, and matplotlib for the picture.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from netmanager import GuestProcess, NetmanagerError, Status, Testbed

HERE = Path(__file__).resolve().parent
GRID = HERE.parent / "aef-grid"
RTT = re.compile(r"= [\d.]+/([\d.]+)/")
SITES = ("site1", "site2", "site3")


def wait_until_up(testbed: Testbed, timeout_s: float = 30.0) -> Status:
    deadline = time.monotonic() + timeout_s
    while True:
        status = testbed.status()
        if status.up or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


def sample(status: Status, site: str, per_site: int) -> list[tuple[str, str, str]]:
    """Up to ``per_site`` VMs of a site, (name, host, address), taking hosts in turn so
    that the matrix crosses hosts."""
    by_host: dict[str, list[tuple[str, str, str]]] = {}
    for vm in status.vms:
        for interface in vm.interfaces:
            if interface.network == site:
                address = interface.ip.split("/")[0]
                by_host.setdefault(vm.host, []).append((vm.name, vm.host, address))
    chosen: list[tuple[str, str, str]] = []
    queues = [sorted(vms) for _, vms in sorted(by_host.items())]
    while len(chosen) < per_site and any(queues):
        for queue in queues:
            if queue and len(chosen) < per_site:
                chosen.append(queue.pop(0))
    return chosen


def ping_matrix(
    testbed: Testbed, vms: list[tuple[str, str, str]], count: int
) -> Iterator[dict[str, object]]:
    for src, src_host, _ in vms:
        running = [
            (
                dst,
                dst_host,
                addr,
                testbed.popen(
                    src,
                    ["ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", "2", addr],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                ),
            )
            for dst, dst_host, addr in vms
            if dst != src
        ]
        for dst, dst_host, _addr, process in running:
            out, _ = process.communicate(timeout=60)
            found = RTT.search(out or "")
            yield {
                "kind": "rtt",
                "src": src,
                "dst": dst,
                "src_host": src_host,
                "dst_host": dst_host,
                "value": float(found.group(1)) if found else "",
                "unit": "ms",
                "ok": process.returncode == 0,
            }


def isolation(
    testbed: Testbed, firsts: dict[str, tuple[str, str, str]]
) -> Iterator[dict[str, object]]:
    for a in SITES:
        for b in SITES:
            if a == b:
                continue
            src, src_host, _ = firsts[a]
            dst, dst_host, addr = firsts[b]
            done = testbed.exec(
                src, ["ping", "-n", "-c", "1", "-W", "1", addr], capture_output=True
            )
            yield {
                "kind": "isolation",
                "src": src,
                "dst": dst,
                "src_host": src_host,
                "dst_host": dst_host,
                "value": "answered" if done.returncode == 0 else "no answer",
                "unit": "",
                "ok": done.returncode != 0,
            }


def throughput(testbed: Testbed, src: str, dst: str, address: str, seconds: int) -> float:
    """iperf3 from ``src`` to ``dst`` (its server in ``dst``): bits/s the receiver saw.
    One server serves every try (a one-off server, ``-s -1``, ends with a failed test, and
    every try after it was refused); a try refused before the server listens is made
    again, as is a run iperf3 reports as failed (on a busy machine a test can end so), up
    to three of those."""
    why = "no run"
    server: subprocess.Popen[Any] | GuestProcess | None = None
    failed = 0
    try:
        for _ in range(60):
            if server is None or server.poll() is not None:
                server = testbed.popen(
                    dst,
                    ["iperf3", "-s", "-p", "5201"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            done = testbed.exec(
                src,
                ["iperf3", "-c", address, "-p", "5201", "-t", str(seconds), "-J"],
                capture_output=True,
                text=True,
            )
            try:
                report = json.loads(done.stdout)
            except json.JSONDecodeError:
                report = {}
            received = report.get("end", {}).get("sum_received")
            if done.returncode == 0 and received is not None:
                return float(received["bits_per_second"])
            error = str(report.get("error") or (done.stdout + done.stderr)[-300:])
            if "refused" not in error:  # the server listened: the run itself failed
                why = error
                failed += 1
                if failed == 3:
                    break
            elif why == "no run":
                why = error
            time.sleep(0.2)
    finally:
        if server is not None:
            server.kill()
            server.wait()
    raise RuntimeError(f"iperf3 {src} -> {dst}: {why}")


def plot(
    rows: list[dict[str, object]], matrices: dict[str, list[tuple[str, str]]], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(matrices) + 1, figsize=(5 * (len(matrices) + 1), 4.5))
    rtt = {(r["src"], r["dst"]): r["value"] for r in rows if r["kind"] == "rtt"}
    for ax, (site, vms) in zip(axes, matrices.items(), strict=False):
        names = [name for name, _ in vms]
        labels = [f"{name} ({host})" for name, host in vms]
        grid = [[rtt.get((s, d), float("nan")) or float("nan") for d in names] for s in names]
        image = ax.imshow(grid, cmap="viridis")
        ax.set_xticks(range(len(names)), labels, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), labels, fontsize=8)
        ax.set_title(f"{site}: mean RTT (ms)")
        fig.colorbar(image, ax=ax, shrink=0.8)
    bars = [r for r in rows if r["kind"] == "throughput"]
    ax = axes[-1]
    ax.bar(
        [f"{r['src']}\n→ {r['dst']}" for r in bars],
        [float(str(r["value"])) / 1e6 for r in bars],
        color=["tab:orange", "tab:blue"],
    )
    ax.set_yscale("log")
    ax.set_ylabel("Mbit/s (iperf3, receiver)")
    ax.set_title("throughput")
    ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/grid"), help="where results go")
    parser.add_argument("--local", action="store_true", help="apply in-process, without agents")
    parser.add_argument("--per-site", type=int, default=5, help="VMs per site in the ping matrix")
    parser.add_argument("--count", type=int, default=5, help="echoes per ping")
    parser.add_argument("--seconds", type=int, default=3, help="iperf3 run length")
    parser.add_argument("--state-dir", help="the testbed's state directory")
    parser.add_argument("--ns-prefix", help="the testbed's namespace prefix")
    args = parser.parse_args(argv)

    testbed = Testbed(
        GRID / "real.xml",
        GRID / "virtual.xml",
        local=args.local,
        state_dir=args.state_dir,
        ns_prefix=args.ns_prefix,
        progress=lambda e: print(f"  {e.phase}", file=sys.stderr) if e.done is None else None,
    )
    rows: list[dict[str, object]] = []
    try:
        with testbed:
            status = wait_until_up(testbed)
            matrices = {}
            firsts = {}
            for site in SITES:
                vms = sample(status, site, args.per_site)
                matrices[site] = [(name, host) for name, host, _ in vms]
                firsts[site] = vms[0]
                rows += ping_matrix(testbed, vms, args.count)
            rows += isolation(testbed, firsts)
            backbone = status.vm("vmgridpeer2").interface("backbone").ip.split("/")[0]
            site1 = [vm for vm in sample(status, "site1", 10) if vm[0] != "vmgridpeer1"]
            far = next(vm for vm in site1 if vm[1] != site1[0][1])
            for src, dst, address in (
                ("vmgridpeer1", "vmgridpeer2", backbone),
                (site1[0][0], far[0], far[2]),
            ):
                bps = throughput(testbed, src, dst, address, args.seconds)
                hosts = {vm.name: vm.host for vm in status.vms}
                rows.append(
                    {
                        "kind": "throughput",
                        "src": src,
                        "dst": dst,
                        "src_host": hosts[src],
                        "dst_host": hosts[dst],
                        "value": round(bps),
                        "unit": "bit/s",
                        "ok": True,
                    }
                )
    except NetmanagerError as exc:
        for diagnostic in exc.diagnostics:
            print(diagnostic.format(), file=sys.stderr)
        return exc.exit_code

    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, matrices, args.out / "grid.png")
    failed = [r for r in rows if not r["ok"]]
    rtts = [float(str(r["value"])) for r in rows if r["kind"] == "rtt" and r["value"] != ""]
    print(
        f"{len(rows)} measurements ({len(failed)} failed): RTT {min(rtts):.3f}-{max(rtts):.3f} ms "
        f"in the sites; results in {args.out}/results.csv and {args.out}/grid.png"
    )
    for r in rows:
        if r["kind"] == "throughput":
            print(f"throughput {r['src']} -> {r['dst']}: {float(str(r['value'])) / 1e6:.3f} Mbit/s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
