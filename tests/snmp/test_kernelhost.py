"""The kernel backend: HostConfig <-> rows, and two agents building examples/two-hosts.

The round trip is pure.  The privileged test builds the emulated infrastructure of
examples/two-hosts in namespaces of its own prefix, starts one agent per host
(``--backend kernel --dom0 <prefix>h-hostN``) on loopback, loads each host's HostConfig
through SNMPv3 authPriv SETs (net-snmp's ``snmpset``), stages, commits with a revert
timer, confirms, and checks the kernel with ``ip -j``/``tc -j`` and a ping between the
VMs; then a commit left unconfirmed reverts by itself and a rollback restores.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import netmanager
from netmanager.compile.configs import compile_infrastructure, compile_topology
from netmanager.compile.hostconfig import HostConfig
from netmanager.host.candidate import Candidate, check_candidate
from netmanager.host.rows import (
    candidate_from_host_configs,
    host_configs_from_candidate,
)
from tests.snmp.conftest import REPO, Agent, Tools, need_root, need_tools
from tests.snmp.setargs import candidate_sets

EXAMPLES = REPO / "examples"
CASES = [
    ("aef-grid/real.xml", "aef-grid/virtual.xml"),
    ("two-hosts/real.xml", "two-hosts/virtual.xml"),
    ("virtcloud/real.xml", "virtcloud/tenant-a.xml"),
    ("two-hosts-guests/real.xml", "two-hosts-guests/virtual.xml"),
    ("aef-grid-vlan/real.xml", "aef-grid-vlan/virtual.xml"),
]
NM = "NETMANAGER-MIB::"


def _compiled(real: str, virtual: str) -> tuple[netmanager.Model, dict[str, HostConfig]]:
    model = netmanager.load(EXAMPLES / real, EXAMPLES / virtual)
    return model, compile_topology(model, netmanager.map(model))


@pytest.mark.parametrize(("real", "virtual"), CASES)
def test_round_trip_is_lossless(real: str, virtual: str) -> None:
    _, configs = _compiled(real, virtual)
    for config in configs.values():
        candidate = candidate_from_host_configs([config])
        assert check_candidate(candidate) == []
        # through the agent's own persistence too
        again = Candidate.from_json(json.loads(json.dumps(candidate.to_json())))
        assert host_configs_from_candidate(again) == [config]


def test_a_backend_reads_its_journal_again_when_another_process_wrote_it(
    tmp_path: Path,
) -> None:
    """A manager process keeps its in-process backends from one apply to the next; when
    another process (another manager on the same state directory) wrote a host's journal
    since, the kept backend reads it again before it is used, so that its running
    configuration, and what a rollback returns to, are the host's, not its own memory."""
    from netmanager.host.kernelhost import KernelBackend

    _, grid = _compiled(*CASES[0])
    _, two = _compiled(*CASES[1])
    ours = candidate_from_host_configs([grid["host1"]])
    theirs = candidate_from_host_configs([grid["host1"], two["host1"]])
    kept = KernelBackend(grid["host1"].dom0, tmp_path)
    kept.running_candidate = ours
    kept._save()
    assert not kept.reload_if_changed()  # its own write: nothing to read
    other = KernelBackend(grid["host1"].dom0, tmp_path)  # "another process"
    assert other.running() == ours
    other.running_candidate, other.undo_point = theirs, ours
    other._save()
    assert kept.reload_if_changed()
    assert kept.running() == theirs and kept.undo_point == ours
    assert kept.pending() == "an unconfirmed commit"
    assert not kept.reload_if_changed()


def test_topologies_share_a_host_and_rows_must_agree() -> None:
    _, grid = _compiled(*CASES[0])
    _, two = _compiled(*CASES[1])
    both = [grid["host1"], two["host1"]]
    candidate = candidate_from_host_configs(both)
    names = {n.name for n in candidate.networks}
    assert "two-hosts/lan" in names and any(n.startswith("aef-grid/") for n in names)
    assert host_configs_from_candidate(candidate) == sorted(both, key=lambda c: c.topology)
    # a structured row that does not match the documents is refused
    tampered = dataclasses.replace(candidate, ports=candidate.ports[1:])
    with pytest.raises(ValueError, match="ports rows do not match"):
        host_configs_from_candidate(tampered)
    missing_chunk = dataclasses.replace(candidate, documents=candidate.documents[1:])
    with pytest.raises(ValueError, match="not numbered"):
        host_configs_from_candidate(missing_chunk)


