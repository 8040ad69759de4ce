"""netmanager-agent as a service on a real hypervisor host: its configuration file
(``--config``), ``--check``, ``--install-unit`` and the shipped systemd unit.

The configuration is parsed in this process; ``--check``, ``--install-unit`` and an agent
started from a file run as subprocesses (the agent on 127.0.0.1, any free port, with the
in-memory backend, stopped by its PID).  ``--install-unit`` writes under a temporary
``--root``, never to /etc."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from snmp_agents.agent import main, parse_args
from snmp_agents.service import (
    CONFIG_KEYS,
    ConfigError,
    example_config,
    load_config,
    unit_word,
)
from tests.snmp.conftest import REPO, V3, Agent, Tools, write_credentials

UNIT = REPO / "snmp_agents" / "netmanager-agent.service"


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def agent_command() -> list[str]:
    """The installed console script when the venv has it, else the module."""
    script = Path(sys.executable).parent / "netmanager-agent"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "snmp_agents.agent"]


def run_agent(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*agent_command(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )


def run_check(
    config: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[int, dict[str, dict[str, Any]]]:
    """``--check --json`` of ``config``: the exit status and the checks by name."""
    done = run_agent("--check", "--config", str(config), "--json", *extra, env=env)
    assert done.returncode in (0, 1), f"exit {done.returncode}:\n{done.stdout}\n{done.stderr}"
    checks = json.loads(done.stdout)
    assert all(set(c) == {"check", "status", "detail", "hint", "required"} for c in checks)
    assert all(c["status"] in ("ok", "MISSING", "FAIL") for c in checks)
    by_name = {c["check"]: c for c in checks}
    assert len(by_name) == len(checks)
    not_ok = [c for c in checks if c["required"] and c["status"] != "ok"]
    assert done.returncode == (1 if not_ok else 0), not_ok
    return done.returncode, by_name


# --- the configuration file ------------------------------------------------------------


FULL = """\
listen = "127.0.0.1:16161"
credentials = "keys/snmp.toml"
state_dir = "/var/tmp/nm-agent-state"
libvirt_uri = "qemu:///system"
dom0 = "nmdom0"
backend = "memory"
log_level = "debug"
trap_receivers = ["192.0.2.1:16162", "192.0.2.2"]
poll_interval = 2
probe_kernel = false
sys_name = "hv1"
sys_location = "rack 3"
sys_contact = "netops@example.org"
"""


def test_a_configuration_file_sets_every_option(tmp_path: Path) -> None:
    config = write_config(tmp_path / "etc" / "agent.toml", FULL)
    args = parse_args(["--config", str(config)])
    assert args.listen == "127.0.0.1:16161"
    assert args.credentials == tmp_path / "etc" / "keys" / "snmp.toml"  # beside the file
    assert args.state_dir == Path("/var/tmp/nm-agent-state")
    assert args.libvirt_uri == "qemu:///system"
    assert args.dom0 == "nmdom0"
    assert args.backend == "memory"
    assert args.log_level == "debug"
    assert args.trap_receiver == ["192.0.2.1:16162", "192.0.2.2"]
    assert args.poll_interval == 2.0 and isinstance(args.poll_interval, float)
    assert args.probe_kernel is False
    assert (args.sys_name, args.sys_location, args.sys_contact) == (
        "hv1",
        "rack 3",
        "netops@example.org",
    )
    assert args.config_keys == list(CONFIG_KEYS)


def test_relative_paths_are_relative_to_the_file_not_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(
        tmp_path / "conf" / "agent.toml",
        'credentials = "snmp.toml"\nstate_dir = "../state/agent"\n',
    )
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    args = parse_args(["--config", "../conf/agent.toml"])
    assert args.credentials.resolve() == tmp_path / "conf" / "snmp.toml"
    assert args.state_dir.resolve() == tmp_path / "state" / "agent"
    # on the command line, relative to the working directory as always
    args = parse_args(["--config", "../conf/agent.toml", "--credentials", "mine.toml"])
    assert args.credentials == Path("mine.toml")


def test_options_given_on_the_command_line_override_the_file(tmp_path: Path) -> None:
    config = write_config(tmp_path / "agent.toml", FULL)
    args = parse_args(
        [
            "--config",
            str(config),
            "--listen",
            "127.0.0.1:0",
            "--libvirt",
            "test:///default",
            "--trap-receiver",
            "127.0.0.1:9",
            "--backend",
            "kernel",
            "--poll-interval",
            "7",
        ]
    )
    assert args.listen == "127.0.0.1:0"
    assert args.libvirt_uri == "test:///default"
    assert args.trap_receiver == ["127.0.0.1:9"]  # replaces the file's list
    assert args.backend == "kernel"
    assert args.poll_interval == 7.0
    assert args.sys_name == "hv1" and args.dom0 == "nmdom0"  # not given: the file's
    assert args.config_overridden == [
        "listen",
        "libvirt_uri",
        "backend",
        "trap_receivers",
        "poll_interval",
    ]


def test_a_file_defaults_to_the_kernel_backend_in_the_root_namespace(tmp_path: Path) -> None:
    config = write_config(tmp_path / "agent.toml", 'credentials = "c"\nstate_dir = "s"\n')
    args = parse_args(["--config", str(config)])
    assert (args.backend, args.dom0, args.libvirt_uri) == ("kernel", ".", None)
    assert args.listen == "127.0.0.1:161" and args.poll_interval == 5.0
    assert args.probe_kernel is True  # a real host's agent knows what its kernel lacks
    config.write_text('credentials = "c"\nstate_dir = "s"\nprobe_kernel = false\n')
    assert parse_args(["--config", str(config)]).probe_kernel is False
    args = parse_args(["--config", str(config), "--backend", "memory", "--dom0", "nm0"])
    assert (args.backend, args.dom0) == ("memory", "nm0")


def test_without_a_file_the_command_line_is_as_before(tmp_path: Path) -> None:
    args = parse_args(["--state-dir", str(tmp_path), "--credentials", "c.toml"])
    assert (args.backend, args.dom0, args.libvirt_uri, args.config) == ("memory", "", None, None)
    assert args.probe_kernel is False  # the manager probes the kernel of hosts it emulates
    assert args.listen == "127.0.0.1:161" and args.trap_receiver == []
    args = parse_args(["--state-dir", "s", "--credentials", "c", "--libvirt", "qemu:///system"])
    assert args.libvirt_uri == "qemu:///system"
    with pytest.raises(SystemExit) as exited:
        parse_args(["--credentials", "c.toml"])
    assert exited.value.code == 2


@pytest.mark.parametrize(
    ("text", "line", "needles"),
    [
        (
            'credentials = "c"\nlistne = "127.0.0.1:161"\n',
            2,
            ["unknown key 'listne'", "did you mean 'listen'?"],
        ),
        (
            'credentials = "c"\n\npoll_interval = "5"\n',
            3,
            ["'poll_interval' must be a number of seconds, not a string"],
        ),
        ("poll_interval = true\n", 1, ["'poll_interval' must be a number", "not a boolean"]),
        ("poll_interval = 0\n", 1, ["'poll_interval' must be more than 0 seconds"]),
        ('trap_receivers = "192.0.2.1"\n', 1, ["'trap_receivers' must be an array", "a string"]),
        ('trap_receivers = ["192.0.2.1:x"]\n', 1, ["'192.0.2.1:x' is not HOST[:PORT]"]),
        ('\nbackend = "xen"\n', 2, ["'backend' = 'xen' is not one of memory, kernel"]),
        ('listen = "nowhere"\n', 1, ["'listen': 'nowhere' is not ADDRESS:PORT"]),
        ("sys_name = 5\n", 1, ["'sys_name' must be a string, not an integer"]),
        ('probe_kernel = "yes"\n', 1, ["'probe_kernel' must be true or false, not a string"]),
        ('credentials = ""\n', 1, ["'credentials' must not be empty"]),
        ("[backend]\nname = 1\n", 1, ["'backend' must be a string, not a table"]),
        ('credentials = "c"\nstate_dir = \n', 2, ["not valid TOML: Invalid value"]),
        ('credentials = "c"\n[x\n', 2, ["not valid TOML"]),
        ('credentials = "c"\nsys_name = "unterminated\n', 2, ["not valid TOML"]),
    ],
)
def test_an_unusable_file_is_one_line_naming_file_line_and_problem_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, needles: list[str]
) -> None:
    state = tmp_path / "state"
    config = write_config(tmp_path / "agent.toml", f'state_dir = "{state}"\n' + text)
    assert main(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"netmanager-agent: error: {config}:{line + 1}"), err
    for needle in needles:
        assert needle in err
    assert not state.exists(), "nothing may start"


def test_a_file_that_cannot_be_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "none.toml")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'none.toml'}: no such file" in err and "--install-unit" in err
    assert main(["--config", str(tmp_path)]) == 2
    assert f"{tmp_path}: is a directory" in capsys.readouterr().err
    config = tmp_path / "latin1.toml"
    config.write_bytes(b'sys_name = "ok"\nsys_location = "M\xfcnchen"\n')
    assert main(["--config", str(config)]) == 2
    assert f"{config}:2: is not UTF-8 text" in capsys.readouterr().err
    assert main(["--check", "--config", str(tmp_path / "none.toml")]) == 2


def test_a_file_without_credentials_or_state_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "agent.toml", 'listen = "127.0.0.1:0"\n')
    assert main(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{config}: no 'state_dir' and no 'credentials'" in err
    # the command line may give what the file lacks
    args = parse_args(["--config", str(config), "--state-dir", "s", "--credentials", "c"])
    assert args.state_dir == Path("s")


def test_the_example_is_a_valid_file_that_documents_every_key() -> None:
    text = example_config().read_text()
    values = load_config(Path(str(example_config())))
    assert values["backend"] == "kernel" and values["libvirt_uri"] == "qemu:///system"
    for key in CONFIG_KEYS:
        assert re.search(rf"^(# )?{key} = ", text, re.M), f"{key} is not in the example"
    with pytest.raises(ConfigError):
        load_config(Path(str(example_config())).parent / "no-such-file.toml")


# --- the systemd unit and --install-unit ------------------------------------------------


def test_the_shipped_unit() -> None:
    text = UNIT.read_text()
    settings = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    for line in (
        "Type=simple",
        "ExecStart=/usr/local/bin/netmanager-agent --config /etc/netmanager/agent.toml",
        "Restart=on-failure",
        "After=network-online.target libvirtd.service virtqemud.service",
        "Wants=network-online.target",
        "KillMode=process",
        "WantedBy=multi-user.target",
    ):
        assert line in settings, line
    assert "KillMode=process" in text.split("[Service]")[1]


def test_unit_command_words_are_escaped_for_systemd() -> None:
    assert unit_word("/opt/nm/bin/netmanager-agent") == "/opt/nm/bin/netmanager-agent"
    assert unit_word("/etc/net manager/a%b$c.toml") == '"/etc/net manager/a%%b$$c.toml"'


def test_install_unit_writes_the_unit_and_never_overwrites_a_configuration(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    done = run_agent("--install-unit", "--root", str(root))
    assert done.returncode == 0, done.stderr
    unit = root / "etc/systemd/system/netmanager-agent.service"
    config_dir = root / "etc/netmanager"
    config = config_dir / "agent.toml"
    assert stat.S_IMODE(config_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    assert config.read_text() == example_config().read_text()
    text = unit.read_text()
    (exec_start,) = [ln for ln in text.splitlines() if ln.startswith("ExecStart=")]
    script, *rest = exec_start.removeprefix("ExecStart=").split()
    assert Path(script).is_absolute() and Path(script).is_file(), script
    assert rest[-2:] == ["--config", "/etc/netmanager/agent.toml"]
    assert "KillMode=process" in text and "Restart=on-failure" in text
    for needle in (str(unit), str(config), "systemctl daemon-reload && systemctl enable --now"):
        assert needle in done.stdout
    assert sorted(p.name for p in unit.parent.iterdir()) == [unit.name]

    config.write_text(config.read_text() + 'sys_name = "edited"\n')
    done = run_agent("--install-unit", "--root", str(root))
    assert done.returncode == 0, done.stderr
    assert f"kept {config}" in done.stdout
    assert config.read_text().endswith('sys_name = "edited"\n')

    other = run_agent("--install-unit", "--root", str(root), "--config", "/srv/nm/hv.toml")
    assert other.returncode == 0, other.stderr
    assert (root / "srv/nm/hv.toml").is_file()
    assert "--config /srv/nm/hv.toml" in unit.read_text()


# --- --check --------------------------------------------------------------------------


@pytest.fixture
def held_port() -> Iterator[int]:
    """A UDP port on 127.0.0.1 that this test holds."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def test_check_reports_readable_credentials_and_a_port_in_use(
    tmp_path: Path, held_port: int
) -> None:
    credentials = write_credentials(tmp_path / "snmp.toml", mode=0o644)
    state = tmp_path / "state"
    config = write_config(
        tmp_path / "agent.toml",
        f'listen = "127.0.0.1:{held_port}"\ncredentials = "snmp.toml"\nstate_dir = "{state}"\n',
    )
    status, checks = run_check(config)
    assert status == 1
    creds = checks["credentials"]
    assert creds["status"] == "FAIL" and creds["required"]
    assert f"{credentials}: mode 0644" in creds["detail"]
    assert creds["hint"] == f"chmod 600 {credentials}"
    listen = checks["listen"]
    assert listen["status"] == "FAIL" and f"127.0.0.1:{held_port}" in listen["detail"]
    assert f"port {held_port}" in listen["hint"]
    assert not state.exists(), "--check creates nothing"


