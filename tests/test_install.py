"""scripts/install installs every program netmanager and its tests run.

Checked against the script's own package list (``scripts/install --list [--dev]``) and
netmanager.programs (every external program and its Debian package), never against what
this machine happens to have installed; and the source is scanned for the programs it
names, so that a new one cannot be run without being listed.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from netmanager import programs
from netmanager.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "scripts" / "install"
RUNTIME = ("netmanager", "snmp_agents")  # what `scripts/install` must cover
DEVELOPMENT = ("tests", "bench")  # what `scripts/install --dev` must cover too

#: Calls that run a command line given as their positional arguments or as a list literal.
RUNNERS = {
    "run",
    "Popen",
    "call",
    "check_call",
    "check_output",
    "spawn",
    "_run",
    "_text",
    "_command",
    "in_namespace",
    "_in_namespace",
    "need_tools",
}
#: Calls whose first argument is a program's name.
LOOKUPS = {"which", "path", "program", "not_installed"}


def _install_list(*args: str) -> tuple[set[str], set[str]]:
    done = subprocess.run(
        [str(INSTALL), "--list", *args], capture_output=True, text=True, check=True, timeout=30
    )
    apt: set[str] = set()
    extras: set[str] = set()
    for line in done.stdout.splitlines():
        kind, name = line.split()
        {"apt": apt, "extra": extras}[kind].add(name)
    return apt, extras


def _function_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _command_lines(call: ast.Call) -> Iterator[list[ast.expr]]:
    if _function_name(call) == "need_tools":
        for arg in call.args:
            yield [arg]
        return
    if call.args and isinstance(call.args[0], ast.Constant):
        yield list(call.args)
    for arg in call.args:
        if isinstance(arg, ast.List | ast.Tuple):
            yield list(arg.elts)


def _text(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _own_words() -> set[str]:
    """netmanager's own console scripts and subcommands (tests run them with a list of
    words, some in-process)."""
    parser = build_parser()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["scripts"]) | {
        name
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    }


def named_programs(directory: Path) -> Iterator[tuple[str, str]]:
    """(where, program) for every program the Python files under ``directory`` name in a
    command line they run or in a lookup by name."""
    not_programs = _own_words()
    for found in _named(directory):
        if not found[1].startswith("-") and found[1] not in not_programs:
            yield found


@cache
def _calls(directory: Path) -> tuple[tuple[Path, ast.Call], ...]:
    """Every call in the Python files under ``directory`` (parsed once for all tests)."""
    found = []
    for file in sorted(directory.rglob("*.py")):
        if "mibs" in file.parts or file == Path(__file__):
            continue
        tree = ast.parse(file.read_text(), str(file))
        found += [(file, node) for node in ast.walk(tree) if isinstance(node, ast.Call)]
    return tuple(found)


def _named(directory: Path) -> Iterator[tuple[str, str]]:
    for file, node in _calls(directory):
        where = f"{file.relative_to(ROOT)}:{node.lineno}"
        name = _function_name(node)
        if name in LOOKUPS and node.args and (program := _text(node.args[0])):
            yield where, program
        if name not in RUNNERS:
            continue
        for argv in _command_lines(node):
            words = [_text(a) for a in argv]
            if words[0]:
                yield where, words[0]
            if words[:3] == ["ip", "netns", "exec"] and len(words) > 4 and words[4]:
                yield where, words[4]


def test_the_install_script_installs_the_package_of_every_program_netmanager_runs() -> None:
    apt, extras = _install_list()
    missing = {
        p.name: p.package
        for p in programs.PROGRAMS.values()
        if not (p.dev or p.libvirt) and p.package not in apt
    }
    assert not missing, f"scripts/install does not install these programs' packages: {missing}"
    assert "plots" in extras, "scripts/install must install the plots extra (verify's PNGs)"
    unexplained = apt - programs.packages() - set(programs.SUPPORT_PACKAGES)
    assert not unexplained, (
        f"scripts/install installs {sorted(unexplained)}: name the program each provides in "
        "netmanager/programs.py (or why it is needed in SUPPORT_PACKAGES)"
    )
    dev = {p.package for p in programs.PROGRAMS.values() if p.dev}
    assert not (dev & apt - programs.packages()), "a tests-only package is installed without --dev"


def test_the_install_script_with_dev_installs_the_package_of_every_program_the_tests_run() -> None:
    apt, extras = _install_list("--dev")
    missing = {p.name: p.package for p in programs.PROGRAMS.values() if p.package not in apt}
    assert not missing, f"scripts/install --dev does not install: {missing}"
    assert {"plots", "dev"} <= extras
    unexplained = apt - programs.packages(dev=True) - set(programs.SUPPORT_PACKAGES)
    assert not unexplained, f"scripts/install --dev installs unexplained {sorted(unexplained)}"
    base, _ = _install_list()
    assert base <= apt


def test_the_install_script_with_libvirt_installs_what_a_libvirt_host_needs() -> None:
    apt, extras = _install_list("--libvirt")
    wanted = {p.name: p.package for p in programs.PROGRAMS.values() if p.libvirt}
    assert {"libvirtd", "virtlogd", "virsh"} <= set(wanted)
    missing = {name: package for name, package in wanted.items() if package not in apt}
    assert not missing, f"scripts/install --libvirt does not install: {missing}"
    assert "libvirt" in extras and "dev" not in extras
    unexplained = apt - programs.packages(libvirt=True) - set(programs.SUPPORT_PACKAGES)
    assert not unexplained, f"scripts/install --libvirt installs unexplained {sorted(unexplained)}"
    dev = {p.package for p in programs.PROGRAMS.values() if p.dev}
    assert not (dev & apt - programs.packages(libvirt=True)), "--libvirt installs tests' tools"
    base, _ = _install_list()
    assert base <= apt and not ({p.package for p in programs.PROGRAMS.values() if p.libvirt} & base)
    dev_apt, dev_extras = _install_list("--dev")
    assert apt <= dev_apt and "libvirt" in dev_extras, "--dev includes --libvirt (CI runs it)"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(r.startswith("libvirt-python") for r in project["optional-dependencies"]["libvirt"])


def test_the_plots_extra_brings_the_plotting_library() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    plots = project["optional-dependencies"]["plots"]
    assert any(re.match(r"matplotlib\b", requirement) for requirement in plots)


def test_netmanager_looks_programs_up_only_through_netmanager_programs() -> None:
    offenders = [
        f"{file.relative_to(ROOT)}:{node.lineno}"
        for top in RUNTIME
        for file, node in _calls(ROOT / top)
        if ast.unparse(node.func) == "shutil.which" and file != ROOT / "netmanager" / "programs.py"
    ]
    assert not offenders, f"use netmanager.programs.which instead of shutil.which: {offenders}"


def test_every_program_netmanager_runs_is_listed_with_its_package() -> None:
    found = [(w, p) for top in RUNTIME for w, p in named_programs(ROOT / top)]
    assert len({p for _, p in found}) >= 10, "the scan found too few programs: is it broken?"
    unlisted = [(w, p) for w, p in found if p not in programs.PROGRAMS]
    assert not unlisted, f"add these programs to netmanager/programs.py: {unlisted}"
    dev_only = [(w, p) for w, p in found if programs.PROGRAMS[p].dev]
    assert not dev_only, f"netmanager runs these, scripts/install must install them: {dev_only}"


def test_every_program_the_tests_and_benchmarks_run_is_listed_with_its_package() -> None:
    found = [(w, p) for top in DEVELOPMENT for w, p in named_programs(ROOT / top)]
    assert {"snmpget", "ip", "cpio"} <= {p for _, p in found}, "is the scan broken?"
    unlisted = [(w, p) for w, p in found if p not in programs.PROGRAMS]
    assert not unlisted, f"add these programs to netmanager/programs.py (dev=True): {unlisted}"


def test_the_readme_commands_run_only_installed_programs() -> None:
    readme = (ROOT / "README.md").read_text()
    quick_start = re.search(r"^    scripts/install && .*$", readme, re.M)
    assert quick_start is not None, "the README's quick start begins with scripts/install"
    inside_vms = re.findall(r"netmanager exec \S+ -- (\S+)", quick_start.group(0))
    assert inside_vms, "the quick start runs a command inside a VM"
    for program in inside_vms:
        assert not programs.program(program).dev, f"{program} needs scripts/install --dev"
    assert re.search(r"^    scripts/install --dev && \.venv/bin/python -m pytest$", readme, re.M)


def test_an_unlisted_program_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not listed"):
        programs.which("no-such-program")
    assert "scripts/install installs" in programs.not_installed("iperf3")
    assert "scripts/install --dev installs" in programs.not_installed("cpio")
    assert "scripts/install --libvirt installs" in programs.not_installed("virsh")
