"""The real `didlink` CLI in two namespaces through the impairing bridge (issue 7 §3).

`exchange_through_bridge(impairment, messages=, file_size=)` is shared by the bounded tests
(tests/faults/test_netns_loss.py, in `make test`) and the long run
(tests/reliability/test_netns_loss_long.py). Alice (`invite --jsonl`, namespace A) and Bob
(`accept --jsonl`, namespace B) connect through tests/faults/bridge.py, compare the SAS and
confirm it; then both send `messages` texts at once, each with its index as `ref`. The receiver
must see exactly the sender's `sent` ids and texts, in order, once each, and the sender must get
a `delivered` receipt for every one. Then Alice sends a file of `file_size` random bytes: Bob's
copy must be byte-identical (and its SHA-256 the sender's). Alice quits; both exit 0, and the
rest of their output holds no further `message` (no late duplicate). Every wait shares one
deadline. Returns the times and the bridge's counts for the report.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.driver import Cli, cli_processes, make_identity
from tests.faults.bridge import Impairment
from tests.faults.bridged import Stats, bridged_hosts, in_namespace


@dataclass(frozen=True)
class CliExchangeReport:
    connect_s: float
    messages_s: float
    file_s: float
    stats: Stats

    @property
    def udp_dropped(self) -> int:
        return sum(d["udp_dropped"] for d in self.stats.values())

    @property
    def udp_forwarded(self) -> int:
        return sum(d["udp_forwarded"] for d in self.stats.values())

    def __str__(self) -> str:
        total = self.udp_forwarded + self.udp_dropped
        reordered = sum(d["udp_reordered"] for d in self.stats.values())
        return (
            f"connect {self.connect_s:.1f} s, texts {self.messages_s:.1f} s,"
            f" file {self.file_s:.1f} s; bridge: {total} UDP frames, {self.udp_dropped} dropped"
            f" ({self.udp_dropped / max(total, 1):.1%}), {reordered} held back to reorder"
        )


class Deadline:
    """One time budget for a whole scenario; every `expect` gets what is left of it."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def expect(self, cli: Cli, name: str, what: str) -> dict[str, Any]:
        try:
            return cli.expect(name, timeout=max(0.1, self.end - time.monotonic()))
        except Exception as exc:  # the driver's DriverError (or AssertionError): add context
            closed = cli.seen("closed")
            raise AssertionError(f"waiting for {what}: {exc}; closed events: {closed}") from exc


def texts_for(name: str, count: int) -> list[str]:
    return [f"{name} message {i:05d}" for i in range(count)]


def _check_texts(sender: Cli, receiver: Cli, texts: list[str], deadline: Deadline) -> None:
    """Every text arrived once, in order, with the id the sender announced; all delivered."""
    who = f"{sender.args[0]} -> {receiver.args[0]}"
    arrived = []
    for i in range(len(texts)):
        arrived.append(deadline.expect(receiver, "message", f"{who}: text {i} of {len(texts)}"))
    assert [m["text"] for m in arrived] == texts, f"{who}: not complete, in order, exactly once"
    sent = [deadline.expect(sender, "sent", f"{who}: sent {i}") for i in range(len(texts))]
    assert [s["ref"] for s in sent] == list(range(len(texts)))
    assert [m["id"] for m in arrived] == [s["id"] for s in sent]
    delivered = [deadline.expect(sender, "delivered", f"{who}: receipt") for _ in texts]
    assert sorted(d["id"] for d in delivered) == sorted(s["id"] for s in sent)


def exchange_through_bridge(
    impairment: Impairment,
    *,
    workdir: Path,
    messages: int,
    file_size: int,
    time_limit: float,
) -> CliExchangeReport:
    """Run the scenario; AssertionError naming what went wrong (all within `time_limit`)."""
    deadline = Deadline(time_limit)
    a_home, b_home = workdir / "alice", workdir / "bob"
    alice_did, bob_did = make_identity(a_home), make_identity(b_home)
    payload = os.urandom(file_size)
    source = workdir / "payload.bin"
    source.write_bytes(payload)
    with bridged_hosts(impairment, stats_dir=workdir) as hosts, cli_processes() as started:
        started_at = time.monotonic()
        alice = Cli("invite", "--jsonl", home=a_home, prefix=in_namespace(hosts.ns_a))
        started.append(alice)
        invite = deadline.expect(alice, "token", "the invitation")["token"]
        bob = Cli("accept", invite, "--jsonl", home=b_home, prefix=in_namespace(hosts.ns_b))
        started.append(bob)
        response = deadline.expect(bob, "token", "the response")["token"]
        alice.send("response", token=response)
        sas = deadline.expect(alice, "sas", "alice's SAS")
        assert sas == deadline.expect(bob, "sas", "bob's SAS")
        alice.send("confirm_sas")
        bob.send("confirm_sas")
        assert deadline.expect(alice, "connected", "alice connected")["peer"] == bob_did
        assert deadline.expect(bob, "connected", "bob connected")["peer"] == alice_did
        connected_at = time.monotonic()

        alice_texts, bob_texts = texts_for("alice", messages), texts_for("bob", messages)
        for i in range(messages):
            alice.send("send", text=alice_texts[i], ref=i)
            bob.send("send", text=bob_texts[i], ref=i)
        _check_texts(alice, bob, alice_texts, deadline)
        _check_texts(bob, alice, bob_texts, deadline)
        texts_at = time.monotonic()

        alice.send("send_file", path=str(source))
        arrived = deadline.expect(bob, "file", "the file")
        assert arrived["size"] == file_size
        assert arrived["sha256"] == hashlib.sha256(payload).hexdigest()
        assert Path(arrived["path"]).read_bytes() == payload
        deadline.expect(alice, "file_sent", "the file's acknowledgement")
        file_at = time.monotonic()

        alice.send("quit")
        assert deadline.expect(alice, "closed", "alice closing")["reason"] == "quit"
        bob_closed = deadline.expect(bob, "closed", "bob closing")
        assert bob_closed["reason"] == "peer closed", (bob_closed, bob.stderr[-2000:])
        for cli in (alice, bob):
            late = [e for e in cli.rest(timeout=30) if e["event"] in ("message", "file")]
            assert late == [], f"{cli.args[0]}: arrived again: {late[:3]}"
            assert cli.wait() == 0, cli.stderr[-2000:]
        return CliExchangeReport(
            connect_s=connected_at - started_at,
            messages_s=texts_at - connected_at,
            file_s=file_at - texts_at,
            stats=hosts.stats(),
        )
