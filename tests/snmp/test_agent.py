"""The agent as net-snmp's own tools see it: snmpget, snmpwalk, snmpbulkwalk, snmptable,
snmpset (v2c and v3 authPriv), snmptrapd.  The agent runs as a subprocess on 127.0.0.1
with a temporary state directory and the in-memory backend, whose JSON file stands for
the host's kernel."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.snmp.conftest import (
    AUTH_KEY,
    PRIV_KEY,
    READ_COMMUNITY,
    USER,
    V2C,
    V3,
    V3_READ,
    Agent,
    Namespace,
    Tools,
    TrapReceiver,
    free_udp_port,
    write_credentials,
)

MakeAgent = Callable[..., Agent]
NO_LINKS = ("--alias-prefix", "nm-none-such:")


VarBind = tuple[str, str, str]  # (object, net-snmp type letter, value)
NM = "NETMANAGER-MIB::"


def snmpset(
    tools: Tools, agent: Agent, *varbinds: VarBind, auth: list[str] = V3
) -> subprocess.CompletedProcess[str]:
    args = [item for vb in varbinds for item in vb]
    return tools.run("snmpset", *auth, agent.target, *args)


def set_ok(tools: Tools, agent: Agent, *varbinds: VarBind) -> None:
    proc = snmpset(tools, agent, *varbinds)
    assert proc.returncode == 0, (
        f"snmpset {varbinds} refused:\n{proc.stderr}\nagent log:\n{agent.log_text()}"
    )


def value(tools: Tools, agent: Agent, oid: str, auth: list[str] = V2C) -> str:
    tools.target = agent.target
    return tools.get(auth, oid)


def txn_state(tools: Tools, agent: Agent) -> str:
    return value(tools, agent, NM + "nmTxnState.0")


def wait_state(tools: Tools, agent: Agent, want: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = txn_state(tools, agent)
        if state == want:
            return
        time.sleep(0.1)
    last_error = value(tools, agent, NM + "nmTxnLastError.0")
    raise AssertionError(f"transaction stayed {state}, wanted {want}; last error: {last_error}")


def load_lan(tools: Tools, agent: Agent, ifname: str = "nm-vm1-lan") -> None:
    """A small candidate: one VXLAN network, one port, its shaping, one rule."""
    set_ok(
        tools,
        agent,
        (NM + 'nmNetworkRowStatus."lan"', "i", "createAndGo"),
        (NM + 'nmNetworkEncap."lan"', "i", "vxlan"),
        (NM + 'nmNetworkSegmentId."lan"', "u", "10100"),
        (NM + 'nmNetworkAddress."lan"', "a", "10.10.0.0"),
        (NM + 'nmNetworkPrefixLength."lan"', "u", "24"),
    )
    set_ok(
        tools,
        agent,
        (NM + 'nmPortRowStatus."vm1"."lan"', "i", "createAndGo"),
        (NM + 'nmPortAddress."vm1"."lan"', "a", "10.10.0.11"),
        (NM + 'nmPortPrefixLength."vm1"."lan"', "u", "24"),
        (NM + 'nmPortIfName."vm1"."lan"', "s", ifname),
    )
    # createAndWait, fill in, then activate
    set_ok(tools, agent, (NM + 'nmShapeRowStatus."vm1"."lan".""', "i", "createAndWait"))
    set_ok(
        tools,
        agent,
        (NM + 'nmShapeRate."vm1"."lan".""', "u", "10000"),
        (NM + 'nmShapeDelay."vm1"."lan".""', "u", "20000"),
        (NM + 'nmShapeLoss."vm1"."lan".""', "u", "5000"),
    )
    set_ok(tools, agent, (NM + 'nmShapeRowStatus."vm1"."lan".""', "i", "active"))
    set_ok(
        tools,
        agent,
        (NM + "nmRuleRowStatus.10", "i", "createAndGo"),
        (NM + "nmRuleAction.10", "i", "allow"),
        (NM + "nmRuleSource.10", "s", "lan"),
        (NM + "nmRuleDestination.10", "s", "*"),
        (NM + "nmRuleProtocol.10", "i", "tcp"),
        (NM + "nmRulePortFirst.10", "u", "80"),
        (NM + "nmRulePortLast.10", "u", "443"),
    )


def stage_and_commit(tools: Tools, agent: Agent, revert_s: int) -> None:
    set_ok(tools, agent, (NM + "nmTxnOperation.0", "i", "stage"))
    wait_state(tools, agent, "staged")
    set_ok(
        tools,
        agent,
        (NM + "nmTxnRevertTimeout.0", "u", str(revert_s)),
        (NM + "nmTxnOperation.0", "i", "commit"),
    )


# ---------------------------------------------------------------- monitoring


def test_system_group_over_v2c_and_v3(make_agent: MakeAgent, tools: Tools) -> None:
    agent = make_agent(*NO_LINKS, "--sys-name", "host-under-test")
    for auth in (V2C, V3):
        assert value(tools, agent, "SNMPv2-MIB::sysName.0", auth) == "host-under-test"
        assert value(tools, agent, "SNMPv2-MIB::sysObjectID.0", auth) == NM + "netmanagerMIB"
    walk = tools.run("snmpwalk", *V2C, "-On", agent.target, "SNMPv2-MIB::system", check=True).stdout
    assert [line.split(" ")[0] for line in walk.splitlines()] == [
        f".1.3.6.1.2.1.1.{i}.0" for i in range(1, 8)
    ]
    # the engine group comes from the agent's own engine state
    assert value(tools, agent, ".1.3.6.1.6.3.10.2.1.2.0") == "1"  # snmpEngineBoots


def _veth_pair(ns: Namespace) -> None:
    ns.ip("link", "add", "nmt-a", "type", "veth", "peer", "name", "nmt-b")
    ns.ip("link", "set", "nmt-a", "alias", "nm:test:vm1:lan")
    ns.ip("link", "set", "nmt-b", "alias", "nm:test:vm2:lan")
    ns.ip("link", "add", "nmt-x", "type", "veth", "peer", "name", "nmt-y")  # not ours: no marker
    for dev in ("nmt-a", "nmt-b", "nmt-x", "nmt-y"):
        ns.ip("link", "set", dev, "up")


def _kernel_stats(ns: Namespace, dev: str) -> dict[str, int]:
    out = subprocess.run(
        ["ip", "-n", ns.name, "-j", "-s", "link", "show", dev],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stats = json.loads(out)[0]["stats64"]
    return {"rx_bytes": stats["rx"]["bytes"], "tx_bytes": stats["tx"]["bytes"]}


@pytest.mark.privileged
def test_if_mib_and_link_table(netns: Namespace, make_agent: MakeAgent, tools: Tools) -> None:
    _veth_pair(netns)
    time.sleep(0.3)  # let the kernel move some neighbour discovery packets
    # one poll at start, none during the test (not even while it reads the counters):
    # every table comes from the same snapshot
    agent = make_agent(
        "--netns", netns.name, "--poll-interval", "600", "--watched-poll-interval", "0"
    )
    t = agent.target
    assert value(tools, agent, "IF-MIB::ifNumber.0") == "2"
    names = tools.run("snmpwalk", *V2C, "-Oqv", t, "IF-MIB::ifName", check=True).stdout.split()
    assert sorted(names) == ["nmt-a", "nmt-b"], "unmarked links must not be served"
    table = tools.run(
        "snmptable", *V3, "-Cf", "|", "-CH", "-Ci", t, "IF-MIB::ifTable", check=True
    ).stdout
    rows = [line.split("|") for line in table.strip().splitlines()]
    assert len(rows) == 2 and all(len(r) == 23 for r in rows), table
    by_descr = {r[2]: r for r in rows}
    row_a = by_descr[f"veth nmt-a in netns {netns.name}"]
    assert row_a[3] == "ethernetCsmacd" and row_a[4] == "1500"
    assert row_a[7] == "up" and row_a[8] == "up"
    index_a = row_a[0]

    # ifXTable over v3 with GETBULK; aliases carry VM and network
    ifx = tools.run("snmpbulkwalk", *V3, "-Cr25", "-Oq", t, "IF-MIB::ifXTable", check=True).stdout
    assert f"IF-MIB::ifAlias.{index_a} nm:test:vm1:lan" in ifx
    hc_in = int(value(tools, agent, f"IF-MIB::ifHCInOctets.{index_a}", V3))
    hc_out = int(value(tools, agent, f"IF-MIB::ifHCOutOctets.{index_a}", V3))

    # the link table: same snapshot, same counters; the kernel has at least as much
    links = tools.run(
        "snmptable", *V2C, "-Cf", "|", "-CH", "-Ci", t, NM + "nmLinkTable", check=True
    ).stdout
    link_rows = {r.split("|")[0]: r.split("|") for r in links.strip().splitlines()}
    assert link_rows[index_a][1:4] == ["vm1", "lan", netns.name]
    assert int(value(tools, agent, f"{NM}nmLinkInOctets.{index_a}")) == hc_in
    assert int(value(tools, agent, f"{NM}nmLinkOutOctets.{index_a}")) == hc_out
    kernel = _kernel_stats(netns, "nmt-a")
    assert hc_in <= kernel["rx_bytes"] and hc_out <= kernel["tx_bytes"]
    assert value(tools, agent, f"{NM}nmLinkOperStatus.{index_a}") == "up"


@pytest.mark.privileged
def test_columns_walked_side_by_side_are_the_table(
    netns: Namespace, make_agent: MakeAgent, credentials: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What status --watch reads: the columns in step, over several pages, equal to each
    column walked alone."""
    import asyncio

    from netmanager.agentctl import client as agentclient
    from netmanager.cli import watch
    from netmanager.snmp.credentials import load_credentials

    for i in range(6):
        netns.ip("link", "add", f"nmw{i}a", "type", "veth", "peer", "name", f"nmw{i}b")
        netns.ip("link", "set", f"nmw{i}a", "alias", f"nm:test:vm{i}:lan", "up")
        netns.ip("link", "set", f"nmw{i}b", "alias", f"nm:test:peer{i}:lan", "up")
    agent = make_agent(
        "--netns", netns.name, "--poll-interval", "600", "--watched-poll-interval", "0"
    )
    monkeypatch.setattr(agentclient, "COLUMN_VARBINDS", 7)  # pages that cut rows in two

    Cells = dict[tuple[int, ...], list[str]]

    async def read() -> tuple[int, Cells, Cells, Cells]:
        client = agentclient.AgentClient(
            "test", "127.0.0.1", agent.port, load_credentials(credentials)
        )
        async with client:
            (rows,) = await client.get(watch.IF_NUMBER_0)
            sized = await client.walk_columns(watch.AGENT_COLUMNS, int(rows))
            unsized = await client.walk_columns(watch.AGENT_COLUMNS)
            alone = {c: await client.walk(c) for c in watch.AGENT_COLUMNS}

        def cells(walked: dict[tuple[int, ...], list[tuple[tuple[int, ...], object]]]) -> Cells:
            return {c: [f"{o}={v.prettyPrint()}" for o, v in walked[c]] for c in walked}  # type: ignore[attr-defined]

        return int(rows), cells(sized), cells(unsized), cells(alone)

    rows, sized, unsized, alone = asyncio.run(read())
    assert rows == 12
    assert sized == unsized == alone
    assert all(len(cells) == 12 for cells in sized.values())


