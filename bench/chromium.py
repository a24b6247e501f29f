"""Chromium-to-Chromium data-channel figures (no target): where a browser messenger stands.

Headless Chromium loads bench/chromium_page/index.html from a local HTTP server; the page
connects two RTCPeerConnections inside itself (no ICE servers, one ordered reliable channel,
64 KiB messages, the same bufferedAmount marks as didlink), measures connect time, bulk
throughput and the rate of 100-byte messages, and POSTs the figures back. Median of a few runs.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PAGE = Path(__file__).resolve().parent / "chromium_page" / "index.html"
CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "chromium")
TIMEOUT = 120.0


def executable() -> str | None:
    """Path of an installed Chromium, if any."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def available() -> bool:
    return executable() is not None


class _Handler(BaseHTTPRequestHandler):
    results: list[dict[str, Any]]
    arrived: threading.Event

    def do_GET(self) -> None:
        body = PAGE.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.results.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()
        self.arrived.set()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def run_once(*, bulk: int, messages: int) -> dict[str, float]:
    """One page load: {connect_ms, bulk_mib_s, messages_per_s}."""
    chrome = executable()
    if chrome is None:
        raise RuntimeError("chromium is not installed")

    class Handler(_Handler):
        results: list[dict[str, Any]] = []  # noqa: RUF012 - one class per run
        arrived = threading.Event()

    handler = Handler
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/?bulk={bulk}&messages={messages}"
    with tempfile.TemporaryDirectory(prefix="didlink-chromium-") as profile:
        proc = subprocess.Popen(
            [
                chrome,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                f"--user-data-dir={profile}",
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            if not handler.arrived.wait(TIMEOUT):
                raise RuntimeError("chromium gave no result in time")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            server.shutdown()
            server.server_close()
    result: dict[str, Any] = handler.results[0]
    if "error" in result:
        raise RuntimeError(f"chromium page failed: {result['error']}")
    return {key: float(value) for key, value in result.items()}


def measure(*, quick: bool, repeats: int = 3) -> dict[str, float]:
    """Median figures of `repeats` page loads, named for results.json's absolute section."""
    bulk, messages = (4 << 20, 2000) if quick else (64 << 20, 10000)
    runs = [run_once(bulk=bulk, messages=messages) for _ in range(1 if quick else repeats)]
    return {
        "chromium_connect_ms": round(statistics.median(r["connect_ms"] for r in runs), 1),
        "chromium_bulk_mib_s": round(statistics.median(r["bulk_mib_s"] for r in runs), 1),
        "chromium_messages_per_s": round(statistics.median(r["messages_per_s"] for r in runs)),
    }


if __name__ == "__main__":
    print(json.dumps(measure(quick=True)))