def test_check_of_a_usable_configuration(tmp_path: Path) -> None:
    credentials = write_credentials(tmp_path / "snmp.toml")
    state = tmp_path / "var" / "agent"
    config = write_config(
        tmp_path / "agent.toml",
        f'listen = "127.0.0.1:0"\ncredentials = "snmp.toml"\nstate_dir = "{state}"\n',
    )
    _, checks = run_check(config)
    names = list(checks)
    assert names[:5] == ["config", "crypto", "credentials", "state_dir", "listen"]
    kernel = [
        "bridge",
        "vxlan",
        "8021q",
        "tbf",
        "htb",
        "ifb",
        "netem",
        "iptables",
        "ebtables",
    ]
    assert names[5:14] == [f"kernel:{k}" for k in kernel]
    assert names[14:] == ["ipv6", "libvirt-python", "libvirt"]
    for name in ("bridge", "tbf", "iptables", "ebtables"):
        assert checks[f"kernel:{name}"]["required"]
    for name in ("htb", "ifb", "netem"):
        assert not checks[f"kernel:{name}"]["required"]
    # vxlan or 8021q: those that work are required, and both when neither works
    spanning = [checks[f"kernel:{n}"] for n in ("vxlan", "8021q")]
    neither = all(c["status"] != "ok" for c in spanning)
    assert all(c["required"] == (neither or c["status"] == "ok") for c in spanning)
    assert checks["config"]["status"] == "ok" and str(config) in checks["config"]["detail"]
    assert checks["crypto"]["status"] == "ok"
    creds = checks["credentials"]
    if os.geteuid() == 0:
        assert creds["status"] == "ok", creds
        assert "mode 0600, owner root" in creds["detail"] and "nmtest" in creds["detail"]
    else:
        assert creds["status"] == "FAIL" and "not root" in creds["detail"]
    assert "test-auth-key" not in json.dumps(creds) and str(credentials) in creds["detail"]
    assert checks["state_dir"]["status"] == "ok"
    assert "does not exist yet" in checks["state_dir"]["detail"]
    assert not state.exists() and not state.parent.exists(), "--check creates nothing"
    assert checks["listen"]["status"] == "ok"
    if checks["libvirt-python"]["status"] == "ok":
        assert checks["libvirt"]["status"] == "MISSING"
        assert "no libvirt URI configured" in checks["libvirt"]["detail"]

    # the same as lines: one per check, then the verdict
    done = run_agent("--check", "--config", str(config))
    lines = done.stdout.splitlines()
    assert len(lines) == len(checks) + 1
    for line, name in zip(lines, checks, strict=False):
        assert re.match(rf"(ok|MISSING|FAIL) +{re.escape(name)} ", line), line
    assert lines[-1].startswith("ready" if done.returncode == 0 else "not ready")


