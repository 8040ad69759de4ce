"""verify's view of a libvirt domain (:class:`DomainGuest`), against an in-memory guest
agent: the commands it starts are one fixed shell script with the command as positional
parameters, programs found by name on the guest's PATH, a spawned process's status read
once from the agent and kept, a missing file None, a namespace that is not the VM's
refused.  (The real thing runs in tests/hypervisor/test_libvirt_hosts.py.)"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from netmanager.guests.errors import GuestError
from netmanager.hypervisor.keeper import GuestAgent, KeeperError
from netmanager.verify import distributed
from netmanager.verify.domainguest import RUN, SHELL, SPAWN, WORKER_FILES, DomainGuest


class FakeAgent(GuestAgent):
    def __init__(self) -> None:
        self.started: list[tuple[list[str], bool, bytes]] = []
        self.files: dict[str, bytes] = {}
        self.status: dict[int, list[dict[str, Any]]] = {}
        self.handles: dict[int, str] = {}

    def agent(self, name: str, command: dict[str, Any], timeout: int = 10) -> Any:
        assert name == "web1"
        what, args = command["execute"], command.get("arguments", {})
        if what == "guest-ping":
            return {}
        if what == "guest-exec":
            pid = 100 + len(self.started)
            data = base64.b64decode(args.get("input-data", ""))
            self.started.append(([args["path"], *args["arg"]], args["capture-output"], data))
            self.status.setdefault(
                pid,
                [{"exited": True, "exitcode": 0, "out-data": base64.b64encode(b"ok\n").decode()}],
            )
            return {"pid": pid}
        if what == "guest-exec-status":
            answers = self.status[args["pid"]]
            answer = answers.pop(0)
            if answer.get("exited"):
                del self.status[args["pid"]]  # the agent forgets it once read
            return answer
        if what == "guest-file-open":
            if args["mode"] == "r" and args["path"] not in self.files:
                raise KeeperError(f"failed to open file '{args['path']}': No such file")
            handle = len(self.handles) + 1
            self.handles[handle] = args["path"]
            if args["mode"] == "w":
                self.files[args["path"]] = b""
            return handle
        if what == "guest-file-read":
            data = self.files[self.handles[args["handle"]]]
            return {"buf-b64": base64.b64encode(data).decode(), "count": len(data), "eof": True}
        if what == "guest-file-write":
            self.files[self.handles[args["handle"]]] += base64.b64decode(args["buf-b64"])
            return {}
        if what == "guest-file-close":
            return {}
        if what == "guest-network-get-interfaces":
            return [{"name": "ens3", "hardware-address": "02:AA:00:00:00:01"}]
        raise AssertionError(what)


def _guest() -> tuple[DomainGuest, FakeAgent]:
    fake = FakeAgent()
    return DomainGuest(fake, "kvm1", "web1", "nmv-lab-web1"), fake


def test_commands_run_through_one_fixed_script() -> None:
    guest, fake = _guest()
    command = ["tools/probe", "-c", "1", "10.0.0.2; reboot"]  # a program of the guest's
    done = guest.run(command, netns="nmv-lab-web1")
    assert (done.returncode, done.stdout) == (0, "ok\n")
    argv, capture, _ = fake.started[-1]
    assert argv == [SHELL, "-c", RUN, "sh", "probe", "-c", "1", "10.0.0.2; reboot"]
    assert capture
    guest.run(["python3", "-c", "x"], env={"A": "b c"}, stdin="in")
    argv, _, data = fake.started[-1]
    assert argv[4:] == ["env", "A=b c", "python3", "-c", "x"] and data == b"in"
    with pytest.raises(GuestError, match="no namespace nmv-other"):
        guest.run(["true"], netns="nmv-other")


def test_a_spawned_process_is_polled_once_and_remembered() -> None:
    guest, fake = _guest()
    fake.status[100] = [{"exited": False}, {"exited": True, "exitcode": 3}]
    command = ["tools/server", "-s"]
    pid = guest.spawn(command, log="/tmp/x/server.log")
    argv, capture, _ = fake.started[-1]
    assert argv == [SHELL, "-c", SPAWN, "sh", "/tmp/x/server.log", "server", "-s"]
    assert not capture
    assert guest.poll(pid) is None
    assert guest.poll(pid) == 3
    assert guest.poll(pid) == 3  # the agent forgot it; the guest did not
    guest.kill(pid)  # ended already: nothing is sent
    assert len(fake.started) == 1


def test_files_and_the_worker_staged() -> None:
    guest, fake = _guest()
    assert guest.read_file("/tmp/none") is None
    guest.write_file("/tmp/v/a/state", "ready\n")
    assert fake.started[-1][0][-1] == "/tmp/v/a"  # mkdir -p, as a positional parameter
    assert guest.read_file("/tmp/v/a/state") == "ready\n"
    guest.write_file("/tmp/v/a/go", "go\n")
    assert len(fake.started) == 1  # the directory is made once
    path = guest.stage_worker("/tmp/v")
    assert path == f"/tmp/v/lib/{WORKER_FILES[0]}"
    assert b"class Scanner" in fake.files[f"/tmp/v/lib/{WORKER_FILES[1]}"]
    assert guest.ifname_of() == {"02:aa:00:00:00:01": "ens3"}


def test_placement_keys_domains_by_host_and_name() -> None:
    placement = distributed.Placement.of([], [], {"nmv-lab-web1": ("kvm1", "web1")})
    assert placement.host("nmv-lab-web1") == "kvm1/web1"
    assert placement.domains == {"kvm1/web1": ("kvm1", "web1", "nmv-lab-web1")}
    assert placement.guests == frozenset() and bool(placement)
    error = distributed.guest_problem("kvm1/web1", "its guest agent does not answer")
    assert "domain 'web1' on libvirt host 'kvm1'" in str(error.diagnostics[0].message)
