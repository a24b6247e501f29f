"""The backup file format (identity/backup.py, specs/backup.md section 2): round trip, every bit
flip and truncation refused, limits checked before any work, the contents validated.

Most tests use tiny Argon2 parameters (`FAST`), written into the file, so that the every-bit
tests stay quick; the KDF and AEAD are cross-checked against libsodium (PyNaCl).
"""

from __future__ import annotations

import base64
import json
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import nacl.bindings
import nacl.pwhash
import pytest

from identity import canonical
from identity.backup import (
    AD_LABEL,
    MAX_FILE_SIZE,
    MAX_SESSION_SEALED,
    Backup,
    BackupReach,
    BackupRelays,
    BackupSession,
    BackupSetting,
    make_backup,
    open_backup,
    parse_backup,
    seal_backup,
)
from identity.contact import Contact, Verification
from identity.errors import BackupDoesNotOpen, DamagedBackup
from identity.keys import IdentityKey
from identity.keystore import KdfParams

FAST = KdfParams(memory_cost=64, iterations=1, lanes=1)
PASS = "a long backup passphrase"
KEY = IdentityKey(bytes(range(32)))
T0 = datetime(2026, 11, 25, 20, 16, 8, 123456, tzinfo=UTC)
REACH_KEY = bytes.fromhex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
"""The x-coordinate of secp256k1's generator: a valid x-only public key."""


def did_of(n: int) -> str:
    return IdentityKey(bytes([n]) * 32).did


def sample(contacts: int = 2) -> Backup:
    people = [
        Contact(
            did=did_of(1),
            name="Alice",
            verification=Verification.SAS,
            first_seen=T0,
            last_seen=T0 + timedelta(days=1),
        ),
        Contact(
            did=did_of(2),
            name=None,
            verification=Verification.SUSPECT,
            first_seen=T0,
            last_seen=T0,
            suggested_name="Bob",
        ),
    ][:contacts]
    settings = [
        BackupSetting("relays", False, b'["wss://relay.example"]'),
        BackupSetting("ice.credentials", True, bytes(range(40))),
    ]
    sessions = [BackupSession(did_of(1), bytes(range(200)))][:contacts]
    received = [(did_of(1), [bytes([1]) * 16, bytes([2]) * 16])][:contacts]
    relays = [
        BackupRelays(did_of(1), ("wss://relay.one.example", "wss://relay.two.example:444/path")),
        BackupRelays(did_of(2), ("ws://127.0.0.1:7447",)),
    ][:contacts]
    reach = [BackupReach(did_of(2), ("wss://reach.example",), REACH_KEY)][: contacts - 1]
    return make_backup(
        KEY,
        people,
        [(b"\x01" * 16, T0)],
        now=T0,
        settings=settings,
        sessions=sessions,
        received=received,
        contact_relays=relays,
        contact_reach=reach,
    )


def sealed(backup: Backup | None = None, **kwargs: Any) -> bytes:
    return seal_backup(sample() if backup is None else backup, PASS, params=FAST, **kwargs)


def test_round_trip() -> None:
    backup = sample()
    opened = open_backup(sealed(backup), PASS)
    assert opened.key.did == KEY.did
    assert opened.key.seed == KEY.seed
    assert opened.contacts == backup.contacts
    assert opened.used_invitations == backup.used_invitations
    assert opened.created == T0
    assert opened.settings == backup.settings
    assert opened.sessions == backup.sessions and opened.received == backup.received
    assert opened.contact_relays == backup.contact_relays and len(opened.contact_relays) == 2
    assert opened.contact_reach == backup.contact_reach and len(opened.contact_reach) == 1
    assert "seed" not in repr(opened) and KEY.seed.hex() not in repr(opened)


def test_the_file_is_one_json_line_and_shows_no_secret_or_did() -> None:
    data = sealed()
    assert data.endswith(b"}\n") and data.count(b"\n") == 1
    envelope = json.loads(data)
    assert list(envelope) == ["format", "version", "kdf", "cipher", "nonce", "ciphertext"]
    assert envelope["format"] == "didlink backup" and envelope["version"] == 1
    assert KEY.did.encode() not in data and b"Alice" not in data


