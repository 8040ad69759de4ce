"""netmanager as a real package: the wheel holds every module and data file of the source
tree, and the console scripts of a fresh venv that installed it (not editable) work from a
directory outside the checkout.

The wheel is built from a copy of the checkout's files (what git tracks, and new files it
does not ignore), so that nothing of the checkout (build/, an egg-info, the editable
install) leaks into it.  The venv's dependencies come from the package registry or pip's
cache.  The topology is applied with its own namespace prefix and state directory, and
destroyed, and its namespaces removed, whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netmanager import programs
from netmanager.kernel import netns

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("netmanager", "snmp_agents")
EXAMPLE = ROOT / "examples" / "two-hosts"
PIP_TIMEOUT_S = 900  # dependencies may come from the registry on a fresh machine

# one worker builds the wheel and the venv once for the module (spread over workers,
# each would build its own)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("package")]


def source_files() -> list[str]:
    """The checkout's files (relative paths): git's tracked and not-ignored ones, or every
    file but caches where git is absent."""
    try:
        done = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=60,
        )
    except (OSError, subprocess.CalledProcessError):
        return sorted(
            str(p.relative_to(ROOT))
            for p in ROOT.rglob("*")
            if p.is_file()
            and not {".git", ".venv", "__pycache__", "build"} & set(p.relative_to(ROOT).parts)
        )
    names = [n for n in done.stdout.decode().split("\0") if n]
    return sorted(n for n in names if (ROOT / n).is_file())  # deleted, not yet staged


def package_files() -> set[str]:
    """What the wheel must hold: every file under the packages' directories."""
    return {n for n in source_files() if n.split("/", 1)[0] in PACKAGES}


def _run(argv: list[str], timeout: float = PIP_TIMEOUT_S, **kwargs: object) -> str:
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        **kwargs,  # type: ignore[call-overload]
    )
    assert done.returncode == 0, (
        f"{' '.join(argv)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    )
    return str(done.stdout)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in source_files():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", "-w", str(dist)])
    (found,) = dist.glob("netmanager-*.whl")
    return found


@dataclass(frozen=True)
class Installed:
    venv: Path
    work: Path  # a directory outside the checkout, with a copy of examples/two-hosts
    env: dict[str, str]
    prefix: str

    def run(self, script: str, *args: str, timeout: float = 300) -> str:
        return _run([str(self.venv / "bin" / script), *args], timeout, cwd=self.work, env=self.env)


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--clear", str(venv)])
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)])
    work = tmp_path_factory.mktemp("work")
    for name in ("real.xml", "virtual.xml", "snmp.toml"):
        shutil.copy(EXAMPLE / name, work / name)
    (work / "snmp.toml").chmod(0o600)
    prefix = f"nmp{uuid.uuid4().hex[:6]}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYTHONHOME")
    }
    env |= {"NETMANAGER_NS_PREFIX": prefix, "NETMANAGER_STATE_DIR": str(work / "state")}
    return Installed(venv, work, env, prefix)


def test_the_wheel_holds_every_module_and_data_file_of_the_source_tree(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = z.read(entry_points).decode()
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    contents = {n for n in names if ".dist-info/" not in n}
    expected = package_files()
    assert {"netmanager/guests/guestd.py", "netmanager/schemas/real-1.xsd"} <= expected
    assert not expected - contents, f"missing from the wheel: {sorted(expected - contents)}"
    assert not contents - expected, f"not in the source tree: {sorted(contents - expected)}"
    assert "netmanager = netmanager.cli.main:main" in scripts
    assert "netmanager-agent = snmp_agents.agent:main" in scripts
    assert "License-Expression: MIT" in metadata


def test_the_installed_commands_validate_and_map_outside_the_checkout(
    installed: Installed,
) -> None:
    code = "import netmanager, snmp_agents; print(netmanager.__file__, snmp_agents.__file__)"
    where = _run([str(installed.venv / "bin" / "python"), "-c", code], cwd=installed.work)
    assert all(Path(w).is_relative_to(installed.venv) for w in where.split()), where
    assert "netmanager-agent" in installed.run("netmanager-agent", "--help")
    validated = json.loads(
        installed.run("netmanager", "validate", "real.xml", "virtual.xml", "--json")
    )
    assert validated["valid"], validated
    mapped = json.loads(installed.run("netmanager", "map", "real.xml", "virtual.xml", "--json"))
    assert mapped["placement"] == {"vm1": "host1", "vm2": "host2"}


@pytest.fixture
def cleanup(installed: Installed) -> Iterator[None]:
    try:
        yield
    finally:
        subprocess.run(
            [str(installed.venv / "bin" / "netmanager"), "destroy", "real.xml", "virtual.xml"],
            cwd=installed.work,
            env=installed.env,
            capture_output=True,
            check=False,
            timeout=300,
        )
        for name in netns.listed(installed.prefix):
            subprocess.run([programs.path("ip"), "netns", "del", name], check=False)


@pytest.mark.privileged
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to build namespaces")
def test_the_installed_commands_apply_status_and_destroy_outside_the_checkout(
    installed: Installed, cleanup: None
) -> None:
    topology = ("real.xml", "virtual.xml")
    installed.run("netmanager", "apply", *topology, "--local")
    assert netns.listed(installed.prefix), "apply built no namespace"
    status = json.loads(installed.run("netmanager", "status", *topology, "--json"))
    assert status["topology"] == "two-hosts"
    assert {vm["name"]: vm["host"] for vm in status["vms"]} == {"vm1": "host1", "vm2": "host2"}
    states = {i["state"] for vm in status["vms"] for i in vm["interfaces"]}
    assert states == {"up"}, status
    if programs.which("ping"):
        installed.run("netmanager", "exec", "vm1", "--", "ping", "-c1", "-W5", "10.20.0.2")
    installed.run("netmanager", "destroy", *topology)
    assert not netns.listed(installed.prefix), "destroy left namespaces"
