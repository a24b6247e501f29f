"""SAS: emoji table, Matrix bit layouts, didlink known answers, and an independent recomputation.

Known answers: tests/vectors/sas/ (README there names the sources). Matrix layout examples: the
all-zero / all-one byte strings used by matrix-rust-sdk's SAS tests (emoji_generation,
decimal_generation), plus one worked by hand below.
"""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.errors import LocalProtocolError, MessagingError
from messaging.sas import (
    SAS_INFO,
    ShortAuthString,
    decimal_numbers,
    derive_sas_bytes,
    emoji_indices,
)
from messaging.sas_emoji import SAS_EMOJI, SasEmoji
from tests.support.vectors import load_json

ROOT = Path(__file__).resolve().parent.parent
EMOJI_TABLE = load_json("sas/sas-emoji.json")
DIDLINK_SAS = load_json("sas/didlink-sas.json")


# --- an independent implementation (stdlib HKDF, bits as a string of '0'/'1') --------------


def hkdf_sha256_stdlib(ikm: bytes, info: bytes, length: int, salt: bytes = b"") -> bytes:
    """RFC 5869 with hmac/hashlib; an empty salt is HashLen zero bytes (section 2.2)."""
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def bit_string(data: bytes) -> str:
    return "".join(format(byte, "08b") for byte in data)


def independent_emoji(sas: bytes) -> list[int]:
    bits = bit_string(sas)
    return [int(bits[6 * i : 6 * i + 6], 2) for i in range(7)]


def independent_decimal(sas: bytes) -> list[int]:
    bits = bit_string(sas)
    return [int(bits[13 * i : 13 * i + 13], 2) + 1000 for i in range(3)]


def test_stdlib_hkdf_matches_rfc5869_case_3() -> None:
    # RFC 5869 Appendix A.3: SHA-256, zero-length salt and info.
    okm = hkdf_sha256_stdlib(b"\x0b" * 22, b"", 42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


# --- the emoji table --------------------------------------------------------------------


def test_emoji_table_equals_the_matrix_json() -> None:
    assert len(SAS_EMOJI) == 64
    for entry, expected in zip(SAS_EMOJI, EMOJI_TABLE, strict=True):
        assert entry == SasEmoji(expected["number"], expected["emoji"], expected["description"])
    assert (SAS_EMOJI[0].name, SAS_EMOJI[63].name) == ("Dog", "Pin")
    # U+FE0F variation selectors survive (e.g. Heart is U+2764 U+FE0F).
    assert SAS_EMOJI[29].emoji == "\u2764\ufe0f"


def test_generated_table_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_sas_emoji.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- Matrix bit layouts -------------------------------------------------------------------


def test_matrix_layout_all_zero_and_all_one_bytes() -> None:
    assert emoji_indices(bytes(6)) == (0,) * 7
    assert decimal_numbers(bytes(5)) == (1000, 1000, 1000)
    assert emoji_indices(b"\xff" * 6) == (63,) * 7
    assert decimal_numbers(b"\xff" * 5) == (9191, 9191, 9191)


def test_matrix_layout_worked_by_hand() -> None:
    # 01 23 45 67 89 ab = 000000 010010 001101 000101 011001 111000 100110 (101011 unused)
    sas = bytes.fromhex("0123456789ab")
    assert emoji_indices(sas) == (0, 18, 13, 5, 25, 56, 38)
    # 13-bit groups: 0000000100100 = 36, 0110100010101 = 3349, 1001111000100 = 5060
    assert decimal_numbers(sas) == (1036, 4349, 6060)
    shown = ShortAuthString.from_sas_bytes(sas)
    assert shown.names() == ("Dog", "Mushroom", "Octopus", "Pig", "Strawberry", "Ball", "Hourglass")


def test_single_bits_land_in_the_right_group() -> None:
    # The most significant bit of byte 0 is the top bit of emoji 0 and of number 0.
    assert emoji_indices(b"\x80" + bytes(5)) == (32, 0, 0, 0, 0, 0, 0)
    assert decimal_numbers(b"\x80" + bytes(4)) == (1000 + 4096, 1000, 1000)
    # Bit 41 (the last used by the emoji) is the lowest bit of emoji 6; bits 42..47 are unused.
    assert emoji_indices(bytes(5) + b"\x40") == (0, 0, 0, 0, 0, 0, 1)
    assert emoji_indices(bytes(5) + b"\x3f") == (0,) * 7
    # Bit 38 (the last used by the numbers) is B4's bit 1; B4's lowest bit is unused.
    assert decimal_numbers(bytes(4) + b"\x02") == (1000, 1000, 1001)
    assert decimal_numbers(bytes(4) + b"\x01") == (1000, 1000, 1000)


# --- didlink known answers ----------------------------------------------------------------


def vector_ids() -> list[str]:
    return [v["comment"] for v in DIDLINK_SAS["vectors"]]


@pytest.mark.vectors
def test_vector_file_describes_the_derivation() -> None:
    assert DIDLINK_SAS["hkdf"] == {
        "hash": "SHA-256",
        "salt": "",
        "info": SAS_INFO.decode(),
        "length": 6,
    }
    assert SAS_INFO == b"didlink/v1 sas"
    assert len(DIDLINK_SAS["vectors"]) >= 5


@pytest.mark.vectors
@pytest.mark.parametrize("vector", DIDLINK_SAS["vectors"], ids=vector_ids())
def test_module_reproduces_known_answers(vector: dict[str, object]) -> None:
    handshake_hash = bytes.fromhex(str(vector["handshake_hash"]))
    assert derive_sas_bytes(handshake_hash).hex() == vector["sas_bytes"]
    sas = ShortAuthString.from_handshake_hash(handshake_hash)
    assert list(sas.indices()) == vector["emoji_indices"]
    assert list(sas.names()) == vector["emoji_names"]
    assert [e.emoji for e in sas.emoji] == vector["emoji"]
    assert list(sas.decimal) == vector["decimal"]


@pytest.mark.vectors
@pytest.mark.parametrize("vector", DIDLINK_SAS["vectors"], ids=vector_ids())
def test_independent_implementation_agrees_with_known_answers(vector: dict[str, object]) -> None:
    handshake_hash = bytes.fromhex(str(vector["handshake_hash"]))
    sas = hkdf_sha256_stdlib(handshake_hash, b"didlink/v1 sas", 6)
    assert sas.hex() == vector["sas_bytes"]
    indices = independent_emoji(sas)
    assert indices == vector["emoji_indices"]
    assert [EMOJI_TABLE[i]["description"] for i in indices] == vector["emoji_names"]
    assert [EMOJI_TABLE[i]["emoji"] for i in indices] == vector["emoji"]
    assert independent_decimal(sas) == vector["decimal"]


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=32) | st.binary(min_size=64, max_size=64))
def test_module_equals_independent_implementation(handshake_hash: bytes) -> None:
    sas = ShortAuthString.from_handshake_hash(handshake_hash)
    raw = hkdf_sha256_stdlib(handshake_hash, b"didlink/v1 sas", 6)
    assert list(sas.indices()) == independent_emoji(raw)
    assert list(sas.decimal) == independent_decimal(raw)
    assert all(1000 <= n <= 9191 for n in sas.decimal)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=6, max_size=6))
