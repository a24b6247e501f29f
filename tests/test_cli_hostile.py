"""Hostile input through the real `didlink` command (issue 7 §1): a sample of the corpus.

Each bad token, DID, scanned safety number or damaged keystore goes through a real subprocess
(tests.support.cli.run_cli) against a profile that has an identity, a contact and a used
invitation. Every one must end with exit code 2, nothing on stdout, one clean line on stderr
(assert_user_error), and leave every file of the profile byte-identical.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from identity.invitation import Invitation, InvitationKind, Response
from identity.keys import IdentityKey
from identity.keystore import create_keystore
from identity.token import encode_token
from tests.support import hostile
from tests.support.cli import assert_user_error, run_cli
from tests.test_corpus import load_cases

DAY = 86400
ME = IdentityKey(bytes([0x4D]) * 32)
FRIEND = IdentityKey(bytes([0x46]) * 32)
USED_CARD_SEED = IdentityKey(bytes([0x55]) * 32)

CORPUS_TOKENS = [
    "empty",
    "prefix-only",
    "no-prefix",
    "non-base58-zero",
    "zero-width-space",
    "over-4096-chars",
    "tag-3",
    "signature-zero",
    "signature-of-response-domain",
    "invitation-deep-array-10000",
    "invitation-huge-bytes-2^63",
    "invitation-unsorted-keys",
    "invitation-field-4-float64",
    "invitation-version-3",
    "invitation-small-order-key-1",
    "invitation-label-bidi-override",
]
CORPUS_DIDS = [
    "empty",
    "upper-case-method",
    "trailing-newline",
    "fragment",
    "base58-zero",
    "201-chars",
    "ed25519-31-bytes",
    "ed25519-not-on-curve",
    "varint-non-minimal",
    "codec-rsa",
    "ed25519-small-order-1",
]
CORPUS_SAFETY = ["empty", "version-2", "59-digits", "arabic-indic-digits"]


def _corpus_text(target: str, names: list[str]) -> list[str]:
    by_name = {case["name"]: case for case in load_cases(target)}
    texts = []
    for name in names:
        text = by_name[name]["text"]
        assert isinstance(text, str)
        texts.append(text)
    return texts


def _card(key: IdentityKey, *, now: int, **options: object) -> str:
    return encode_token(Invitation.create(key, now=now, lifetime=DAY, **options))  # type: ignore[arg-type]


def _semantic_tokens() -> list[tuple[str, str]]:
    """Authentic tokens `accept` must still refuse (time, use, kind, owner)."""
    now = int(time.time())
    invitation = Invitation.create(ME, now=now, lifetime=DAY)
    return [
        ("expired", _card(FRIEND, now=now - 3 * DAY)),
        ("not-yet-valid", _card(FRIEND, now=now + DAY)),
        ("already-used", _used_card()),
        ("own-card", _card(ME, now=now)),
        ("response", encode_token(Response.create(FRIEND, invitation=invitation, now=now))),
        ("live-bad-offer", _card(FRIEND, now=now, kind=InvitationKind.INVITE, connect=b"x")),
        (
            "live-deep-offer",
            _card(FRIEND, now=now, kind=InvitationKind.INVITE, connect=b"\x81" * 1000 + b"\x00"),
        ),
        (
            "live-expired",
            _card(FRIEND, now=now - 3 * DAY, kind=InvitationKind.INVITE, connect=_offer()),
        ),
    ]


def _offer() -> bytes:
    return hostile.sample_offer()


_USED: dict[str, str] = {}


def _used_card() -> str:
    if "token" not in _USED:
        _USED["token"] = _card(USED_CARD_SEED, now=int(time.time()) - 60, label="Used")
    return _USED["token"]


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A profile with an identity, one contact, and one used single-use invitation."""
    home = tmp_path_factory.mktemp("hostile") / "profile"
    home.mkdir(mode=0o700)
    create_keystore(home / "keystore.json", ME, hostile.PASSPHRASE, params=hostile.CHEAP_KDF)
    assert run_cli("accept", _used_card(), home=home).returncode == 0
    assert run_cli("accept", _card(FRIEND, now=int(time.time())), home=home).returncode == 0
    return home


def snapshot(home: Path) -> dict[str, bytes]:
    """Every file of the profile, by relative path, with its bytes."""
    return {
        str(path.relative_to(home)): path.read_bytes()
        for path in sorted(home.rglob("*"))
        if path.is_file()
    }


def _run_hostile(home: Path, *args: str) -> None:
    before = snapshot(home)
    assert_user_error(run_cli(*args, home=home, passphrase=hostile.PASSPHRASE))
    assert snapshot(home) == before, "the profile changed"


TOKENS = [
    *[
        pytest.param(text, id=f"corpus-{name}")
        for name, text in zip(CORPUS_TOKENS, _corpus_text("token", CORPUS_TOKENS), strict=True)
    ],
]


@pytest.mark.parametrize("token", TOKENS)
def test_accept_corpus_token(profile: Path, token: str) -> None:
    _run_hostile(profile, "accept", token)


@pytest.mark.parametrize("name", [name for name, _ in _semantic_tokens()])
def test_accept_authentic_but_unacceptable_token(profile: Path, name: str) -> None:
    token = dict(_semantic_tokens())[name]
    _run_hostile(profile, "accept", token)


@pytest.mark.parametrize("name", ["over-4096-chars", "tag-255", "invitation-nan-half"])
def test_inspect_corpus_token(profile: Path, name: str) -> None:
    [token] = _corpus_text("token", [name])
    _run_hostile(profile, "inspect", token)


@pytest.mark.parametrize(
    "did",
    [
        pytest.param(text, id=name)
        for name, text in zip(CORPUS_DIDS, _corpus_text("did", CORPUS_DIDS), strict=True)
    ],
)
def test_resolve_corpus_did(profile: Path, did: str) -> None:
    _run_hostile(profile, "resolve", did)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(text, id=name)
        for name, text in zip(CORPUS_SAFETY, _corpus_text("safety_qr", CORPUS_SAFETY), strict=True)
    ],
)
def test_verify_with_a_bad_scanned_payload(profile: Path, payload: str) -> None:
    _run_hostile(profile, "contacts", "verify", FRIEND.did, "--scanned", payload)


@pytest.mark.parametrize(
    "name", ["truncated-half", "version-2", "memory-4-GiB-plus-1", "did-swapped-for-alices"]
)
def test_damaged_keystore(profile: Path, tmp_path: Path, name: str) -> None:
    home = tmp_path / "damaged"
    shutil.copytree(profile, home)
    [case] = [case for case in load_cases("keystore") if case["name"] == name]
    (home / "keystore.json").write_bytes(bytes.fromhex(case["hex"]))
    command = ("invite", "--card") if name == "did-swapped-for-alices" else ("whoami",)
    _run_hostile(home, *command)


@pytest.mark.parametrize("command", ["inspect", "accept"])
def test_bignum_version_token(profile: Path, command: str) -> None:
    [case] = [
        c for c in load_cases("token") if c["name"] == "invitation-version-bignum-4800-digits"
    ]
    _run_hostile(profile, command, case["text"])
