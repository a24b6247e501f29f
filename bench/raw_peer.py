"""The raw aiortc baseline, as a process that speaks a subset of `didlink --jsonl`.

Usage: python -m bench.raw_peer [--prompt-ice] [--triggered-checks] invite | accept TOKEN
(--jsonl is ignored)

So that the bench drives didlink and its baseline the same way (two OS processes, commands on
stdin, events on stdout, timed by the parent), this is plain aiortc with the settings didlink's
transport uses: no ICE servers, one negotiated ordered reliable channel, 64 KiB data-channel
messages, the same bufferedAmount high/low water marks, and the same event loop (uvloop when
installed, via transport.run). The "tokens" are the full SDP offer and answer as JSON. Two
exceptions, on request only, each for one of the bench's comparison rows: `sctp_alike` gives
this peer's SCTP the acknowledgement policy and the transmit step of didlink's transport
(transport/delayed_sack.py, transport/retransmit_scan.py), `--prompt-ice` its ICE
completion (transport/prompt_ice.py), and `--triggered-checks` its answer to a check on a pair
still being checked (transport/triggered_checks.py).

ICE servers: none, unless the environment names them with didlink's own variables (issue 29):
DIDLINK_STUN (comma-separated stun: URLs), DIDLINK_TURN (turn: URLs) with
DIDLINK_TURN_USERNAME and DIDLINK_TURN_CREDENTIAL, and DIDLINK_ICE_POLICY=relay for aiortc's
relay-only policy (iceTransportPolicy "relay"). So the NAT lab's bench rows (bench/metrics/
nat.py) give both systems one environment and the same TURN server. The `connected` event then
carries `path`, the candidate type of the nominated pair on this side (as didlink's does).

Events: token {kind, token}, connected, message {text}, burst_done {count},
bulk_done {bytes}, sctp_alike {on}, closed {reason}. Commands: response {token}, send {text},
burst {count, size} (count messages of size bytes, as fast as backpressure allows; the peer
answers once it has the last), bulk {size} (size bytes in 64 KiB messages; the peer answers
once it has them all), sctp_alike, quit. Every data-channel message starts with a one-byte tag.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import sys
from collections.abc import Coroutine, Mapping
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)

from didlink.jsonl import LineReader
from transport import run
from transport.delayed_sack import DelayedSack
from transport.framing import CHUNK_MESSAGE_SIZE
from transport.peer import HIGH_WATER, LOW_WATER
from transport.prompt_ice import PromptIce
from transport.retransmit_scan import RetransmitScan
from transport.triggered_checks import TriggeredChecks

TEXT, SMALL, SMALL_LAST, BULK, BULK_LAST, SMALL_DONE, BULK_DONE = (bytes([t]) for t in b"mbBcCkK")


def ice_configuration(env: Mapping[str, str]) -> RTCConfiguration:
    """aiortc's configuration from didlink's ICE variables (see the module docstring)."""

    def urls(name: str) -> list[str]:
        return [url.strip() for url in env.get(name, "").split(",") if url.strip()]

    servers = [RTCIceServer(urls=url) for url in urls("DIDLINK_STUN")]
    servers += [
        RTCIceServer(
            urls=url,
            username=env.get("DIDLINK_TURN_USERNAME"),
            credential=env.get("DIDLINK_TURN_CREDENTIAL"),
        )
        for url in urls("DIDLINK_TURN")
    ]
    relay = env.get("DIDLINK_ICE_POLICY") == "relay"
    policy = RTCIceTransportPolicy.RELAY if relay else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class RawPeer:
    """One RTCPeerConnection with one data channel; counts what arrives."""

    def __init__(self, *, prompt_ice: bool = False, triggered_checks: bool = False) -> None:
        self.pc = RTCPeerConnection(ice_configuration(os.environ))
        self.dc = self.pc.createDataChannel("bench", negotiated=True, id=0, ordered=True)
        connection = self.pc.sctp.transport.transport._connection
        if prompt_ice and PromptIce.install(connection) is None:
            raise RuntimeError("this aioice does not take didlink's ICE completion")
        if triggered_checks and TriggeredChecks.install(connection) is None:
            raise RuntimeError("this aioice does not take didlink's triggered checks")
        self.dc.bufferedAmountLowThreshold = LOW_WATER
        self.low = asyncio.Event()
        self.done = asyncio.Event()
        self.small = 0
        self.bulk = 0
        self.backlog: collections.deque[bytes] = collections.deque()  # `post`ed, not sent yet
        self.tasks: set[asyncio.Task[None]] = set()
        self.dc.on("open", lambda: emit("connected", path=self.path()))
        self.dc.on("bufferedamountlow", self.low.set)
        self.dc.on("message", self.on_message)

    def path(self) -> str | None:
        """The candidate type of our side of the nominated pair (aioice keeps it private)."""
        connection = self.pc.sctp.transport.transport._connection
        nominated = getattr(connection, "_nominated", {})
        pair = nominated.get(1)
        return None if pair is None else str(pair.local_candidate.type)

    def on_message(self, data: bytes | str) -> None:
        assert isinstance(data, bytes)
        tag = data[:1]
        if tag == SMALL:
            self.small += 1
        elif tag == SMALL_LAST:
            self.small += 1
            self.dc.send(SMALL_DONE + self.small.to_bytes(8, "big"))
            self.small = 0
        elif tag == BULK:
            self.bulk += len(data) - 1
        elif tag == BULK_LAST:
            self.bulk += len(data) - 1
            self.dc.send(BULK_DONE + self.bulk.to_bytes(8, "big"))
            self.bulk = 0
        elif tag == SMALL_DONE:
            emit("burst_done", count=int.from_bytes(data[1:], "big"))
        elif tag == BULK_DONE:
            emit("bulk_done", bytes=int.from_bytes(data[1:], "big"))
        elif tag == TEXT:
            emit("message", text=data[1:].decode())

    async def send(self, data: bytes) -> None:
        while self.dc.bufferedAmount > HIGH_WATER:
            self.low.clear()
            await self.low.wait()
        self.dc.send(data)

    def post(self, data: bytes) -> None:
        """Send `data` now if the buffer has room and nothing waits before it; else after."""
        if not self.backlog and self.dc.bufferedAmount <= HIGH_WATER:
            self.dc.send(data)
            return
        self.backlog.append(data)
        if len(self.backlog) == 1:
            self.spawn(self._drain())

    async def _drain(self) -> None:
        while self.backlog:
            await self.send(self.backlog[0])
            self.backlog.popleft()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def burst(self, count: int, size: int) -> None:
        body = bytes(size - 1)
        for i in range(count):
            await self.send((SMALL_LAST if i == count - 1 else SMALL) + body)

    async def bulk_send(self, size: int) -> None:
        step = CHUNK_MESSAGE_SIZE - 1
        data = memoryview(bytes(size))
        for offset in range(0, size, step):
            last = offset + step >= size
            await self.send((BULK_LAST if last else BULK) + data[offset : offset + step])


async def main(
    argv: list[str], *, prompt_ice: bool = False, triggered_checks: bool = False
) -> None:
    peer = RawPeer(prompt_ice=prompt_ice, triggered_checks=triggered_checks)
    if argv[0] == "invite":
        await peer.pc.setLocalDescription(await peer.pc.createOffer())
        emit("token", kind="invite", token=json.dumps({"sdp": peer.pc.localDescription.sdp}))
    else:
        offer = json.loads(argv[1])
        await peer.pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await peer.pc.setLocalDescription(await peer.pc.createAnswer())
        emit("token", kind="response", token=json.dumps({"sdp": peer.pc.localDescription.sdp}))
    ended = asyncio.Event()

    def on_lines(lines: list[str | None]) -> None:
        """Commands as they are read (didlink's reader does the same: didlink/session/live.py)."""
        for line in lines:
            command = {"cmd": "quit"} if line is None else json.loads(line)
            cmd = command["cmd"]
            if cmd == "quit":
                ended.set()
                return
            if cmd == "response":
                answer = json.loads(command["token"])["sdp"]
                peer.spawn(peer.pc.setRemoteDescription(RTCSessionDescription(answer, "answer")))
            elif cmd == "sctp_alike":
                sctp = peer.pc.sctp  # idle between transfers: no T3 timer is running
                scan = RetransmitScan.install(sctp)  # the order of transport/peer.py
                sacks = DelayedSack.install(sctp)
                emit("sctp_alike", on=scan is not None and sacks is not None)
            elif cmd == "send":
                peer.post(TEXT + command["text"].encode())
            elif cmd == "burst":  # in a task, so that stdin keeps being read
                peer.spawn(peer.burst(command["count"], command["size"]))
            elif cmd == "bulk":
                peer.spawn(peer.bulk_send(command["size"]))

    reader = LineReader(on_lines)
    try:
        await ended.wait()
    finally:
        reader.close()
        await peer.pc.close()
        emit("closed", reason="quit")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--jsonl"]
    flags = ("--prompt-ice", "--triggered-checks")
    run(
        main(
            [a for a in args if a not in flags],
            prompt_ice="--prompt-ice" in args,
            triggered_checks="--triggered-checks" in args,
        )
    )
