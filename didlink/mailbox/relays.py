"""The profile's Nostr relays (`didlink relays`): kept in the `settings` table as one clear row
named `relays`, a JSON array of URLs in the order they were added (specs/mailbox.md §11).

None by default: with no relay configured nothing contacts a third party. A relay URL is what
the user typed, checked and normalised before it is stored by the rules of
identity/relay_url.py (the same rules an invitation's `reach` follows).

At most `MAX_RELAYS` relays.
"""

from __future__ import annotations

import json

from didlink.errors import UserError
from didlink.profile.settings import Settings
from identity import relay_url

SETTING = "relays"
MAX_RELAYS = 16
MAX_URL = relay_url.MAX_URL


class BadRelayUrl(UserError):
    """Not a relay URL didlink accepts."""


def check_url(text: str) -> str:
    """The normalised relay URL of `text`; BadRelayUrl (one line, nothing of it raw) otherwise."""
    try:
        return relay_url.normalised(text)
    except ValueError as exc:
        raise BadRelayUrl(str(exc)) from None


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
