"""`didlink demo`: the didlink story told for real, on this machine, with no set-up.

Two people, Alice and Bob, get fresh identities in a temporary folder. Every step runs the real
`didlink` command in its own process with its own profile, exactly as a user would type it, and
the demo shows what each of them sees. Nothing leaves this machine.
"""

from __future__ import annotations

import hashlib
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape

from didlink.cli.driver import Actor, JsonlProcess
from didlink.errors import UserError
from didlink.mailbox import local_relay
from didlink.mailbox.local_relay import LocalRelay
from didlink.words.display import one_line

T = TypeVar("T")


@dataclass
class Story:
    """What happened, for the screen and for `--json`."""

    console: Console
    quiet: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text)

    def step(self, title: str) -> None:
        self.say(f"\n[bold cyan]== {title}[/]")

    def timed(self, name: str, action: Callable[[], T]) -> T:
        start = time.perf_counter()
        result = action()
        self.timings_ms[name] = round((time.perf_counter() - start) * 1000, 1)
        return result


def _value(value: object) -> str:
    """A value from one of the processes, for the story's rich markup: display-safe, and its
    brackets not read as markup."""
    return escape(one_line(str(value)))


@contextmanager
def _actors() -> Iterator[tuple[Actor, Actor]]:
    with tempfile.TemporaryDirectory(prefix="didlink-demo-") as tmp:
        root = Path(tmp)
        yield (
            Actor("Alice", root / "alice", secrets.token_urlsafe(16)),
            Actor("Bob", root / "bob", secrets.token_urlsafe(16)),
        )


def _identity_story(story: Story, alice: Actor, bob: Actor) -> None:
    story.step("1. Two identities, no phone number, no account, no server")
    for actor in (alice, bob):
        did = story.timed(f"init_{actor.name.lower()}", actor.run_init)
        story.say(f"{actor.name}: [green]{did}[/]")
        story.report[actor.name.lower()] = {"did": did}
    story.say("Each private key is sealed in a keystore (Argon2id + AES-256-GCM, mode 0600).")

    story.step("2. Alice hands Bob a signed contact card")
    card = story.timed(
        "card_sign", lambda: alice.run_json("invite", "--card", "--label", "Alice", "--json")
    )["token"]
    story.say(f"Alice's card ({len(card)} characters, fits a QR code):\n[magenta]{card}[/]")

    story.step("3. Bob checks the card before trusting it")
    seen = story.timed("card_verify", lambda: bob.run_json("inspect", card, "--json"))
    story.say(
        f"Bob sees: kind {_value(seen.get('kind'))}, from {_value(seen.get('inviter'))}, "
        f"label {_value(seen.get('label'))!r}, expires {_value(seen.get('expires'))}"
    )
    tampered = card[:-6] + ("1" if card[-6] != "1" else "2") + card[-5:]
    refused = bob.run("inspect", tampered, check=False)
    story.say(f"A card changed by one character is refused: [red]{_value(refused.stderr)}[/]")

    story.step("4. Bob keeps Alice as a contact; Alice keeps Bob")
    added = bob.run_json("accept", card, "--json")
    again = bob.run("accept", card, check=False)
    story.say(f"Accepting the same single-use card again: [red]{_value(again.stderr)}[/]")
    bob_card = bob.run_json("invite", "--card", "--label", "Bob", "--json")["token"]
    alice_added = alice.run_json("accept", bob_card, "--json")
    story.say(
        f"The card suggests the name {_value(added['suggested_name'])!r}; a label is only a"
        " suggestion until its reader adopts it:"
    )
    for actor, contact in ((bob, added), (alice, alice_added)):
        actor.run("contacts", "rename", contact["did"])  # no NAME: adopt the suggestion
    contacts = bob.run_json("contacts", "--json")
    for contact in contacts:
        story.say(
            f"Bob's contacts: {_value(contact['name'] or contact['did'])}"
            f" ({contact['verification']})"
        )

    story.step("5. Safety numbers: compare once, in person, at any time")
    numbers = {
        actor.name: actor.run_json("safety-number", other.name, "--json")["digits"]
        for actor, other in ((alice, bob), (bob, alice))
    }
    for name, digits in numbers.items():
        groups = " ".join(digits[i : i + 5] for i in range(0, 60, 5))
        story.say(f"{name} sees: {groups}")
    match = numbers["Alice"] == numbers["Bob"]
    story.say("[green]They match.[/]" if match else "[red]They differ![/]")
    story.report["safety_number"] = {"digits": numbers["Alice"], "match": match}
    story.report["card"] = {
        "characters": len(card),
        "tampered_refused": refused.returncode == 2,
        "second_accept_refused": again.returncode == 2,
    }


