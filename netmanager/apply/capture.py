"""``netmanager capture``: a VM port's traffic recorded with tcpdump, wherever the VM is.

:func:`locate` finds where the port of an applied VM can be watched — which kernel, which
namespace, which interface — from the records of applied topologies:

* a VM that is a namespace of this machine: its own interface (``--side vm``), or the
  port's host end (the veth's other end, ``--side host``) in its host's dom0 namespace;
* a VM on a guest host: the same, inside the guest's kernel (its VM namespace, or the
  guest's root namespace for the host end), reached through the guest's control channel;
* a VM that is a libvirt domain: only the host end, the domain's tap, in the dom0
  namespace of a host emulated here (a domain netmanager defined has the port's name, an
  attached one libvirt's, found by its ownership mark ``nm:<topology>:port:<vm>:<net>``);
  a real libvirt host's tap is another machine's, and the error says where to look.

:func:`capture` then runs tcpdump there until it has seen ``count`` packets, or until
Ctrl-C (a ``KeyboardInterrupt`` here: tcpdump is asked to stop with SIGINT and its last
packets are still delivered; the capture then ends normally).  Decoded lines go to
``on_line`` as tcpdump prints them; with ``pcap``, the capture's pcap bytes are written
there instead.  tcpdump's own messages ("listening on ...", "N packets captured") go to
``on_note``.  Every process started is ended by its PID, and a guest's scratch files are
removed, whatever happens.  Nothing here prints.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import select
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Protocol

from netmanager import programs
from netmanager.apply.readback import vm_location
from netmanager.apply.records import records
from netmanager.compile.hostconfig import HostConfig, Port, alias
from netmanager.errors import ExitCode, Loc, NetmanagerError, single

SIDES = ("vm", "host")
#: seconds tcpdump gets to finish after SIGINT before it is killed
STOP_TIMEOUT_S = 10.0
#: how often a capture inside a guest is looked at
GUEST_POLL_S = 0.25
#: inside a guest: where the capture's scratch files go (a tmpfs in every guest)
GUEST_TMP = "/tmp"
#: the longest a pcap's transfer out of a guest may take
TRANSFER_TIMEOUT_S = 600.0

#: tcpdump's own messages (its standard error), as opposed to the packets it decodes
_NOTE = re.compile(
    r"^(tcpdump: |listening on |\d+ packets? (captured|received by filter|dropped by kernel))"
)


class CaptureError(NetmanagerError):
    """tcpdump is missing, failed, or its output cannot be written."""

    exit_code = ExitCode.ENVIRONMENT


def _error(
    code: str, message: str, hint: str = "", cls: type[NetmanagerError] = NetmanagerError
) -> NetmanagerError:
    return single(code, Loc("netmanager"), message, hint, "capture", cls)


@dataclass(frozen=True)
class Spot:
    """Where a port is captured: tcpdump on ``interface`` in network namespace
    ``namespace`` ("": the root namespace) of this machine, or of the guest of host
    ``guest`` when it is not None."""

    topology: str
    vm: str
    network: str
    host: str
    side: str
    interface: str
    namespace: str
    guest: str | None = None

    def describe(self) -> str:
        kernel = f"guest host '{self.guest}'" if self.guest is not None else "this machine"
        place = f"namespace {self.namespace}" if self.namespace else "the root namespace"
        return (
            f"{self.vm}:{self.network} ({self.side} side): {self.interface} in {place} of {kernel}"
        )


# ------------------------------------------------------------------------------ where


def parse_target(text: str) -> tuple[str, str | None]:
    """'VM:NETWORK' -> (VM, NETWORK); 'VM' -> (VM, None)."""
    vm, colon, network = text.partition(":")
    if not vm or (colon and not network):
        raise _error(
            "E762",
            f"capture target '{text}' is not VM or VM:NETWORK",
            "e.g. netmanager capture vm1:lan",
        )
    return vm, network if colon else None


def _placed(vm: str, topology: str | None) -> tuple[str, str, HostConfig]:
    """(topology, host, its configuration) of an applied VM (E721, E722 as exec)."""
    vm_location(vm, topology)  # unknown or ambiguous: its errors
    for name, record in sorted(records().items()):
        if topology is not None and name != topology:
            continue
        for host, config in sorted(record.hosts.items()):
            if any(v.vm == vm for v in config.vms):
                return name, host, config
    raise _error("E721", f"no applied VM is called '{vm}'", "netmanager status lists the VMs")


def _port(config: HostConfig, vm: str, network: str | None) -> Port:
    ports = [p for p in config.ports if p.vm == vm]
    names = ", ".join(p.network for p in ports) or "none"
    if network is None:
        if len(ports) == 1:
            return ports[0]
        raise _error(
            "E762",
            f"VM '{vm}' has {len(ports)} interfaces (networks: {names}): say which",
            f"netmanager capture {vm}:{ports[0].network}"
            if ports
            else "netmanager status lists the VMs' interfaces",
        )
    for port in ports:
        if port.network == network:
            return port
    raise _error(
        "E762",
        f"VM '{vm}' has no interface in network '{network}' (its networks: {names})",
        "netmanager status lists the VMs' interfaces",
    )


def _namespace_here(namespace: str) -> bool:
    return Path("/run/netns", namespace).exists()


def ip_links(namespace: str) -> list[dict[str, Any]]:
    """The links of a namespace of this machine as ``ip -j link show`` gives them."""
    argv = [programs.path("ip"), *(["-n", namespace] if namespace else []), "-j", "link", "show"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    if done.returncode != 0:
        return []
    found = json.loads(done.stdout or "[]")
    return found if isinstance(found, list) else []


def tap_of(links: Iterable[Mapping[str, Any]], mark: str, name: str) -> str | None:
    """A domain port's tap among ``links``: the link marked ``mark`` (its ifalias; an
    attached domain's tap, which libvirt named), else the link called ``name`` (a domain
    netmanager defined names its tap so), else None."""
    links = list(links)
    for link in links:
        if link.get("ifalias") == mark and link.get("ifname"):
            return str(link["ifname"])
    for link in links:
        if link.get("ifname") == name:
            return name
    return None


def locate(
    target: str,
    side: str = "vm",
    topology: str | None = None,
    links: Callable[[str], list[dict[str, Any]]] = ip_links,
) -> Spot:
    """Where ``target`` (``VM`` or ``VM:NETWORK``) is captured on ``side`` ("vm": the VM's
    own interface, "host": the port's host end).  ``links(namespace)`` lists a namespace's
    links (to find a domain's tap).  Raises NetmanagerError: E721/E722 for an unknown or
    ambiguous VM, E762 for a network it has none of (or none named where it has several),
    E763 where this machine cannot capture that side of the port."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, not {side!r}")
    vm_name, network = parse_target(target)
    name, host, config = _placed(vm_name, topology)
    port = _port(config, vm_name, network)
    vm = next(v for v in config.vms if v.vm == vm_name)
    applied = records()[name]
    spot = Spot(name, vm_name, port.network, host, side, "", "")
    mark = alias(name, "port", port.vm, port.network)
    if vm.domain is not None:
        if side == "vm":
            raise _error(
                "E763",
                f"VM '{vm_name}' is libvirt domain '{vm.domain.name}' on host '{host}': its "
                "interfaces are in its own kernel, which this machine cannot capture in",
                f"capture its tap instead: netmanager capture {vm_name}:{port.network} --side host",
            )
        if not config.dom0:
            hint = (
                f"on host '{host}': tcpdump -i {port.vif} -w {vm_name}.pcap"
                if vm.domain.defined
                else f"on host '{host}': tcpdump -i TAP -w {vm_name}.pcap, TAP being the tap "
                f"libvirt made for it, marked '{mark}' (ip -d link show lists the marks; "
                f"virsh domiflist {vm.domain.name} names it)"
            )
            raise _error(
                "E763",
                f"VM '{vm_name}' is libvirt domain '{vm.domain.name}' on host '{host}', "
                "another machine: its tap cannot be captured from here",
                hint,
            )
        tap = tap_of(links(config.dom0), mark, port.vif)
        if tap is None:
            raise _error(
                "E763",
                f"VM '{vm_name}' is libvirt domain '{vm.domain.name}': no tap of its port "
                f"in network '{port.network}' in namespace {config.dom0} (none called "
                f"{port.vif}, none marked '{mark}')",
                "is the domain running? netmanager status shows its ports",
            )
        return replace(spot, interface=tap, namespace=config.dom0)
    if host in applied.infrastructure.guest_by_name:
        # inside the guest's kernel: its VM namespaces, its root namespace for dom0
        if side == "vm":
            return replace(spot, interface=port.ifname, namespace=port.vm_namespace, guest=host)
        return replace(spot, interface=port.vif, namespace=config.dom0, guest=host)
    if not _namespace_here(port.vm_namespace):
        if config.dom0:  # a host emulated here
            raise _error(
                "E763",
                f"the namespace of VM '{vm_name}' ({port.vm_namespace}) does not exist on "
                "this machine",
                "netmanager apply builds it again; netmanager status shows what is there",
            )
        where = (
            f"ip netns exec {port.vm_namespace} tcpdump -i {port.ifname}"
            if side == "vm"
            else f"tcpdump -i {port.vif}"
        )
        raise _error(
            "E763",
            f"VM '{vm_name}' (namespace {port.vm_namespace}) is not on this machine: "
            f"host '{host}' is another machine",
            f"on host '{host}': {where} -w {vm_name}.pcap",
        )
    if side == "vm":
        return replace(spot, interface=port.ifname, namespace=port.vm_namespace)
    if config.dom0 and not _namespace_here(config.dom0):
        raise _error(
            "E763",
            f"the namespace of host '{host}' ({config.dom0}) does not exist on this machine",
            "netmanager apply builds it again; netmanager status shows what is there",
        )
    return replace(spot, interface=port.vif, namespace=config.dom0)


# ------------------------------------------------------------------------------ tcpdump


def tcpdump_argv(
    interface: str,
    *,
    count: int | None = None,
    write: str | None = None,
    expression: Sequence[str] = (),
) -> list[str]:
    """tcpdump on ``interface``: decoded lines (``-n -l``) on its standard output, or
    with ``write`` the pcap into that file ("-": its standard output), packet by packet
    (``-U``); every packet at once (``--immediate-mode``), up to ``count``; ``expression``:
    a pcap filter, its words as tcpdump takes them (never as options)."""
    argv = [programs.path("tcpdump"), "-i", interface, "-n", "--immediate-mode"]
    argv += ["-U", "-w", write] if write is not None else ["-l"]
    if count is not None:
        argv += ["-c", str(count)]
    # after "--": a filter's word is never taken for an option
    return [*argv, "--", *expression] if expression else argv


class GuestLike(Protocol):
    """What a capture needs of a guest host's control channel
    (:class:`netmanager.guests.qemu.Guest`)."""

    def run(
        self, argv: Sequence[str], netns: str | None = ..., timeout: float = ...
    ) -> subprocess.CompletedProcess[str]: ...

    def spawn(self, argv: Sequence[str], netns: str | None = ..., log: str | None = ...) -> int: ...

    def poll(self, pid: int) -> int | None: ...

    def kill(self, pid: int, sig: int = ...) -> None: ...

    def read_file(self, path: str) -> str | None: ...

    def write_file(self, path: str, data: str, mode: int = ...) -> None: ...


def capture(
    spot: Spot,
    *,
    count: int | None = None,
    pcap: IO[bytes] | None = None,
    on_line: Callable[[str], None] = lambda line: None,
    on_note: Callable[[str], None] = lambda line: None,
    expression: Sequence[str] = (),
) -> bool:
    """Run tcpdump at ``spot`` (see the module's description); True when Ctrl-C ended it.
    Raises CaptureError (E764) when tcpdump is missing or fails, E746 when the VM's guest
    host does not run."""
    if programs.which("tcpdump") is None:
        raise _error("E764", programs.not_installed("tcpdump"), "", CaptureError)
    write = None if pcap is None else "-"
    if spot.guest is None:
        argv = tcpdump_argv(spot.interface, count=count, write=write, expression=expression)
        if spot.namespace:
            argv = [programs.path("nsenter"), f"--net=/run/netns/{spot.namespace}", *argv]
        return _run_here(argv, pcap, on_line, on_note)
    from netmanager.guests import hosts

    guest = hosts.guest_of(spot.guest)
    if guest is None:
        raise _error(
            "E746",
            f"guest host '{spot.guest}' is not running",
            "netmanager apply boots it again (netmanager hosts status lists guests)",
        )
    try:
        return capture_in_guest(
            guest,
            spot,
            count=count,
            pcap=pcap,
            on_line=on_line,
            on_note=on_note,
            expression=expression,
        )
    finally:
        guest.disconnect()


class _Lines:
    """Bytes in, complete lines out (decoded, without their newline)."""

    def __init__(self, sink: Callable[[str], None]) -> None:
        self.sink = sink
        self.buffer = b""

    def feed(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            self.sink(line.decode("utf-8", "replace"))

    def close(self) -> None:
        if self.buffer:
            rest, self.buffer = self.buffer, b""
            self.sink(rest.decode("utf-8", "replace"))


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGINT to a tcpdump this process started (by its PID) if it still runs; SIGKILL
    when it has not ended after STOP_TIMEOUT_S."""
    if process.poll() is not None:
        return
    if process.stdout is not None:
        # nobody reads it any more: tcpdump, told to stop, must not block writing its last
        # packets into a full pipe
        with contextlib.suppress(OSError):
            process.stdout.close()
    process.send_signal(signal.SIGINT)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _run_here(
    argv: list[str],
    pcap: IO[bytes] | None,
    on_line: Callable[[str], None],
    on_note: Callable[[str], None],
) -> bool:
    """tcpdump on this machine; its output read unbuffered, so that nothing read is lost
    when Ctrl-C lands in between."""
    tail: list[str] = []

    def note(line: str) -> None:
        tail[:] = [*tail[-4:], line]
        on_note(line)

    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    stderr = process.stderr

    def notes() -> None:
        lines = _Lines(note)
        for chunk in iter(lambda: os.read(stderr.fileno(), 1 << 12), b""):
            lines.feed(chunk)
        lines.close()

    reader = threading.Thread(target=notes, name="tcpdump-stderr", daemon=True)
    reader.start()
    lines = _Lines(on_line)
    fd = process.stdout.fileno()
    interrupted = False
    deadline: float | None = None
    try:
        while True:
            try:
                if deadline is not None and time.monotonic() > deadline:
                    process.kill()
                    deadline = None
                ready, _, _ = select.select([fd], [], [], 0.5)
                if not ready:
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                if pcap is not None:
                    pcap.write(chunk)
                else:
                    lines.feed(chunk)
            except KeyboardInterrupt:
                # Ctrl-C: tcpdump (in the terminal's process group) may have had it too;
                # told once more by its PID, it writes what it has and ends
                interrupted = True
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
                deadline = time.monotonic() + STOP_TIMEOUT_S
        if pcap is None:
            lines.close()
        else:
            pcap.flush()
    finally:
        _stop_process(process)
        reader.join(5)
        process.stdout.close()
        stderr.close()
    code = process.returncode
    if code != 0 and not interrupted:
        raise _error(
            "E764",
            f"tcpdump exited with status {code}: {' | '.join(tail) or 'no message'}",
            "the interface or the filter expression may be wrong",
            CaptureError,
        )
    return interrupted


def _stop_spawned(guest: GuestLike, pid: int) -> None:
    """A tcpdump spawned in a guest: SIGINT by its PID if it still runs, SIGKILL when it
    has not ended after STOP_TIMEOUT_S; a guest that no longer answers has nothing left."""
    from netmanager.guests.errors import GuestError

    try:
        if guest.poll(pid) is not None:
            return
        guest.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while guest.poll(pid) is None:
            if time.monotonic() > deadline:
                guest.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + STOP_TIMEOUT_S
            time.sleep(GUEST_POLL_S / 2)
    except (GuestError, OSError):
        pass


def capture_in_guest(
    guest: GuestLike,
    spot: Spot,
    *,
    count: int | None = None,
    pcap: IO[bytes] | None = None,
    on_line: Callable[[str], None] = lambda line: None,
    on_note: Callable[[str], None] = lambda line: None,
    expression: Sequence[str] = (),
    poll_s: float = GUEST_POLL_S,
) -> bool:
    """:func:`capture` inside a guest: tcpdump spawned there (the guest runs this
    machine's, from the host's root it mounts) with its output in a log file in the
    guest's /tmp, read as it grows; a pcap written into that directory and copied out
    (base64) once tcpdump has ended.  The directory is removed and tcpdump ended by its
    PID whatever happens."""
    from netmanager.guests.errors import GuestError

    directory = f"{GUEST_TMP}/nm-capture-{uuid.uuid4().hex[:10]}"
    log = f"{directory}/tcpdump.log"
    file = f"{directory}/capture.pcap"
    argv = tcpdump_argv(
        spot.interface,
        count=count,
        write=file if pcap is not None else None,
        expression=expression,
    )
    tail: list[str] = []

    def emit(line: str) -> None:
        if pcap is not None or _NOTE.match(line):
            tail[:] = [*tail[-4:], line]
            on_note(line)
        else:
            on_line(line)

    guest.write_file(f"{directory}/.capture", "\n")  # makes the directory
    pid: int | None = None
    interrupted = False
    code: int | None = None
    try:
        pid = guest.spawn(argv, netns=spot.namespace or None, log=log)
        seen = 0  # characters of the log handed on
        deadline: float | None = None  # after Ctrl-C: when tcpdump is killed
        while True:
            try:
                if deadline is not None and time.monotonic() > deadline:
                    guest.kill(pid, signal.SIGKILL)
                    deadline = None
                code = guest.poll(pid)  # first: what is read after is all it wrote
                text = guest.read_file(log) or ""
                end = len(text) if code is not None else text.rfind("\n", seen) + 1
                if end > seen:
                    for line in text[seen:end].splitlines():
                        emit(line)
                    seen = end
                if code is not None:
                    break
                time.sleep(poll_s)
            except KeyboardInterrupt:
                interrupted = True
                with contextlib.suppress(GuestError, OSError):
                    guest.kill(pid, signal.SIGINT)
                deadline = time.monotonic() + STOP_TIMEOUT_S
        if pcap is not None and (code == 0 or interrupted):
            done = guest.run([programs.path("base64"), file], timeout=TRANSFER_TIMEOUT_S)
            if done.returncode != 0:
                raise _error(
                    "E764",
                    f"the capture could not be read out of guest host '{spot.guest}': "
                    f"{done.stderr.strip() or f'base64 exited with status {done.returncode}'}",
                    "",
                    CaptureError,
                )
            pcap.write(base64.b64decode(done.stdout))
            pcap.flush()
    finally:
        if pid is not None:
            _stop_spawned(guest, pid)
        with contextlib.suppress(GuestError, OSError):
            guest.run([programs.path("rm"), "-r", "-f", directory], timeout=30)
    if code != 0 and not interrupted:
        raise _error(
            "E764",
            f"tcpdump in guest host '{spot.guest}' exited with status {code}: "
            f"{' | '.join(tail) or 'no message'}",
            "the interface or the filter expression may be wrong",
            CaptureError,
        )
    return interrupted
