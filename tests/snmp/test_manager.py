"""apply / plan / destroy through the hosts' agents, end to end, on emulated hosts.

The agents are real processes (one per host, started by apply), configured by
netmanager's SNMPv3 client; what they built is read back through ip -j, tc -j and the
save tools (tests/kernelstate.py), and what they serve through net-snmp's tools.  Every
test has its own namespace prefix and state directory; agents are ended by PID and
namespaces deleted in the fixture's finalizer, even when the test fails.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import tomllib
from pathlib import Path

import pytest

from netmanager.agentctl import processes as agent_procs
from netmanager.apply import readback, topology
from netmanager.apply.prepare import prepare
from netmanager.apply.records import records
from netmanager.cli.main import main
from netmanager.errors import ApplyFailed
from tests import kernelstate
from tests.conftest import AEF_GRID_AGENTS
from tests.snmp.conftest import Tools, TrapReceiver, need_tools
from tests.test_apply import AEF, EXAMPLES, TWO, _ping, faster_two_hosts

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to build namespaces"),
]

VC = str(EXAMPLES / "virtcloud/real.xml")


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


@pytest.mark.slow  # four agents, 32 VMs
@AEF_GRID_AGENTS
def test_aef_grid_through_agents_served_to_net_snmp(
    prefix: str, capsys: pytest.CaptureFixture[str], tool_env: dict[str, str]
) -> None:
    need_tools("snmpbulkwalk", "snmpget")
    before = kernelstate.snapshot(prefix)
    assert main(["apply", "--json", *AEF]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["changes"] > 0 and outcome["phases"]["hosts"] > 0
    assert all(h["agent"].startswith("127.0.0.1:") for h in outcome["hosts"].values())

    # one agent per host, on loopback, healthy
    assert main(["agents", "status", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(a["host"] for a in listed) == ["host1", "host2", "host3", "host4"]
    for agent in listed:
        assert {"host", "address", "port", "pid"} <= set(agent)
        assert agent["address"] == "127.0.0.1" and agent["health"] == "ok"
        assert _alive(agent["pid"])

    # seed 002's isolation, built by the agents
    assert _ping(prefix, "vmgrid101", "10.1.0.18", "aef-grid")  # site 1, across hosts
    assert _ping(prefix, "vmgridpeer1", "10.0.0.2", "aef-grid")  # proxy to proxy
    assert not _ping(prefix, "vmgrid101", "10.2.0.11", "aef-grid")  # across sites

    # a re-apply changes nothing, and plan (asking every agent) says so
    assert main(["apply", "--json", *AEF]) == 0
    assert json.loads(capsys.readouterr().out)["changes"] == 0
    assert main(["plan", "--json", *AEF]) == 0
    assert json.loads(capsys.readouterr().out)["changes"] == 0

    # net-snmp's tools walk IF-MIB and the link table of host3's agent (v2c, read-only)
    community = tomllib.loads((EXAMPLES / "aef-grid/snmp.toml").read_text())["read"]["community"]
    host3 = next(a for a in listed if a["host"] == "host3")
    tools = Tools(tool_env, target=f"127.0.0.1:{host3['port']}")
    deadline = time.monotonic() + 30
    while True:  # the link poller publishes the new ports within one poll interval
        walk = tools.run(
            "snmpbulkwalk", "-v2c", "-c", community, "-Cr50", tools.target, "IF-MIB::ifAlias"
        )
        if "vmgrid101" in walk.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert walk.returncode == 0, walk.stderr
    aliases = [line for line in walk.stdout.splitlines() if "aef-grid" in line]
    assert len(aliases) >= 8 and any("vmgrid101" in line for line in aliases), walk.stdout
    links = tools.run(
        "snmpbulkwalk", "-v2c", "-c", community, "-Cr50", tools.target, "NETMANAGER-MIB::nmLinkVm"
    )
    assert "vmgrid101" in links.stdout, links.stdout

    # destroy of the last topology takes the agents and the emulated hosts with it
    assert main(["destroy", *AEF]) == 0
    capsys.readouterr()
    assert not any(_alive(a["pid"]) for a in listed)
    assert agent_procs.running() == {}
    assert kernelstate.snapshot(prefix) == before


def test_virtcloud_tenants_side_by_side_through_agents(prefix: str) -> None:
    before = kernelstate.snapshot(prefix)
    for tenant in "ab":
        topology.apply(prepare(VC, str(EXAMPLES / f"virtcloud/tenant-{tenant}.xml")))
    for tenant in "ab":
        assert _ping(prefix, "node1", "10.10.0.12", f"tenant-{tenant}")
    assert _ping(prefix, "head", "198.18.0.1", "tenant-a")  # outbound NAT
    assert not _ping(prefix, "head", "198.18.0.1", "tenant-b")
    topology.destroy("tenant-a")
    assert _ping(prefix, "node1", "10.10.0.12", "tenant-b")
    assert agent_procs.running(), "the agents stay while a topology is applied"
    topology.destroy("tenant-b")
    assert agent_procs.running() == {}
    assert kernelstate.snapshot(prefix) == before


def test_local_and_agents_are_not_mixed(prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    tenant_a, tenant_b = (str(EXAMPLES / f"virtcloud/tenant-{t}.xml") for t in "ab")
    assert main(["apply", "--local", VC, tenant_a]) == 0
    capsys.readouterr()
    assert main(["apply", VC, tenant_b]) == 1
    assert "E743" in capsys.readouterr().err
    assert agent_procs.running() == {}
    assert main(["destroy", VC, tenant_a]) == 0


def _whole_rate_change(before: dict[str, object], now: dict[str, object]) -> bool:
    """``now`` is ``before`` with every 10 Mbit/s TBF at 20 Mbit/s (and nothing else)."""
    if {k: v for k, v in now.items() if k != "qdiscs"} != {
        k: v for k, v in before.items() if k != "qdiscs"
    }:
        return False

    def doubled(options: str) -> str:
        """A 10 Mbit/s TBF's options at 20 Mbit/s: the rate, and the bucket that holds
        the same time's worth of tokens."""
        found = json.loads(options)
        if found.get("rate") != 1_250_000:
            return options
        found["rate"] = 2_500_000
        found["burst"] = 2 * found["burst"]
        return json.dumps(found, sort_keys=True)

    faster = [(*q[:4], doubled(q[4])) for q in before["qdiscs"]]  # type: ignore[attr-defined]
    return bool(faster != before["qdiscs"] and sorted(faster) == sorted(now["qdiscs"]))  # type: ignore[call-overload]


