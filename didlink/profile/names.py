"""Contact names (petnames): what a name may be, and when two names are too alike to coexist.

Theory of operation (specs/store.md section "Names"):
- A name is the user's own word for a contact: `chat Alice` resolves it to a DID. A peer may
  *suggest* one (the label of its card or invitation), but a suggestion never becomes a name by
  itself; the user adopts it (`contacts rename CONTACT` with no NAME).
- `check_name` normalises (NFC, trimmed, runs of spaces made one) and refuses what could hide or
  disguise: control, format and other invisible characters (bidi marks, zero-width characters,
  Hangul fillers, variation selectors), whitespace other than the space, more than
  `MAX_MARKS` combining marks on one character, and letters from several scripts (the
  combinations a language writes - Japanese, Chinese, Korean with Latin - are allowed).
- `skeleton` is Unicode TR39's confusable skeleton (NFD, each character mapped to the
  representative of its class of look-alikes, NFD again), compared both on the name and on its
  case-folded form (`look_alike`), with the confusables data of the `confusable_homoglyphs`
  package (made from Unicode's confusables.txt). Two names that look alike may not both exist:
  "Аlice" (Cyrillic А) next to "Alice", "ALICE" next to "alice", "rn" next to "m".
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable

from didlink.errors import UserError

MAX_NAME_LENGTH = 64
MAX_MARKS = 2
"""Combining marks allowed on one base character (Vietnamese needs two)."""

_INVISIBLE = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f\u3164\uffa0"
    "\ufe00\ufe01\ufe02\ufe03\ufe04\ufe05\ufe06\ufe07\ufe08\ufe09\ufe0a\ufe0b\ufe0c\ufe0d\ufe0e"
)
"""Default-ignorable characters that are not format characters (Hangul fillers, the combining
grapheme joiner, Khmer inherent vowels, Mongolian and most variation selectors). U+FE0F (emoji
presentation) stays allowed: "Mum ❤️" is a name people write."""
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_IGNORED_SCRIPTS = frozenset({"COMMON", "INHERITED", "Unknown"})
_ALLOWED_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
"""TR39's "highly restrictive" level: one script, or one of these combinations."""
_SPACES = re.compile(" {2,}")


ED25519_DID_START = "did:key:z6Mk"
"""How every Ed25519 did:key (every contact's DID) starts."""
BARE_DID_START = ED25519_DID_START.removeprefix("did:key:")


def looks_like_did(text: str) -> bool:
    """True if `text` would be read as a DID (or the start of one) rather than a petname:
    it starts with `did:` (any case) or with `z6Mk`, a did:key written without `did:key:`."""
    text = text.strip()
    return text.lower().startswith("did:") or text.startswith(BARE_DID_START)


def _problem(name: str) -> str | None:
    marks = 0
    for ch in name:
        category = unicodedata.category(ch)
        if category in _FORBIDDEN_CATEGORIES or ch in _INVISIBLE:
            return "must not contain control, formatting or invisible characters"
        if category == "Zs" and ch != " ":
            return "may contain only ordinary spaces"
        marks = marks + 1 if category.startswith("M") else 0
        if marks > MAX_MARKS:
            return f"may have at most {MAX_MARKS} accents or marks on one letter"
    scripts = _scripts(name)
    if len(scripts) > 1 and not any(scripts <= mix for mix in _ALLOWED_MIXES):
        return "must not mix letters of different scripts (" + ", ".join(sorted(scripts)) + ")"
    return None


def _scripts(name: str) -> frozenset[str]:
    from confusable_homoglyphs import categories  # late: its data loads in ~10 ms

    return frozenset(categories.alias(ch) for ch in name) - _IGNORED_SCRIPTS


def check_name(name: str) -> str:
    """A petname, normalised (NFC, trimmed, single spaces), or UserError saying what is wrong."""
    name = _SPACES.sub(" ", unicodedata.normalize("NFC", name).strip())
    if not name:
        raise UserError("a contact name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise UserError(f"a contact name is at most {MAX_NAME_LENGTH} characters")
    problem = _problem(name)
    if problem is not None:
        raise UserError(f"a contact name {problem}")
    if looks_like_did(name):
        raise UserError(
            "a contact name must not look like a DID (it must not start with 'did:' or 'z6Mk')"
        )
    return name


@functools.cache
def _prototypes() -> dict[str, str]:
    """Each confusable character -> the representative of its class of look-alikes.

    The package's data links every character of confusables.txt with its look-alikes (a source
    with its prototype, a prototype with its sources); a class is a connected component, and
    its representative is a multi-character prototype if it has one ("rn" for "m"), else its
    smallest code point, so ASCII letters and digits represent themselves.
    """
    from importlib import resources  # late: commands that compare no names start quicker

    data = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    )
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        root = node
        while parent.get(root, root) != root:
            root = parent[root]
        parent[node] = root
        return root

    for key, entries in data.items():
        for entry in entries:
            a, b = find(_bare(key)), find(_bare(entry["c"]))
            if a != b:
                parent[max(a, b, key=_rank)] = min(a, b, key=_rank)
    return {node: find(node) for node in list(parent)}


def _bare(text: str) -> str:
    """The data wraps right-to-left characters in LEFT-TO-RIGHT MARKs for display: drop them."""
    return text.replace("\u200e", "")


def _rank(node: str) -> tuple[int, int]:
    return (0 if len(node) > 1 else 1, ord(node[0]) if node else 0)


def _mapped(text: str) -> str:
    prototypes = _prototypes()
    mapped = "".join(prototypes.get(ch, ch) for ch in unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFD", mapped)


def skeleton(name: str) -> str:
    """TR39's skeleton of `name`: equal skeletons mean "looks the same" ("AI" and "Al")."""
    return _mapped(name)


def folded_skeleton(name: str) -> str:
    """The skeleton of the case-folded name ("ALICE" and "Аlice")."""
    return _mapped(name.casefold())


def look_alike(name: str, existing: Iterable[str]) -> str | None:
    """The first of `existing` that `name` could be mistaken for, if any.

    Two names look alike when their skeletons are equal, or those of their case-folded forms
    (case folding first loses TR39's capital I / small L confusion, so both are compared).
    """
    own = (skeleton(name), folded_skeleton(name))
    for other in existing:
        if skeleton(other) == own[0] or folded_skeleton(other) == own[1]:
            return other
    return None
