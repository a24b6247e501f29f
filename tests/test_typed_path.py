"""What follows /send (didlink/words/typed_path.py) and its Tab completion
(didlink/chat/completion.py).

Paths as terminals produce them when a file is dropped or completed: quoted, backslash-escaped,
`~`, file:// URLs, trailing spaces (issue 27, 8). Hypothesis: quoting then reading is the
identity for any name, and the completer's partial reading agrees with `shlex.split`.
"""

from __future__ import annotations

import shlex
import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from didlink.chat.completion import ChatCompleter, path_completions
from didlink.chat.screen import ChatScreen
from didlink.jsonl import BadCommand, Expecting, SendFile, human_command
from didlink.words.typed_path import (
    MAX_PATH_CHARS,
    TypedPathError,
    escaped_suffix,
    partial_word,
    typed_path,
)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current folder with a few files, and HOME pointing at it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("my file.pdf", "it's.txt", "plain.txt", 'say "hi".txt', "back\\slash"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "my docs").mkdir()
    (tmp_path / "my docs" / "report 1.pdf").write_bytes(b"x")
    (tmp_path / "my docs" / ".hidden").write_bytes(b"x")
    return tmp_path


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        ('"my file.pdf"', "my file.pdf"),  # double quotes
        ("'my file.pdf'", "my file.pdf"),  # single quotes (GNOME Terminal, Konsole drop so)
        ("my\\ file.pdf", "my file.pdf"),  # backslashes (macOS Terminal, iTerm2, bash's Tab)
        ("'it'\\''s.txt'", "it's.txt"),
        ('"it\'s.txt"', "it's.txt"),
        ("it\\'s.txt", "it's.txt"),
        ("it's.txt", "it's.txt"),  # an unpaired quote, as typed: it exists
        ("my file.pdf", "my file.pdf"),  # unquoted spaces, as typed: it exists (as before)
        ("'say \"hi\".txt'", 'say "hi".txt'),
        ('"say \\"hi\\".txt"', 'say "hi".txt'),
        ("'back\\slash'", "back\\slash"),
        ("back\\\\slash", "back\\slash"),
        ("  'my file.pdf'   ", "my file.pdf"),  # drag-and-drop adds a space
        ("plain.txt\t", "plain.txt"),
        ("'my docs'/'report 1.pdf'", "my docs/report 1.pdf"),
        ("~/plain.txt", "plain.txt"),  # HOME is the folder here
        ("~/'my file.pdf'", "my file.pdf"),
        ("./plain.txt", "plain.txt"),
    ],
)
def test_typed_paths_name_the_file(here: Path, typed: str, name: str) -> None:
    assert typed_path(typed) == here / name
    assert human_command("/send " + typed, Expecting.CHAT) == SendFile(str(here / name))


def test_file_urls_are_local_paths_percent_decoded(here: Path) -> None:
    target = here / "my docs" / "report 1.pdf"
    assert typed_path(f"file://{here}/my%20docs/report%201.pdf") == target
    assert typed_path(f"FILE://localhost{here}/my%20docs/report%201.pdf ") == target
    assert typed_path(f"'file://{socket.gethostname()}{here}/my docs/report 1.pdf'") == target
    assert typed_path("file:///tmp/caf%C3%A9") == Path("/tmp/caf\u00e9")
    assert typed_path("file:///tmp/%FF") == Path("/tmp/\udcff")  # not UTF-8: as the OS names it
    for remote, needle in [
        ("file://example.com/etc/passwd", "another computer"),
        ("file:///tmp/a?b", "not the URL of a local file"),
        ("file:///tmp/a#b", "not the URL of a local file"),
        ("file:///tmp/a%00b", "NUL"),
    ]:
        with pytest.raises(TypedPathError, match=needle):
            typed_path(remote)


