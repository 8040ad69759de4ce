"""``netmanager cleanup`` after a crash: an apply killed (SIGKILL) at random points, in
this process's transport and through agents, leaves namespaces, agents and records that
cleanup lists (``--dry-run``, changing nothing) and then removes, so that the machine
holds nothing of the test's prefix and the next apply starts from scratch."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netmanager.agentctl import processes as agent_procs
from netmanager.apply.records import records
from netmanager.cli.main import main
from tests import kernelstate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TWO = [str(EXAMPLES / "two-hosts/real.xml"), str(EXAMPLES / "two-hosts/virtual.xml")]

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to build namespaces"),
]


def _cleanup_json(capsys: pytest.CaptureFixture[str], *flags: str) -> dict[str, object]:
    capsys.readouterr()
    assert main(["cleanup", "--json", *flags]) == 0
    document: dict[str, object] = json.loads(capsys.readouterr().out)
    return document


@pytest.mark.slow  # applies killed and cleaned up, through agents too
def test_cleanup_after_applies_killed_at_random_points(
    prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = int(os.environ.get("NETMANAGER_TEST_SEED", "1405"))
    rng = random.Random(seed)
    left_behind: list[int] = []
    took: dict[bool, float] = {}
    for local in (True, False):  # how long a whole apply takes here, each way
        argv = [sys.executable, "-m", "netmanager", "apply", *(["--local"] if local else []), *TWO]
        start = time.monotonic()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        took[local] = time.monotonic() - start
        assert main(["destroy", *TWO]) == 0
    for round_, local in enumerate((True, False, True, False)):
        argv = [sys.executable, "-m", "netmanager", "apply", *(["--local"] if local else []), *TWO]
        # somewhere in its second half, where it changes the machine
        delay = rng.uniform(0.5, 0.95) * took[local]
        what = f"seed {seed}, round {round_}, {'--local' if local else 'agents'}, killed at {delay:.2f} s"
        manager = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        manager.kill()
        manager.wait()
        # the agents the apply started go on by themselves (a commit in progress, a revert
        # timer): paused while --dry-run is compared, so that only it could change things
        paused = sorted(agent_procs.processes())
        for pid in paused:
            os.kill(pid, signal.SIGSTOP)
        try:
            left = kernelstate.snapshot(prefix)
            listed = _cleanup_json(capsys, "--dry-run")
            ours = [n for n in listed["namespaces"] if n.startswith(prefix)]  # type: ignore[attr-defined]
            assert ours == kernelstate.namespaces(prefix), what
            assert kernelstate.snapshot(prefix) == left, f"{what}: --dry-run changed the machine"
        finally:
            for pid in paused:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        left_behind.append(len(listed["namespaces"]) + len(listed["agents"]))  # type: ignore[arg-type]
        removed = _cleanup_json(capsys)
        # what an agent still committing created after the dry run goes too
        assert set(listed["namespaces"]) <= set(removed["namespaces"]), what
        assert kernelstate.namespaces(prefix) == [], what
        assert f"nmprobe-{manager.pid}" not in kernelstate.namespaces("nmprobe-"), what
        assert agent_procs.running() == {} and agent_procs.processes() == {}, what
        assert records() == {}, what
        assert _cleanup_json(capsys) == {
            "dry_run": False,
            "agents": [],
            "guests": [],
            "libvirt": [],
            "migrations": [],
            "namespaces": [],
            "files": [],
        }, f"{what}: a second cleanup found more"
    assert any(left_behind), f"seed {seed}: no kill left anything behind: {left_behind}"
    # and the machine takes the topology again from scratch
    assert main(["apply", *TWO]) == 0
    assert main(["destroy", *TWO]) == 0
    assert kernelstate.namespaces(prefix) == []
