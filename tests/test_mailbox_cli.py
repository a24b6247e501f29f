"""`didlink relays`, and what `send` / `receive` refuse before they reach a relay (specs/
mailbox.md §11-§12), through the real CLI; and that the mailbox commands load the Nostr parts
without aiortc (issue 25: "import it lazily").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from didlink.errors import UserError
from didlink.mailbox.relays import check_url
from didlink.profile.folder import Profile
from identity.keys import IdentityKey
from tests.support.cli import assert_user_error, run_cli

PEER = IdentityKey(bytes([9]) * 32)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("relays") / "profile"
    assert run_cli("init", home=path).returncode == 0
    with Profile(path).open_store() as store:
        store.add_contact(PEER.did, name="Bob", now=datetime(2026, 1, 1, tzinfo=UTC))
    return path


def _relays(home: Path) -> list[str]:
    result = run_cli("relays", "--json", home=home)
    assert result.returncode == 0, result.stderr
    value = json.loads(result.stdout)
    assert isinstance(value, dict)
    urls: list[str] = value["relays"]
    return urls


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("wss://relay.example.org", "wss://relay.example.org"),
        ("WSS://Relay.Example.ORG/", "wss://relay.example.org"),
        ("wss://relay.example.org:444/nostr", "wss://relay.example.org:444/nostr"),
        ("ws://127.0.0.1:7777", "ws://127.0.0.1:7777"),
        ("ws://localhost:7777", "ws://localhost:7777"),
        ("ws://[::1]:7777", "ws://[::1]:7777"),
        ("wss://203.0.113.5", "wss://203.0.113.5"),
    ],
)
def test_accepted_urls_are_normalised(text: str, normal: str) -> None:
    assert check_url(text) == normal


HOSTILE = [
    "",
    "relay.example.org",
    "http://relay.example.org",
    "https://relay.example.org",
    "ws://relay.example.org",  # no TLS off this machine
    "ws://10.0.0.1:7777",
    "ws://[::2]:7777",
    "wss://user:pw@relay.example.org",
    "wss://relay.example.org?x=1",
    "wss://relay.example.org#frag",
    "wss://",
    "wss://relay.example.org:99999",
    "wss://relay.example.org:0",
    "wss://exa mple.org",
    "wss://-bad-.example.org",
    "wss://relay.example.org/\x1b[31mred",
    "wss://relay.example.org/a b",
    "wss://\u0430pple.com",  # a Cyrillic a
    "javascript:alert(1)",
    "wss://" + "a" * 300 + ".org",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_urls_are_refused(text: str) -> None:
    with pytest.raises(UserError):
        check_url(text)


def test_relays_add_list_remove(tmp_path: Path) -> None:
    home = tmp_path / "p"
    assert run_cli("init", home=home).returncode == 0
    none = run_cli("relays", home=home, passphrase=None)  # no passphrase needed
    assert none.returncode == 0 and "No relay configured" in none.stdout
    assert _relays(home) == []
    added = run_cli(
        "relays", "add", "wss://a.example.org", "WSS://B.example.org/", home=home, passphrase=None
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines() == ["wss://a.example.org", "wss://b.example.org"]
    run_cli("relays", "add", "wss://a.example.org", home=home)  # again: one entry
    assert _relays(home) == ["wss://a.example.org", "wss://b.example.org"]
    removed = run_cli("relays", "remove", "wss://a.example.org/", "--json", home=home)
    assert json.loads(removed.stdout) == {"relays": ["wss://b.example.org"]}
    assert_user_error(run_cli("relays", "remove", "wss://a.example.org", home=home), "not config")
    assert run_cli("relays", "remove", "wss://b.example.org", home=home).returncode == 0
    assert _relays(home) == []


@pytest.mark.parametrize("text", HOSTILE[:6] + HOSTILE[-5:])
def test_relays_add_refuses_hostile_input_and_stores_nothing(home: Path, text: str) -> None:
    before = _relays(home)
    result = run_cli("relays", "add", "wss://fine.example.org", text, home=home)
    assert_user_error(result)
    assert "\x1b" not in result.stderr
    assert _relays(home) == before


def test_send_and_receive_refuse_bad_input_before_anything(home: Path) -> None:
    assert_user_error(run_cli("receive", "--json", "--jsonl", home=home), "choose one")
    assert_user_error(run_cli("receive", "--timeout", "0", home=home), "timeout")
    bad_env = run_cli("receive", home=home, env={"DIDLINK_RELAY_TIMEOUT": "soon"})
    assert_user_error(bad_env, "DIDLINK_RELAY_TIMEOUT")
    assert_user_error(run_cli("send", "Bob", "x" * (16 * 1024 + 1), home=home), "16384")
    assert_user_error(run_cli("send", "Nobody", "hi", home=home), "Nobody")
    with Profile(home).open_store() as store:
        assert store.connection.execute("SELECT count(*) FROM outbox").fetchone() == (0,)


# --- imports -------------------------------------------------------------------------------

_RUNNER = """
import json, sys
from didlink.cli.main import main
out, args = sys.argv[1], sys.argv[2:]
try:
    main(args=args, prog_name="didlink")
