"""Our messages' states and the peer's sending time (issue 27 point 6).

specs/cli-jsonl.md sections 2 and 2a (`queued`, `sent`, `delivered`, `message.sent_at`),
specs/chat-ui.md section 2e, specs/frames.md 5b: a real `SecureChannel` pair and real stores
(tests/test_delivery.py's `Side`), then the words the line mode and the chat screen print.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from didlink.chat.screen import TOOLBAR_HINT, ChatScreen
from didlink.events import MessageReceived, Queued, QueuedMessage, event_from
from didlink.jsonl import Expecting, HumanSink, SendText
from didlink.profile.outbox import message_time, new_message_id
from didlink.session.outgoing import Outgoing
from didlink.words.message_states import LEGEND, MessageState, OwnMessages, sent_note
from identity.validity import iso_time
from tests.support.hostile_text import HOSTILE_TEXTS, assert_display_safe
from tests.test_delivery import ALICE, BOB, Side, _channels

CAROL = "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf"


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Side, Side]:
    a, b = _channels()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    alice, bob = Side(tmp_path / "a", ALICE, BOB, a), Side(tmp_path / "b", BOB, ALICE, b)
    bob.read_frames(alice.write_frames())  # the Hello
    return alice, bob


def _outgoing(side: Side, *, verified: bool) -> Outgoing:
    return Outgoing(
        sink=side.sink,
        delivery=side.delivery,
        verified=lambda: verified,
        transfers=lambda: pytest.fail("no file is sent here"),
        error=side.failures.append,
    )


def _old_id(seconds_ago: int) -> bytes:
    millis = (int(time.time()) - seconds_ago) * 1000
    return millis.to_bytes(6, "big") + bytes(10)


# -- the node's events --------------------------------------------------------------------


def test_every_text_carries_when_it_was_typed(pair: tuple[Side, Side]) -> None:
    alice, bob = pair
    old = _old_id(3 * 3600)  # left in the outbox three hours ago
    alice.outbox.add(BOB.did, "from this morning", message_id=old)
    alice.delivery.send_pending()
    _outgoing(alice, verified=True).give(SendText("typed now"))
    bob.read_frames(alice.write_frames())
    assert [text.at for text in bob.texts] == [
        message_time(old),
        message_time(bytes.fromhex(alice.sink.of("sent")[-1]["id"])),
    ]
    got = bob.sink.of("message")
    assert got[0]["sent_at"] == iso_time(message_time(old))  # its typing time, not its resend
    assert abs(message_time(bytes.fromhex(got[1]["id"])) - time.time()) < 3600


def test_a_text_without_at_has_no_sent_at(pair: tuple[Side, Side]) -> None:
    from messaging.frames import Text

    alice, bob = pair
    alice.channel.send(Text(text="from an older peer", mid=bytes(16)))
    bob.read_frames(alice.channel.data_to_send())
    [event] = bob.sink.of("message")
    assert "sent_at" not in event


def test_texts_typed_before_the_session_is_verified_are_queued(pair: tuple[Side, Side]) -> None:
    alice, _ = pair
    outgoing = _outgoing(alice, verified=False)
    outgoing.give(SendText("one", ref=1))
    outgoing.give(SendText("two"))
    queued = alice.sink.of("queued")
    assert [event["to"] for event in queued] == [BOB.did, BOB.did]
    assert [[(m["text"], m.get("ref")) for m in e["messages"]] for e in queued] == [
        [("one", 1)],
        [("two", None)],
    ]
    for event in queued:
        [item] = event["messages"]
        assert item["typed_at"] == iso_time(message_time(bytes.fromhex(item["id"])))
    assert alice.write_frames() == []  # nothing left: the session is not verified
    # At the start of the next session: one event listing all, oldest first.
    alice.delivery.report_queued()
    [*_, everything] = alice.sink.of("queued")
    assert [m["text"] for m in everything["messages"]] == ["one", "two"]
    assert [m["id"] for m in everything["messages"]] == [e["messages"][0]["id"] for e in queued]


def test_nothing_waiting_gives_no_queued_event(pair: tuple[Side, Side]) -> None:
    alice, _ = pair
    alice.delivery.report_queued()
    _outgoing(alice, verified=True).give(SendText("sent at once"))
    assert alice.sink.of("queued") == []


def test_queued_texts_get_sent_then_delivered_on_the_next_session(
    pair: tuple[Side, Side],
) -> None:
    alice, bob = pair
    _outgoing(alice, verified=False).give(SendText("waiting"))
    [queued] = alice.sink.of("queued")
    mid = queued["messages"][0]["id"]
    alice.delivery.send_pending()  # the session is verified now
    bob.read_frames(alice.write_frames())
    alice.read_frames(bob.write_frames())
    assert [e["id"] for e in alice.sink.of("sent")] == [mid]
    assert [e["id"] for e in alice.sink.of("delivered")] == [mid]
    assert [e["id"] for e in bob.sink.of("message")] == [mid]


def test_the_api_events() -> None:
    message = event_from(
        "message", {"from": CAROL, "id": "ab", "text": "hi", "sent_at": "2026-12-08T09:15:00Z"}
    )
    assert message == MessageReceived(
        sender=CAROL, id="ab", text="hi", sent_at=datetime(2026, 12, 8, 9, 15, tzinfo=UTC)
    )
    assert event_from("message", {"from": CAROL, "id": "ab", "text": "hi"}) == MessageReceived(
        sender=CAROL, id="ab", text="hi"
    )
    queued = event_from(
        "queued",
        {
            "to": CAROL,
            "messages": [
                {"id": "ab", "text": "x", "typed_at": "2026-12-08T09:15:00Z", "ref": 3},
                {"id": "cd", "text": "y"},
            ],
        },
    )
    assert queued == Queued(
        peer=CAROL,
        messages=(
            QueuedMessage(
                id="ab", text="x", typed_at=datetime(2026, 12, 8, 9, 15, tzinfo=UTC), ref=3
            ),
            QueuedMessage(id="cd", text="y"),
        ),
    )


# -- the states and the words -------------------------------------------------------------


def test_states_only_move_forward() -> None:
    own = OwnMessages()
    assert own.queued("a", "one") and not own.queued("a", "again")
    assert own.state("a") is MessageState.QUEUED and own.count(MessageState.QUEUED) == 1
    assert own.sent("a") == ("one", True)
    assert own.sent("a") is None  # reported once
    assert own.queued("a", "one") is False  # never back to queued
    assert own.state("a") is MessageState.SENT and own.count(MessageState.QUEUED) == 0
    assert own.delivered("a") == "one" and own.state("a") is None
    assert own.sent("b") is None  # unknown, no text: not followed
    assert own.sent("b", "typed") == ("typed", False)
    assert own.delivered("zz") is None


ARRIVED = datetime(2026, 12, 8, 14, 5, tzinfo=UTC).astimezone()


@pytest.mark.parametrize(
    ("sent_at", "expected"),
    [
        (None, None),
        ("not a time", None),
        ("2026-12-08T14:05:00", None),  # no zone: not one of ours
        ("x" * 100, None),
        (iso_time(int(ARRIVED.timestamp()) - 59), None),  # within a minute
        (iso_time(int(ARRIVED.timestamp()) + 30), None),
        (
            iso_time(int(ARRIVED.timestamp()) - 180),
            "sent " + (ARRIVED - timedelta(minutes=3)).strftime("%H:%M"),
        ),
        (
            iso_time(int(ARRIVED.timestamp()) - 3 * 86400),
            "sent " + (ARRIVED - timedelta(days=3)).strftime("%Y-%m-%d %H:%M"),
        ),
    ],
)
def test_sent_note(sent_at: object, expected: str | None) -> None:
    note = sent_note(sent_at, ARRIVED)
    if sent_at == "9999-12-31T23:59:59Z":
        assert (note is not None and note.startswith("sent 9999-12-31")) or note == "sent 10000"
        return
    assert note == expected


def test_line_mode_prints_compact_state_changes(capsys: pytest.CaptureFixture[str]) -> None:
    sink = HumanSink()
    sink.emit(
        "queued",
        to=CAROL,
        messages=[{"id": "aa", "text": "first\nline"}, {"id": "bb", "text": "second"}],
    )
    sink.emit("sent", id="aa")
    sink.emit("delivered", id="aa")
    sink.emit("sent", id="cc")  # typed while connected: not echoed in the line mode
    sink.emit("delivered", id="cc")
    sink.emit("message", **{"from": CAROL}, id="dd", text="hi", sent_at="2026-01-01T00:00:00Z")
    sink.emit("message", **{"from": CAROL}, id="ee", text="now", sent_at=iso_time(int(time.time())))
    lines = capsys.readouterr().out.splitlines()
    assert lines[:5] == [
        "\u2026 queued: first line",
        LEGEND,
        "\u2026 queued: second",
        "\u2713 sent: first line",
        "\u2713\u2713 delivered: first line",
    ]
    assert lines[5].startswith("< [sent 2026-01-01 ") and lines[5].endswith("] hi")
    assert lines[6] == "< now"
    assert len(lines) == 7


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_queued_texts_are_shown_without_being_obeyed(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A queued text may have been pasted from anywhere: escaped like a peer's."""
    HumanSink().emit("queued", to=CAROL, messages=[{"id": "aa", "text": text}])
    screen = ChatScreen(names=lambda did: None, clock=lambda: datetime(2026, 11, 25, 12, 3))
    screen.emit("queued", to=CAROL, messages=[{"id": "aa", "text": text, "typed_at": "junk"}])
    screen.emit("message", **{"from": CAROL}, id="bb", text="x", sent_at=text)
    captured = capsys.readouterr()
    assert_display_safe(captured.out + captured.err)