def test_cross_check_with_libsodium() -> None:
    """Argon2id and AES-256-GCM from an independent library open what we sealed."""
    salt, nonce = bytes(range(16)), bytes(range(12))
    envelope = json.loads(sealed(salt=salt, nonce=nonce))
    kdf = envelope["kdf"]
    key = nacl.bindings.crypto_pwhash_alg(
        32,
        PASS.encode(),
        salt,
        kdf["iterations"],
        kdf["memory_cost"] * 1024,
        nacl.pwhash.argon2id.ALG,
    )
    ad = AD_LABEL + bytes([16]) + salt + struct.pack(">III", kdf["memory_cost"], 1, 1)
    plaintext = nacl.bindings.crypto_aead_aes256gcm_decrypt(
        base64.b64decode(envelope["ciphertext"]), ad, nonce, key
    )
    contents = canonical.decode(plaintext)
    assert contents["version"] == 4 and contents["seed"] == KEY.seed
    assert contents["sessions"] == [{"did": did_of(1), "sealed": bytes(range(200))}]
    assert contents["received"] == [{"did": did_of(1), "ids": [b"\x01" * 16, b"\x02" * 16]}]
    assert contents["contacts"][0] == {
        "did": did_of(1),
        "name": "Alice",
        "suggested_name": None,
        "verification": "sas",
        "first_seen": "2026-11-25T20:16:08.123456+00:00",
        "last_seen": "2026-11-26T20:16:08.123456+00:00",
    }
    assert contents["used_invitations"] == [
        {"id": b"\x01" * 16, "used_at": "2026-11-25T20:16:08.123456+00:00"}
    ]
    assert contents["settings"][0] == {
        "name": "relays",
        "sealed": False,
        "value": b'["wss://relay.example"]',
    }


def test_every_single_bit_flip_is_refused() -> None:
    data = sealed(sample(contacts=1))
    refused = 0
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises((DamagedBackup, BackupDoesNotOpen)):
            open_backup(bytes(flipped), PASS)
        refused += 1
    assert refused == len(data) * 8


def test_every_truncation_and_an_extension_is_refused() -> None:
    data = sealed()
    for length in range(len(data)):
        with pytest.raises(DamagedBackup):
            parse_backup(data[:length])
    for extra in (b"\n", b" ", b"{}", b"\x00"):
        with pytest.raises(DamagedBackup):
            parse_backup(data + extra)


def test_a_wrong_passphrase_is_refused() -> None:
    with pytest.raises(BackupDoesNotOpen, match="does not open"):
        open_backup(sealed(), "not the passphrase")


def reencoded(data: bytes, change: Any) -> bytes:
    envelope = json.loads(data)
    change(envelope)
    return json.dumps(envelope, separators=(",", ":")).encode() + b"\n"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda e: e.update(version=2), "version 2"),
        (lambda e: e.update(version=True), "version"),
        (lambda e: e.update(format="didlink keystore"), "not a didlink backup"),
        (lambda e: e.update(extra=1), "unexpected field"),
        (lambda e: e["kdf"].update(memory_cost=8 * 1024 * 1024), "kdf.memory_cost"),
        (lambda e: e["kdf"].update(iterations=1000), "kdf.iterations"),
        (lambda e: e["kdf"].update(lanes=64), "kdf.lanes"),
        (lambda e: e["kdf"].update(algorithm="scrypt"), "kdf.algorithm"),
        (lambda e: e.update(cipher="aes-128-gcm"), "cipher"),
        (lambda e: e.update(nonce="AAAA"), "nonce"),
        (lambda e: e.update(nonce="not base64!"), "nonce"),
        (lambda e: e["kdf"].update(salt="AAAA"), "salt"),
        (lambda e: e.update(ciphertext="AAAA"), "ciphertext"),
        (lambda e: e["kdf"].update(memory_cost=8, lanes=2), "8 KiB per lane"),
    ],
)
def test_bad_headers_are_refused_before_any_work(change: Any, needle: str) -> None:
    """A planted file asking for 8 GiB of Argon2 memory is refused, not obeyed."""
    with pytest.raises(DamagedBackup, match=needle):
        parse_backup(reencoded(sealed(), change))


def test_another_spelling_of_the_same_fields_is_refused() -> None:
    data = sealed()
    pretty = json.dumps(json.loads(data), indent=1).encode() + b"\n"
    with pytest.raises(DamagedBackup, match="not in the form didlink writes"):
        parse_backup(pretty)


def test_size_is_checked_before_parsing() -> None:
    with pytest.raises(DamagedBackup, match="far too large"):
        parse_backup(b" " * (MAX_FILE_SIZE + 1))


def test_not_json_and_a_keystore_are_not_backups() -> None:
    for data in (b"", b"\xff\xfe", b"[]", b'{"version":1}', b"1" * 5000):
        with pytest.raises(DamagedBackup):
            parse_backup(data)


