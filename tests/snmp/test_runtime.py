"""Runtime changes of a running port (netmanager.host.runtime, KernelBackend.runtime):
the rate of a port's TBFs changed in place (the qdiscs keep their handles), the port
taken down and up again (the VM's end loses its carrier), kept as overrides across a
re-commit of the same topology, dropped where the topology's own value changes since,
forgotten with the topology; a port the host does not run is refused, nothing changed."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from netmanager.host import runtime
from netmanager.host.candidate import Candidate
from netmanager.host.protocol import BackendError
from netmanager.host.rows import candidate_from_host_configs
from netmanager.host.runtime import PortOverride
from tests.snmp.test_kernelhost import CASES, EXAMPLES, _compiled


def _tc(namespace: str, ifname: str) -> list[dict[str, object]]:
    out = subprocess.run(
        ["ip", "netns", "exec", namespace, "tc", "-j", "qdisc", "show", "dev", ifname],
        capture_output=True,
        text=True,
        check=True,
    )
    return [q for q in json.loads(out.stdout) if q["kind"] == "tbf"]


def _link(namespace: str, ifname: str) -> dict[str, object]:
    out = subprocess.run(
        ["ip", "-n", namespace, "-j", "link", "show", "dev", ifname],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout)[0])


def test_merge_and_prune_keep_what_the_topology_did_not_change() -> None:
    _, configs = _compiled(*CASES[1])
    config = configs["host1"]
    ports = runtime.ports_by_key([config])
    key = ("two-hosts", "vm1", "lan")
    merged = runtime.merge(
        {}, {key: PortOverride(rate_bps=20_000_000, rate_in_bps=20_000_000)}, ports
    )
    assert merged[key].rate_bps == 20_000_000
    assert dict(merged[key].base) == {"rate_bps": 10_000_000, "rate_in_bps": 10_000_000}
    # set back to the topology's own value: no override left
    both = PortOverride(rate_bps=10_000_000, rate_in_bps=10_000_000)
    assert runtime.merge(merged, {key: both}, ports) == {}
    # kept while the topology's value stays; dropped once it changed (the file wins)
    assert runtime.prune(merged, ports) == merged
    changed = dataclasses.replace(
        config.ports[0], egress=dataclasses.replace(config.ports[0].egress, rate_bps=5_000_000)
    )
    # each direction on its own: the rate towards the VM changed, the other is kept
    assert runtime.prune(merged, {key: changed})[key].values() == {"rate_in_bps": 20_000_000}
    both_changed = dataclasses.replace(
        changed, ingress=dataclasses.replace(changed.ingress, rate_bps=5_000_000)
    )
    assert runtime.prune(merged, {key: both_changed}) == {}
    assert runtime.prune(merged, {}) == {}  # the port is gone
    over = runtime.apply_overrides(config, merged)
    assert over.ports[0].egress.rate_bps == over.ports[0].ingress.rate_bps == 20_000_000
    assert runtime.apply_overrides(config, {}) is config
    assert runtime.from_json(json.loads(json.dumps(runtime.to_json(merged)))) == merged


def test_a_pair_override_is_kept_inside_its_port() -> None:
    """A <link> pair's values are an override of the port's class for the peer: merged,
    pruned (the class gone, or its topology value changed) and applied on their own."""
    from netmanager.compile.hostconfig import PortClass, Shaping

    _, configs = _compiled(*CASES[1])
    config = configs["host1"]
    port = config.ports[0]
    pair = PortClass("pair vm2", (), Shaping(rate_bps=2_000_000), Shaping(rate_bps=2_000_000))
    port = dataclasses.replace(port, classes=(pair,))
    config = dataclasses.replace(config, ports=(port,))
    key = ("two-hosts", "vm1", "lan")
    ports = {key: port}
    change = PortOverride(pairs=(("vm2", PortOverride(rate_bps=4_000_000, rate_in_bps=4_000_000)),))
    merged = runtime.merge({}, {key: change}, ports)
    assert merged[key].values() == {} and merged[key].all_words() == ("rate~vm2",)
    assert dict(merged[key].pairs)["vm2"].base == (
        ("rate_bps", 2_000_000),
        ("rate_in_bps", 2_000_000),
    )
    with pytest.raises(ValueError, match="no <link> pair with 'vm9'"):
        runtime.merge({}, {key: PortOverride(pairs=(("vm9", PortOverride(loss_ppm=1)),))}, ports)
    # the port's own value beside it: both kept, each on its own
    both = runtime.merge(merged, {key: PortOverride(rate_bps=20_000_000)}, ports)
    assert both[key].all_words() == ("rate", "rate~vm2")
    over = runtime.apply_overrides(config, both).ports[0]
    assert over.egress.rate_bps == 20_000_000 and over.ingress.rate_bps == port.ingress.rate_bps
    assert over.classes[0].egress.rate_bps == over.classes[0].ingress.rate_bps == 4_000_000
    assert runtime.prune(both, ports) == both
    # the pair gone from the topology: its override goes, the port's stays
    assert runtime.prune(both, {key: dataclasses.replace(port, classes=())})[key].pairs == ()
    # the pair's own rate changed in virtual.xml since: the file's value wins
    faster = dataclasses.replace(pair, egress=Shaping(rate_bps=3_000_000))
    pruned = runtime.prune(both, {key: dataclasses.replace(port, classes=(faster,))})
    assert pruned[key].all_words() == ("rate", "rate~vm2")  # the rate from the VM stays
    assert dict(pruned[key].pairs)["vm2"].values() == {"rate_in_bps": 4_000_000}
    # back to the topology's values: nothing left
    back = PortOverride(pairs=(("vm2", PortOverride(rate_bps=2_000_000, rate_in_bps=2_000_000)),))
    assert runtime.merge(merged, {key: back}, ports) == {}
    assert runtime.from_json(json.loads(json.dumps(runtime.to_json(both)))) == both


@pytest.mark.privileged
def test_a_port_changes_in_place_and_keeps_its_change(prefix: str, tmp_path: Path) -> None:
    from netmanager.compile.configs import compile_infrastructure
    from netmanager.compile.desired import render_infrastructure
    from netmanager.host.kernelhost import KernelBackend
    from netmanager.kernel import Engine, HostState

    model, configs = _compiled(*CASES[1])
    config = configs["host1"]
    port = config.ports[0]
    key = (config.topology, port.vm, port.network)
    with Engine() as engine:
        engine.apply(HostState.checked(render_infrastructure(compile_infrastructure(model.real))))
    backend = KernelBackend(config.dom0, tmp_path)
    try:
        candidate = candidate_from_host_configs([config])
        backend.stage(candidate)
        backend.commit()
        backend.confirm()
        before = _tc(config.dom0, port.vif) + _tc(config.dom0, port.ifb)
        assert [q["options"]["rate"] for q in before] == [1_250_000, 1_250_000]
        # 20 Mbit/s both ways, in place: the same qdiscs (handles), a new rate
        assert (
            backend.runtime({key: PortOverride(rate_bps=20_000_000, rate_in_bps=20_000_000)}) == 2
        )
        after = _tc(config.dom0, port.vif) + _tc(config.dom0, port.ifb)
        assert [q["handle"] for q in after] == [q["handle"] for q in before]
        assert [q["options"]["rate"] for q in after] == [2_500_000, 2_500_000]
        # down: the VM's end loses its carrier; up again
        backend.runtime({key: PortOverride(up=False)})
        assert "UP" not in _link(config.dom0, port.vif)["flags"]
        assert "NO-CARRIER" in _link(port.vm_namespace, port.ifname)["flags"]
        assert backend.port_values()[key].rate_bps == 20_000_000  # the rate stays
        backend.runtime({key: PortOverride(up=True)})
        assert "UP" in _link(config.dom0, port.vif)["flags"]
        # the same topology committed again (a re-apply): the override holds, nothing
        # to change; a new backend on the same state (an agent restart) keeps it too
        assert backend.stage(candidate) == []
        backend.commit()
        backend.confirm()
        backend.close()
        backend = KernelBackend(config.dom0, tmp_path)
        assert backend.recover() is None
        assert [q["options"]["rate"] for q in _tc(config.dom0, port.vif)] == [2_500_000]
        # a port the host does not run: refused, nothing changed
        with pytest.raises(BackendError, match="no port of VM 'vm9'"):
            backend.runtime({("two-hosts", "vm9", "lan"): PortOverride(rate_bps=1_000_000)})
        # the topology's own value changes: the file's new value wins
        slower = dataclasses.replace(
            port,
            egress=dataclasses.replace(port.egress, rate_bps=5_000_000),
            ingress=dataclasses.replace(port.ingress, rate_bps=5_000_000),
        )
        edited = dataclasses.replace(config, ports=(slower,))
        backend.stage(candidate_from_host_configs([edited]))
        backend.commit()
        backend.confirm()
        assert [q["options"]["rate"] for q in _tc(config.dom0, port.vif)] == [625_000]
        assert backend.port_values() == {}
        # destroy forgets
        backend.runtime({key: PortOverride(rate_bps=20_000_000, rate_in_bps=20_000_000)})
        backend.stage(Candidate())
        backend.commit()
        backend.confirm()
        assert backend.port_values() == {}
    finally:
        backend.close()


class _Row:
    def __init__(self, vm: str, network: str) -> None:
        self.vm, self.network = vm, network


def test_a_runtime_set_is_checked_before_anything_changes() -> None:
    from pysnmp.proto import rfc1902

    from netmanager.snmp import mib
    from netmanager.snmp.tables import SetError
    from snmp_agents.runtime import IF_ADMIN_STATUS, RuntimeSets

    rows = {3: _Row("lab/vm1", "lab/lan"), 4: _Row("", "")}
    netem: list[bool | None] = [False]
    sets = RuntimeSets(lambda: rows, lambda changes: None, lambda: netem[0])
    rate = (*mib.oid_of("nmLinkEntry"), 4)
    delay = (*mib.oid_of("nmLinkEntry"), 5)
    loss = (*mib.oid_of("nmLinkEntry"), 7)
    assert sets.owns((*rate, 3)) and sets.owns((*IF_ADMIN_STATUS, 3))
    assert not sets.owns((*mib.oid_of("nmLinkEntry"), 8, 3))  # operStatus stays read-only
    u = rfc1902.Unsigned32
    assert sets.plan(
        [(0, (*rate, 3), u(20000)), (1, (*IF_ADMIN_STATUS, 3), rfc1902.Integer32(2))]
    ) == {
        ("lab", "vm1", "lan"): PortOverride(rate_bps=20_000_000, rate_in_bps=20_000_000, up=False)
    }

    def refused(varbinds: list[tuple[int, tuple[int, ...], object]]) -> tuple[str, int]:
        with pytest.raises(SetError) as caught:
            sets.plan(varbinds)
        return caught.value.status, caught.value.position

    assert refused([(0, (*rate, 9), u(1))]) == ("noCreation", 0)
    assert refused([(0, (*rate, 3), u(1)), (1, (*rate, 4), u(1))]) == ("notWritable", 1)
    assert refused([(0, (*rate, 3), rfc1902.Integer32(1))]) == ("wrongType", 0)
    assert refused([(0, (*IF_ADMIN_STATUS, 3), rfc1902.Integer32(3))]) == ("wrongValue", 0)
    assert refused([(0, (*loss, 3), u(2_000_000))]) == ("wrongValue", 0)
    assert refused([(0, (*delay, 3), u(5000))]) == ("inconsistentValue", 0)  # no NetEm
    assert sets.plan([(0, (*delay, 3), u(0))])  # 0: none, asked of any kernel
    netem[0] = None  # not known yet: the backend finds out
    assert sets.plan([(0, (*delay, 3), u(5000))])
    netem[0] = True
    assert sets.plan([(0, (*delay, 3), u(5000))]) == {
        ("lab", "vm1", "lan"): PortOverride(delay_us=5000)
    }


def test_a_runtime_set_answers_once_the_tables_serve_its_values() -> None:
    """The SET's response waits for the tables' rebuild that the change started: a GET
    right after the response served the old rate while the rebuild was still queued
    behind a poll (seen in CI, test_snmpset_changes_a_link_pair)."""
    import asyncio

    from snmp_agents.runtime import RuntimeSets

    events: list[str] = []

    async def scenario() -> None:
        rebuilt = asyncio.get_running_loop().create_future()

        async def change(changes: object) -> None:
            events.append("changed")

        def done(read: bool) -> asyncio.Future[None]:
            events.append(f"rebuild read={read}")
            return rebuilt

        sets = RuntimeSets(dict, change, lambda: False, done=done)
        running = asyncio.ensure_future(
            sets.run({("lab", "vm1", "lan"): PortOverride(rate_bps=1000, rate_in_bps=1000)})
        )
        await asyncio.sleep(0.01)
        assert not running.done()  # the rebuild has not finished: no answer yet
        rebuilt.set_result(None)
        await asyncio.wait_for(running, 1)
        events.append("answered")

    asyncio.run(scenario())
    assert events == ["changed", "rebuild read=False", "answered"]


@pytest.mark.privileged
def test_snmpset_changes_a_running_port_at_once(
    prefix: str, tool_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """net-snmp's snmpset on a host's agent: the port's rate (nmLinkRate) changed in place
    and served back, the port down and up (IF-MIB ifAdminStatus), SNMPv2c refused; the
    change kept by a re-apply; status shows it."""
    import tomllib

    from netmanager.agentctl.processes import running as running_agents
    from netmanager.cli.main import main
    from tests.snmp.conftest import Tools, need_tools

    need_tools("snmpget", "snmpset")
    real, virtual = EXAMPLES / "two-hosts" / "real.xml", EXAMPLES / "two-hosts" / "virtual.xml"
    doc = tomllib.loads((EXAMPLES / "two-hosts" / "snmp.toml").read_text())
    w = doc["write"]
    write = [
        *("-v3", "-l", "authPriv", "-u", w["user"], "-a", w["auth_protocol"]),
        *("-A", w["auth_key"], "-x", "AES", "-X", w["priv_key"]),
    ]
    read = ["-v2c", "-c", doc["read"]["community"]]
    assert main(["apply", str(real), str(virtual)]) == 0
    try:
        _, configs = _compiled(*CASES[1])
        config = configs["host1"]
        port = config.ports[0]
        dom0 = f"{prefix}h-host1"
        vm_ns = f"{prefix}v-two-hosts-vm1"
        tools = Tools(tool_env, f"udp:127.0.0.1:{running_agents()['host1'].port}")
        index = tools.get(read, 'NETMANAGER-MIB::nmLinkNameIfIndex."two-hosts/vm1"."two-hosts/lan"')
        before = _tc(dom0, port.vif)
        assert tools.get(read, f"NETMANAGER-MIB::nmLinkRate.{index}") == "10000"
        # v2c may not SET
        refused = tools.run(
            "snmpset", *read, tools.target, f"NETMANAGER-MIB::nmLinkRate.{index}", "u", "20000"
        )
        assert refused.returncode != 0 and "noAccess" in refused.stderr, refused.stderr
        done = tools.run(
            "snmpset", *write, tools.target, f"NETMANAGER-MIB::nmLinkRate.{index}", "u", "20000"
        )
        assert done.returncode == 0, done.stderr
        after = _tc(dom0, port.vif)
        assert [q["handle"] for q in after] == [q["handle"] for q in before]
        assert [q["options"]["rate"] for q in after] == [2_500_000]
        assert tools.get(read, f"NETMANAGER-MIB::nmLinkRate.{index}") == "20000"
        assert tools.get(read, f"NETMANAGER-MIB::nmLinkRateFromVm.{index}") == "20000"
        # what the VM sends, apart (its IFB's TBF alone)
        column = f"NETMANAGER-MIB::nmLinkRateFromVm.{index}"
        done = tools.run("snmpset", *write, tools.target, column, "u", "4000")
        assert done.returncode == 0, done.stderr
        assert [q["options"]["rate"] for q in _tc(dom0, port.vif)] == [2_500_000]
        assert [q["options"]["rate"] for q in _tc(dom0, port.ifb)] == [500_000]
        assert tools.get(read, column) == "4000"
        assert tools.get(read, f"NETMANAGER-MIB::nmLinkRate.{index}") == "20000"
        # both in one request: nmLinkRate then sets the rate towards the VM alone
        done = tools.run(
            "snmpset", *write, tools.target, column, "u", "6000",
            f"NETMANAGER-MIB::nmLinkRate.{index}", "u", "20000",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert [q["options"]["rate"] for q in _tc(dom0, port.ifb)] == [750_000]
        # the port down: the VM sees its carrier go; up again
        done = tools.run(
            "snmpset", *write, tools.target, f"IF-MIB::ifAdminStatus.{index}", "i", "2"
        )
        assert done.returncode == 0, done.stderr
        assert "NO-CARRIER" in _link(vm_ns, port.ifname)["flags"]
        done = tools.run(
            "snmpset", *write, tools.target, f"IF-MIB::ifAdminStatus.{index}", "i", "1"
        )
        assert done.returncode == 0, done.stderr
        assert "NO-CARRIER" not in _link(vm_ns, port.ifname)["flags"]
        capsys.readouterr()
        # a re-apply keeps the runtime change; status shows it
        assert main(["apply", str(real), str(virtual)]) == 0
        assert "applied: 0 changes" in capsys.readouterr().out
        assert [q["options"]["rate"] for q in _tc(dom0, port.vif)] == [2_500_000]
        assert main(["status", "--json", str(real), str(virtual)]) == 0
        status = json.loads(capsys.readouterr().out)
        vm1 = next(v for v in status["vms"] if v["name"] == "vm1")
        assert vm1["interfaces"][0]["link"]["rate_kbps"] == 20000
    finally:
        main(["destroy", str(real), str(virtual)])


PAIRS = """<?xml version="1.0" encoding="UTF-8"?>
<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="snmp-pairs">
  <network name="lan" cidr="10.22.0.0/24"/>
  <vm name="vm1" host="host1"><interface network="lan" ip="10.22.0.1"/></vm>
  <vm name="vm2" host="host2"><interface network="lan" ip="10.22.0.2"/></vm>
  <link a="vm1" b="vm2" bandwidth="2Mbit"/>
