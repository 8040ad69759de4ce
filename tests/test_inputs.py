"""The loader's API and the validate/show commands on the examples (no root needed)."""

import json
import shutil
from pathlib import Path

import pytest

import netmanager
from netmanager.cli.main import main
from netmanager.errors import NetmanagerError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PAIRS = [
    ("aef-grid", "real.xml", "virtual.xml"),
    ("two-hosts", "real.xml", "virtual.xml"),
    ("virtcloud", "real.xml", "tenant-a.xml"),
    ("virtcloud", "real.xml", "tenant-b.xml"),
]


@pytest.mark.parametrize(("example", "real", "virtual"), PAIRS)
def test_examples_are_valid(
    example: str, real: str, virtual: str, capsys: pytest.CaptureFixture[str]
) -> None:
    d = EXAMPLES / example
    assert main(["validate", str(d / real), str(d / virtual)]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["validate", "--json", str(d / real), str(d / virtual)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"valid": True, "diagnostics": []}


def test_every_example_directory_has_a_readme() -> None:
    for d in EXAMPLES.iterdir():
        if d.is_dir():
            assert (d / "README.md").is_file(), d


def test_aef_grid_model_matches_table_1() -> None:
    model = netmanager.load(EXAMPLES / "aef-grid/real.xml", EXAMPLES / "aef-grid/virtual.xml")
    assert model.topology == "aef-grid"
    sites = {n.name: len(model.virtual.members(n.name)) for n in model.virtual.networks}
    assert sites == {"site1": 10, "site2": 13, "site3": 9, "backbone": 3}
    per_host = {h.name: sorted(p.name for p in h.pinned) for h in model.real.hosts}
    assert per_host["host1"] == sorted(
        ["vmgrid108", "vmgrid109", *[f"vmgrid{i}" for i in range(201, 206)], "vmgridpeer2"]
    )
    assert per_host["host2"] == sorted([*[f"vmgrid{i}" for i in range(206, 213)], "vmgrid308"])
    assert per_host["host3"] == sorted([*[f"vmgrid{i}" for i in range(101, 108)], "vmgridpeer1"])
    assert per_host["host4"] == sorted([*[f"vmgrid{i}" for i in range(301, 308)], "vmgridpeer3"])
    assert all(vm.memory_mib == 256 for vm in model.virtual.vms)
    backbone = model.virtual.network_by_name["backbone"]
    assert backbone.shaping is not None and backbone.shaping.rate_bps == 1_000_000
    # objects remember where they came from
    vm = model.virtual.vm_by_name["vmgrid101"]
    assert vm.loc.file.endswith("virtual.xml") and vm.loc.line > 0 and vm.loc.col > 0


def test_model_is_frozen() -> None:
    model = netmanager.load(EXAMPLES / "two-hosts/real.xml", EXAMPLES / "two-hosts/virtual.xml")
    with pytest.raises(AttributeError):
        model.virtual.vms[0].name = "other"  # type: ignore[misc]


def test_virtual_pins_reach_the_real_model() -> None:
    model = netmanager.load(EXAMPLES / "two-hosts/real.xml", EXAMPLES / "two-hosts/virtual.xml")
    host = model.real.pinned_host("vm1", "two-hosts")
    assert host is not None and host.name == "host1"


def test_load_raises_one_error_with_all_diagnostics(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "two-hosts", tmp_path / "ex")
    v = tmp_path / "ex/virtual.xml"
    text = v.read_text()
    text = text.replace('ip="10.20.0.1"', 'ip="10.99.0.1"').replace(
        'network="lan" ip="10.20.0.2"', 'network="wan" ip="10.20.0.2"'
    )
    v.write_text(text)
    with pytest.raises(NetmanagerError) as err:
        netmanager.load(tmp_path / "ex/real.xml", v)
    codes = sorted(d.code for d in err.value.errors)
    assert codes == ["E302", "E403"]
    assert all(d.loc.line > 0 for d in err.value.errors)


def test_show_summarises(capsys: pytest.CaptureFixture[str]) -> None:
    d = EXAMPLES / "aef-grid"
    assert main(["show", str(d / "real.xml"), str(d / "virtual.xml")]) == 0
    out = capsys.readouterr().out
    assert (
        "host3" in out and "vmgridpeer1" in out and "backbone 10.0.0.0/29" in out and "1Mbit" in out
    )
    assert main(["show", "--json", str(d / "real.xml"), str(d / "virtual.xml")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {h["name"]: len(h["vms"]) for h in doc["hosts"]} == {
        "host1": 8,
        "host2": 8,
        "host3": 8,
        "host4": 8,
    }


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["validate", "only-one.xml"])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        main(["frobnicate"])
    assert exit_.value.code == 2


def test_invalid_input_exits_1_and_says_nothing_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "v.xml"
    bad.write_text("<virtual")
    assert main(["validate", str(EXAMPLES / "two-hosts/real.xml"), str(bad)]) == 1
    err = capsys.readouterr().err
    assert "error[E104]" in err and err.strip().endswith("nothing was changed")
