#!/usr/bin/env python3
"""Benchmark (not a test): links that change while the experiment runs (``netmanager set``).

(a) ``set`` on one VM port of a 1000-VM topology (4 emulated hosts), through the hosts'
    agents and with ``--local``: the time from the call until it returns, which is when the
    host's kernel carries the new rate (the agent answers the SET then; checked with ``tc``
    after each one); 20 changes, median and p95.
(b) examples/two-hosts (one network across two hosts, 10 Mbit/s): an iperf3 TCP flow from
    vm2 to vm1 sampled every 100 ms where it arrives while the network's rate goes 10 -> 20 -> 5 Mbit/s;
    the settling time of each change: until two samples in a row are within 2 % of the new
    rate's goodput (the L2 rate less the headers: (MTU - 52) / (MTU + 14)).  Then a UDP
    flow at 4 Mbit/s (below every rate) across the same changes: the datagrams lost.
(c) 100 scheduled events on 4 emulated hosts (a rate change of one VM port per host every
    40 ms, alternating), played by the agents: each one's lateness, from its schedule time
    until the kernel carried it, as the hosts' logs say.

Last line: ``set_ms: <through agents, 1000 VMs, median> settle_s: <worst settling time>
late_p99_ms: <scheduled events>``; goals set_ms <= 100, settle_s <= 1, late_p99_ms <= 10.
Root only; its own namespace prefix and state directory, removed at the end.

    .venv/bin/python bench/dynamics.py
    .venv/bin/python bench/dynamics.py --vms 100
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apply import write_inputs

from netmanager.agentctl import processes as agent_procs
from netmanager.apply import topology
from netmanager.apply.prepare import prepare
from netmanager.apply.records import records
from netmanager.apply.runtime import LinkChange, set_links

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CHANGES = 20


@contextmanager
def fresh() -> Iterator[Path]:
    """A namespace prefix and state directory of its own; everything removed after."""
    prefix = f"nd{secrets.token_hex(2)}"
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NETMANAGER_NS_PREFIX"] = prefix
        os.environ["NETMANAGER_STATE_DIR"] = str(Path(tmp) / "state")
        try:
            yield Path(tmp)
        finally:
            for name in list(records()):
                try:
                    topology.destroy(name)
                except Exception as exc:  # the namespaces go below all the same
                    print(f"destroy {name}: {exc}", file=sys.stderr)
            agent_procs.stop_agents()
            listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
            for line in listed.stdout.splitlines():
                name = line.split()[0] if line.strip() else ""
                if name.startswith(prefix):
                    subprocess.run(["ip", "netns", "del", name], check=False)
            os.environ.pop("NETMANAGER_NS_PREFIX", None)


def _tbf_rate(namespace: str, ifname: str) -> int:
    out = subprocess.run(
        ["ip", "netns", "exec", namespace, "tc", "-j", "qdisc", "show", "dev", ifname],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(next(q for q in json.loads(out.stdout) if q["kind"] == "tbf")["options"]["rate"])


def set_timings(n: int, local: bool) -> list[float]:
    """(a): seconds per ``set`` of one port's rate, the kernel checked after each."""
    with fresh() as tmp:
        real, virtual = write_inputs(tmp, n, 4)
        topology.apply(prepare(real, virtual), local=local)
        record = records()["bench"]
        where = {p.vm: (c.dom0, p.vif) for c in record.hosts.values() for p in c.ports}
        out = []
        for i in range(CHANGES):
            vm = f"vm{(i * 37) % n}"
            rate = 20_000_000 + (i % 2) * 10_000_000
            start = time.perf_counter()
            set_links("bench", f"{vm}:net", LinkChange(rate_bps=rate))
            out.append(time.perf_counter() - start)
            assert _tbf_rate(*where[vm]) == rate // 8, f"{vm}: the kernel lacks the new rate"
        return out