def test_the_chat_screen_marks_each_state(capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime(2026, 11, 25, 12, 3)  # local wall time
    screen = ChatScreen(names=lambda did: "Bob" if did == CAROL else None, clock=lambda: now)
    command = screen.command_for("typed before the peer was known", Expecting.CHAT)
    assert isinstance(command, SendText)
    typed_at = iso_time(int(now.astimezone().timestamp()) - 2 * 86400)
    screen.emit(
        "queued",
        to=CAROL,
        messages=[
            {"id": "aa", "text": "left from Monday", "typed_at": typed_at},
            {"id": "bb", "text": command.text, "ref": command.ref},
        ],
    )
    assert screen.toolbar() == " 2 queued \u2026  " + TOOLBAR_HINT
    screen.emit("queued", to=CAROL, messages=[{"id": "aa", "text": "left from Monday"}])  # again
    screen.emit("connected", peer=CAROL, verified=True, timings_ms={})
    screen.emit("sent", id="aa")
    screen.emit("sent", id="bb", ref=command.ref)
    assert screen.toolbar() == TOOLBAR_HINT
    screen.emit("delivered", id="aa")
    screen.emit("delivered", id="bb")
    screen.emit("sent", id="cc", ref=None)  # not ours to echo (no text known)
    monday = (now.astimezone() - timedelta(days=2)).strftime("%Y-%m-%d %H:%M")
    screen.emit("message", **{"from": CAROL}, id="dd", text="late", sent_at=typed_at)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "(queued: it leaves once you both confirmed the SAS)",
        f"[{monday}] you \u2026: left from Monday",
        "[12:03] you \u2026: typed before the peer was known",
        LEGEND,
        f"Connected to Bob ({CAROL}), SAS verified.",
        "Type a message, /send PATH, /help or /quit.",
        "        \u2713 sent: left from Monday",
        "        \u2713 sent: typed before the peer was known",
        "        \u2713\u2713 delivered: left from Monday",
        "        \u2713\u2713 delivered: typed before the peer was known",
        f"[12:03] Bob (sent {monday}): late",
    ]


def test_a_text_typed_while_connected_is_echoed_sent(capsys: pytest.CaptureFixture[str]) -> None:
    screen = ChatScreen(names=lambda did: None, clock=lambda: datetime(2026, 11, 25, 12, 3))
    screen.emit("connected", peer=CAROL, verified=True, timings_ms={})
    command = screen.command_for("hello", Expecting.CHAT)
    assert isinstance(command, SendText)
    screen.emit("sent", id="aa", ref=command.ref)
    screen.emit("delivered", id="aa")
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == ["[12:03] you \u2713: hello", "        \u2713\u2713 delivered: hello"]


def test_ids_are_ours() -> None:
    mid = new_message_id()
    assert abs(message_time(mid) - time.time()) < 5
