"""Tab completion on the chat screen (specs/chat-ui.md section 3a): command names, and paths
after `/send `.

Completion works as in bash (the chat screen uses prompt_toolkit's readline-like style): one
candidate is inserted, several are completed as far as they agree and then listed. A path is
completed by appending to what was typed, spelled in the quoting already in use (an open `'`
or `"`, else backslashes before spaces and quotes: didlink/words/typed_path.py `escaped_suffix`), so
what `/send` then reads is the completed name. A folder ends with `/` and leaves its quote
open, so that the next Tab goes on inside it; a file closes the quote. Hidden names are offered
when the typed name starts with a dot. Only the local file system is read: one folder per Tab,
at most `MAX_ENTRIES` names looked at and `MAX_SHOWN` offered. The names listed are shown
escaped (`shown`): a file saved from a peer may have chosen its name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from didlink.words.display import shown
from didlink.words.typed_path import escaped_suffix, partial_word

SEND = "/send "
MAX_ENTRIES = 10_000
MAX_SHOWN = 500


def path_completions(typed: str) -> Iterator[Completion]:
    """Completions of the path `typed` after `/send ` (inserted at the cursor)."""
    word = partial_word(typed)
    if word.ended or "\x00" in word.text:
        return
    folder_part, _, start = word.text.rpartition("/")
    if word.text.startswith("/") and not folder_part:
        folder_part = "/"
    folder = Path(folder_part or ".")
    if word.home:
        folder = folder.expanduser()
    try:
        entries = _names(folder, hidden=start.startswith("."))
    except OSError:
        return
    found = sorted((name, is_dir) for name, is_dir in entries if name.startswith(start))
    for name, is_dir in found[:MAX_SHOWN]:
        more = name[len(start) :] + ("/" if is_dir else "")
        yield Completion(
            escaped_suffix(more, word.open_quote, close=not is_dir, first=not typed.strip()),
            start_position=0,
            display=shown(name) + ("/" if is_dir else ""),  # a name may come from a peer
        )


def _names(folder: Path, *, hidden: bool) -> list[tuple[str, bool]]:
    """(name, is a folder) of the first MAX_ENTRIES entries of `folder`."""
    names = []
    with os.scandir(folder) as entries:
        for count, entry in enumerate(entries):
            if count >= MAX_ENTRIES:
                break
            if entry.name.startswith(".") and not hidden:
                continue
            try:
                is_dir = entry.is_dir()  # a link to a folder is a folder
            except OSError:
                is_dir = False
            names.append((entry.name, is_dir))
    return names


class ChatCompleter(Completer):
    """Command names at the start of a line (`commands()`: the names /help lists), paths after
    `/send `."""

    def __init__(self, commands: Callable[[], Iterable[str]]) -> None:
        self._commands = commands

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        text = document.text_before_cursor
        if text.startswith(SEND):
            yield from path_completions(text[len(SEND) :])
        elif text.startswith("/") and not any(ch.isspace() for ch in text):
            for name in sorted(set(self._commands())):
                if name.startswith(text) and name != text:
                    yield Completion(name, start_position=-len(text), display=name)
