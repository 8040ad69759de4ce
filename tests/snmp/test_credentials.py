"""The credentials file: refused when others may read it or when it is incomplete; keys
never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from netmanager.snmp.credentials import CredentialsError, load_credentials
from tests.snmp.conftest import AUTH_KEY, CREDENTIALS, PRIV_KEY, READ_KEY, write_credentials


def test_loads_and_hides_the_keys(tmp_path: Path) -> None:
    creds = load_credentials(write_credentials(tmp_path / "snmp.toml"))
    assert creds.write.auth_protocol == "SHA-256" and creds.write.priv_protocol == "AES-128"
    assert creds.read_user is not None and creds.read_user.auth_protocol == "SHA-512"
    assert creds.trap_community == creds.community
    shown = repr(creds)
    for secret in (AUTH_KEY, PRIV_KEY, READ_KEY, creds.community or "?"):
        assert secret not in shown


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o660])
def test_refused_when_others_may_read(tmp_path: Path, mode: int) -> None:
    path = write_credentials(tmp_path / "snmp.toml", mode=mode)
    with pytest.raises(CredentialsError, match="chmod 600"):
        load_credentials(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("priv_key", 'priv_key = "short"'), "shorter than 8"),
        (('auth_protocol = "SHA-256"', 'auth_protocol = "MD5"'), "not supported"),
        (('priv_protocol = "AES-128"', 'priv_protocol = "DES"'), "not supported"),
        (("[write]", "[write]\nauth_proto = 'x'"), "unknown key"),
        (("[write]", "[writer]"), "unknown section"),
    ],
)
def test_refused_when_wrong(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    old, new = change
    if old == "priv_key":
        text = "\n".join(
            new if line.startswith("priv_key") else line for line in CREDENTIALS.splitlines()
        )
    else:
        text = CREDENTIALS.replace(old, new, 1)
    with pytest.raises(CredentialsError, match=message) as err:
        load_credentials(write_credentials(tmp_path / "snmp.toml", text))
    assert PRIV_KEY not in str(err.value) and AUTH_KEY not in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="no such file"):
        load_credentials(tmp_path / "absent.toml")


def test_example_file_is_understood(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "aef-grid" / "snmp.toml"
    if not example.exists():
        pytest.skip("examples/aef-grid/snmp.toml not present")
    creds = load_credentials(write_credentials(tmp_path / "snmp.toml", example.read_text()))
    assert creds.write.user == "nmadmin"


def test_missing_cryptography_is_a_clear_startup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from snmp_agents.agent import StartupError, check_crypto

    check_crypto()  # AES works here
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.decrepit.ciphers.modes", None)
    with pytest.raises(StartupError, match="install the 'cryptography' package"):
        check_crypto()
