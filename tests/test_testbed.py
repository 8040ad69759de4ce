"""The Python API (netmanager.Testbed) and its pytest plugin, for real.

Each testbed runs in namespaces of its own (``ns_prefix``) and a state directory of its
own, passed to the testbed (not through the environment); the kernel is read back through
``ip -j`` (tests/kernelstate.py), never through netmanager.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from netmanager import NetmanagerError, ProgressEvent, Testbed, settings
from tests import kernelstate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TWO = EXAMPLES / "two-hosts"
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root to build namespaces")
BIN = Path(sys.executable).parent


def _prefix() -> str:
    return f"tb{uuid.uuid4().hex[:6]}"


def _cleanup(prefix: str, state: Path) -> None:
    from netmanager.agentctl import processes as agent_procs

    with settings.scoped(NETMANAGER_STATE_DIR=str(state), NETMANAGER_NS_PREFIX=prefix):
        agent_procs.stop_agents()
    for name in kernelstate.namespaces(prefix):
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def own(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A namespace prefix and a state directory, cleaned up even on failure."""
    prefix, state = _prefix(), tmp_path / "state"
    try:
        yield prefix, state
    finally:
        _cleanup(prefix, state)


def _cli(prefix: str, state: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NETMANAGER_NS_PREFIX": prefix, "NETMANAGER_STATE_DIR": str(state)}
    return subprocess.run(
        [str(BIN / "netmanager"), *argv], capture_output=True, text=True, env=env, check=False
    )


# --------------------------------------------------------------------------- no root


def test_inputs_as_text_carry_the_diagnostics_the_command_line_prints(tmp_path: Path) -> None:
    real = (TWO / "real.xml").read_text()
    broken = (TWO / "virtual.xml").read_text().replace('ip="10.20.0.2"', 'ip="10.9.0.2"')
    (tmp_path / "virtual.xml").write_text(broken)
    cli = subprocess.run(
        [
            str(BIN / "netmanager"),
            "validate",
            "--json",
            str(TWO / "real.xml"),
            str(tmp_path / "virtual.xml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 1
    expected = json.loads(cli.stdout)["diagnostics"]
    with pytest.raises(NetmanagerError) as raised:
        Testbed(real, broken, base_dir=TWO, state_dir=tmp_path / "state")
    got = [d.as_json() for d in raised.value.diagnostics]
    assert [d["file"] for d in got] == ["<virtual.xml text>"] * len(expected)
    strip = [{k: v for k, v in d.items() if k != "file"} for d in got]
    assert strip == [{k: v for k, v in d.items() if k != "file"} for d in expected]
    assert any(d["code"] == "E403" for d in expected)
    assert raised.value.exit_code == 1
    # credentials named by real.xml given as text resolve against base_dir (default: cwd)
    with pytest.raises(NetmanagerError) as raised:
        Testbed(real, (TWO / "virtual.xml").read_text(), base_dir=tmp_path)
    assert [d.code for d in raised.value.errors] == ["E308"]
    assert str(tmp_path / "snmp.toml") in raised.value.diagnostics[0].hint


def test_a_path_that_is_missing_is_an_error_not_text(tmp_path: Path) -> None:
    with pytest.raises(NetmanagerError) as raised:
        Testbed(tmp_path / "nope.xml", TWO / "virtual.xml")
    assert [d.code for d in raised.value.errors] == ["E100"]


@pytest.mark.parametrize("prefix", ["", "NM", "a-b", "toolongprefix"])
def test_namespace_prefix_is_checked(prefix: str) -> None:
    with pytest.raises(ValueError, match="ns_prefix"):
        Testbed(TWO / "real.xml", TWO / "virtual.xml", ns_prefix=prefix)


def test_the_model_and_its_vms() -> None:
    testbed = Testbed(TWO / "real.xml", TWO / "virtual.xml")
    assert testbed.topology == "two-hosts"
    assert testbed.vms == ("vm1", "vm2")
    assert testbed.validate() == ()
    assert "two-hosts" in repr(testbed)


# ----------------------------------------------------------------------------- root


@needs_root
def test_local_lifecycle_plan_status_exec_popen_progress(own: tuple[str, Path]) -> None:
    prefix, state = own
    events: list[ProgressEvent] = []
    testbed = Testbed(
        TWO / "real.xml",
        TWO / "virtual.xml",
        local=True,
        state_dir=state,
        ns_prefix=prefix,
        progress=events.append,
    )
    assert testbed.map().placement == {"vm1": "host1", "vm2": "host2"}
    # the typed plan lists what `netmanager plan --json --local` lists
    plan = testbed.plan()
    cli = _cli(
        prefix, state, "plan", "--json", "--local", str(TWO / "real.xml"), str(TWO / "virtual.xml")
    )
    assert cli.returncode == 0, cli.stderr
    document = json.loads(cli.stdout)
    listed = [
        (c["op"], c["object"], c["reason"], None) for c in document["infrastructure"]["changes"]
    ]
    listed += [
        (c["op"], c["object"], c["reason"], host)
        for host, changes in document["hosts"].items()
        for c in changes
    ]
    assert [(c.op, c.object, c.reason, c.host) for c in plan.changes] == listed
    # before the first apply the hosts' namespaces do not exist: the hosts get everything
    assert [c.host for c in plan.changes if c.host] == ["host1", "host2"]
    assert plan.unreachable == {h: "its namespace is built by apply" for h in ("host1", "host2")}
    assert kernelstate.namespaces(prefix) == []  # planning changed nothing

    result = testbed.apply()
    assert result.changes > 0 and set(result.hosts) == {"host1", "host2"}
    assert result.hosts["host1"].vms == 1
    assert kernelstate.namespaces(prefix) == sorted(
        [
            f"{prefix}h-host1",
            f"{prefix}h-host2",
            f"{prefix}s-sw1",
            f"{prefix}v-two-hosts-vm1",
            f"{prefix}v-two-hosts-vm2",
            f"{prefix}x-external",
        ]
    )
    phases = [e.phase for e in events if e.done is None]
    assert phases[:2] == ["infrastructure", "staging on 2 host(s)"], phases
    assert "committing on 2 host(s)" in phases and "confirming on 2 host(s)" in phases
    steps = [e for e in events if e.phase.startswith("committing") and e.done is not None]
    assert steps and steps[-1].done == steps[-1].total > 0
    assert testbed.applied
    assert len(testbed.plan()) == 0
    assert testbed.apply().changes == 0

    status = testbed.status()
    assert status.topology == "two-hosts" and status.up
    vm2 = status.vm("vm2")
    assert (vm2.host, vm2.interface("lan").ip) == ("host2", "10.20.0.2/24")
    assert vm2.namespace == f"{prefix}v-two-hosts-vm2"
    with pytest.raises(KeyError):
        status.vm("vm9")

    done = testbed.exec("vm1", ["ping", "-c2", "-W2", "10.20.0.2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert testbed.exec("vm1", ["ping", "-c1", "-W1", "10.20.0.9"]).returncode != 0
    with pytest.raises(subprocess.CalledProcessError):
        testbed.exec("vm1", ["false"], check=True)
    server = testbed.popen("vm2", ["ip", "-j", "addr", "show", "eth0"], stdout=subprocess.PIPE)
    out, _ = server.communicate(timeout=30)
    assert isinstance(server, subprocess.Popen) and server.returncode == 0
    assert json.loads(out)[0]["addr_info"][0]["local"] == "10.20.0.2"
    with pytest.raises(NetmanagerError) as raised:
        testbed.exec("vm9", ["true"])
    assert raised.value.errors[0].code == "E721"

    sleeper = testbed.popen("vm1", ["sleep", "300"])
    assert sleeper.poll() is None

    # the command line sees the testbed's topology in the same state directory
    cli = _cli(prefix, state, "status", "--json", "--topology", "two-hosts")
    assert json.loads(cli.stdout)["vms"][0]["namespace"] == f"{prefix}v-two-hosts-vm1"

    gone = testbed.destroy()
    assert gone.changes > 0 and not testbed.applied
    assert sleeper.returncode is not None  # destroy ended what popen started
    assert kernelstate.namespaces(prefix) == []
    with pytest.raises(NetmanagerError) as raised:
        testbed.status()
    assert raised.value.errors[0].code == "E720"


@needs_root
def test_with_block_destroys_even_when_the_body_raises(own: tuple[str, Path]) -> None:
    prefix, state = own
    testbed = Testbed(
        TWO / "real.xml", TWO / "virtual.xml", local=True, state_dir=state, ns_prefix=prefix
    )
    with pytest.raises(RuntimeError, match="experiment failed"), testbed as applied:
        assert applied is testbed
        assert f"{prefix}v-two-hosts-vm1" in kernelstate.namespaces(prefix)
        raise RuntimeError("experiment failed")
    assert kernelstate.namespaces(prefix) == []
    assert not testbed.applied


@needs_root
@pytest.mark.slow
def test_through_agents_from_xml_text(own: tuple[str, Path]) -> None:
    """Inputs given as text, through the hosts' agents: the link state as the agents
    report it, a re-apply that changes nothing, and agents gone after destroy."""
    prefix, state = own
    testbed = Testbed(
        (TWO / "real.xml").read_text(),
        (TWO / "virtual.xml").read_text(),
        base_dir=TWO,
        state_dir=state,
        ns_prefix=prefix,
    )
    with testbed:
        status = testbed.status()
        link = status.vm("vm1").interface("lan").link
        assert link is not None and link.oper == "up" and link.rate_kbps == 10_000
        assert set(status.agents) == {"host1", "host2"} and all(status.agents.values())
        agent_pids = [
            json.loads((state / "agents" / h / "agent.json").read_text())["pid"]
            for h in ("host1", "host2")
        ]
        assert all(Path(f"/proc/{pid}").exists() for pid in agent_pids)
        again = testbed.apply()
        assert again.phases.get("hosts") == 0 and again.phases.get("infrastructure") == 0
        assert all(h.agent for h in again.hosts.values())
        plan = testbed.plan()
        assert len(plan) == 0, plan.changes
        done = testbed.exec("vm2", ["ping", "-c1", "-W2", "10.20.0.1"])
        assert done.returncode == 0
        # the record keeps where the text went and where its credentials resolve
        record = json.loads((state / "topologies" / "two-hosts.json").read_text())
        assert Path(record["real"]).is_relative_to(state / "inputs")
        assert record["base_dir"] == str(TWO)
    assert kernelstate.namespaces(prefix) == []
    assert not any(Path(f"/proc/{pid}/cmdline").exists() for pid in agent_pids)


@needs_root
def test_two_testbeds_with_their_own_prefix_and_state_side_by_side(tmp_path: Path) -> None:
    first, second = _prefix(), _prefix()
    try:
        a = Testbed(
            TWO / "real.xml",
            TWO / "virtual.xml",
            local=True,
            state_dir=tmp_path / "a",
            ns_prefix=first,
        )
        b = Testbed(
            TWO / "real.xml",
            TWO / "virtual.xml",
            local=True,
            state_dir=tmp_path / "b",
            ns_prefix=second,
        )
        with a, b:
            assert a.status().vm("vm1").namespace == f"{first}v-two-hosts-vm1"
            assert b.status().vm("vm1").namespace == f"{second}v-two-hosts-vm1"
            assert len(kernelstate.namespaces(first)) == len(kernelstate.namespaces(second)) == 6
            assert a.exec("vm1", ["ping", "-c1", "-W2", "10.20.0.2"]).returncode == 0
            assert b.exec("vm1", ["ping", "-c1", "-W2", "10.20.0.2"]).returncode == 0
            # the process's own settings are untouched
            assert settings.get(settings.NS_PREFIX, "nm") == os.environ.get(
                "NETMANAGER_NS_PREFIX", "nm"
            )
        assert kernelstate.namespaces(first) == kernelstate.namespaces(second) == []
    finally:
        _cleanup(first, tmp_path / "a")
        _cleanup(second, tmp_path / "b")


# --------------------------------------------------------------------- pytest plugin

PLUGIN_TESTS = '''
import pytest

pytestmark = pytest.mark.netmanager(
    real="{real}", virtual="{virtual}", local=True, ns_prefix="{prefix}", state_dir="state"
)
applied = []


def test_reaches_across_hosts(netmanager_testbed):
    applied.append(id(netmanager_testbed))
    assert netmanager_testbed.exec("vm1", ["ping", "-c1", "-W2", "10.20.0.2"]).returncode == 0


def test_same_testbed_once_per_module(netmanager_testbed):
    applied.append(id(netmanager_testbed))
    assert len(set(applied)) == 1 and netmanager_testbed.applied


@pytest.mark.netmanager(
    real="{real}", virtual="""{netem}""", local=True, ns_prefix="{other}", state_dir="other"
)
def test_needs_netem(netmanager_testbed):
    assert netmanager_testbed.exec("vm1", ["true"]).returncode == 0
'''


@pytest.mark.slow  # a pytest run of its own
@needs_root
def test_pytest_plugin_applies_once_per_module_destroys_and_skips(tmp_path: Path) -> None:
    prefix, other = _prefix(), _prefix()
    netem = (
        (TWO / "virtual.xml")
        .read_text()
        .replace('<shaping bandwidth="10Mbit"/>', '<shaping bandwidth="10Mbit" latency="5ms"/>')
    )
    (tmp_path / "test_experiment.py").write_text(
        PLUGIN_TESTS.format(
            real=TWO / "real.xml",
            virtual=TWO / "virtual.xml",
            prefix=prefix,
            other=other,
            netem=netem,
        )
    )
    try:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-rs",
                "--junitxml=out.xml",
                "test_experiment.py",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        results = {
            case.get("name"): [child.tag for child in case]
            for case in ET.parse(tmp_path / "out.xml").getroot().iter("testcase")
        }
        assert results["test_reaches_across_hosts"] == [], run.stdout
        assert results["test_same_testbed_once_per_module"] == [], run.stdout
        assert run.returncode == 0, run.stdout + run.stderr
        from netmanager.kernel.features import local_capabilities

        has_netem = "netem" in local_capabilities(tmp_path / "features.json")
        if has_netem:
            assert results["test_needs_netem"] == [], run.stdout
        else:  # skipped, with the reason
            assert "skipped" in results["test_needs_netem"], run.stdout
            assert "E701" in run.stdout and "NetEm" in run.stdout
        assert kernelstate.namespaces(prefix) == kernelstate.namespaces(other) == []
    finally:
        _cleanup(prefix, tmp_path / "state")
        _cleanup(other, tmp_path / "other")
