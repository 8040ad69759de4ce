"""NETMANAGER-MIB: lint-clean, resolvable by net-snmp, compiled copy up to date, and the
configuration model in step with it."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import subprocess

import pytest

from netmanager.host.candidate import TABLES
from netmanager.snmp import mib
from netmanager.snmp.tables import MANDATORY, load_tables
from tests.snmp.conftest import MIBS


def test_smilint_prints_nothing_at_level_6() -> None:
    if shutil.which("smilint") is None:
        pytest.skip("needs smilint (Debian package smitools)")
    # /etc/smi.conf sets level 0 on Debian: bypass it, and judge by the output
    env = dict(os.environ, SMIPATH=str(MIBS))
    proc = subprocess.run(
        ["smilint", "-c", "/dev/null", "-l", "6", str(MIBS / "NETMANAGER-MIB")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.stdout + proc.stderr == ""


def test_net_snmp_resolves_the_names(tool_env: dict[str, str]) -> None:
    if shutil.which("snmptranslate") is None:
        pytest.skip("needs snmptranslate (Debian package snmp)")
    # tool_env keeps net-snmp's persistent files in a temporary directory: on a fresh
    # machine the first run of any tool announces "Created directory: /var/lib/snmp/..."
    proc = subprocess.run(
        [
            *("snmptranslate", "-M", f"+{MIBS}", "-m", "NETMANAGER-MIB", "-On"),
            *("NETMANAGER-MIB::nmLinkOperStatus", "NETMANAGER-MIB::nmTxnOperation"),
        ],
        capture_output=True,
        text=True,
        env=tool_env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [".1.3.6.1.3.7171.1.3.1.1.8", ".1.3.6.1.3.7171.1.2.1"]
    assert proc.stderr == ""


def test_compiled_modules_are_up_to_date() -> None:
    if importlib.util.find_spec("pysmi") is None:
        pytest.skip("needs pysmi (the build step that compiles the MIB)")
    from netmanager.snmp.mibcompile import COMPILED, compile_mibs

    fresh = compile_mibs()
    for name in COMPILED:
        shipped = (MIBS / f"{name}.py").read_text()
        assert shipped == fresh[name], (
            f"{name}.py is stale: run python -m netmanager.snmp.mibcompile"
        )


def test_tables_match_the_candidate_dataclasses() -> None:
    """Every column is a field, every field a column, and DEFVAL is the field default."""
    for table in load_tables():
        cls = TABLES[table.attr]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        index = {c.field for c in table.index}
        columns = {c.field: c for c in (*table.index, *table.data_columns())}
        assert set(fields) == set(columns), table.attr
        for name, column in columns.items():
            default = fields[name].default
            if name in index:
                continue
            if column.default is MANDATORY:
                assert default is dataclasses.MISSING, f"{table.attr}.{name} has no DEFVAL"
            else:
                assert default == column.default, f"{table.attr}.{name}: {default!r} != DEFVAL"


def test_oids_are_under_the_experimental_arc() -> None:
    assert mib.NETMANAGER_MIB == (1, 3, 6, 1, 3, 7171)
    assert mib.oid_of("netmanagerMIB") == mib.NETMANAGER_MIB
    assert mib.oid_of("nmConfig") == mib.NM_CONFIG
    assert mib.oid_of("nmTxn") == mib.NM_TXN
    assert mib.oid_of("nmMonitor") == mib.NM_MONITOR
