"""Fixtures of the mapping tests; the model builders are in mapping_helpers.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private netmanager state directory (NETMANAGER_STATE_DIR)."""
    directory = tmp_path / "state"
    monkeypatch.setenv("NETMANAGER_STATE_DIR", str(directory))
    yield directory
