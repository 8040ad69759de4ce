"""Fixtures of the kernel engine's tests: a unique namespace prefix per test, cleaned up always."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from tests.kernel.helpers import delete_namespaces, netns_names, root_links

ROOT = os.geteuid() == 0


@pytest.fixture
def prefix() -> Iterator[str]:
    """A prefix (``nmt`` + 6 hex digits) for every namespace the test creates.

    Afterwards every namespace with that prefix is deleted — also when the test failed —
    and the root namespace's links must be exactly as they were.
    """
    name = f"nmt{secrets.token_hex(3)}"
    before = root_links() if ROOT else []
    try:
        yield name
    finally:
        if ROOT:
            delete_namespaces(name)
            assert netns_names(name) == [], "namespaces of the test are left"
            assert root_links() == before, "the root namespace's links changed"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="needs root: creates namespaces, links and qdiscs")
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here) and "privileged" in item.keywords and not ROOT:
            item.add_marker(skip)
