"""The profile's Nostr relays (`didlink relays`): kept in the `settings` table as one clear row
named `relays`, a JSON array of URLs in the order they were added (specs/mailbox.md §11).

None by default: with no relay configured nothing contacts a third party. A relay URL is what
the user typed, checked before it is stored:

- `wss://HOST[:PORT][/PATH]`, or `ws://` only when the host is a loopback address
  (127.0.0.0/8, ::1, `localhost`): a local relay for tests and the demo; a plain-text websocket
  to anywhere else would show every wrap and our alias keys to the path;
- ASCII, printable, at most 256 characters, no user:password, no query or fragment, a host that
  is a DNS name or an IP address, a port in 1..65535;
- normalised: scheme and host lower-cased, a lone `/` path dropped, so one relay is one entry.

At most `MAX_RELAYS` relays.
"""

from __future__ import annotations

import ipaddress
import json
import re
from urllib.parse import urlsplit

from didlink.errors import UserError
from didlink.settings import Settings

SETTING = "relays"
MAX_RELAYS = 16
MAX_URL = 256
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


class BadRelayUrl(UserError):
    """Not a relay URL didlink accepts."""


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


def check_url(text: str) -> str:
    """The normalised relay URL of `text`; BadRelayUrl (one line, nothing of it raw) otherwise."""
    if not text or len(text) > MAX_URL or not text.isascii() or not text.isprintable():
        raise BadRelayUrl(
            f"a relay URL is 1..{MAX_URL} printable ASCII characters (wss://host[:port][/path])"
        )
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError as exc:
        raise BadRelayUrl("not a relay URL (wss://host[:port][/path])") from exc
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("wss", "ws") or not host:
        raise BadRelayUrl("a relay URL starts with wss:// and names a host")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise BadRelayUrl("a relay URL has no user, password, query or fragment")
    if not _valid_host(host) or (port is not None and not 1 <= port <= 65535):
        raise BadRelayUrl("a relay URL's host or port is not valid")
    if scheme == "ws" and not _loopback(host):
        raise BadRelayUrl(
            "ws:// (no TLS) is refused except on this machine (127.0.0.1, ::1, localhost): "
            "use wss://"
        )
    shown_host = f"[{host}]" if ":" in host else host
    path = "" if parts.path in ("", "/") else parts.path
    if any(c in path for c in " \"'<>\\^`{|}"):
        raise BadRelayUrl("a relay URL's path has characters a URL may not hold")
    return f"{scheme}://{shown_host}{'' if port is None else f':{port}'}{path}"


def configured(settings: Settings) -> list[str]:
    """The relays, in the order added (none: an empty list)."""
    raw = settings.get(SETTING)
    if raw is None:
        return []
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError("the stored relay list is damaged: set it again with `relays add`") from exc
    if not isinstance(value, list) or not all(isinstance(url, str) for url in value):
        raise UserError("the stored relay list is damaged: set it again with `relays add`")
    return [check_url(url) for url in value][:MAX_RELAYS]


def add(settings: Settings, urls: list[str]) -> list[str]:
    """Add `urls` (checked, deduplicated); the new list. Nothing is stored if one is refused."""
    current = configured(settings)
    for url in (check_url(text) for text in urls):
        if url not in current:
            current.append(url)
    if len(current) > MAX_RELAYS:
        raise UserError(f"at most {MAX_RELAYS} relays")
    settings.put(SETTING, json.dumps(current).encode())
    return current


def remove(settings: Settings, url: str) -> list[str]:
    """Remove `url`; UserError if it is not configured. The new list."""
    current = configured(settings)
    normal = check_url(url)
    if normal not in current:
        raise UserError("that relay is not configured (see `didlink relays`)")
    current.remove(normal)
    if current:
        settings.put(SETTING, json.dumps(current).encode())
    else:
        settings.delete(SETTING)
    return current
