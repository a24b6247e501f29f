"""Help for people (issue 27, point 9): `didlink` alone says where to start and fits 80x24; every
command has a whole one-line summary and an "Examples:" section; `init` says where the key lives,
that a lost passphrase is lost, and what to do next; `inspect` shows local times with the zone.

The prose is not asserted, only its shape (tests/test_cli_*.py run the real CLI)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from didlink.cli.main import main
from identity.invitation import Invitation
from identity.keys import IdentityKey
from identity.token import encode_token
from tests.support.cli import run_cli

WIDE = {"COLUMNS": "80"}


def every_command(
    group: click.Group = main, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from every_command(command, (*path, name))


COMMANDS = list(every_command())


def help_of(*path: str) -> str:
    result = CliRunner().invoke(main, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def test_there_are_commands_to_check() -> None:
    assert {("init",), ("invite",), ("accept",), ("contacts", "rename")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_examples_that_run_it(path: tuple[str, ...]) -> None:
    text = help_of(*path)
    assert "Examples:" in text
    examples = text[text.index("Examples:") :].splitlines()[1:]
    commands = [line.split("#")[0].strip() for line in examples if line.strip()]
    assert commands, text
    assert all(c.startswith("didlink ") for c in commands), commands
    assert any(c.startswith("didlink " + " ".join(path)) for c in commands), (path, commands)
    assert all(len(line) <= 80 for line in text.splitlines()), text


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_summary_is_a_whole_sentence(path: tuple[str, ...]) -> None:
    group: click.Command = main
    for name in path:
        assert isinstance(group, click.Group)
        group = group.commands[name]
    summary = group.get_short_help_str(limit=1000)
    assert summary.endswith(".") and not summary.endswith("..."), summary
    assert len("  safety-number  " + summary) <= 80, summary


def test_didlink_alone_says_where_to_start_and_fits_80x24(tmp_path: Path) -> None:
    result = run_cli(home=tmp_path / "new", env=WIDE)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) <= 22  # with the shell's prompt and the command line, on 24 rows
    assert all(len(line) <= 80 for line in lines)
    assert any(line.startswith("Start here: didlink init") for line in lines)
    assert not any(line.rstrip().endswith("...") for line in lines)
    assert "didlink --help" in result.stdout


def test_didlink_alone_with_an_identity_says_what_next(tmp_path: Path) -> None:
    home = tmp_path / "me"
    assert run_cli("init", home=home).returncode == 0
    result = run_cli(home=home, env=WIDE)
    assert result.returncode == 0
    assert "Start here" not in result.stdout
    assert "didlink invite" in result.stdout


def test_the_full_help_lists_every_command_whole() -> None:
    text = help_of()
    assert "Start here: didlink init" in text
    for (name,) in (path for path in COMMANDS if len(path) == 1):
        assert re.search(rf"^  {re.escape(name)} +\S", text, re.MULTILINE), name
    described = [line for line in text.splitlines() if not line.startswith("Usage:")]
    assert not any(line.rstrip().endswith("...") for line in described), text  # cut short


def test_init_says_where_the_key_is_that_a_lost_passphrase_is_lost_and_what_next(
    tmp_path: Path,
) -> None:
    home = tmp_path / "me"
    result = run_cli("init", home=home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("did:key:")  # stdout: the DID alone, for scripts
    told = result.stderr
    assert str(home / "keystore.json") in told
    assert "cannot be recovered" in told
    assert "didlink backup phrase" in told and "didlink backup export" in told
    assert re.search(r"^Next: didlink invite", told, re.MULTILINE)


CARD = encode_token(
    Invitation.create(IdentityKey(bytes([1]) * 32), now=1_700_000_000, lifetime=86400, label="Al")
)


def test_inspect_shows_local_times_with_the_zone_and_no_empty_fields(tmp_path: Path) -> None:
    result = run_cli("inspect", CARD, home=tmp_path, env={"TZ": "Europe/Paris"})
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "created:       2023-11-14 23:13 CET (22:13 UTC)" in text
    assert "expires:       2023-11-15 23:13 CET (22:13 UTC)" in text
    assert "connect bytes" not in text and ": 0\n" not in text
    assert "EXPIRED" in text and "Next:" not in text  # nothing to do with an expired card
    as_json = run_cli("inspect", CARD, "--json", home=tmp_path, env={"TZ": "Europe/Paris"})
    assert '"created": "2023-11-14T22:13:20Z"' in as_json.stdout  # JSON: UTC, unchanged


def test_accept_and_rename_and_an_empty_list_end_with_a_next_step(tmp_path: Path) -> None:
    home = tmp_path / "me"
    assert run_cli("init", home=home).returncode == 0
    empty = run_cli("contacts", home=home, passphrase=None)
    assert empty.returncode == 0, empty.stderr
    assert "Next: didlink invite" in empty.stdout
    card = encode_token(
        Invitation.create(IdentityKey(bytes([1]) * 32), now=int(time.time()), lifetime=600)
    )
    accepted = run_cli("accept", card, home=home)
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.splitlines()[-1].startswith("Next: ")
    did = IdentityKey(bytes([1]) * 32).did
    renamed = run_cli("contacts", "rename", did, "Al Smith", home=home, passphrase=None)
    assert renamed.returncode == 0, renamed.stderr
    assert renamed.stdout.splitlines()[-1] == "Next: didlink chat 'Al Smith' to chat with them."
