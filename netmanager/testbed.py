"""The Python API for emulation frameworks: one :class:`Testbed` per topology.

An experiment runner, a test harness or a notebook drives netmanager the way the command
line does, without shelling out to it::

    from netmanager import Testbed

    with Testbed("real.xml", "virtual.xml") as tb:        # applies; destroys on exit
        print(tb.status().vm("vm1").interfaces[0].ip)
        done = tb.exec("vm1", ["ping", "-c3", "10.0.0.2"], capture_output=True, text=True)
        report = tb.verify(level=3)

Everything here returns frozen objects and raises :class:`~netmanager.errors.
NetmanagerError` carrying the same diagnostics the command line prints; nothing prints,
and exit codes stay a matter of the command line (``error.exit_code`` says which one the
command would have used).  The state directory and the namespace prefix belong to the
testbed (not only to the process): operations of testbeds with different ones take turns
in one process (:mod:`netmanager.settings`).
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from netmanager import programs, settings
from netmanager.errors import Diagnostic, Loc, NetmanagerError, single

if TYPE_CHECKING:
    from netmanager.apply.migrate import MigrateOutcome
    from netmanager.apply.prepare import Deployment
    from netmanager.apply.runtime import SetOutcome
    from netmanager.apply.schedule import HostSchedule
    from netmanager.apply.topology import Outcome, TopologyPlan
    from netmanager.compile.schedule import Move
    from netmanager.inputs.model import Model
    from netmanager.mapping import Mapping as MappingResult
    from netmanager.verify import Report

T = TypeVar("T")

#: a namespace prefix: what every namespace of the testbed's starts with
_PREFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


# ------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ProgressEvent:
    """A phase of apply or destroy, and (when known) the kernel steps done of its total:
    what the command line's bars show."""

    phase: str
    done: int | None = None
    total: int | None = None


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class PlannedChange:
    """One change apply would make, as ``netmanager plan --json`` lists it.

    ``op`` is ``+`` (create), ``~`` (change) or ``-`` (delete); ``host`` the host that
    staged it (None: the emulated infrastructure of this machine); ``kind`` the kernel
    object's kind (``link``, ``tbf``, ...) for the infrastructure's changes, ``""`` where
    a host names only the object."""

    op: str
    object: str
    reason: str
    host: str | None = None
    kind: str = ""

    def line(self) -> str:
        where = f"{self.host}: " if self.host is not None else ""
        return f"{self.op} {where}{self.object} ({self.reason})"


@dataclass(frozen=True)
class Plan:
    """What :meth:`Testbed.apply` would change; ``summary`` is the command's last line."""

    topology: str
    changes: tuple[PlannedChange, ...]
    summary: str
    #: hosts whose agent was not asked, and why
    unreachable: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.changes)

    def __bool__(self) -> bool:
        return bool(self.changes)


@dataclass(frozen=True)
class HostResult:
    """What apply did on one host."""

    vms: int
    ports: int
    networks: int
    #: changes made on the host (through agents; None with ``local``)
    changes: int | None = None
    #: where the host's agent listens (through agents)
    agent: str | None = None


@dataclass(frozen=True)
class Result:
    """What apply or destroy did: the number of changes, by phase and by host."""

    topology: str
    changes: int
    phases: Mapping[str, int]
    seconds: float
    hosts: Mapping[str, HostResult] = field(default_factory=dict)


@dataclass(frozen=True)
class LinkState:
    """A VM port as its host's agent reports it (topologies applied through agents)."""

    oper: str
    rate_kbps: int | None = None
    delay_us: int | None = None
    in_octets: int | None = None
    out_octets: int | None = None
    #: whether the guest carries its address: configured (netmanager sets it), or for a
    #: libvirt domain without a guest agent answering or silent (an ARP probe from the
    #: host), unknown
    guest_address: str | None = None
    #: the values in force that runtime changes set (rate, delay, jitter, loss, state)
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class InterfaceStatus:
    network: str
    ifname: str
    ip: str
    mac: str
    #: up, down, missing, unaddressed (read from the kernel), or the agent's word
    state: str
    #: the agent's view; None when applied locally or the agent did not answer
    link: LinkState | None = None


@dataclass(frozen=True)
class VMStatus:
    name: str
    host: str
    namespace: str  # "" for a VM that is a libvirt domain
    interfaces: tuple[InterfaceStatus, ...]
    domain: str | None = None  # the libvirt domain that is the VM

    def interface(self, network: str) -> InterfaceStatus:
        """The VM's interface in ``network``; KeyError when it has none."""
        for interface in self.interfaces:
            if interface.network == network:
                return interface
        raise KeyError(f"VM '{self.name}' has no interface in network '{network}'")


