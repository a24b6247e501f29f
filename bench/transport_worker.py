"""One side of a bench/transport.py measurement, run as its own OS process.

Usage: python -m bench.transport_worker raw|ours offerer|answerer asyncio|uvloop BULK MESSAGES

Signaling is one line each way on stdin/stdout (raw: the full SDP as JSON; ours: the compact
offer as base64url). The offerer then measures, and prints one JSON line:
  connect_s   from before creating the offer to the data channel being open
  bulk_s      BULK bytes sent, until the answerer says it has them all
  messages_s  MESSAGES 100-byte messages sent, until the answerer says it has them all
The answerer only receives and acknowledges ("ok") after each phase, then stays until the parent
closes its stdin (after the offerer's result): an "ok" lost on the way is retransmitted only after
SCTP's retransmission timeout (a second or more), so an answerer that closed soon after sending it
could leave the offerer waiting for an "ok" that can no longer come.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from transport import CompactOffer, Peer, Role, run
from transport.signaling import blob_to_text, text_to_blob

RAW_CHUNK = 65536
OUR_MESSAGE = 1 << 20
SMALL = bytes(100)
HIGH_WATER, LOW_WATER = 1 << 20, 256 << 10


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _hear() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


class RawChannel:
    """Plain aiortc: full SDP, a negotiated channel, bufferedAmount backpressure only."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.dc = self.pc.createDataChannel("bench", negotiated=True, id=0, ordered=True)
        self.dc.bufferedAmountLowThreshold = LOW_WATER
        self.opened = asyncio.Event()
        self.low = asyncio.Event()
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.dc.on("open", self.opened.set)
        self.dc.on("bufferedamountlow", self.low.set)
        self.dc.on("message", self.inbox.put_nowait)

    async def connect(self, offerer: bool) -> None:
        if offerer:
            await self.pc.setLocalDescription(await self.pc.createOffer())
            _say(json.dumps({"sdp": self.pc.localDescription.sdp, "type": "offer"}))
            await self.pc.setRemoteDescription(RTCSessionDescription(**json.loads(await _hear())))
        else:
            await self.pc.setRemoteDescription(RTCSessionDescription(**json.loads(await _hear())))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            _say(json.dumps({"sdp": self.pc.localDescription.sdp, "type": "answer"}))
        await asyncio.wait_for(self.opened.wait(), 30)

    async def send(self, data: bytes) -> None:
        for i in range(0, max(len(data), 1), RAW_CHUNK):
            while self.dc.bufferedAmount > HIGH_WATER:
                self.low.clear()
                await self.low.wait()
            self.dc.send(data[i : i + RAW_CHUNK])

    async def recv(self) -> bytes:
        return await asyncio.wait_for(self.inbox.get(), 60)

    async def close(self) -> None:
        await self.pc.close()


class OurChannel:
    """transport.Peer with compact offers."""

    def __init__(self, offerer: bool) -> None:
        self.peer = Peer(role=Role.OFFERER if offerer else Role.ANSWERER)

    async def connect(self, offerer: bool) -> None:
        if offerer:
            _say(blob_to_text((await self.peer.create_offer()).to_cbor()))
            answer = CompactOffer.from_cbor(text_to_blob(await _hear()))
            await self.peer.accept_answer(answer)
        else:
            offer = CompactOffer.from_cbor(text_to_blob(await _hear()))
            _say(blob_to_text((await self.peer.accept_offer(offer)).to_cbor()))
        await self.peer.wait_open(30)

    async def send(self, data: bytes) -> None:
        if len(data) <= OUR_MESSAGE:
            await self.peer.send(data)
            return
        for i in range(0, len(data), OUR_MESSAGE):
            await self.peer.send(data[i : i + OUR_MESSAGE])

    async def recv(self) -> bytes:
        return await self.peer.recv(timeout=60)

    async def close(self) -> None:
        await self.peer.close()


async def main(kind: str, role: str, bulk: int, messages: int) -> None:
    offerer = role == "offerer"
    channel: RawChannel | OurChannel = RawChannel() if kind == "raw" else OurChannel(offerer)
    try:
        start = time.perf_counter()
        await channel.connect(offerer)
        result: dict[str, Any] = {"connect_s": time.perf_counter() - start}
        if offerer:
            start = time.perf_counter()
            await channel.send(bytes(bulk))
            assert await channel.recv() == b"ok"
            result["bulk_s"] = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(messages):
                await channel.send(SMALL)
            assert await channel.recv() == b"ok"
            result["messages_s"] = time.perf_counter() - start
            _say(json.dumps(result))
        else:
            for total in (bulk, messages * len(SMALL)):
                got = 0
                while got < total:
                    got += len(await channel.recv())
                await channel.send(b"ok")
            await _hear()  # the parent closes stdin once the offerer has reported
    finally:
        await channel.close()


if __name__ == "__main__":
    kind, role, loop_name = sys.argv[1:4]
    run(main(kind, role, int(sys.argv[4]), int(sys.argv[5])), use_uvloop=loop_name == "uvloop")