def test_encodings_equal_independent_bit_slicing(sas: bytes) -> None:
    assert list(emoji_indices(sas)) == independent_emoji(sas)
    assert list(decimal_numbers(sas)) == independent_decimal(sas)


def test_sas_is_not_the_plain_hkdf_of_the_hash() -> None:
    # The purpose label matters: without it (or with another label) the bytes differ.
    h = hashlib.sha256(b"label").digest()
    assert derive_sas_bytes(h) != hkdf_sha256_stdlib(h, b"", 6)
    assert derive_sas_bytes(h) != hkdf_sha256_stdlib(h, b"didlink/v1 sas ", 6)


# --- presentation and errors --------------------------------------------------------------


def test_presentation_helpers() -> None:
    sas = ShortAuthString.from_sas_bytes(bytes.fromhex("0123456789ab"))
    assert sas.emoji_string() == "  ".join(SAS_EMOJI[i].emoji for i in (0, 18, 13, 5, 25, 56, 38))
    assert sas.emoji_string(" ").count(" ") == 6
    assert sas.decimal_string() == "1036-4349-6060"
    assert len(sas.emoji) == 7


def test_same_hash_same_sas_different_hash_different_sas() -> None:
    a = ShortAuthString.from_handshake_hash(bytes(32))
    assert a == ShortAuthString.from_handshake_hash(bytes(32))
    assert a != ShortAuthString.from_handshake_hash(bytes(31) + b"\x01")


@pytest.mark.parametrize("bad", [b"", bytes(16), bytes(31), bytes(33), bytes(48), bytes(65)])
def test_wrong_length_handshake_hash_is_local_misuse(bad: bytes) -> None:
    with pytest.raises(LocalProtocolError, match="32 or 64 bytes"):
        ShortAuthString.from_handshake_hash(bad)


def test_non_bytes_handshake_hash_is_local_misuse() -> None:
    with pytest.raises(LocalProtocolError):
        ShortAuthString.from_handshake_hash("00" * 32)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [b"", bytes(5), bytes(7)])
def test_wrong_length_sas_bytes_is_local_misuse(bad: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        ShortAuthString.from_sas_bytes(bad)


def test_short_inputs_to_the_encoders_are_rejected() -> None:
    with pytest.raises(MessagingError):
        emoji_indices(bytes(5))
    with pytest.raises(MessagingError):
        decimal_numbers(bytes(4))
