"""The agent's SNMP credentials, read from a private TOML file.

::

    [read]                      # optional: without it v1/v2c get nothing
    community = "nm-aef-read"
    view = "read-only"          # or "none": every principal but [write] gets nothing
    user = "nmmonitor"          # optional SNMPv3 user that only reads:
    auth_protocol = "SHA-256"   #   with auth_protocol and auth_key at authNoPriv,
    auth_key = "..."            #   without them at noAuthNoPriv

    [write]                     # the only principal that may SET
    user = "nmadmin"
    auth_protocol = "SHA-256"   # SHA-224, SHA-256, SHA-384, SHA-512
    auth_key = "..."            # at least 8 characters
    priv_protocol = "AES-128"   # AES-128, AES-192, AES-256, AES-192-C, AES-256-C
    priv_key = "..."

    [trap]                      # optional
    community = "..."           # of the SNMPv2c notifications; default: [read] community

The file is refused when its group or others have any permission: keys must not leak
through a world-readable checkout.  Keys never appear in messages, logs or ``repr``.
AES names follow net-snmp's ``-x``: ``AES-256`` is the Blumenthal draft key extension
(pysnmp ``CFB256_AES_BLUMENTHAL``), ``AES-256-C`` the Reeder/Cisco one (pysnmp
``CFB256_AES``).
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AUTH_PROTOCOLS = ("SHA-224", "SHA-256", "SHA-384", "SHA-512")
PRIV_PROTOCOLS = ("AES-128", "AES-192", "AES-256", "AES-192-C", "AES-256-C")
VIEWS = ("read-only", "none")
MIN_KEY_LEN = 8


class CredentialsError(ValueError):
    """The credentials file cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class WriteUser:
    user: str
    auth_protocol: str
    priv_protocol: str
    auth_key: str = field(repr=False)
    priv_key: str = field(repr=False)


@dataclass(frozen=True)
class ReadUser:
    user: str
    auth_protocol: str | None = None
    auth_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Credentials:
    path: Path
    write: WriteUser
    community: str | None = field(default=None, repr=False)
    view: str = "read-only"
    trap_community: str | None = field(default=None, repr=False)
    read_user: ReadUser | None = None

    @property
    def read_only_view(self) -> bool:
        return self.view == "read-only"


def _optional(path: Path, table: dict[str, Any], section: str, key: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise CredentialsError(f"{path}: [{section}] {key} must be a non-empty string")
    return value


def _required(path: Path, table: dict[str, Any], section: str, key: str) -> str:
    value = _optional(path, table, section, key)
    if value is None:
        raise CredentialsError(f"{path}: [{section}] {key} is missing")
    return value


def _choice(path: Path, value: str, section: str, key: str, choices: tuple[str, ...]) -> str:
    normal = value.upper() if key != "view" else value.lower()
    if normal not in choices:
        raise CredentialsError(
            f"{path}: [{section}] {key} = '{value}' is not supported; "
            f"choose one of {', '.join(choices)}"
        )
    return normal


def check_private(path: Path) -> None:
    """Refuse a file that its group or others may read or write."""
    st = path.stat()
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"{path}: mode {stat.S_IMODE(st.st_mode):04o} lets other users read the keys; "
            f"run 'chmod 600 {path}'"
        )


def load_credentials(path: str | os.PathLike[str]) -> Credentials:
    p = Path(path)
    try:
        check_private(p)
        with p.open("rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError as exc:
        raise CredentialsError(f"{p}: no such file") from exc
    except PermissionError as exc:
        raise CredentialsError(f"{p}: not readable by this user") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CredentialsError(f"{p}: not valid TOML: {exc}") from exc

    unknown = set(doc) - {"read", "write", "trap"}
    if unknown:
        raise CredentialsError(f"{p}: unknown section(s) {', '.join(sorted(unknown))}")
    read = doc.get("read", {})
    write = doc.get("write")
    trap = doc.get("trap", {})
    if not isinstance(write, dict):
        raise CredentialsError(f"{p}: the [write] section is missing")
    if not isinstance(read, dict) or not isinstance(trap, dict):
        raise CredentialsError(f"{p}: [read] and [trap] must be tables")

    allowed = {
        "read": {"community", "view", "user", "auth_protocol", "auth_key"},
        "write": {"user", "auth_protocol", "auth_key", "priv_protocol", "priv_key"},
        "trap": {"community"},
    }
    for section, table in (("read", read), ("write", write), ("trap", trap)):
        extra = set(table) - allowed[section]
        if extra:
            raise CredentialsError(
                f"{p}: unknown key(s) in [{section}]: {', '.join(sorted(extra))}; "
                f"expected {', '.join(sorted(allowed[section]))}"
            )
    user = _required(p, write, "write", "user")
    auth_protocol = _required(p, write, "write", "auth_protocol")
    auth_key = _required(p, write, "write", "auth_key")
    priv_protocol = _required(p, write, "write", "priv_protocol")
    priv_key = _required(p, write, "write", "priv_key")
    for key, value in (("auth_key", auth_key), ("priv_key", priv_key)):
        if len(value) < MIN_KEY_LEN:
            raise CredentialsError(
                f"{p}: [write] {key} is shorter than {MIN_KEY_LEN} characters (USM refuses it)"
            )
    community = _optional(p, read, "read", "community")
    read_user = None
    read_name = _optional(p, read, "read", "user")
    read_auth = _optional(p, read, "read", "auth_protocol")
    read_key = _optional(p, read, "read", "auth_key")
    if (read_auth is None) != (read_key is None) or (read_auth and not read_name):
        raise CredentialsError(f"{p}: [read] auth_protocol and auth_key go together, with user")
    if read_key is not None and len(read_key) < MIN_KEY_LEN:
        raise CredentialsError(f"{p}: [read] auth_key is shorter than {MIN_KEY_LEN} characters")
    if read_name is not None:
        if read_name == user:
            raise CredentialsError(f"{p}: [read] user must differ from [write] user")
        read_user = ReadUser(
            user=read_name,
            auth_protocol=_choice(p, read_auth, "read", "auth_protocol", AUTH_PROTOCOLS)
            if read_auth
            else None,
            auth_key=read_key,
        )
    view = _choice(p, str(read.get("view", "read-only")), "read", "view", VIEWS)
    trap_community = _optional(p, trap, "trap", "community")
    return Credentials(
        path=p,
        write=WriteUser(
            user=user,
            auth_protocol=_choice(p, auth_protocol, "write", "auth_protocol", AUTH_PROTOCOLS),
            auth_key=auth_key,
            priv_protocol=_choice(p, priv_protocol, "write", "priv_protocol", PRIV_PROTOCOLS),
            priv_key=priv_key,
        ),
        community=community,
        view=view,
        trap_community=trap_community or community,
        read_user=read_user,
    )
