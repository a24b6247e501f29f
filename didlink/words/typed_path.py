"""The path a person types, pastes or drops after `/send` (specs/chat-ui.md section 3a).

Theory of operation
-------------------
What follows `/send ` is read the way a POSIX shell reads one word (`shlex`, posix mode), since
that is what terminals produce when a file is dropped on them or a name is completed with Tab:

- quoted, `"my file.pdf"` or `'it'\\''s.txt'` (GNOME Terminal, Konsole drop names so);
- backslash-escaped, `my\\ file.pdf` (macOS Terminal, iTerm2, bash's Tab);
- a `file://` URL, percent-encoded (some terminals and file managers): local files only;
- a leading unquoted `~` or `~user` is the home folder, as in a shell (a quoted one is not);
- surrounding white space (drag-and-drop often adds a space) is ignored.

One file per `/send`. Text that does not split into one word is taken as it is typed when it
names an existing file (`/send my file.pdf` always worked); otherwise it is refused with a line
that says how to quote. The result is an absolute path, so that nothing later expands a `~` the
person quoted; whether the file exists, is a folder or is readable is said by the node when it
opens the file (didlink/session/outgoing.py), one `error` line, and the chat goes on.

`partial_word` reads a word as far as it is typed (an open quote, a trailing backslash) for Tab
completion (didlink/chat/completion.py), and `escaped_suffix` spells further characters in the
quoting the person is using, so that completing never rewrites what they typed.
"""

from __future__ import annotations

import os
import shlex
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

from didlink.errors import UserError
from didlink.words.display import shown

MAX_PATH_CHARS = 4096
"""A typed path longer than this is refused (PATH_MAX on Linux)."""
QUOTING_HINT = 'put quotes around a name with spaces: /send "my file.pdf"'
_BLANKS = " \t\r\n"
"""What separates words for `shlex.split` (no other white space does)."""
_SPECIAL = frozenset(_BLANKS + "\"'\\")
"""What `shlex.split` (posix) reads specially outside quotes: white space, quotes, backslash."""


class TypedPathError(UserError):
    """What follows /send is not the path of one local file (the message says why)."""


def typed_path(text: str, *, is_file: Callable[[Path], bool] = Path.is_file) -> Path:
    """The absolute path that `text` (what follows `/send `) names (module docstring).

    `is_file` is asked only when `text` does not split into one word (an unquoted name with
    spaces). TypedPathError with one sentence if `text` names no single local path.
    """
    raw = text.strip(_BLANKS)
    if not raw:
        raise TypedPathError("usage: /send PATH")
    if len(raw) > MAX_PATH_CHARS:
        raise TypedPathError(f"a path is at most {MAX_PATH_CHARS} characters")
    if "\x00" in raw:
        raise TypedPathError("a path cannot contain a NUL character")
    try:
        words = shlex.split(text)  # not `raw`: a trailing space may be escaped, part of a name
    except ValueError:  # an unclosed quote, a trailing backslash
        words = []
    if len(words) != 1:
        as_typed = _home_expanded(Path(raw))
        if is_file(as_typed):
            return as_typed.absolute()
        if not words:
            raise TypedPathError(f"the quotes in {shown(raw)} do not pair up: {QUOTING_HINT}")
        raise TypedPathError(f"no file {shown(raw)}: one file per /send, and {QUOTING_HINT}")
    word = words[0]
    if not word:
        raise TypedPathError("usage: /send PATH")
    if word[:7].lower() == "file://":
        return _file_url(word)
    path = Path(word)
    if raw.startswith("~"):  # unquoted: the home folder, as a shell reads it
        path = _home_expanded(path)
    return path.absolute()


def _home_expanded(path: Path) -> Path:
    """`~` or `~user` at the start of `path` expanded; an unknown user's stays as it is (as in
    a shell)."""
    try:
        return path.expanduser()
    except RuntimeError:  # no such user, or no home folder known
        return path


def _file_url(url: str) -> Path:
    """The local path of a `file:` URL (RFC 8089), percent-decoded; refused if it is remote."""
    parts = urlsplit(url)
    host = parts.netloc.lower()
    if host not in ("", "localhost", socket.gethostname().lower()):
        raise TypedPathError(f"{shown(url)} is on another computer: only local files can be sent")
    if parts.query or parts.fragment or not parts.path.startswith("/"):
        raise TypedPathError(f"{shown(url)} is not the URL of a local file")
    path = os.fsdecode(unquote_to_bytes(parts.path))
    if "\x00" in path:
        raise TypedPathError("a path cannot contain a NUL character")
    return Path(path)


# --- Tab completion ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PartialWord:
    """A word as far as it is typed: its characters so far, the quote still open (if any),
    whether it started with an unquoted `~` (so `~` means home), and whether it is complete
    (white space followed it: a second word begins, nothing to complete)."""

    text: str
    open_quote: str | None
    home: bool
    ended: bool


def partial_word(typed: str) -> PartialWord:
    """Read `typed` (what follows `/send `, up to the cursor) as `shlex.split` would read one
    word, also when a quote is still open or it ends with a backslash."""
    chars: list[str] = []
    quote: str | None = None
    escaping = False
    ended = False
    home = typed.lstrip(_BLANKS).startswith("~")
    for ch in typed.lstrip(_BLANKS):
        if ended:
            break
        if escaping:  # inside double quotes a backslash escapes only " and itself
            chars.append(ch if quote is None or ch in '"\\' else "\\" + ch)
            escaping = False
        elif quote == "'":
            if ch == "'":
                quote = None
            else:
                chars.append(ch)
        elif ch == "\\":
            escaping = True
        elif quote == '"':
            if ch == '"':
                quote = None
            else:
                chars.append(ch)
        elif ch in _BLANKS:
            ended = True
        elif ch in "'\"":
            quote = ch
        else:
            chars.append(ch)
    return PartialWord("".join(chars), quote, home, ended)


def _in_double_quotes(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def escaped_suffix(more: str, open_quote: str | None, *, close: bool, first: bool = False) -> str:
    """`more` characters spelled to follow a word typed so far whose open quote is
    `open_quote`; `close`: end the word (close the quote) after them; `first`: they begin the
    word (so a `~` there is escaped, else it would mean home)."""
    if open_quote == "'":
        return more.replace("'", "'\\''") + ("'" if close else "")
    if open_quote == '"':
        return _in_double_quotes(more) + ('"' if close else "")
    spelled = "".join("\\" + ch if ch in _SPECIAL else ch for ch in more)
    return "\\" + spelled if first and more.startswith("~") else spelled