except SystemExit as exit_:
    code = exit_.code
else:
    code = 0
with open(out, "w") as handle:
    json.dump({"code": code, "modules": sorted(sys.modules)}, handle)
"""
LIVE = ("aiortc", "aioice", "av", "didlink.session.live", "didlink.session.node", "transport.peer")


def _modules(home: Path, tmp_path: Path, *args: str) -> tuple[object, list[str]]:
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}
    env.update(DIDLINK_HOME=str(home), DIDLINK_PASSPHRASE="correct horse battery staple")
    subprocess.run(
        [sys.executable, "-c", _RUNNER, str(out), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(out.read_text())
    return report["code"], report["modules"]


def _any(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == n or m.startswith(n + ".") for n in names)]


def test_relays_loads_no_transport(home: Path, tmp_path: Path) -> None:
    code, modules = _modules(home, tmp_path, "relays", "--json")
    assert code in (0, None)
    assert _any(modules, ("transport", *LIVE)) == []


def test_send_and_receive_load_nostr_but_not_aiortc(tmp_path: Path) -> None:
    home = tmp_path / "p"
    assert run_cli("init", home=home).returncode == 0
    assert run_cli("relays", "add", "ws://127.0.0.1:9", home=home).returncode == 0
    with Profile(home).open_store() as store:
        store.add_contact(PEER.did, name="Bob", now=datetime(2026, 1, 1, tzinfo=UTC))
    # No session, but `receive` listens for message requests: no relay on port 9 answers.
    code, modules = _modules(home, tmp_path, "receive", "--json", "--timeout", "2")
    assert code == 2
    assert "transport.nostr_relay" in modules and "didlink.mailbox.route" in modules
    assert _any(modules, LIVE) == []
    code, modules = _modules(home, tmp_path, "send", "Bob", "hi")  # no session: refused
    assert code == 2 and "didlink.mailbox.route" in modules
    assert _any(modules, LIVE) == []


def test_received_texts_are_shown_not_obeyed(capsys: pytest.CaptureFixture[str]) -> None:
    """A text (and a name) from a contact goes through `say` and `block`: escapes stay
    escaped, a line break starts a continuation line, nothing reaches the terminal raw; the
    JSON forms are exact and escaped the same way (specs/chat-ui.md)."""
    from didlink.cli.commands.mailbox import _print
    from didlink.events import MailboxDelivered, MailboxMessage

    at = datetime(2026, 12, 8, 1, 2, 3, tzinfo=UTC)
    hostile = "\x1b[2Jcleared\r\n[12:03] you: forged\u202eevil\x07"
    entries: list[MailboxMessage | MailboxDelivered] = [
        MailboxMessage(
            sender=PEER.did, id=bytes(16).hex(), text=hostile, sent_at=at, arrived_at=at
        ),
        MailboxDelivered(peer=PEER.did, id=(bytes([1]) * 16).hex(), text=hostile, arrived_at=at),
    ]
    _print(entries, {PEER.did: "Bob\x1b]52;c;x\x07"}, {}, as_json=False, as_jsonl=False)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out and "\r" not in out
    lines = out.splitlines()
    assert lines[0].startswith("From Bob") and PEER.did in lines[0] and "sent 2026-12-0" in lines[0]
    assert not any(line.startswith("[12:03]") for line in lines)
    _print(entries, {PEER.did: "Bob"}, {}, as_json=False, as_jsonl=True)
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["text"] == hostile and rows[0]["from"] == PEER.did
    assert rows[0]["sent_at"] == "2026-12-08T01:02:03Z" and rows[1]["type"] == "delivered"
    assert rows[0]["request"] is False
    # A message request: its sender's suggested name is hostile too.
    pending: dict[str, str | None] = {PEER.did: "Eve\x1b[31m\u202eboB"}
    requests: list[MailboxMessage | MailboxDelivered] = [replace(entries[0], request=True)]
    _print(requests, {PEER.did: PEER.did}, pending, as_json=False, as_jsonl=False)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert out.startswith("Message request from ~Eve") and PEER.did in out.splitlines()[0]
    assert "(unverified: compare safety numbers with `didlink safety-number`)" in out
    _print(requests, {PEER.did: PEER.did}, pending, as_json=True, as_jsonl=False)
    [row] = json.loads(capsys.readouterr().out)
    assert row["request"] is True and row["suggested_name"] == pending[PEER.did]