@pytest.mark.privileged
def test_link_down_trap_reaches_snmptrapd(
    netns: Namespace, make_agent: MakeAgent, tools: Tools, snmptrapd: TrapReceiver
) -> None:
    _veth_pair(netns)
    agent = make_agent(
        "--netns",
        netns.name,
        "--poll-interval",
        "0.3",
        "--trap-receiver",
        f"127.0.0.1:{snmptrapd.port}",
    )
    time.sleep(0.5)
    netns.ip("link", "set", "nmt-a", "down")
    # IF-MIB::linkDown for nmt-a; its veth peer goes down too and may announce it first
    text = snmptrapd.wait_for_line(".1.3.6.1.6.3.1.1.5.3", "nm:test:vm1:lan")
    down = [line for line in text.splitlines() if ".1.3.6.1.6.3.1.1.5.3" in line and "vm1" in line]
    assert any('"nm:test:vm1:lan"' in line or "nm:test:vm1:lan" in line for line in down), text
    assert any("= INTEGER: down(2)" in line or "= INTEGER: 2" in line for line in down), text
    netns.ip("link", "set", "nmt-a", "up")
    snmptrapd.wait_for(".1.3.6.1.6.3.1.1.5.4")  # IF-MIB::linkUp
    # and the agent reports the state it announced
    assert "linkDown" in agent.log_text()


