"""Nostr relay URLs as didlink accepts them: what `didlink relays add` stores and what an
invitation's `reach` may carry (specs/mailbox.md §11, specs/invitation.md §2 key 10).

Sans-IO: only parsing. `normalised(text)` is the one spelling of a relay URL, or ValueError
with one sentence that quotes nothing of the input:

- `wss://HOST[:PORT][/PATH]`, or `ws://` only when the host is a loopback address
  (127.0.0.0/8, ::1, `localhost`): a local relay for tests and the demo; a plain-text websocket
  to anywhere else would show every wrap and our alias keys to the path;
- ASCII, printable, at most `MAX_URL` characters, no user:password, no query or fragment, a
  host that is a DNS name or an IP address, a port in 1..65535;
- normalised: scheme and host lower-cased, a lone `/` path dropped, so one relay is one entry.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import urlsplit

MAX_URL: Final = 256
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.split(".")
    return len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


def normalised(text: str) -> str:
    """The normalised relay URL of `text`; ValueError (one line, nothing of it raw) otherwise."""
    if not text or len(text) > MAX_URL or not text.isascii() or not text.isprintable():
        raise ValueError(
            f"a relay URL is 1..{MAX_URL} printable ASCII characters (wss://host[:port][/path])"
        )
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError("not a relay URL (wss://host[:port][/path])") from exc
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("wss", "ws") or not host:
        raise ValueError("a relay URL starts with wss:// and names a host")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ValueError("a relay URL has no user, password, query or fragment")
    if not _valid_host(host) or (port is not None and not 1 <= port <= 65535):
        raise ValueError("a relay URL's host or port is not valid")
    if scheme == "ws" and not _loopback(host):
        raise ValueError(
            "ws:// (no TLS) is refused except on this machine (127.0.0.1, ::1, localhost): "
            "use wss://"
        )
    shown_host = f"[{host}]" if ":" in host else host
    path = "" if parts.path in ("", "/") else parts.path
    if any(c in path for c in " \"'<>\\^`{|}"):
        raise ValueError("a relay URL's path has characters a URL may not hold")
    return f"{scheme}://{shown_host}{'' if port is None else f':{port}'}{path}"