def test_check_opens_the_libvirt_uri(tmp_path: Path) -> None:
    pytest.importorskip(
        "libvirt", reason="libvirt-python is not installed (pip install 'netmanager[libvirt]')"
    )
    write_credentials(tmp_path / "snmp.toml")
    config = write_config(
        tmp_path / "agent.toml",
        'listen = "127.0.0.1:0"\ncredentials = "snmp.toml"\nstate_dir = "state"\n'
        'libvirt_uri = "test:///default"\n',
    )
    _, checks = run_check(config)
    assert checks["libvirt-python"]["status"] == "ok"
    libvirt = checks["libvirt"]
    assert libvirt["status"] == "ok", libvirt
    assert "test:///default: hypervisor TEST" in libvirt["detail"]
    # an URI that does not open: libvirt's own error, on the line
    _, checks = run_check(config, "--libvirt", "bogus:///nowhere")
    assert checks["libvirt"]["status"] == "FAIL"
    assert checks["libvirt"]["detail"].startswith("bogus:///nowhere: ")


def test_check_without_libvirt_python_says_how_to_install_it(tmp_path: Path) -> None:
    hidden = tmp_path / "hide"
    hidden.mkdir()
    (hidden / "libvirt.py").write_text('raise ImportError("libvirt hidden by the test")\n')
    config = write_config(tmp_path / "agent.toml", 'libvirt_uri = "test:///default"\n')
    env = {**os.environ, "PYTHONPATH": str(hidden)}
    status, checks = run_check(config, env=env)
    assert status == 1
    module = checks["libvirt-python"]
    assert module["status"] == "MISSING" and module["required"]
    assert "libvirt hidden by the test" in module["detail"]
    assert "pip install 'netmanager[libvirt]'" in module["hint"]
    assert "apt install libvirt-dev pkg-config gcc" in module["hint"]
    assert checks["libvirt"]["status"] == "MISSING"
    # nothing configured: each says so
    assert checks["credentials"]["status"] == "MISSING"
    assert checks["state_dir"]["status"] == "MISSING"


