"""The agent as a service on a real hypervisor host: its configuration file, its checks,
its systemd unit.

- ``--config FILE``: the TOML file (keys: ``agent.toml.example``) that sets the options of
  an agent run by systemd; :func:`load_config` reads it, ``parse_args`` in ``agent.py``
  lays the command line over it.
- ``--check``: whether this host can run the agent as configured (credentials, state
  directory, port, kernel features, libvirt), starting nothing and changing nothing.
- ``--install-unit``: the shipped ``netmanager-agent.service`` with its ExecStart naming
  this agent, and the example configuration where none exists.

``agent.py`` (the agent itself and its command line) imports this module, never the other
way round: what both need lives here, :class:`StartupError` (which :class:`ConfigError`
refines), :func:`check_crypto` (at start-up and as a ``--check``) and :func:`parse_listen`.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import json
import math
import os
import re
import shlex
import signal
import socket
import stat
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from netmanager.snmp.credentials import CredentialsError, load_credentials
from netmanager.statedir import read_json

# --- why the agent cannot start (agent.py raises these too) ---------------------------


class StartupError(Exception):
    """The agent cannot start; the message is the whole explanation."""


def check_crypto() -> None:
    """pysnmp needs ``cryptography`` for AES but does not declare it: without it every
    authPriv request fails with a decryption error and nothing is logged."""
    try:
        from cryptography.hazmat.decrepit.ciphers.modes import CFB
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
        from pysnmp.proto.secmod.rfc3826.priv import aes

        if aes.PysnmpCryptoError:
            raise ImportError("pysnmp could not import cryptography")
        key, iv, block = bytes(range(16)), bytes(16), b"netmanager-check"
        enc = Cipher(algorithms.AES(key), CFB(iv)).encryptor()
        secret = enc.update(block) + enc.finalize()
        dec = Cipher(algorithms.AES(key), CFB(iv)).decryptor()
        if dec.update(secret) + dec.finalize() != block:
            raise ValueError("AES round trip gave a different block")
    except Exception as exc:
        raise StartupError(
            f"AES privacy is unavailable ({exc}); install the 'cryptography' package "
            "(pip install 'cryptography>=41')"
        ) from exc


# --- the configuration file (--config) ------------------------------------------------

DEFAULT_CONFIG = Path("/etc/netmanager/agent.toml")
EXAMPLE_CONFIG = "agent.toml.example"
BACKENDS = ("memory", "kernel")
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(StartupError):
    """The configuration file is unusable: the file (and line), what is wrong, a hint."""

    def __init__(
        self,
        path: Path,
        message: str,
        hint: str = "",
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        where = str(path) + (f":{line}" if line else "") + (f":{column}" if line and column else "")
        super().__init__(f"{where}: {message}" + (f"; {hint}" if hint else ""))
        self.path = path
        self.line = line


@dataclass(frozen=True)
class ConfigKey:
    """A key of the configuration file: the option (argument name) it sets, and its kind:
    ``text`` (any string), ``name`` (a non-empty string), ``path`` (relative to the file's
    directory), ``listen`` (ADDRESS:PORT), ``seconds`` (a number > 0), ``bool``, ``endpoints`` (an
    array of HOST[:PORT]) or ``choice`` (one of ``choices``)."""

    dest: str
    kind: str
    choices: tuple[str, ...] = ()


CONFIG_KEYS: dict[str, ConfigKey] = {
    "listen": ConfigKey("listen", "listen"),
    "credentials": ConfigKey("credentials", "path"),
    "state_dir": ConfigKey("state_dir", "path"),
    "libvirt_uri": ConfigKey("libvirt_uri", "name"),
    "dom0": ConfigKey("dom0", "name"),
    "backend": ConfigKey("backend", "choice", BACKENDS),
    "log_level": ConfigKey("log_level", "choice", LOG_LEVELS),
    "trap_receivers": ConfigKey("trap_receiver", "endpoints"),
    "poll_interval": ConfigKey("poll_interval", "seconds"),
    "probe_kernel": ConfigKey("probe_kernel", "bool"),
    "sys_name": ConfigKey("sys_name", "text"),
    "sys_location": ConfigKey("sys_location", "text"),
    "sys_contact": ConfigKey("sys_contact", "text"),
}

#: what an agent run from a configuration file has unless the file or the command line
#: says otherwise: it is a real host's, whose dom0 is the root namespace
CONFIG_DEFAULTS: dict[str, Any] = {"backend": "kernel", "dom0": ".", "probe_kernel": True}


def example_config() -> Any:
    """The commented example configuration shipped with the package (a Traversable)."""
    return resources.files("snmp_agents").joinpath(EXAMPLE_CONFIG)


def parse_listen(text: str) -> tuple[str, int]:
    """'ADDRESS:PORT' -> (address, port); ValueError naming the text otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"'{text}' is not ADDRESS:PORT (a port from 0 to 65535; 0: any free)")
    return host, int(port)


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"


