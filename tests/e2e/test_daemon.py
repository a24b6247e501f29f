"""`didlink daemon [--jsonl]` (issue 25, point 6; specs/mailbox.md §16), the real CLI in separate
processes over two real Nostr relays on loopback (tests/support/nostr_relays.py: skipped locally
without them, a failure under CI=true).

Bob's daemon runs; Alice `send`s: the daemon prints it once, receipts it (Alice's `send --wait`
sees "delivered"), and Bob's `receive` afterwards finds nothing new. A text Bob sends while his
daemon runs is reported `delivered` by the daemon when Alice's receipt comes. Both relays
killed and restarted: the daemon reports them down and up and still receives. A second daemon
for the profile is refused (exit 2, naming the first's pid); SIGTERM exits 0. No relay: exit 2.
"""

from __future__ import annotations

import json
import signal
import stat
import time
from pathlib import Path

import pytest

from tests.support.cli import assert_user_error, run_cli
from tests.support.daemon_pair import WAIT, DaemonProcess, mailbox_profiles
from tests.support.nostr_relays import local_relays

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _json(home: Path, *args: str) -> object:
    result = run_cli(*args, home=home)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_daemon_receives_each_text_once_receipts_it_and_survives_relay_restarts(
    tmp_path: Path,
) -> None:
    with local_relays(tmp_path / "relays", 2) as relays:
        urls = [relay.url for relay in relays]
        alice, bob = mailbox_profiles(tmp_path, urls)
        daemon = DaemonProcess(bob.home, "--jsonl")
        try:
            ready = daemon.expect(type="ready")
            assert ready["relays"] == urls and ready["did"] == bob.did
            for url in urls:
                daemon.expect(type="relay", url=url, state="up")

            lock = bob.home / "daemon.lock"
            assert stat.S_IMODE(lock.stat().st_mode) == 0o600
            second = run_cli("daemon", home=bob.home)
            assert_user_error(second, "already runs", f"pid {daemon.proc.pid}")

            sent = _json(alice.home, "send", "Bob", "hello Bob", "--json")
            assert isinstance(sent, dict)
            got = daemon.expect(type="message", mid=sent["mid"])
            assert got["text"] == "hello Bob" and got["from"] == alice.did
            assert got["name"] == "Alice" and got["sent_at"].endswith("Z")

            # The daemon answers with a receipt at once: Alice's --wait sees it.
            waited = _json(alice.home, "send", "Bob", "second", "--wait", "--json")
            assert isinstance(waited, dict) and waited["status"] == "delivered"
            daemon.expect(type="message", mid=waited["mid"], text="second")

            # Nothing is left for `receive` (run beside the daemon, same profile).
            assert _json(bob.home, "receive", "--json") == []

            # Bob sends while his daemon runs; Alice fetches (and receipts): the daemon says so.
            reply = _json(bob.home, "send", "Alice", "yes, here", "--json")
            assert isinstance(reply, dict)
            fetched = _json(alice.home, "receive", "--json")
            assert isinstance(fetched, list)
            assert [m["text"] for m in fetched if m["type"] == "message"] == ["yes, here"]
            delivered = daemon.expect(type="delivered", mid=reply["mid"])
            assert delivered["to"] == alice.did and delivered["text"] == "yes, here"

            # Both relays go away and come back (same ports, same databases).
            for relay in relays:
                relay.stop()
            for url in urls:
                daemon.expect(type="relay", url=url, state="down")
            # Bob writes meanwhile: no relay takes it, it waits in his outbox.
            queued = run_cli("send", "Alice", "while down", "--timeout", "3", home=bob.home)
            assert_user_error(queued, "no relay accepted")
            deadline = time.monotonic() + WAIT
            for relay in relays:
                relay.start()
            for relay in relays:
                relay.wait_ready(deadline)
            for url in urls:
                daemon.expect(type="relay", url=url, state="up")
            after = _json(alice.home, "send", "Bob", "after the restart", "--json")
            assert isinstance(after, dict)
            daemon.expect(type="message", mid=after["mid"], text="after the restart")
            # The daemon published what waited once a relay was back: Alice gets it.
            for _ in range(20):
                fetched = _json(alice.home, "receive", "--json")
                assert isinstance(fetched, list)
                if any(m["text"] == "while down" for m in fetched):
                    break
            else:
                pytest.fail("the text queued while the relays were down never left")
            daemon.expect(type="delivered", text="while down")

            assert daemon.terminate() == 0
        finally:
            daemon.kill()
        # Each text printed exactly once; nothing else but the events of the contract.
        objects = daemon.objects()
        messages = [o["mid"] for o in objects if o["type"] == "message"]
        assert sorted(messages) == sorted([sent["mid"], waited["mid"], after["mid"]])
        assert {o["type"] for o in objects} <= {"ready", "relay", "message", "delivered"}
        stderr = "\n".join(daemon.stderr_lines)
        assert "Traceback" not in stderr
        for text in ("hello Bob", "second", "yes, here", "while down", alice.did):
            assert text not in stderr  # nothing of a message, nor a contact, is logged
        assert lock.read_bytes() == b""  # the pid is cleared on the way out
        # A new daemon may start now that the first one ended.
        again = DaemonProcess(bob.home)
        try:
            deadline = time.monotonic() + WAIT
            while "Online on 2 relay(s)" not in "\n".join(again.stderr_lines):
                assert time.monotonic() < deadline, again.stderr_lines
                assert again.proc.poll() is None, again.stderr_lines
                time.sleep(0.1)
            again.proc.send_signal(signal.SIGINT)  # Ctrl-C: the same clean end
            assert again.proc.wait(timeout=WAIT) == 0
        finally:
            again.kill()


