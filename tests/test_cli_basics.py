from __future__ import annotations

from pathlib import Path

from tests.support.cli import run_cli


def test_help_lists_commands(home: Path) -> None:
    result = run_cli("--help", home=home)
    assert result.returncode == 0
    assert "didlink" in result.stdout


def test_unknown_command_is_a_usage_error(home: Path) -> None:
    result = run_cli("no-such-command", home=home)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