@pytest.mark.slow  # agents killed and restarted, a revert awaited
def test_agent_killed_mid_apply(prefix: str, tmp_path: Path) -> None:
    """SIGKILL of one host's agent while the others commit: every other host is rolled
    back, the killed host comes back whole when its agent restarts, and apply again
    converges."""
    topology.apply(prepare(*TWO))
    hosts = {h: f"{prefix}h-{h}" for h in ("host1", "host2")}
    applied = {h: kernelstate.namespace_state(ns) for h, ns in hosts.items()}

    faster = faster_two_hosts(tmp_path)
    (tmp_path / "snmp.toml").write_bytes((EXAMPLES / "two-hosts/snmp.toml").read_bytes())
    victim = agent_procs.running()["host2"].pid
    killed = threading.Event()

    def kill_host2(event: str, host: str) -> None:
        if event == "committing" and host == "host2":
            # just after the commit is sent: the agent dies in or right after it
            def kill() -> None:
                time.sleep(0.01)
                os.kill(victim, signal.SIGKILL)
                killed.set()

            threading.Thread(target=kill).start()

    with pytest.raises(ApplyFailed) as failure:
        topology.apply(prepare(TWO[0], faster), hook=kill_host2, revert_s=60)
    assert killed.wait(5), [d.format() for d in failure.value.errors]
    assert any(d.code == "E741" and "host2" in d.message for d in failure.value.errors)
    # host1 was rolled back to exactly what it had
    assert kernelstate.namespace_state(hosts["host1"]) == applied["host1"]
    # host2's agent, started again, restores its journal: never half-configured
    model = prepare(*TWO).model
    agent_procs.ensure_agents(model.real, {"host2": hosts["host2"]})
    # (back to the last confirmed configuration; or, had the commit finished before the
    # kill, the whole new one, pending its confirmation until the revert timer)
    deadline = time.monotonic() + 30
    while True:
        now = kernelstate.namespace_state(hosts["host2"])
        if now == applied["host2"] or _whole_rate_change(applied["host2"], now):
            break
        assert time.monotonic() < deadline, f"host2 is half-configured: {now['qdiscs']}"
        time.sleep(0.2)
    # apply again converges on both hosts
    outcome = topology.apply(prepare(TWO[0], faster))
    assert outcome.changes > 0
    for ns in hosts.values():
        qdiscs = kernelstate.namespace_state(ns)["qdiscs"]
        assert any('"rate": 2500000' in q[4] for q in qdiscs)  # 20 Mbit/s in bytes/s
    assert topology.apply(prepare(TWO[0], faster)).changes == 0
    topology.destroy("two-hosts")


