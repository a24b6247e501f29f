"""The machine interface of a live session (specs/cli-jsonl.md): events out, commands in.

Events are one JSON object per line on stdout, `{"event": NAME, ...}`, written by `JsonlSink`;
`HumanSink` shows the same events to a person. Commands are one JSON object per line on stdin,
`{"cmd": NAME, ...}`, parsed by `parse_command` into the session's command classes
(didlink/session/commands.py, re-exported here); `human_command` turns a typed line into the
same classes. `LineReader` reads stdin in a thread (os.read on the file
descriptor, so it works for pipes, files and terminals alike and never holds the interpreter's
stdin lock at exit) and hands whole lines to the event loop.

No protocol logic lives here: this module only spells things.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import select
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TextIO

from didlink.errors import UserError
from didlink.file_policy import file_question, file_refusal
from didlink.session.commands import (
    AcceptFile,
    Command,
    ConfirmSas,
    EventSink,
    Expecting,
    Quit,
    RefuseFile,
    RejectSas,
    SendFile,
    SendText,
    SubmitResponse,
    held,
)
from didlink.words.display import block, json_safe, one_line, shown, terminal_columns
from didlink.words.ice import path_words
from didlink.words.message_states import LEGEND, MessageState, OwnMessages, sent_note, state_line
from didlink.words.output import say
from didlink.words.transfer import progress_line, queued_file_line, unsent_file_line
from didlink.words.typed_path import TypedPathError, typed_path

__all__ = [
    "AcceptFile",
    "BadCommand",
    "Command",
    "ConfirmSas",
    "EventSink",
    "Expecting",
    "HumanSink",
    "JsonlSink",
    "LineReader",
    "Quit",
    "RefuseFile",
    "RejectSas",
    "SendFile",
    "SendText",
    "SubmitResponse",
    "event_line",
    "held",
    "human_command",
    "parse_command",
    "token_intro",
]

_ATOMIC_WRITE: int = getattr(select, "PIPE_BUF", 512)
"""A write to a pipe of at most this many bytes is never split (POSIX; 4096 on Linux)."""

MAX_COMMAND_CHARS = 1 << 20
"""A command line longer than this is refused (a file is sent by path, never inline)."""

# --- commands (the classes are the session's, didlink/session/commands.py) ----------------------


class BadCommand(UserError):
    """A command line is not one of the commands of specs/cli-jsonl.md."""


def _string_field(obj: dict[str, Any], name: str, cmd: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise BadCommand(f'the "{cmd}" command needs a non-empty string "{name}"')
    return value


def _check_fields(obj: dict[str, Any], allowed: frozenset[str], cmd: str) -> None:
    """`allowed`: every field the command may have, "cmd" included."""
    if not obj.keys() <= allowed:
        extra = sorted(obj.keys() - allowed)
        raise BadCommand(f'the "{cmd}" command has unknown fields: {", ".join(extra)}')


_NO_FIELDS = frozenset({"cmd"})
_RESPONSE_FIELDS = frozenset({"cmd", "token"})
_SEND_FIELDS = frozenset({"cmd", "text", "ref"})
_SEND_FILE_FIELDS = frozenset({"cmd", "path"})
_FILE_ANSWER_FIELDS = frozenset({"cmd", "id"})


def parse_command(line: str) -> Command:
    """One JSON command line -> a command; BadCommand with a sentence if it is not one."""
    if len(line) > MAX_COMMAND_CHARS:
        raise BadCommand(f"a command line is at most {MAX_COMMAND_CHARS} characters")
    try:
        obj = json.loads(line)
    except ValueError:
        raise BadCommand("a command must be one JSON object per line") from None
    if not isinstance(obj, dict):
        raise BadCommand("a command must be a JSON object")
    cmd = obj.get("cmd")
    if not isinstance(cmd, str):
        raise BadCommand('a command needs a string "cmd" field')
    if cmd == "response":
        _check_fields(obj, _RESPONSE_FIELDS, cmd)
        return SubmitResponse(_string_field(obj, "token", cmd))
    if cmd == "confirm_sas":
        _check_fields(obj, _NO_FIELDS, cmd)
        return ConfirmSas()
    if cmd == "reject_sas":
        _check_fields(obj, _NO_FIELDS, cmd)
        return RejectSas()
    if cmd == "send":
        _check_fields(obj, _SEND_FIELDS, cmd)
        return SendText(_string_field(obj, "text", cmd), obj.get("ref"))
    if cmd == "send_file":
        _check_fields(obj, _SEND_FILE_FIELDS, cmd)
        return SendFile(_string_field(obj, "path", cmd))
    if cmd == "quit":
        _check_fields(obj, _NO_FIELDS, cmd)
        return Quit()
    if cmd in ("accept_file", "refuse_file"):
        _check_fields(obj, _FILE_ANSWER_FIELDS, cmd)
        file_id = _string_field(obj, "id", cmd)
        return AcceptFile(file_id) if cmd == "accept_file" else RefuseFile(file_id)
    raise BadCommand(f"unknown command {cmd!r}")


def human_command(line: str, expecting: Expecting) -> Command | None:
    """A typed line -> a command (None for an empty line). `/quit` and `/send` work anywhere.

    BadCommand if `/send` is not followed by the path of one file (didlink/words/typed_path.py)."""
    text = line.strip()
    if not text:
        return None
    if text == "/quit":
        return Quit()
    if text.split(maxsplit=1)[0] == "/send":  # one path, quoted as a shell would (typed_path)
        try:
            return SendFile(str(typed_path(text.removeprefix("/send"))))
        except TypedPathError as exc:
            raise BadCommand(str(exc)) from None
    if expecting is Expecting.RESPONSE:
        return SubmitResponse(text)
    if expecting is Expecting.SAS:
        return ConfirmSas() if text.lower() in ("y", "yes") else RejectSas()
    if expecting is Expecting.FILE:
        return AcceptFile() if text.lower() in ("y", "yes") else RefuseFile()
    return SendText(line.rstrip("\r\n"))


# --- events ----------------------------------------------------------------------------------


def _event_encoder() -> Callable[[dict[str, Any]], str]:
    """Compact JSON, non-ASCII text as is: what `json.JSONEncoder(ensure_ascii=False,
    separators=(",", ":")).encode` gives. Its `encode` makes a new C encoder for every call,
    which is half the cost of a short event; this one is made once (the plain `encode` where
    the json module has no C encoder)."""
    plain = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has it
        return plain.encode
    encode = make(
        None, plain.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    return lambda value: "".join(encode(value, 0))


_ENCODE_EVENT = _event_encoder()


def event_line(event: str, **fields: Any) -> str:
    """The JSON line of one event: "event" first, then the fields in the order given."""
    return json_safe(_ENCODE_EVENT({"event": event, **fields}))


class JsonlSink:
    """Events as JSON lines on stdout; warnings as one line on stderr.

    Each event is written and flushed as it is emitted, except inside `held()`, whose events
    are written together when it ends (the events of one received frame: a write per PIPE_BUF
    bytes of whole lines, not one per message, whatever the buffering of stdout).
    """

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self._held: list[str] | None = None

    def emit(self, event: str, **fields: Any) -> None:
        line = event_line(event, **fields) + "\n"
        if self._held is not None:
            self._held.append(line)
            return
        self._out.write(line)
        self._out.flush()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Events emitted inside are written at its end, in order (also if it ends in an error)."""
        if self._held is not None:  # nested: the outer one writes
            yield
            return
        self._held = []
        try:
            yield
        finally:
            lines, self._held = self._held, None
            for chunk in _whole_line_chunks(lines):
                self._out.write(chunk)
                self._out.flush()

    def warn(self, text: str) -> None:
        self._err.write(f"warning: {one_line(text)}\n")
        self._err.flush()