def _iperf(vm1: str, vm2: str, udp: bool, changes: list[tuple[float, int]]) -> dict:
    iperf3 = shutil.which("iperf3")
    if iperf3 is None:
        raise SystemExit("iperf3 is not installed (scripts/install --dev)")
    server = subprocess.Popen(
        ["ip", "netns", "exec", vm2, iperf3, "-s", "-1", "-B", "10.20.0.2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        argv = ["ip", "netns", "exec", vm1, iperf3, "-c", "10.20.0.2", "-B", "10.20.0.1"]
        # -R: the client receives, so that its 100 ms samples count what arrived (a
        # sender's count what it wrote into its socket: in bursts)
        argv += ["-t", "6", "-i", "0.1", "-J", "-R"]
        if udp:
            argv += ["-u", "-b", "4M"]
        client = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        began = time.monotonic()

        def change() -> None:
            for at, rate in changes:
                time.sleep(max(0.0, began + at - time.monotonic()))
                set_links("two-hosts", "lan", LinkChange(rate_bps=rate))

        changer = threading.Thread(target=change)
        changer.start()
        out, _ = client.communicate(timeout=60)
        changer.join()
        return dict(json.loads(out))
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(10)


def flows() -> tuple[list[float], int]:
    """(b): the settling time of each change of a TCP flow; datagrams a UDP flow lost."""
    changes = [(2.0, 20_000_000), (4.0, 5_000_000)]
    with fresh():
        real, virtual = EXAMPLES / "two-hosts" / "real.xml", EXAMPLES / "two-hosts" / "virtual.xml"
        topology.apply(prepare(real, virtual))
        record = records()["two-hosts"]
        mtu = next(p.mtu for c in record.hosts.values() for p in c.ports)
        goodput = (mtu - 52) / (mtu + 14)
        prefix = os.environ["NETMANAGER_NS_PREFIX"]
        vm1, vm2 = f"{prefix}v-two-hosts-vm1", f"{prefix}v-two-hosts-vm2"
        tcp = _iperf(vm1, vm2, False, changes)
        samples = [(i["sum"]["end"], i["sum"]["bits_per_second"]) for i in tcp["intervals"]]
        settle = []
        for k, (at, rate) in enumerate(changes):
            until = changes[k + 1][0] if k + 1 < len(changes) else 6.0
            want = rate * goodput
            window = [(t, bps) for t, bps in samples if at < t <= until]
            found = None
            for j in range(len(window) - 1):
                # reached: this sample and the next within 2 % (one alone can be a
                # burst the bucket let through)
                if all(abs(bps - want) <= 0.02 * want for _, bps in window[j : j + 2]):
                    found = window[j][0] - at
                    break
            settle.append(found if found is not None else float("inf"))
        set_links("two-hosts", "lan", LinkChange(rate_bps=10_000_000))
        udp = _iperf(vm1, vm2, True, changes)
        lost = int(udp["end"]["sum"]["lost_packets"])
        return settle, lost


def scheduled() -> list[float]:
    """(c): the lateness of 100 scheduled events on 4 hosts, milliseconds."""
    from netmanager.agentctl import processes as procs
    from netmanager.apply import schedule
    from netmanager.inputs.loader import load

    with fresh() as tmp:
        real, virtual = write_inputs(tmp, 8, 4)
        events = "".join(
            f'<event at="{1000 + 40 * k + 10 * h}ms" every="80ms" count="{13 - k}" '
            f'target="vm{h}:net" bandwidth="{20 + (k % 2) * 10}Mbit"/>'
            for h in range(4)
            for k in range(2)
        )
        text = virtual.read_text().replace("</virtual>", f"<schedule>{events}</schedule></virtual>")
        virtual.write_text(text)
        topology.apply(prepare(real, virtual))
        counts = schedule.start(load(real, virtual).virtual, lead_s=1.0)
        deadline = time.monotonic() + 60
        while True:
            found = schedule.status("bench")
            if all(h.state in ("finished", "failed") for h in found):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the schedule did not finish: {found}")
            time.sleep(0.5)
        late = []
        for h in found:
            rows = schedule.log_rows(procs.agents_dir() / h.host / "schedule-log.csv")
            # how far from its time, either way (a step starts early by what the last
            # ones took, and may land early)
            late += [abs(float(r["late_ms"])) for r in rows if r["result"] == "ok"]
        assert len(late) == sum(counts.values()), (len(late), counts)
        return sorted(late)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=1000, help="VMs of part (a)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/dynamics.py needs root", file=sys.stderr)
        return 2
    results = {}
    for way, local in (("local", True), ("agents", False)):
        times = sorted(set_timings(args.vms, local))
        results[way] = times
        print(
            f"(a) set one port of {args.vms} VMs, {way:<6}: median {statistics.median(times) * 1000:7.1f} ms"
            f", p95 {times[int(0.95 * (len(times) - 1))] * 1000:7.1f} ms",
            flush=True,
        )
    settle, lost = flows()
    print(
        "(b) TCP 10 -> 20 -> 5 Mbit/s, settled in: "
        + ", ".join(f"{s:.2f} s" for s in settle)
        + f"; UDP at 4 Mbit/s across the changes lost {lost} datagram(s)"
    )
    late = scheduled()
    p99 = late[min(len(late) - 1, int(0.99 * len(late)))]
    print(
        f"(c) {len(late)} scheduled events on 4 hosts: lateness median "
        f"{statistics.median(late):.1f} ms, p99 {p99:.1f} ms, max {late[-1]:.1f} ms"
    )
    print(
        f"set_ms: {statistics.median(results['agents']) * 1000:.1f} settle_s: {max(settle):.2f} "
        f"late_p99_ms: {p99:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