# --- live sessions over WebRTC ---------------------------------------------------------------


def _sas_line(sas: dict[str, Any]) -> str:
    pairs = "  ".join(f"{e} {n}" for e, n in zip(sas["emoji"], sas["names"], strict=True))
    return f"{pairs}  |  {'-'.join(str(d) for d in sas['decimal'])}"


def _sas_of(event: dict[str, Any]) -> dict[str, Any]:
    return {"emoji": event["emoji"], "names": event["names"], "decimal": event["decimal"]}


def _exchange(story: Story, inviter: JsonlProcess, invitee: Actor) -> JsonlProcess:
    """The inviter's live invitation reaches `invitee`, whose response goes back to the inviter."""
    token = inviter.expect("token")["token"]
    story.say(f"{inviter.actor.name}'s live invitation: {len(token)} characters (fits a QR code).")
    accepting = invitee.spawn("accept", token)
    response = accepting.expect("token")["token"]
    story.say(f"{invitee.name} pastes back a signed response: {len(response)} characters.")
    inviter.send("response", token=response)
    return accepting


def _compare_sas(story: Story, first: JsonlProcess, second: JsonlProcess) -> bool:
    """Both users read their SAS; True when they are the same."""
    shown = {p.actor.name: _sas_of(p.expect("sas")) for p in (first, second)}
    for name, sas in shown.items():
        story.say(f"{name:>5} sees  {_sas_line(sas)}")
        story.report.setdefault(name.lower(), {})["sas"] = sas
    same = len({repr(sas) for sas in shown.values()}) == 1
    story.say("[green]Same SAS on both screens.[/]" if same else "[red]The SAS differ![/]")
    return same


def _random_file(folder: Path, name: str, size: int) -> Path:
    path = folder / name
    path.write_bytes(secrets.token_bytes(size))
    return path


def _swap_files(story: Story, alice: JsonlProcess, bob: JsonlProcess, folder: Path) -> None:
    size = 4 * 1024 * 1024
    result: dict[str, Any] = {"size": size}
    for sender, receiver in ((alice, bob), (bob, alice)):
        source = _random_file(folder, f"from-{sender.actor.name.lower()}.bin", size)
        start = time.perf_counter()
        sender.send("send_file", path=str(source))
        arrived = receiver.expect("file")
        seconds = time.perf_counter() - start
        saved = Path(arrived["path"]).read_bytes()
        intact = saved == source.read_bytes() and arrived["sha256"] == _sha256(source)
        direction = f"{sender.actor.name.lower()}_to_{receiver.actor.name.lower()}"
        result[direction] = {"intact": intact, "mib_per_s": round(size / seconds / 2**20, 2)}
        story.timings_ms[f"file_{direction}"] = round(seconds * 1000, 1)
        story.say(
            f"{sender.actor.name} -> {receiver.actor.name}: 4 MiB file in {seconds:.2f} s, "
            + ("SHA-256 checked, byte-identical." if intact else "[red]CORRUPTED[/]")
        )
    story.report["file"] = result


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _chat(story: Story, alice: JsonlProcess, bob: JsonlProcess) -> None:
    early = alice.expect("sent")  # the message Alice typed before they were connected
    got = bob.expect("message")
    story.say(f"Bob receives Alice's early message: {_value(got['text'])!r}")
    bob.send("send", text="Hello Alice, it is really me.")
    start = time.perf_counter()
    reply = alice.expect("message")
    story.timings_ms["message_delivery"] = round((time.perf_counter() - start) * 1000, 1)
    alice.expect("delivered")
    story.say(f"Alice receives Bob's answer: {_value(reply['text'])!r} (and a delivery receipt)")
    story.report["messages"] = {
        "alice_to_bob": [got["text"]],
        "bob_to_alice": [reply["text"]],
        "early_message_id": early["id"],
    }


