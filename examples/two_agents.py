"""Two people in one process: Alice invites, Bob accepts, both compare the SAS, a message each
way, a file, a clean exit.

    DIDLINK_PASSPHRASE=... python examples/two_agents.py

Both profiles are made in a temporary folder (under DIDLINK_HOME when it is set) and removed
at the end. The connection is real WebRTC over this machine's own address.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from didlink import Agent, FileReceived, FileSent, MessageReceived

PASSPHRASE = os.environ.get("DIDLINK_PASSPHRASE", "an example passphrase")


async def main(folder: Path) -> None:
    alice = await Agent.create(folder / "alice", passphrase=PASSPHRASE)
    bob = await Agent.create(folder / "bob", passphrase=PASSPHRASE)
    async with alice, bob:
        # Alice makes a live invitation; Bob accepts it; his response goes back to her.
        invitation = await alice.invite(label="Alice")
        answer = await bob.accept(invitation.token)
        invitation.submit_response(answer.token)

        # Both see the same Short Authentication String; people compare it by voice.
        sas_alice, sas_bob = await invitation.sas(), await answer.sas()
        print("Alice sees:", " ".join(sas_alice.emoji), "Bob sees:", " ".join(sas_bob.emoji))
        assert sas_alice == sas_bob
        invitation.confirm_sas()
        answer.confirm_sas()
        await invitation.connected()
        await answer.connected()

        # A message each way.
        await invitation.send("Hello Bob, it is Alice.")
        await answer.send("Hello Alice!")
        for session, name in ((answer, "Bob"), (invitation, "Alice")):
            got = await session.wait_for(MessageReceived)
            print(f"{name} received: {got.text!r}")

        # A file from Alice to Bob, SHA-256 checked on arrival.
        document = folder / "notes.txt"
        document.write_text("the meeting is at noon\n")
        invitation.send_file(document)
        received = await answer.wait_for(FileReceived)
        await invitation.wait_for(FileSent)
        print(f"Bob received {received.name} ({received.size} bytes) at {received.path}")

        # Both are contacts now, verified by the SAS; Bob adopts the name Alice suggested.
        bob.rename(alice.did)
        print("Bob's contacts:", [(c.name, c.verification.value) for c in bob.contacts()])
        closed = await invitation.close()
        print("Alice closed:", closed.reason, "- Bob's side:", (await answer.wait_closed()).reason)


def run() -> None:
    home = os.environ.get("DIDLINK_HOME")
    if home:
        Path(home).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="didlink-example-", dir=home) as folder:
        asyncio.run(main(Path(folder)))


if __name__ == "__main__":
    run()
