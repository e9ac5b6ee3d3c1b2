"""Shared fixtures. Tests that need the real data in POLYCHROME_DATA skip without it, unless
POLYCHROME_REQUIRE_DATA=1 (set by .ci/run), which turns the skip into a failure so CI never skips them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from polychrome.settings import data_root


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Each test session caches into its own folder, so tests never read a stale user cache."""
    monkeypatch.setenv("POLYCHROME_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def shared(*parts: str) -> Path:
    """A path inside the shared data root, or a skip (a failure under POLYCHROME_REQUIRE_DATA=1)."""
    path = data_root().joinpath(*parts)
    if not path.exists():
        reason = f"needs {path} (set POLYCHROME_DATA to the folder holding the shared data)"
        if os.environ.get("POLYCHROME_REQUIRE_DATA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path
