#!/usr/bin/env python3
"""Benchmark (not a test): the cost of going through the hosts' SNMP agents.

The same topology as bench/apply.py (N VMs over H emulated hosts, one shaped network
across them) is applied, re-applied unchanged and destroyed, once through the agents and
once with ``--local``, each in a process of its own:

* agents: ``netmanager apply`` as users run it — every host's candidate loaded into its
  agent by SNMPv3 authPriv SETs, staged, committed, verified and confirmed.  The agents
  are started before the clock starts, as on real hosts where they run as services; their
  start-up is reported in its own column;
* local: ``netmanager apply --local`` — the same transaction and the same host backend,
  in this process.

Sizes: 10, 100 and 1000 VMs over 4 hosts, and the fan-out: 64 hosts with 16 VMs each, all
driven at once.  Columns: seconds of agent start-up, apply, re-apply and destroy; the
manager's peak memory (MiB, its process's high-water mark) and the agents' (the sum of
their high-water marks).  The last line is

``ratio: <agents / local apply, 1000 VMs> reapply: <agents re-apply s, 1000 VMs>
destroy_ratio: <agents / local destroy, 1000 VMs> fanout_ratio: <agents / local apply,
64 hosts x 16 VMs>``

with the goals ratio <= 1.5, reapply < 1 s, destroy_ratio <= 1.5, fanout_ratio <= 2.
Root only; everything has its own namespace prefix and state directory, and is removed at
the end, also on failure.

    .venv/bin/python bench/agents.py                          # every size
    .venv/bin/python bench/agents.py --sizes 100x4 --no-fanout
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apply import write_inputs

from netmanager.agentctl import processes as agent_procs
from netmanager.apply import topology
from netmanager.apply.prepare import local_features, prepare

FANOUT = (1024, 64)  # 64 hosts x 16 VMs


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _high_water_mib(pid: int) -> float:
    """A process's peak resident memory (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one(n: int, hosts: int, through_agents: bool) -> dict[str, float]:
    """Apply, re-apply and destroy once (in this process: its peak memory is the run's)."""
    prefix = f"nb{secrets.token_hex(2)}"
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NETMANAGER_NS_PREFIX"] = prefix
        os.environ["NETMANAGER_STATE_DIR"] = str(Path(tmp) / "state")
        try:
            real, virtual = write_inputs(Path(tmp), n, hosts)
            features = local_features()
            out: dict[str, float] = {"start": 0.0}
            if through_agents:
                # the hosts and their agents exist before the experiment, as real hosts do
                first = prepare(real, virtual, features=features)
                start = time.perf_counter()
                infra = first.infrastructure
                topology.build_infrastructure(infra)
                agent_procs.ensure_agents(first.model.real, topology.dom0s(infra, first.configs))
                out["start"] = time.perf_counter() - start

            def apply() -> object:
                deployment = prepare(real, virtual, features=features)
                return topology.apply(deployment, local=not through_agents)

            out["apply"] = _timed(apply)
            again: list[object] = []
            out["reapply"] = _timed(lambda: again.append(apply()))
            assert getattr(again[0], "changes", None) == 0
            running = agent_procs.running()
            out["agents_mib"] = sum(_high_water_mib(a.pid) for a in running.values())
            out["destroy"] = _timed(lambda: topology.destroy("bench"))
            out["manager_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            return out
        finally:
            agent_procs.stop_agents()
            listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
            for line in listed.stdout.splitlines():
                name = line.split()[0] if line.strip() else ""
                if name.startswith(prefix):
                    subprocess.run(["ip", "netns", "del", name], check=False)
            os.environ.pop("NETMANAGER_NS_PREFIX", None)


def run(n: int, hosts: int, way: str) -> dict[str, float]:
    """One size and way in a fresh process (so that its memory is its own)."""
    done = subprocess.run(
        [sys.executable, __file__, "--one", f"{n}x{hosts}", way],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{n}x{hosts} {way} failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    # the kernel tears the namespaces down in the background: let it finish first
    time.sleep(5)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10x4,100x4,1000x4", help="VMSxHOSTS,...")
    parser.add_argument("--no-fanout", action="store_true", help="leave out 64 hosts x 16 VMs")
    parser.add_argument("--one", nargs=2, metavar=("VMSxHOSTS", "WAY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/agents.py needs root", file=sys.stderr)
        return 2
    if args.one:
        n, hosts = (int(x) for x in args.one[0].split("x"))
        print(json.dumps(one(n, hosts, args.one[1] == "agents")))
        return 0
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
    if not args.no_fanout:
        sizes.append(FANOUT)
    print(
        f"{'VMs':>6} {'hosts':>5} {'way':<7} {'start s':>8} {'apply s':>8} {'reapply s':>10} "
        f"{'destroy s':>10} {'manager MiB':>12} {'agents MiB':>11}"
    )
    results: dict[tuple[int, int, str], dict[str, float]] = {}
    for n, hosts in sizes:
        for way in ("local", "agents"):
            r = run(n, hosts, way)
            results[(n, hosts, way)] = r
            print(
                f"{n:>6} {hosts:>5} {way:<7} {r['start']:>8.2f} {r['apply']:>8.2f} "
                f"{r['reapply']:>10.2f} {r['destroy']:>10.2f} {r['manager_mib']:>12.0f} "
                f"{r['agents_mib']:>11.0f}",
                flush=True,
            )
    top = next((s for s in sorted(sizes, reverse=True) if s[1] == 4), sizes[0])

    def ratio(size: tuple[int, int], what: str) -> str:
        if (*size, "agents") not in results:
            return "n/a"
        return f"{results[(*size, 'agents')][what] / results[(*size, 'local')][what]:.2f}"

    fanout = ratio(FANOUT, "apply") if FANOUT in sizes else "n/a"
    print(
        f"ratio: {ratio(top, 'apply')} reapply: {results[(*top, 'agents')]['reapply']:.2f} "
        f"destroy_ratio: {ratio(top, 'destroy')} fanout_ratio: {fanout}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
