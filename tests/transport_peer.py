"""One transport peer as its own OS process, for tests/test_transport_e2e.py.

Usage: python -m tests.transport_peer offerer|answerer SIZE
Signaling is manual over pipes: our compact offer/answer is one base64url line on stdout, the
peer's arrives as one line on stdin. Then SIZE random bytes are sent (1 MiB messages) while SIZE
bytes are received, and one JSON line reports the SHA-256 of what was sent and received.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys

from transport import CompactOffer, ManualSignaling, Peer, Role, run
from transport.signaling import blob_to_text, text_to_blob

STEP = 1 << 20


async def _deliver(blob: bytes) -> None:
    sys.stdout.write(blob_to_text(blob) + "\n")
    sys.stdout.flush()


async def _obtain() -> bytes:
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    return text_to_blob(line)


async def main(role: Role, size: int) -> None:
    signaling = ManualSignaling(deliver=_deliver, obtain=_obtain)
    async with Peer(role=role) as peer:
        if role is Role.OFFERER:
            await signaling.send((await peer.create_offer()).to_cbor())
            answer = CompactOffer.from_cbor(await signaling.receive(timeout=20))
            await peer.accept_answer(answer)
        else:
            offer = CompactOffer.from_cbor(await signaling.receive(timeout=20))
            await signaling.send((await peer.accept_offer(offer)).to_cbor())
        await peer.wait_open(20)
        data = os.urandom(size)

        async def send() -> None:
            for i in range(0, size, STEP):
                await peer.send(data[i : i + STEP])

        async def receive() -> str:
            digest, got = hashlib.sha256(), 0
            while got < size:
                part = await peer.recv(timeout=20)
                digest.update(part)
                got += len(part)
            return digest.hexdigest()

        _, received = await asyncio.gather(send(), receive())
        # Both sides must have everything before either closes.
        await peer.send(b"done")
        assert await peer.recv(timeout=20) == b"done"
        report = {
            "sent": hashlib.sha256(data).hexdigest(),
            "received": received,
            "local_fingerprint": peer.local_fingerprint,
            "remote_fingerprint": peer.remote_fingerprint,
        }
        sys.stdout.write(json.dumps(report) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    run(main(Role(sys.argv[1]), int(sys.argv[2])))
