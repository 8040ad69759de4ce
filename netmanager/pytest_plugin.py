"""A pytest plugin (registered through the ``pytest11`` entry point): test distributed
software on a topology netmanager builds.

::

    import pytest

    pytestmark = pytest.mark.netmanager(real="real.xml", virtual="virtual.xml", local=True)

    def test_ping(netmanager_testbed):
        done = netmanager_testbed.exec("vm1", ["ping", "-c1", "10.0.0.2"])
        assert done.returncode == 0

The ``netmanager_testbed`` fixture is the :class:`netmanager.Testbed` of the marker
closest to the test (on the module, a class or the test): relative paths are relative
to the test file; the other keywords go to ``Testbed`` (``local``, ``state_dir``,
``ns_prefix``, ``base_dir``).  Each topology is applied once per module, when a test
first asks for it, and destroyed after the module's last test.  Without root, or when the
machine lacks what the topology needs (NetEm, 802.1Q, a hypervisor, QEMU), its tests are
skipped with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: apply errors that say the machine lacks something, not that the topology or the
#: program is wrong: NetEm (E701), 802.1Q (E706), the guest kernel or busybox package
#: (E750, E751), QEMU (E754)
MISSING_HERE = frozenset({"E701", "E706", "E750", "E751", "E754"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "netmanager(real, virtual, local=False, **options): the topology the "
        "netmanager_testbed fixture applies (once per module) and destroys",
    )


class _Skipped:
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _testbed_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("netmanager")
    if marker is None:
        raise pytest.UsageError(
            f"{request.node.nodeid}: netmanager_testbed needs "
            "@pytest.mark.netmanager(real=..., virtual=...) on the test, its class or module"
        )
    options = dict(marker.kwargs)
    for name, value in zip(("real", "virtual"), marker.args, strict=False):
        options.setdefault(name, value)
    missing = [name for name in ("real", "virtual") if name not in options]
    if missing:
        raise pytest.UsageError(
            f"{request.node.nodeid}: the netmanager marker needs {' and '.join(missing)}"
        )
    here = Path(request.path).parent
    for name in ("real", "virtual", "state_dir", "base_dir"):
        value = options.get(name)
        is_text = isinstance(value, str) and value.lstrip().startswith("<")
        if isinstance(value, str | Path) and not is_text and not Path(value).is_absolute():
            options[name] = here / value
    return options


@pytest.fixture(scope="module")
def _netmanager_testbeds() -> Iterator[dict[str, Any]]:
    """The module's testbeds by their options; destroyed when the module is done."""
    from netmanager.errors import NetmanagerError

    testbeds: dict[str, Any] = {}
    yield testbeds
    failures = []
    for testbed in reversed(list(testbeds.values())):
        if isinstance(testbed, _Skipped) or not testbed.applied:
            continue
        try:
            testbed.destroy()
        except NetmanagerError as exc:
            failures.append(exc)
    if failures:
        raise failures[0]


@pytest.fixture
def netmanager_testbed(request: pytest.FixtureRequest, _netmanager_testbeds: dict[str, Any]) -> Any:
    """The applied :class:`netmanager.Testbed` of the closest ``netmanager`` marker."""
    from netmanager import Testbed
    from netmanager.errors import NetmanagerError

    options = _testbed_options(request)
    key = repr(sorted((k, str(v)) for k, v in options.items()))
    known = _netmanager_testbeds.get(key)
    if isinstance(known, _Skipped):
        pytest.skip(known.reason)
    if known is not None:
        return known
    if os.geteuid() != 0:
        reason = "netmanager_testbed needs root: it builds network namespaces"
        _netmanager_testbeds[key] = _Skipped(reason)
        pytest.skip(reason)
    testbed = Testbed(**options)
    try:
        testbed.apply()
    except NetmanagerError as exc:
        codes = {d.code for d in exc.errors}
        if codes and codes <= MISSING_HERE:
            reason = "; ".join(f"[{d.code}] {d.message}" for d in exc.errors)
            _netmanager_testbeds[key] = _Skipped(f"this machine cannot run it: {reason}")
            pytest.skip(_netmanager_testbeds[key].reason)
        raise
    _netmanager_testbeds[key] = testbed
    return testbed
