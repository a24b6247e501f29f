"""Reach at first contact: the relays an invitation, card or response carries, and the response
that travels back by relay (issue 25 point 2; specs/invitation.md §2 key 10, §3; specs/mailbox.md
§13).

- `own_relays(settings)`: what a token of ours carries: the profile's first `MAX_REACH_RELAYS`
  relays that fit a token (≤ 200 bytes). None configured: nothing, and no third party is ever
  contacted.
- `reach_for(key, relays, context)`: the `reach` of an invitation of ours; its key is derived
  from the identity seed (messaging/alias.py `reach_secret`), never stored.
- `send_response(token, reach, expires)`: the invitee seals its response token's text in a
  NIP-59 gift wrap (a fresh key signs the seal, another the wrap; NIP-40 expiration = the
  invitation's expiry) to `reach.key` and publishes it to `reach.relays`.
- `ResponseListener`: the inviter listens on its reach relays for wraps to the reach key and
  hands each opened payload, as text, to the same checks as a pasted response
  (didlink/session/live.py).
  A wrap that does not open, or whose payload is not a token's text, is dropped and counted.

The Nostr parts (nostr-sdk, websockets) are imported only when relays are used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from identity.invitation import MAX_REACH_RELAYS, MAX_REACH_URL_BYTES, Invitation, Reach
from identity.keys import IdentityKey
from identity.token import MAX_TOKEN_CHARS
from messaging.alias import SECP256K1_ORDER, alias_public, reach_secret

if TYPE_CHECKING:
    from didlink.profile.settings import Settings
    from transport.nostr_relay import RelayPool, Subscription

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT = 5.0
"""Seconds the invitee waits for the inviter's relays to take its response (then the paste)."""
MAX_PENDING = 64
"""Opened relay responses waiting to be checked; more (a flood) are dropped."""
RESPONSE_SOURCE_RELAY = "relay"
RESPONSE_SOURCE_PASTE = "paste"


def own_relays(settings: Settings) -> tuple[str, ...]:
    """The relays a token of ours carries: the first configured ones that fit (≤ 4, ≤ 200
    bytes each); () without relays."""
    from didlink.mailbox import relays

    fitting = [url for url in relays.configured(settings) if len(url) <= MAX_REACH_URL_BYTES]
    return tuple(fitting[:MAX_REACH_RELAYS])


def reach_for(key: IdentityKey, relays: Sequence[str], *, context: bytes) -> Reach | None:
    """The reach of our invitation (`context`: its id, or b"card"); None without relays."""
    if not relays:
        return None
    return Reach(relays=tuple(relays), key=alias_public(reach_secret(key.seed, context)))


def _one_time_secret() -> bytes:
    """A fresh secp256k1 secret (the seal's signer: nothing about it is ours)."""
    while True:
        secret = os.urandom(32)
        if 0 < int.from_bytes(secret, "big") < SECP256K1_ORDER:
            return secret


async def send_response(
    token: str,
    invitation: Invitation,
    *,
    timeout: float,  # noqa: ASYNC109 - the relays' connect and publish timeouts
) -> tuple[str, ...]:
    """Publish `token` (our response's text) sealed to the invitation's reach; the relays that
    took it (() if none did, or the invitation has no reach, or it expired)."""
    reach = invitation.reach
    if reach is None or invitation.expires <= time.time():
        return ()
    from transport.errors import PublishFailed, TransportError
    from transport.nostr_envelope import seal_wrap
    from transport.nostr_relay import RelayLimits, RelayPool

    event = seal_wrap(
        token.encode("ascii"),
        sender_secret=_one_time_secret(),
        recipient=reach.key,
        expires_at=invitation.expires,
    )
    limits = RelayLimits(open_timeout=timeout, publish_timeout=timeout)
    try:
        async with RelayPool(list(reach.relays), limits=limits) as pool:
            result = await pool.publish(event)
    except (PublishFailed, TransportError, OSError) as exc:
        log.debug("the response was not published: %s", exc)
        return ()
    return result.accepted


class ResponseListener:
    """Wraps to our invitation's reach key on our relays, opened, as texts (`texts`).

    `async with ResponseListener(invitation, key) as listener:`; `texts` is an asyncio.Queue
    of response token texts still to be checked exactly as a pasted one.
    """

    def __init__(self, invitation: Invitation, key: IdentityKey) -> None:
        if invitation.reach is None:
            raise ValueError("the invitation has no reach")
        self._relays = list(invitation.reach.relays)
        self._secret = reach_secret(key.seed, invitation.id)
        self._key = invitation.reach.key
        from transport.nostr_envelope import MAX_CLOCK_SKEW, TIMESTAMP_TWEAK

        self._since = max(invitation.created - TIMESTAMP_TWEAK - MAX_CLOCK_SKEW, 0)
        self.texts: asyncio.Queue[str] = asyncio.Queue(MAX_PENDING)
        self.dropped = 0  # wraps that did not open, or held no token text
        self._pool: RelayPool | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ResponseListener:
        await self.start()
        return self

    async def start(self) -> None:
        """Connect to the relays (in the background) and subscribe: wraps stored since the
        invitation was made come too."""
        from transport.nostr_relay import RelayPool

        self._pool = RelayPool(self._relays)
        self._pool.start()
        sub = await self._pool.subscribe(recipients=[self._key], since=self._since)
        self._task = asyncio.create_task(self._read(sub))

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop listening (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                await pool.close()

    async def _read(self, sub: Subscription) -> None:
        from transport.errors import EnvelopeError
        from transport.nostr_envelope import open_wrap

        async for event in sub:
            try:
                opened = open_wrap(event, recipient_secret=self._secret, now=int(time.time()))
                text = opened.payload.decode("ascii")
            except (EnvelopeError, UnicodeDecodeError) as exc:
                log.debug("a wrap to the reach key was dropped: %s", exc)
                self.dropped += 1
                continue
            if len(text) > MAX_TOKEN_CHARS or not text.isprintable():
                self.dropped += 1
                continue
            try:
                self.texts.put_nowait(text)
            except asyncio.QueueFull:
                self.dropped += 1
