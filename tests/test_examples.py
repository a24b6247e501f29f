"""Every script in examples/ runs to completion by itself (issue 28): only DIDLINK_HOME and
DIDLINK_PASSPHRASE set, nothing on stdin; and the echo bot stops after the messages it was
given, with the other side started in-process."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

pytestmark = pytest.mark.timeout(180)


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda path: path.name)
def test_every_example_runs_by_itself(script: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}
    env.update(DIDLINK_HOME=str(tmp_path / "home"), DIDLINK_PASSPHRASE="example passphrase")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), "an example says what it did"
    assert result.stderr == "", "a library prints nothing of its own"
    assert list((tmp_path / "home").iterdir()) == []  # its temporary profiles are gone


def test_the_examples_import_only_the_top_level_package() -> None:
    for script in EXAMPLES:
        for line in script.read_text().splitlines():
            if line.startswith(("import ", "from ")) and "didlink" in line:
                assert line.startswith("from didlink import "), f"{script.name}: {line}"


def test_the_echo_bot_stops_after_the_given_number_of_messages(tmp_path: Path) -> None:
    bot = _module("echo_bot")
    echoes = asyncio.run(bot.main(tmp_path, count=2))
    assert echoes == ["echo: message 1", "echo: message 2"]


def test_the_documentation_builds_from_the_docstrings(tmp_path: Path) -> None:
    """`make docs`: mkdocs with mkdocstrings, strict (a broken reference fails the build)."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    page = (tmp_path / "api" / "index.html").read_text()
    assert "submit_response" in page and "MessageReceived" in page