# --- an agent started from a configuration file ------------------------------------------


@dataclass
class ConfiguredAgent(Agent):
    """An agent whose only option is ``--config``."""

    config: Path = Path()

    def command(self, listen: str) -> list[str]:
        return [sys.executable, "-m", "snmp_agents.agent", "--config", str(self.config)]


def test_an_agent_started_from_a_file_answers_snmpv3(tmp_path: Path, tools: Tools) -> None:
    config = write_config(
        tmp_path / "etc" / "agent.toml",
        'listen = "127.0.0.1:0"\n'
        'credentials = "snmp.toml"\n'
        'state_dir = "../state"\n'
        'backend = "memory"\n'
        "poll_interval = 30\n"
        'sys_name = "hv-from-file"\n'
        'sys_location = "rack 3"\n',
    )
    credentials = write_credentials(tmp_path / "etc" / "snmp.toml")
    agent = ConfiguredAgent(tmp_path / "state", credentials, config=config)
    try:
        agent.start()  # the state directory, relative to the file, is created and used
        tools.target = agent.target
        assert tools.get(V3, "SNMPv2-MIB::sysName.0") == "hv-from-file"
        assert tools.get(V3, "SNMPv2-MIB::sysLocation.0") == "rack 3"
        assert (tmp_path / "state" / "engine.json").exists()
    finally:
        agent.stop()
    assert agent.proc is not None and agent.proc.returncode == 0, agent.log_text()