</virtual>
"""


def test_snmpset_changes_a_link_pair(
    prefix: str, tool_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """net-snmp against nmPairTable: a pair's row read by the port's ifIndex and the
    peer's name, its rate written (SNMPv3 authPriv) and served back with the override
    named; a peer the port has no pair with is noCreation, nothing changed."""
    import tomllib

    from netmanager.agentctl.processes import running as running_agents
    from netmanager.cli.main import main
    from tests.snmp.conftest import Tools, need_tools

    need_tools("snmpget", "snmpset")
    real = EXAMPLES / "two-hosts" / "real.xml"
    virtual = tmp_path / "virtual.xml"
    virtual.write_text(PAIRS)
    doc = tomllib.loads((EXAMPLES / "two-hosts" / "snmp.toml").read_text())
    w = doc["write"]
    write = [
        *("-v3", "-l", "authPriv", "-u", w["user"], "-a", w["auth_protocol"]),
        *("-A", w["auth_key"], "-x", "AES", "-X", w["priv_key"]),
    ]
    read = ["-v2c", "-c", doc["read"]["community"]]
    assert main(["apply", str(real), str(virtual)]) == 0
    try:
        tools = Tools(tool_env, f"udp:127.0.0.1:{running_agents()['host1'].port}")
        index = tools.get(
            read, 'NETMANAGER-MIB::nmLinkNameIfIndex."snmp-pairs/vm1"."snmp-pairs/lan"'
        )
        row = f'{index}."vm2"'
        assert tools.get(read, f"NETMANAGER-MIB::nmPairRate.{row}") == "2000"
        assert tools.get(read, f"NETMANAGER-MIB::nmPairOverrides.{row}") == ""
        done = tools.run(
            "snmpset", *write, tools.target, f"NETMANAGER-MIB::nmPairRate.{row}", "u", "3000"
        )
        assert done.returncode == 0, done.stderr
        assert tools.get(read, f"NETMANAGER-MIB::nmPairRate.{row}") == "3000"
        assert tools.get(read, f"NETMANAGER-MIB::nmPairOverrides.{row}") == "rate"
        dom0 = f"{prefix}h-host1"
        vif = next(
            link["ifname"]
            for link in json.loads(
                subprocess.run(
                    ["ip", "-n", dom0, "-j", "link", "show"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            if link.get("ifalias", "").startswith("nm:snmp-pairs:port:vm1:")
        )
        out = subprocess.run(
            ["ip", "netns", "exec", dom0, "tc", "class", "show", "dev", vif],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert " rate 3Mbit " in out, out  # the pair's HTB class, in the kernel
        refused = tools.run(
            "snmpset", *write, tools.target, f'NETMANAGER-MIB::nmPairRate.{index}."vm9"', "u", "1"
        )
        assert refused.returncode != 0 and "noCreation" in refused.stderr, refused.stderr
        assert tools.get(read, f"NETMANAGER-MIB::nmPairRate.{row}") == "3000"
    finally:
        main(["destroy", str(real), str(virtual)])