def _finish(story: Story, *processes: JsonlProcess) -> None:
    for process in processes:
        process.send("quit")
    for process in processes:
        process.expect("closed")
        code = process.wait()
        story.say(f"{process.actor.name}'s session closed cleanly (exit code {code}).")


def _live_story(story: Story, alice: Actor, bob: Actor, folder: Path) -> None:
    story.step("6. A live invitation: Alice and Bob connect directly, peer to peer")
    story.say("WebRTC over this machine's own address: ICE, DTLS, SCTP. No server, no STUN.")
    inviting = alice.spawn("invite", "--label", "Alice", "--expires", "15m")
    processes = [inviting]
    try:
        inviting.send("send", text="Hi Bob! I typed this before we were connected.")
        accepting = _exchange(story, inviting, bob)
        processes.append(accepting)

        story.step("7. The handshake, then the Short Authentication String")
        story.say("Commit-then-reveal + Noise KK over the data channel, bound to both DIDs, the")
        story.say(
            "invitation and both DTLS fingerprints. Alice and Bob read their SAS to each other:"
        )
        same = _compare_sas(story, inviting, accepting)
        story.report["sas_match"] = same
        story.report["refused"] = not same
        if not same:
            raise UserError("the SAS differ on an honest connection: something is wrong")
        for process in (inviting, accepting):
            process.send("confirm_sas")
        timings = [p.expect("connected")["timings_ms"] for p in (inviting, accepting)]
        story.timings_ms["connect_to_verified"] = round(
            timings[0]["verified"] - timings[0]["response"], 1
        )
        story.say("Both confirmed: the session is verified; nothing was sent before this point.")

        story.step("8. End-to-end encrypted chat (Double Ratchet) and files")
        _chat(story, inviting, accepting)
        _swap_files(story, inviting, accepting, folder)
        verified = {
            c["name"] or c["did"]: c["verification"] for c in bob.run_json("contacts", "--json")
        }
        story.say(f"Bob's contacts now: {_value(verified)}")
        _finish(story, inviting, accepting)
    finally:
        for process in processes:
            process.kill()


def _mitm_story(story: Story, alice: Actor, bob: Actor, mallory: Actor) -> None:
    story.step("6. The attack: Mallory sits between Alice and Bob")
    story.say("Mallory intercepts Alice's invitation, accepts it herself, and hands Bob her own")
    story.say("invitation labelled 'Alice'. She relays everything and confirms every SAS she sees.")
    mallory.run_init()
    inviting = alice.spawn("invite", "--label", "Alice", "--expires", "15m")
    processes = [inviting]
    try:
        inviting.send("send", text="Bob, the door code is 4711.")
        towards_alice = _exchange(story, inviting, mallory)
        processes.append(towards_alice)
        forging = mallory.spawn("invite", "--label", "Alice", "--expires", "15m")
        processes.append(forging)
        accepting = _exchange(story, forging, bob)
        processes.append(accepting)
        for process in (towards_alice, forging):
            process.expect("sas")
            process.send("confirm_sas")

        story.step("7. Alice and Bob compare their SAS")
        same = _compare_sas(story, inviting, accepting)
        story.report["sas_match"] = same
        for process in (inviting, accepting):
            process.send("reject_sas" if not same else "confirm_sas")
        refused = all(p.expect("closed")["reason"] == "sas rejected" for p in (inviting, accepting))
        story.report["refused"] = refused and not same
        leaked = [e for p in (towards_alice, forging) for e in p.seen("message")]
        for process in (towards_alice, forging):
            process.expect("closed")
        story.report["messages"] = {"leaked_to_mallory": len(leaked)}
        story.say(
            "They differ, so both refuse: the sessions close and Alice's queued message was "
            + ("[green]never sent[/]." if not leaked else "[red]LEAKED[/].")
        )
        story.step("Why Mallory cannot win")
        story.say("Each of Mallory's two handshakes has its own hash, so each pair of people sees")
        story.say("its own SAS. To make them equal she would have to try ephemeral keys until the")
        story.say(
            "two hashes give the same 42 bits; but the responder commits to its ephemeral key"
        )
        story.say("before it sees the initiator's, so she gets one guess per attempt: 1 in 2^42.")
        story.say("(SecureBit.chat's 7-digit SAS has no commitment: an attacker can grind it.)")
    finally:
        for process in processes:
            process.kill()


