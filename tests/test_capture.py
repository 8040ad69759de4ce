"""netmanager capture: a VM port's traffic recorded with tcpdump, for real.

The end-to-end tests apply examples/two-hosts in namespaces of their own (the ``prefix``
fixture removes them, also when a test fails), make traffic with ``netmanager exec vm2 --
ping``, capture it with ``netmanager capture`` run as a command, and read the pcap back
here (its header and records, parsed in Python).  The capture inside a guest host runs
through a stand-in for the guest's control channel that spawns, polls and reads files on
this machine (the guest runs this machine's tcpdump, so the path is the same); guest
hosts and libvirt domains themselves are not booted here.  Where a VM is (domains, real
hosts, guests) is tested on records written by hand.
"""

from __future__ import annotations

import io
import ipaddress
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from netmanager import programs
from netmanager.apply import capture
from netmanager.apply.records import Record, save_record
from netmanager.cli.main import main
from netmanager.compile.hostconfig import (
    GuestHost,
    HostConfig,
    Infrastructure,
    Port,
    Shaping,
    Vm,
)
from netmanager.errors import NetmanagerError
from netmanager.hypervisor.spec import DomainSpec, DomainTemplate
from netmanager.mapping import Occupied

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TWO = (str(EXAMPLES / "two-hosts/real.xml"), str(EXAMPLES / "two-hosts/virtual.xml"))
VM1, VM2 = "10.20.0.1", "10.20.0.2"

#: the tests that build namespaces and run tcpdump (with pytest.mark.privileged)
ROOT_AND_TCPDUMP = pytest.mark.skipif(
    os.geteuid() != 0 or programs.which("tcpdump") is None,
    reason="needs root (namespaces) and tcpdump (scripts/install)",
)


# ------------------------------------------------------------------------------ pcap


def icmp_of(data: bytes) -> list[tuple[str, str, int]]:
    """(source, destination, ICMP type) of every IPv4 ICMP packet of a pcap file's bytes
    (Ethernet link type); asserts that the file is a whole pcap."""
    assert len(data) >= 24, "no pcap header"
    magic = data[:4]
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">"}.get(magic)
    endian = endian or {b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}[magic]
    link_type = struct.unpack(endian + "I", data[20:24])[0]
    assert link_type == 1, "Ethernet"
    found = []
    at = 24
    while at < len(data):
        _sec, _frac, caplen, _length = struct.unpack(endian + "IIII", data[at : at + 16])
        frame = data[at + 16 : at + 16 + caplen]
        assert len(frame) == caplen, "a truncated record: the pcap is not complete"
        at += 16 + caplen
        if frame[12:14] != b"\x08\x00" or frame[23] != 1:
            continue
        ihl = (frame[14] & 0x0F) * 4
        source = str(ipaddress.IPv4Address(frame[26:30]))
        destination = str(ipaddress.IPv4Address(frame[30:34]))
        found.append((source, destination, frame[14 + ihl]))
    return found


ECHO_REQUEST, ECHO_REPLY = 8, 0


# ------------------------------------------------------------------------ end to end


@pytest.fixture
def two_hosts(prefix: str) -> Iterator[str]:
    """examples/two-hosts applied (in this process, --local): the namespace prefix."""
    from netmanager.apply import topology
    from netmanager.apply.prepare import prepare

    topology.apply(prepare(*TWO), local=True)
    yield prefix


def _netmanager(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "netmanager", *args], text=True, **kwargs)


