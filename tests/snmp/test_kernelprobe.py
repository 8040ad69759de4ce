"""The agent's kernel probe (snmp_agents.kernelprobe): a child process probes, the agent
learns what its kernel has; the answer is kept for the next start."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from netmanager.kernel.features import capabilities, probe
from snmp_agents.kernelprobe import KernelProbe


def test_a_child_process_finds_what_this_kernel_has(tmp_path: Path) -> None:
    expected = capabilities(probe())  # probed here, as the manager does
    cache = tmp_path / "features.json"
    found = KernelProbe(cache, start=True)
    netem = found.has("netem")
    found.wait(120)
    assert found.error == "" and found.found == expected
    assert netem() is ("netem" in expected)  # False on a kernel without sch_netem
    assert found.has("vxlan")() is ("vxlan" in expected)
    assert json.loads(cache.read_text())["capabilities"] == sorted(expected)
    # the next start takes the kept answer (a cache that says otherwise is believed)
    cache.write_text(json.dumps({**json.loads(cache.read_text()), "capabilities": ["netem"]}))
    again = KernelProbe(cache, start=True)
    again.wait(120)
    assert again.found == frozenset({"netem"})


def test_without_a_probe_nothing_is_known(tmp_path: Path) -> None:
    idle = KernelProbe(tmp_path / "features.json", start=False)
    idle.wait()
    assert idle.has("netem")() is None and not (tmp_path / "features.json").exists()


def test_a_probe_that_fails_leaves_it_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the child exits 1, says nothing
    failing = KernelProbe(tmp_path / "features.json", start=True)
    failing.wait(60)
    assert failing.found is None and failing.error
    assert failing.has("netem")() is None  # the backend finds out when a change needs it
