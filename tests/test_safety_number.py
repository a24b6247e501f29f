"""Safety numbers: libsignal's known answer, an independent recomputation, the QR payload.

Known answer: signalapp/libsignal, rust/protocol/src/fingerprint.rs, test fingerprint_test_v1
(quoted in ../shared/vectors/SOURCES.md): version 0, 5200 iterations of SHA-512, 33-byte keys
with the 0x05 type prefix, stable ids "+14152222222" / "+14153333333".
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identity.errors import IdentityError
from identity.keys import IdentityKey
from messaging.errors import MessagingError
from messaging.safety_number import (
    ITERATIONS,
    QR_PREFIX,
    InvalidSafetyNumberPayload,
    SafetyNumber,
    SafetyNumberVersionMismatch,
    fingerprint_digits,
    iterated_hash,
    numeric_fingerprint,
)

ALICE_KEY = bytes.fromhex("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868")
BOB_KEY = bytes.fromhex("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b")
ALICE_ID = b"+14152222222"
BOB_ID = b"+14153333333"
DISPLAYABLE = "300354477692869396892869876765458257569162576843440918079131"
# ALICE_SCANNABLE_FINGERPRINT_V1 in the same libsignal test: a protobuf holding the first 32
# bytes of Alice's (local) and Bob's (remote) iterated hash.
ALICE_SCANNABLE_V1 = (
    "080112220a201e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df"
    "1a220a20d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d"
)

DID_A = IdentityKey(bytes(32)).did
DID_B = IdentityKey(bytes([1]) * 32).did
DID_C = IdentityKey(bytes([2]) * 32).did


# --- an independent implementation --------------------------------------------------------


def independent_party_digits(key: bytes, stable_id: bytes) -> str:
    """Written apart from the module: hashlib objects with update(), digits via divmod."""
    h = hashlib.sha512()
    h.update(b"\x00\x00")
    h.update(key)
    h.update(stable_id)
    h.update(key)
    digest = h.digest()
    for _ in range(5199):
        h = hashlib.sha512()
        h.update(digest)
        h.update(key)
        digest = h.digest()
    out = []
    for start in (0, 5, 10, 15, 20, 25):
        value = 0
        for byte in digest[start : start + 5]:
            value = value * 256 + byte
        out.append(str(divmod(value, 100000)[1]).rjust(5, "0"))
    return "".join(out)


def independent_pair(key_a: bytes, id_a: bytes, key_b: bytes, id_b: bytes) -> str:
    return "".join(
        sorted([independent_party_digits(key_a, id_a), independent_party_digits(key_b, id_b)])
    )


def ed25519_raw(did: str) -> bytes:
    seed = {DID_A: bytes(32), DID_B: bytes([1]) * 32, DID_C: bytes([2]) * 32}[did]
    return IdentityKey(seed).public_key


# --- libsignal known answer -----------------------------------------------------------------


@pytest.mark.vectors
def test_libsignal_displayable_fingerprint() -> None:
    assert numeric_fingerprint(0, ALICE_KEY, ALICE_ID, BOB_KEY, BOB_ID, ITERATIONS) == DISPLAYABLE
    assert numeric_fingerprint(0, BOB_KEY, BOB_ID, ALICE_KEY, ALICE_ID, ITERATIONS) == DISPLAYABLE
    assert ITERATIONS == 5200


@pytest.mark.vectors
def test_libsignal_scannable_hash_prefixes() -> None:
    proto = bytes.fromhex(ALICE_SCANNABLE_V1)
    alice_prefix, bob_prefix = proto[6:38], proto[42:74]
    assert iterated_hash(0, ALICE_KEY, ALICE_ID, 5200)[:32] == alice_prefix
    assert iterated_hash(0, BOB_KEY, BOB_ID, 5200)[:32] == bob_prefix


@pytest.mark.vectors
def test_independent_implementation_reproduces_libsignal() -> None:
    assert independent_pair(ALICE_KEY, ALICE_ID, BOB_KEY, BOB_ID) == DISPLAYABLE


@pytest.mark.vectors
def test_other_readings_of_the_algorithm_do_not_match() -> None:
    # H_0 without the trailing key, or 5199/5201 iterations, all miss the known answer: the
    # test above pins the exact definition.
    h = hashlib.sha512(b"\x00\x00" + ALICE_KEY + ALICE_ID).digest()
    for _ in range(5199):
        h = hashlib.sha512(h + ALICE_KEY).digest()
    assert fingerprint_digits(h) not in DISPLAYABLE
    for iterations in (5199, 5201):
        digits = fingerprint_digits(iterated_hash(0, ALICE_KEY, ALICE_ID, iterations))
        assert digits not in DISPLAYABLE


# --- didlink: DIDs as identities ----------------------------------------------------------------


def test_for_pair_uses_ed25519_key_and_did_string() -> None:
    expected = independent_pair(
        ed25519_raw(DID_A), DID_A.encode(), ed25519_raw(DID_B), DID_B.encode()
    )
    assert SafetyNumber.for_pair(DID_A, DID_B).digits == expected


def test_for_pair_is_symmetric_and_specific() -> None:
    ab = SafetyNumber.for_pair(DID_A, DID_B)
    assert ab == SafetyNumber.for_pair(DID_B, DID_A)
    assert ab != SafetyNumber.for_pair(DID_A, DID_C)
    assert ab != SafetyNumber.for_pair(DID_C, DID_B)
    assert len(ab.digits) == 60 and ab.digits.isdigit()


@settings(max_examples=20, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_numeric_fingerprint_equals_independent(seed_a: bytes, seed_b: bytes) -> None:
    a, b = IdentityKey(seed_a), IdentityKey(seed_b)
    got = numeric_fingerprint(0, a.public_key, a.did.encode(), b.public_key, b.did.encode())
    assert got == independent_pair(a.public_key, a.did.encode(), b.public_key, b.did.encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=30, max_size=64))
def test_digit_encoding_equals_independent(data: bytes) -> None:
    expected = "".join(f"{int(data[i : i + 5].hex(), 16) % 100000:05d}" for i in range(0, 30, 5))
    assert fingerprint_digits(data) == expected


def test_bad_dids_are_identity_errors() -> None:
    with pytest.raises(IdentityError):
        SafetyNumber.for_pair(DID_A, "did:key:nope")
    with pytest.raises(IdentityError):
        SafetyNumber.for_pair("not a did", DID_B)


@pytest.mark.parametrize("iterations", [-1, 0, 1, 1_000_001])
def test_iteration_bounds(iterations: int) -> None:
    with pytest.raises(ValueError):
        iterated_hash(0, ALICE_KEY, ALICE_ID, iterations)


@pytest.mark.parametrize("version", [-1, 0x10000])
def test_version_bounds(version: int) -> None:
    with pytest.raises(ValueError):
        iterated_hash(version, ALICE_KEY, ALICE_ID, 2)


def test_short_fingerprint_hash_is_rejected() -> None:
    with pytest.raises(ValueError):
        fingerprint_digits(bytes(29))


# --- display -----------------------------------------------------------------------------------


def test_groups_and_lines() -> None:
    number = SafetyNumber(DISPLAYABLE)
    assert number.groups() == (
        "30035", "44776", "92869", "39689", "28698", "76765",
        "45825", "75691", "62576", "84344", "09180", "79131",
    )  # fmt: skip
    assert number.display_lines() == (
        "30035 44776 92869 39689",
        "28698 76765 45825 75691",
        "62576 84344 09180 79131",
    )


@pytest.mark.parametrize(
    "digits", ["", "1" * 59, "1" * 61, "a" * 60, "\u0661" * 60, " " + "1" * 59]
)
def test_safety_number_rejects_bad_digits(digits: str) -> None:
    with pytest.raises(InvalidSafetyNumberPayload):
        SafetyNumber(digits)


# --- scannable form ---------------------------------------------------------------------------


def test_qr_payload_is_the_same_on_both_devices_and_compares_equal() -> None:
    mine = SafetyNumber.for_pair(DID_A, DID_B)
    theirs = SafetyNumber.for_pair(DID_B, DID_A)
    assert mine.qr_payload() == theirs.qr_payload() == "didlink-sn:1:" + mine.digits
    assert QR_PREFIX == "didlink-sn:1:"
    assert mine.compare_scanned(theirs.qr_payload())
    assert mine.compare_scanned(theirs.qr_payload().encode("ascii"))
    assert SafetyNumber.from_qr_payload(theirs.qr_payload()) == mine


def test_scanning_a_man_in_the_middle_compares_unequal() -> None:
    mine = SafetyNumber.for_pair(DID_A, DID_B)  # A thinks B is DID_B
    theirs = SafetyNumber.for_pair(DID_B, DID_C)  # B actually talked to C
    assert not mine.compare_scanned(theirs.qr_payload())


def test_comparison_is_constant_time_compare(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("messaging.safety_number.hmac.compare_digest", spy)
    number = SafetyNumber(DISPLAYABLE)
    assert number.compare_scanned(number.qr_payload())
    assert len(calls) == 1


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "didlink-sn",
        "didlink-sn:1",
        "didlink-sn:1:",
        "didlink-sn:1:" + "1" * 59,
        "didlink-sn:1:" + "1" * 61,
        "didlink-sn:1:" + "1" * 60 + "\n",
        "didlink-sn:1:" + "x" * 60,
        "didlink-sn:1:" + "\u0661" * 60,
        "DIDLINK-SN:1:" + "1" * 60,
        "signal:1:" + "1" * 60,
        "1" * 60,
        b"\xff\xfe",
        b"didlink-sn:1:" + "\u0661".encode() * 30,
    ],
)
def test_malformed_payloads_raise_a_typed_error(payload: str | bytes) -> None:
    number = SafetyNumber(DISPLAYABLE)
    with pytest.raises(InvalidSafetyNumberPayload):
        number.compare_scanned(payload)


@pytest.mark.parametrize("version", ["0", "2", "01", ""])
def test_other_payload_versions_are_a_version_mismatch(version: str) -> None:
    with pytest.raises(SafetyNumberVersionMismatch):
        SafetyNumber.from_qr_payload(f"didlink-sn:{version}:" + "1" * 60)


def test_non_text_payload_is_a_typed_error() -> None:
    with pytest.raises(InvalidSafetyNumberPayload):
        SafetyNumber.from_qr_payload(12345)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80) | st.binary(max_size=80))
def test_arbitrary_payloads_never_raise_anything_else(payload: str | bytes) -> None:
    number = SafetyNumber(DISPLAYABLE)
    try:
        result = number.compare_scanned(payload)
    except InvalidSafetyNumberPayload as exc:
        assert isinstance(exc, MessagingError)
    else:
        assert result == (payload in (number.qr_payload(), number.qr_payload().encode()))
