"""Memory per live session: N sessions in one process (run by bench/metrics/memory.py).

Usage: python -m bench.memory_worker host didlink|raw N     (the host starts its own guest)

The host process opens N connections to a guest process (its child, speaking one JSON line per
offer and per answer over pipes). "didlink": each connection is a transport `Peer` plus a
`didlink.session.node.Node` running the real session (handshake, SAS confirmed at once by an
in-process sink, both confirmations exchanged, reader and writer tasks alive), all sharing one open
store as a multi-session process would. "raw": each is a bare aiortc RTCPeerConnection with one open
data channel, in processes that import nothing of didlink (what a process imported before it
measures changes what a session adds to it: a raw session measured beside didlink's modules came to
151.8 KiB, alone to 163 KiB). One warm-up connection first (so lazy imports and caches are not
charged to the sessions), then the host reads its RSS, opens N more, reads it again and prints
{"rss_before", "rss_after", "sessions", "per_session"} (bytes).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

if TYPE_CHECKING:  # the didlink system imports them when it runs (`Sessions`)
    from didlink.session.node import Node, Outcome
    from transport import Peer

TIMEOUT = 120.0


def rss() -> int:
    """Resident set size of this process in bytes (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class AutoConfirmSink:
    """Confirms the SAS the moment it is shown; resolves `connected` when the session is up."""

    def __init__(self) -> None:
        self.node: Node | None = None
        self.connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def emit(self, event: str, **fields: Any) -> None:
        from didlink.jsonl import ConfirmSas

        if event == "sas" and self.node is not None:
            asyncio.get_running_loop().call_soon(self.node.handle, ConfirmSas())
        elif event == "connected" and not self.connected.done():
            self.connected.set_result(None)
        elif event == "closed" and not self.connected.done():
            self.connected.set_exception(RuntimeError(f"session closed: {fields}"))

    def warn(self, text: str) -> None:
        pass


class Sessions:
    """The didlink sessions of one side (host = inviter/initiator, guest = invitee)."""

    def __init__(self, *, host: bool) -> None:
        from didlink.profile.folder import Profile
        from identity.keys import IdentityKey

        self.host = host
        self.key = IdentityKey.generate()
        self.profile = Profile(Path(tempfile.mkdtemp(prefix="didlink-mem-")))
        self.store = self.profile.open_store()  # one per process, shared by its sessions
        self.nodes: list[tuple[Node, asyncio.Task[Outcome]]] = []
        self.peers: list[Peer] = []

    def new_peer(self) -> Peer:
        from transport import Peer, Role

        peer = Peer(role=Role.OFFERER if self.host else Role.ANSWERER)
        self.peers.append(peer)
        return peer

    async def start(self, peer: Peer, *, peer_did: str, invitation_id: bytes) -> None:
        from didlink.session.node import Node, Timeouts

        sink = AutoConfirmSink()
        node = Node(
            key=self.key, profile=self.profile, sink=sink, timeouts=Timeouts(), store=self.store
        )
        sink.node = node
        task = asyncio.create_task(
            node.run_session(
                peer, initiator=self.host, peer_did=peer_did, invitation_id=invitation_id
            )
        )
        self.nodes.append((node, task))
        await asyncio.wait_for(sink.connected, TIMEOUT)

    async def close(self) -> None:
        from didlink.jsonl import Quit

        for node, _ in self.nodes:
            node.handle(Quit())
        await asyncio.gather(*(task for _, task in self.nodes), return_exceptions=True)
        self.store.close()
        shutil.rmtree(self.profile.path, ignore_errors=True)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def _line(stream: asyncio.StreamReader) -> dict[str, Any]:
    line = await asyncio.wait_for(stream.readline(), TIMEOUT)
    if not line:
        raise RuntimeError("the other process ended")
    result: dict[str, Any] = json.loads(line)
    return result


def _raw_pc() -> tuple[RTCPeerConnection, asyncio.Event]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = pc.createDataChannel("bench", negotiated=True, id=0, ordered=True)
    opened = asyncio.Event()
    channel.on("open", opened.set)
    return pc, opened


async def host(kind: str, count: int) -> None:
    guest = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.memory_worker", "guest", kind,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert guest.stdin is not None and guest.stdout is not None
    sessions = None if kind == "raw" else Sessions(host=True)
    pcs: list[RTCPeerConnection] = []
    hello = await _line(guest.stdout)

    async def connect_one() -> None:
        assert guest.stdin is not None and guest.stdout is not None
        if kind == "raw":
            pc, opened = _raw_pc()
            pcs.append(pc)
            await pc.setLocalDescription(await pc.createOffer())
            guest.stdin.write(json.dumps({"sdp": pc.localDescription.sdp}).encode() + b"\n")
            sdp = (await _line(guest.stdout))["sdp"]
            await pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
            await asyncio.wait_for(opened.wait(), TIMEOUT)
            return
        from transport import CompactOffer

        assert sessions is not None
        peer = sessions.new_peer()
        offer = await peer.create_offer()
        invitation_id = os.urandom(16)
        message = {
            "offer": _b64(offer.to_cbor()),
            "did": sessions.key.did,
            "id": invitation_id.hex(),
        }
        guest.stdin.write(json.dumps(message).encode() + b"\n")
        answer = CompactOffer.from_cbor(base64.b64decode((await _line(guest.stdout))["answer"]))
        await peer.accept_answer(answer)
        await peer.wait_open(TIMEOUT)
        await sessions.start(peer, peer_did=hello["did"], invitation_id=invitation_id)

    try:
        await connect_one()  # warm-up
        gc.collect()
        before = rss()
        for _ in range(count):
            await connect_one()
        await asyncio.sleep(0.5)
        gc.collect()
        after = rss()
        print(
            json.dumps(
                {
                    "rss_before": before,
                    "rss_after": after,
                    "sessions": count,
                    "per_session": (after - before) / count,
                }
            ),
            flush=True,
        )
    finally:
        if sessions is not None:
            await sessions.close()
        for pc in pcs:
            await pc.close()
        guest.stdin.close()
        await asyncio.wait_for(guest.wait(), 60)


async def guest(kind: str) -> None:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    sessions = None if kind == "raw" else Sessions(host=False)
    pcs: list[RTCPeerConnection] = []
    print(json.dumps({"did": "" if sessions is None else sessions.key.did}), flush=True)
    pending: set[asyncio.Task[None]] = set()
    try:
        while line := await stdin.readline():
            message = json.loads(line)
            if kind == "raw":
                pc, _ = _raw_pc()
                pcs.append(pc)
                await pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "offer"))
                await pc.setLocalDescription(await pc.createAnswer())
                print(json.dumps({"sdp": pc.localDescription.sdp}), flush=True)
                continue
            from transport import CompactOffer

            assert sessions is not None
            peer = sessions.new_peer()
            offer = CompactOffer.from_cbor(base64.b64decode(message["offer"]))
            answer = await peer.accept_offer(offer)
            print(json.dumps({"answer": _b64(answer.to_cbor())}), flush=True)

            async def session(peer: Peer = peer, message: dict[str, Any] = message) -> None:
                await peer.wait_open(TIMEOUT)
                invitation_id = bytes.fromhex(message["id"])
                await sessions.start(peer, peer_did=message["did"], invitation_id=invitation_id)

            task = asyncio.create_task(session())
            pending.add(task)
    finally:
        if sessions is not None:
            await sessions.close()
        for pc in pcs:
            await pc.close()


def _run(main: Coroutine[Any, Any, None]) -> None:
    """transport.run's loop (uvloop when installed), without importing the transport package
    (which the raw system must not load: see the module docstring)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


if __name__ == "__main__":
    role, kind_arg = sys.argv[1:3]
    if role == "host":
        _run(host(kind_arg, int(sys.argv[3])))
    else:
        _run(guest(kind_arg))
