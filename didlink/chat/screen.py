"""The chat screen for a person at a terminal (prompt_toolkit): `didlink invite` / `accept`.

Theory of operation
-------------------
`ChatScreen` is both halves of a session's human interface: an `EventSink` (the node's events
worded for a person: "[12:03] Alice: text") and the input loop (`run(node)`: typed lines ->
the same commands as the line-based mode, via `human_command`). Everything is printed through
stdout while `patch_stdout` is active, so prompt_toolkit erases the input line, prints the
text above it and redraws the line with whatever was half typed: an incoming message never
garbles what the user is typing.

- The prompt follows the session's phase (`Session.expecting`): the inviter's "Paste the response
  token:", the SAS question "Do they match? [y/N]", then the peer's name.
- Our own messages are echoed when the node reports them `sent` (each typed text goes out with
  a private `ref`, echoed back in `sent`), and a check-mark line follows their receipt.
- File transfers show a progress bar in the bottom toolbar on both sides (from `progress`
  events, whose `direction` and `name` label it "sending NAME" / "receiving NAME", resumed
  transfers alike), and one line when they complete.
- `/send PATH` takes a path as a shell reads one word (didlink/words/typed_path.py); Tab completes
  command names and the path after `/send ` (didlink/chat/completion.py).
- `/help` is answered here; `/quit`, end of input (Ctrl-D) and Ctrl-C quit. Ctrl-C while a file
  is being sent or received asks first ("... quit anyway? [y/N]"; Ctrl-C again says yes).

`wanted()` says whether to use it: only when stdin and stdout are terminals (pipes and files
keep the plain line mode that tests and scripts rely on) and `TERM` is not `dumb`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TextIO, cast

from prompt_toolkit import PromptSession
from prompt_toolkit.application import Application, get_app_or_none
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.shortcuts import CompleteStyle

from didlink.chat.completion import ChatCompleter
from didlink.file_policy import file_question, file_refusal
from didlink.jsonl import (
    AcceptFile,
    BadCommand,
    Command,
    ConfirmSas,
    Expecting,
    Quit,
    RefuseFile,
    RejectSas,
    SendFile,
    SendText,
    human_command,
    token_intro,
)
from didlink.words.display import block, one_line, shown, terminal_columns
from didlink.words.ice import path_words
from didlink.words.message_states import (
    LEGEND,
    MARKS,
    MessageState,
    OwnMessages,
    sent_note,
    state_line,
)
from didlink.words.output import Styled, say, styled
from didlink.words.transfer import (
    NAME_CHARS,
    RESUMES,
    TransferInProgress,
    human_size,
    queued_file_line,
    still_running,
    unsent_file_line,
    verb,
)
from didlink.words.when import clock_time, utc_time

HELP = (
    "Type a message and press Enter to send it.",
    "  /send PATH   send a file (Tab completes the path; quote a name with spaces)",
    "  /send-text TEXT  send TEXT as it is (e.g. a line that looks like a token)",
    "  /name [NAME] save your name for them (no NAME: the name they suggest, ~NAME)",
    "  /help        this help",
    "  /quit        wait for receipts, close the session and exit (also Ctrl-D)",
)
PLAIN: dict[str, Any] = {}
WORRYING: dict[str, Any] = {"fg": "yellow", "bold": True}
ALARMING: dict[str, Any] = {"fg": "red", "bold": True}
ENDINGS: dict[str, tuple[str, dict[str, Any]]] = {
    # the `closed` reasons of specs/cli-jsonl.md section 6, in words ({who}: the other side)
    "quit": ("you left the chat", PLAIN),
    "peer closed": ("{who} left the chat", PLAIN),
    "sas rejected": ("you rejected the SAS", ALARMING),
    "sas rejected by peer": ("{who} rejected the SAS", ALARMING),
    "connection lost": ("the connection to {who} was lost", WORRYING),
    "connection failed": ("no connection to {who} could be made", WORRYING),
    "no network path": ("no network path to {who} was found (see the error above)", WORRYING),
    "timeout": ("it took too long (see the error above)", WORRYING),
    "handshake failed": ("the secure handshake with {who} failed", ALARMING),
    "protocol error": ("{who} broke the protocol", ALARMING),
    "internal error": ("an internal error ended it (see the error above)", WORRYING),
}
INVITATION_CANCELLED = (
    "The invitation is cancelled: no response to it will be taken. Whoever accepts it is told"
    " within seconds that you are gone (when their computer can reach yours)."
)
BAR_WIDTH = 24
TOOLBAR_HINT = " /help: commands"
SHORT_DID = 20
UNCONFIRMED = "~"
"""Before a name the peer gave itself and the user has not adopted (`~Bob`): WhatsApp's mark for
a sender's own name when they are not in the address book (specs/chat-ui.md section 2)."""


