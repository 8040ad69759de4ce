"""How the suite runs: in parallel worker processes, in lanes.

``pytest`` (pyproject.toml's ``addopts``: ``-n auto --dist loadgroup``) spreads the tests
over pytest-xdist workers, one test at a time, except the tests of one ``xdist_group``,
which run one after the other on one worker: the tests that boot QEMU guests (group
``guests``, see tests/guests/conftest.py: two of them at once would share two cores
between half a dozen emulated CPUs) and the tests that apply examples/aef-grid through
its agents (group ``aef-grid-agents``: its real.xml gives them fixed loopback ports), and
the package's tests (group ``package``: one wheel and one venv, not one per worker).
Every other test owns what it touches — its namespace prefix, state directory, ports
and temporary files — so that two workers never meet.  ``-n 0`` runs in this process
(for ``--pdb`` or ``-s``).

``pytest -m 'not slow'`` is the fast lane for daily work: everything but the guest hosts,
libvirt, the long measurements and the package builds.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import kernelstate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: the tests that apply examples/aef-grid through its agents (fixed ports 16101-16104)
AEF_GRID_AGENTS = pytest.mark.xdist_group("aef-grid-agents")


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: a run without it is fine
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Workers for ``-n auto``: one more than the cores, since most tests spend their time
    waiting for agents, pings and guests rather than computing."""
    return (os.cpu_count() or 1) + 1


#: set on a test pytest-xdist was to keep in its group but did not
UNGROUPED = pytest.StashKey[bool]()


@pytest.hookimpl(trylast=True)  # after pytest-xdist has put each test in its group
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """pytest-xdist marks a grouped test by a suffix of its node id, which pytest 9.2
    ignores (pytest-xdist#1386): the groups then silently do nothing, and the guests' tests
    boot guests on every worker at once.  Such tests fail instead (:func:`pytest_runtest_setup`)."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is not None and "@" not in item.nodeid:
            item.stash[UNGROUPED] = True


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.stash.get(UNGROUPED, False):
        pytest.fail(
            "pytest-xdist did not keep this test in its xdist_group: this pytest and "
            "pytest-xdist do not go together (scripts/install --dev installs a pair that "
            "does; or run with -n 0)",
            pytrace=False,
        )


@pytest.fixture(scope="session", autouse=True)
def _own_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A state directory of this worker's for the tests that do not set their own: nothing
    a test does reads or writes /var/lib/netmanager (a user's topologies there would
    change what ``map`` finds free, and two workers would share it)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NETMANAGER_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        yield


@pytest.fixture
def prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A namespace prefix (``nmt`` and six hex digits) and state directory of the test's
    own; afterwards the agents it started are ended (by PID) and every namespace with its
    prefix deleted, also when it fails.  The examples' credentials files get mode 600 (git
    keeps no mode, and agents and manager refuse a file others may read)."""
    from netmanager.agentctl import processes as agent_procs

    prefix = f"nmt{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("NETMANAGER_NS_PREFIX", prefix)
    monkeypatch.setenv("NETMANAGER_STATE_DIR", str(tmp_path / "state"))
    for credentials in EXAMPLES.glob("*/snmp.toml"):
        credentials.chmod(0o600)
    try:
        yield prefix
    finally:
        from netmanager.apply.schedule import running_moves, stop_moves

        for topology in running_moves():  # a schedule's migrations driver (by its PID)
            stop_moves(topology, wait_s=30.0)
        agent_procs.stop_agents()
        for name in kernelstate.namespaces(prefix):
            subprocess.run(["ip", "netns", "del", name], check=False)
