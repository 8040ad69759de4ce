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
from tests.snmp.test_kernelhost import CASES, _compiled


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
    merged = runtime.merge({}, {key: PortOverride(rate_bps=20_000_000)}, ports)
    assert merged[key].rate_bps == 20_000_000 and dict(merged[key].base) == {"rate_bps": 10_000_000}
    # set back to the topology's own value: no override left
    assert runtime.merge(merged, {key: PortOverride(rate_bps=10_000_000)}, ports) == {}
    # kept while the topology's value stays; dropped once it changed (the file wins)
    assert runtime.prune(merged, ports) == merged
    changed = dataclasses.replace(
        config.ports[0], egress=dataclasses.replace(config.ports[0].egress, rate_bps=5_000_000)
    )
    assert runtime.prune(merged, {key: changed}) == {}
    assert runtime.prune(merged, {}) == {}  # the port is gone
    over = runtime.apply_overrides(config, merged)
    assert over.ports[0].egress.rate_bps == over.ports[0].ingress.rate_bps == 20_000_000
    assert runtime.apply_overrides(config, {}) is config
    assert runtime.from_json(json.loads(json.dumps(runtime.to_json(merged)))) == merged


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
        assert backend.runtime({key: PortOverride(rate_bps=20_000_000)}) == 2
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
        backend.runtime({key: PortOverride(rate_bps=20_000_000)})
        backend.stage(Candidate())
        backend.commit()
        backend.confirm()
        assert backend.port_values() == {}
    finally:
        backend.close()
