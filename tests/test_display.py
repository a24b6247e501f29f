"""didlink/words/display.py: display-safe text for terminals (specs/threat-model.md, "Display")."""

from __future__ import annotations

import json
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from didlink.words.display import (
    CONTINUATION,
    MAX_MARKS,
    block,
    escaped,
    is_unsafe,
    json_safe,
    json_text,
    sanitized,
    shown,
    width,
)
from tests.support.hostile_text import HOSTILE_TEXTS, assert_display_safe


def test_known_escapes() -> None:
    assert escaped("plain text, ünïcödé, 漢字, 👍") == "plain text, ünïcödé, 漢字, 👍"
    assert escaped("\x1b]52;c;QQ==\x07") == "\\x1b]52;c;QQ==\\x07"
    assert escaped("a\r\nb\tc") == "a\\r\\nb\\tc"
    assert escaped("\x7f\x9b\x85") == "\\x7f\\x9b\\x85"
    assert escaped("\u202eab\u202c") == "\\u202eab\\u202c"
    assert escaped("\u2028\u2029\u200b\ufeff") == "\\u2028\\u2029\\u200b\\ufeff"
    assert escaped("\U000e0041") == "\\U000e0041"
    assert escaped("\ud800") == "\\ud800"  # a lone surrogate (from surrogateescape)


def test_combining_marks_beyond_the_limit_are_escaped() -> None:
    text = escaped("e" + "\u0301" * 60)
    assert text.startswith("e" + "\u0301" * MAX_MARKS + "\\u0301")
    assert escaped("Vi\u1ec7t") == "Vi\u1ec7t"  # precomposed, and short stacks stay


def test_shown_is_one_line_and_bounded() -> None:
    assert shown("a\nb") == "a\\nb"
    assert len(shown("x" * 1000, limit=50)) == 50
    assert shown(42) == "42"


def test_sanitized_keeps_line_breaks_only() -> None:
    assert sanitized("one\ntwo\x1b[2J") == "one\ntwo\\x1b[2J"


def test_block_continues_every_further_line_behind_the_prefix() -> None:
    lines = block("hi\r\n[12:03] you: x\rY\nZ", first="[12:03] Bob: ")
    assert lines == [
        "[12:03] Bob: hi",
        CONTINUATION + "[12:03] you: x",
        CONTINUATION + "Y",
        CONTINUATION + "Z",
    ]


def test_block_wraps_at_the_terminal_width_behind_the_prefix() -> None:
    lines = block("a" * 50 + "漢" * 10, first="> ", columns=20)
    assert all(width(line) <= 20 for line in lines)
    assert lines[0].startswith("> ") and all(line.startswith(CONTINUATION) for line in lines[1:])
    assert "".join(line.removeprefix(CONTINUATION) for line in lines[1:]) == (
        "a" * 50 + "漢" * 10
    ).removeprefix(lines[0][2:])


@given(st.text(), st.integers(min_value=8, max_value=200))
def test_block_never_starts_a_line_with_outside_text(text: str, columns: int) -> None:
    lines = block(text, first="[12:03] Bob: ", columns=columns)
    assert lines[0].startswith("[12:03] Bob: ")
    assert all(line.startswith(CONTINUATION) for line in lines[1:])
    assert not any(is_unsafe(ch) for line in lines for ch in line)


@given(st.text())
def test_escaped_never_leaves_an_unsafe_character(text: str) -> None:
    assert not any(is_unsafe(ch) for ch in escaped(text))


@given(st.text())
def test_escaped_is_the_identity_on_safe_text(text: str) -> None:
    safe = "".join(
        ch for ch in text if not is_unsafe(ch) and not unicodedata.category(ch).startswith("M")
    )
    assert escaped(safe) == safe


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


@given(_JSON)
def test_json_output_is_exact_and_inert(value: object) -> None:
    line = json_text(value)
    assert json.loads(line) == value
    assert not any(is_unsafe(ch) for ch in line)


def test_json_safe_escapes_astral_format_characters_as_surrogate_pairs() -> None:
    line = json_safe(json.dumps({"t": "\U000e0041\u202e\x7f"}, ensure_ascii=False))
    assert line == '{"t": "\\udb40\\udc41\\u202e\\u007f"}'
    assert json.loads(line) == {"t": "\U000e0041\u202e\x7f"}


def test_the_hostile_corpus_is_made_inert() -> None:
    for text in HOSTILE_TEXTS:
        assert_display_safe("\n".join(block(text, first="[12:03] Bob: ", columns=80)))
        assert_display_safe(shown(text))
