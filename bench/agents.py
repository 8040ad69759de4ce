#!/usr/bin/env python3
"""Benchmark (not a test): the cost of going through the hosts' SNMP agents.

The same topology as bench/apply.py (N VMs over 4 emulated hosts, one shaped network
across them) is applied, re-applied unchanged and destroyed twice in the same run:

* agents: ``netmanager apply`` as users run it — every host's candidate loaded into its
  agent by SNMPv3 authPriv SETs, staged, committed, verified and confirmed;
* local: ``netmanager apply --local`` — the same engine, in this process.

Prints a table and, as its last line,
``ratio: <agents apply / local apply at the largest size> reapply: <agents re-apply s>``.
Root only; everything has its own namespace prefix and state directory, and is removed
at the end, also on failure.

    .venv/bin/python bench/agents.py                # 10, 100 and 1000 VMs
    .venv/bin/python bench/agents.py --sizes 10,100
"""

from __future__ import annotations

import argparse
import os
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

from netmanager import agents, deploy
from netmanager.apply import topology


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(n: int, through_agents: bool) -> dict[str, float]:
    prefix = f"nb{secrets.token_hex(2)}"
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NETMANAGER_NS_PREFIX"] = prefix
        os.environ["NETMANAGER_STATE_DIR"] = str(Path(tmp) / "state")
        try:
            real, virtual = write_inputs(Path(tmp), n)
            features = deploy.local_features()

            def apply() -> object:
                deployment = deploy.prepare(real, virtual, features=features)
                return topology.apply(deployment, local=not through_agents)

            out = {"apply": _timed(apply)}
            again: list[object] = []
            out["reapply"] = _timed(lambda: again.append(apply()))
            assert getattr(again[0], "changes", None) == 0
            out["destroy"] = _timed(lambda: topology.destroy("bench"))
            return out
        finally:
            agents.stop_agents()
            listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
            for line in listed.stdout.splitlines():
                name = line.split()[0] if line.strip() else ""
                if name.startswith(prefix):
                    subprocess.run(["ip", "netns", "del", name], check=False)
            os.environ.pop("NETMANAGER_NS_PREFIX", None)
            os.environ.pop("NETMANAGER_STATE_DIR", None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/agents.py needs root", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'VMs':>6} {'way':<7} {'apply s':>8} {'reapply s':>10} {'destroy s':>10}")
    results: dict[tuple[int, str], dict[str, float]] = {}
    for n in sizes:
        for way, through in (("local", False), ("agents", True)):
            r = run(n, through)
            results[(n, way)] = r
            print(
                f"{n:>6} {way:<7} {r['apply']:>8.2f} {r['reapply']:>10.2f} {r['destroy']:>10.2f}",
                flush=True,
            )
    top = sizes[-1]
    ratio = results[(top, "agents")]["apply"] / results[(top, "local")]["apply"]
    print(f"ratio: {ratio:.2f} reapply: {results[(top, 'agents')]['reapply']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
