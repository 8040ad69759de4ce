"""apply / plan / destroy / status / exec on emulated hosts, end to end, for real.

Each test runs in namespaces of its own (NETMANAGER_NS_PREFIX) and a state directory of
its own, and removes every namespace it made even when it fails. The kernel is read back
through ip -j, tc -j and the save tools (tests/kernelstate.py), never through netmanager.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netmanager.apply import topology
from netmanager.apply.prepare import prepare
from netmanager.apply.records import records
from netmanager.cli.main import main
from netmanager.errors import ApplyFailed, NetmanagerError
from tests import kernelstate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TWO = (str(EXAMPLES / "two-hosts/real.xml"), str(EXAMPLES / "two-hosts/virtual.xml"))


def faster_two_hosts(directory: Path, virtual: str | Path = TWO[1]) -> Path:
    """``virtual`` (examples/two-hosts' by default) with its 10 Mbit/s link at 20 Mbit/s,
    written into ``directory``."""
    faster = directory / "faster.xml"
    faster.write_text(Path(virtual).read_text().replace('bandwidth="10Mbit"', 'bandwidth="20Mbit"'))
    return faster


AEF = (str(EXAMPLES / "aef-grid/real.xml"), str(EXAMPLES / "aef-grid/virtual.xml"))

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to build namespaces"),
]


def _ping(prefix: str, vm: str, address: str, topology: str) -> bool:
    ns = f"{prefix}v-{topology}-{vm}"
    for _ in range(3):
        result = subprocess.run(
            ["ip", "netns", "exec", ns, "ping", "-c1", "-W1", address],
            capture_output=True,
            check=False,
        )
        if result.returncode == 0:
            return True
    return False


def test_two_hosts_apply_reapply_status_exec_destroy(
    prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = kernelstate.snapshot(prefix)
    assert main(["apply", "--json", *TWO]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["changes"] > 0 and set(first["hosts"]) == {"host1", "host2"}
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
    # the VMs reach each other across the emulated underlay (VXLAN between the hosts)
    assert _ping(prefix, "vm1", "10.20.0.2", "two-hosts")
    # shaping sits on the host-side port, both ways
    qdiscs = json.loads(
        subprocess.run(
            ["tc", "-n", f"{prefix}h-host1", "-j", "qdisc", "show"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert any(q["kind"] == "tbf" and q["dev"].startswith("nv") for q in qdiscs)
    # a second apply changes nothing, plan says so
    assert main(["apply", "--json", *TWO]) == 0
    assert json.loads(capsys.readouterr().out)["changes"] == 0
    assert main(["plan", "--json", *TWO]) == 0
    assert json.loads(capsys.readouterr().out)["changes"] == 0
    # status reads the kernel
    assert main(["status", "--json", *TWO]) == 0
    status = json.loads(capsys.readouterr().out)
    vm1 = next(v for v in status["vms"] if v["name"] == "vm1")
    assert vm1["host"] == "host1"
    assert vm1["interfaces"] == [
        {
            "network": "lan",
            "ifname": "eth0",
            "ip": "10.20.0.1/24",
            "mac": vm1["interfaces"][0]["mac"],
            "state": "up",
            # what host1's agent reports of the port (the topology went through agents)
            "link": {
                "rate_kbps": 10000,
                "delay_us": 0,
                "oper": "up",
                "in_octets": vm1["interfaces"][0]["link"]["in_octets"],
                "out_octets": vm1["interfaces"][0]["link"]["out_octets"],
                # netmanager set the address in the VM's namespace
                "guest_address": "configured",
                "overrides": [],  # no runtime change
            },
        }
    ]
    # exec returns the command's exit code
    assert main(["exec", "vm1", "--", "true"]) == 0
    assert main(["exec", "vm1", "--", "sh", "-c", "exit 3"]) == 3
    # destroy leaves nothing
    assert main(["destroy", *TWO]) == 0
    assert kernelstate.snapshot(prefix) == before


def test_changed_rate_is_modified_in_place_and_drift_is_repaired(
    prefix: str, tmp_path: Path
) -> None:
    topology.apply(prepare(*TWO), local=True)
    host1 = f"{prefix}h-host1"
    handle_before = kernelstate.namespace_state(host1)["qdiscs"]
    faster = faster_two_hosts(tmp_path)
    (tmp_path / "snmp.toml").write_text("")
    changed = topology.plan(prepare(TWO[0], faster), local=True)
    assert changed.counts() == {"add": 0, "modify": 4, "remove": 0}
    topology.apply(prepare(TWO[0], faster), local=True)
    after = kernelstate.namespace_state(host1)["qdiscs"]
    assert [q[:4] for q in after] == [q[:4] for q in handle_before]  # same qdiscs, same handles
    assert any('"rate": 2500000' in q[4] for q in after)  # tc -j gives bytes per second
    # drift: a port deleted by hand shows in plan, and apply repairs it
    port = next(
        link["ifname"]
        for link in kernelstate.namespace_state(host1)["links"]
        if str(link["ifname"]).startswith("nv")
    )
    subprocess.run(["ip", "-n", host1, "link", "del", port], check=True)
    drift = topology.plan(prepare(TWO[0], faster), local=True)
    assert drift.counts()["add"] >= 2
    topology.apply(prepare(TWO[0], faster), local=True)
    assert _ping(prefix, "vm1", "10.20.0.2", "two-hosts")


@pytest.mark.slow  # a fault at every step
def test_a_failure_at_any_step_leaves_the_machine_as_it_was(prefix: str) -> None:
    """Fault injection at every step of two-hosts, from nothing and from an applied state."""
    deployment = prepare(*TWO)
    before = kernelstate.snapshot(prefix)
    step = 0
    while True:
        try:
            topology.apply(deployment, fail_at=step, local=True)
        except ApplyFailed as exc:
            assert all(d.code == "E710" for d in exc.diagnostics), exc.diagnostics
            assert kernelstate.snapshot(prefix) == before, (
                f"state differs after a failure at step {step}"
            )
            assert records() == {}
            step += 1
            continue
        break
    assert step > 20  # infrastructure, firewall and topology steps were all tried
    applied = kernelstate.snapshot(prefix)
    # From an applied state: a change (a faster link) failing at each of its steps.
    faster = Path(TWO[1]).read_text().replace('bandwidth="10Mbit"', 'bandwidth="20Mbit"')
    changed_file = Path(os.environ["NETMANAGER_STATE_DIR"]).parent / "faster.xml"
    changed_file.write_text(faster)
    (changed_file.parent / "snmp.toml").write_text("")
    changed = prepare(TWO[0], changed_file)
    step = 0
    while True:
        try:
            topology.apply(changed, fail_at=step, local=True)
        except ApplyFailed:
            assert kernelstate.snapshot(prefix) == applied, (
                f"state differs after a failure at step {step}"
            )
            step += 1
            continue
        break
    assert step == 4
    topology.destroy("two-hosts")
    assert kernelstate.snapshot(prefix) == before


def test_aef_grid_reproduces_the_isolation_of_seed_002(prefix: str) -> None:
    before = kernelstate.snapshot(prefix)
    topology.apply(prepare(*AEF), local=True)
    # inside a site, across hosts: vmgrid101 (host3) and vmgrid108 (host1) in site 1
    assert _ping(prefix, "vmgrid101", "10.1.0.18", "aef-grid")
    assert _ping(prefix, "vmgrid201", "10.2.0.22", "aef-grid")  # host1 -> host2
    # proxy to proxy over the backbone, across hosts
    assert _ping(prefix, "vmgridpeer1", "10.0.0.2", "aef-grid")
    assert _ping(prefix, "vmgridpeer3", "10.0.0.1", "aef-grid")
    # nothing across sites, not even from a proxy
    assert not _ping(prefix, "vmgrid101", "10.2.0.11", "aef-grid")
    assert not _ping(prefix, "vmgridpeer1", "10.2.0.11", "aef-grid")
    # a sample of fault injections on aef-grid: each failure undone exactly
    topology.destroy("aef-grid")
    assert kernelstate.snapshot(prefix) == before
    deployment = prepare(*AEF)
    for step in (0, 7, 25, 40, 120, 230):
        with pytest.raises(ApplyFailed):
            topology.apply(deployment, fail_at=step, local=True)
        assert kernelstate.snapshot(prefix) == before, (
            f"state differs after a failure at step {step}"
        )


def test_latency_is_refused_before_any_change_without_netem(prefix: str, tmp_path: Path) -> None:
    before = kernelstate.snapshot(prefix)
    slow = tmp_path / "virtual.xml"
    slow.write_text(
        Path(TWO[1]).read_text().replace('bandwidth="10Mbit"', 'bandwidth="10Mbit" latency="20ms"')
    )
    (tmp_path / "snmp.toml").write_text("")
    with pytest.raises(NetmanagerError) as err:
        prepare(TWO[0], slow, features=frozenset({"vxlan", "tbf"}))
    assert [d.code for d in err.value.errors] == ["E701"]
    assert err.value.errors[0].loc.line == 8  # the <shaping> element
    assert kernelstate.snapshot(prefix) == before


def test_another_namespace_prefix_on_the_same_state_is_refused(
    prefix: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", "--local", *TWO]) == 0
    applied = kernelstate.snapshot(prefix)
    other = f"{prefix}o"  # starts with the fixture's prefix: its finalizer removes it too
    monkeypatch.setenv("NETMANAGER_NS_PREFIX", other)
    capsys.readouterr()
    assert main(["apply", "--local", *TWO]) == 1
    assert "error[E707]" in capsys.readouterr().err
    assert kernelstate.namespaces(other) == []
    monkeypatch.setenv("NETMANAGER_NS_PREFIX", prefix)
    assert kernelstate.snapshot(prefix) == applied
    assert main(["destroy", *TWO]) == 0


def test_destroy_of_unknown_topology_is_an_error(
    prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["destroy", "--topology", "nothing-here"]) == 1
    assert "E720" in capsys.readouterr().err


VC = str(EXAMPLES / "virtcloud/real.xml")


def _neighbour_mac(namespace: str, address: str) -> str:
    out = subprocess.run(
        ["ip", "-n", namespace, "-j", "neigh", "show", address],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return str(json.loads(out)[0]["lladdr"])


def _mac(namespace: str) -> str:
    out = subprocess.run(
        ["ip", "-n", namespace, "-j", "link", "show", "eth0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return str(json.loads(out)[0]["address"])


def test_virtcloud_tenants_with_identical_addresses_and_outbound_nat(prefix: str) -> None:
    before = kernelstate.snapshot(prefix)
    for tenant in "ab":
        topology.apply(prepare(VC, str(EXAMPLES / f"virtcloud/tenant-{tenant}.xml")), local=True)
    # each tenant reaches its own VMs at the shared addresses, never the other's
    for tenant in "ab":
        assert _ping(prefix, "node1", "10.10.0.12", f"tenant-{tenant}")
        assert _neighbour_mac(f"{prefix}v-tenant-{tenant}-node1", "10.10.0.12") == _mac(
            f"{prefix}v-tenant-{tenant}-node2"
        )
    # outbound-only: tenant A reaches the emulated outside world, tenant B does not
    assert _ping(prefix, "head", "198.18.0.1", "tenant-a")
    assert not _ping(prefix, "head", "198.18.0.1", "tenant-b")
    # and nothing outside reaches in, even with a route to the tenant's network
    gateway = next(n for n in kernelstate.namespaces(prefix) if n.startswith(f"{prefix}g-"))
    uplink = json.loads(
        subprocess.run(
            ["ip", "-n", gateway, "-j", "addr", "show", "eth1"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )[0]["addr_info"][0]["local"]
    external = f"{prefix}x-external"
    subprocess.run(
        ["ip", "-n", external, "route", "add", "10.10.0.0/24", "via", uplink], check=True
    )
    inbound = subprocess.run(
        ["ip", "netns", "exec", external, "ping", "-c1", "-W1", "10.10.0.12"],
        capture_output=True,
        check=False,
    )
    subprocess.run(["ip", "-n", external, "route", "del", "10.10.0.0/24"], check=True)
    assert inbound.returncode != 0
    # re-applying either changes nothing; destroying both leaves nothing
    for tenant in "ab":
        assert (
            topology.apply(
                prepare(VC, str(EXAMPLES / f"virtcloud/tenant-{tenant}.xml")), local=True
            ).changes
            == 0
        )
    topology.destroy("tenant-a")
    assert _ping(prefix, "node1", "10.10.0.12", "tenant-b")
    topology.destroy("tenant-b")
    assert kernelstate.snapshot(prefix) == before


def test_anti_spoofing_drops_forged_addresses_and_macs(prefix: str) -> None:
    topology.apply(prepare(*TWO), local=True)
    vm1 = f"{prefix}v-two-hosts-vm1"

    def ping_from(source: str | None = None) -> bool:
        argv = ["ip", "netns", "exec", vm1, "ping", "-c1", "-W1"]
        argv += ["-I", source] if source else []
        for _ in range(2):
            if (
                subprocess.run([*argv, "10.20.0.2"], capture_output=True, check=False).returncode
                == 0
            ):
                return True
        return False

    assert ping_from()
    # another source address on the VM's own interface: dropped at its port
    subprocess.run(["ip", "-n", vm1, "addr", "add", "10.20.0.99/24", "dev", "eth0"], check=True)
    assert not ping_from("10.20.0.99")
    subprocess.run(["ip", "-n", vm1, "addr", "del", "10.20.0.99/24", "dev", "eth0"], check=True)
    assert ping_from()
    # a forged MAC: dropped too
    subprocess.run(
        ["ip", "-n", vm1, "link", "set", "eth0", "address", "02:00:00:00:66:66"], check=True
    )
    subprocess.run(["ip", "-n", vm1, "neigh", "flush", "all"], check=True)
    assert not ping_from()
    topology.destroy("two-hosts")


def test_progress_shows_the_kernel_steps_of_the_commit(
    prefix: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    monkeypatch.setenv("NETMANAGER_PROGRESS", "1")
    assert main(["apply", "--local", *TWO]) == 0
    err = capsys.readouterr().err
    # in this process as through agents: every host's commit steps, summed in one bar
    steps = re.search(r"committing on 2 host\(s\) \.\.\. (\d+)/(\d+) steps", err)
    assert steps and steps.group(1) == steps.group(2) and int(steps.group(2)) > 0, err
    assert main(["destroy", *TWO]) == 0
    err = capsys.readouterr().err
    assert re.search(r"committing on 2 host\(s\) \.\.\. ([1-9]\d*)/\1 steps", err), err
    # through the agents: the steps of every host's commit, summed (nmTxnStepsDone/Total)
    assert main(["apply", *TWO]) == 0
    err = capsys.readouterr().err
    assert re.search(r"committing on 2 host\(s\) \.\.\. ([1-9]\d*)/\1 steps", err), err
    assert main(["destroy", *TWO]) == 0


def test_apply_only_changes_the_named_ports_shaping_through_their_agents(
    prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``apply --only VM:NETWORK``: one VM port's new rate, on its host only, in a
    transaction scoped to its links — the other host is not asked, drift elsewhere is not
    repaired (nothing else is even looked at), the qdiscs keep their handles; what it
    cannot do alone is E712 before any change."""
    assert main(["apply", *TWO]) == 0
    faster = str(faster_two_hosts(tmp_path))
    host1, host2 = f"{prefix}h-host1", f"{prefix}h-host2"
    readdressed = tmp_path / "readdressed.xml"
    readdressed.write_text(Path(faster).read_text().replace('ip="10.20.0.2"', 'ip="10.20.0.3"'))
    built = kernelstate.snapshot(prefix)
    # both VMs' ports change with the network's bandwidth: naming one is not enough
    for argv in (
        ["--only", "vm1:lan", TWO[0], faster],
        ["--only", "vm9:lan", TWO[0], faster],
        ["--only", "vm1:lan", "--only", "vm2:lan", TWO[0], str(readdressed)],
    ):
        capsys.readouterr()
        assert main(["apply", *argv]) == 1, argv
        err = capsys.readouterr().err
        assert "error[E712]" in err and "nothing was changed" in err, err
        assert kernelstate.snapshot(prefix) == built
    # drift on host1 that only a whole apply repairs (the network's bridge, outside the
    # ports' links): a scoped one leaves it alone
    (bridge,) = json.loads(
        subprocess.run(
            ["ip", "-n", host1, "-j", "link", "show", "type", "bridge"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    subprocess.run(["ip", "-n", host1, "link", "set", bridge["ifname"], "mtu", "1400"], check=True)
    drifted = kernelstate.snapshot(prefix)
    capsys.readouterr()
    assert main(["apply", "--json", "--only", "vm1:lan", "--only", "vm2:lan", TWO[0], faster]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["phases"] == {"hosts": 4}, outcome  # a TBF and an HTB class per port
    after = kernelstate.snapshot(prefix)
    for name in (host1, host2):
        assert [q[:4] for q in after["namespaces"][name]["qdiscs"]] == [
            q[:4] for q in drifted["namespaces"][name]["qdiscs"]
        ]
        assert after["namespaces"][name]["links"] == drifted["namespaces"][name]["links"]
    assert any('"rate": 2500000' in q[4] for q in after["namespaces"][host1]["qdiscs"])
    assert records()["two-hosts"].hosts["host1"].ports[0].egress.rate_bps == 20_000_000
    # the whole apply finds the drift only
    changed = topology.plan(prepare(TWO[0], faster))
    assert changed.counts() == {"add": 0, "modify": 1, "remove": 0}, changed.lines()
    assert main(["destroy", *TWO]) == 0


def _links(namespace: str) -> list[str]:
    out = subprocess.run(
        ["ip", "-n", namespace, "-j", "link", "show"], capture_output=True, text=True, check=True
    )
    return [link["ifname"] for link in json.loads(out.stdout)]


def test_a_process_that_keeps_its_backends_sees_what_others_changed_in_between(
    prefix: str, tmp_path: Path
) -> None:
    """In one process, ``--local`` keeps each host's backend from one apply to the next
    (its namespaces open, its journal read): a VM namespace deleted and made again under
    the same name by someone else is seen as the new, empty one, and a journal another
    process wrote since is read again, so that plan and apply stay true."""
    topology.apply(prepare(*TWO), local=True)
    vm1 = f"{prefix}v-two-hosts-vm1"
    host1 = f"{prefix}h-host1"
    ends = set(_links(host1))
    subprocess.run(["ip", "netns", "del", vm1], check=True)
    # the kernel removes a deleted namespace's links later, from a work queue: the veth
    # end in host1 goes with them (CI once planned against it still there, and found it
    # gone when applying)
    deadline = time.monotonic() + 10
    while set(_links(host1)) == ends and time.monotonic() < deadline:
        time.sleep(0.05)
    subprocess.run(["ip", "netns", "add", vm1], check=True)
    again = topology.plan(prepare(*TWO), local=True)
    assert again.counts()["add"] >= 3, again.lines()  # its veth end, address, route
    topology.apply(prepare(*TWO), local=True)
    assert _ping(prefix, "vm1", "10.20.0.2", "two-hosts")
    # another process changes the rate (and so the journals); this one then plans nothing
    faster = faster_two_hosts(tmp_path)
    env = {**os.environ, "NETMANAGER_NS_PREFIX": prefix}
    done = subprocess.run(
        [sys.executable, "-m", "netmanager", "apply", "--local", TWO[0], str(faster)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert topology.plan(prepare(TWO[0], faster), local=True).counts() == {
        "add": 0,
        "modify": 0,
        "remove": 0,
    }
    assert topology.apply(prepare(TWO[0], faster), local=True).changes == 0
    topology.destroy("two-hosts")


def test_a_kept_backend_rolls_back_to_what_another_process_left(
    prefix: str, tmp_path: Path
) -> None:
    """A second tenant applied by another process after this process's last apply: a
    failure in this process's next apply (its backends kept from before) is rolled back
    and leaves the machine exactly as the other process left it, second tenant included
    (the kept backends read the journals the other process wrote: see
    test_a_backend_reads_its_journal_again_when_another_process_wrote_it)."""
    tenant_a, tenant_b = (str(EXAMPLES / f"virtcloud/tenant-{t}.xml") for t in "ab")
    topology.apply(prepare(VC, tenant_a), local=True)
    env = {**os.environ, "NETMANAGER_NS_PREFIX": prefix}
    done = subprocess.run(
        [sys.executable, "-m", "netmanager", "apply", "--local", VC, tenant_b],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with_b = kernelstate.snapshot(prefix)
    changed = tmp_path / "tenant-a.xml"
    changed.write_text(Path(tenant_a).read_text().replace('"200Mbit"', '"300Mbit"'))
    with pytest.raises(ApplyFailed):
        topology.apply(prepare(VC, str(changed)), local=True, fail_at=1)
    assert kernelstate.snapshot(prefix) == with_b
    assert _ping(prefix, "node1", "10.10.0.12", "tenant-b")
    for tenant in ("tenant-a", "tenant-b"):
        topology.destroy(tenant)