@pytest.mark.privileged
def test_link_table_shows_the_shaping_in_force(
    netns: Namespace, make_agent: MakeAgent, tools: Tools
) -> None:
    _veth_pair(netns)
    agent = make_agent("--netns", netns.name, "--poll-interval", "600")
    names = tools.run("snmpwalk", *V2C, "-Oqn", agent.target, "IF-MIB::ifName", check=True).stdout
    index = next(
        line.split()[0].rsplit(".", 1)[1] for line in names.splitlines() if "nmt-a" in line
    )
    assert value(tools, agent, f"{NM}nmLinkRate.{index}") == "0"
    load_lan(tools, agent, ifname="nmt-a")
    stage_and_commit(tools, agent, revert_s=0)
    wait_state(tools, agent, "idle")
    deadline = time.monotonic() + 5
    while value(tools, agent, f"{NM}nmLinkRate.{index}") != "10000":
        assert time.monotonic() < deadline, "the committed shaping never showed"
        time.sleep(0.1)
    assert value(tools, agent, f"{NM}nmLinkDelay.{index}") == "20000"
    assert value(tools, agent, f"{NM}nmLinkLoss.{index}") == "5000"
    assert value(tools, agent, f"IF-MIB::ifSpeed.{index}") == "10000000"
    assert value(tools, agent, f"IF-MIB::ifHighSpeed.{index}") == "10"