class Commands(Protocol):
    """What the chat screen drives: a session (didlink/cli/session.py `SessionCommands`)."""

    @property
    def expecting(self) -> Expecting: ...

    def handle(self, command: Command) -> None: ...

    def transfers_in_progress(self) -> list[TransferInProgress]: ...


def wanted() -> bool:
    """Use the chat screen? Only on a real terminal (stdin and stdout), not TERM=dumb."""
    if os.environ.get("TERM", "") == "dumb":
        return False
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def short_did(did: str) -> str:
    """A DID shortened for a prompt or a message line."""
    return did if len(did) <= SHORT_DID + 6 else f"{did[:SHORT_DID]}...{did[-4:]}"


def progress_bar(done: int, total: int, *, width: int = BAR_WIDTH) -> str:
    """'[#########---------------]  37%  1.2 MB / 3.3 MB' for one transfer."""
    fraction = 1.0 if total <= 0 else min(1.0, max(0.0, done / total))
    filled = round(fraction * width)
    percent = int(fraction * 100)
    return (
        f"[{'#' * filled}{'-' * (width - filled)}] {percent:3d}%  "
        f"{human_size(done)} / {human_size(total)}"
    )


def sas_lines(emoji: list[str], names: list[str], decimal: list[int]) -> list[str]:
    """The SAS as a person compares it: each emoji with its name, then the three numbers."""
    pairs = [f"{e} {n}" for e, n in zip(emoji, names, strict=True)]
    return [
        "Compare with your contact (by voice or in person), word by word:",
        "    " + "   ".join(pairs[:4]),
        "    " + "   ".join(pairs[4:]),
        "    numbers: " + "  ".join(str(n) for n in decimal),
    ]


TOKEN_NOT_SENT = {
    "response": (
        "This is a response token: give it to the person who invited you (the way their"
        " invitation came to you); it was not sent.",
        "To send it as a message anyway: /send-text followed by the text.",
    ),
    "invitation": (
        "This is an invitation token: whoever accepts it runs didlink accept 'didlink:...';"
        " it was not sent.",
        "To send it as a message anyway: /send-text followed by the text.",
    ),
}


def token_kind(text: str) -> str | None:
    """ "response" or "invitation" if `text` (one typed line) is an authentic didlink token,
    else None (a message that merely mentions one is a message)."""
    from identity.errors import IdentityError  # late: only a line starting like a token
    from identity.invitation import Response
    from identity.token import PREFIX, decode_token

    compact = "".join(text.split())
    if compact[: len(PREFIX)].lower() != PREFIX:
        return None
    try:
        token = decode_token(compact)
    except IdentityError:
        return None
    return "response" if isinstance(token, Response) else "invitation"


def _contact_name(did: str) -> str | None:
    """The petname saved for `did` in the profile's store, if any."""
    from didlink.profile.folder import Profile  # late: only the terminal UI needs the store here

    try:
        with Profile.from_env().open_store() as store:
            contact = store.get_contact(did)
    except Exception:  # a name is a nicety: never let it break the chat
        return None
    return None if contact is None else contact.name


def _save_name(did: str, name: str | None) -> str:
    """Name the contact `did` in the profile's store (None: adopt its suggestion); the name.
    UserError if the name is refused (taken, look-alike, ...; specs/store.md "Names")."""
    from didlink.profile.folder import Profile  # late, as in _contact_name

    with Profile.from_env().open_store() as store:
        contact = store.adopt_suggestion(did) if name is None else store.rename_contact(did, name)
    return contact.name or ""


class _ScreenStream:
    """The file `say` writes one line into: the chat screen's own `_write` (its docstring)."""

    def __init__(self, screen: ChatScreen, *, err: bool) -> None:
        self._screen = screen
        self._err = err

    def write(self, text: str) -> int:
        self._screen._write(text, err=self._err)
        return len(text)

    def flush(self) -> None:
        """Each write is flushed already."""

    def isatty(self) -> bool:
        return self._screen.on_terminal(self._err)