def test_a_quoted_tilde_is_a_name_not_home(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/nonexistent-home")
    assert typed_path("'~'/x") == here / "~" / "x"
    assert typed_path("\\~/x") == here / "~" / "x"
    assert typed_path("~/x") == Path("/nonexistent-home/x")
    # the node expands `~` again (jsonl `send_file`): an absolute path gives it nothing to do
    assert str(typed_path("'~x'")).startswith("/")


@pytest.mark.parametrize(
    ("typed", "needle"),
    [
        ("", "usage: /send PATH"),
        ("   ", "usage: /send PATH"),
        ("''", "usage: /send PATH"),
        ('"unclosed', "do not pair up"),
        ("trailing\\", "do not pair up"),
        ("a.txt b.txt", "one file per /send"),  # neither exists
        ("'a b' c", "one file per /send"),
        ("a\x00b", "NUL"),
        ("x" * (MAX_PATH_CHARS + 1), "at most"),
    ],
)
def test_what_names_no_single_file_is_refused_in_one_line(
    here: Path, typed: str, needle: str
) -> None:
    with pytest.raises(TypedPathError, match=needle) as info:
        typed_path(typed)
    message = str(info.value)
    assert "\n" not in message and len(message) < 600
    with pytest.raises(BadCommand, match=needle):
        human_command("/send " + typed, Expecting.CHAT)


def test_a_hostile_name_in_the_error_is_escaped(here: Path) -> None:
    with pytest.raises(TypedPathError) as info:
        typed_path("'a\x1b[2J' b")
    assert "\x1b" not in str(info.value) and "\\x1b" in str(info.value)


def test_the_chat_screen_says_what_is_wrong_and_goes_on(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    screen = ChatScreen(names=lambda did: None)
    with pytest.raises(BadCommand, match="one file per /send"):
        screen.command_for("/send a.txt b.txt", Expecting.CHAT)
    assert screen.command_for("/send", Expecting.CHAT) is None
    assert "usage: /send PATH" in capsys.readouterr().out
    assert screen.command_for("/send 'my file.pdf'", Expecting.CHAT) == SendFile(
        str(here / "my file.pdf")
    )
    assert "sending my file.pdf (1 B) ..." in capsys.readouterr().out
    # a missing file or a folder: the node says why (an `error` line); nothing "sending" here
    assert screen.command_for("/send 'my docs'", Expecting.CHAT) == SendFile(str(here / "my docs"))
    assert "sending" not in capsys.readouterr().out


# --- the identity: quote a name, read it back -------------------------------------------------

NAMES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=40,
).filter(lambda name: name.strip() and not name.lower().startswith("file://"))


@given(NAMES)
def test_quoting_then_reading_is_the_identity(name: str) -> None:
    """Whatever the name (spaces, quotes, backslashes, `~`, newlines), quoted with shlex it
    reads back as itself, never as several names, never as home."""
    assert typed_path(shlex.quote(name), is_file=lambda _: False) == Path(name).absolute()
    backslashed = escaped_suffix(name, None, close=True, first=True)
    assert typed_path(backslashed, is_file=lambda _: False) == Path(name).absolute()
    for quote in ("'", '"'):
        spelled = quote + escaped_suffix(name, quote, close=True)
        assert typed_path(spelled, is_file=lambda _: False) == Path(name).absolute()


@given(st.text(alphabet=" \t'\"\\ab~/", max_size=20))
def test_the_partial_reading_agrees_with_shlex(typed: str) -> None:
    """On any text shlex can read, the completer's reading of its first word is shlex's."""
    try:
        words = shlex.split(typed)
    except ValueError:
        return
    word = partial_word(typed)
    if words:
        assert word.text == words[0]
        assert word.ended == (len(shlex.split(typed + "z")) > 1)  # a next word has begun
    assert word.open_quote is None


@given(NAMES, st.sampled_from([None, "'", '"']), st.integers(0, 40))
def test_a_completion_spelled_in_the_open_quote_reads_back(
    name: str, quote: str | None, cut: int
) -> None:
    """Typed so far: the start of `name` in some quoting; completed: the rest appended in the
    same quoting. What /send then reads is `name`."""
    head, rest = name[:cut], name[cut:]
    typed = (quote or "") + escaped_suffix(head, quote, close=False, first=True)
    word = partial_word(typed)
    assert word.text == head and word.open_quote == quote
    completed = typed + escaped_suffix(rest, word.open_quote, close=True, first=not typed)
    if completed.strip():
        assert typed_path(completed, is_file=lambda _: False) == Path(name).absolute()


# --- Tab completion ---------------------------------------------------------------------------


def _completions(text: str) -> list[tuple[str, str]]:
    """(text inserted, name shown) for the line `text` with the cursor at its end."""
    completer = ChatCompleter(ChatScreen.command_names)
    found = completer.get_completions(Document(text), CompleteEvent(completion_requested=True))
    return [(c.text, c.display_text) for c in found]


def test_tab_completes_paths_in_the_quoting_in_use(here: Path) -> None:
    assert _completions("/send pla") == [("in.txt", "plain.txt")]
    assert _completions("/send my") == [("\\ docs/", "my docs/"), ("\\ file.pdf", "my file.pdf")]
    assert _completions("/send my\\ f") == [("ile.pdf", "my file.pdf")]
    assert _completions("/send 'my f") == [("ile.pdf'", "my file.pdf")]  # the quote closed
    assert _completions('/send "my d') == [("ocs/", "my docs/")]  # a folder: left open
    assert _completions('/send "my docs/') == [('report 1.pdf"', "report 1.pdf")]
    assert _completions("/send my\\ docs/r") == [("eport\\ 1.pdf", "report 1.pdf")]
    assert _completions("/send my\\ docs/.") == [("hidden", ".hidden")]
    assert _completions("/send it") == [("\\'s.txt", "it's.txt")]
    assert _completions("/send 'it") == [("'\\''s.txt'", "it's.txt")]
    assert _completions("/send ~/pl") == [("ain.txt", "plain.txt")]  # ~ stays as typed
    assert _completions(f"/send {here}/pl") == [("ain.txt", "plain.txt")]
    assert [shown for _, shown in _completions("/send ")] == sorted(
        ["back\\slash", "it's.txt", "my docs/", "my file.pdf", "plain.txt", 'say "hi".txt']
    )
    assert _completions("/send nothing-like-it") == []
    assert _completions("/send plain.txt ") == []  # a second word: one file per /send
    assert _completions("/send /nonexistent-folder/x") == []
    assert _completions("hello pla") == []  # not a /send line


def test_every_completion_reads_back_as_the_file(here: Path) -> None:
    for typed in ("/send my\\ d", "/send 'my d", '/send "my d', "/send i", "/send 'i", "/send s"):
        line = typed
        for _ in range(3):  # Tab again inside a completed folder
            found = _completions(line)
            if len(found) != 1:
                break
            line += found[0][0]
        assert human_command(line, Expecting.CHAT) in (
            SendFile(str(here / "my docs" / "report 1.pdf")),
            SendFile(str(here / "it's.txt")),
            SendFile(str(here / 'say "hi".txt')),
        ), line


def test_listed_names_are_shown_escaped(here: Path) -> None:
    (here / "evil\u202egpj.exe").write_bytes(b"x")  # saved from a peer, say
    [(inserted, listed)] = _completions("/send evil")
    assert inserted == "\u202egpj.exe" and listed == "evil\\u202egpj.exe"


def test_tab_completes_command_names() -> None:
    assert _completions("/q") == [("/quit", "/quit")]
    assert _completions("/se") == [("/send ", "/send "), ("/send-text ", "/send-text ")]
    assert ("/help", "/help") in _completions("/")
    assert _completions("/quit now") == []
    assert _completions("plain") == []


def test_completion_reads_one_folder_within_bounds(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("didlink.chat.completion.MAX_SHOWN", 2)
    assert len(list(path_completions(""))) == 2
    monkeypatch.setattr("didlink.chat.completion.MAX_ENTRIES", 1)
    assert len(list(path_completions(""))) <= 1
