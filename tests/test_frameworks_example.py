"""examples/frameworks/grid_experiment.py, run as a user runs it: aef-grid built through
the Python API, a ping matrix per site, isolation between sites, iperf3 over the backbone,
CSV and PNG written, and nothing left behind."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from netmanager import settings
from netmanager.agentctl import processes as agent_procs
from tests import kernelstate
from tests.conftest import AEF_GRID_AGENTS

SCRIPT = Path(__file__).resolve().parent.parent / "examples/frameworks/grid_experiment.py"

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.slow,
    AEF_GRID_AGENTS,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to build namespaces"),
    pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 is not installed"),
]


def test_grid_experiment_measures_writes_and_cleans_up(tmp_path: Path) -> None:
    """As a user runs it: through the hosts' agents (Testbed's default)."""
    pytest.importorskip("matplotlib")
    prefix = f"fx{uuid.uuid4().hex[:6]}"
    state = tmp_path / "state"
    out = tmp_path / "out"
    try:
        run = subprocess.run(
            [
                sys.executable,
                str(SCRIPT),
                "--out",
                str(out),
                "--per-site",
                "3",
                "--count",
                "3",
                "--seconds",
                "2",
                "--state-dir",
                str(state),
                "--ns-prefix",
                prefix,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        rows = list(csv.DictReader((out / "results.csv").open()))
        rtt = [r for r in rows if r["kind"] == "rtt"]
        assert len(rtt) == 3 * 3 * 2 and all(
            r["ok"] == "True" and float(r["value"]) > 0 for r in rtt
        )
        # the matrix of each site crosses hosts
        assert any(r["src_host"] != r["dst_host"] for r in rtt)
        isolation = [r for r in rows if r["kind"] == "isolation"]
        assert len(isolation) == 6 and {r["value"] for r in isolation} == {"no answer"}
        backbone, site = [r for r in rows if r["kind"] == "throughput"]
        assert (backbone["src"], backbone["dst"]) == ("vmgridpeer1", "vmgridpeer2")
        # TCP goodput under a 1 Mbit/s frame rate: 0.95 Mbit/s and a little less
        assert 0.85e6 < float(backbone["value"]) < 1.0e6
        assert float(site["value"]) > 5 * float(backbone["value"])
        assert (out / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "measurements (0 failed)" in run.stdout
        assert kernelstate.namespaces(prefix) == []
    finally:
        with settings.scoped(NETMANAGER_STATE_DIR=str(state), NETMANAGER_NS_PREFIX=prefix):
            agent_procs.stop_agents()
        for name in kernelstate.namespaces(prefix):
            subprocess.run(["ip", "netns", "del", name], check=False)