class ChatScreen:
    """The session's events for a person, and the typed commands back (module docstring)."""

    def __init__(
        self,
        *,
        names: Callable[[str], str | None] = _contact_name,
        save_name: Callable[[str, str | None], str] = _save_name,
        clock: Callable[[], datetime] = datetime.now,
        out: TextIO | None = None,
        err: TextIO | None = None,
        relay_host: str | None = None,
    ) -> None:
        self._relay_host = relay_host  # the TURN server's host: "relayed by HOST"
        self._names = names
        self._save_name = save_name
        self._clock = clock
        # The real streams, taken now: while the screen runs, sys.stdout is patch_stdout's proxy.
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self._app: Application[Any] | None = None  # the prompt's application, while run() runs
        self._over = False  # the session ended (`closed`): the input loop stops
        self._node: Commands | None = None
        self._peer: str | None = None
        self._peer_name: str | None = None
        self._peer_suggestion: str | None = None  # the name they gave themselves (`~Bob`)
        self._typed: dict[int, str] = {}  # our ref -> text, until `sent`
        self._own = OwnMessages()  # message id -> text and state, until `delivered`
        self._queued_files: set[object] = set()  # ids of queued files shown
        self._legend_shown = False  # the marks were explained (at the first queued text)
        self._next_ref = 0
        self._transfers: dict[str, tuple[int, int]] = {}  # file id -> (bytes, total)
        self._labels: dict[str, str] = {}  # file id -> "sending NAME" / "receiving NAME"
        self._file_names: dict[str, str] = {}  # file id -> NAME (shown), for the session's end
        self._quitting = False  # Ctrl-C during a transfer: "quit anyway?" is the prompt
        self._input_done = False
        self._questions: list[tuple[str, int, str]] = []  # file offers asked: (name, size, from)

    # -- what the user sees ------------------------------------------------------------------

    def _print(self, *parts: str | Styled, err: bool = False, **style: Any) -> None:
        """One line for the user: every part display-safe, then styled (didlink/words/output.py),
        written on the terminal now (`_write`)."""
        say(*parts, file=cast(TextIO, _ScreenStream(self, err=err)), **style)

    def on_terminal(self, err: bool = False) -> bool:
        """Is what `_write` writes shown on a terminal (so styling is kept)?"""
        if self._app is not None and self._app.is_running:
            return True
        stream = self._err if err else self._out
        try:
            return stream.isatty()
        except (AttributeError, ValueError):  # a closed or replaced stream
            return False

    def _write(self, text: str, *, err: bool = False) -> None:
        """`text` (whole lines) on the terminal now, above the prompt while it is shown.

        Written here, in the event loop's thread, not through patch_stdout's proxy: the proxy
        hands each line to a thread that schedules its write as a task on the loop, and a task
        still waiting when the session ends (the `closed` line, the last warnings) was dropped
        with the loop, so that the end of a session was often silent (issue 27). Here: erase
        the prompt (and toolbar), write, let the prompt be drawn again below.
        """
        app = self._app
        if app is not None and app.is_running:
            app.renderer.erase()  # the prompt's lines; the cursor goes to where they began
            app.output.write_raw(text)
            app.output.flush()
            app.renderer.reset()  # what is on the screen is no longer the prompt
            if not app.is_done:
                app.renderer.request_absolute_cursor_position()  # rows free below, as before
                app.invalidate()  # the prompt again, below the new lines
            return
        stream = self._err if err else self._out
        stream.write(text)
        stream.flush()

    def _print_text(self, prefix: Styled | str, first: str, text: str) -> None:
        """A text from outside behind `prefix` + `first`, its further lines behind the
        continuation prefix (didlink/words/display.py), so that none can pass for one of ours."""
        head = prefix.text if isinstance(prefix, Styled) else prefix
        lines = block(text, first=head + first, columns=terminal_columns())
        self._print(prefix, lines[0][len(head) :])
        for line in lines[1:]:
            self._print(line)

    def _stamp(self) -> str:
        return self._clock().strftime("[%H:%M]")

    def _who(self, did: str) -> str:
        """The sender's name (ours for them), `~` and the name they suggest, or a short DID,
        display-safe."""
        if did == self._peer:
            return self._peer_label()
        return shown(self._names(did) or short_did(did))

    def _peer_label(self) -> str:
        """The peer as this screen names it (section 2 of specs/chat-ui.md): our name for them;
        else `~` and the name they gave themselves (unconfirmed, never adopted by itself);
        else their shortened DID. Display-safe."""
        if self._peer_name:
            return shown(self._peer_name)
        if self._peer_suggestion:
            return UNCONFIRMED + shown(self._peer_suggestion)
        return shown(short_did(self._peer or ""))

    def _redraw(self) -> None:
        app = get_app_or_none()
        if app is not None and app.is_running and not app.is_done:
            app.invalidate()

    def prompt_text(self) -> str:
        """The prompt for the current phase."""
        expecting = self._node.expecting if self._node is not None else Expecting.CHAT
        if self._quitting:
            return "Quit anyway? [y/N] "
        if expecting is Expecting.RESPONSE:
            return "Paste the response token: "
        if expecting is Expecting.SAS:
            return "Do they match? [y/N] "
        if expecting is Expecting.FILE and self._questions:
            name, size, did = self._questions[0]
            return file_question(name, size, self._who(did)) + " "
        if self._peer is None:
            return "didlink> "
        return f"{self._peer_label()}> "

    def toolbar(self) -> str:
        """The bottom toolbar: one progress bar per running transfer, else a hint."""
        self._drop_ended_transfers()
        queued = self._own.count(MessageState.QUEUED)
        waiting = f" {queued} queued {MARKS[MessageState.QUEUED]}  " if queued else ""
        if not self._transfers:
            return waiting + TOOLBAR_HINT
        return waiting + "   ".join(
            f"{shown(self._labels.get(file_id, 'file'))} {progress_bar(done, total)}"
            for file_id, (done, total) in self._transfers.items()
        )

    def _drop_ended_transfers(self) -> None:
        """Forget the bars of transfers the node no longer has: one that failed ends with an
        `error` line, which names no file id, so its bar would stay for the rest of the chat."""
        if self._node is None or not self._transfers:
            return
        running = {transfer.id for transfer in self._node.transfers_in_progress()}
        for file_id in [file_id for file_id in self._transfers if file_id not in running]:
            del self._transfers[file_id]
            self._labels.pop(file_id, None)
            self._file_names.pop(file_id, None)

    # -- EventSink ---------------------------------------------------------------------------

    def emit(self, event: str, **fields: Any) -> None:
        show = getattr(self, f"_on_{event}", None)
        if show is not None:
            show(**fields)
        self._redraw()

    def warn(self, text: str) -> None:
        self._print(f"WARNING: {one_line(text)}", err=True, fg="red", bold=True)

    def _on_token(self, *, kind: str, token: str, **fields: Any) -> None:
        """What to do, the QR code if it fits, the token last: written at once, so that the
        prompt is drawn once below them (a write per line asked the terminal for the cursor
        each time, and a late answer could make the prompt take the rows the token needs)."""
        from didlink.words.qr import token_lines  # late: only a session that shows a token

        # below the token: the prompt and the toolbar; colours only on the terminal itself
        lines = token_lines(
            token_intro(
                kind, relays=fields.get("relays"), sent_by_relay=fields.get("sent_by_relay")
            ),
            token,
            stream=self._out,
            below=2,
        )
        self._write("".join(line + "\n" for line in lines))

    def _on_sas(self, *, emoji: list[str], names: list[str], decimal: list[int], **_: Any) -> None:
        self._print()
        for line in sas_lines(emoji, names, decimal):
            self._print(line, bold=True)
        self._print("If anything differs, answer n: someone may be in the middle.")

    def _on_connected(
        self,
        *,
        peer: str,
        verified: bool,
        path: str | None = None,
        suggested_name: str | None = None,
        **_: Any,
    ) -> None:
        self._peer = peer
        self._peer_name = self._names(peer)
        self._peer_suggestion = suggested_name if isinstance(suggested_name, str) else None
        who = f"{self._peer_label()} ({shown(peer)})" if self._has_label() else shown(peer)
        state = "SAS verified" if verified else "NOT verified"
        how = path_words(path, self._relay_host)
        how = f", {how}" if how else ""
        self._print(f"Connected to {who}, {state}{how}.", fg="green")
        self._name_hint()
        self._print("Type a message, /send PATH, /help or /quit.")

    def _has_label(self) -> bool:
        return bool(self._peer_name or self._peer_suggestion)

    def _name_hint(self) -> None:
        """How to name the peer, while we have no name for them (after `connected`, and again
        at the end of the session)."""
        if self._peer is None or self._peer_name:
            return
        if self._peer_suggestion:
            name = shown(self._peer_suggestion)
            self._print(
                f'They call themselves "{name}" ({UNCONFIRMED}{name} until you save it as your'
                f" name for them). Save it: /name here, or didlink contacts rename"
                f" {shown(self._peer)}"
            )
        else:
            hint = f"didlink contacts rename {shown(self._peer)} NAME"
            self._print(f"(name them for next time: {hint})")

    def _on_message(self, *, text: str, **fields: Any) -> None:
        sender = self._who(str(fields.get("from", "")))
        note = sent_note(fields.get("sent_at"), self._clock().astimezone())  # the peer's clock
        head = f"{self._stamp()} {sender}" + (f" ({note})" if note else "")
        self._print_text(styled(head, fg="cyan", bold=True), ": ", text)

    def _on_queued(self, *, messages: object = (), files: object = (), **_: Any) -> None:
        """Our texts waiting in the outbox: each shown once, marked queued (specs/chat-ui.md
        section 2e), with the time it was typed."""
        now = self._clock().astimezone()
        shown_any = False
        for item in messages if isinstance(messages, list) else []:
            text = item.get("text") if isinstance(item, dict) else None
            if not isinstance(text, str):
                continue
            ref = item.get("ref")
            if isinstance(ref, int):
                self._typed.pop(ref, None)  # its `sent` is a state change now, not an echo
            if not self._own.queued(item.get("id"), text):
                continue
            typed = utc_time(item.get("typed_at"))
            stamp = f"[{clock_time(typed, beside=now)}]" if typed else self._stamp()
            mark = MARKS[MessageState.QUEUED]
            self._print_text(styled(f"{stamp} you {mark}", fg="yellow", bold=True), ": ", text)
            shown_any = True
        for item in files if isinstance(files, list) else []:  # after the texts, as they leave
            if isinstance(item, dict) and item.get("id") not in self._queued_files:
                self._queued_files.add(item.get("id"))
                line = queued_file_line(item.get("name"), item.get("size"))
                self._print(f"{self._stamp()} you {line}", fg="yellow")
                shown_any = True
        if shown_any and not self._legend_shown:
            self._legend_shown = True
            self._print(LEGEND)

    def _on_sent(self, *, id: object, ref: Any = None, **_: Any) -> None:
        typed = self._typed.pop(ref, None) if isinstance(ref, int) else None
        change = self._own.sent(id, typed)
        if change is None:
            return
        text, was_queued = change
        if was_queued:  # shown queued before: its state changes
            self._print(f"        {state_line(MessageState.SENT, text)}", fg="green")
            return
        mark = MARKS[MessageState.SENT]
        self._print_text(styled(f"{self._stamp()} you {mark}", fg="yellow", bold=True), ": ", text)

    def _on_delivered(self, *, id: object, **_: Any) -> None:
        text = self._own.delivered(id)
        if text is not None:
            self._print(f"        {state_line(MessageState.DELIVERED, text)}", fg="green")

    def _on_progress(
        self, *, id: str, bytes: int, total: int, direction: str = "", name: str = "", **_: Any
    ) -> None:
        label = f"{verb(direction)} {shown(name, limit=NAME_CHARS)}" if name else verb(direction)
        self._labels[id] = label  # the name comes from the peer when receiving: shown
        self._file_names[id] = shown(name or id[:8], limit=NAME_CHARS)
        self._transfers[id] = (bytes, total)

    def _on_file(self, *, id: str, name: str, size: int, path: str, **fields: Any) -> None:
        self._transfers.pop(id, None)
        self._labels.pop(id, None)
        self._file_names.pop(id, None)
        sender = self._who(str(fields.get("from", "")))
        self._print(
            f"{self._stamp()} {sender} sent you {shown(name)} ({human_size(size)},"
            f" SHA-256 checked): {shown(path)}"
        )

    def _on_file_sent(self, *, id: str, name: str, size: int, **_: Any) -> None:
        self._transfers.pop(id, None)
        self._labels.pop(id, None)
        self._file_names.pop(id, None)
        self._print(
            f"{self._stamp()} \u2713 {shown(name)} ({human_size(size)}) arrived, SHA-256 checked.",
            fg="green",
        )

    def _on_file_unsent(self, *, name: object = "", reason: object = "", **_: Any) -> None:
        self._print(f"{self._stamp()} {unsent_file_line(name, reason)}", fg="yellow")

    def _on_file_offer(self, *, name: str, size: int, **fields: Any) -> None:
        did = str(fields.get("from", ""))
        self._questions.append((name, size, did))
        self._print(f"{self._stamp()} {file_question(name, size, self._who(did))}")

    def _on_file_refused(self, *, name: str, by: str, **fields: Any) -> None:
        who = self._who(str(fields.get("from", "")))
        self._print(f"{self._stamp()} {file_refusal(name, by, who)}", fg="yellow")

    def _answered_file(self) -> None:
        """The oldest file question was answered (the node asks them in order)."""
        if self._questions:
            self._questions.pop(0)

    def _on_error(self, *, message: str, **_: Any) -> None:
        self._print(f"error: {shown(message, limit=400)}", err=True, fg="red")

    def _on_offline(self, *, peer: str, name: str | None = None, **_: Any) -> None:
        from didlink.jsonl import offline_words

        self._print(offline_words(peer, name), fg="yellow")

    def _on_closed(self, *, reason: str, **_: Any) -> None:
        for file_id, (done, total) in self._transfers.items():  # as the toolbar last saw them
            name = self._file_names.get(file_id) or shown(file_id[:8])
            self._print(
                f"{name} was not finished ({human_size(done)} of {human_size(total)}): {RESUMES}.",
                fg="yellow",
            )
        self._transfers.clear()
        self._questions.clear()
        ending, style = self.ending(reason)
        self._print(f"Session closed: {ending}.", **style)
        if self._node is not None and self._node.expecting is Expecting.RESPONSE:
            self._print(INVITATION_CANCELLED)
        if self._peer is not None and self._peer_suggestion and not self._peer_name:
            self._peer_name = self._names(self._peer)  # named meanwhile (another terminal)?
            self._name_hint()
        self._stop_input()

    def _other_side(self) -> str:
        """The peer as a person reads it: their name, ~their suggestion, a short DID, or "the
        other side"."""
        if self._peer is None:
            return "the other side"
        return self._peer_label()

    def ending(self, reason: str) -> tuple[str, dict[str, Any]]:
        """The `closed` reason in words for a person, and the style of its line."""
        who = self._other_side()
        template, style = ENDINGS.get(reason, ("{reason}", WORRYING))
        if reason == "quit" and self._peer is None:
            template = "you quit"
        return template.format(who=who, reason=shown(reason)), style

    def _stop_input(self) -> None:
        """The session is over: the prompt goes (its last lines erased) and run() returns."""
        self._over = True
        app = self._app
        if app is not None and app.is_running and not app.is_done:
            app.exit(exception=EOFError())

    # -- input -------------------------------------------------------------------------------

    def command_for(self, line: str, expecting: Expecting) -> Command | None:
        """A typed line -> the command for the node (None: handled here or empty)."""
        text = line.strip()
        if expecting is Expecting.RESPONSE and text.split(maxsplit=1)[:1] == ["/send-text"]:
            # while the contact is away (`chat CONTACT` waits for them): a text for later
            return self._message(text.removeprefix("/send-text").strip() or None)
        if expecting is Expecting.CHAT and text.startswith("/"):
            word = text.split(maxsplit=1)[0]
            if word == "/help":
                for help_line in HELP:
                    self._print(help_line)
                return None
            if word == "/name":
                self._name_peer(text.removeprefix("/name").strip() or None)
                return None
            if word == "/send" and text == "/send":
                self._print("usage: /send PATH")
                return None
            if word == "/send-text":
                return self._message(text.removeprefix("/send-text").strip() or None)
            if word not in ("/send", "/quit"):
                self._print(f"unknown command {shown(word)}: type /help")
                return None
        command = human_command(line, expecting)
        if isinstance(command, AcceptFile | RefuseFile):
            self._answered_file()
        if isinstance(command, ConfirmSas):
            self._print("You confirmed the SAS. Waiting for the other side to confirm it too...")
        if isinstance(command, RejectSas):
            self._print("You did not confirm the SAS: the session closes.", fg="red", bold=True)
        if isinstance(command, SendText):
            kind = token_kind(command.text)
            if kind is not None:  # pasted here by mistake: not a message (issue 27, 7)
                for sentence in TOKEN_NOT_SENT[kind]:
                    self._print(sentence, fg="yellow")
                return None
            return self._message(command.text)
        if isinstance(command, SendFile):
            path = Path(command.path)
            with contextlib.suppress(OSError, ValueError):  # else the node says why, one line
                if path.is_file():
                    size = human_size(path.stat().st_size)
                    self._print(f"sending {shown(path.name)} ({size}) ...")
        return command

    def _ask_before_quitting(self, node: Commands) -> bool:
        """Ctrl-C: while a file is being sent or received, ask first (True: asked; a second
        Ctrl-C at the question quits)."""
        if self._quitting:
            return False
        running = node.transfers_in_progress()
        if not running:
            return False
        self._quitting = True
        self._print(f"{still_running(running)}; if you quit now, {RESUMES}.", fg="yellow")
        return True

    @staticmethod
    def command_names() -> list[str]:
        """The commands /help lists, each with a space after it if it takes an argument."""
        names = []
        for line in HELP:
            words = line.split()
            if words and words[0].startswith("/"):
                takes = len(words) > 1 and words[1].isupper()
                names.append(words[0] + (" " if takes else ""))
        return names

    def _name_peer(self, name: str | None) -> None:
        """`/name [NAME]`: save our name for the peer (no NAME: the one they suggest)."""
        from didlink.errors import UserError  # late: only when a name is saved

        if self._peer is None:
            self._print("There is no one to name yet: /name works once you are connected.")
            return
        if name is None and not self._peer_suggestion:
            self._print("They suggest no name: give one, /name NAME")
            return
        try:
            saved = self._save_name(self._peer, name)
        except UserError as exc:
            self._print(f"Not saved: {one_line(str(exc))}", fg="yellow")
            return
        self._peer_name = saved
        self._peer_suggestion = None
        self._print(f'Saved: "{shown(saved)}" is your name for {shown(self._peer)}.', fg="green")

    def _message(self, text: str | None) -> SendText | None:
        """A message to send, with the `ref` that its `sent` event echoes."""
        if text is None:
            self._print("usage: /send-text TEXT")
            return None
        self._next_ref += 1
        self._typed[self._next_ref] = text
        if self._peer is None:
            self._print("(queued: it leaves once you both confirmed the SAS)")
        return SendText(text, ref=self._next_ref)

    async def run(self, node: Commands) -> None:
        """Read typed lines until /quit, Ctrl-D or Ctrl-C, handing commands to `node`, or until
        the session ends (`closed`: the prompt is taken away)."""
        self._node = node
        session: PromptSession[str] = PromptSession(
            erase_when_done=True,
            completer=ChatCompleter(self.command_names),
            complete_style=CompleteStyle.READLINE_LIKE,  # Tab as in bash: insert, else list
            complete_while_typing=False,
        )
        self._app = session.app
        try:
            with patch_stdout(raw=True):  # for anything else that prints while the prompt shows
                await self._read_lines(session, node)
        finally:
            self._app = None

    async def _read_lines(self, session: PromptSession[str], node: Commands) -> None:
        while not self._over:
            try:
                line = await session.prompt_async(
                    self.prompt_text, bottom_toolbar=self.toolbar, refresh_interval=0.5
                )
            except KeyboardInterrupt:
                if not self._over and self._ask_before_quitting(node):
                    continue
                if not self._over:  # the user's Ctrl-C (at the question: yes), not the end
                    node.handle(Quit(wait_for_files=not self._quitting))
                return
            except EOFError:
                if not self._over:  # the user's Ctrl-D, not the session's end
                    node.handle(Quit())
                return
            if self._over:
                return
            if self._quitting:
                self._quitting = False
                if line.strip().lower() not in ("y", "yes"):
                    self._print("Not quitting: the transfer goes on.")
                    continue
                node.handle(Quit(wait_for_files=False))  # no wait for the files: they resume later
                return
            try:
                command = self.command_for(line, node.expecting)
            except BadCommand as exc:  # e.g. /send with no usable path
                self._on_error(message=str(exc))
                continue
            if command is not None:
                node.handle(command)
            if isinstance(command, Quit):
                return
