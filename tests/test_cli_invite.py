"""`didlink invite --card`, `inspect`, `accept` in a real subprocess (specs/invitation.md §10)."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from didlink.profile.folder import Profile
from identity.invitation import Invitation, InvitationKind, Response
from identity.keys import IdentityKey
from identity.keystore import KdfParams, create_keystore, read_did
from identity.token import decode_token, encode_token
from tests.support.cli import assert_user_error, run_cli
from tests.support.tokens import card_map, forge, payload_of, token_of

PASSPHRASE = "correct horse battery staple"
CHEAP_KDF = KdfParams(memory_cost=8, iterations=1, lanes=1)  # tests only: fast unlocks
ME = IdentityKey(bytes([7]) * 32)
ALICE = IdentityKey(bytes([1]) * 32)
BOB = IdentityKey(bytes([2]) * 32)
DAY = 86400


def make_profile(home: Path, key: IdentityKey = ME) -> Path:
    home.mkdir(mode=0o700, parents=True)
    create_keystore(home / "keystore.json", key, PASSPHRASE, params=CHEAP_KDF)
    Profile(home).create_store()  # as `didlink init` does
    return home


def card_from(key: IdentityKey, **options: Any) -> str:
    fields: dict[str, Any] = {"now": int(time.time()), "lifetime": DAY}
    fields.update(options)
    return encode_token(Invitation.create(key, **fields))


def store_snapshot(home: Path) -> tuple[list[Any], list[Any]] | None:
    """Everything in the local store (contacts, used ids), or None if there is no store."""
    path = home / "store.sqlite3"
    if not path.exists():
        return None
    with sqlite3.connect(path) as db:
        contacts = db.execute(
            "SELECT did, name, verification, suggested_name, first_seen, last_seen"
            " FROM contacts ORDER BY did"
        ).fetchall()
        used = db.execute("SELECT * FROM used_invitations ORDER BY id").fetchall()
    return contacts, used


def contacts(home: Path) -> dict[str, tuple[str | None, str]]:
    snapshot = store_snapshot(home)
    assert snapshot is not None
    return {row[0]: (row[1], row[2]) for row in snapshot[0]}


# --- invite --------------------------------------------------------------------------------


def test_invite_card_json(home: Path) -> None:
    make_profile(home)
    before = int(time.time())
    result = run_cli("invite", "--card", "--label", "Me at work", "--json", home=home)
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert list(output) == ["token"]
    invitation = decode_token(output["token"])
    assert isinstance(invitation, Invitation)
    assert invitation.inviter == ME.did
    assert invitation.label == "Me at work"
    assert invitation.kind is InvitationKind.CARD
    assert not invitation.multi_use
    assert before <= invitation.created <= int(time.time())
    assert invitation.expires - invitation.created == 30 * DAY  # the default
    assert len(output["token"]) < 400


def test_invite_card_options_and_qr(home: Path) -> None:
    make_profile(home)
    result = run_cli("invite", "--card", "--expires", "2h", "--multi-use", home=home)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    invitation = decode_token(lines[-1])  # the token last (its QR code above it)
    assert isinstance(invitation, Invitation)
    assert invitation.multi_use
    assert invitation.label is None
    assert invitation.expires - invitation.created == 2 * 3600
    assert any("█" in line or "▀" in line for line in lines[:-1])  # the QR code, plain in a pipe
    assert "\x1b" not in result.stdout
    assert "by any number of people" in result.stdout
    assert ME.did in result.stdout


@pytest.mark.parametrize(
    ("expires", "seconds"), [("15m", 900), ("90s", 90), ("30d", 30 * DAY), ("1w", 7 * DAY)]
)
def test_invite_durations(home: Path, expires: str, seconds: int) -> None:
    make_profile(home)
    result = run_cli("invite", "--card", "--expires", expires, "--json", home=home)
    invitation = decode_token(json.loads(result.stdout)["token"])
    assert isinstance(invitation, Invitation)
    assert invitation.expires - invitation.created == seconds


def test_invite_through_init(home: Path) -> None:
    """The real flow, with the default Argon2 cost: init, then a card."""
    assert run_cli("init", home=home).returncode == 0
    result = run_cli("invite", "--card", "--json", home=home)
    assert result.returncode == 0, result.stderr
    invitation = decode_token(json.loads(result.stdout)["token"])
    assert isinstance(invitation, Invitation)
    assert invitation.inviter == read_did(home / "keystore.json")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["invite", "--multi-use"], "connects once"),
        (["invite", "--label", "a\x1bb"], "control characters"),
        (["invite", "--card", "--expires", "10x"], "not a duration"),
        (["invite", "--card", "--expires", "1.5d"], "not a duration"),
        (["invite", "--card", "--expires", "-1d"], "not a duration"),
        (["invite", "--card", "--expires", ""], "not a duration"),
        (["invite", "--card", "--expires", "0d"], "more than zero"),
        (["invite", "--card", "--expires", "3651d"], "3650 days"),
        (["invite", "--card", "--label", ""], "label"),
        (["invite", "--card", "--label", "x" * 65], "64 characters"),
        (["invite", "--card", "--label", "a\x1bb"], "control characters"),
    ],
)
def test_invite_errors(home: Path, args: list[str], needle: str) -> None:
    make_profile(home)
    assert_user_error(run_cli(*args, home=home), needle)


def test_invite_without_identity(home: Path) -> None:
    assert_user_error(run_cli("invite", "--card", home=home), "noIdentity")


def test_invite_wrong_passphrase(home: Path) -> None:
    make_profile(home)
    result = run_cli("invite", "--card", home=home, passphrase="wrong")
    assert_user_error(result, "wrongPassphrase")


def test_invite_without_passphrase_or_terminal(home: Path) -> None:
    make_profile(home)
    assert_user_error(run_cli("invite", "--card", home=home, passphrase=None), "DIDLINK_PASSPHRASE")


# --- inspect -------------------------------------------------------------------------------


def test_inspect_card_json_needs_no_identity(home: Path) -> None:
    now = int(time.time())
    invitation = Invitation.create(ALICE, now=now, lifetime=DAY, label="Alice", multi_use=True)
    result = run_cli("inspect", encode_token(invitation), "--json", home=home)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown == {
        "type": "invitation",
        "kind": "card",
        "inviter": ALICE.did,
        "label": "Alice",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "expires": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + DAY)),
        "use": "multi-use",
        "id": invitation.id.hex(),
        "connect_bytes": 0,
        "relays": [],
        "signature": "valid",
        "verdict": "valid",
    }
    assert not home.exists()  # nothing was created


def test_inspect_text(home: Path) -> None:
    token = card_from(ALICE, label="Alice")
    result = run_cli("inspect", f"  {token[:50]}\n{token[50:]}\n", home=home)
    assert result.returncode == 0, result.stderr
    assert "card" in result.stdout
    assert "valid now" in result.stdout
    assert ALICE.did in result.stdout
    assert "Alice" in result.stdout
    assert "use:           once" in result.stdout


def test_inspect_shows_expired_and_future_tokens(home: Path) -> None:
    now = int(time.time())
    expired = card_from(ALICE, now=now - 2 * DAY, lifetime=DAY)
    future = card_from(ALICE, now=now + DAY)
    result = run_cli("inspect", expired, "--json", home=home)
    assert result.returncode == 0
    assert json.loads(result.stdout)["verdict"] == "expired"
    assert "EXPIRED" in run_cli("inspect", expired, home=home).stdout
    result = run_cli("inspect", future, "--json", home=home)
    assert json.loads(result.stdout)["verdict"] == "notYetValid"


def test_inspect_response(home: Path) -> None:
    invitation = Invitation.create(ALICE, now=int(time.time()), lifetime=DAY)
    response = Response.create(BOB, invitation=invitation, now=int(time.time()), connect=b"xyz")
    result = run_cli("inspect", encode_token(response), "--json", home=home)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["type"] == "response"
    assert shown["responder"] == BOB.did
    assert shown["invitation_id"] == invitation.id.hex()
    assert shown["connect_bytes"] == 3
    assert shown["verdict"] == "valid"


def _tampered(token: str) -> str:
    payload = bytearray(payload_of(token))
    payload[-70] ^= 0x01  # inside the body: the label
    return token_of(bytes(payload))


BAD_TOKENS = [
    ("not a token", "malformed"),
    ("didlink:0OIl", "malformed"),
    ("didlink:" + "z" * 5000, "malformed"),
    (forge(card_map(k0=3)), "unsupportedVersion"),
    (forge(card_map(k3=bytes(32))), "badDid"),
    (forge(card_map(), seed=bytes([9]) * 32), "badSignature"),
]


@pytest.mark.parametrize(("token", "code"), BAD_TOKENS)
def test_inspect_bad_tokens(home: Path, token: str, code: str) -> None:
    assert_user_error(run_cli("inspect", token, home=home), f"error: {code}: ")
    assert_user_error(run_cli("inspect", token, "--json", home=home), code)


def test_inspect_tampered_token(home: Path) -> None:
    token = _tampered(card_from(ALICE, label="Alice"))
    assert_user_error(run_cli("inspect", token, home=home), "badSignature")


# --- accept --------------------------------------------------------------------------------


def test_accept_card(home: Path) -> None:
    make_profile(home)
    result = run_cli("accept", card_from(ALICE, label="Alice"), home=home)
    assert result.returncode == 0, result.stderr
    assert ALICE.did in result.stdout
    assert "unverified" in result.stdout
    assert 'suggest the name "Alice"' in result.stdout
    # A card's label is only a suggestion: the contact stays unnamed until the user adopts it.
    assert contacts(home) == {ALICE.did: (None, "unverified")}
    adopted = run_cli("contacts", "rename", ALICE.did, home=home)
    assert adopted.returncode == 0, adopted.stderr
    assert contacts(home) == {ALICE.did: ("Alice", "unverified")}


def test_accept_json_and_a_label_that_is_only_a_suggestion(home: Path) -> None:
    make_profile(home)
    first = run_cli("accept", card_from(ALICE, label="Sam"), "--json", home=home)
    assert json.loads(first.stdout) == {
        "did": ALICE.did,
        "name": None,
        "suggested_name": "Sam",
        "new": True,
    }
    assert run_cli("contacts", "rename", ALICE.did, home=home).returncode == 0
    second = run_cli("accept", card_from(BOB, label="sam"), "--json", home=home)
    assert json.loads(second.stdout) == {
        "did": BOB.did,
        "name": None,
        "suggested_name": "sam",
        "new": True,
    }
    # Adopting a suggestion that is another contact's name (or looks like it) is refused.
    assert_user_error(run_cli("contacts", "rename", BOB.did, home=home), "already used")
    assert contacts(home) == {ALICE.did: ("Sam", "unverified"), BOB.did: (None, "unverified")}


def test_accept_label_that_is_not_a_valid_name(home: Path) -> None:
    make_profile(home)
    result = run_cli("accept", card_from(ALICE, label="did:key:me"), "--json", home=home)
    assert json.loads(result.stdout)["name"] is None
    assert json.loads(result.stdout)["suggested_name"] is None


def test_accept_single_use_twice(home: Path) -> None:
    make_profile(home)
    token = card_from(ALICE, label="Alice")
    assert run_cli("accept", token, home=home).returncode == 0
    before = store_snapshot(home)
    assert before is not None and len(before[1]) == 1
    assert_user_error(run_cli("accept", token, home=home), "alreadyUsed")
    assert store_snapshot(home) == before


def test_accept_multi_use_twice(home: Path) -> None:
    make_profile(home)
    token = card_from(ALICE, label="Alice", multi_use=True)
    assert run_cli("accept", token, home=home).returncode == 0
    again = run_cli("accept", token, "--json", home=home)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {
        "did": ALICE.did,
        "name": None,
        "suggested_name": "Alice",
        "new": False,
    }
    snapshot = store_snapshot(home)
    assert snapshot is not None and snapshot[1] == []  # multi-use ids are not recorded


def test_accept_new_card_of_known_contact_keeps_name(home: Path) -> None:
    make_profile(home)
    assert run_cli("accept", card_from(ALICE, label="Alice"), home=home).returncode == 0
    assert run_cli("contacts", "rename", ALICE.did, home=home).returncode == 0
    result = run_cli("accept", card_from(ALICE, label="Queen"), home=home)
    assert result.returncode == 0
    assert "already a contact" in result.stdout
    assert contacts(home) == {ALICE.did: ("Alice", "unverified")}


def test_accept_own_card(home: Path) -> None:
    make_profile(home)
    assert_user_error(run_cli("accept", card_from(ME), home=home), "your own card")
    snapshot = store_snapshot(home)
    assert snapshot is None or snapshot == ([], [])


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda now: card_from(ALICE, now=now - 2 * DAY, lifetime=DAY), "expired"),
        (lambda now: card_from(ALICE, now=now + 3600), "notYetValid"),
        (lambda now: _tampered(card_from(ALICE, label="Alice")), "badSignature"),
        *[(lambda now, token=token: token, code) for token, code in BAD_TOKENS],
    ],
)
def test_accept_bad_tokens_leave_store_unchanged(home: Path, make: Any, code: str) -> None:
    make_profile(home)
    assert run_cli("accept", card_from(BOB, label="Bob"), home=home).returncode == 0
    before = store_snapshot(home)
    assert_user_error(run_cli("accept", make(int(time.time())), home=home), f"error: {code}: ")
    assert store_snapshot(home) == before


def test_accept_response_token(home: Path) -> None:
    make_profile(home)
    invitation = Invitation.create(ME, now=int(time.time()), lifetime=DAY)
    response = Response.create(ALICE, invitation=invitation, now=int(time.time()))
    assert_user_error(run_cli("accept", encode_token(response), home=home), "response token")
    assert store_snapshot(home) == ([], [])  # nothing written (the store is made by init)


def test_accept_live_invitation(home: Path) -> None:
    make_profile(home)
    token = card_from(ALICE, kind=InvitationKind.INVITE, connect=b"offer")
    assert_user_error(run_cli("accept", token, home=home), "transport")
    assert store_snapshot(home) == ([], [])


def test_accept_without_identity(home: Path) -> None:
    assert_user_error(run_cli("accept", card_from(ALICE), home=home), "noIdentity")


# --- paste errors said in words, `accept` without TOKEN (issue 27, 5) -----------------------


def _live_invitation() -> str:
    """A live invitation of the usual length (its transport offer stands in as bytes)."""
    return card_from(ALICE, kind=InvitationKind.INVITE, lifetime=900, connect=bytes(98))


def test_a_truncated_token_is_called_incomplete(home: Path) -> None:
    make_profile(home)
    token = _live_invitation()
    result = run_cli("accept", token[:200], home=home)
    assert_user_error(result, "error: malformed: ", "looks incomplete: 200 of about 330 characters")
    assert store_snapshot(home) == ([], [])  # nothing written
    shorter = run_cli("inspect", token[:120], home=home)  # no kind expected: the shortest token
    assert_user_error(shorter, "error: malformed: ", "looks incomplete: 120 characters")


def test_a_dropped_character_is_called_altered(home: Path) -> None:
    make_profile(home)
    token = _live_invitation()
    result = run_cli("accept", token[:100] + token[101:], home=home)
    assert_user_error(result, "error: malformed: ", "looks altered: a character may have been")
    assert store_snapshot(home) == ([], [])  # nothing written


def test_accept_reads_the_token_from_stdin_in_pieces(home: Path) -> None:
    """No TOKEN: stdin (not a terminal) is read whole; spaces and line breaks are dropped."""
    make_profile(home)
    token = card_from(ALICE, label="Alice")
    pasted = "  " + token[:60] + "\n" + token[60:130] + " \r\n " + token[130:] + "\n"
    result = run_cli("accept", home=home, stdin=pasted)
    assert result.returncode == 0, result.stderr
    assert ALICE.did in result.stdout
    assert contacts(home) == {ALICE.did: (None, "unverified")}


def test_accept_without_a_token(home: Path) -> None:
    make_profile(home)
    assert_user_error(run_cli("accept", home=home, stdin=""), "no token was given")
    assert_user_error(run_cli("accept", "--jsonl", home=home, stdin=""), "as an argument")


def test_the_card_ends_with_its_token_and_says_what_to_do_with_it(home: Path) -> None:
    make_profile(home)
    result = run_cli("invite", "--card", "--no-qr", home=home, env={"TZ": "Europe/Paris"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert isinstance(decode_token(lines[-1]), Invitation)
    assert len(lines) == 4  # --no-qr: what it is, until when, what to do; the token
    assert "they paste it into didlink accept" in lines[2]
    assert re.search(r"until \d{4}-\d\d-\d\d \d\d:\d\d CET \(\d\d:\d\d UTC\)\.", lines[1])