# ---------------------------------------------------------------- configuration


def test_authpriv_set_stage_commit_confirm(make_agent: MakeAgent, tools: Tools) -> None:
    agent = make_agent(*NO_LINKS)
    load_lan(tools, agent)
    assert value(tools, agent, NM + 'nmNetworkEncap."lan"') == "vxlan"
    assert value(tools, agent, NM + 'nmShapeRowStatus."vm1"."lan".""') == "active"
    table = tools.run(
        "snmptable", *V2C, "-Cf", "|", "-CH", agent.target, NM + "nmPortTable", check=True
    ).stdout
    assert table.split("|")[0] == "nm-vm1-lan"

    version = value(tools, agent, NM + "nmTxnCandidateVersion.0")
    # a retried createAndGo with the same values succeeds and changes nothing
    set_ok(
        tools,
        agent,
        (NM + 'nmNetworkRowStatus."lan"', "i", "createAndGo"),
        (NM + 'nmNetworkEncap."lan"', "i", "vxlan"),
        (NM + 'nmNetworkSegmentId."lan"', "u", "10100"),
    )
    assert value(tools, agent, NM + "nmTxnCandidateVersion.0") == version

    set_ok(tools, agent, (NM + "nmTxnOperation.0", "i", "stage"))
    wait_state(tools, agent, "staged")
    changes = tools.run(
        "snmpwalk", *V2C, "-Oqv", agent.target, NM + "nmChangeObject", check=True
    ).stdout
    assert changes.split("\n")[:4] == ["network lan", "port vm1/lan", "shaping vm1/lan", "rule 10"]
    set_ok(
        tools,
        agent,
        (NM + "nmTxnRevertTimeout.0", "u", "60"),
        (NM + "nmTxnOperation.0", "i", "commit"),
    )
    wait_state(tools, agent, "pendingConfirm")
    assert 0 < int(value(tools, agent, NM + "nmTxnRevertRemaining.0").split()[0]) <= 60
    # a retried commit changes nothing more
    set_ok(tools, agent, (NM + "nmTxnOperation.0", "i", "commit"))
    set_ok(tools, agent, (NM + "nmTxnOperation.0", "i", "confirm"))
    wait_state(tools, agent, "idle")
    set_ok(tools, agent, (NM + "nmTxnOperation.0", "i", "confirm"))  # retried confirm
    assert value(tools, agent, NM + "nmTxnLastResult.0") == "success"

    host = agent.backend_state()
    assert host["log"] == ["commit", "confirm"], "retried commit and confirm changed nothing"
    applied = host["applied"]
    assert isinstance(applied, dict)
    assert applied["networks"][0]["name"] == "lan" and applied["networks"][0]["segment_id"] == 10100
    assert applied["shapings"][0]["delay_us"] == 20000
    assert applied["rules"][0]["port_last"] == 443
    assert host["undo_point"] is None
    # the link table shows what is in force once a link of that port exists; the
    # running version says which candidate that is
    assert value(tools, agent, NM + "nmTxnRunningVersion.0") == value(
        tools, agent, NM + "nmTxnCandidateVersion.0"
    )
    for secret in (AUTH_KEY, PRIV_KEY, READ_COMMUNITY):
        assert secret not in agent.log_text()


def test_commit_without_confirm_reverts_after_the_timer(
    make_agent: MakeAgent, tools: Tools
) -> None:
    agent = make_agent(*NO_LINKS)
    load_lan(tools, agent)
    stage_and_commit(tools, agent, revert_s=1)
    wait_state(tools, agent, "pendingConfirm")
    wait_state(tools, agent, "idle", timeout=5)
    assert value(tools, agent, NM + "nmTxnLastResult.0") == "reverted"
    host = agent.backend_state()
    assert host["log"] == ["commit", "rollback"]
    assert host["applied"] == {
        k: [] for k in ("documents", "networks", "peers", "ports", "routes", "rules", "shapings")
    }
    # the tables show the running configuration again
    assert value(tools, agent, NM + 'nmNetworkRowStatus."lan"').startswith("No Such Instance")
    # a late confirm is refused and says why
    late = snmpset(tools, agent, (NM + "nmTxnOperation.0", "i", "confirm"))
    assert late.returncode != 0 and "inconsistentValue" in late.stderr
    assert "rolled back" in value(tools, agent, NM + "nmTxnLastError.0")


