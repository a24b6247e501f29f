"""What the CLI prints for a person is display-safe (issue 26, class 1): `history`, `contacts`,
`inspect`, `safety-number` and error lines escape whatever a peer or a token controls, through
the real `didlink` process; `--json` stays exact."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from didlink.profile import history
from didlink.profile.history import Direction
from didlink.profile.sealing import Sealer
from didlink.profile.store import Store
from didlink.words.display import is_unsafe
from identity.keys import IdentityKey
from tests.support.cli import run_cli
from tests.support.hostile_text import HOSTILE_TEXTS, assert_display_safe
from tests.test_cli_invite import ME, make_profile

PEER = IdentityKey(bytes(range(1, 33))).did
LEGACY = IdentityKey(bytes(range(3, 35))).did
T0 = datetime(2026, 11, 25, 12, 3, tzinfo=UTC)


@pytest.fixture(scope="module")
def hostile_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A profile whose history holds every hostile text from PEER, and a contact whose name was
    stored (by an older didlink, or by hand) with control characters in it."""
    home = make_profile(tmp_path_factory.mktemp("hostile") / "home")
    with Store(home / "store.sqlite3") as store:
        store.add_contact(PEER, name="Peer", now=T0)
        store.add_contact(LEGACY, now=T0)
        sealer = Sealer(ME)
        for i, text in enumerate(HOSTILE_TEXTS):
            history.append(
                store,
                sealer,
                peer_did=PEER,
                direction=Direction.IN,
                message_id=f"{i:032x}",
                text=text,
                now=T0,
            )
    raw = sqlite3.connect(home / "store.sqlite3")
    with raw:
        raw.execute(
            "UPDATE contacts SET name = ?, suggested_name = ? WHERE did = ?",
            ("Le\x1b]0;PWNED-TITLE\x07gacy", "\u202eecila\x1b[2J", LEGACY),
        )
    raw.close()
    return home


def test_history_shows_every_hostile_text_inert(hostile_home: Path) -> None:
    result = run_cli("history", "Peer", home=hostile_home)
    assert result.returncode == 0, result.stderr
    assert_display_safe(result.stdout)
    header, *lines = result.stdout.splitlines()
    assert header.startswith("Messages with Peer (times in ")
    assert all(line.startswith(("[", "  \u2502 ")) for line in lines), lines
    as_json = run_cli("history", "Peer", "--json", home=hostile_home)
    assert [entry["text"] for entry in json.loads(as_json.stdout)] == list(HOSTILE_TEXTS)
    assert not any(is_unsafe(ch) for ch in as_json.stdout.rstrip("\n"))


def test_contacts_and_safety_number_show_stored_names_inert(hostile_home: Path) -> None:
    listing = run_cli("contacts", home=hostile_home, passphrase=None)
    assert listing.returncode == 0, listing.stderr
    assert_display_safe(listing.stdout)
    assert "Le\\x1b]0;PWNED-TITLE\\x07gacy" in listing.stdout
    number = run_cli("safety-number", LEGACY, "--no-qr", home=hostile_home, passphrase=None)
    assert number.returncode == 0, number.stderr
    assert_display_safe(number.stdout)


@pytest.mark.parametrize("text", HOSTILE_TEXTS[:6])
def test_error_lines_escape_what_they_quote(hostile_home: Path, text: str) -> None:
    for args in (("safety-number", text), ("contacts", "rename", "Peer", text)):
        result = run_cli(*args, home=hostile_home, passphrase=None)
        assert result.returncode == 2
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert_display_safe(result.stderr)
