#!/usr/bin/env python3
"""Baseline (not a test): how long Mininet 2.3 takes to build and tear down N VMs.

The same shape as bench/apply.py, on one emulated host: N Mininet hosts (network
namespaces), each with a veth into one Linux bridge (Mininet's ``LinuxBridge``, the API
equivalent of ``mn --switch lxbr --controller none``), an IPv4 address, a default route and
a TBF at 100 Mbit/s made by ``TCLink(bw=100, use_tbf=True)``.  By default the TBF is on the
bridge-side port only (what dom0 carries in bench/apply.py: one TBF per VM); ``--tbf both``
gives TCLink's own default, a TBF on both ends.  Timed: ``apply`` from ``Mininet(...)``
through ``net.start()``; ``destroy`` is ``net.stop()``.

Mininet lives in Debian's system Python (``apt-get install -y --no-install-recommends
mininet bridge-utils ethtool``; Open vSwitch is not usable here), while the benchmarks run
in the project venv: ``measure(n)`` runs the Mininet part in a child ``/usr/bin/python3 -I
<this file> --child N`` that prints one JSON line.

Safety: Mininet's cleanup (``mn -c``, ``Cleanup.cleanup``) kills processes by name, deletes
``/tmp/*.log`` and every ``*-ethN`` link; ``Mininet.init()`` calls ``fixLimits()``, which
raises global sysctls.  The child disables all of it before creating anything: the cleanup
functions, ``cleanUpScreens`` and ``fixLimits`` are replaced, and every shell command
Mininet runs (``errRun``/``quietRun`` and ``Node.sendCmd``) goes through a guard that
refuses ``killall``/``pkill``/``rm``/``mn -c``/sysctl writes, and ``ip link del`` or
``brctl delbr`` of any name without this run's random prefix.  The sysctls ``fixLimits()``
would set are read before and after; one changed to Mininet's value is restored.  Every
node gets the random prefix (``m<4 hex>``, checked unused), so its links cannot collide
with anyone's; afterwards only this run's shells (by the PIDs Mininet started) and links
(by prefix) are removed.

    .venv/bin/python bench/mininet_baseline.py --sizes 10,100
    .venv/bin/python bench/mininet_baseline.py --sizes 1000 --tbf both
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SYSTEM_PYTHON = "/usr/bin/python3"
INSTALL_HINT = "apt-get install -y --no-install-recommends mininet bridge-utils ethtool"
MARKER = "MININET_BASELINE_RESULT "
GATEWAY = "10.0.255.254"
BW_MBIT = 100
MAX_N = 1023  # a Linux bridge holds at most 1023 ports
TBF_MODES = ("port", "both")

# What mininet.util.fixLimits() writes (Mininet 2.3.0, util.py): an int is raised to at
# least that value, a string is written as is.  RLIMITs only touch the child process.
FIXLIMITS_SYSCTLS: dict[str, int | str] = {
    "fs.file-max": 10000,
    "net.core.wmem_max": 16777216,
    "net.core.rmem_max": 16777216,
    "net.ipv4.tcp_rmem": "10240 87380 16777216",
    "net.ipv4.tcp_wmem": "10240 87380 16777216",
    "net.core.netdev_max_backlog": 5000,
    "net.ipv4.neigh.default.gc_thresh1": 4096,
    "net.ipv4.neigh.default.gc_thresh2": 8192,
    "net.ipv4.neigh.default.gc_thresh3": 16384,
    "net.ipv4.route.max_size": 32768,
    "kernel.pty.max": 20000,
}


# ------------------------------------------------------------------------------ the parent


def measure(
    n: int, *, tbf: str = "port", timeout_s: float | None = None
) -> dict[str, float] | None:
    """Build and tear down N Mininet hosts on one Linux bridge; seconds as
    ``{"apply": build incl. net.start(), "destroy": net.stop()}`` (bench/apply.py's keys),
    or None, with the reason printed, when Mininet is not installed or cannot run."""
    if not 1 <= n <= MAX_N:
        print(f"mininet: N={n} outside 1..{MAX_N} (one Linux bridge)", file=sys.stderr)
        return None
    if tbf not in TBF_MODES:
        raise ValueError(f"tbf must be one of {TBF_MODES}")
    if os.geteuid() != 0:
        print("mininet: skipped, needs root", file=sys.stderr)
        return None
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        print(f"mininet: skipped, no {SYSTEM_PYTHON} (Mininet is Debian's)", file=sys.stderr)
        return None
    if timeout_s is None:
        timeout_s = 120.0 + 0.5 * n  # about 0.1 s per VM measured; generous
    env = dict(os.environ)
    env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(var, None)
    argv = [SYSTEM_PYTHON, "-I", os.path.abspath(__file__), "--child", str(n), "--tbf", tbf]
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as child:
        try:
            output, _ = child.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            # SIGTERM makes the child run its own cleanup (by prefix and PID)
            child.send_signal(signal.SIGTERM)
            try:
                output, _ = child.communicate(timeout=300)
            except subprocess.TimeoutExpired:
                child.kill()
                output, _ = child.communicate()
            print(f"mininet: N={n} timed out after {timeout_s:.0f} s", file=sys.stderr)
            return None
    result: dict[str, Any] | None = None
    for line in output.splitlines():
        if line.startswith(MARKER):
            result = json.loads(line[len(MARKER) :])
    if result is None:
        tail = "\n".join(output.splitlines()[-15:])
        print(f"mininet: child failed (exit {child.returncode}):\n{tail}", file=sys.stderr)
        return None
    for note in result.get("notes", []):
        print(f"mininet: {note}", file=sys.stderr)
    if "error" in result:
        print(f"mininet: {result['error']}", file=sys.stderr)
        return None
    return {"apply": float(result["apply"]), "destroy": float(result["destroy"])}


def settle(limit_s: float = 60.0) -> None:
    """Wait until the CPUs are mostly idle (namespace teardown is asynchronous)."""
    start = time.perf_counter()

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]

    while time.perf_counter() - start < limit_s:
        total0, idle0 = sample()
        time.sleep(0.5)
        total1, idle1 = sample()
        if total1 > total0 and (idle1 - idle0) / (total1 - total0) > 0.9:
            return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100", help="comma-separated VM counts")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (best is kept)")
    parser.add_argument(
        "--tbf", choices=TBF_MODES, default="port", help="TBF on the bridge port or both ends"
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return child_main(args.child, args.tbf)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rows: list[tuple[int, dict[str, float] | None]] = []
    for n in sizes:
        best: dict[str, float] | None = None
        for _ in range(args.repeat):
            settle()
            got = measure(n, tbf=args.tbf)
            if got is not None and (best is None or got["apply"] < best["apply"]):
                best = got
        rows.append((n, best))
        if best is not None:
            print(f"mininet N={n:<5} build {best['apply']:.3f}  teardown {best['destroy']:.3f}")
    print()
    print(
        f"{'N':>6} {'build s':>9} {'teardown s':>11}   (Mininet 2.3, LinuxBridge, TBF {args.tbf})"
    )
    for n, best in rows:
        if best is None:
            print(f"{n:>6} {'-':>9} {'-':>11}")
        else:
            print(f"{n:>6} {best['apply']:>9.3f} {best['destroy']:>11.3f}")
    return 0 if all(best is not None for _, best in rows) else 1


# ------------------------------------------------------------ the child (Debian's Python)


def child_main(n: int, tbf: str) -> int:
    """Runs under /usr/bin/python3; prints one ``MARKER {json}`` line, always."""
    notes: list[str] = []
    try:
        result: dict[str, Any] = run_mininet(n, tbf, notes)
    except BaseException as exc:  # report, whatever happened (cleanup already ran)
        result = {"error": f"{type(exc).__name__}: {exc}"}
    result["notes"] = notes
    print(MARKER + json.dumps(result), flush=True)
    return 0 if "error" not in result else 1


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctls() -> dict[str, str]:
    values: dict[str, str] = {}
    for name in FIXLIMITS_SYSCTLS:
        with contextlib.suppress(OSError):
            values[name] = _sysctl_path(name).read_text().strip()
    return values


def restore_sysctls(before: dict[str, str], notes: list[str]) -> None:
    """Restore a value that changed to what fixLimits() writes (someone else's change to
    another value is left alone)."""
    after = read_sysctls()
    for name, old in before.items():
        new = after.get(name)
        if new is None or new.split() == old.split():
            continue
        target = FIXLIMITS_SYSCTLS[name]
        if str(target).split() == new.split():
            _sysctl_path(name).write_text(old)
            notes.append(f"sysctl {name} was changed to {new!r}: restored {old!r}")
        else:
            notes.append(f"sysctl {name} changed {old!r} -> {new!r} (not Mininet's value; left)")


def _links() -> list[str]:
    return os.listdir("/sys/class/net")


def _fresh_prefix() -> str:
    names = _links()
    for _ in range(100):
        prefix = "m" + secrets.token_hex(2)
        if not any(name.startswith(prefix) for name in names):
            return prefix
    raise RuntimeError("no unused prefix found")


_FORBIDDEN = re.compile(
    r"\b(killall|pkill|pgrep|xargs)\b|(^|[;&|(\s])rm\s|\bmn\s+-c\b|/tmp/\*"
    r"|\bsysctl\s+(-\w+\s+)*-w\b|\bsysctl\s+(-\w+\s+)*[\w./-]+="
)


def make_guard(prefix: str) -> Callable[[str], None]:
    owned = re.compile(r"\b(ip\s+link\s+del(ete)?|brctl\s+del(br|if))\s+(dev\s+)?(\S+)")

    def guard(cmd: str) -> None:
        if _FORBIDDEN.search(cmd):
            raise RuntimeError(f"refused to run {cmd!r} (Mininet cleanup is disabled)")
        for match in owned.finditer(cmd):
            if not match.group(5).startswith(prefix):
                raise RuntimeError(f"refused to run {cmd!r}: not this run's prefix {prefix}")

    return guard


def _flatten(args: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for arg in args:
        if isinstance(arg, (list, tuple)):
            parts += [str(a) for a in arg]
        else:
            parts.append(str(arg))
    return " ".join(parts)


def neutralise_mininet(prefix: str, started: list[subprocess.Popen[Any]], notes: list[str]) -> None:
    """Disable everything in Mininet that acts outside this run; record every process it
    starts."""
    mn: dict[str, Any] = {
        name: importlib.import_module(f"mininet.{name}")
        for name in ("clean", "link", "moduledeps", "net", "node", "nodelib", "term", "util")
    }

    def refused(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("Mininet's global cleanup is disabled in this benchmark")

    def no_fix_limits() -> None:
        return None  # no global sysctl raised (see FIXLIMITS_SYSCTLS)

    def no_screens(*_args: Any, **_kwargs: Any) -> None:
        return None

    mn["clean"].Cleanup.cleanup = classmethod(refused)
    for attr in ("cleanup", "killprocs", "sh"):
        setattr(mn["clean"], attr, refused)
    for name in ("util", "net"):
        mn[name].fixLimits = no_fix_limits
    for name in ("term", "net"):
        mn[name].cleanUpScreens = no_screens

    guard = make_guard(prefix)
    for module in mn.values():
        for attr in ("errRun", "quietRun", "errFail"):
            original = getattr(module, attr, None)
            if original is None:
                continue

            def guarded(*args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
                guard(_flatten(args))
                return _original(*args, **kwargs)

            setattr(module, attr, guarded)

    node_cls = mn["node"].Node
    send_cmd = node_cls.sendCmd
    popen = node_cls._popen

    def guarded_send(self: Any, *args: Any, **kwargs: Any) -> Any:
        guard(_flatten(args))
        return send_cmd(self, *args, **kwargs)

    def recorded_popen(self: Any, cmd: list[str], **params: Any) -> Any:
        guard(_flatten((cmd,)))
        process = popen(self, cmd, **params)
        started.append(process)
        return process

    node_cls.sendCmd = guarded_send
    node_cls._popen = recorded_popen


def end_processes(started: list[subprocess.Popen[Any]], notes: list[str]) -> None:
    """End the shells Mininet started that are still alive, by their PID (each is a
    session leader: mnexec -d calls setsid)."""
    for process in started:
        if process.poll() is not None:
            continue
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(process.pid) == process.pid:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                os.kill(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        notes.append(f"ended leftover Mininet process {process.pid}")


def remove_links(prefix: str, notes: list[str], wait_s: float = 30.0) -> None:
    """Wait for this run's root-namespace links to go with their namespaces, then delete
    any left (by exact name, all with this run's prefix)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(x.startswith(prefix) for x in _links()):
        time.sleep(0.2)
    for name in _links():
        if name.startswith(prefix):
            subprocess.run(["ip", "link", "del", "dev", name], check=False, capture_output=True)
            notes.append(f"deleted leftover link {name}")


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    def handler(signum: int, _frame: Any) -> None:
        raise SystemExit(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def ignore_terminate() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_mininet(n: int, tbf: str, notes: list[str]) -> dict[str, Any]:
    if os.geteuid() != 0:
        return {"error": "skipped, needs root"}
    try:
        mn_net = importlib.import_module("mininet.net")
        mn_nodelib = importlib.import_module("mininet.nodelib")
        mn_link = importlib.import_module("mininet.link")
        mn_log = importlib.import_module("mininet.log")
    except ImportError:
        return {"error": f"skipped, Mininet is not installed ({INSTALL_HINT})"}
    missing = [
        t for t in ("mnexec", "brctl", "ethtool", "ifconfig", "tc", "ip") if not shutil.which(t)
    ]
    if missing:
        return {"error": f"skipped, missing {' '.join(missing)} ({INSTALL_HINT})"}
    if not 1 <= n <= MAX_N:
        return {"error": f"N={n} outside 1..{MAX_N}"}

    prefix = _fresh_prefix()
    started: list[subprocess.Popen[Any]] = []
    before = read_sysctls()
    neutralise_mininet(prefix, started, notes)
    mn_log.setLogLevel("error")
    sw_name = f"{prefix}s"
    hosts = [f"{prefix}h{i + 1}" for i in range(n)]
    assert len(f"{sw_name}-eth{n}") <= 15 and len(f"{hosts[-1]}-eth0") <= 15
    tc = {"bw": BW_MBIT, "use_tbf": True}
    link_opts: dict[str, Any] = {"params2": tc} if tbf == "port" else dict(tc)

    out: dict[str, Any] = {"prefix": prefix}
    net: Any = None
    stopped = False
    try:
        with terminate_as_exit():
            start = time.perf_counter()
            net = mn_net.Mininet(
                topo=None,
                build=False,
                switch=mn_nodelib.LinuxBridge,
                controller=None,
                link=mn_link.TCLink,
                autoSetMacs=False,
                waitConnected=False,
            )
            sw = net.addSwitch(sw_name, dpid="1")
            for i, name in enumerate(hosts):
                ip = f"10.0.{(i + 1) >> 8}.{(i + 1) & 0xFF}/16"  # bench/apply.py's addresses
                host = net.addHost(name, ip=ip, defaultRoute=f"via {GATEWAY}")
                net.addLink(host, sw, **link_opts)
            net.start()
            out["apply"] = time.perf_counter() - start

            # not timed: the network works (one ping between two of our own hosts)
            if n >= 2:
                h1, h2 = net.hosts[0], net.hosts[1]
                reply = h1.cmd(f"ping -c1 -W2 -q {h2.IP()}")
                if " 0% packet loss" not in reply:
                    notes.append(f"{h1.name} did not reach {h2.name}: {reply.strip()!r}")
            ports = os.listdir(f"/sys/class/net/{sw_name}/brif")
            if len(ports) != n:
                notes.append(f"bridge {sw_name} has {len(ports)} ports, expected {n}")
            shown = subprocess.run(
                ["tc", "-j", "qdisc", "show"], check=True, capture_output=True, text=True
            ).stdout
            tbfs = sum(
                1
                for q in json.loads(shown)
                if q.get("kind") == "tbf" and str(q.get("dev", "")).startswith(f"{sw_name}-eth")
            )
            if tbfs != n:
                notes.append(f"{tbfs} TBF on the bridge ports, expected {n}")

            start = time.perf_counter()
            stopped = True
            net.stop()
            out["destroy"] = time.perf_counter() - start
    finally:
        with ignore_terminate():
            if net is not None and not stopped:
                try:
                    net.stop()
                except Exception as exc:
                    notes.append(f"net.stop() after a failure: {exc}")
            end_processes(started, notes)
            remove_links(prefix, notes)
            restore_sysctls(before, notes)
    return out


if __name__ == "__main__":
    sys.exit(main())