def test_pending_commit_reverts_when_the_agent_was_killed(
    make_agent: MakeAgent, tools: Tools
) -> None:
    agent = make_agent(*NO_LINKS)
    load_lan(tools, agent)
    stage_and_commit(tools, agent, revert_s=2)
    wait_state(tools, agent, "pendingConfirm")
    assert agent.backend_state()["applied"]["networks"]  # type: ignore[index]
    agent.stop(signal.SIGKILL)
    time.sleep(2.2)  # the deadline passes while nobody runs
    agent.start()
    wait_state(tools, agent, "idle")
    assert value(tools, agent, NM + "nmTxnLastResult.0") == "reverted"
    assert agent.backend_state()["applied"]["networks"] == []  # type: ignore[index]
    # engine state survived: same engine, boots incremented, v3 still works
    assert value(tools, agent, ".1.3.6.1.6.3.10.2.1.2.0", V3) == "2"


def test_agent_killed_mid_commit_recovers_on_restart(make_agent: MakeAgent, tools: Tools) -> None:
    agent = make_agent(*NO_LINKS, "--memory-delay", "3")
    load_lan(tools, agent)
    stage_and_commit(tools, agent, revert_s=30)
    wait_state(tools, agent, "committing")
    time.sleep(0.3)
    agent.stop(signal.SIGKILL)
    assert agent.backend_state()["in_progress"] == "commit"
    agent.extra = list(NO_LINKS)
    agent.start()
    wait_state(tools, agent, "idle")
    assert value(tools, agent, NM + "nmTxnLastResult.0") == "failed"
    assert "restarted during the commit" in value(tools, agent, NM + "nmTxnLastError.0")
    host = agent.backend_state()
    assert "recover commit" in host["log"] and host["applied"]["networks"] == []  # type: ignore[index,operator]
    # the candidate is still loaded: re-running stage + commit converges
    stage_and_commit(tools, agent, revert_s=0)
    wait_state(tools, agent, "idle")
    assert value(tools, agent, NM + "nmTxnLastResult.0") == "success"
    assert agent.backend_state()["applied"]["networks"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("fail", "state", "message"),
    [("commit", "idle", "every step undone"), ("undo", "failed", "undo failed")],
)
def test_failed_commit(
    make_agent: MakeAgent, tools: Tools, fail: str, state: str, message: str
) -> None:
    flags = ["--memory-fail", "commit"] + (["--memory-fail", "undo"] if fail == "undo" else [])
    agent = make_agent(*NO_LINKS, *flags)
    load_lan(tools, agent)
    stage_and_commit(tools, agent, revert_s=30)
    wait_state(tools, agent, state)
    assert value(tools, agent, NM + "nmTxnLastResult.0") == "failed"
    assert message in value(tools, agent, NM + "nmTxnLastError.0")


# ---------------------------------------------------------------- security


def test_read_only_principals_cannot_set(make_agent: MakeAgent, tools: Tools) -> None:
    """pysnmp 7.1.30's VACM lets a read-only community write; ours must refuse and change nothing."""
    agent = make_agent(*NO_LINKS)
    set_ok(tools, agent, (NM + "nmTxnRevertTimeout.0", "u", "7"))
    attempts = [
        (V2C, "noAccess"),
        (["-v1", "-c", READ_COMMUNITY], "noSuchName"),
        (V3_READ, "noAccess"),  # SNMPv3 below authPriv
        # the write user below authPriv: USM itself refuses the level
        (
            ["-v3", "-l", "authNoPriv", "-u", USER, "-a", "SHA-256", "-A", AUTH_KEY],
            "Unsupported security level",
        ),
    ]
    for auth, error in attempts:
        proc = snmpset(tools, agent, (NM + "nmTxnRevertTimeout.0", "u", "9"), auth=auth)
        assert proc.returncode != 0 and error in proc.stderr, (auth, proc.stderr)
        proc = snmpset(
            tools,
            agent,
            (NM + 'nmNetworkRowStatus."evil"', "i", "createAndGo"),
            (NM + 'nmNetworkEncap."evil"', "i", "vlan"),
            (NM + 'nmNetworkSegmentId."evil"', "u", "7"),
            auth=auth,
        )
        assert proc.returncode != 0 and error in proc.stderr, (auth, proc.stderr)
        # nothing changed
        assert value(tools, agent, NM + "nmTxnRevertTimeout.0") == "7"
        assert value(tools, agent, NM + 'nmNetworkRowStatus."evil"').startswith("No Such Instance")
    # the read principals do read
    for auth in (V2C, ["-v1", "-c", READ_COMMUNITY], V3_READ):
        assert value(tools, agent, NM + "nmTxnRevertTimeout.0", auth) == "7"
    assert value(tools, agent, NM + "nmTxnCandidateVersion.0") == "0"


