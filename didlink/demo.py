"""`didlink demo`: the didlink story told for real, on this machine, with no set-up.

Two people, Alice and Bob, get fresh identities in a temporary folder. Every step runs the real
`didlink` command in its own process with its own profile, exactly as a user would type it, and
the demo shows what each of them sees. Nothing leaves this machine.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from didlink.driver import Actor

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
        f"Bob sees: kind {seen.get('kind')}, from {seen.get('inviter')}, "
        f"label {seen.get('label')!r}, expires {seen.get('expires')}"
    )
    tampered = card[:-6] + ("1" if card[-6] != "1" else "2") + card[-5:]
    refused = bob.run("inspect", tampered, check=False)
    story.say(f"A card changed by one character is refused: [red]{refused.stderr.strip()}[/]")

    story.step("4. Bob keeps Alice as a contact; Alice keeps Bob")
    bob.run("accept", card)
    again = bob.run("accept", card, check=False)
    story.say(f"Accepting the same single-use card again: [red]{again.stderr.strip()}[/]")
    bob_card = bob.run_json("invite", "--card", "--label", "Bob", "--json")["token"]
    alice.run("accept", bob_card)
    contacts = bob.run_json("contacts", "--json")
    for contact in contacts:
        story.say(
            f"Bob's contacts: {contact['name'] or contact['did']} ({contact['verification']})"
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


def run_demo(*, as_json: bool, console: Console | None = None) -> dict[str, Any]:
    """Tell the story; return the report (also what `--json` prints)."""
    console = console or Console(emoji=False, highlight=False, soft_wrap=True)
    story = Story(console, quiet=as_json)
    story.say("[bold]didlink demo[/]: everything below runs the real `didlink` command.")
    with _actors() as (alice, bob):
        _identity_story(story, alice, bob)
    story.report["timings_ms"] = story.timings_ms
    story.step("Done")
    story.say("Timings (ms): " + ", ".join(f"{k} {v}" for k, v in story.timings_ms.items()))
    return story.report
