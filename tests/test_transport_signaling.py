"""Signaling backends, tokens, ICE configuration and the uvloop runner."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from transport import IceConfig, IceServer, LoopbackSignaling, ManualSignaling
from transport.errors import SignalingError, TransportTimeout
from transport.runner import run, uvloop_available
from transport.signaling import MAX_BLOB_BYTES, blob_to_text, text_to_blob


async def test_loopback_pair_delivers_both_ways_and_times_out() -> None:
    a, b = LoopbackSignaling.pair(capacity=1)
    await a.send(b"offer")
    assert await b.receive(timeout=1) == b"offer"
    await b.send(b"answer")
    assert await a.receive(timeout=1) == b"answer"
    with pytest.raises(TransportTimeout, match=r"within 0\.05 s"):
        await a.receive(timeout=0.05)
    await a.send(b"one")
    with pytest.raises(SignalingError, match="not reading"):
        await a.send(b"two")  # bounded: the other end is not reading
    with pytest.raises(SignalingError, match="at most"):
        await b.send(bytes(MAX_BLOB_BYTES + 1))


async def test_manual_signaling_uses_the_application_callbacks() -> None:
    shown: list[bytes] = []
    pasted: asyncio.Queue[bytes] = asyncio.Queue()

    async def deliver(blob: bytes) -> None:
        shown.append(blob)

    signaling = ManualSignaling(deliver=deliver, obtain=pasted.get)
    await signaling.send(b"\x01\x02")
    assert shown == [b"\x01\x02"]
    with pytest.raises(TransportTimeout):
        await signaling.receive(timeout=0.05)
    pasted.put_nowait(b"peer")
    assert await signaling.receive(timeout=1) == b"peer"


def test_tokens_round_trip_and_reject_garbage() -> None:
    blob = bytes(range(256))
    text = blob_to_text(blob)
    assert "=" not in text and text.isascii()
    assert text_to_blob(f"  {text}\n") == blob
    assert blob_to_text(b"\xfb\xff") == "-_8"  # base64url alphabet, no padding (RFC 4648 §5)
    for bad in ("", "   ", "a=b", "abc$", "ab+d", "a", "ab cd"):
        with pytest.raises(SignalingError):
            text_to_blob(bad)


def test_ice_config_never_lets_aiortc_pick_a_default_stun_server() -> None:
    assert IceConfig().rtc_configuration().iceServers == []  # not None: aiortc would add Google
    config = IceConfig(
        servers=(
            IceServer(urls=("stun:stun.example.org:3478",)),
            IceServer(urls=("turn:turn.example.org",), username="u", credential="secret"),
        )
    )
    servers = config.rtc_configuration().iceServers
    assert servers is not None
    assert [s.urls for s in servers] == [["stun:stun.example.org:3478"], ["turn:turn.example.org"]]
    assert (servers[1].username, servers[1].credential) == ("u", "secret")
    assert "secret" not in repr(config)
    with pytest.raises(ValidationError):
        IceServer(urls=("http://example.org",))
    with pytest.raises(ValidationError):
        IceServer(urls=())


def test_run_uses_uvloop_when_available() -> None:
    async def loop_name() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run(loop_name(), use_uvloop=False).startswith("asyncio")
    if uvloop_available():
        assert run(loop_name()).startswith("uvloop")
