"""`didlink chat CONTACT` without tokens: offers and answers sealed through two real relays
(issue 25 point 5; specs/rendezvous.md), with the real CLI in separate processes.

Alice and Bob meet once live and confirm the SAS (both hold a persistent session and a verified
contact). Two `nostr-relay` processes run on loopback (skipped locally without them, a failure
under CI=true). Then:
- both run `chat` for each other at once: exactly one connection, no `sas` event (verified),
  texts both ways, `via` "live";
- one is offline: the chat says so (`offline`), a text goes by mailbox (`sent` `via`
  "mailbox"), `receive` on the other side gets it; a later `chat` from the other side is
  answered and connects;
- a replayed offer (the same wrap published again) and a forged one are ignored.
"""

from __future__ import annotations

import asyncio
import json
import select
import subprocess
import time
from pathlib import Path

import pytest

from didlink.profile.folder import Profile
from identity.invitation import Invitation, InvitationKind
from identity.keys import IdentityKey
from identity.keystore import unlock
from identity.token import encode_token
from tests.e2e.driver import PASSPHRASE, Cli, actor, cli_processes, connect_pair, make_identity
from tests.support.cli import run_cli
from tests.support.nostr_relays import local_relays
from transport import IceConfig, Peer, Role

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

FAST = {"DIDLINK_RENDEZVOUS_TIMEOUT": "8"}


def _meet(a_home: Path, b_home: Path) -> None:
    with cli_processes() as started:
        alice, bob = connect_pair(started, a_home, b_home)
        alice.expect("sas"), bob.expect("sas")
        alice.send("confirm_sas")
        bob.send("confirm_sas")
        alice.expect("connected"), bob.expect("connected")
        alice.send("quit")
        assert alice.wait() == 0 and bob.wait() == 0


def _json(home: Path, *args: str) -> object:
    result = run_cli(*args, home=home)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def pair(tmp_path: Path):  # type: ignore[no-untyped-def]
    homes = {name: tmp_path / name for name in ("alice", "bob")}
    dids = {name: make_identity(home) for name, home in homes.items()}
    _meet(homes["alice"], homes["bob"])
    with local_relays(tmp_path / "relays", 2) as relays:
        urls = [relay.url for relay in relays]
        for home in homes.values():
            assert _json(home, "relays", "add", *urls, "--json") == {"relays": urls}
        yield homes, dids, relays


def test_both_chat_at_once_one_connection_no_sas(pair) -> None:  # type: ignore[no-untyped-def]
    homes, dids, _relays = pair
    with cli_processes() as started:
        alice = Cli("chat", dids["bob"], "--jsonl", home=homes["alice"], env=FAST)
        bob = Cli("chat", dids["alice"], "--jsonl", home=homes["bob"], env=FAST)
        started += [alice, bob]
        connected_a = alice.expect("connected", timeout=60)
        connected_b = bob.expect("connected", timeout=60)
        assert connected_a["peer"] == dids["bob"] and connected_b["peer"] == dids["alice"]
        assert connected_a["verified"] and connected_b["verified"]
        alice.send("send", text="hello over the rendezvous", ref=1)
        got = bob.expect("message")
        assert got["text"] == "hello over the rendezvous" and got["via"] == "live"
        bob.send("send", text="and back")
        assert alice.expect("message")["text"] == "and back"
        sent = alice.expect("sent")
        assert sent["via"] == "live" and sent["ref"] == 1
        alice.send("quit")
        assert alice.wait() == 0 and bob.wait() == 0
        for side in (alice, bob):
            assert not side.seen("sas")  # a verified contact: no SAS again
            assert not side.seen("token")  # nothing to paste
            assert not side.seen("offline")
            assert len(side.seen("connected")) == 1


def test_offline_contact_gets_the_text_by_mailbox_then_a_later_chat_connects(
    pair,  # type: ignore[no-untyped-def]
) -> None:
    homes, dids, _relays = pair
    with cli_processes() as started:
        alice = Cli("chat", dids["bob"], "--jsonl", home=homes["alice"], env=FAST)
        started.append(alice)
        offline = alice.expect("offline", timeout=60)
        assert offline["peer"] == dids["bob"] and offline["via"] == "mailbox"
        alice.send("send", text="you were away", ref="m1")
        sent = alice.expect("sent", timeout=30)
        assert sent["via"] == "mailbox" and sent["ref"] == "m1"
        assert not alice.seen("token")

        got = _json(homes["bob"], "receive", "--json")
        assert isinstance(got, list)
        assert [m["text"] for m in got if m["type"] == "message"] == ["you were away"], (
            got,
            alice.rest(timeout=0.5),
        )
        assert got[0]["mid"] == sent["id"]

        # Bob comes online later: his chat's offer (or Alice's, if still valid) connects them.
        bob = Cli("chat", dids["alice"], "--jsonl", home=homes["bob"], env=FAST)
        started.append(bob)
        assert alice.expect("connected", timeout=60)["peer"] == dids["bob"]
        assert bob.expect("connected", timeout=60)["peer"] == dids["alice"]
        bob.send("send", text="back now")
        assert alice.expect("message")["text"] == "back now"
        bob.send("quit")
        assert bob.wait() == 0 and alice.wait() == 0
        assert not alice.seen("sas") and not bob.seen("sas")
        # the mailbox text was not shown twice to Bob after the live resend
        assert not [m for m in bob.seen("message") if m["text"] == "you were away"]


