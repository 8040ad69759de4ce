"""A namespace's file with nothing mounted on it — what a creator killed between creating
``/run/netns/NAME`` and mounting the namespace leaves (``ip netns add`` has the same
window) — is no namespace: the engine sees it absent and creates the namespace over it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netmanager.kernel import Engine, HostState, netns
from netmanager.kernel.objects import Namespace

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")


def test_a_file_without_a_namespace_is_made_one(prefix: str) -> None:
    name = f"{prefix}a"
    Path(netns.path_of(name)).touch()  # as a killed creator leaves it
    assert not netns.exists(name)
    with Engine() as engine:
        assert engine.backend.absent([name]) == {name}
        engine.apply(HostState(frozenset({Namespace(name)})), namespaces=[name])
    assert netns.exists(name)
    home = netns.current_fd()
    try:
        with pytest.raises(FileExistsError):  # a namespace that is one stays
            netns.create(name, home)
    finally:
        os.close(home)
