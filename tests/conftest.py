from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty didlink profile folder (DIDLINK_HOME) for one test."""
    path = tmp_path / "profile"
    return path