@contextmanager
def _relays(folder: Path) -> Iterator[list[LocalRelay]]:
    """Two Nostr relays of this machine (the `nostr-relay` package) on 127.0.0.1, stopped after."""
    relays = [LocalRelay(folder / f"relay-{n}") for n in (1, 2)]
    try:
        for relay in relays:
            relay.start()
        deadline = time.monotonic() + local_relay.START_TIMEOUT
        for relay in relays:
            relay.wait_ready(deadline)
        yield relays
    finally:
        for relay in relays:
            relay.stop()


def _mailbox_story(story: Story, alice: Actor, bob: Actor, folder: Path) -> None:
    story.step("9. Bob goes offline: a message waits for him on two relays, sealed")
    if not local_relay.installed():
        story.say("(skipped: the `nostr-relay` package is not installed; `make demo` installs it)")
        story.report["mailbox"] = {"skipped": True}
        return
    with _relays(folder) as relays:
        urls = [relay.url for relay in relays]
        story.say("Two Nostr relays start on 127.0.0.1 (software not written here). Both add them:")
        for actor in (alice, bob):
            actor.run("relays", "add", *urls)
        story.say(f"  didlink relays add {' '.join(urls)}")
        text = "Dinner on Friday? (sent while you were offline)"
        sent = story.timed("mailbox_send", lambda: alice.run_json("send", "Bob", text, "--json"))
        story.say(
            f"Alice: didlink send Bob ... -> {_value(sent['status'])} by "
            f"{len(sent['relays'])} relay(s); Bob's terminal is closed."
        )
        inbox = story.timed("mailbox_receive", lambda: bob.run_json("receive", "--json"))
        texts = [entry["text"] for entry in inbox if entry["type"] == "message"]
        for entry in inbox:
            if entry["type"] == "message":
                story.say(
                    f"Bob, later: didlink receive -> from {_value(entry['name'])}, "
                    f"sent {_value(entry['sent_at'])}: [green]{_value(entry['text'])}[/]"
                )
        again = bob.run_json("receive", "--json")
        receipts = alice.run_json("receive", "--json")
        delivered = [entry["mid"] for entry in receipts if entry["type"] == "delivered"]
        story.say(
            "Alice: didlink receive -> "
            + ("[green]delivered[/]" if sent["mid"] in delivered else "[red]not delivered[/]")
        )
        seen = b"".join(relay.database_bytes() for relay in relays)
        dids = [story.report[who]["did"] for who in ("alice", "bob")]
        leaked = any(needle.encode() in seen for needle in (text, *dids))
        story.say(
            "What the relays keep: gift wraps from fresh keys to rotating pairwise aliases; "
            + ("[red]a DID or the text LEAKED[/]." if leaked else "no DID, no text.")
        )
    story.report["mailbox"] = {
        "received": texts,
        "received_again": len(again),
        "delivered": sent["mid"] in delivered,
        "relays_saw_plaintext": leaked,
    }


def run_demo(
    *, as_json: bool, attack: str | None = None, console: Console | None = None
) -> dict[str, Any]:
    """Tell the story; return the report (also what `--json` prints)."""
    console = console or Console(emoji=False, highlight=False, soft_wrap=True)
    story = Story(console, quiet=as_json)
    story.say("[bold]didlink demo[/]: everything below runs the real `didlink` command.")
    with _actors() as (alice, bob):
        _identity_story(story, alice, bob)
        if attack == "mitm":
            mallory = Actor("Mallory", alice.home.parent / "mallory", secrets.token_urlsafe(16))
            _mitm_story(story, alice, bob, mallory)
        else:
            _live_story(story, alice, bob, alice.home.parent)
            _mailbox_story(story, alice, bob, alice.home.parent)
    story.report["timings_ms"] = story.timings_ms
    story.step("Done")
    story.say("Timings (ms): " + ", ".join(f"{k} {v}" for k, v in story.timings_ms.items()))
    return story.report