def _whole_line_chunks(lines: list[str]) -> Iterator[str]:
    """`lines` joined into writes of at most PIPE_BUF bytes, each ending with a whole line.

    A pipe takes such a write whole or not at all, so a process killed mid-batch leaves whole
    lines behind, as one write per event does (a longer line is written alone).
    """
    chunk: list[str] = []
    size = 0
    for line in lines:
        length = len(line) if line.isascii() else len(line.encode())
        if chunk and size + length > _ATOMIC_WRITE:
            yield "".join(chunk)
            chunk, size = [], 0
        chunk.append(line)
        size += length
    if chunk:
        yield "".join(chunk)


def token_intro(
    kind: str, *, relays: object = None, sent_by_relay: object = None
) -> tuple[str, ...]:
    """What to do with a `token` event's token, said before it (the token comes last, right
    above the prompt, with its QR code between: didlink/words/qr.py). `relays` (an invitation's) and
    `sent_by_relay` (a response's): the token event's fields of the same names."""
    if kind in ("invite", "reconnect"):
        what = "this invitation" if kind == "invite" else "this reconnect token"
        then = "Then paste the response token they send back."
        if isinstance(relays, list) and relays:
            then = "Their response comes back by relay; or paste the response token they send."
        return (f"Give {what} to your contact: they paste it into didlink accept.", then)
    if isinstance(sent_by_relay, list):
        if sent_by_relay:
            return (
                f"Your response went back to the inviter by relay ({len(sent_by_relay)}).",
                "If it does not arrive, send them this response token to paste:",
            )
        return (
            "Sending your response by relay failed: send this response token back to the"
            " person who invited you.",
            "Waiting for the connection...",
        )
    return (
        "Send this response token back to the person who invited you.",
        "Waiting for the connection...",
    )


