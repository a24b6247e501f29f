"""The recovery phrase: the 32-byte identity seed as 24 BIP-39 English words, and back.

Theory of operation (specs/backup.md section 1):
- The seed is BIP-39 *entropy*: 256 bits + the first 8 bits of SHA-256(seed) as a checksum,
  cut into 24 groups of 11 bits, each an index into the 2048-word English list. This is BIP-39's
  entropy-to-mnemonic step only; its PBKDF2 "seed" derivation is not used (the words *are* the
  key, so the same words give the same DID on any machine).
- Reading is tolerant of what a person writes on paper: any case, extra spaces, commas, line
  breaks, and the numbering `1.` / `1)` / `1:` that `didlink backup phrase` prints before each
  word. A word may be shortened to its first four letters or more (BIP-39's English list is
  unique on four letters).
- Reading is strict about everything else, in this order: more than 48 words -> wrong count;
  every word not in the list is named with its position and the closest list words; not 24
  words -> wrong count; the checksum -> bad checksum. Each is one error (identity/errors.py).
- The `mnemonic` package (trezor's reference implementation) is imported on first use only, so
  that commands that never show a phrase do not pay its import.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from typing import TYPE_CHECKING

from identity.errors import BadChecksum, UnknownWords, WrongWordCount
from identity.keys import SEED_SIZE

if TYPE_CHECKING:
    from mnemonic import Mnemonic

WORD_COUNT = 24
MAX_INPUT_WORDS = 2 * WORD_COUNT
"""More words than this is not a mistyped phrase: refused by count before any word is named."""
MAX_INPUT_CHARS = 4096
MIN_PREFIX = 4
MAX_SHOWN_CHARS = 24
"""A bad word is quoted in the error at most this long (it is what the user typed)."""

_NUMBERING = re.compile(r"^\d+[.):]?")
_SEPARATORS = re.compile(r"[\s,;]+")


@functools.cache
def _bip39() -> Mnemonic:
    from mnemonic import Mnemonic  # late: only phrase commands pay this import

    return Mnemonic("english")


@functools.cache
def wordlist() -> tuple[str, ...]:
    """BIP-39's English word list (2048 words, index order)."""
    return tuple(_bip39().wordlist)


@functools.cache
def _index() -> dict[str, int]:
    return {word: i for i, word in enumerate(wordlist())}


def seed_to_words(seed: bytes) -> list[str]:
    """The 24 words of a 32-byte seed (BIP-39 entropy to mnemonic, English)."""
    if len(seed) != SEED_SIZE:
        raise ValueError("a recovery phrase encodes a 32-byte seed")
    words = _bip39().to_mnemonic(bytes(seed)).split(" ")
    assert len(words) == WORD_COUNT
    return words


def _tokens(text: str) -> list[str]:
    """The words of `text`: NFKD, case-folded, numbering and separators dropped."""
    tokens = []
    for raw in _SEPARATORS.split(unicodedata.normalize("NFKD", text).casefold()):
        token = _NUMBERING.sub("", raw)
        if token:
            tokens.append(token)
    return tokens


def word_count(text: str) -> int:
    """How many words `text` holds, as `words_from_text` would count them."""
    return len(_tokens(text))


def _lookup(token: str) -> str | None:
    """The list word `token` names: itself, or the only word it is a prefix (>= 4) of."""
    if token in _index():
        return token
    if len(token) >= MIN_PREFIX:
        matches = [word for word in wordlist() if word.startswith(token)]
        if len(matches) == 1:
            return matches[0]
    return None


def _quoted(token: str) -> str:
    shown = token if len(token) <= MAX_SHOWN_CHARS else token[: MAX_SHOWN_CHARS - 1] + "…"
    return f'"{shown}"'


def _unknown_words_error(bad: list[tuple[int, str]]) -> UnknownWords:
    parts = []
    for position, token in bad:
        close = difflib.get_close_matches(token, wordlist(), n=3, cutoff=0.6)
        hint = f" ({', '.join(close)}?)" if close else ""
        parts.append(f"#{position} {_quoted(token)}{hint}")
    count = "1 word is" if len(bad) == 1 else f"{len(bad)} words are"
    return UnknownWords(f"{count} not in the BIP-39 English word list: {', '.join(parts)}")


def words_from_text(text: str) -> list[str]:
    """The 24 list words in `text` (tolerant reading; WrongWordCount / UnknownWords)."""
    if len(text) > MAX_INPUT_CHARS:
        raise WrongWordCount(f"a recovery phrase has {WORD_COUNT} words; this is far longer")
    tokens = _tokens(text)
    if len(tokens) > MAX_INPUT_WORDS:
        raise WrongWordCount(f"a recovery phrase has {WORD_COUNT} words, not {len(tokens)}")
    words: list[str] = []
    bad: list[tuple[int, str]] = []
    for position, token in enumerate(tokens, start=1):
        word = _lookup(token)
        if word is None:
            bad.append((position, token))
        else:
            words.append(word)
    if bad:
        raise _unknown_words_error(bad)
    if len(words) != WORD_COUNT:
        raise WrongWordCount(f"a recovery phrase has {WORD_COUNT} words, not {len(words)}")
    return words


def words_to_seed(words: list[str]) -> bytes:
    """The 32-byte seed of 24 list words; BadChecksum if their checksum does not match."""
    if len(words) != WORD_COUNT:
        raise WrongWordCount(f"a recovery phrase has {WORD_COUNT} words, not {len(words)}")
    try:
        seed = bytes(_bip39().to_entropy(list(words)))
    except ValueError as exc:  # mnemonic raises ValueError("Failed checksum.")
        raise BadChecksum(
            "the words are all in the list but their checksum does not match: "
            "one of them is wrong, or two are swapped"
        ) from exc
    return seed


def phrase_to_seed(text: str) -> bytes:
    """The 32-byte seed of a recovery phrase as a person typed it (see the module docstring)."""
    return words_to_seed(words_from_text(text))
