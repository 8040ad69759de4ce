"""Fixtures for the agent tests: the agent as a subprocess, net-snmp's tools, snmptrapd,
and network namespaces of our own (privileged tests only).

Every process started here is ended by its PID in a finalizer; every namespace is
deleted in a finalizer, even when the test fails.  Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MIBS = REPO / "netmanager" / "snmp" / "mibs"
MIB_FLAGS = ["-M", f"+{MIBS}", "-m", "NETMANAGER-MIB:IF-MIB"]

READ_COMMUNITY = "nm-test-read"
USER = "nmtest"
AUTH_KEY = "test-auth-key-0001"
PRIV_KEY = "test-priv-key-0001"
READ_USER = "nmmonitor"
READ_KEY = "test-read-key-0001"
V2C = ["-v2c", "-c", READ_COMMUNITY]
V3_READ = ["-v3", "-l", "authNoPriv", "-u", READ_USER, "-a", "SHA-512", "-A", READ_KEY]
V3 = [
    "-v3",
    "-l",
    "authPriv",
    "-u",
    USER,
    "-a",
    "SHA-256",
    "-A",
    AUTH_KEY,
    "-x",
    "AES",
    "-X",
    PRIV_KEY,
]

CREDENTIALS = f"""\
[read]
community = "{READ_COMMUNITY}"
user = "{READ_USER}"
auth_protocol = "SHA-512"
auth_key = "{READ_KEY}"

[write]
user = "{USER}"
auth_protocol = "SHA-256"
auth_key = "{AUTH_KEY}"
priv_protocol = "AES-128"
priv_key = "{PRIV_KEY}"
"""


def need_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(
            f"needs {', '.join(missing)} (Debian packages snmp, snmpd, snmptrapd, smitools)"
        )


def need_root() -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to create network namespaces")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def tool_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """net-snmp's tools without the user's or the system's config, persistent files in tmp."""
    home = tmp_path_factory.mktemp("netsnmp")
    env = dict(os.environ)
    env["SNMPCONFPATH"] = str(home)
    env["SNMP_PERSISTENT_DIR"] = str(home / "persist")
    # made beforehand: the first run of a tool would announce them on stderr
    (home / "persist" / "cert_indexes").mkdir(parents=True)
    env.pop("MIBS", None)
    env.pop("MIBDIRS", None)
    return env


@dataclass
class Tools:
    env: dict[str, str]
    target: str = ""

    def run(
        self, tool: str, *args: str, check: bool = False, timeout: float = 20
    ) -> subprocess.CompletedProcess[str]:
        cmd = [tool, *MIB_FLAGS, "-t", "2", "-r", "1", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def get(self, auth: list[str], *oids: str) -> str:
        return self.run("snmpget", *auth, "-OqvU", self.target, *oids, check=True).stdout.strip()


@dataclass
class Agent:
    """An agent subprocess; stopped by PID in the fixture's finalizer."""

    state_dir: Path
    credentials: Path
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    log: Path | None = None

    @property
    def target(self) -> str:
        return f"udp:127.0.0.1:{self.port}"

    def command(self, listen: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "snmp_agents.agent",
            "--listen",
            listen,
            "--state-dir",
            str(self.state_dir),
            "--credentials",
            str(self.credentials),
            *self.extra,
        ]

    def start(self, listen: str = "127.0.0.1:0", timeout: float = 15) -> Agent:
        assert self.proc is None or self.proc.poll() is not None, "agent already running"
        info = self.state_dir / "agent.json"
        info.unlink(missing_ok=True)
        self.log = self.state_dir.parent / f"agent-{self.state_dir.name}.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(listen), stdout=log, stderr=subprocess.STDOUT, cwd=REPO
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"agent exited with {self.proc.returncode}:\n{self.log_text()}"
                )
            try:
                doc = json.loads(info.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                time.sleep(0.05)
                continue
            if doc.get("pid") == self.proc.pid:
                self.port = int(doc["port"])
                return self
            time.sleep(0.05)
        raise AssertionError(f"agent not ready after {timeout}s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def backend_state(self) -> dict[str, object]:
        return json.loads((self.state_dir / "memory-backend.json").read_text())


def write_credentials(path: Path, text: str = CREDENTIALS, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def credentials(tmp_path: Path) -> Path:
    return write_credentials(tmp_path / "snmp.toml")


@pytest.fixture
def make_agent(tmp_path: Path, credentials: Path) -> Iterator[Callable[..., Agent]]:
    """Factory for agents started in this test; all stopped at the end."""
    started: list[Agent] = []

    def factory(*extra: str, name: str = "agent", start: bool = True) -> Agent:
        agent = Agent(tmp_path / name, credentials, list(extra))
        agent.state_dir.mkdir(exist_ok=True)
        started.append(agent)
        return agent.start() if start else agent

    yield factory
    for agent in started:
        agent.stop(signal.SIGKILL)


@pytest.fixture
def tools(tool_env: dict[str, str]) -> Tools:
    need_tools("snmpget", "snmpset", "snmpwalk", "snmpbulkwalk", "snmptable")
    return Tools(tool_env)


@dataclass
class Namespace:
    name: str

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", "-n", self.name, *args], check=True, capture_output=True)


@pytest.fixture
def netns() -> Iterator[Namespace]:
    """A namespace of our own (unique nmsnmp<hex> name), deleted at the end."""
    need_root()
    name = f"nmsnmp{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        yield Namespace(name)
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@dataclass
class TrapReceiver:
    port: int
    log: Path
    proc: subprocess.Popen[bytes]

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for(self, needle: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if needle in text:
                return text
            time.sleep(0.1)
        raise AssertionError(f"no {needle!r} received within {timeout}s; got:\n{self.text()}")

    def wait_for_line(self, *needles: str, timeout: float = 10) -> str:
        """Wait for one notification (one logged line) that contains every needle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if any(all(n in line for n in needles) for line in text.splitlines()):
                return text
            time.sleep(0.1)
        raise AssertionError(f"no line with {needles!r} within {timeout}s; got:\n{self.text()}")


@pytest.fixture
def snmptrapd(tmp_path: Path, tool_env: dict[str, str]) -> Iterator[TrapReceiver]:
    """snmptrapd on a free loopback port with its own config, logging to a file."""
    need_tools("snmptrapd")
    conf = tmp_path / "snmptrapd.conf"
    conf.write_text("disableAuthorization yes\ndoNotRetainNotificationLogs yes\n")
    log = tmp_path / "traps.log"
    port = free_udp_port()
    cmd = [
        shutil.which("snmptrapd") or "snmptrapd",
        "-f",
        "-C",
        "-c",
        str(conf),
        "-Lf",
        str(log),
        "-On",
        f"--persistentDir={tmp_path / 'trapd-persist'}",
        *MIB_FLAGS,
        f"udp:127.0.0.1:{port}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=tool_env)
    receiver = TrapReceiver(port, log, proc)
    try:
        receiver.wait_for("NET-SNMP version", timeout=10)
        yield receiver
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