def test_the_header_is_bound_to_the_ciphertext() -> None:
    """Parameters moved from another backup (same passphrase) do not open this one."""
    one, two = sealed(), sealed()
    mixed = reencoded(one, lambda e: e.update(kdf=json.loads(two)["kdf"]))
    with pytest.raises(BackupDoesNotOpen):
        open_backup(mixed, PASS)


def seal_contents(contents: Any) -> bytes:
    """A backup whose (authentic) plaintext is `contents`: for the checks after decryption."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from identity.backup import _associated_data
    from identity.keystore import derive_key

    salt, nonce = bytes(16), bytes(12)
    plaintext = canonical.encode(contents) if not isinstance(contents, bytes) else contents
    ciphertext = AESGCM(derive_key(PASS, salt, FAST)).encrypt(
        nonce, plaintext, _associated_data(salt, FAST)
    )
    envelope = {
        "format": "didlink backup",
        "version": 1,
        "kdf": {"algorithm": "argon2id", "salt": base64.b64encode(salt).decode(), "memory_cost": 64,
                "iterations": 1, "lanes": 1},
        "cipher": "aes-256-gcm",
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }  # fmt: skip
    return json.dumps(envelope, separators=(",", ":")).encode() + b"\n"


def good_contents() -> dict[str, Any]:
    """The decrypted contents of a good backup, as a plain value to change."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from identity.backup import _associated_data
    from identity.keystore import derive_key

    envelope = json.loads(sealed())
    salt = base64.b64decode(envelope["kdf"]["salt"])
    plaintext = AESGCM(derive_key(PASS, salt, FAST)).decrypt(
        base64.b64decode(envelope["nonce"]),
        base64.b64decode(envelope["ciphertext"]),
        _associated_data(salt, FAST),
    )
    value: dict[str, Any] = canonical.decode(plaintext)
    return value


def test_authentic_good_contents_open() -> None:
    assert open_backup(seal_contents(good_contents()), PASS).key.did == KEY.did


def test_version_1_contents_without_settings_still_open() -> None:
    contents = good_contents()
    contents.update(version=1)
    del contents["settings"]
    del contents["sessions"], contents["received"]
    del contents["contact_relays"], contents["contact_reach"]
    opened = open_backup(seal_contents(contents), PASS)
    assert opened.settings == () and len(opened.contacts) == 2


def test_version_2_contents_without_sessions_still_open() -> None:
    contents = good_contents()
    contents.update(version=2)
    del contents["sessions"], contents["received"]
    del contents["contact_relays"], contents["contact_reach"]
    opened = open_backup(seal_contents(contents), PASS)
    assert opened.sessions == () and opened.received == () and len(opened.settings) == 2


def test_version_3_contents_without_relays_still_open() -> None:
    contents = good_contents()
    contents.update(version=3)
    del contents["contact_relays"], contents["contact_reach"]
    opened = open_backup(seal_contents(contents), PASS)
    assert opened.contact_relays == () and opened.contact_reach == ()
    assert len(opened.sessions) == 1 and len(opened.received) == 1


def test_contents_without_any_relays_open() -> None:
    opened = open_backup(sealed(make_backup(KEY, [], [], now=T0)), PASS)
    assert opened.contact_relays == () and opened.contact_reach == ()


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda b: b.update(contact_relays=[BackupRelays(did_of(9), ("wss://a.example",))]), "not"),
        (
            lambda b: b.update(
                contact_reach=[BackupReach(did_of(9), ("wss://a.example",), REACH_KEY)]
            ),
            "not",
        ),
        (
            lambda b: b.update(
                contact_reach=[BackupReach(did_of(1), ("wss://a.example",), bytes(32))]
            ),
            "x-only",
        ),
        (
            lambda b: b.update(contact_relays=[BackupRelays(did_of(1), ("wss://A.example",))]),
            "normalised",
        ),
        (lambda b: b.update(contact_relays=[BackupRelays(did_of(1), ())]), "contact_relays"),
    ],
)
def test_a_backup_that_would_not_open_is_not_sealed(change: Any, needle: str) -> None:
    """A store row a backup cannot carry stops the export (a ValueError, the CLI's one line);
    nothing is written that the import would refuse."""
    parts = dict(sample().__dict__)
    change(parts)
    with pytest.raises(ValueError, match=f"cannot carry.*{needle}"):
        sealed(Backup(**parts))