def test_view_none_gives_read_principals_nothing(
    make_agent: MakeAgent, tools: Tools, credentials: Path
) -> None:
    write_credentials(
        credentials, credentials.read_text().replace("[write]", 'view = "none"\n\n[write]')
    )
    agent = make_agent(*NO_LINKS)
    proc = tools.run("snmpget", *V2C, agent.target, "SNMPv2-MIB::sysName.0")
    assert proc.returncode != 0 and "Timeout" in proc.stderr  # community unknown: dropped
    proc = tools.run("snmpget", *V3_READ, agent.target, "SNMPv2-MIB::sysName.0")
    assert "authorizationError" in proc.stderr + proc.stdout
    assert value(tools, agent, "SNMPv2-MIB::sysUpTime.0", V3)


def test_wrong_keys_get_an_authentication_error(make_agent: MakeAgent, tools: Tools) -> None:
    agent = make_agent(*NO_LINKS)
    wrong_auth = [
        "-v3",
        "-l",
        "authPriv",
        "-u",
        USER,
        "-a",
        "SHA-256",
        "-A",
        "not-the-key-1",
        "-x",
        "AES",
        "-X",
        PRIV_KEY,
    ]
    proc = tools.run("snmpget", *wrong_auth, agent.target, "SNMPv2-MIB::sysName.0")
    assert proc.returncode != 0 and "Authentication failure" in proc.stderr, proc.stderr
    wrong_user = [
        "-v3",
        "-l",
        "authPriv",
        "-u",
        "mallory",
        "-a",
        "SHA-256",
        "-A",
        AUTH_KEY,
        "-x",
        "AES",
        "-X",
        PRIV_KEY,
    ]
    proc = tools.run("snmpget", *wrong_user, agent.target, "SNMPv2-MIB::sysName.0")
    assert proc.returncode != 0 and "Unknown user name" in proc.stderr, proc.stderr
    wrong_priv = [
        "-v3",
        "-l",
        "authPriv",
        "-u",
        USER,
        "-a",
        "SHA-256",
        "-A",
        AUTH_KEY,
        "-x",
        "AES",
        "-X",
        "not-the-key-2",
    ]
    proc = tools.run("snmpset", *wrong_priv, agent.target, NM + "nmTxnRevertTimeout.0", "u", "3")
    assert proc.returncode != 0
    assert value(tools, agent, NM + "nmTxnRevertTimeout.0") == "0"


SET_ERRORS: list[tuple[str, list[VarBind], str, str]] = [
    # (case, var-binds, reason, failed object)
    (
        "error-index of the second var-bind",
        [(NM + "nmTxnRevertTimeout.0", "u", "5"), (NM + 'nmNetworkSegmentId."x"', "u", "0")],
        "wrongValue",
        'nmNetworkSegmentId."x"',
    ),
    (
        "wrong type",
        [(NM + "nmTxnRevertTimeout.0", "s", "soon")],
        "wrongType",
        "nmTxnRevertTimeout.0",
    ),
    (
        "out of range",
        [(NM + "nmTxnRevertTimeout.0", "u", "86401")],
        "wrongValue",
        "RevertTimeout.0",
    ),
    (
        "too long",
        [
            (NM + 'nmNetworkRowStatus."lan"', "i", "createAndGo"),
            (NM + 'nmNetworkBridge."lan"', "s", "a-bridge-name-too-long"),
        ],
        "wrongLength",
        'nmNetworkBridge."lan"',
    ),
    (
        "not an interface name",
        [
            (NM + 'nmNetworkRowStatus."lan"', "i", "createAndGo"),
            (NM + 'nmNetworkBridge."lan"', "s", "br/0"),
        ],
        "wrongValue",
        'nmNetworkBridge."lan"',
    ),
    ("read-only object", [(NM + "nmTxnState.0", "i", "1")], "notWritable", "nmTxnState.0"),
    ("object of another MIB", [("SNMPv2-MIB::sysName.0", "s", "x")], "notWritable", "sysName.0"),
    (
        "the engine's own VACM tables are not reachable",
        [(".1.3.6.1.6.3.16.1.2.1.3.2.6.112.117.98.108.105.99", "s", "rwgroup")],
        "notWritable",
        "16.1.2.1.3.2.6.112.117.98.108.105.99",
    ),
    (
        "malformed index",
        [(".1.3.6.1.3.7171.1.1.1.1.10.0", "i", "4")],
        "noCreation",
        "nmNetworkRowStatus",
    ),
    ("row missing", [(NM + 'nmNetworkEncap."nope"', "i", "vlan")], "inconsistentName", "Encap"),
    (
        "a migration asked of a host that runs no libvirt domain",
        [(NM + "nmTxnMigrate.0", "s", '{"domain": "d", "dest_uri": "qemu+ssh://h/system"}')],
        "notWritable",
        "nmTxnMigrate.0",
    ),
    (
        "the migration's state is the agent's to say",
        [(NM + "nmTxnMigrateState.0", "s", '{"state": "migrated"}')],
        "notWritable",
        "nmTxnMigrateState.0",
    ),
    (
        "VLAN id above 4094",
        [
            (NM + 'nmNetworkRowStatus."v"', "i", "createAndGo"),
            (NM + 'nmNetworkEncap."v"', "i", "vlan"),
            (NM + 'nmNetworkSegmentId."v"', "u", "5000"),
        ],
        "inconsistentValue",
        'nmNetworkSegmentId."v"',
    ),
    (
        "createAndGo without mandatory columns",
        [(NM + 'nmNetworkRowStatus."v"', "i", "createAndGo")],
        "inconsistentValue",
        'nmNetworkRowStatus."v"',
    ),
    (
        "commit before stage",
        [(NM + "nmTxnOperation.0", "i", "commit")],
        "inconsistentValue",
        "Operation",
    ),
]