def _key_line(text: str, key: str) -> int | None:
    """The line where ``key`` is set (or its table opens), if it can be found."""
    name = re.escape(key)
    found = re.search(
        rf"""^[ \t]*(?:\[+[ \t]*)?(?:{name}|"{name}"|'{name}')[ \t]*[=.\]]""", text, re.M
    )
    return text.count("\n", 0, found.start()) + 1 if found else None


def _toml_error(exc: tomllib.TOMLDecodeError, text: str) -> tuple[str, int, int | None]:
    """tomllib's message and where it points (Python 3.11 puts that in the message)."""
    message = str(exc)
    found = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", message, re.S)
    if found:
        return found.group(1), int(found.group(2)), int(found.group(3))
    found = re.fullmatch(r"(.*) \(at end of document\)", message, re.S)
    if found:
        return f"{found.group(1)} (at the end of the file)", max(1, len(text.splitlines())), None
    return message, 1, None


def _config_value(
    path: Path, key: str, spec: ConfigKey, value: object, base: Path, line: int | None
) -> Any:
    def wrong(expected: str) -> ConfigError:
        return ConfigError(
            path,
            f"'{key}' must be {expected}, not {_toml_type(value)}",
            f"see {example_config()}",
            line,
        )

    if spec.kind == "seconds":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong("a number of seconds")
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(path, f"'{key}' must be more than 0 seconds, not {value}", "", line)
        return float(value)
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if spec.kind == "endpoints":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong('an array of "HOST[:PORT]" strings')
        for item in value:
            host, sep, port = item.rpartition(":")
            if not item or (sep and (not host or not port.isdigit() or not 0 < int(port) < 65536)):
                raise ConfigError(
                    path, f"'{key}': '{item}' is not HOST[:PORT]", 'e.g. "192.0.2.1:162"', line
                )
        return list(value)
    if not isinstance(value, str):
        raise wrong("a string")
    if spec.kind == "choice":
        if value not in spec.choices:
            raise ConfigError(
                path, f"'{key}' = '{value}' is not one of {', '.join(spec.choices)}", "", line
            )
        return value
    if spec.kind == "text":
        return value
    if not value:
        raise ConfigError(path, f"'{key}' must not be empty", f"see {example_config()}", line)
    if spec.kind == "path":
        given = Path(value)
        return given if given.is_absolute() else base / given
    if spec.kind == "listen":
        try:
            parse_listen(value)
        except ValueError as exc:
            raise ConfigError(path, f"'{key}': {exc}", 'e.g. "192.0.2.10:161"', line) from None
    return value