def _two_hosts_with(tmp_path: Path, old: str, new: str) -> tuple[Path, Path]:
    """A copy of examples/two-hosts whose real.xml has ``old`` replaced by ``new``."""
    import shutil

    example = tmp_path / "two-hosts"
    shutil.copytree(EXAMPLES / "two-hosts", example)
    (example / "snmp.toml").chmod(0o600)
    real = example / "real.xml"
    text = real.read_text()
    assert old in text
    real.write_text(text.replace(old, new))
    return real, example / "virtual.xml"


@pytest.mark.slow  # two link polls of the agent (5 s each)
def test_trap_receivers_of_real_xml_get_link_down(
    prefix: str, tmp_path: Path, snmptrapd: TrapReceiver
) -> None:
    """The agents apply starts send linkDown/linkUp to the receivers real.xml names."""
    import subprocess

    real, virtual = _two_hosts_with(
        tmp_path,
        '<snmp credentials="snmp.toml"/>',
        f'<snmp credentials="snmp.toml"><trap-receiver address="127.0.0.1" '
        f'port="{snmptrapd.port}"/></snmp>',
    )
    topology.apply(prepare(real, virtual))
    # status goes through the agents too: the port's link as host1's agent sees it
    documents = readback.status("two-hosts")
    vm1 = next(v for v in documents[0]["vms"] if v["name"] == "vm1")
    assert vm1["interfaces"][0]["link"]["oper"] == "up"
    assert vm1["interfaces"][0]["link"]["rate_kbps"] == 10000
    port = records()["two-hosts"].hosts["host1"].ports[0]
    dom0 = f"{prefix}h-host1"
    subprocess.run(["ip", "-n", dom0, "link", "set", port.vif, "down"], check=True)
    # linkDown (1.3.6.1.6.3.1.1.5.3) with the port's ifAlias naming topology and VM
    snmptrapd.wait_for_line(".1.3.6.1.6.3.1.1.5.3", "two-hosts", timeout=20)
    subprocess.run(["ip", "-n", dom0, "link", "set", port.vif, "up"], check=True)
    snmptrapd.wait_for_line(".1.3.6.1.6.3.1.1.5.4", "two-hosts", timeout=20)
    topology.destroy("two-hosts")


def test_an_emulated_hosts_agent_listens_on_loopback_only(prefix: str, tmp_path: Path) -> None:
    interface = '<interface name="eth0" address="192.0.2.11/24" speed="1Gbit"/>'
    real, virtual = _two_hosts_with(
        tmp_path, interface, f'{interface}\n    <agent address="192.0.2.11" port="16161"/>'
    )
    before = kernelstate.snapshot(prefix)
    with pytest.raises(agent_procs.AgentProblem) as err:
        topology.apply(prepare(real, virtual))
    assert [d.code for d in err.value.errors] == ["E740"]
    assert "loopback" in err.value.errors[0].message
    assert agent_procs.running() == {}
    assert kernelstate.snapshot(prefix) == before