def test_set_errors_name_the_failing_var_bind(make_agent: MakeAgent, tools: Tools) -> None:
    agent = make_agent(*NO_LINKS)
    for name, varbinds, reason, failed in SET_ERRORS:
        # -Ir: snmpset sends what it is told; the agent is the one to check
        proc = snmpset(tools, agent, *varbinds, auth=[*V3, "-Ir"])
        assert proc.returncode != 0, f"{name}: accepted"
        assert f"Reason: {reason}" in proc.stderr, f"{name}: {proc.stderr}"
        failed_line = [
            line for line in proc.stderr.splitlines() if line.startswith("Failed object:")
        ]
        assert failed_line and failed in failed_line[0], f"{name}: {proc.stderr}"
    # nothing of all that changed anything
    assert value(tools, agent, NM + "nmTxnRevertTimeout.0") == "0"
    assert value(tools, agent, NM + "nmTxnCandidateVersion.0") == "0"
    assert "stage first" in value(tools, agent, NM + "nmTxnLastError.0")
    # net-snmp prints the OCTET STRING quoted, its quotes escaped: a JSON string
    served = value(tools, agent, NM + "nmTxnMigrateState.0")
    assert json.loads(json.loads(served)) == {"state": "idle"}


# ---------------------------------------------------------------- protocol robustness


def test_getbulk_stops_at_end_of_mib_and_is_not_capped_at_64(
    make_agent: MakeAgent, tools: Tools
) -> None:
    agent = make_agent(*NO_LINKS)
    walk = tools.run("snmpbulkwalk", *V2C, "-On", "-Cr50", agent.target, ".1", check=True).stdout
    lines = walk.strip().splitlines()
    oids = [line.split(" ")[0] for line in lines if "No more variables" not in line]
    assert len(oids) == len(set(oids)), "a var-bind was repeated"
    assert sum("No more variables" in line for line in lines) <= 1
    assert oids[-1] == ".1.3.6.1.6.3.10.2.1.4.0"
    # one request, three repeaters walking the whole tree: far more than 64 var-binds
    get = tools.run(
        "snmpbulkget", *V2C, "-On", "-Cn0", "-Cr100", agent.target, ".1", ".1", ".1", check=True
    ).stdout
    got = get.strip().splitlines()
    assert len(got) > 64 and len(got) == 3 * len(oids) + 3, len(got)
    # near the end: the end-of-MIB marker comes once per repeater, not max-repetitions times
    tail = tools.run(
        "snmpbulkget",
        *V2C,
        "-On",
        "-Cn0",
        "-Cr20",
        agent.target,
        ".1.3.6.1.6.3.10.2.1.3.0",
        check=True,
    ).stdout
    assert len(tail.strip().splitlines()) == 2, tail