def offline_words(peer: str, name: str | None) -> str:
    """The chat's line when the contact did not answer the rendezvous (specs/rendezvous.md)."""
    who = shown(name) if name else shown(peer)
    return f"{who} is not online: messages go by mailbox (they get them when they are back)."


class HumanSink:
    """The same events, worded for a person at a terminal (line mode: pipes, TERM=dumb).

    Every line goes through `say` (didlink/words/output.py); what a peer controls is escaped where
    it is inserted, and a message's further lines start with the continuation prefix
    (didlink/words/display.py), so no line of peer text can pass for one of ours.
    """

    def __init__(self, *, relay_host: str | None = None) -> None:
        self._relay_host = relay_host  # the TURN server's host: "relayed by HOST"
        self._own = OwnMessages()  # texts shown queued, until `delivered`
        self._queued_files: set[object] = set()  # ids of queued files shown
        self._legend_shown = False

    def emit(self, event: str, **fields: Any) -> None:
        show = getattr(self, f"_on_{event}", None)
        if show is not None:
            show(**fields)
        else:  # pragma: no cover - every event has a wording; this is a safety net
            say(event_line(event, **fields))

    def warn(self, text: str) -> None:
        say(f"WARNING: {one_line(text)}", err=True, fg="red", bold=True)

    def _on_token(self, *, kind: str, token: str, **fields: Any) -> None:
        from didlink.words.qr import print_token  # late: only a session that shows a token

        intro = token_intro(
            kind, relays=fields.get("relays"), sent_by_relay=fields.get("sent_by_relay")
        )
        print_token(intro, token, below=1)

    def _on_sas(self, *, emoji: list[str], names: list[str], decimal: list[int], **_: Any) -> None:
        say("")
        say("Compare with your contact (by voice or in person):")
        say("    " + "   ".join(emoji))
        say("    " + ", ".join(names))
        say("    " + "-".join(str(n) for n in decimal))
        say("Do you both see the same? [y/N]")

    def _on_connected(
        self,
        *,
        peer: str,
        verified: bool,
        path: str | None = None,
        suggested_name: object = None,
        **_: Any,
    ) -> None:
        state = "verified" if verified else "NOT verified"
        how = path_words(path, self._relay_host)
        how = f", {how}" if how else ""
        say(f"Connected to {shown(peer)} ({state}{how}). Type a message, /send PATH, or /quit.")
        if isinstance(suggested_name, str) and suggested_name:
            say(
                f'They call themselves "{shown(suggested_name)}" (only their word for it): to'
                f" make it your name for them, didlink contacts rename {shown(peer)}"
            )

    def _on_message(self, *, id: int, text: str, **fields: Any) -> None:
        note = sent_note(fields.get("sent_at"), datetime.now().astimezone())  # the peer's clock
        first = f"< [{note}] " if note else "< "
        for line in block(text, first=first, columns=terminal_columns()):
            say(line)

    def _on_queued(self, *, messages: object = (), files: object = (), **_: Any) -> None:
        """Compact: one line per text that waits, then per file (specs/cli-jsonl.md section 3)."""
        for item in messages if isinstance(messages, list) else []:
            text = item.get("text") if isinstance(item, dict) else None
            if isinstance(text, str) and self._own.queued(item.get("id"), text):
                say(state_line(MessageState.QUEUED, text))
                if not self._legend_shown:
                    self._legend_shown = True
                    say(LEGEND)
        for item in files if isinstance(files, list) else []:
            if isinstance(item, dict) and item.get("id") not in self._queued_files:
                self._queued_files.add(item.get("id"))
                say(queued_file_line(item.get("name"), item.get("size")))

    def _on_file_unsent(self, *, name: object = "", reason: object = "", **_: Any) -> None:
        say(unsent_file_line(name, reason), err=True)

    def _on_sent(self, *, id: object = None, **_: Any) -> None:
        change = self._own.sent(id)  # only the texts shown queued: a state change
        if change is not None:
            say(state_line(MessageState.SENT, change[0]))

    def _on_delivered(self, *, id: object = None, **_: Any) -> None:
        text = self._own.delivered(id)
        if text is not None:
            say(state_line(MessageState.DELIVERED, text))

    def _on_progress(
        self, *, id: str, bytes: int, total: int, direction: str = "", name: str = "", **_: Any
    ) -> None:
        say("  " + progress_line(direction, name or id[:8], bytes, total))

    def _on_file(self, *, name: str, size: int, path: str, **_: Any) -> None:
        say(f"Received {shown(name)} ({size} bytes, SHA-256 checked): {shown(path)}")

    def _on_file_sent(self, *, name: str, size: int, **_: Any) -> None:
        say(f"Sent {shown(name)} ({size} bytes): the peer has it, checked.")

    def _on_file_offer(self, *, name: str, size: int, **fields: Any) -> None:
        say(file_question(name, size, str(fields.get("from", ""))))

    def _on_file_refused(self, *, name: str, by: str, **fields: Any) -> None:
        say(file_refusal(name, by, str(fields.get("from", ""))))

    def _on_error(self, *, message: str, **_: Any) -> None:
        say(f"error: {shown(message, limit=400)}", err=True)

    def _on_offline(self, *, peer: str, name: str | None = None, **_: Any) -> None:
        say(offline_words(peer, name))

    def _on_closed(self, *, reason: str, **_: Any) -> None:
        say(f"Session closed: {shown(reason)}.")