def test_engine_is_bound_to_one_thread(tmp_path: Path) -> None:
    import threading

    from netmanager.host.kernelhost import KernelBackend
    from netmanager.host.protocol import BackendError
    from netmanager.kernel import Engine
    from netmanager.kernel.fake import FakeKernel

    backend = KernelBackend("nmh-x", tmp_path, engine=Engine(FakeKernel()))
    backend.engine()
    errors: list[Exception] = []

    def other() -> None:
        try:
            backend.engine()
        except BackendError as exc:
            errors.append(exc)

    worker = threading.Thread(target=other)
    worker.start()
    worker.join()
    assert len(errors) == 1 and "another thread" in str(errors[0])
    # a candidate for another host's dom0 is refused at stage, before any kernel access
    _, configs = _compiled(*CASES[1])
    with pytest.raises(BackendError, match="this agent serves 'nmh-x'"):
        backend.stage(candidate_from_host_configs([configs["host1"]]))


# ------------------------------------------------------------------ privileged


def _ip_json(*args: str) -> list[dict[str, object]]:
    out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out) if out.strip() else []


def _namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    need_root()
    need_tools("snmpset", "snmpget", "iptables-save", "ebtables")
    value = f"nk{secrets.token_hex(2)}"
    monkeypatch.setenv("NETMANAGER_NS_PREFIX", value)
    try:
        yield value
    finally:
        for name in _namespaces():
            if name.startswith(value):
                subprocess.run(["ip", "netns", "del", name], capture_output=True)