def test_a_large_backup_is_sealed_and_opens() -> None:
    """The check before sealing reads as much as a reader may (not the tokens' CBOR limit)."""
    people = [
        Contact(did=did_of(n), name=None, verification=Verification.UNVERIFIED, first_seen=T0,
                last_seen=T0)
        for n in range(1, 101)
    ]  # fmt: skip
    sessions = [BackupSession(c.did, bytes(MAX_SESSION_SEALED)) for c in people[:3]]
    relays = [BackupRelays(c.did, ("wss://relay.example",)) for c in people]
    reach = [BackupReach(c.did, ("wss://reach.example",), REACH_KEY) for c in people]
    backup = make_backup(
        KEY, people, [], now=T0, sessions=sessions, contact_relays=relays, contact_reach=reach
    )
    opened = open_backup(sealed(backup), PASS)
    assert opened.sessions == backup.sessions and opened.contact_reach == backup.contact_reach


def _five_relays() -> list[str]:
    return [f"wss://relay{i}.example" for i in range(5)]


def _many_ids(count: int) -> list[bytes]:
    return [i.to_bytes(4, "big") for i in range(count)]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda c: c.update(version=5), "unknown version"),
        (lambda c: c.update(version=0), "unknown version"),
        (lambda c: c.update(version=3), "relays do not match"),  # version 3 has none
        (lambda c: c.pop("contact_relays"), "contents version"),  # version 4 has them
        (lambda c: c.pop("contact_reach"), "contents version"),
        (lambda c: c.update(contact_relays=None), "contents version"),
        (lambda c: c["contact_relays"][0].update(did=did_of(9)), "not a contact's"),
        (lambda c: c["contact_reach"][0].update(did=did_of(9)), "not a contact's"),
        (lambda c: c["contact_relays"][1].update(did=did_of(1)), "relays appear twice"),
        (lambda c: c["contact_reach"].append(c["contact_reach"][0]), "reach appears twice"),
        (
            lambda c: c["contact_relays"][0]["relays"].append("wss://relay.one.example"),
            "relay appears twice",
        ),
        (
            lambda c: c["contact_reach"][0]["relays"].append("wss://reach.example"),
            "relay appears twice",
        ),
        (lambda c: c["contact_relays"][0].update(relays=[]), "contact_relays"),
        (lambda c: c["contact_relays"][0].update(relays=_five_relays()), "contact_relays"),
        (
            lambda c: c["contact_relays"][0].update(relays="wss://relay.one.example"),
            "contact_relays",
        ),
        (
            lambda c: c["contact_relays"][0].update(relays=[b"wss://relay.one.example"]),
            "contact_relays",
        ),
        (lambda c: c["contact_relays"][0].update(relays=["WSS://Relay.example"]), "normalised"),
        (lambda c: c["contact_relays"][0].update(relays=["ws://relay.example"]), "ws://"),
        (lambda c: c["contact_relays"][0].update(relays=["https://relay.example"]), "wss://"),
        (lambda c: c["contact_relays"][0].update(relays=["wss://u:p@relay.example"]), "password"),
        (
            lambda c: c["contact_relays"][0].update(relays=["wss://relay.example/\x1b[2J"]),
            "contact_relays",
        ),
        (lambda c: c["contact_relays"][0].update(relays=["wss://" + "a" * 251]), "contact_relays"),
        (lambda c: c["contact_relays"][0].update(extra=1), "contact_relays"),
        (lambda c: c["contact_relays"][0].pop("relays"), "contact_relays"),
        (lambda c: c["contact_relays"][0].update(did=7), "contact_relays"),
        (lambda c: c.update(contact_relays=[c["contact_relays"][0]] * 100_001), "contact_relays"),
        (lambda c: c.update(contact_reach={}), "contact_reach"),
        (lambda c: c["contact_reach"][0].update(key=REACH_KEY[:31]), "contact_reach"),
        (lambda c: c["contact_reach"][0].update(key=REACH_KEY + b"\x00"), "contact_reach"),
        (lambda c: c["contact_reach"][0].update(key=b"\xff" * 32), "x-only"),
        (lambda c: c["contact_reach"][0].update(key=bytes(32)), "x-only"),
        (lambda c: c["contact_reach"][0].update(key=REACH_KEY.hex()), "contact_reach"),
        (lambda c: c["contact_reach"][0].pop("key"), "contact_reach"),
        (lambda c: c["contact_reach"][0].update(relays=[]), "contact_reach"),
        (lambda c: c["contact_reach"][0].update(relays=_five_relays()), "contact_reach"),
        (lambda c: c["contact_reach"][0].update(relays=["wss://" + "a" * 201]), "200 bytes"),
        (lambda c: c["contact_reach"][0].update(relays=["wss://reach.example/"]), "normalised"),
        (lambda c: c["contact_reach"][0].update(extra=b""), "contact_reach"),
        (lambda c: c.update(version=2), "sessions do not match"),  # version 2 has none
        (lambda c: c.pop("sessions"), "contents version"),  # version 3 has them
        (lambda c: c.pop("received"), "contents version"),
        (lambda c: c["sessions"].append(c["sessions"][0]), "two sessions"),
        (lambda c: c["sessions"][0].update(did=did_of(9)), "not a contact's"),
        (lambda c: c["sessions"][0].update(sealed=b""), "sessions"),
        (lambda c: c["sessions"][0].update(sealed=bytes(1024 * 1024 + 1)), "sessions"),
        (lambda c: c["sessions"][0].update(sealed="text"), "sessions"),
        (lambda c: c["sessions"][0].update(extra=1), "sessions"),
        (lambda c: c.update(sessions=[c["sessions"][0]] * 10_001), "sessions"),
        (lambda c: c["received"][0].update(did=did_of(9)), "not a contact's"),
        (lambda c: c["received"][0]["ids"].append(b"\x01" * 16), "appears twice"),
        (lambda c: c["received"].append(c["received"][0]), "appear twice"),
        (lambda c: c["received"][0].update(ids=[]), "received"),
        (lambda c: c["received"][0].update(ids=[bytes(65)]), "received"),
        (lambda c: c["received"][0].update(ids=_many_ids(200_001)), "received"),
        (lambda c: c["received"].append({"did": did_of(2), "ids": _many_ids(199_999)}), "many"),
        (lambda c: c.update(version=1), "contents version"),  # version 1 has no settings
        (lambda c: c.pop("settings"), "contents version"),  # version 2 has them
        (lambda c: c["settings"].append(c["settings"][0]), "setting appears twice"),
        (lambda c: c["settings"][0].update(name=""), "settings"),
        (lambda c: c["settings"][0].update(name="a\x1bb"), "settings"),
        (lambda c: c["settings"][0].update(sealed=1), "settings"),
        (lambda c: c["settings"][0].update(value=bytes(64 * 1024 + 1)), "settings"),
        (lambda c: c["settings"][0].update(extra=True), "settings"),
        (lambda c: c.update(seed=bytes(31)), "seed"),
        (lambda c: c.update(extra=1), "unexpected field"),
        (lambda c: c["contacts"][0].update(did="did:key:z6Mkbad"), "invalid DID"),
        (lambda c: c["contacts"][0].update(verification="trusted"), "verification"),
        (lambda c: c["contacts"][0].update(first_seen="yesterday"), "first_seen"),
        (lambda c: c["contacts"][0].update(last_seen="2026-11-25T20:16:08"), "time zone"),
        (lambda c: c["contacts"][0].update(name=""), "name"),
        (lambda c: c["contacts"][1].update(did=c["contacts"][0]["did"]), "twice"),
        (lambda c: c["contacts"][1].update(name="ALICE"), "same name"),
        (lambda c: c["used_invitations"].append(c["used_invitations"][0]), "twice"),
        (lambda c: c["used_invitations"][0].update(id=b""), "used_invitations"),
    ],
)
def test_authentic_but_invalid_contents_are_refused(change: Any, needle: str) -> None:
    contents = good_contents()
    change(contents)
    with pytest.raises(DamagedBackup, match=needle):
        open_backup(seal_contents(contents), PASS)


def test_non_canonical_contents_are_refused() -> None:
    import cbor2

    contents = good_contents()
    unsorted = cbor2.dumps(dict(reversed(list(contents.items()))))
    with pytest.raises(DamagedBackup, match="deterministic CBOR"):
        open_backup(seal_contents(unsorted), PASS)


def test_names_differing_beyond_ascii_case_are_two_names() -> None:
    """The store's NOCASE folds ASCII only: a backup may hold what the store may."""
    contents = good_contents()
    contents["contacts"][0]["name"] = "Straße"
    contents["contacts"][1]["name"] = "STRASSE"
    assert len(open_backup(seal_contents(contents), PASS).contacts) == 2


def test_naive_times_cannot_be_sealed() -> None:
    backup = make_backup(KEY, [], [], now=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        seal_backup(backup, PASS, params=FAST)
