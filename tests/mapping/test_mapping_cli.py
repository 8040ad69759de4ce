"""``netmanager map``: the subcommand, its JSON, its exit codes, the kernel feature probe."""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import pytest

from netmanager.cli.commands import map as map_command
from netmanager.errors import ExitCode, NetmanagerError
from netmanager.output import print_error

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(argv: list[str]) -> int:
    """Parse and run like netmanager.cli.main does, with only the map subcommand."""
    parser = argparse.ArgumentParser(prog="netmanager")
    map_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except NetmanagerError as exc:
        print_error(exc, json_output=args.json)
        return int(exc.exit_code)


@pytest.fixture
def aef() -> list[str]:
    pytest.importorskip("netmanager.inputs.loader")
    return [str(EXAMPLES / "aef-grid/real.xml"), str(EXAMPLES / "aef-grid/virtual.xml")]


def test_map_prints_the_table(
    aef: list[str], state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["map", *aef]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "host1  vmgrid108, vmgrid109" in out
    assert "vmgrid201–vmgrid205, vmgridpeer2" in out
    assert not state_dir.exists()  # map only reads the state directory


def test_map_json(aef: list[str], state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["map", *aef, "--json"]) == ExitCode.OK
    document = json.loads(capsys.readouterr().out)
    assert document["placement"]["vmgridpeer2"] == "host1"
    assert set(document["segments"]) == {"site1", "site2", "site3", "backbone"}
    assert {"encap", "id"} <= set(document["segments"]["backbone"])
    assert "backbone" in document["paths"]["networks"]


def test_map_reads_kept_segments(
    aef: list[str], state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir.mkdir()
    kept = {"aef-grid": {"backbone": {"encap": "vxlan", "id": 10150, "sites": ["cluster"]}}}
    (state_dir / "segments.json").write_text(json.dumps(kept))
    assert run(["map", *aef, "--json"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["segments"]["backbone"]["id"] == 10150


def test_map_infeasible_exits_3(
    aef: list[str], state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    occupied = tmp_path / "occupied.json"
    occupied.write_text(json.dumps({"hosts": {"host1": {"cpus": 1, "memory_mib": 256, "vms": 1}}}))
    assert run(["map", *aef, "--occupied", str(occupied)]) == ExitCode.INFEASIBLE
    err = capsys.readouterr().err
    assert "error[E605]: host 'host1' cannot hold the 8 VMs of 'aef-grid'" in err
    assert "not now" in err and "nothing was changed" in err


def test_local_kernel_features(tmp_path: Path) -> None:
    config = tmp_path / "config.gz"
    with gzip.open(config, "wt") as f:
        f.write(
            "# comment\nCONFIG_VLAN_8021Q=m\n# CONFIG_NET_SCH_NETEM is not set\nCONFIG_VXLAN=y\n"
        )
    modules = tmp_path / "module"
    (modules / "sch_netem").mkdir(parents=True)
    assert map_command.local_kernel_features(config, modules) == frozenset(
        {"8021q", "vxlan", "netem"}
    )
    assert map_command.local_kernel_features(tmp_path / "none.gz", tmp_path / "none") is None