class Host:
    def __init__(
        self, agent: Agent, tools: Tools, config: HostConfig, write: list[str], read: list[str]
    ) -> None:
        self.agent, self.tools, self.config = agent, tools, config
        self.write, self.read = write, read
        self.candidate = candidate_from_host_configs([config])

    def set(self, *varbinds: tuple[str, str, str]) -> None:
        args = [x for vb in varbinds for x in vb]
        proc = self.tools.run("snmpset", *self.write, self.agent.target, *args)
        assert proc.returncode == 0, f"{proc.stderr}\n{self.agent.log_text()}"

    def get(self, name: str) -> str:
        self.tools.target = self.agent.target
        return self.tools.get(self.read, NM + name)

    def wait(self, want: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.get("nmTxnState.0")
            if state == want:
                return
            time.sleep(0.1)
        raise AssertionError(
            f"state {state}, wanted {want}: {self.get('nmTxnLastError.0')}\n"
            + self.agent.log_text()
        )

    def load(self, candidate: Candidate, have: Candidate) -> None:
        for varbinds in candidate_sets(candidate, have):
            self.set(*varbinds)

    def op(self, name: str, want: str, *extra: tuple[str, str, str]) -> None:
        self.set(*extra, (NM + "nmTxnOperation.0", "i", name))
        self.wait(want)


def _ping(namespace: str, address: str) -> bool:
    proc = subprocess.run(
        ["ip", "netns", "exec", namespace, "ping", "-c", "2", "-W", "1", "-i", "0.3", address],
        capture_output=True,
    )
    return proc.returncode == 0


@pytest.mark.slow  # two agents, every transaction step
@pytest.mark.privileged
def test_two_agents_build_two_hosts(prefix: str, tmp_path: Path, tool_env: dict[str, str]) -> None:
    import tomllib

    from netmanager.compile.desired import render_infrastructure
    from netmanager.kernel import Engine, HostState

    creds = tmp_path / "snmp.toml"
    shutil.copyfile(EXAMPLES / "two-hosts/snmp.toml", creds)
    os.chmod(creds, 0o600)
    doc = tomllib.loads(creds.read_text())
    w = doc["write"]
    write = [
        *("-v3", "-l", "authPriv", "-u", w["user"], "-a", w["auth_protocol"]),
        *("-A", w["auth_key"], "-x", "AES", "-X", w["priv_key"]),
    ]
    read = ["-v2c", "-c", doc["read"]["community"]]

    model, configs = _compiled(*CASES[1])
    infra = compile_infrastructure(model.real)
    agents: list[Agent] = []
    try:
        with Engine() as engine:
            engine.apply(HostState.checked(render_infrastructure(infra)))
        hosts: dict[str, Host] = {}
        for name, config in sorted(configs.items()):
            assert config.dom0 == f"{prefix}h-{name}"
            state = tmp_path / f"state-{name}"
            agent = Agent(state, creds, ["--backend", "kernel", "--dom0", config.dom0])
            agents.append(agent)
            agent.start()
            hosts[name] = Host(agent, Tools(tool_env), config, write, read)

        start = time.monotonic()
        for host in hosts.values():
            host.load(host.candidate, Candidate())
            host.op("stage", "staged")
            assert int(host.get("nmTxnChanges.0")) > 0
        for host in hosts.values():
            host.op("commit", "pendingConfirm", (NM + "nmTxnRevertTimeout.0", "u", "120"))
        for host in hosts.values():
            host.op("confirm", "idle")
            assert host.get("nmTxnLastResult.0") == "success"
        applied_s = time.monotonic() - start

        vm1, vm2 = (hosts[h].config.ports[0] for h in ("host1", "host2"))
        addrs = _ip_json("-n", vm1.vm_namespace, "addr", "show", "dev", vm1.ifname)
        assert str(vm1.ip) in {
            f"{a['local']}/{a['prefixlen']}"
            for a in addrs[0]["addr_info"]  # type: ignore[union-attr]
        }
        qdiscs = json.loads(
            subprocess.run(
                ["tc", "-j", "-n", hosts["host1"].config.dom0, "qdisc", "show", "dev", vm1.vif],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert any(q["kind"] == "tbf" for q in qdiscs)
        assert _ping(vm1.vm_namespace, str(vm2.ip.ip)), "vm1 cannot reach vm2"
        # the link table names the port with the topology-qualified VM
        h1 = hosts["host1"]

        # an unconfirmed commit (host1 loses its VM) reverts by itself
        h1.load(Candidate(), h1.candidate)
        h1.op("stage", "staged")
        h1.op("commit", "pendingConfirm", (NM + "nmTxnRevertTimeout.0", "u", "2"))
        assert vm1.vm_namespace not in _namespaces()
        h1.wait("idle", timeout=30)
        assert h1.get("nmTxnLastResult.0") == "reverted"
        assert vm1.vm_namespace in _namespaces()
        assert _ping(vm1.vm_namespace, str(vm2.ip.ip)), "not restored after the revert"

        # rollback restores too (the tables show the running configuration again)
        h1.load(Candidate(), h1.candidate)
        h1.op("stage", "staged")
        h1.op("commit", "pendingConfirm", (NM + "nmTxnRevertTimeout.0", "u", "120"))
        assert vm1.vm_namespace not in _namespaces()
        h1.op("rollback", "idle")
        assert vm1.vm_namespace in _namespaces()
        assert _ping(vm1.vm_namespace, str(vm2.ip.ip)), "not restored after the rollback"
        journal = json.loads((h1.agent.state_dir / "kernel-backend.json").read_text())
        assert journal["in_progress"] is None and journal["undo_point"] is None
        print(f"two hosts applied through their agents in {applied_s:.2f}s")
    finally:
        for agent in agents:
            agent.stop()


@pytest.mark.privileged
def test_recover_undoes_an_interrupted_commit(prefix: str, tmp_path: Path) -> None:
    """A commit cut short (journal still says in progress): a new backend on the same
    state directory returns the host to the configuration before it."""
    from netmanager.compile.desired import render_infrastructure
    from netmanager.host.kernelhost import KernelBackend
    from netmanager.kernel import Engine, HostState

    model, configs = _compiled(*CASES[1])
    config = configs["host1"]
    with Engine() as engine:
        engine.apply(HostState.checked(render_infrastructure(compile_infrastructure(model.real))))
    backend = KernelBackend(config.dom0, tmp_path)
    try:
        candidate = candidate_from_host_configs([config])
        assert backend.stage(candidate)
        backend.commit()
        vm_ns = config.vms[0].namespace
        assert vm_ns in _namespaces()
        assert backend.stage(candidate) == []  # converged: nothing left to do
        backend.confirm()
        assert backend.recover() is None  # nothing to re-apply
        # a second commit (no VM) "crashes" half-way: the journal still says so
        backend.stage(Candidate())
        backend.undo_point, backend.target = candidate, Candidate()
        backend.in_progress = "commit"
        backend._save()
        backend._converge(backend._target(Candidate()))
        assert vm_ns not in _namespaces()
    finally:
        backend.close()
    again = KernelBackend(config.dom0, tmp_path)
    try:
        assert again.recover() == "undid an interrupted commit"
        assert vm_ns in _namespaces()
        assert again.running() == candidate and again.in_progress is None
        again.rollback()  # nothing unconfirmed: a no-op
        assert vm_ns in _namespaces()
    finally:
        again.close()