def load_config(path: Path) -> dict[str, Any]:
    """The options a configuration file sets, by argument name (``dest``); relative paths
    are relative to the file's directory.  ConfigError when the file is unusable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            path, "no such file", "netmanager-agent --install-unit writes one from the example"
        ) from None
    except IsADirectoryError:
        raise ConfigError(path, "is a directory, not a configuration file") from None
    except PermissionError:
        raise ConfigError(
            path, "not readable by this user", "the service runs as root: run as root"
        ) from None
    except OSError as exc:
        raise ConfigError(path, f"cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            path, "is not UTF-8 text", "", raw.count(b"\n", 0, exc.start) + 1
        ) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message, at, column = _toml_error(exc, text)
        raise ConfigError(
            path, f"not valid TOML: {message}", f"see {example_config()}", at, column
        ) from None
    base = path.absolute().parent
    values: dict[str, Any] = {}
    for key, value in doc.items():
        line = _key_line(text, key)
        spec = CONFIG_KEYS.get(key)
        if spec is None:
            close = difflib.get_close_matches(key, list(CONFIG_KEYS), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(
                path,
                f"unknown key '{key}'",
                f"{hint}the keys are {', '.join(CONFIG_KEYS)}",
                line,
            )
        values[spec.dest] = _config_value(path, key, spec, value, base, line)
    return values


# --- --check: can this host run the agent as configured? ------------------------------


@dataclass(frozen=True)
class Check:
    """One line of ``--check``: status ``ok``, ``MISSING`` (not there: not installed,
    not configured, not in this kernel) or ``FAIL`` (there, but does not work)."""

    check: str
    status: str
    detail: str
    hint: str = ""
    required: bool = True


OK, MISSING, FAIL = "ok", "MISSING", "FAIL"

#: the kernel features a host needs (True), may lack (False), or needs one of (None:
#: VXLAN or 802.1Q, for networks that span hosts), with how to get each
KERNEL_CHECKS: tuple[tuple[str, bool | None, str], ...] = (
    ("bridge", True, "modprobe bridge"),
    ("vxlan", None, "modprobe vxlan"),
    ("8021q", None, "modprobe 8021q (VLAN underlay)"),
    ("tbf", True, "modprobe sch_tbf"),
    ("htb", False, "modprobe sch_htb"),
    ("ifb", False, "modprobe ifb"),
    ("netem", False, "modprobe sch_netem (latency, jitter, loss)"),
    ("iptables", True, "apt install iptables"),
    ("ebtables", True, "apt install ebtables (or iptables, whose ebtables-nft will do)"),
)
SPANNING = ("vxlan", "8021q")
LIBVIRT_HINT = (
    "pip install 'netmanager[libvirt]' into the agent's environment; it builds against "
    "libvirt: apt install libvirt-dev pkg-config gcc python3-dev"
)


def check_crypto_status() -> Check:
    try:
        check_crypto()
    except StartupError as exc:
        missing = isinstance(exc.__cause__, ImportError)
        return Check(
            "crypto",
            MISSING if missing else FAIL,
            f"SNMPv3 privacy (AES) does not work: {exc.__cause__}",
            "pip install 'cryptography>=41' into the agent's environment",
        )
    import cryptography

    return Check(
        "crypto", OK, f"SNMPv3 privacy (AES) works, cryptography {cryptography.__version__}"
    )


def check_credentials(path: Path | None) -> Check:
    name = "credentials"
    if path is None:
        return Check(
            name,
            MISSING,
            "no credentials file configured",
            'set credentials = "/etc/netmanager/snmp.toml" in the configuration (or '
            "--credentials FILE)",
        )
    try:
        st = path.stat()
    except FileNotFoundError:
        return Check(
            name,
            MISSING,
            f"{path}: no such file",
            f"write the [write] user and keys the manager has for this host (real.xml's "
            f"<agent credentials> or <snmp credentials>) to {path}, then chmod 600 {path}",
        )
    except OSError as exc:
        return Check(name, FAIL, f"{path}: {exc.strerror}", "run --check as root")
    mode = stat.S_IMODE(st.st_mode)
    if not stat.S_ISREG(st.st_mode):
        return Check(name, FAIL, f"{path}: not a regular file", "")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return Check(
            name,
            FAIL,
            f"{path}: mode {mode:04o} lets other users read the keys (the agent refuses it)",
            f"chmod 600 {path}",
        )
    if st.st_uid != 0:
        return Check(
            name,
            FAIL,
            f"{path}: mode {mode:04o}, owned by uid {st.st_uid}, not root: that user may change "
            "the keys of a service that runs as root",
            f"chown root:root {path}",
        )
    if not os.access(path, os.R_OK):
        return Check(
            name,
            FAIL,
            f"{path}: mode {mode:04o}, owner root, not readable by this user",
            "run --check as root (the service runs as root)",
        )
    try:
        creds = load_credentials(path)
    except CredentialsError as exc:
        return Check(name, FAIL, str(exc), "see netmanager/snmp/credentials.py for the format")
    w = creds.write
    read = "a [read] community" if creds.community else "no [read] community"
    return Check(
        name,
        OK,
        f"{path}: mode {mode:04o}, owner root; [write] user {w.user} "
        f"({w.auth_protocol}/{w.priv_protocol}), {read}",
    )


def _agent_using(state_dir: Path) -> str:
    doc = read_json(state_dir / "agent.json", {}) or {}
    pid = doc.get("pid")
    if isinstance(pid, int) and Path(f"/proc/{pid}").exists():
        return f"; in use by the running agent (pid {pid}, port {doc.get('port')})"
    return ""


def check_state_dir(path: Path | None) -> Check:
    name = "state_dir"
    if path is None:
        return Check(
            name,
            MISSING,
            "no state directory configured",
            'set state_dir = "/var/lib/netmanager-agent" in the configuration (or --state-dir DIR)',
        )
    if path.exists():
        if not path.is_dir():
            return Check(name, FAIL, f"{path}: exists and is not a directory", "")
        if not os.access(path, os.W_OK | os.X_OK):
            return Check(name, FAIL, f"{path}: not writable by this user", "run --check as root")
        mode = stat.S_IMODE(path.stat().st_mode)
        return Check(name, OK, f"{path}: exists, mode {mode:04o}, writable{_agent_using(path)}")
    ancestor = path.absolute().parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return Check(name, FAIL, f"{path}: cannot be created: {ancestor} is not a directory", "")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return Check(
            name,
            FAIL,
            f"{path}: does not exist, and {ancestor} is not writable by this user",
            f"install -d -m 0700 {path} (as root), or run --check as root",
        )
    return Check(
        name, OK, f"{path}: does not exist yet; the agent creates it (mode 0700) in {ancestor}"
    )


def check_listen(listen: str) -> Check:
    name = "listen"
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        return Check(name, FAIL, str(exc), 'e.g. listen = "192.0.2.10:161"')
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((host, port))
    except OSError as exc:
        code = exc.errno
        hint = ""
        if code == errno.EADDRINUSE:
            hint = (
                f"another process holds UDP port {port} (ss -ulpn 'sport = :{port}' names it; "
                "the agent's service already running?), or choose another port"
            )
        elif code == errno.EACCES:
            hint = f"port {port} is below 1024: only root may bind it (the service runs as root)"
        elif code == errno.EADDRNOTAVAIL:
            hint = f"{host} is not an address of this host (ip -brief address)"
        return Check(
            name, FAIL, f"cannot listen on {host}:{port} (UDP): {exc.strerror or exc}", hint
        )
    except (OverflowError, UnicodeError) as exc:
        return Check(name, FAIL, f"cannot listen on {listen}: {exc}", "")
    return Check(name, OK, f"UDP {host or '*'}:{port} is free (bound and released)")


def _absent(detail: str) -> bool:
    return (
        detail.startswith("not in this kernel")
        or "not installed" in detail
        or "Operation not supported" in detail
    )


def check_kernel() -> list[Check]:
    """The kernel features, tried in a throwaway namespace that the probe removes (the
    probe of ``netmanager doctor``).  The kernel may load modules (vxlan, sch_netem, ...)
    as it is asked for them, as it would at the first apply."""
    try:
        from netmanager.kernel.features import probe

        found = {f.name: f for f in probe()}
    except Exception as exc:
        return [
            Check(f"kernel:{name}", FAIL, f"the probe failed: {exc}", "", required is not False)
            for name, required, _ in KERNEL_CHECKS
        ]
    spanning = [n for n in SPANNING if n in found and found[n].available]
    checks = []
    for name, required, how in KERNEL_CHECKS:
        # of vxlan and 8021q, those that work are required; both when neither does
        need = (not spanning or name in spanning) if required is None else required
        feature = found.get(name)
        if feature is None:
            checks.append(Check(f"kernel:{name}", FAIL, "not probed", "", need))
            continue
        if feature.available:
            checks.append(
                Check(f"kernel:{name}", OK, f"{feature.detail}: {feature.enables}", "", need)
            )
            continue
        detail = f"{feature.detail}; needed for {feature.enables}"
        if required is None and spanning:
            detail += f" (networks spanning hosts can use {', '.join(spanning)})"
        hint = how
        if required is None and not spanning:
            hint = f"netmanager needs vxlan or 8021q: {how}"
        if os.geteuid() != 0:
            hint = "run --check as root: features are tried for real, in a throwaway namespace"
        status = MISSING if _absent(feature.detail) else FAIL
        checks.append(Check(f"kernel:{name}", status, detail, hint, need))
    return checks


def check_ipv6() -> Check:
    """netmanager turns IPv6 off or on per namespace; a kernel without IPv6 (booted with
    ipv6.disable=1) only makes it skip those settings, hence optional."""
    values = {}
    for scope in ("all", "default"):
        path = Path(f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6")
        try:
            values[scope] = path.read_text().strip()
        except FileNotFoundError:
            return Check(
                "ipv6",
                MISSING,
                f"{path} does not exist: IPv6 is off in this kernel; netmanager skips the "
                "IPv6 settings of its namespaces",
                "remove ipv6.disable=1 from the kernel command line",
                required=False,
            )
        except OSError as exc:
            return Check("ipv6", FAIL, f"{path}: {exc.strerror}", "", required=False)
    return Check(
        "ipv6",
        OK,
        f"net.ipv6.conf.all.disable_ipv6 = {values['all']}, "
        f"net.ipv6.conf.default.disable_ipv6 = {values['default']}",
        required=False,
    )


def _libvirt_version(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def check_libvirt(uri: str | None) -> list[Check]:
    """libvirt-python and a read-only connection to ``uri`` (this host's VMs are libvirt
    domains: both are required)."""
    try:
        import libvirt
    except ImportError as exc:
        return [
            Check("libvirt-python", MISSING, f"not importable: {exc}", LIBVIRT_HINT),
            Check("libvirt", MISSING, "not tried: libvirt-python is missing", LIBVIRT_HINT),
        ]
    # libvirt prints its errors on stderr unless a handler takes them; they are reported
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    module = Check(
        "libvirt-python",
        OK,
        f"importable, libvirt library {_libvirt_version(libvirt.getVersion())}",
    )
    if not uri:
        return [
            module,
            Check(
                "libvirt",
                MISSING,
                "no libvirt URI configured",
                'set libvirt_uri = "qemu:///system" in the configuration (or --libvirt URI)',
            ),
        ]
    try:
        conn = libvirt.openReadOnly(uri)
    except libvirt.libvirtError as exc:
        return [
            module,
            Check(
                "libvirt",
                FAIL,
                f"{uri}: {exc.get_error_message()}",
                "is the libvirt daemon running (systemctl status libvirtd virtqemud)? "
                f"virsh -c {uri} list must work",
            ),
        ]
    try:
        kind = conn.getType()
        version = _libvirt_version(conn.getVersion())
        uri_found = conn.getURI()
    except libvirt.libvirtError as exc:
        return [module, Check("libvirt", FAIL, f"{uri}: {exc.get_error_message()}", "")]
    finally:
        conn.close()
    return [module, Check("libvirt", OK, f"{uri_found}: hypervisor {kind} {version}")]


def run_checks(args: argparse.Namespace) -> list[Check]:
    checks = []
    if args.config is not None:
        detail = f"{args.config}: sets {', '.join(args.config_keys) or 'nothing'}"
        if args.config_overridden:
            detail += f"; the command line overrides {', '.join(args.config_overridden)}"
        checks.append(Check("config", OK, detail))
    checks.append(check_crypto_status())
    checks.append(check_credentials(args.credentials))
    checks.append(check_state_dir(args.state_dir))
    checks.append(check_listen(args.listen))
    checks += check_kernel()
    checks.append(check_ipv6())
    checks += check_libvirt(args.libvirt_uri)
    return checks


def check_main(args: argparse.Namespace) -> int:
    # SIGTERM ends --check as Ctrl-C does, through the probe's finally (which removes its
    # throwaway namespace), not at once
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(128 + signal.SIGTERM))
    checks = run_checks(args)
    failing = [c.check for c in checks if c.required and c.status != OK]
    if args.json:
        print(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        width = max(len(c.check) for c in checks)
        for c in checks:
            optional = "" if c.required else "(optional) "
            line = f"{c.status:<7} {c.check:<{width}}  {optional}{c.detail}"
            if c.status != OK and c.hint:
                line += f"; hint: {c.hint}"
            print(line)
        if failing:
            print(f"not ready: {len(failing)} required check(s) not ok: {', '.join(failing)}")
        else:
            print("ready: every required check is ok")
    return 1 if failing else 0


# --- --install-unit: the systemd unit of a real host's agent -------------------------------

UNIT_NAME = "netmanager-agent.service"
UNIT_DIR = Path("/etc/systemd/system")


def agent_command() -> list[str]:
    """How systemd is to start this very agent: the netmanager-agent script that runs
    now, else the one beside this Python, else this Python with ``-m``."""
    script = Path(sys.argv[0])
    if script.name == "netmanager-agent" and script.is_file():
        return [str(script.resolve())]
    beside = Path(sys.executable).parent / "netmanager-agent"
    if beside.is_file():
        return [str(beside.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "snmp_agents.agent"]


def unit_word(word: str) -> str:
    """One word of a systemd command line: specifiers and variables escaped, quoted when
    it holds a blank, a quote or a backslash."""
    word = word.replace("%", "%%").replace("$", "$$")
    if re.search(r"[\s\"'\\]", word):
        word = '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def unit_text(command: Sequence[str], config: Path) -> str:
    """The shipped unit with its ExecStart running ``command --config config``."""
    template = resources.files("snmp_agents").joinpath(UNIT_NAME).read_text()
    exec_start = "ExecStart=" + " ".join(unit_word(w) for w in [*command, "--config", str(config)])
    lines = [exec_start if ln.startswith("ExecStart=") else ln for ln in template.splitlines()]
    return "\n".join(lines) + "\n"


def install_unit(args: argparse.Namespace) -> int:
    root = Path(os.path.abspath(args.root or "/"))
    config = Path(os.path.abspath(args.config or DEFAULT_CONFIG))

    def under(path: Path) -> Path:
        return root / path.relative_to("/")

    command = agent_command()
    unit = under(UNIT_DIR / UNIT_NAME)
    config_dir, config_file = under(config.parent), under(config)
    said = []
    try:
        unit.parent.mkdir(parents=True, exist_ok=True)
        text = unit_text(command, config)
        replaced = unit.exists()
        partial = unit.with_name(f".{UNIT_NAME}.partial")
        partial.write_text(text)
        partial.chmod(0o644)
        os.replace(partial, unit)
        said.append(f"{'replaced' if replaced else 'wrote'} {unit}")
        said.append(f"  {next(ln for ln in text.splitlines() if ln.startswith('ExecStart='))}")
        if not config_dir.exists():
            config_dir.mkdir(parents=True, mode=0o700)
            config_dir.chmod(0o700)
            said.append(f"created {config_dir} (mode 0700)")
        try:
            fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            said.append(f"kept {config_file}: it exists (never overwritten)")
        else:
            with os.fdopen(fd, "w") as f:
                os.fchmod(f.fileno(), 0o600)
                f.write(example_config().read_text())
            said.append(f"wrote {config_file} (mode 0600) from the example")
    except OSError as exc:
        where = exc.filename or unit
        print(
            f"netmanager-agent: error: {where}: {exc.strerror or exc}"
            + ("; run as root" if exc.errno in (errno.EACCES, errno.EPERM) else ""),
            file=sys.stderr,
        )
        return 2
    print("\n".join(said))
    print(
        "next:\n"
        f"  edit {config} (listen, credentials, state_dir, libvirt_uri) and put this host's "
        "SNMP credentials where 'credentials' says (mode 0600, owner root)\n"
        f"  {shlex.join([*command, '--check', '--config', str(config)])}\n"
        "  systemctl daemon-reload && systemctl enable --now netmanager-agent"
    )
    return 0