def _sigint_ignored() -> None:
    """In the child before exec: SIGINT ignored, as a non-interactive shell starts a job it
    puts in the background (CI does): Ctrl-C must end a capture all the same."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Capture:
    """``netmanager capture ARGS`` as a command (started with SIGINT ignored: see
    _sigint_ignored), waited for until tcpdump listens; ended by its PID when a test
    leaves it running."""

    def __init__(self, *args: str) -> None:
        self.process = _netmanager(
            "capture",
            *args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_sigint_ignored,
        )
        assert self.process.stderr is not None
        self.notes: list[str] = []
        deadline = time.monotonic() + 15
        while not any("listening on" in n for n in self.notes):
            line = self.process.stderr.readline()
            assert line, f"capture ended before listening: {self.notes}"
            self.notes.append(line.rstrip("\n"))
            assert time.monotonic() < deadline

    def wait(self, timeout: float = 60) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, out, "\n".join(self.notes) + "\n" + err

    def end(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


class Pings:
    """vm2 pings vm1 (through ``netmanager exec``) until ended by its PID."""

    def __init__(self, count: int = 50) -> None:
        self.process = _netmanager(
            "exec",
            "vm2",
            "--",
            "ping",
            "-n",
            "-c",
            str(count),
            "-i",
            "0.2",
            VM1,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def __enter__(self) -> Pings:
        return self

    def __exit__(self, *_: object) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # netmanager exec; ping (its child) gets SIGTERM too
        self.process.wait(10)


def _processes_in(namespace: str) -> list[int]:
    """The PIDs of processes whose network namespace is ``namespace``."""
    target = os.stat(f"/run/netns/{namespace}").st_ino
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino == target:
                    found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.mark.privileged
@ROOT_AND_TCPDUMP
@pytest.mark.parametrize("side", ["vm", "host"])
@pytest.mark.usefixtures("two_hosts")
def test_capture_writes_a_pcap_of_the_pings_between_the_vms(
    side: str, tmp_path: Path, prefix: str
) -> None:
    pcap = tmp_path / f"vm1-{side}.pcap"
    run = Capture("vm1:lan", "--side", side, "-w", str(pcap), "--count", "6")
    try:
        with Pings():
            code, out, err = run.wait()
    finally:
        run.end()
    assert code == 0, err
    assert out == ""
    if side == "vm":
        assert f"eth0 in namespace {prefix}v-two-hosts-vm1" in err
    else:  # the veth's host end, in host1's namespace
        assert f" in namespace {prefix}h-host1" in err and " nv" in err
    assert "6 packets captured" in err
    packets = icmp_of(pcap.read_bytes())
    # 6 packets (ARP perhaps among them), the echo requests and replies of the pings
    assert (VM2, VM1, ECHO_REQUEST) in packets and (VM1, VM2, ECHO_REPLY) in packets
    # tcpdump reads it too
    done = subprocess.run(
        ["tcpdump", "-n", "-r", str(pcap)], capture_output=True, text=True, check=True
    )
    assert f"IP {VM2} > {VM1}: ICMP echo request" in done.stdout


@pytest.mark.privileged
@ROOT_AND_TCPDUMP
@pytest.mark.usefixtures("two_hosts")
def test_decoded_lines_on_stdout_with_a_filter_and_a_count() -> None:
    run = Capture("vm1", "--count", "4", "--", "icmp")
    try:
        with Pings():
            code, out, err = run.wait()
    finally:
        run.end()
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 4, out
    assert any(f"IP {VM2} > {VM1}: ICMP echo request" in line for line in lines)
    assert any(f"IP {VM1} > {VM2}: ICMP echo reply" in line for line in lines)
    assert "listening on eth0" in err  # tcpdump's own messages go to stderr


@pytest.mark.privileged
@ROOT_AND_TCPDUMP
@pytest.mark.usefixtures("two_hosts")
def test_ctrl_c_ends_the_capture_with_exit_0_and_the_pcap_complete(
    tmp_path: Path, prefix: str
) -> None:
    pcap = tmp_path / "vm1.pcap"
    run = Capture("vm1:lan", "-w", str(pcap), "--", "icmp")
    try:
        with Pings(count=3) as pings:
            pings.process.wait(10)
        time.sleep(0.2)
        run.process.send_signal(signal.SIGINT)  # to netmanager alone: it tells tcpdump
        code, _, err = run.wait()
    finally:
        run.end()
    assert code == 0, err
    assert "6 packets captured" in err
    packets = icmp_of(pcap.read_bytes())
    assert packets.count((VM2, VM1, ECHO_REQUEST)) == 3
    assert packets.count((VM1, VM2, ECHO_REPLY)) == 3
    # tcpdump was ended with it: nothing runs in the VM's namespace
    assert _processes_in(f"{prefix}v-two-hosts-vm1") == []


def _two_nics(directory: Path) -> str:
    virtual = directory / "two-nics.xml"
    virtual.write_text(
        """<?xml version="1.0" encoding="UTF-8"?>
<virtual xmlns="urn:netmanager:virtual:1" version="1.0" topology="two-nics">
  <network name="lan" cidr="10.30.0.0/24"/>
  <network name="wan" cidr="10.31.0.0/24"/>
  <vm name="gw" host="host1">
    <interface network="lan" ip="10.30.0.1"/>
    <interface network="wan" ip="10.31.0.1"/>
  </vm>