@dataclass(frozen=True)
class Status:
    """An applied topology read back from the kernel (and from the hosts' agents)."""

    topology: str
    applied: str
    vms: tuple[VMStatus, ...]
    #: where each host's agent listens (None: no answer); empty when applied locally
    agents: Mapping[str, str | None] = field(default_factory=dict)

    def vm(self, name: str) -> VMStatus:
        """One VM; KeyError when the topology has none of that name."""
        for vm in self.vms:
            if vm.name == name:
                return vm
        raise KeyError(f"topology '{self.topology}' has no VM '{name}'")

    @property
    def up(self) -> bool:
        """Every interface of every VM is up."""
        return all(i.state == "up" for vm in self.vms for i in vm.interfaces)


# ------------------------------------------------------------------------------ processes


class GuestProcess:
    """A command inside a VM of a guest host, with the parts of :class:`subprocess.Popen`
    a framework uses: ``pid`` (inside the guest), ``returncode``, ``poll``, ``wait``,
    ``communicate``, ``terminate``, ``kill``.

    It runs through the guest's control channel: standard error is merged into standard
    output, which comes whole once the process has ended (``communicate``), and it reads
    no standard input."""

    POLL_S = 0.2

    def __init__(
        self,
        host: str,
        namespace: str,
        argv: Sequence[str],
        text: bool,
        scope: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        self.args = list(argv)
        self.host = host
        self._scope = scope  # the testbed's settings: its state directory names the guest
        self._namespace = namespace
        self._text = text
        self._log = f"/tmp/netmanager-popen-{uuid.uuid4().hex}.out"
        self.returncode: int | None = None
        self._output: bytes | None = None
        self.pid = self._with_guest(
            lambda guest: guest.spawn(self.args, netns=namespace, log=self._log)
        )

    def _with_guest(self, action: Callable[[Any], T]) -> T:
        from netmanager.guests import hosts

        with self._scope():
            guest = hosts.guest_of(self.host)
        if guest is None:
            raise _guest_gone(self.host)
        try:
            return action(guest)
        finally:
            guest.disconnect()

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._with_guest(lambda guest: guest.poll(self.pid))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            time.sleep(self.POLL_S)
        assert self.returncode is not None
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[Any, Any]:
        """(output, None) once the process has ended: its standard output and error."""
        self.wait(timeout)
        if self._output is None:
            text = self._with_guest(lambda guest: guest.read_file(self._log))
            self._with_guest(lambda guest: guest.run(["rm", "-f", self._log], timeout=60))
            self._output = (text or "").encode()
        return (self._output.decode(errors="replace") if self._text else self._output), None

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            self._with_guest(lambda guest: guest.kill(self.pid, sig))

    def terminate(self) -> None:
        import signal

        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        import signal

        self.send_signal(signal.SIGKILL)


def _guest_gone(host: str) -> NetmanagerError:
    return single(
        "E746",
        Loc("netmanager"),
        f"guest host '{host}' is not running",
        "apply boots it again (netmanager hosts status lists guests)",
        "exec",
    )


# -------------------------------------------------------------------------------- testbed


def _is_xml_text(value: str | Path) -> bool:
    return isinstance(value, str) and value.lstrip().startswith("<")


class Testbed:
    """One topology (``virtual``) on one physical environment (``real``).

    ``real`` and ``virtual`` are paths or XML text; ``base_dir`` resolves the files real.xml
    names (credentials) when it is given as text (default: the current directory), or
    instead of real.xml's own directory.  ``local`` applies in this process instead of
    through each host's SNMP agent (emulated namespace hosts only).  ``state_dir`` and
    ``ns_prefix`` are this testbed's state directory and namespace prefix (default: the
    environment's ``NETMANAGER_STATE_DIR`` and ``NETMANAGER_NS_PREFIX``, else
    ``/var/lib/netmanager`` and ``nm``).  ``progress`` receives a :class:`ProgressEvent`
    for each phase of apply and destroy and for the kernel steps done in it.

    The files are loaded and checked here: a problem raises ``NetmanagerError`` with every
    diagnostic.  Nothing changes on the machine until :meth:`apply` (or ``with``).
    """

    #: not a test class, though its name starts with "Test" (pytest collects such names)
    __test__ = False

    def __init__(
        self,
        real: str | Path,
        virtual: str | Path,
        *,
        local: bool = False,
        state_dir: str | Path | None = None,
        ns_prefix: str | None = None,
        base_dir: str | Path | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        if ns_prefix is not None and (
            not 1 <= len(ns_prefix) <= 8 or not set(ns_prefix) <= _PREFIX_CHARS
        ):
            raise ValueError(
                f"ns_prefix {ns_prefix!r}: 1 to 8 lower-case letters and digits, please"
            )
        self.local = local
        self.state_dir = Path(state_dir).resolve() if state_dir is not None else None
        self.ns_prefix = ns_prefix
        self.progress = progress
        self._sources = {"real": real, "virtual": virtual}
        self._texts = {
            kind: str(value) for kind, value in self._sources.items() if _is_xml_text(value)
        }
        if base_dir is not None:
            self.base_dir: Path | None = Path(base_dir).resolve()
        elif self._texts.get("real") is not None:
            self.base_dir = Path.cwd()
        else:
            self.base_dir = None
        #: what popen started, ended by destroy where it still runs
        self._processes: list[subprocess.Popen[Any] | GuestProcess] = []
        self._model = self._with_inputs(lambda real, virtual: self._load(real, virtual))

    # -- settings and inputs ---------------------------------------------------------------

    @contextlib.contextmanager
    def _scope(self) -> Iterator[None]:
        with settings.scoped(
            **{
                settings.STATE_DIR: str(self.state_dir) if self.state_dir is not None else None,
                settings.NS_PREFIX: self.ns_prefix,
            }
        ):
            yield

    def _display(self, path: str) -> str:
        return f"<{path} text>"

    def _with_inputs(self, action: Callable[[Path, Path], T], *, keep: bool = False) -> T:
        """Run ``action`` with the two inputs as files, in this testbed's settings.

        Text goes to files first: under the state directory when they must outlive the
        call (apply records them, so that destroy and status find them later), else in a
        temporary directory.  Diagnostics name text inputs ``<real.xml text>``."""
        with self._scope(), contextlib.ExitStack() as stack:
            paths: dict[str, Path] = {}
            renames: dict[str, str] = {}
            directory = Path()
            if self._texts:
                if keep:
                    from netmanager.statedir import state_dir

                    digest = hashlib.sha256(
                        "\0".join(self._texts.get(k, "") for k in ("real", "virtual")).encode()
                    ).hexdigest()[:16]
                    directory = state_dir() / "inputs" / digest
                    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
                else:
                    directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            for kind, value in self._sources.items():
                if kind in self._texts:
                    path = directory / f"{kind}.xml"
                    if not path.exists() or path.read_text("utf-8") != self._texts[kind]:
                        path.write_text(self._texts[kind], encoding="utf-8")
                    paths[kind] = path
                    renames[str(path)] = self._display(f"{kind}.xml")
                else:
                    paths[kind] = Path(value)
            try:
                return action(paths["real"], paths["virtual"])
            except NetmanagerError as exc:
                if renames:
                    _rename_files(exc, renames)
                raise

    def _call(self, action: Callable[[], T]) -> T:
        """Run an operation that needs no input file in this testbed's settings."""
        with self._scope():
            return action()

    def _load(self, real: Path, virtual: Path) -> Model:
        from netmanager.inputs.loader import load

        return load(real, virtual, base_dir=self.base_dir)

    def _prepare(self, real: Path, virtual: Path) -> Deployment:
        from netmanager.apply.prepare import prepare

        return prepare(real, virtual, base_dir=self.base_dir)

    # -- what it is ------------------------------------------------------------------------

    @property
    def model(self) -> Model:
        """The validated model of both files (as loaded when the testbed was made)."""
        return self._model

    @property
    def topology(self) -> str:
        return self._model.topology

    @property
    def vms(self) -> tuple[str, ...]:
        """The names of the topology's VMs, in virtual.xml's order."""
        return tuple(vm.name for vm in self._model.virtual.vms)

    def __repr__(self) -> str:
        how = "local" if self.local else "agents"
        return f"Testbed({self.topology!r}, {how}, {len(self.vms)} VMs)"

    # -- the pipeline ----------------------------------------------------------------------

    def validate(self) -> tuple[Diagnostic, ...]:
        """Check both files again (they may have changed): the warnings; raises
        ``NetmanagerError`` with every error."""
        from netmanager.inputs.loader import load_with_warnings

        def run(real: Path, virtual: Path) -> tuple[Diagnostic, ...]:
            result = load_with_warnings(real, virtual, base_dir=self.base_dir)
            self._model = result.model
            return result.warnings

        return self._with_inputs(run)

    def map(self) -> MappingResult:
        """Where apply would place the VMs and carry the networks (segment ids and capacity
        other applied topologies hold are respected); raises ``InfeasibleError`` (the
        command's exit 3) when it does not fit."""
        return self._with_inputs(lambda real, virtual: self._prepare(real, virtual).mapping)

    def plan(self) -> Plan:
        """What :meth:`apply` would change, and why; changes nothing."""

        def run(real: Path, virtual: Path) -> Plan:
            from netmanager.apply import topology

            return _plan(topology.plan(self._prepare(real, virtual), local=self.local))

        return self._with_inputs(run)

    def apply(self, *, reset: bool = False) -> Result:
        """Build the topology (a second apply changes only what differs); on failure every
        host is rolled back and ``NetmanagerError`` (exit code 4) raised.  Runtime changes
        (:meth:`set`) are kept unless virtual.xml changed that value since, or ``reset``."""

        def run(real: Path, virtual: Path) -> Result:
            from netmanager.apply import runtime, topology

            deployment = self._prepare(real, virtual)
            if reset:
                runtime.reset(deployment.topology)
            reporter = _Reporter(self.progress)
            outcome = topology.apply(
                deployment, local=self.local, progress=reporter.phase, steps=reporter.step
            )
            return _result(outcome)

        return self._with_inputs(run, keep=True)

    def destroy(self) -> Result:
        """End the processes :meth:`popen` started that still run, remove everything of the
        topology and release its segment ids (the last topology takes the emulated hosts,
        switches and agents with it); ``NetmanagerError`` (E720) when it is not applied."""

        def run() -> Result:
            from netmanager.apply import topology

            self._end_processes()
            reporter = _Reporter(self.progress)
            outcome = topology.destroy(self.topology, progress=reporter.phase, steps=reporter.step)
            return _result(outcome)

        return self._call(run)

    @property
    def applied(self) -> bool:
        """Whether the topology is applied (in this testbed's state directory)."""
        from netmanager.apply.records import records

        return self._call(lambda: self.topology in records())

    def status(self) -> Status:
        """The applied topology read back from the kernel, with each port's link as its
        host's agent reports it; ``NetmanagerError`` (E720) when it is not applied."""
        from netmanager.apply import readback

        documents = self._call(lambda: readback.status(self.topology))
        return _status(documents[0])

    def set(
        self,
        target: str,
        *,
        bandwidth: str | int | None = None,
        latency: str | int | None = None,
        jitter: str | int | None = None,
        loss: str | int | None = None,
        up: bool | None = None,
        bandwidth_from_vm: str | int | None = None,
    ) -> SetOutcome:
        """Change running links at once, in place (``netmanager set``): ``target`` is a
        network, ``"VM:NETWORK"``, a VM with one interface or a ``<link>`` pair
        ``"VM1~VM2"``; ``bandwidth`` a rate ("20Mbit", or bit/s; 0: no limit),
        ``latency`` and ``jitter`` NetEm's at the port ("30ms", or µs), ``loss`` ("0.5%",
        or ppm), ``up`` False takes the ports down; ``bandwidth_from_vm`` the rate of what
        the VMs send, apart (``bandwidth`` is then the rate towards them).
        Each host keeps the change as an override of the topology.  Raises
        ``NetmanagerError`` (nothing changed where a host refused)."""
        from netmanager.apply.runtime import LinkChange, set_links
        from netmanager.inputs.units import parse_percent, parse_rate, parse_time

        def value(given: str | int | None, parse: Callable[[str], int]) -> int | None:
            if given is None or isinstance(given, int):
                return given
            return 0 if given.strip() in ("0", "0%") else parse(given)

        change = LinkChange(
            rate_bps=value(bandwidth, parse_rate),
            delay_us=value(latency, parse_time),
            jitter_us=value(jitter, parse_time),
            loss_ppm=value(loss, parse_percent),
            up=up,
            rate_in_bps=value(bandwidth_from_vm, parse_rate),
        )
        return self._call(lambda: set_links(self.topology, target, change))

    def migrate(self, vm: str, to: str, *, precopy: bool = True) -> MigrateOutcome:
        """Move running VM ``vm`` to host ``to``, its network following it (``netmanager
        migrate``): between hosts emulated here its namespace keeps running, processes
        and connections included; ``precopy``: its cost emulated (an idle guest, QEMU's
        defaults).  Raises ``NetmanagerError`` (E780–E784 before any change)."""
        from netmanager.apply.migrate import Precopy, migrate

        model = Precopy() if precopy else None
        return self._with_inputs(
            lambda real, virtual: migrate(
                real, virtual, vm, to, base_dir=self.base_dir, precopy=model
            )
        )

    def start_schedule(self, *, lead_s: float = 1.0) -> dict[str, int]:
        """Start virtual.xml's ``<schedule>`` (``netmanager schedule start``): its time 0
        ``lead_s`` from now, played by the hosts' agents; the steps per host.  Its
        migrations run from a driver process of this machine's
        (:mod:`netmanager.verify.moveplan`)."""
        from netmanager.apply import schedule
        from netmanager.verify import moveplan

        def moves(planned: tuple[Move, ...], delay_s: float) -> None:
            real, virtual = self.model.real.file, self.model.virtual.file
            moveplan.start(real, virtual, self.topology, planned, delay_s)

        return self._call(
            lambda: schedule.start(
                self.model.virtual, lead_s=lead_s, real=self.model.real, moves=moves
            )
        )

    def schedule_status(self) -> list[HostSchedule]:
        """What each host played of the schedule, and what comes next."""
        from netmanager.apply import schedule

        return self._call(lambda: schedule.status(self.topology))

    def stop_schedule(self) -> None:
        from netmanager.apply import schedule

        self._call(lambda: schedule.stop(self.topology))

    def verify(
        self,
        *,
        level: int | None = None,
        only: Iterable[str] | None = None,
        sample: int | None = None,
        jobs: int = 4,
        budget_s: float = 60.0,
        udp: bool = True,
        seed: int = 0,
    ) -> Report:
        """Measure the applied topology against virtual.xml (``netmanager verify``): a
        :class:`~netmanager.verify.Report` whose ``passed`` and ``failures`` say how it
        went (a failed measurement is a failed check, not an exception)."""
        from netmanager.verify import LEVELS
        from netmanager.verify import verify as run_verify

        return self._call(
            lambda: run_verify(
                self.topology,
                level=level if level is not None else len(LEVELS),
                only=only,
                sample=sample,
                jobs=jobs,
                budget_s=budget_s,
                udp=udp,
                seed=seed,
            )
        )

    # -- inside the VMs --------------------------------------------------------------------

    def _location(self, vm: str) -> tuple[str, str | None]:
        from netmanager.apply.readback import vm_location

        if vm not in self.vms:
            raise single(
                "E721",
                Loc("netmanager"),
                f"topology '{self.topology}' has no VM '{vm}'",
                "its VMs: " + ", ".join(self.vms),
                "exec",
            )
        return self._call(lambda: vm_location(vm, self.topology))

    def popen(
        self, vm: str, argv: Sequence[str], **kwargs: Any
    ) -> subprocess.Popen[Any] | GuestProcess:
        """Start ``argv`` inside a VM (Mininet's ``host.popen``).

        For a VM of an emulated host (a namespace of this machine) a real
        :class:`subprocess.Popen` (``kwargs`` go to it: ``stdout``, ``text``, ...); for a
        VM of a guest host a :class:`GuestProcess` (only ``text`` is taken)."""
        namespace, guest_host = self._location(vm)
        if guest_host is not None:
            unknown = set(kwargs) - {"text", "universal_newlines", "stdout", "stderr"}
            if unknown:
                raise TypeError(f"a VM on a guest host takes no {', '.join(sorted(unknown))}")
            text = bool(kwargs.get("text") or kwargs.get("universal_newlines"))
            process: subprocess.Popen[Any] | GuestProcess = GuestProcess(
                guest_host, namespace, argv, text, self._scope
            )
        else:
            process = subprocess.Popen([*_nsenter(namespace), *argv], **kwargs)
        self._processes = [p for p in self._processes if p.returncode is None]
        self._processes.append(process)
        return process

    def _end_processes(self) -> None:
        """End what popen started and still runs: a process in a VM's namespace would keep
        the namespace (and what it holds) alive after destroy."""
        for process in self._processes:
            with contextlib.suppress(OSError, NetmanagerError, subprocess.TimeoutExpired):
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=10)
        self._processes = []

    def exec(self, vm: str, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """Run ``argv`` inside a VM to its end (Mininet's ``host.cmd``), as
        :func:`subprocess.run` does: ``kwargs`` go to it (``capture_output``, ``text``,
        ``timeout``, ``check``, ...).  On a guest host the output comes at the end and
        standard error is captured apart only there (``capture_output`` is implied)."""
        namespace, guest_host = self._location(vm)
        if guest_host is None:
            return subprocess.run([*_nsenter(namespace), *argv], **kwargs)
        from netmanager.guests import hosts

        with self._scope():
            guest = hosts.guest_of(guest_host)
        if guest is None:
            raise _guest_gone(guest_host)
        try:
            done = guest.run(
                list(argv),
                netns=namespace,
                timeout=float(kwargs.get("timeout") or 3600.0),
                stdin=kwargs.get("input"),
            )
        finally:
            guest.disconnect()
        result: subprocess.CompletedProcess[Any] = done
        if not (kwargs.get("text") or kwargs.get("universal_newlines")):
            result = subprocess.CompletedProcess(
                done.args, done.returncode, done.stdout.encode(), done.stderr.encode()
            )
        if kwargs.get("check"):
            result.check_returncode()
        return result

    # -- with ------------------------------------------------------------------------------

    def __enter__(self) -> Testbed:
        self.apply()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.destroy()


# ------------------------------------------------------------------------------- helpers


def _nsenter(namespace: str) -> list[str]:
    return [programs.path("nsenter"), f"--net=/run/netns/{namespace}"]


def _rename_files(error: NetmanagerError, renames: dict[str, str]) -> None:
    """Diagnostics of inputs given as text name them, not the file they were put in."""
    renamed = [
        replace(d, loc=replace(d.loc, file=renames[d.loc.file])) if d.loc.file in renames else d
        for d in error.diagnostics
    ]
    NetmanagerError.__init__(error, error.phase, renamed)


class _Reporter:
    """The engine's phase and step callbacks, as :class:`ProgressEvent`s."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.current: str | None = None

    def phase(self, name: str) -> None:
        self.current = name
        if self.callback is not None:
            self.callback(ProgressEvent(name))

    def step(self, done: int, total: int) -> None:
        if self.callback is not None and self.current is not None:
            self.callback(ProgressEvent(self.current, done, total))


def _result(outcome: Outcome) -> Result:
    hosts = {
        name: HostResult(
            vms=int(h.get("vms", 0)),
            ports=int(h.get("ports", 0)),
            networks=int(h.get("networks", 0)),
            changes=h.get("changes"),
            agent=h.get("agent"),
        )
        for name, h in outcome.hosts.items()
    }
    return Result(outcome.topology, outcome.changes, dict(outcome.phases), outcome.seconds, hosts)


def _plan(planned: TopologyPlan) -> Plan:
    changes = []
    if planned.infrastructure is not None:
        changes += [
            PlannedChange(str(c.op), c.obj.label(), c.reason, None, c.obj.KIND)
            for c in planned.infrastructure.changes
        ]
    for host, lines in sorted(planned.hosts.items()):
        changes += [PlannedChange(c.sign, c.object, c.reason, host) for c in lines]
    return Plan(
        planned.topology,
        tuple(changes),
        f"topology '{planned.topology}': {planned.summary()}",
        dict(planned.unreachable),
    )


def _link(found: Any) -> LinkState | None:
    if not isinstance(found, dict) or not found:
        return None
    return LinkState(
        oper=str(found.get("oper", "unknown")),
        rate_kbps=found.get("rate_kbps"),
        delay_us=found.get("delay_us"),
        in_octets=found.get("in_octets"),
        out_octets=found.get("out_octets"),
        guest_address=found.get("guest_address"),
        overrides=tuple(found.get("overrides", ())),
    )


def _status(document: dict[str, Any]) -> Status:
    vms = tuple(
        VMStatus(
            name=vm["name"],
            host=vm["host"],
            namespace=vm["namespace"],
            domain=vm.get("domain"),
            interfaces=tuple(
                InterfaceStatus(
                    network=i["network"],
                    ifname=i["ifname"],
                    ip=i["ip"],
                    mac=i["mac"],
                    state=i["state"],
                    link=_link(i.get("link")),
                )
                for i in vm["interfaces"]
            ),
        )
        for vm in document["vms"]
    )
    return Status(document["topology"], document["applied"], vms, dict(document.get("agents", {})))


__all__ = [
    "GuestProcess",
    "HostResult",
    "InterfaceStatus",
    "LinkState",
    "Plan",
    "PlannedChange",
    "ProgressCallback",
    "ProgressEvent",
    "Result",
    "Status",
    "Testbed",
    "VMStatus",
]