# --- input -----------------------------------------------------------------------------------


LINES_PER_TURN = 128
"""Lines `LineReader` hands over in one event-loop turn: a burst of thousands of commands is
handled in slices, so the session's writer and the transport run between them (rather than after
the last line) and the first texts leave at once."""


class LineReader:
    """Lines of a file descriptor, read by a daemon thread, handed to `on_lines` in the loop.

    `on_lines(lines)` gets the lines in order, without their newlines, as soon as a read brings
    them: all of them in the loop turn they arrive in, up to `LINES_PER_TURN`, the rest in the
    following turns (other work of the loop runs in between). The end of input is a last None.
    A callback rather than a queue: a line is handled without waiting for another loop iteration
    to wake a reader task (bench/README.md, latency). `on_lines` must not raise. After `close()`
    nothing more is handed over.
    """

    def __init__(self, on_lines: Callable[[list[str | None]], None], fd: int | None = None) -> None:
        self._fd = sys.stdin.fileno() if fd is None else fd
        self._on_lines = on_lines
        self._pending: collections.deque[str | None] = collections.deque()
        self._scheduled = False  # a `_hand_over` of the rest of a long read is due
        self._closed = False
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="didlink-stdin", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed = True
        self._pending.clear()

    def _put(self, lines: list[str | None]) -> None:
        """Hand the loop every line of one read at once (one wake-up, not one per line)."""
        self._loop.call_soon_threadsafe(self._arrived, lines)

    def _arrived(self, lines: list[str | None]) -> None:
        if self._closed:
            return
        self._pending.extend(lines)
        if not self._scheduled:  # else they follow the lines already waiting, in order
            self._hand_over()

    def _hand_over(self) -> None:
        self._scheduled = False
        if self._closed:
            return
        pending = self._pending
        if len(pending) <= LINES_PER_TURN:
            lines = list(pending)
            pending.clear()
        else:
            lines = [pending.popleft() for _ in range(LINES_PER_TURN)]
            self._scheduled = True
            self._loop.call_soon(self._hand_over)
        self._on_lines(lines)

    def _run(self) -> None:
        pending = b""
        try:
            while True:
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                if lines:
                    self._put([raw.decode("utf-8", "replace").rstrip("\r") for raw in lines])
        except (OSError, RuntimeError):  # stdin closed, or the loop is gone at exit
            pass
        try:
            last = [pending.decode("utf-8", "replace")] if pending else []
            self._put([*last, None])
        except RuntimeError:  # the event loop already closed
            pass