</virtual>
"""
    )
    return str(virtual)


@pytest.mark.privileged
@ROOT_AND_TCPDUMP
@pytest.mark.usefixtures("prefix")
def test_errors_name_the_vm_its_networks_and_tcpdumps_complaint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from netmanager.apply import topology
    from netmanager.apply.prepare import prepare

    topology.apply(prepare(TWO[0], _two_nics(tmp_path)), local=True)
    assert main(["capture", "vm9"]) == 1
    assert "error[E721]: no applied VM is called 'vm9'" in capsys.readouterr().err
    # a VM with several interfaces: say which
    assert main(["capture", "gw"]) == 1
    err = capsys.readouterr().err
    assert "error[E762]: VM 'gw' has 2 interfaces (networks: lan, wan)" in err
    assert "netmanager capture gw:lan" in err
    assert main(["capture", "gw:dmz"]) == 1
    assert "no interface in network 'dmz' (its networks: lan, wan)" in capsys.readouterr().err
    # tcpdump refuses the filter: E764, exit 6, no file left
    pcap = tmp_path / "gw.pcap"
    assert main(["capture", "gw:wan", "-w", str(pcap), "--", "no-such-protocol"]) == 6
    assert "error[E764]: tcpdump exited with status 1" in capsys.readouterr().err
    assert not pcap.exists()
    # a file that cannot be written
    assert main(["capture", "gw:wan", "-w", str(tmp_path / "no" / "gw.pcap")]) == 6
    assert "error[E764]: cannot write" in capsys.readouterr().err


# -------------------------------------------------------------- inside a guest host


class LocalGuest:
    """The control channel of a guest host (netmanager.guests.qemu.Guest) played on this
    machine: what guestd does (spawn with the output in a log file, poll, kill, read and
    write files, run), for processes here, in this machine's namespaces."""

    def __init__(self) -> None:
        self.spawned: dict[int, subprocess.Popen[bytes]] = {}
        self.ran: list[list[str]] = []

    @staticmethod
    def _in(netns: str | None, argv: Sequence[str]) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{netns}", *argv] if netns else list(argv)

    def run(
        self, argv: Sequence[str], netns: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        self.ran.append(list(argv))
        return subprocess.run(
            self._in(netns, argv), capture_output=True, text=True, timeout=timeout, check=False
        )

    def spawn(self, argv: Sequence[str], netns: str | None = None, log: str | None = None) -> int:
        assert log is not None
        with open(log, "ab") as out:
            process = subprocess.Popen(
                self._in(netns, argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.spawned[process.pid] = process
        return process.pid

    def poll(self, pid: int) -> int | None:
        return self.spawned[pid].poll()

    def kill(self, pid: int, sig: int = signal.SIGTERM) -> None:
        self.spawned[pid].send_signal(sig)

    def read_file(self, path: str) -> str | None:
        try:
            return Path(path).read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return None

    def write_file(self, path: str, data: str, mode: int = 0o600) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(data)

    def end(self) -> None:
        for process in self.spawned.values():
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def guest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalGuest]:
    """The played guest, its /tmp this test's own."""
    monkeypatch.setattr(capture, "GUEST_TMP", str(tmp_path / "guest-tmp"))
    played = LocalGuest()
    try:
        yield played
    finally:
        played.end()


def _scratch_left() -> list[str]:
    """The capture's directories left in the played guest's /tmp (which it made)."""
    where = Path(capture.GUEST_TMP)
    assert where.is_dir()
    return [p.name for p in where.glob("nm-capture-*")]


def _vm1_in_guest(prefix: str) -> capture.Spot:
    return capture.Spot(
        "two-hosts", "vm1", "lan", "host1", "vm", "eth0", f"{prefix}v-two-hosts-vm1", "host1"
    )


@pytest.mark.privileged
@ROOT_AND_TCPDUMP
@pytest.mark.usefixtures("two_hosts")
def test_in_a_guest_the_pcap_is_copied_out_and_the_scratch_removed(
    guest: LocalGuest, prefix: str
) -> None:
    pcap = io.BytesIO()
    notes: list[str] = []
    with Pings():
        interrupted = capture.capture_in_guest(
            guest,
            _vm1_in_guest(prefix),
            count=4,
            pcap=pcap,
            on_note=notes.append,
            expression=["icmp"],
            poll_s=0.05,
        )
    assert not interrupted
    packets = icmp_of(pcap.getvalue())
    assert len(packets) == 4 and (VM2, VM1, ECHO_REQUEST) in packets
    assert any("4 packets captured" in n for n in notes)
    assert [argv[0].rsplit("/", 1)[-1] for argv in guest.ran] == ["base64", "rm"]
    assert _scratch_left() == []
    assert all(p.poll() is not None for p in guest.spawned.values())


@pytest.mark.privileged
@ROOT_AND_TCPDUMP
@pytest.mark.usefixtures("two_hosts")
def test_in_a_guest_decoded_lines_as_they_come_and_ctrl_c(
    guest: LocalGuest, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines: list[str] = []
    notes: list[str] = []
    got_lines = threading.Event()

    def on_line(line: str) -> None:
        lines.append(line)
        if len(lines) >= 4:
            got_lines.set()

    # Ctrl-C lands while the capture looks at the guest, once lines have come
    poll = guest.poll
    interrupted_once: list[int] = []

    def poll_then_interrupt(pid: int) -> int | None:
        if got_lines.is_set() and not interrupted_once:
            interrupted_once.append(pid)
            raise KeyboardInterrupt
        return poll(pid)

    monkeypatch.setattr(guest, "poll", poll_then_interrupt)
    with Pings():
        interrupted = capture.capture_in_guest(
            guest,
            _vm1_in_guest(prefix),
            on_line=on_line,
            on_note=notes.append,
            expression=["icmp"],
            poll_s=0.05,
        )
    assert interrupted
    assert any(f"IP {VM2} > {VM1}: ICMP echo request" in line for line in lines)
    assert not any("listening on" in line for line in lines)  # tcpdump's own: notes
    assert any("listening on eth0" in n for n in notes)
    assert any("packets captured" in n for n in notes)
    assert all(p.poll() is not None for p in guest.spawned.values())
    assert _scratch_left() == []


# ------------------------------------------------------------------ where, unit tests


def _port(vm: str, network: str, index: int = 0, namespace: str = "") -> Port:
    return Port(
        topology="t",
        vm=vm,
        network=network,
        index=index,
        vif=f"nv{vm}{index}",
        ifname=f"eth{index}",
        vm_namespace=namespace,
        mac="02:00:00:00:00:01",
        ip=ipaddress.IPv4Interface(f"10.9.{index}.1/24"),
        mtu=1500,
        bridge="nb0",
        ifb="",
        egress=Shaping(),
        ingress=Shaping(),
    )


def _record(config: HostConfig, guests: tuple[GuestHost, ...] = (), topology: str = "t") -> None:
    save_record(
        Record(
            topology=topology,
            real="",
            virtual="",
            hosts={config.host: config},
            infrastructure=Infrastructure(guests=guests),
            occupied=Occupied(),
            placement={},
        )
    )


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NETMANAGER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NETMANAGER_NS_PREFIX", "nmtnone")
    return tmp_path


def _domain_host(dom0: str, defined: bool) -> HostConfig:
    template = DomainTemplate(kernel="/k") if defined else None
    return HostConfig(
        topology="t",
        host="kvm1",
        dom0=dom0,
        ports=(_port("web1", "lan"),),
        vms=(Vm("t", "web1", "", (), False, DomainSpec("web1", template)),),
    )


def _code(exc: pytest.ExceptionInfo[NetmanagerError]) -> str:
    return exc.value.errors[0].code


def test_targets() -> None:
    assert capture.parse_target("vm1:lan") == ("vm1", "lan")
    assert capture.parse_target("vm1") == ("vm1", None)
    for bad in ("", ":lan", "vm1:"):
        with pytest.raises(NetmanagerError) as exc:
            capture.parse_target(bad)
        assert _code(exc) == "E762"


def test_tcpdump_command_lines() -> None:
    text = capture.tcpdump_argv("eth0", count=5, expression=["icmp"])
    assert text[1:] == ["-i", "eth0", "-n", "--immediate-mode", "-l", "-c", "5", "--", "icmp"]
    pcap = capture.tcpdump_argv("nv1", write="-")
    assert pcap[1:] == ["-i", "nv1", "-n", "--immediate-mode", "-U", "-w", "-"]
    assert pcap[0].endswith("tcpdump")


def test_a_domains_tap_is_found_by_its_mark_else_by_its_name() -> None:
    mark = "nm:t:port:web1:lan"
    links = [
        {"ifname": "lo"},
        {"ifname": "nvweb10"},
        {"ifname": "vnet3", "ifalias": mark},
        {"ifname": "vnet4", "ifalias": "nm:t:port:web2:lan"},
    ]
    assert capture.tap_of(links, mark, "nvweb10") == "vnet3"  # attached: libvirt's name
    assert capture.tap_of(links[:2], mark, "nvweb10") == "nvweb10"  # defined: netmanager's
    assert capture.tap_of(links[:1], mark, "nvweb10") is None


def test_a_domain_on_a_host_emulated_here_is_captured_at_its_tap(state: Path) -> None:
    _record(_domain_host("nmtnoneh-kvm1", defined=False))
    asked: list[str] = []

    def links(namespace: str) -> list[dict[str, str]]:
        asked.append(namespace)
        return [{"ifname": "vnet7", "ifalias": "nm:t:port:web1:lan"}]

    spot = capture.locate("web1", "host", links=links)
    assert (spot.interface, spot.namespace, spot.guest) == ("vnet7", "nmtnoneh-kvm1", None)
    assert asked == ["nmtnoneh-kvm1"]
    # its own side is another kernel's
    with pytest.raises(NetmanagerError) as exc:
        capture.locate("web1:lan", "vm", links=links)
    assert _code(exc) == "E763" and "--side host" in exc.value.errors[0].hint
    # no tap: the domain does not run
    with pytest.raises(NetmanagerError) as exc:
        capture.locate("web1", "host", links=lambda namespace: [])
    assert _code(exc) == "E763" and "nm:t:port:web1:lan" in exc.value.errors[0].message


def test_a_domain_on_a_real_libvirt_host_is_refused_with_where_to_look(state: Path) -> None:
    _record(_domain_host("", defined=True))
    with pytest.raises(NetmanagerError) as exc:
        capture.locate("web1", "host", links=lambda namespace: pytest.fail("not here"))
    error = exc.value.errors[0]
    assert error.code == "E763" and "host 'kvm1'" in error.hint and "nvweb10" in error.hint


def test_a_vm_of_a_guest_host_is_captured_inside_the_guest(state: Path) -> None:
    _record(
        HostConfig(
            topology="t",
            host="g1",
            dom0="",
            ports=(_port("vm1", "lan", namespace="nmtnonev-t-vm1"),),
            vms=(Vm("t", "vm1", "nmtnonev-t-vm1", (), False),),
        ),
        guests=(GuestHost("g1"),),
    )
    vm_side = capture.locate("vm1")
    assert (vm_side.interface, vm_side.namespace, vm_side.guest) == (
        "eth0",
        "nmtnonev-t-vm1",
        "g1",
    )
    host_side = capture.locate("vm1:lan", "host")
    assert (host_side.interface, host_side.namespace, host_side.guest) == ("nvvm10", "", "g1")


def test_a_vm_of_another_machine_is_refused_with_where_to_look(state: Path) -> None:
    _record(
        HostConfig(
            topology="t",
            host="real1",
            dom0="",
            ports=(_port("vm1", "lan", namespace="nmtnonev-t-vm1"),),
            vms=(Vm("t", "vm1", "nmtnonev-t-vm1", (), False),),
        )
    )
    with pytest.raises(NetmanagerError) as exc:
        capture.locate("vm1")
    error = exc.value.errors[0]
    assert error.code == "E763" and "ip netns exec nmtnonev-t-vm1 tcpdump -i eth0" in error.hint


def test_a_vm_of_a_host_emulated_here_whose_namespace_is_gone(state: Path) -> None:
    _record(
        HostConfig(
            topology="t",
            host="host1",
            dom0="nmtnoneh-host1",
            ports=(_port("vm1", "lan", namespace="nmtnonev-t-vm1"),),
            vms=(Vm("t", "vm1", "nmtnonev-t-vm1", (), False),),
        )
    )
    with pytest.raises(NetmanagerError) as exc:
        capture.locate("vm1")
    error = exc.value.errors[0]
    assert error.code == "E763" and "does not exist on this machine" in error.message


def test_a_vm_name_in_two_topologies_needs_the_topology(state: Path) -> None:
    for topology in ("a", "b"):
        _record(
            HostConfig(
                topology=topology,
                host="g1",
                dom0="",
                ports=(_port("vm1", "lan", namespace=f"nmtnonev-{topology}-vm1"),),
                vms=(Vm(topology, "vm1", f"nmtnonev-{topology}-vm1", (), False),),
            ),
            guests=(GuestHost("g1"),),
            topology=topology,
        )
    with pytest.raises(NetmanagerError) as exc:
        capture.locate("vm1")
    assert _code(exc) == "E722"
    assert capture.locate("vm1", topology="b").namespace == "nmtnonev-b-vm1"