def test_no_relay_flag_prints_the_token_as_before(pair) -> None:  # type: ignore[no-untyped-def]
    homes, dids, _relays = pair
    with cli_processes() as started:
        alice = Cli("chat", dids["bob"], "--jsonl", "--no-relay", home=homes["alice"])
        started.append(alice)
        assert alice.expect("token")["kind"] == "reconnect"
        alice.send("quit")
        assert alice.wait() == 0


async def _publish_as(home: Path, to: str, tokens: list[str]) -> None:
    """Publish rendezvous items to `to` from the profile in `home` (its session, its relays)."""
    from didlink.mailbox import relays
    from didlink.mailbox.route import MailboxRoute
    from didlink.mailbox.store import MailboxStore
    from didlink.profile.folder import Profile
    from didlink.profile.outbox import Outbox
    from didlink.profile.sealing import Sealer
    from didlink.profile.settings import Settings

    profile = Profile(home)
    key = unlock(profile.keystore_path, PASSPHRASE)
    with profile.open_store() as store:
        sealer = Sealer(key)
        settings = Settings(store, sealer)
        box = MailboxStore(store, sealer)
        route = MailboxRoute(box, Outbox(store, sealer), settings, relays.configured(settings))
        async with route:
            for token in tokens:
                assert await route.publish_rendezvous(to, token)


async def _real_offer_bytes() -> bytes:
    peer = Peer(role=Role.OFFERER, ice=IceConfig())
    try:
        return (await peer.create_offer()).to_cbor()
    finally:
        await peer.close()


def test_forged_expired_and_wrong_kind_offers_are_refused_and_the_chat_goes_on(
    pair,  # type: ignore[no-untyped-def]
) -> None:
    homes, dids, _relays = pair
    alice_key = unlock(Profile(homes["alice"]).keystore_path, PASSPHRASE)
    stranger = IdentityKey.generate()
    now = int(time.time())
    connect = asyncio.run(_real_offer_bytes())

    def offer(key: IdentityKey, *, kind: InvitationKind, created: int) -> str:
        return encode_token(
            Invitation.create(key, now=created, lifetime=120, kind=kind, connect=connect)
        )

    bad = [
        offer(stranger, kind=InvitationKind.RECONNECT, created=now),  # not from Alice
        offer(alice_key, kind=InvitationKind.INVITE, created=now),  # not a reconnect
        offer(alice_key, kind=InvitationKind.RECONNECT, created=now - 3600),  # expired
    ]
    with cli_processes() as started:
        bob = Cli("chat", dids["alice"], "--jsonl", home=homes["bob"], env=FAST)
        started.append(bob)
        bob.expect("offline", timeout=60)
        asyncio.run(_publish_as(homes["alice"], dids["bob"], bad))
        errors = [bob.expect("error", timeout=60)["message"] for _ in bad]
        assert all(message.startswith("rendezvous refused:") for message in errors), errors
        bob.send("quit")
        assert bob.wait() == 0
        assert not bob.seen("connected")


def test_the_line_mode_chat_says_the_contact_is_not_online(pair) -> None:  # type: ignore[no-untyped-def]
    """A person at a pipe (the line mode, no --jsonl): no token, and the chat says why."""
    homes, dids, _relays = pair
    me = actor(homes["alice"], env=FAST)
    process = subprocess.Popen(
        me.command("chat", dids["bob"]),
        env=me.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not any("not online" in line for line in seen):
            ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
            assert ready, f"no 'not online' line within 60 s: {seen}"
            line = process.stdout.readline()
            assert line, f"the chat ended: {seen}"
            seen.append(line)
        process.stdin.write("a line for Bob\n")
        process.stdin.flush()
        out, err = process.communicate("", timeout=60)  # end of input: quit
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert f"{dids['bob']} is not online: messages go by mailbox" in "".join(seen)
    assert "didlink:" not in "".join(seen) + out  # no token to paste
    # what the chat had not handed to a relay yet, if anything, leaves with the next receive
    assert run_cli("receive", home=homes["alice"]).returncode == 0
    got = _json(homes["bob"], "receive", "--json")
    assert isinstance(got, list) and [m["text"] for m in got] == ["a line for Bob"]
