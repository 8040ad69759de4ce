"""``netmanager migrate`` between hosts emulated here (examples/two-hosts), through the
hosts' agents and in process (``apply --local``): the VM's namespace keeps running — a
process in it and a TCP connection from it survive —, its port is re-homed into the
target's dom0 with its shaping and rules, nothing of it is left on the source, ``plan``
afterwards shows no change and ``status`` the new host; and back again.  What names
nothing, or the host the VM is on, is refused before any change."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netmanager.cli.main import main
from tests import kernelstate
from tests.test_apply import TWO
from tests.test_set import _rates

pytestmark = pytest.mark.privileged

#: a line-echo server (in vm2) and a client that keeps one connection (in vm1): each
#: line the client reads goes to the server and back through that same connection
SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.20.0.2", 7070)); s.listen(1); print("ready", flush=True)
c, _ = s.accept()
while (data := c.recv(4096)):
    c.sendall(data)
"""
CLIENT = """
import socket, sys
c = socket.create_connection(("10.20.0.2", 7070), timeout=30)
for line in sys.stdin:
    c.sendall(line.encode()); print(c.recv(4096).decode().strip(), flush=True)
"""


def _port_of(namespace: str, vm: str) -> dict[str, object] | None:
    out = subprocess.run(
        ["ip", "-n", namespace, "-j", "-d", "link", "show"],
        capture_output=True,
        text=True,
        check=True,
    )
    for link in json.loads(out.stdout):
        if link.get("ifalias", "").startswith(f"nm:two-hosts:port:{vm}:"):
            return dict(link)
    return None


