"""`didlink chat` errors before anything starts (exit 2, one line, nothing on stdout)."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import assert_user_error, run_cli


def test_unknown_contact_and_bad_options(tmp_path: Path) -> None:
    home = tmp_path / "p"
    assert run_cli("init", home=home).returncode == 0
    assert_user_error(run_cli("chat", "nobody", "--jsonl", home=home), "nobody")
    assert_user_error(run_cli("chat", "did:key:z6MkNotAContactAtAll", home=home), "contact")
    assert_user_error(run_cli("chat", "x", "--expires", "soon", home=home), "duration")
    assert_user_error(
        run_cli("chat", "x", env={"DIDLINK_CONNECT_TIMEOUT": "-1"}, home=home),
        "DIDLINK_CONNECT_TIMEOUT",
    )


def test_no_identity(tmp_path: Path) -> None:
    assert_user_error(run_cli("chat", "bob", home=tmp_path / "empty"), "init")