def test_garbage_datagrams_do_not_stop_the_agent(make_agent: MakeAgent, tools: Tools) -> None:
    agent = make_agent(*NO_LINKS)
    before = int(value(tools, agent, "SNMPv2-MIB::snmpInASNParseErrs.0"))
    garbage = [
        b"",
        b"\x30",
        b"\x30\x82\xff\xff" + b"A" * 100,
        b"\x30\x84\x7f\xff\xff\xff\x02\x01\x01",
        bytes(range(256)) * 200,
        b"\x00" * 65000,
        b"\x30\x0b\x02\x01\x01\x04\x06public\xa0\x00",  # v2c GET with a truncated PDU
        b"\x30\x10\x02\x01\x03\x30\x0b\x02\x01\x01\x02\x01\x01\x04\x01\x04\x02\x01\x03",
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for datagram in garbage:
            s.sendto(datagram, ("127.0.0.1", agent.port))
    time.sleep(0.3)
    assert agent.proc is not None and agent.proc.poll() is None, agent.log_text()
    assert value(tools, agent, "SNMPv2-MIB::sysUpTime.0")
    assert value(tools, agent, "SNMPv2-MIB::sysName.0", V3)
    assert int(value(tools, agent, "SNMPv2-MIB::snmpInASNParseErrs.0")) > before
    assert "Traceback" not in agent.log_text()


def test_startup_refusals(tmp_path: Path, credentials: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "snmp_agents.agent", "--state-dir", str(tmp_path / "s"), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30)

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        proc = run("--credentials", str(credentials), "--listen", f"127.0.0.1:{port}")
    assert proc.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in proc.stderr

    credentials.chmod(0o640)
    proc = run("--credentials", str(credentials), "--listen", "127.0.0.1:0")
    assert proc.returncode == 2 and "chmod 600" in proc.stderr
    assert AUTH_KEY not in proc.stderr and PRIV_KEY not in proc.stderr


@pytest.mark.parametrize(
    ("auth", "priv"),
    [
        ("SHA-224", "AES-128"),
        ("SHA-384", "AES-192"),
        ("SHA-512", "AES-256"),
        ("SHA-512", "AES-256-C"),
    ],
)
def test_sha2_and_aes_variants_interoperate(
    make_agent: MakeAgent, tools: Tools, credentials: Path, auth: str, priv: str
) -> None:
    """Protocol names as net-snmp's -a/-x spell them (AES-256 is Blumenthal, -C is Reeder)."""
    text = credentials.read_text().replace('auth_protocol = "SHA-256"', f'auth_protocol = "{auth}"')
    write_credentials(credentials, text.replace('"AES-128"', f'"{priv}"'))
    agent = make_agent(*NO_LINKS)
    v3 = [
        "-v3",
        "-l",
        "authPriv",
        "-u",
        USER,
        "-a",
        auth,
        "-A",
        AUTH_KEY,
        "-x",
        priv,
        "-X",
        PRIV_KEY,
    ]
    set_ok_as = tools.run("snmpset", *v3, agent.target, NM + "nmTxnRevertTimeout.0", "u", "11")
    assert set_ok_as.returncode == 0, set_ok_as.stderr
    assert value(tools, agent, NM + "nmTxnRevertTimeout.0", v3) == "11"


def test_a_request_to_an_agent_whose_process_has_exited_fails_at_once(
    credentials: Path,
) -> None:
    """A client that knows its agent's process (or its guest's QEMU) says so as soon as
    that process is gone — here a child killed and not yet reaped, a zombie — instead of
    waiting out every timeout and retry (60 s for a guest's agent) with "no response"."""
    import asyncio

    from netmanager.agentctl import client as agentclient
    from netmanager.agentctl import processes as agent_procs
    from netmanager.snmp.credentials import load_credentials

    gone = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    gone.kill()
    time.sleep(0.2)  # a zombie until reaped: it must count as exited
    assert not agent_procs.process_alive(gone.pid)
    port = free_udp_port()

    async def ask(pid: int | None) -> str:
        client = agentclient.AgentClient(
            "host9",
            "127.0.0.1",
            port,
            load_credentials(credentials),
            timeout_s=1.0,
            retries=0,
            pid=pid,
        )
        async with client:
            with pytest.raises(agentclient.AgentError) as err:
                await client.status()
        return str(err.value)

    try:
        assert "has exited" in asyncio.run(ask(gone.pid))
        assert agent_procs.process_alive(os.getpid())
        assert "has exited" not in asyncio.run(ask(None))  # no process known: the timeout
    finally:
        gone.wait()


def test_settled_state_is_answered_when_the_operation_ends(
    make_agent: MakeAgent, tools: Tools
) -> None:
    """A GET of nmTxnSettledState (net-snmp's snmpget, SNMPv3) waits for the running
    commit instead of answering "committing"; meanwhile the agent answers other requests
    at once; with nothing running it answers at once.  The commit takes 0.6 s here (the
    memory backend's delay), less than the second an answer may wait."""
    agent = make_agent(*NO_LINKS, "--memory-delay", "0.6")
    assert value(tools, agent, NM + "nmTxnSettledState.0", V3) == "idle"
    load_lan(tools, agent)
    stage_and_commit(tools, agent, revert_s=30)
    tools.target = agent.target
    settled: list[str] = []
    waiter = threading.Thread(
        target=lambda: settled.append(tools.get(V3, NM + "nmTxnSettledState.0"))
    )
    waiter.start()
    try:
        # answered while the settled GET waits
        assert value(tools, agent, NM + "nmTxnState.0", V3) == "committing"
    finally:
        waiter.join(10)
    assert settled == ["pendingConfirm"], agent.log_text()
    assert txn_state(tools, agent) == "pendingConfirm"
