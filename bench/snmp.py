"""Benchmark of the SNMP agent's monitoring path against net-snmp's snmpd (not a test).

Creates a network namespace of its own with 1000 interfaces (500 veth pairs, each end
marked ``nm:bench:<vm>:lan``), then, side by side in the same run:

* netmanager-agent (monitoring that namespace): ``snmpbulkwalk -v2c -Cr50`` of IF-MIB
  ifTable, ifXTable and NETMANAGER-MIB nmLinkTable;
* net-snmp's ``snmpd`` started inside the namespace: the same walk of ifTable only.

Both walks use net-snmp's ``snmpbulkwalk`` on loopback, best of ``--runs``.  Also prints
the agent's CPU and wall time per polling cycle of the 1000 links (nmMonitorPollCpu /
nmMonitorPollDuration).  The last line is ``ratio: <agent walk time / snmpd walk time>``.
Needs root (it creates the namespace), snmpd and snmpbulkwalk; cleans up whatever
happens.

    sudo .venv/bin/python bench/snmp.py [--links 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IF_TABLE = ".1.3.6.1.2.1.2.2"
IFX_TABLE = ".1.3.6.1.2.1.31.1.1"
LINK_TABLE = ".1.3.6.1.3.7171.1.3.1"
POLL_CPU = ".1.3.6.1.3.7171.1.3.4.0"
POLL_DURATION = ".1.3.6.1.3.7171.1.3.3.0"
COMMUNITY = "nm-bench-read"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sh(*cmd: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)  # type: ignore[call-overload]


def make_links(ns: str, pairs: int) -> None:
    lines = []
    for i in range(pairs):
        a, b = f"nmb{i}a", f"nmb{i}b"
        lines += [
            f"link add {a} type veth peer name {b}",
            f"link set {a} alias nm:bench:vm{2 * i}:lan",
            f"link set {b} alias nm:bench:vm{2 * i + 1}:lan",
            f"link set {a} up",
            f"link set {b} up",
        ]
    sh("ip", "-n", ns, "-batch", "-", input="\n".join(lines) + "\n")
    sh("ip", "-n", ns, "link", "set", "lo", "up")


def walk(env: dict[str, str], target: str, oids: list[str], netns: str | None) -> tuple[float, int]:
    """Seconds and var-binds of snmpbulkwalk over each OID, one after the other."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    total_t, total_n = 0.0, 0
    for oid in oids:
        cmd = [*prefix, "snmpbulkwalk", "-v2c", "-c", COMMUNITY, "-Cr50", "-On", "-t", "10"]
        t0 = time.perf_counter()
        out = subprocess.run(
            [*cmd, target, oid], check=True, capture_output=True, text=True, env=env
        ).stdout
        total_t += time.perf_counter() - t0
        total_n += len(out.splitlines())
    return total_t, total_n


def wait_ready(env: dict[str, str], target: str, netns: str | None, timeout: float = 20) -> None:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = subprocess.run(
            [
                *prefix,
                "snmpget",
                "-v2c",
                "-c",
                COMMUNITY,
                "-t",
                "1",
                "-r",
                "0",
                target,
                ".1.3.6.1.2.1.1.3.0",
            ],
            capture_output=True,
            env=env,
        )
        if proc.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{target} did not answer within {timeout}s")


