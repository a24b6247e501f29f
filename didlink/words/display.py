"""Display-safe text: whatever a peer, a relay or a token controls, as a terminal may show it.

Theory of operation (specs/threat-model.md section 4, "Display"):
- A terminal acts on some characters instead of showing them: C0 and C1 controls (ESC starts
  CSI and OSC sequences: colours, cursor moves, screen clears, the window title, the clipboard
  with OSC 52), DEL, CR (return to the start of the line and overwrite it), LF (a new line that
  can imitate one of ours), U+2028/U+2029, and the Unicode format characters (bidi overrides and
  isolates reorder what follows; zero-width characters hide). `escaped` shows each of them as a
  visible escape (`\\x1b`, `\\u202e`, ...), so the text is shown, never obeyed.
- A long run of combining marks stacks over neighbouring lines in many terminals: beyond
  `MAX_MARKS` marks on one base character, further marks are escaped too.
- Every human-facing sink prints text from outside only through this module: single-line values
  (names, file names, DIDs, error messages) through `escaped`; message texts through `block`,
  which keeps the text's own line breaks but starts every continuation line with
  `CONTINUATION`, and wraps at the terminal's width with the same prefix, so that no line of
  peer text can start where one of ours would (`[12:03] you: ...`, `✓ delivered`).
- As a last line of defence, `sanitized` is applied by the sinks to the whole line they print
  (our own words included, before styling is added): it keeps line breaks and escapes the rest.
- Machine output (`--json`, `--jsonl`) stays exact: `json_text` escapes the same characters with
  JSON's own `\\uXXXX` escapes, which a JSON parser turns back into the very same string.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from typing import Any

MAX_MARKS = 4
"""Combining marks shown on one base character; more are escaped (a "Zalgo" stack)."""
CONTINUATION = "  \u2502 "
"""What starts each further line of a multi-line or wrapped text from outside ("  │ ")."""

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def is_unsafe(ch: str) -> bool:
    """True if a terminal could act on `ch` (or hide it) rather than show it as a glyph."""
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def _escape_one(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escaped(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every character a terminal could act on shown as a visible escape.

    With `keep_newlines`, LF stays a line break (for the sinks' last-line-of-defence pass over
    lines of our own making); every other unsafe character is escaped either way.
    """
    if text.isascii() and text.isprintable():  # the common case, in C: nothing to escape
        return text
    out: list[str] = []
    marks = 0
    for ch in text:
        if keep_newlines and ch == "\n":
            out.append(ch)
            marks = 0
            continue
        category = unicodedata.category(ch)
        if category in _UNSAFE_CATEGORIES:
            out.append(_escape_one(ch))
            marks = 0
        elif category.startswith("M"):
            marks += 1
            out.append(ch if marks <= MAX_MARKS else _escape_one(ch))
        else:
            out.append(ch)
            marks = 0
    return "".join(out)


def sanitized(text: str) -> str:
    """A sink's last pass over a whole line (or lines) it prints: line breaks kept, rest escaped."""
    return escaped(text, keep_newlines=True)


def shown(value: object, *, limit: int = 200) -> str:
    """A single-line value from outside, escaped and cut to about `limit` characters."""
    text = escaped(str(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(text: str, *, limit: int = 1000) -> str:
    """A message (ours, perhaps quoting outside text) on one display-safe line: whitespace runs,
    line breaks included, become one space; the rest is escaped; cut to about `limit`."""
    return shown(" ".join(text.split()), limit=limit)


def width(text: str) -> int:
    """Columns `text` takes on a terminal (wide characters count two; marks count none)."""
    from wcwidth import wcwidth  # late: about 20 ms to import; most commands measure no width

    total = 0
    for ch in text:
        columns = wcwidth(ch)
        total += max(columns, 0)
    return total


def terminal_columns() -> int | None:
    """The terminal's width when stdout is a terminal (texts are wrapped there), else None."""
    import shutil  # late, as wcwidth: most commands print no wrapped text

    try:
        return shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    except (AttributeError, ValueError):  # a closed or replaced stream
        return None


def _wrapped(text: str, columns: int) -> list[str]:
    """`text` (already escaped, no line breaks) cut into pieces of at most `columns` columns."""
    if columns <= 0:
        return [text]
    from wcwidth import wcwidth  # late, as in `width`

    pieces: list[str] = []
    current: list[str] = []
    used = 0
    for ch in text:
        cells = max(wcwidth(ch), 0)
        if used + cells > columns and current:
            pieces.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += cells
    pieces.append("".join(current))
    return pieces


def block(text: str, *, first: str, columns: int | None = None) -> list[str]:
    """A text from outside as lines to print: `first` + the text, then `CONTINUATION` lines.

    The text's own line breaks (LF, CRLF, or a lone CR, which would otherwise overwrite the
    line) each start a continuation line; every other unsafe character is escaped. With
    `columns` (the terminal's width), lines are also wrapped there, each wrapped piece again
    behind `CONTINUATION`, so a terminal's own wrapping can never start a line with peer text.
    """
    logical = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines: list[str] = []
    for index, part in enumerate(logical):
        prefix = first if index == 0 else CONTINUATION
        safe = escaped(part)
        if columns is None:
            lines.append(prefix + safe)
            continue
        head = _wrapped(safe, columns - width(prefix))[0]
        lines.append(prefix + head)
        rest = safe[len(head) :]  # the continuation lines have a width of their own
        if rest:
            lines.extend(CONTINUATION + p for p in _wrapped(rest, columns - width(CONTINUATION)))
    return lines


def _json_escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON writes an astral character as its UTF-16 surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_text(value: Any) -> str:
    """`value` as one line of JSON with every character a terminal could act on \\u-escaped.

    JSON already escapes C0 controls; this also escapes DEL, C1 controls, U+2028/2029 and the
    format characters, which are valid unescaped in JSON strings. Parsing gives back `value`.
    """
    return json_safe(json.dumps(value, ensure_ascii=False, sort_keys=True))


def json_safe(line: str) -> str:
    """A line of JSON text with the characters of `is_unsafe` written as `\\u` escapes.

    `str.isprintable` is false for every such character (and for a few harmless ones), so
    the common line costs one C-level scan.
    """
    if line.isprintable():
        return line
    return "".join(_json_escape(ch) if is_unsafe(ch) else ch for ch in line)


__all__ = [
    "CONTINUATION",
    "MAX_MARKS",
    "block",
    "escaped",
    "is_unsafe",
    "json_safe",
    "json_text",
    "one_line",
    "sanitized",
    "shown",
    "terminal_columns",
    "width",
]
