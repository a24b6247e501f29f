from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.key_agents import kill_agents, private_runtime


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty didlink profile folder (DIDLINK_HOME) for one test."""
    path = tmp_path / "profile"
    return path


@pytest.fixture(scope="session", autouse=True)
def runtime_dir() -> Iterator[Path]:
    """The suite's own XDG_RUNTIME_DIR (where key agents put their sockets), never the user's;
    set before any fixture runs a command, removed at the end with any agent left in it."""
    with private_runtime() as runtime, pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_RUNTIME_DIR", str(runtime))
        yield runtime


@pytest.fixture(autouse=True)
def no_agent_left(runtime_dir: Path) -> Iterator[None]:
    """Every key agent a test started (`didlink unlock`) is killed when the test ends."""
    yield
    kill_agents(runtime_dir)
