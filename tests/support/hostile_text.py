"""Texts a hostile peer would send to a terminal, and the checks that none of it acted.

Each entry is a text a peer controls (a chat message, a file name, a close reason, an error it
provokes): escape sequences that set colours, move the cursor, clear the screen, set the window
title or the clipboard (OSC 52), 8-bit C1 controls, CR and LF to forge one of our lines, bidi
overrides and isolates, zero-width and other invisible characters, a combining-mark stack.
"""

from __future__ import annotations

from didlink.words.display import is_unsafe

HOSTILE_TEXTS: tuple[str, ...] = (
    "\x1b]52;c;SE9TVElMRQ==\x07clipboard",  # OSC 52: write the clipboard
    "\x1b]0;PWNED-TITLE\x07title",  # OSC 0: the window title
    "\x1b]8;;https://evil.example/\x1b\\link\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "\x1b[2J\x1b[H=== didlink: passphrase expired, type it again ===",  # clear + fake banner
    "\x1b[31337mcolour\x1b[0m",
    "\x1b[1A\x1b[2K[12:03] you: erased the line above",  # cursor up, erase line
    "ok\r[12:03] you: forged by a carriage return",
    "ok\n[12:03] you: forged by a line feed\n        \u2713 delivered: forged",
    "ok\r\nSession closed: forged.",
    "ok\n[12:03] you \u2713: forged\n\u2026 queued: forged\n  \u2713 sent: forged",
    "\x9b31337m8-bit CSI",
    "\x9d0;PWNED-C1-TITLE\x9cC1 OSC",
    "\x90DCS\x9c and \x85NEL",
    "\u202eevil-override\u202c and \u2067isolate\u2069",
    "zero\u200bwidth\u200c\u200d\ufeff and \u2060joiner \u00adsoft",
    "line\u2028separator\u2029paragraph",
    "DEL\x7fBS\x08BEL\x07TAB\tVT\x0bFF\x0c",
    "tag chars \U000e0041\U000e0042",
    "zalgo e" + "\u0301" * 60,
    "wrap" + " " * 300 + "[12:03] you: forged by the terminal's own wrapping",
)

FORBIDDEN_BYTES: tuple[bytes, ...] = (
    b"\x1b]52",
    b"PWNED-TITLE\x07",
    b"\x1b]8;;https://evil",
    b"\x1b[31337m",
    b"\x1b[1A\x1b[2K[12:03]",
    b"\x1b[2J\x1b[H===",
    "\x9b".encode(),
    "\x9d".encode(),
    "\x90".encode(),
    "\x85".encode(),
    "\u202e".encode(),
    "\u2067".encode(),
    "\u200b".encode(),
    "\u2028".encode(),
    "\U000e0041".encode(),
    b"\x7f",
    b"\x08",
    b"\x0b",
    b"\x0c",
)
"""Byte strings that must never reach a terminal: each would be obeyed, not shown."""


def assert_display_safe(text: str) -> None:
    """Text printed for a person (no terminal styling): nothing a terminal could act on, and no
    line of it that starts like one of ours unless it is ours."""
    unsafe = sorted({f"U+{ord(ch):04X}" for ch in text if ch != "\n" and is_unsafe(ch)})
    assert not unsafe, f"unsafe characters reached the output: {unsafe}"
    for line in text.split("\n"):
        assert not line.startswith("[12:03] you: forged"), line
        assert not line.startswith("[12:03] you \u2713: forged"), line
        assert not line.lstrip().startswith(("\u2026 queued: forged", "\u2713 sent: forged")), line
        assert not line.startswith("Session closed: forged"), line
        assert not line.lstrip().startswith("\u2713 delivered: forged"), line


def assert_no_forbidden_bytes(raw: bytes) -> None:
    """Raw terminal output: none of the payloads' sequences arrived as they were sent."""
    found = [sequence for sequence in FORBIDDEN_BYTES if sequence in raw]
    assert not found, f"hostile sequences reached the terminal: {found}"
