"""The recovery phrase (identity/recovery.py, specs/backup.md section 1): BIP-39 known answers,
an independent implementation of the entropy-to-words step, tolerant reading, every error."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identity.errors import BadChecksum, UnknownWords, WrongWordCount
from identity.keys import IdentityKey
from identity.recovery import (
    WORD_COUNT,
    phrase_to_seed,
    seed_to_words,
    word_count,
    wordlist,
    words_from_text,
)
from tests.support.vectors import load_json

VECTORS = load_json("bip39/bip39-english-256.json")
ENGLISH_SHA256 = "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda"
"""SHA-256 of bitcoin/bips bip-0039/english.txt (2048 lines, LF): pins the list we use."""


def independent_words(entropy: bytes) -> list[str]:
    """BIP-39 entropy -> mnemonic written from the BIP's text, not from the package."""
    bits = len(entropy) * 8
    checksum_bits = bits // 32
    checksum = hashlib.sha256(entropy).digest()[0] >> (8 - checksum_bits)
    number = (int.from_bytes(entropy, "big") << checksum_bits) | checksum
    total = bits + checksum_bits
    return [wordlist()[(number >> (total - 11 * (i + 1))) & 0x7FF] for i in range(total // 11)]


def test_the_vector_file_names_its_source() -> None:
    assert "trezor/python-mnemonic" in VECTORS["source"]
    assert len(VECTORS["english"]) == 8


def test_the_word_list_is_bip39_english() -> None:
    text = "".join(f"{word}\n" for word in wordlist())
    assert hashlib.sha256(text.encode()).hexdigest() == ENGLISH_SHA256
    assert len(wordlist()) == 2048


@pytest.mark.vectors
@pytest.mark.parametrize("vector", VECTORS["english"], ids=lambda v: v[0][:8])
def test_bip39_known_answers(vector: list[str]) -> None:
    entropy, mnemonic = bytes.fromhex(vector[0]), vector[1]
    assert " ".join(seed_to_words(entropy)) == mnemonic
    assert " ".join(independent_words(entropy)) == mnemonic
    assert phrase_to_seed(mnemonic) == entropy


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_any_seed_round_trips_and_matches_the_independent_encoding(seed: bytes) -> None:
    words = seed_to_words(seed)
    assert len(words) == WORD_COUNT
    assert words == independent_words(seed)
    assert phrase_to_seed(" ".join(words)) == seed


def test_the_same_words_give_the_same_did() -> None:
    key = IdentityKey(bytes(range(32)))
    assert IdentityKey(phrase_to_seed(" ".join(seed_to_words(key.seed)))).did == key.did


def test_reading_is_tolerant_of_case_spacing_numbering_and_prefixes() -> None:
    seed = bytes.fromhex(VECTORS["english"][5][0])
    words = seed_to_words(seed)
    shouted = "  " + "   ".join(word.upper() for word in words) + " \n"
    assert phrase_to_seed(shouted) == seed
    numbered = "\n".join(f"{i}. {word}" for i, word in enumerate(words, start=1))
    assert phrase_to_seed(numbered) == seed
    assert phrase_to_seed(", ".join(f"{i}) {w}" for i, w in enumerate(words, 1))) == seed
    four_letters = " ".join(word[:4] for word in words)
    assert phrase_to_seed(four_letters) == seed
    assert phrase_to_seed("\t".join(word.capitalize() for word in words)) == seed


def test_the_printed_grid_reads_back() -> None:
    from didlink.cli.commands.backup import _phrase_lines

    seed = bytes(range(1, 33))
    assert phrase_to_seed("\n".join(_phrase_lines(seed_to_words(seed)))) == seed


def test_a_wrong_word_count_is_named() -> None:
    words = seed_to_words(bytes(32))
    for count in (0, 1, 12, 23, 25, 48):
        text = " ".join(itertools.islice(itertools.cycle(words), count))
        with pytest.raises(WrongWordCount, match=f"24 words, not {count}"):
            phrase_to_seed(text)
    with pytest.raises(WrongWordCount, match="not 49"):
        phrase_to_seed(" ".join(["xyzzy"] * 49))  # counted before any word is named
    with pytest.raises(WrongWordCount, match="far longer"):
        phrase_to_seed("a" * 5000)


def test_every_unknown_word_is_named_with_its_position_and_the_closest_words() -> None:
    words = seed_to_words(bytes(32))  # abandon x 23, art
    words[1] = "abandn"
    words[6] = "qqqqq"
    words[23] = "arts"
    with pytest.raises(UnknownWords) as caught:
        phrase_to_seed(" ".join(words))
    message = str(caught.value)
    assert message.startswith("3 words are not in the BIP-39 English word list")
    assert '#2 "abandn" (abandon' in message
    assert '#7 "qqqqq"' in message
    assert '#24 "arts" (' in message and "art" in message.split("#24")[1]
    assert "\n" not in message


def test_a_look_alike_letter_is_an_unknown_word() -> None:
    words = seed_to_words(bytes(32))
    words[0] = "аbandon"  # Cyrillic а
    with pytest.raises(UnknownWords, match="#1"):
        phrase_to_seed(" ".join(words))


def test_an_ambiguous_prefix_is_unknown() -> None:
    words = seed_to_words(bytes(32))
    words[0] = "ab"  # too short to name one word
    with pytest.raises(UnknownWords, match='#1 "ab"'):
        words_from_text(" ".join(words))


def test_a_bad_checksum_is_refused() -> None:
    words = seed_to_words(bytes(32))
    wrong = 0
    for replacement in wordlist()[:64]:
        candidate = [*words[:-1], replacement]
        try:
            phrase_to_seed(" ".join(candidate))
        except BadChecksum as exc:
            assert "checksum" in str(exc)
            wrong += 1
    assert wrong >= 60  # 8 checksum bits: about 1 in 256 replacements passes by chance
    swapped = seed_to_words(bytes.fromhex(VECTORS["english"][4][0]))
    swapped[0], swapped[1] = swapped[1], swapped[0]
    with pytest.raises(BadChecksum):
        phrase_to_seed(" ".join(swapped))


def test_word_count() -> None:
    assert word_count(" 1. abandon  2. ability\n3) able ") == 3
    assert word_count("") == 0


def test_seed_length_is_checked() -> None:
    with pytest.raises(ValueError, match="32-byte"):
        seed_to_words(bytes(16))
