"""The CLI's live sessions on the Agent API (didlink/cli/session.py, issue 28 point 2).

The `--jsonl` output stays byte for byte what the node writes: every event goes node -> event
object (`events.event_from`) -> its JSON spelling (`events.event_fields`) -> `JsonlSink`, and the
line it writes must be the one the node's own call would have written, field order included.
Typed and JSON commands become one `Session` call each; warnings stay warnings (stderr), not
`error` events.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from didlink.cli import session as cli_session
from didlink.events import (
    Closed,
    Connected,
    MessageReceived,
    SessionError,
    SessionWarning,
    event_fields,
    event_from,
)
from didlink.jsonl import (
    AcceptFile,
    Command,
    ConfirmSas,
    JsonlSink,
    Quit,
    RefuseFile,
    RejectSas,
    SendFile,
    SendText,
    SubmitResponse,
)

PEER = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
FILE_ID = "ab" * 16

# Each event exactly as its emitter calls `sink.emit` (keyword order is field order):
# live.py (token, closed), session_waits.py (sas), node.py (connected, error, closed),
# delivery.py (sent, delivered, message), transfers.py (progress, file*, error).
EMITTED: list[tuple[str, dict[str, Any]]] = [
    ("token", {"kind": "invite", "token": "didlink:abc"}),
    ("token", {"kind": "reconnect", "token": "didlink:abc"}),
    ("token", {"kind": "response", "token": "didlink:abc"}),
    ("token", {"kind": "invite", "token": "didlink:abc", "relays": ["wss://r.example"]}),
    ("token", {"kind": "response", "token": "didlink:abc", "sent_by_relay": []}),
    ("token", {"kind": "response", "token": "didlink:abc", "sent_by_relay": ["ws://127.0.0.1:1"]}),
    ("sas", {"emoji": ["🐶"] * 7, "names": ["Dog"] * 7, "decimal": [1000, 2000, 9191]}),
    (
        "connected",
        {
            "peer": PEER,
            "verified": True,
            "path": "host",
            "timings_ms": {"token": 1, "open": 5},
            "suggested_name": "Bob",
        },
    ),
    (
        "connected",
        {"peer": PEER, "verified": True, "path": None, "timings_ms": {}, "suggested_name": None},
    ),
    (
        "connected",
        {
            "peer": PEER,
            "verified": True,
            "path": "host",
            "timings_ms": {},
            "suggested_name": None,
            "response_via": "relay",
        },
    ),
    ("sent", {"id": FILE_ID}),
    ("sent", {"id": FILE_ID, "ref": {"any": ["json", 1, None]}}),
    ("sent", {"id": FILE_ID, "ref": 7}),
    ("delivered", {"id": FILE_ID}),
    ("sent", {"id": FILE_ID, "via": "live"}),
    ("sent", {"id": FILE_ID, "ref": 7, "via": "mailbox"}),
    ("delivered", {"id": FILE_ID, "via": "mailbox"}),
    ("message", {"from": PEER, "id": FILE_ID, "text": "by relay", "via": "mailbox"}),
    (
        "message",
        {
            "from": PEER,
            "id": FILE_ID,
            "text": "live",
            "sent_at": "2026-12-08T09:15:00Z",
            "via": "live",
        },
    ),
    ("offline", {"peer": PEER, "name": "Bob", "via": "mailbox"}),
    ("offline", {"peer": PEER, "name": None, "via": "mailbox"}),
    ("message", {"from": PEER, "id": FILE_ID, "text": "hi\nthere \u202e"}),
    ("message", {"from": PEER, "id": 3, "text": "from a peer without message ids"}),
    (
        "message",
        {"from": PEER, "id": FILE_ID, "text": "typed earlier", "sent_at": "2026-12-08T09:15:00Z"},
    ),
    ("queued", {"to": PEER, "messages": [{"id": FILE_ID, "text": "a"}]}),
    (
        "queued",
        {"to": PEER, "messages": [], "files": [{"id": FILE_ID, "name": "a.txt", "size": 3}]},
    ),
    (
        "file_unsent",
        {"id": FILE_ID, "name": "a.txt", "path": "/x/a.txt", "size": 3, "reason": "changed"},
    ),
    (
        "queued",
        {
            "to": PEER,
            "messages": [
                {"id": FILE_ID, "text": "b", "typed_at": "2026-12-08T09:15:00Z", "ref": 7},
                {"id": "cd" * 16, "text": "c", "typed_at": "1970-01-01T00:00:00Z"},
            ],
        },
    ),
    (
        "progress",
        {"id": FILE_ID, "bytes": 5, "total": 10, "direction": "out", "name": "a.txt"},
    ),
    ("progress", {"id": FILE_ID, "bytes": 0, "total": 0, "direction": "in", "name": "b"}),
    (
        "file",
        {
            "from": PEER,
            "id": FILE_ID,
            "name": "n",
            "size": 1,
            "sha256": "00" * 32,
            "path": "/x/n (1)",
        },
    ),
    ("file_sent", {"id": FILE_ID, "name": "n", "size": 1, "sha256": "00" * 32}),
    ("file_offer", {"from": PEER, "id": FILE_ID, "name": "n", "size": 1, "sha256": "00" * 32}),
    ("file_refused", {"id": FILE_ID, "name": "n", "size": 1, "by": "peer", "from": PEER}),
    ("file_refused", {"id": FILE_ID, "name": "n", "size": 1, "by": "us", "from": PEER}),
    ("error", {"message": "oops"}),
    ("closed", {"reason": "quit"}),
    ("closed", {"reason": "no network path"}),
]


def _line(event: str, fields: dict[str, Any]) -> str:
    out = io.StringIO()
    JsonlSink(out=out).emit(event, **fields)
    return out.getvalue()


@pytest.mark.parametrize(("event", "fields"), EMITTED, ids=[e for e, _ in EMITTED])
def test_an_event_object_writes_the_same_json_line_as_the_node(
    event: str, fields: dict[str, Any]
) -> None:
    made = event_from(event, fields)
    assert made is not None
    spelled = event_fields(made)
    assert spelled is not None
    assert _line(*spelled) == _line(event, fields)


def test_a_warning_has_no_json_event() -> None:
    assert event_fields(SessionWarning(message="kept in the outbox")) is None


class Renderer:
    """Records what a renderer (JsonlSink, HumanSink, the chat screen) is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def emit(self, event: str, **fields: Any) -> None:
        self.calls.append((event, fields))

    def warn(self, text: str) -> None:
        self.calls.append(("warn", text))