def snmpget(env: dict[str, str], target: str, oid: str) -> int:
    out = sh("snmpget", "-v2c", "-c", COMMUNITY, "-Oqv", target, oid, env=env).stdout
    return int(out.split()[0])


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=1000, help="interfaces (even)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--poll-interval", type=float, default=5.0)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/snmp.py needs root (it creates a network namespace)", file=sys.stderr)
        return 2
    for tool in ("snmpd", "snmpbulkwalk", "snmpget", "ip"):
        if shutil.which(tool) is None:
            print(f"bench/snmp.py needs {tool}", file=sys.stderr)
            return 2

    ns = f"nmsnmpb{secrets.token_hex(3)}"
    tmp = Path(tempfile.mkdtemp(prefix="nm-snmp-bench-"))
    env = dict(os.environ, SNMPCONFPATH=str(tmp), SNMP_PERSISTENT_DIR=str(tmp / "persist"))
    agent: subprocess.Popen[bytes] | None = None
    snmpd: subprocess.Popen[bytes] | None = None
    try:
        sh("ip", "netns", "add", ns)
        t0 = time.perf_counter()
        make_links(ns, args.links // 2)
        print(f"namespace {ns}: {args.links} interfaces in {time.perf_counter() - t0:.1f}s")

        creds = tmp / "snmp.toml"
        creds.write_text(
            f'[read]\ncommunity = "{COMMUNITY}"\n\n[write]\nuser = "bench"\n'
            'auth_protocol = "SHA-256"\nauth_key = "bench-auth-key"\n'
            'priv_protocol = "AES-128"\npriv_key = "bench-priv-key"\n'
        )
        creds.chmod(0o600)
        agent_port = free_port()
        agent = subprocess.Popen(
            [
                sys.executable, "-m", "snmp_agents.agent",
                "--listen", f"127.0.0.1:{agent_port}",
                "--state-dir", str(tmp / "agent"),
                "--credentials", str(creds),
                "--netns", ns,
                "--poll-interval", str(args.poll_interval),
                # the walks measure the request path alone, not walks during polls
                "--watched-poll-interval", "0",
                "--log-level", "warning",
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "agent.log").open("wb"),
        )  # fmt: skip
        agent_target = f"udp:127.0.0.1:{agent_port}"

        snmpd_port = free_port()
        conf = tmp / "snmpd.conf"
        conf.write_text(f"rocommunity {COMMUNITY} 127.0.0.1\n")
        snmpd = subprocess.Popen(
            [
                "ip", "netns", "exec", ns, shutil.which("snmpd") or "snmpd",
                "-f", "-C", "-c", str(conf), "-Lf", str(tmp / "snmpd.log"),
                "-p", str(tmp / "snmpd.pid"), f"udp:127.0.0.1:{snmpd_port}",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        snmpd_target = f"udp:127.0.0.1:{snmpd_port}"

        wait_ready(env, agent_target, None)
        wait_ready(env, snmpd_target, ns)
        time.sleep(args.poll_interval + 0.5)  # at least one full poll of every link
        polls = [(snmpget(env, agent_target, POLL_CPU), snmpget(env, agent_target, POLL_DURATION))]

        agent_best = snmpd_best = float("inf")
        agent_n = snmpd_n = 0
        for _ in range(args.runs):
            t, agent_n = walk(env, agent_target, [IF_TABLE, IFX_TABLE, LINK_TABLE], None)
            agent_best = min(agent_best, t)
            t, snmpd_n = walk(env, snmpd_target, [IF_TABLE], ns)
            snmpd_best = min(snmpd_best, t)
            polls.append(
                (snmpget(env, agent_target, POLL_CPU), snmpget(env, agent_target, POLL_DURATION))
            )
        cpu = sorted(p[0] for p in polls)[len(polls) // 2]
        wall = sorted(p[1] for p in polls)[len(polls) // 2]
        if_rows = snmpget(env, agent_target, ".1.3.6.1.2.1.2.1.0")
        print(f"agent polling cycle of {if_rows} links: {cpu} ms CPU, {wall} ms wall (median)")
        print(
            f"agent:  ifTable+ifXTable+nmLinkTable, {agent_n} var-binds in {agent_best:.3f}s "
            f"({agent_n / agent_best:,.0f}/s)"
        )
        print(
            f"snmpd:  ifTable, {snmpd_n} var-binds in {snmpd_best:.3f}s "
            f"({snmpd_n / snmpd_best:,.0f}/s)"
        )
        print(json.dumps({"agent_s": agent_best, "snmpd_s": snmpd_best, "poll_cpu_ms": cpu}))
        print(f"ratio: {agent_best / snmpd_best:.2f}")
        return 0
    finally:
        stop(agent)
        stop(snmpd)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