def _tx_bytes(namespace: str, ifname: str) -> int:
    out = subprocess.run(
        ["ip", "-n", namespace, "-s", "-j", "link", "show", "dev", ifname],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(json.loads(out.stdout)[0]["stats64"]["tx"]["bytes"])


def _echo(client: subprocess.Popen[str], word: str) -> str:
    assert client.stdin is not None and client.stdout is not None
    client.stdin.write(word + "\n")
    client.stdin.flush()
    return client.stdout.readline().strip()


@pytest.mark.parametrize("local", [False, True], ids=["agents", "local"])
def test_a_vm_moves_and_its_network_follows(
    prefix: str, capsys: pytest.CaptureFixture[str], local: bool
) -> None:
    extra = ["--local"] if local else []
    assert main(["apply", *extra, *TWO]) == 0
    vm1, vm2 = f"{prefix}v-two-hosts-vm1", f"{prefix}v-two-hosts-vm2"
    host1, host2 = f"{prefix}h-host1", f"{prefix}h-host2"
    procs: list[subprocess.Popen[str]] = []
    try:
        server = subprocess.Popen(
            ["ip", "netns", "exec", vm2, sys.executable, "-c", SERVER],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(server)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        client = subprocess.Popen(
            ["ip", "netns", "exec", vm1, sys.executable, "-c", CLIENT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(client)
        assert _echo(client, "before") == "before"
        port = _port_of(host1, "vm1")
        assert port is not None and _rates(host1, str(port["ifname"])) == [1_250_000]
        # a runtime change of its port goes with it, its two directions apart
        argv = ["set", *TWO, "vm1:lan", "--bandwidth", "20Mbit", "--bandwidth-from-vm", "4Mbit"]
        assert main(argv) == 0
        ifb = "ni" + str(port["ifname"])[2:]
        assert _rates(host1, ifb) == [500_000]
        capsys.readouterr()
        sent_before = _tx_bytes(host1, "eth0")
        # vm1 to host2: its namespace and its connection go on
        assert main(["migrate", *TWO, "vm1", "--to", "host2", "--json"]) == 0
        outcome = json.loads(capsys.readouterr().out)
        assert (outcome["from"], outcome["to"], outcome["transport"]) == (
            "host1",
            "host2",
            "local" if local else "agents",
        )
        # its cost emulated: an idle 256 MiB guest, one round across the underlay
        precopy = outcome["precopy"]
        assert precopy["rounds"] == 1 and precopy["converged"]
        assert precopy["bytes"] >= 256 * 2**20 and precopy["downtime_s"] < 0.3
        # which really crossed the emulated underlay, out of host1's NIC (iperf3 counts
        # what it wrote: the last of it may still be in flight when its test ends)
        assert _tx_bytes(host1, "eth0") - sent_before >= 0.98 * precopy["bytes"]
        assert client.poll() is None and server.poll() is None
        assert _echo(client, "after") == "after"
        # its port in host2's dom0, on the network's bridge, shaped; nothing left on host1
        assert _port_of(host1, "vm1") is None
        moved = _port_of(host2, "vm1")
        assert moved is not None and moved["ifname"] == port["ifname"]
        assert moved.get("master") and "UP" in moved["flags"]  # type: ignore[operator]
        assert _rates(host2, str(moved["ifname"])) == [2_500_000]  # set at run time
        assert _rates(host2, ifb) == [500_000]  # and what vm1 sends, apart
        left = kernelstate.namespace_state(host1)
        assert not [q for q in left["qdiscs"] if q[0] == port["ifname"]]
        assert not any(str(port["ifname"]) in line for line in left["iptables"]), left
        # verify passes right after it: reachability, isolation, the state as planned
        from netmanager.verify import verify

        report = verify(TWO, only=("reachability", "isolation", "state"))
        assert report.passed, [c for c in report.checks if not c.passed][:3]
        # anti-spoofing on the target for its port
        ebtables = kernelstate.namespace_state(host2)["ebtables"]
        assert any(str(port["ifname"]) in line for line in ebtables), ebtables
        # the record follows: plan shows nothing to do, status the new host
        assert main(["plan", *extra, *TWO]) == 0
        out = capsys.readouterr().out
        assert "0 change" in out and "= vm1:lan on host2: rate set at run time, kept" in out
        assert main(["status", "--json", *TWO]) == 0
        vms = {v["name"]: v for v in json.loads(capsys.readouterr().out)["vms"]}
        assert vms["vm1"]["host"] == "host2"
        # an apply keeps it there
        assert main(["apply", *extra, *TWO]) == 0
        assert "applied: 0 changes" in capsys.readouterr().out
        # refused before any change: the host it is on, what names nothing
        assert main(["migrate", *TWO, "vm1", "--to", "host2"]) == 1
        assert "error[E781]" in capsys.readouterr().err
        assert main(["migrate", *TWO, "vm9", "--to", "host1"]) == 1
        assert "error[E780]" in capsys.readouterr().err
        assert main(["migrate", *TWO, "vm1", "--to", "host9"]) == 1
        assert "error[E780]" in capsys.readouterr().err
        # and back, from Python
        import netmanager

        back = netmanager.Testbed(*TWO).migrate("vm1", "host1")
        assert (back.source, back.target) == ("host2", "host1")
        assert _echo(client, "back") == "back"
        assert _port_of(host2, "vm1") is None and _port_of(host1, "vm1") is not None
        assert main(["plan", *extra, *TWO]) == 0
        assert "0 change" in capsys.readouterr().out
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        main(["destroy", *TWO])
    deadline = time.monotonic() + 10
    while kernelstate.namespaces(prefix) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert kernelstate.namespaces(prefix) == []


def test_migrate_measure_runs_back_and_forth(
    prefix: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``migrate --measure --repeat 2``: a stream from vm2 through each migration of vm1,
    to host2 and back; per run the downtime, what was lost, a CSV and (with matplotlib)
    a figure; a summary of the session."""
    from netmanager.verify import outage

    assert main(["apply", "--local", *TWO]) == 0
    try:
        capsys.readouterr()
        out = tmp_path / "session"
        # the move alone (the pre-copy stream would compete with the measured one)
        argv = ["migrate", *TWO, "vm1", "--to", "host2", "--no-precopy", "--measure"]
        argv += ["--repeat", "2"]
        assert main([*argv, "--interval", "0.2", "--out", str(out), "--json"]) == 0
        session = json.loads(capsys.readouterr().out)
        runs = session["runs"]
        assert [(r["from"], r["to"]) for r in runs] == [("host1", "host2"), ("host2", "host1")]
        for run in runs:
            # the stream went on around each migration: most of it arrived
            assert run["sent"] > 100 and run["received"] > run["sent"] // 2, run
            assert run["lost"] == run["sent"] - run["received"]
            assert run["downtime_ms"] > 0 and run["migration_s"] > 0
        assert session["summary"]["runs"] == 2
        names = {Path(f).name for f in session["files"]}
        assert {"runs.csv", "summary.txt", "summary.json", "run-1.csv", "run-2.csv"} <= names
        if outage.available():
            assert {"run-1.png", "run-2.png"} <= names
        # a measurement option without --measure is a usage error
        assert main(["migrate", *TWO, "vm1", "--to", "host2", "--repeat", "3"]) == 2
    finally:
        main(["destroy", *TWO])


def _state(prefix: str) -> dict[str, object]:
    """The machine's state as far as a migration is concerned: every namespace of the
    test's, without what differs from one apply to the next (the kernel's random MACs)."""
    snapshot = kernelstate.snapshot(prefix)
    for state in snapshot["namespaces"].values():
        for link in state.get("links", ()):
            link.pop("address", None)
    return snapshot


@pytest.mark.slow  # one apply and migration per step of a migration
@pytest.mark.parametrize("way", ["out", "back"])
def test_a_fault_at_every_step_of_a_migration(
    prefix: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    """A migration (``--local``) that fails at each of its kernel and firewall steps in
    turn: before the switch-over the machine is as it was (the VM on its source); after
    it the VM is the target's and the next apply finishes it — to the very state of a
    migration that did not fail.  A move of the VM's links the kernel refuses changes
    nothing either.  ``out``: vm1 from host1 to vm2's host2 (the source is left with
    nothing); ``back``: from host2 to host1 (the network spans both hosts again: the
    source gains the tunnel before the switch-over)."""
    from netmanager.apply.migrate import migrate
    from netmanager.errors import NetmanagerError
    from netmanager.host.kernelhost import StepFaults
    from netmanager.kernel.backend import NetlinkBackend

    real, virtual = TWO
    source, to = ("host1", "host2") if way == "out" else ("host2", "host1")

    def fresh() -> dict[str, object]:
        main(["destroy", *TWO])
        assert main(["apply", "--local", *TWO]) == 0
        if way == "back":
            migrate(real, virtual, "vm1", "host2", precopy=None)
        return _state(prefix)

    try:
        before = fresh()
        counted = StepFaults(fail_at=-1)
        migrate(real, virtual, "vm1", to, precopy=None, faults=counted)
        moved = _state(prefix)
        assert moved != before
        steps = counted.done
        assert steps > 10, steps
        for fail_at in range(steps):
            assert fresh() == before, fail_at
            with pytest.raises(NetmanagerError) as caught:
                migrate(real, virtual, "vm1", to, precopy=None, faults=StepFaults(fail_at))
            code = caught.value.diagnostics[0].code
            message = caught.value.diagnostics[0].message
            capsys.readouterr()
            if f"moved to host '{to}'" in message:  # after the switch-over: apply finishes
                assert code == "E787", message
                assert main(["apply", "--local", *TWO]) == 0
                assert _state(prefix) == moved, f"step {fail_at}: {message}"
            else:  # before it: nothing changed
                assert _state(prefix) == before, f"step {fail_at}: {code} {message}"
        # the kernel refuses to move the VM's links: nothing changed
        assert fresh() == before

        def refused(self: object, namespace: str, ifname: str, into: str) -> None:
            raise OSError(16, "Device or resource busy")

        monkeypatch.setattr(NetlinkBackend, "move_link", refused)
        with pytest.raises(NetmanagerError) as caught:
            migrate(real, virtual, "vm1", to, precopy=None)
        assert caught.value.diagnostics[0].code == "E785"
        hint = str(caught.value.diagnostics[0].hint)
        assert f"runs on '{source}' with its network as before" in hint
        assert _state(prefix) == before
    finally:
        main(["destroy", *TWO])


def test_a_target_without_room_is_refused_before_any_change(
    prefix: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """host2 takes one VM (max-vms="1") and holds vm2: moving vm1 there is E784, and the
    machine is as it was."""
    import shutil

    real = tmp_path / "real.xml"
    text = Path(TWO[0]).read_text()
    real.write_text(text.replace('<host name="host2"', '<host name="host2" max-vms="1"'))
    shutil.copy(Path(TWO[0]).parent / "snmp.toml", tmp_path / "snmp.toml")
    (tmp_path / "snmp.toml").chmod(0o600)
    files = [str(real), TWO[1]]
    assert main(["apply", "--local", *files]) == 0
    try:
        before = _state(prefix)
        capsys.readouterr()
        assert main(["migrate", *files, "vm1", "--to", "host2", "--no-precopy"]) == 1
        err = capsys.readouterr().err
        assert "error[E784]" in err and "with VM 'vm1' on host 'host2'" in err, err
        assert "hint: nothing was changed" in err
        assert _state(prefix) == before
    finally:
        main(["destroy", *files])


MIGRATION = (
    str(Path(TWO[0]).parent.parent / "migration" / "real.xml"),
    str(Path(TWO[0]).parent.parent / "migration" / "virtual.xml"),
)
#: an echo server for each of the API server's networks, and the clients that keep a
#: connection to it (the client on app, the database on store)
API_SERVER = """
import socket, threading
def serve(address):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, 7070)); s.listen(1)
    c, _ = s.accept()
    while (data := c.recv(4096)):
        c.sendall(data)
threads = [threading.Thread(target=serve, args=(a,)) for a in ("10.50.0.20", "10.50.1.20")]
for t in threads: t.start()
print("ready", flush=True)
for t in threads: t.join()
"""


@pytest.mark.slow  # two applies' worth of agents and four migrations
def test_examples_migration_the_api_server_moves_to_spare_and_back(
    prefix: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """examples/migration through the hosts' agents: the API server (two ports, two
    networks) moves to the spare host and back, measured, twice; the client's and the
    database's connections to it survive; after each move ``plan`` is empty and
    ``verify`` passes; each run has its figure."""
    from netmanager.verify import outage, verify

    assert main(["apply", *MIGRATION]) == 0
    spaces = {vm: f"{prefix}v-migration-lab-{vm}" for vm in ("client", "api", "db")}
    procs: list[subprocess.Popen[str]] = []
    try:
        server = subprocess.Popen(
            ["ip", "netns", "exec", spaces["api"], sys.executable, "-c", API_SERVER],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(server)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        clients = {}
        for vm, address in (("client", "10.50.0.20"), ("db", "10.50.1.20")):
            code = CLIENT.replace("10.20.0.2", address)
            clients[vm] = subprocess.Popen(
                ["ip", "netns", "exec", spaces[vm], sys.executable, "-c", code],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(clients[vm])
            assert _echo(clients[vm], f"{vm} before") == f"{vm} before"
        capsys.readouterr()
        for round_ in (1, 2):
            out = tmp_path / f"round-{round_}"
            argv = ["migrate", *MIGRATION, "api", "--to", "spare", "--no-precopy", "--measure"]
            argv += ["--peer", "client", "--repeat", "2", "--interval", "0.3"]
            assert main([*argv, "--out", str(out), "--json"]) == 0
            session = json.loads(capsys.readouterr().out)
            assert [(r["from"], r["to"]) for r in session["runs"]] == [
                ("rack1", "spare"),
                ("spare", "rack1"),
            ]
            for run in session["runs"]:
                assert run["received"] > run["sent"] // 2 and run["downtime_ms"] > 0, run
            if outage.available():
                assert {"run-1.png", "run-2.png"} <= {Path(f).name for f in session["files"]}
            for vm, client in clients.items():
                assert client.poll() is None and _echo(client, f"{vm} {round_}") == f"{vm} {round_}"
            assert main(["plan", *MIGRATION]) == 0
            assert "0 change" in capsys.readouterr().out
            report = verify(MIGRATION, only=("reachability", "isolation", "state"))
            assert report.passed, [c for c in report.checks if not c.passed][:3]
        # once more to spare, left there: status says so, the record keeps it
        assert main(["migrate", *MIGRATION, "api", "--to", "spare", "--no-precopy"]) == 0
        capsys.readouterr()
        assert main(["status", "--json", *MIGRATION]) == 0
        vms = {v["name"]: v["host"] for v in json.loads(capsys.readouterr().out)["vms"]}
        assert vms == {"client": "rack1", "api": "spare", "db": "rack2"}
        report = verify(MIGRATION, only=("reachability", "isolation"))
        assert report.passed, [c for c in report.checks if not c.passed][:3]
        for vm, client in clients.items():
            assert _echo(client, f"{vm} last") == f"{vm} last"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        main(["destroy", *MIGRATION])
    assert kernelstate.namespaces(prefix) == []


@pytest.mark.slow  # a plan of two measured moves, then one left pending
def test_a_schedule_runs_a_plan_of_migrations(
    prefix: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """examples/migration's <schedule> with its times shortened: ``schedule start`` hands
    the moves to a driver of this machine's, which moves the API server to spare and back
    at their times, each measured from the client; ``schedule status`` shows them (and
    the figures are there); ``destroy`` ends a driver whose move is still to come."""
    import shutil

    from netmanager.apply import schedule
    from netmanager.verify import outage

    example = Path(MIGRATION[0]).parent
    shutil.copytree(example, tmp_path / "lab")
    (tmp_path / "lab" / "snmp.toml").chmod(0o600)
    virtual = tmp_path / "lab" / "virtual.xml"
    text = virtual.read_text()
    plan = '<migrate at="10s" every="20s" count="4" vm="api" to="spare" peer="client"/>'
    assert plan in text
    quick = '<migrate at="0.5s" every="2s" count="2" vm="api" to="spare" peer="client" precopy="false"/>'
    virtual.write_text(text.replace(plan, quick))
    files = [str(tmp_path / "lab" / "real.xml"), str(virtual)]
    assert main(["apply", *files]) == 0
    try:
        capsys.readouterr()
        # a move to a host real.xml lacks: refused at its line, nothing started
        virtual.write_text(text.replace(plan, quick.replace('to="spare"', 'to="rack9"')))
        assert main(["schedule", "start", *files]) == 1
        err = capsys.readouterr().err
        line = next(i for i, t in enumerate(text.splitlines(), 1) if plan in t)
        assert f"virtual.xml:{line}:5: error[E777]: <migrate> moves VM 'api' to host 'rack9'" in err
        assert "hint: nothing was started" in err and schedule.running_moves() == []
        virtual.write_text(text.replace(plan, quick))
        assert main(["schedule", "start", *files, "--in", "0.2", "--json"]) == 0
        started = json.loads(capsys.readouterr().out)
        assert started["moves"] == 2
        deadline = time.monotonic() + 120
        found = None
        while time.monotonic() < deadline:
            found = schedule.moves_status("migration-lab")
            if found is not None and found.state not in ("starting", "running"):
                break
            time.sleep(0.5)
        assert found is not None and found.state == "finished", found
        rows = [(r["vm"], r["from"], r["to"], r["result"]) for r in found.rows]
        assert rows == [("api", "rack1", "spare", "ok"), ("api", "spare", "rack1", "ok")]
        assert all(float(r["downtime_ms"]) > 0 for r in found.rows)
        assert [r["schedule_s"] for r in found.rows] == ["0.500", "2.500"]
        if outage.available():
            assert (Path(found.directory) / "move-1" / "run-1.png").exists()
        assert main(["schedule", "status", *files, "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)["migrations"]
        assert shown["state"] == "finished" and shown["done"] == 2
        assert main(["plan", *files]) == 0
        assert "0 change" in capsys.readouterr().out
        # a move still to come when the topology is destroyed: the driver ends with it
        later = '<migrate at="300s" vm="api" to="spare" precopy="false"/>'
        virtual.write_text(text.replace(plan, later))
        assert main(["schedule", "start", *files]) == 0
        deadline = time.monotonic() + 10
        while schedule._driver_pid("migration-lab") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        pid = schedule._driver_pid("migration-lab")
        assert pid is not None
    finally:
        main(["destroy", *files])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (
        not Path(f"/proc/{pid}").exists()
        or b"moveplan" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    )
    assert kernelstate.namespaces(prefix) == []