def test_a_credentials_file_others_can_read_or_malformed_is_e741_on_every_command(
    prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The agents run; their credentials file becomes readable by others, then malformed:
    plan, apply, status and destroy each stop with E741 and what to do (nothing changed,
    no traceback), and go through once it is private and whole again."""
    real, virtual = _two_hosts_with(tmp_path, "</real>", "</real>")
    faster = faster_two_hosts(tmp_path, virtual)
    before = kernelstate.snapshot(prefix)
    assert main(["apply", str(real), str(virtual)]) == 0
    applied = kernelstate.snapshot(prefix)
    credentials = real.with_name("snmp.toml")
    private = credentials.read_text()
    broken = (0o644, private, ("0644", "chmod 600")), (0o600, "[write\n", ("not valid TOML",))
    for mode, text, said in broken:
        credentials.write_text(text)
        credentials.chmod(mode)
        for command in (["plan"], ["apply"], ["status"], ["destroy"]):
            target = faster if command != ["destroy"] else virtual
            capsys.readouterr()
            code = main([*command, str(real), str(target)])
            err = capsys.readouterr().err
            assert code == 4 and "error[E741]" in err, (command, code, err)  # apply-failed
            assert all(s in err for s in said), (command, err)
            assert "Traceback" not in err, err
            if "nothing was changed" not in err:
                assert command in (["plan"], ["status"]), err  # they change nothing anyway
            assert kernelstate.snapshot(prefix) == applied, command
    credentials.write_text(private)
    credentials.chmod(0o600)
    assert main(["destroy", str(real), str(virtual)]) == 0
    assert kernelstate.snapshot(prefix) == before


class _ManagerDied(Exception):
    """Raised by a hook: the manager stops between commit and confirm."""


def _txn_states() -> dict[str, tuple[str, int, int]]:
    """Each running agent's transaction: (state, running version, candidate version)."""
    import asyncio

    async def ask(info: agent_procs.AgentInfo) -> tuple[str, int, int]:
        async with agent_procs.client(info) as client:
            status = await client.status()
        return (status.state, status.running_version, status.candidate_version)

    return {host: asyncio.run(ask(info)) for host, info in sorted(agent_procs.running().items())}


def test_plan_changes_nothing_also_while_a_commit_is_pending(
    prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The manager dies between commit and confirm: both hosts hold a pending commit.
    plan then reports those hosts as not asked, and changes nothing: no kernel object,
    no agent's transaction (it used to roll the pending commit back).  apply, next, rolls
    it back and applies."""
    topology.apply(prepare(*TWO))
    faster = faster_two_hosts(tmp_path)

    def die(event: str, host: str) -> None:
        if event == "committed":
            raise _ManagerDied(host)

    with pytest.raises(_ManagerDied):
        topology.apply(prepare(TWO[0], faster), hook=die, revert_s=120)
    pending = _txn_states()
    assert {state for state, _, _ in pending.values()} == {"pendingConfirm"}, pending
    kernel = kernelstate.snapshot(prefix)

    plan = topology.plan(prepare(TWO[0], faster))
    assert set(plan.unreachable) == {"host1", "host2"}
    assert all("left unconfirmed" in why for why in plan.unreachable.values()), plan
    capsys.readouterr()
    assert main(["plan", "--json", TWO[0], str(faster)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert set(shown["unreachable"]) == {"host1", "host2"}
    assert _txn_states() == pending
    assert kernelstate.snapshot(prefix) == kernel

    # apply rolls the pending commits back first, then applies
    assert topology.apply(prepare(TWO[0], faster)).changes > 0
    assert {state for state, _, _ in _txn_states().values()} == {"idle"}
    assert topology.plan(prepare(TWO[0], faster)).changes == 0
    topology.destroy("two-hosts")