def test_the_listener_renders_events_and_warnings_apart() -> None:
    renderer = Renderer()
    listen = cli_session._listener(renderer)
    listen(Connected(peer=PEER, verified=True))
    listen(MessageReceived(sender=PEER, id=2, text="hi"))
    listen(SessionWarning(message="1 message was not sent"))
    listen(SessionError(message="bad  token"))
    listen(Closed(reason="quit", exit_code=0))
    assert [name for name, _ in renderer.calls] == [
        "connected",
        "message",
        "warn",
        "error",
        "closed",
    ]
    assert renderer.calls[1][1] == {"from": PEER, "id": 2, "text": "hi"}
    assert renderer.calls[2][1] == "1 message was not sent"


def test_a_command_the_frontend_cannot_read_is_an_error_event_on_one_line() -> None:
    renderer = Renderer()
    cli_session._error(renderer, "a command must be\n  one JSON object")
    assert renderer.calls == [("error", {"message": "a command must be one JSON object"})]


class FakeSession:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))


@pytest.mark.parametrize(
    ("command", "call"),
    [
        (SendText("hi", ref=[1]), ("post", ("hi",), {"ref": [1]})),
        (SendText("hi"), ("post", ("hi",), {"ref": None})),
        (SendFile("/tmp/a b"), ("send_file", ("/tmp/a b",), {})),
        (SubmitResponse("didlink:x"), ("submit_response", ("didlink:x",), {})),
        (ConfirmSas(), ("confirm_sas", (), {})),
        (RejectSas(), ("reject_sas", (), {})),
        (AcceptFile(FILE_ID), ("accept_file", (FILE_ID,), {})),
        (AcceptFile(), ("accept_file", (None,), {})),
        (RefuseFile(FILE_ID), ("refuse_file", (FILE_ID,), {})),
        (Quit(), ("quit", (), {"wait_for_files": True})),
        (Quit(wait_for_files=False), ("quit", (), {"wait_for_files": False})),
    ],
)
def test_each_command_is_one_session_call(command: Command, call: tuple[Any, ...]) -> None:
    session = FakeSession()
    cli_session.give(session, command)  # type: ignore[arg-type]
    assert session.calls == [call]


def _emitted_names() -> set[str]:
    """Every event name the session machinery passes to `emit` (a string literal first)."""
    import ast
    from pathlib import Path

    names: set[str] = set()
    for path in (Path(__file__).resolve().parent.parent / "didlink").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("emit", "_emit")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names.add(node.args[0].value)
    return names


def test_every_event_the_machinery_emits_reaches_the_cli() -> None:
    """An event without an event class would be dropped on its way to `--jsonl` (the Agent's
    sink makes objects): each one the code emits has a round-trip case above."""
    emitted = _emitted_names()
    assert {"token", "sas", "connected", "message", "closed"} <= emitted  # the scan works
    assert emitted <= {event for event, _ in EMITTED}