def test_a_relay_added_while_the_daemon_runs_is_used(tmp_path: Path) -> None:
    with local_relays(tmp_path / "relays", 2) as relays:
        first, second = (relay.url for relay in relays)
        alice, bob = mailbox_profiles(tmp_path, [first])
        daemon = DaemonProcess(bob.home, "--jsonl")
        try:
            assert daemon.expect(type="ready")["relays"] == [first]
            daemon.expect(type="relay", url=first, state="up")
            added = run_cli("relays", "add", second, home=bob.home)
            assert added.returncode == 0, added.stderr
            daemon.expect(type="relay", url=second, state="up")  # within the daemon's refresh
            # Alice now writes through the second relay only: the daemon listens there too.
            assert run_cli("relays", "remove", first, home=alice.home).returncode == 0
            assert run_cli("relays", "add", second, home=alice.home).returncode == 0
            sent = _json(alice.home, "send", "Bob", "via the new relay", "--json")
            assert isinstance(sent, dict) and sent["relays"] == [second]
            daemon.expect(type="message", mid=sent["mid"], text="via the new relay")
            assert daemon.terminate() == 0
        finally:
            daemon.kill()


def test_the_daemon_prints_a_text_as_receive_does(tmp_path: Path) -> None:
    with local_relays(tmp_path / "relays", 1) as relays:
        alice, bob = mailbox_profiles(tmp_path, [relays[0].url])
        _json(alice.home, "send", "Bob", "by the daemon \x1b[31m", "--json")
        _json(alice.home, "send", "Bob", "by receive", "--json")
        daemon = DaemonProcess(bob.home)  # picks up what waits from before it started
        try:
            deadline = time.monotonic() + WAIT
            while len(daemon.seen) < 4:  # two texts: a heading and a line each
                assert time.monotonic() < deadline, (daemon.seen, daemon.stderr_lines)
                assert daemon.proc.poll() is None, daemon.stderr_lines
                time.sleep(0.1)
            assert daemon.terminate() == 0
        finally:
            daemon.kill()
        printed = "".join(daemon.seen)
        assert printed.startswith(f"From Alice ({alice.did}), sent ")
        assert "by the daemon" in printed and "\x1b" not in printed
        assert printed.count("From Alice") == 2


def test_no_relay_configured_is_exit_2_naming_relays_add(tmp_path: Path) -> None:
    _alice, bob = mailbox_profiles(tmp_path, [])
    result = run_cli("daemon", home=bob.home, passphrase=None)  # before any passphrase
    assert_user_error(result, "didlink relays add URL")
    assert not (bob.home / "daemon.lock").exists()
