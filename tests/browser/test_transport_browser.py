"""Interop with headless Chromium: its RTCPeerConnection is the other peer (specs/transport.md).

The test serves tests/browser/peer.html and our offer (SDP rebuilt from the compact form) over
HTTP on 127.0.0.1 (a secure context, so WebCrypto works); the page posts back Chromium's answer
SDP, which we squeeze into a CompactOffer and expand again before aiortc sees it. Then 1 MB goes
each way and is echoed back byte-identical. Chromium is killed (whole process group) whatever
happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from transport import Peer, Role, compact_from_sdp, sdp_from_compact

PAGE = Path(__file__).with_name("peer.html")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _Exchange:
    """What the page and the test hand each other through the HTTP server."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.offer: dict[str, str] = {}
        self.answer: asyncio.Future[str] = loop.create_future()
        self.result: asyncio.Future[dict[str, Any]] = loop.create_future()
        self.log: list[str] = []

    def resolve(self, future: asyncio.Future[Any], value: Any) -> None:
        def settle() -> None:
            if not future.done():
                future.set_result(value)

        self.loop.call_soon_threadsafe(settle)


def _handler(exchange: _Exchange) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/":
                self._reply(PAGE.read_bytes(), "text/html; charset=utf-8")
            elif self.path == "/offer":
                self._reply(json.dumps(exchange.offer).encode(), "application/json")
            else:
                self.send_error(404)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            if self.path == "/answer":
                exchange.resolve(exchange.answer, body)
            elif self.path == "/result":
                exchange.resolve(exchange.result, json.loads(body))
            else:
                exchange.log.append(body)
            self._reply(b"ok", "text/plain")

    return Handler


@pytest.mark.browser
@pytest.mark.timeout(90)
async def test_chromium_echoes_one_megabyte_both_ways() -> None:
    chromium = _find_chromium()
    if chromium is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (CI must install it, see .ci/run)")
        pytest.skip("chromium is not installed")
    exchange = _Exchange(asyncio.get_running_loop())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(exchange))
    server_thread = threading.Thread(target=server.serve_forever, daemon=True)
    server_thread.start()
    profile = tempfile.TemporaryDirectory(prefix="didlink-chromium-")
    browser: subprocess.Popen[bytes] | None = None
    peer = Peer(role=Role.OFFERER)
    try:
        sdp, kind = sdp_from_compact(await peer.create_offer())
        exchange.offer = {"type": kind, "sdp": sdp}
        browser = subprocess.Popen(  # noqa: ASYNC220 - returns at once; killed in finally
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile.name}",
             f"http://127.0.0.1:{server.server_port}/"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            answer_sdp = await asyncio.wait_for(exchange.answer, timeout=30)
        except TimeoutError:
            pytest.fail(f"Chromium posted no answer within 30 s; page log: {exchange.log}")
        answer = compact_from_sdp(answer_sdp)  # Chromium's answer, through our compact form
        await peer.accept_answer(answer)
        await peer.wait_open(20)
        assert peer.remote_fingerprint == answer.fingerprint_hex

        ours = os.urandom(1_000_000)
        await peer.send(ours)
        echoed = await peer.recv(timeout=20)
        assert hashlib.sha256(echoed).digest() == hashlib.sha256(ours).digest()

        await peer.send(b"your turn")
        theirs = await peer.recv(timeout=20)
        assert len(theirs) == 1_000_000
        await peer.send(theirs)  # echo the page's megabyte back
        result = await asyncio.wait_for(exchange.result, timeout=20)
        assert result["sha256"] == hashlib.sha256(theirs).hexdigest()
        assert result["echo_ok"] is True, exchange.log
    finally:
        await peer.close()
        if browser is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(browser.pid, signal.SIGKILL)
            browser.wait(timeout=10)
        server.shutdown()
        server.server_close()
        server_thread.join(timeout=5)
        profile.cleanup()
