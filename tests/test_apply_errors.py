"""The apply errors (E7xx) made to happen through the command line, beside the input and
mapping goldens: each case's whole stderr is compared with its golden
(tests/apply_errors/<case>.txt; rewrite them with NETMANAGER_REGEN_GOLDENS=1 after a
deliberate change of wording), and whenever a command says "nothing was changed" the
machine is compared before and after (every namespace of the test's prefix through
``ip -j``, ``tc -j``, ``iptables-save``, ``ebtables-save``; the records of what is
applied), so that the sentence is never false.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from netmanager.apply import topology
from netmanager.apply.prepare import prepare
from netmanager.apply.records import records
from netmanager.cli.main import main
from netmanager.errors import NetmanagerError
from netmanager.output import CHANGES_LEFT, print_error
from tests import kernelstate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GOLDENS = Path(__file__).resolve().parent / "apply_errors"
REGEN = os.environ.get("NETMANAGER_REGEN_GOLDENS") == "1"

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to build namespaces"),
]


@dataclass(frozen=True)
class Case:
    name: str
    code: str
    exit: int
    #: writes the inputs into the directory; returns the command's arguments
    setup: Callable[[Path], list[str]]


def _two_hosts(directory: Path, old: str = "", new: str = "", *, real: bool = False) -> Path:
    """examples/two-hosts copied into ``directory`` with ``old`` replaced by ``new`` in
    virtual.xml (or real.xml)."""
    example = directory / "two-hosts"
    if not example.exists():
        shutil.copytree(EXAMPLES / "two-hosts", example)
        (example / "snmp.toml").chmod(0o600)
    changed = example / ("real.xml" if real else "virtual.xml")
    if old:
        text = changed.read_text()
        assert old in text
        changed.write_text(text.replace(old, new))
    return example


def _files(example: Path) -> list[str]:
    return [str(example / "real.xml"), str(example / "virtual.xml")]


def _latency(d: Path) -> list[str]:
    example = _two_hosts(d, 'bandwidth="10Mbit"', 'bandwidth="10Mbit" latency="20ms"')
    return ["apply", "--local", *_files(example)]


def _domain_on_a_namespace_host(d: Path) -> list[str]:
    example = _two_hosts(
        d, '<vm name="vm1" host="host1">', '<vm name="vm1" host="host1" domain="vm1-domain">'
    )
    return ["apply", "--local", *_files(example)]


def _libvirt_local(d: Path) -> list[str]:
    example = _two_hosts(
        d,
        'name="host2" site="lab" hypervisor="netns"',
        'name="host2" site="lab" hypervisor="qemu:///embed"',
        real=True,
    )
    return ["apply", "--local", *_files(example)]


def _guest_local(d: Path) -> list[str]:
    example = _two_hosts(
        d,
        'name="host2" site="lab" hypervisor="netns"',
        'name="host2" site="lab" hypervisor="guest"',
        real=True,
    )
    return ["apply", "--local", *_files(example)]


def _fault(d: Path) -> list[str]:
    return ["apply", "--local", "--fail-at", "9", *_files(_two_hosts(d))]


def _host_fault(d: Path) -> list[str]:
    return ["apply", "--local", "--fail-at", "25", *_files(_two_hosts(d))]


def _not_applied(_d: Path) -> list[str]:
    return ["destroy", "--topology", "nothing-here"]


def _no_vm(_d: Path) -> list[str]:
    return ["exec", "vm9", "--", "true"]


def _mixed(d: Path) -> list[str]:
    files = _files(_two_hosts(d))
    assert main(["apply", "--local", *files]) == 0
    return ["apply", *files]


CASES = [
    Case("e701-latency-without-netem", "E701", 1, _latency),
    Case("e709-guest-host-with-local", "E709", 1, _guest_local),
    Case("e709-libvirt-host-with-local", "E709", 1, _libvirt_local),
    Case("e713-domain-on-a-namespace-host", "E713", 1, _domain_on_a_namespace_host),
    Case("e710-an-infrastructure-step-fails", "E710", 4, _fault),
    Case("e710-a-step-on-a-host-fails", "E710", 4, _host_fault),
    Case("e720-not-applied", "E720", 1, _not_applied),
    Case("e721-no-such-vm", "E721", 1, _no_vm),
    Case("e743-applied-the-other-way", "E743", 1, _mixed),
]


def _machine(prefix: str) -> tuple[object, object]:
    saved = {t: r.as_json() for t, r in records().items()}
    return kernelstate.snapshot(prefix), saved


def _normal(text: str, tmp: Path, prefix: str) -> str:
    return text.replace(str(tmp), "<tmp>").replace(prefix, "<prefix>")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_apply_error_says_what_is_true(
    case: Case, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = case.setup(tmp_path)
    before = _machine(prefix)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == case.exit, err
    assert f"error[{case.code}]" in err, err
    assert "Traceback" not in err
    assert err.rstrip().endswith("; nothing was changed"), err
    assert _machine(prefix) == before, f"{case.name} said nothing was changed"
    golden = GOLDENS / f"{case.name}.txt"
    text = _normal(err, tmp_path, prefix)
    if REGEN:
        golden.write_text(text)
    assert text == golden.read_text(), f"stale golden? NETMANAGER_REGEN_GOLDENS=1 {case.name}"
    for record in records():  # the E743 case applied one with --local: take it away
        assert main(["destroy", "--topology", record]) == 0


def test_an_undo_that_fails_is_e711_and_nothing_claims_the_machine_unchanged(
    prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _files(_two_hosts(tmp_path))
    assert main(["apply", "--local", *files]) == 0
    applied = _machine(prefix)
    _two_hosts(tmp_path, 'bandwidth="10Mbit"', 'bandwidth="20Mbit"')
    # host1's second step fails, then the undo of its first, then the way back
    with pytest.raises(NetmanagerError) as failure:
        topology.apply(prepare(*files), local=True, fail_at=1, fail_undo=True)
    assert "E711" in [d.code for d in failure.value.errors], failure.value
    assert failure.value.left_changes
    print_error(failure.value)
    err = capsys.readouterr().err
    assert "nothing was changed" not in err and "nothing was left changed" not in err, err
    assert err.rstrip().endswith(CHANGES_LEFT), err
    assert _machine(prefix)[0] != applied[0]  # true: host1 kept a change
    assert main(["apply", "--local", *files]) == 0  # and apply repairs it
    assert main(["destroy", *files]) == 0


def test_a_confirmation_that_fails_is_e742_and_nothing_claims_the_machine_unchanged(
    prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from netmanager.apply.local import local_dir

    files = _files(_two_hosts(tmp_path))
    assert main(["apply", "--local", *files]) == 0
    applied = _machine(prefix)
    _two_hosts(tmp_path, 'bandwidth="10Mbit"', 'bandwidth="20Mbit"')
    journal = local_dir("host1") / "kernel-backend.json"
    saved: list[bytes] = []

    def break_host1_journal(event: str, host: str) -> None:
        if (event, host) == ("committed", "host1"):
            # a directory where its journal is: the confirmation cannot write it
            saved.append(journal.read_bytes())
            journal.unlink()
            journal.mkdir()

    with pytest.raises(NetmanagerError) as failure:
        topology.apply(prepare(*files), local=True, hook=break_host1_journal)
    assert [d.code for d in failure.value.errors] == ["E742"], failure.value
    print_error(failure.value)
    err = capsys.readouterr().err
    assert "nothing was changed" not in err and err.rstrip().endswith(CHANGES_LEFT), err
    assert _machine(prefix)[0] != applied[0]  # true: both hosts run the faster link
    journal.rmdir()
    journal.write_bytes(saved[0])  # the journal as the commit left it: not confirmed
    # the unconfirmed commit is found: plan leaves it and says so (changing nothing, also
    # not the journal), apply rolls it back first
    pending = _machine(prefix), (local_dir("host1") / "kernel-backend.json").read_bytes()
    planned = topology.plan(prepare(*files), local=True)
    assert "host1" in planned.unreachable and "unconfirmed" in planned.unreachable["host1"]
    assert (_machine(prefix), (local_dir("host1") / "kernel-backend.json").read_bytes()) == pending
    assert main(["apply", "--local", *files]) == 0
    assert topology.plan(prepare(*files), local=True).changes == 0
    assert main(["destroy", *files]) == 0
