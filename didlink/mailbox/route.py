"""The mailbox route: texts and receipts to a contact through Nostr relays, and what arrived
(specs/mailbox.md §10). The asyncio adapter between the store (didlink/mailbox/store.py), the
persistent sessions (messaging/mailbox.py) and the relay pool (transport/nostr_relay.py).

- `post(peer, text)`: the text goes into the outbox (committed: never lost), then `flush`.
- `flush(peer)`: every outbox message of the contact without a live wrap gets one (a frame
  from the session, sealed, committed with the session's state before it leaves:
  didlink/mailbox/store.py), then every wrap not yet accepted by a relay is published to every relay
  of the contact's (`peer_relays`: the relays its token carried, specs/store.md version 7), or
  of ours when none is known. Receipts go the same way: to where the contact listens.
  A wrap published more than `RESEND_AFTER` ago without a receipt is made again (a new frame,
  the same `mid`), so a receiver whose receipt was lost answers again.
- `collect()`: one subscription on every relay for the alias keys of every contact's session
  and every epoch a live wrap may use; each wrap opened (transport/nostr_envelope.py), checked to
  come from that contact's alias, opened by the session (a replay or forgery fails the ratchet
  and changes nothing), kept (didlink/mailbox/store.py), and texts receipted by mailbox. It ends
  once every relay has sent what it stored (EOSE; `GRACE` after the first one), or at the timeout.
  The cursor (the start of the last fetch that a relay answered) bounds the next fetch.

Imported only by the commands that use relays: it loads nostr-sdk and websockets, never aiortc.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from didlink.errors import UserError
from didlink.mailbox.store import MailboxStore
from didlink.profile.outbox import Outbox, new_message_id
from messaging.alias import AliasPair, epoch_at, listening_epochs
from messaging.errors import CryptoFailure
from messaging.mailbox import (
    MAX_RECEIPT_MIDS,
    MailboxFrameError,
    MailboxItem,
    MailboxReceipt,
    MailboxRendezvous,
    MailboxSession,
    MailboxText,
    check_mailbox_text,
)
from transport.errors import EnvelopeError, TransportTimeout
from transport.nostr_envelope import (
    DEFAULT_EXPIRES_IN,
    MAX_CLOCK_SKEW,
    TIMESTAMP_TWEAK,
    OpenedWrap,
    expiration_of,
    open_wrap,
    recipient_of,
    seal_wrap,
)
from transport.nostr_event import NostrEvent, loads_strict, parse_event
from transport.nostr_relay import (
    PublishResult,
    PublishWindow,
    RelayLimits,
    RelayPool,
    Subscription,
)

if TYPE_CHECKING:
    from didlink.profile.settings import Settings

log = logging.getLogger(__name__)

CURSOR_SETTING = "mailbox.cursor"
PENDING_SETTING = "rendezvous.pending"
MAX_PENDING_PEERS = 8
"""Contacts whose latest rendezvous token is kept (a setting is at most 64 KiB)."""
RENEW_BEFORE = 3 * 24 * 3600
"""A text's wrap expiring sooner than this is made again before it is published again."""
RESEND_AFTER = 24 * 3600
"""A text published this long ago without a receipt is sent again (a new frame)."""
GRACE = 2.0
"""After the first relay's EOSE, how long the others may take to send what they stored."""
MAX_AGE = DEFAULT_EXPIRES_IN + TIMESTAMP_TWEAK
"""How far back a wrap still alive may be dated."""
WRAP_BATCH = 32
"""How many texts are sealed in one transaction of the session before they leave."""
RECEIVE_BATCH = 32
"""At most how many wraps already queued are opened and kept in one transaction."""


class NoSession(UserError):
    """The contact has no persistent session yet."""


class RestoredWaitsForContact(UserError):
    """The contact's session was restored from a backup and has no ratchet step of its own to
    take again: it can send once the contact has written (specs/backup.md "Restored
    sessions")."""


@dataclass
class Collected:
    """What one `collect` did."""

    texts: int = 0  # new texts kept in the inbox
    delivered: set[bytes] = field(default_factory=set)  # our mids confirmed by a receipt
    refused: int = 0  # wraps that did not open, or not from the alias they claimed
    duplicates: int = 0  # frames whose message key was spent (a copy, a replay)
    answered_by: frozenset[str] = frozenset()  # relays that sent everything they stored
    rendezvous: int = 0  # rendezvous items (offers, answers) opened (specs/rendezvous.md)
    listened: bool = False  # False: no contact has a session, nothing to fetch


def _mid_time(mid: bytes) -> int:
    """The seconds since the Unix epoch at which a `mid` was made (its first 6 bytes: ms)."""
    return int.from_bytes(mid[:6], "big") // 1000


class MailboxRoute:
    """The mailbox of one profile over its relays. `async with MailboxRoute(...) as route:`."""

    def __init__(
        self,
        box: MailboxStore,
        outbox: Outbox,
        settings: Settings,
        relays: list[str],
        *,
        limits: RelayLimits | None = None,
        clock: Callable[[], float] = time.time,
        expires_in: int = DEFAULT_EXPIRES_IN,
        peer_relays: Callable[[str], Sequence[str]] | None = None,
        on_relay_state: Callable[[str, bool], None] | None = None,
    ) -> None:
        if not relays:
            raise UserError("no relay is configured: add one with `didlink relays add wss://...`")
        self._box = box
        self._outbox = outbox
        self._settings = settings
        self._clock = clock
        self._expires_in = expires_in
        self._limits = limits
        self._pool = RelayPool(relays, limits=limits, clock=clock, on_state=on_relay_state)
        self._peer_relays = peer_relays
        self._peer_pools: dict[tuple[str, ...], RelayPool] = {}  # contacts' relay sets

    @property
    def pool(self) -> RelayPool:
        """The relay pool (the message requests' own subscription; the daemon adds and removes
        relays while it runs)."""
        return self._pool

    def since(self) -> int | None:
        """The `since` of the next fetch: the cursor, less a wrap's backdating and skew."""
        cursor = self._cursor()
        return None if cursor is None else max(cursor - TIMESTAMP_TWEAK - MAX_CLOCK_SKEW, 0)

    async def __aenter__(self) -> MailboxRoute:
        self._pool.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._pool.close()
        for pool in self._peer_pools.values():
            await pool.close()
        self._peer_pools.clear()

    def _sending_pool(self, peer: str) -> RelayPool:
        """The pool that reaches `peer`: its relays (one pool per set, started on first use),
        or ours when none is known."""
        urls = tuple(self._peer_relays(peer)) if self._peer_relays is not None else ()
        if not urls or set(urls) == set(self._pool.urls):
            return self._pool
        pool = self._peer_pools.get(urls)
        if pool is None:
            pool = RelayPool(urls, limits=self._limits, clock=self._clock)
            pool.start()
            self._peer_pools[urls] = pool
        return pool

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _session(self, peer: str) -> MailboxSession:
        session = self._box.session(peer)
        if session is None:
            raise NoSession(
                "no session with this contact yet: meet once live (didlink invite / accept, "
                "and confirm the SAS) and messages can then go by mailbox"
            )
        return session

    # -- sending ------------------------------------------------------------------------------

    async def post(self, peer: str, text: str) -> tuple[bytes, tuple[str, ...]]:
        """Queue `text` for `peer` and hand it to the relays: (its mid, the relays that took
        it; none: it stays in the outbox for the next `flush`)."""
        ((mid, accepted),) = await self.post_many(peer, [text])
        return mid, accepted

    async def post_many(
        self, peer: str, texts: Sequence[str]
    ) -> list[tuple[bytes, tuple[str, ...]]]:
        """`post` for a burst of texts: all of them in the outbox in one transaction, wrapped
        in batches of one transaction each, and published without waiting for each one's OKs
        (`flush`). (mid, the relays that took it) of each text, in order."""
        for text in texts:
            check_mailbox_text(text)  # ValueError before anything is written
        if not self._session(peer).can_send:  # NoSession before anything is written
            raise RestoredWaitsForContact(
                "this conversation was restored from a backup and can send only once the "
                "contact has written to you: run `didlink receive` after they have (or meet "
                "again live)"
            )
        # Receivers show texts in the order of their mids (time first, then random bits): a
        # burst made within one millisecond gets its fresh mids sorted, so they keep its order.
        mids = sorted(new_message_id() for _ in texts)
        for mid, text in zip(mids, texts, strict=True):
            self._outbox.add(peer, text, message_id=mid, deferred=True)
        self._outbox.flush()  # one transaction (deferred rows are written in the order added)
        accepted = await self.flush(peer)
        return [(mid, accepted.get(mid, ())) for mid in mids]

    def _wrap(self, peer: str, item: MailboxItem) -> None:
        """Seal `item` from the contact's session and keep its wrap (see `_wrap_batch`)."""
        self._wrap_batch(peer, [item])

    def _wrap_batch(self, peer: str, items: Sequence[MailboxItem]) -> list[NostrEvent]:
        """Seal `items` from the contact's session: the session read and written back under
        the store's write lock with the wraps, one transaction, before any of them leaves
        (didlink/mailbox/store.py)."""
        now = self._now()
        events = []
        with self._box.updating(peer, now=now) as session:
            pair = session.sending_aliases(epoch_at(self._clock()))
            for item in items:
                frame = session.seal(item)
                event = seal_wrap(
                    frame,
                    sender_secret=pair.from_secret,
                    recipient=pair.to_public,
                    expires_in=self._expires_in,
                )
                self._box.add_wrap(
                    peer,
                    event_id=bytes.fromhex(event.id),
                    event_json=event.to_json(),
                    expiration=expiration_of(event),
                    message_id=item.mid if isinstance(item, MailboxText) else None,
                    now=now,
                )
                events.append(event)
        return events

    async def flush(self, peer: str) -> dict[bytes, tuple[str, ...]]:
        """Publish what no relay took yet for `peer`, then wrap what waits and publish it
        (in batches of WRAP_BATCH, each committed before it leaves, published while the next
        is sealed); {mid: relays that accepted} for the texts published now. Publishing is
        pipelined (transport/nostr_relay.py `PublishWindow`); once a wrap is accepted by no
        relay, nothing more is sent: the rest wait for the next flush."""
        self._box.forget_delivered(peer)
        if not self._session(peer).can_send:  # restored: waits for the contact (post)
            return {}
        now = self._clock()
        accepted: dict[bytes, tuple[str, ...]] = {}
        published: list[tuple[bytes, bool]] = []  # (event id, a receipt's), not yet marked

        def answered(event_id: bytes, mid: bytes | None) -> Callable[[PublishResult], None]:
            def take(result: PublishResult) -> None:
                published.append((event_id, mid is None))
                if mid is not None:
                    accepted[mid] = result.accepted

            return take

        try:
            async with self._sending_pool(peer).window() as window:
                await self._publish_all(peer, window, answered, published, now)
        finally:
            self._mark_published(published)
        return accepted

    async def _publish_all(
        self,
        peer: str,
        window: PublishWindow,
        answered: Callable[[bytes, bytes | None], Callable[[PublishResult], None]],
        published: list[tuple[bytes, bool]],
        now: float,
    ) -> None:
        for wrap in self._box.wraps(peer, unpublished=True):
            event = parse_event(loads_strict(wrap.event_json), max_content_chars=100_000)
            if not await window.submit(event, answered(wrap.event_id, wrap.message_id)):
                return
        texts = self._box.unwrapped_texts(
            peer,
            expiring_before=int(now + RENEW_BEFORE),
            published_before=datetime.fromtimestamp(now - RESEND_AFTER, UTC),
        )
        for start in range(0, len(texts), WRAP_BATCH):
            batch = [
                MailboxText(mid=mid, at=_mid_time(mid), text=text)
                for mid, text in texts[start : start + WRAP_BATCH]
            ]
            self._mark_published(published)
            for item, event in zip(batch, self._wrap_batch(peer, batch), strict=True):
                if not await window.submit(event, answered(bytes.fromhex(event.id), item.mid)):
                    return
            await asyncio.sleep(0)  # the batch leaves while the next one is sealed

    def _mark_published(self, published: list[tuple[bytes, bool]]) -> None:
        """Note the wraps that a relay accepted (one transaction; a crash before it only means
        they are published again: relays and the receiver dedupe)."""
        if published:
            batch, published[:] = list(published), []
            self._box.mark_published_all(batch, now=self._now())

    async def flush_all(self) -> None:
        for peer in self._box.sessions():
            await self.flush(peer)

    async def publish_rendezvous(self, peer: str, token: str) -> tuple[str, ...]:
        """Seal a rendezvous item (an offer or an answer token, specs/rendezvous.md) from the
        contact's session and publish it now; the relays that accepted it. The session's new
        state is committed before it leaves; the wrap is not kept (a rendezvous that no relay
        took is not worth sending later: its token expires in minutes). PublishFailed if no
        relay took it."""
        self._session(peer)
        now = self._now()
        with self._box.updating(peer, now=now) as session:
            pair = session.sending_aliases(epoch_at(self._clock()))
            frame = session.seal(MailboxRendezvous(token=token))
        event = seal_wrap(  # (the same expiration as every wrap: indistinguishable by it)
            frame,
            sender_secret=pair.from_secret,
            recipient=pair.to_public,
            expires_in=self._expires_in,
        )
        result = await self._pool.publish(event)
        return result.accepted

    def keep_rendezvous(self, peer: str, token: str) -> None:
        """Keep a rendezvous token that a process not waiting for it opened (`receive`, or a
        chat for another contact): its ratchet key is spent, so the chat for `peer` started
        next finds it here instead (specs/rendezvous.md §1.1). One per contact, the latest;
        sealed setting `PENDING_SETTING`; at most `MAX_PENDING_PEERS` contacts, oldest first
        out."""
        pending = self._pending()
        pending.pop(peer, None)
        pending[peer] = token
        while len(pending) > MAX_PENDING_PEERS:
            pending.pop(next(iter(pending)))
        self._settings.put_sealed(PENDING_SETTING, json.dumps(pending).encode())

    def take_rendezvous(self, peer: str) -> str | None:
        """The rendezvous token kept for `peer` (`keep_rendezvous`), forgotten now."""
        pending = self._pending()
        token = pending.pop(peer, None)
        if token is not None:
            self._settings.put_sealed(PENDING_SETTING, json.dumps(pending).encode())
        return token

    def _pending(self) -> dict[str, str]:
        raw = self._settings.get_sealed(PENDING_SETTING)
        if raw is None:
            return {}
        try:
            value = json.loads(raw)
        except ValueError:
            return {}  # damaged: nothing pending (an offer is worth minutes)
        if not isinstance(value, dict):
            return {}
        return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}

    # -- receiving ----------------------------------------------------------------------------

    def _listening(self, sessions: dict[str, MailboxSession]) -> dict[bytes, tuple[str, AliasPair]]:
        cursor = self._cursor()
        now = self._clock()
        keys: dict[bytes, tuple[str, AliasPair]] = {}
        for peer, session in sessions.items():
            since = now - MAX_AGE if cursor is None else cursor - TIMESTAMP_TWEAK
            for epoch in listening_epochs(now, since=since, max_age=MAX_AGE):
                pair = session.receiving_aliases(epoch)
                keys[pair.to_public] = (peer, pair)
        return keys

    def _cursor(self) -> int | None:
        raw = self._settings.get(CURSOR_SETTING)
        if raw is None:
            return None
        try:
            return int(raw.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            return None  # a damaged cursor: fetch everything alive again (dedup holds)

    async def collect(
        self,
        *,
        timeout: float,  # noqa: ASYNC109 - a deadline for the whole fetch
        wait_for: bytes | None = None,
        until: Callable[[Collected], bool] | None = None,
        started: int | None = None,
        on_item: Callable[[str, MailboxItem, list[bytes]], None] | None = None,
    ) -> Collected:
        """Fetch what the relays hold for us (see the module docstring); with `wait_for`, also
        wait (up to `timeout`) for the receipt of that mid; with `until`, stay subscribed (up to
        `timeout`) until it is true of what was collected (an online receiver). `on_item(peer,
        item, new_mids)` is called for every item opened, once it is committed; a rendezvous
        item is handed to it only (without `on_item` it is kept for the next chat with that
        contact: `keep_rendezvous`)."""
        if wait_for is not None:
            mid = wait_for
            until = lambda done: mid in done.delivered  # noqa: E731
        done = Collected()
        sessions = self._box.sessions()
        if not sessions:
            return done
        done.listened = True
        started = int(self._clock()) if started is None else started  # (an earlier pass's)
        keys = self._listening(sessions)
        since = self.since()
        sub = await self._pool.subscribe(recipients=keys, since=since)
        receipts: dict[str, list[bytes]] = defaultdict(list)
        try:
            await self._read(sub, keys, receipts, done, timeout, until, on_item)
        finally:
            done.answered_by = sub.stored_from
            await sub.close()
        if done.answered_by:
            self._settings.put(CURSOR_SETTING, str(started).encode("ascii"))
        await self._send_receipts(receipts)
        return done

    async def _send_receipts(self, receipts: dict[str, list[bytes]]) -> None:
        """One receipt per contact for the mids kept (up to 256 each), wrapped and published."""
        for peer, mids in list(receipts.items()):
            unique = list(dict.fromkeys(mids))
            for start in range(0, len(unique), MAX_RECEIPT_MIDS):
                self._wrap(peer, MailboxReceipt(mids=unique[start : start + MAX_RECEIPT_MIDS]))
            del receipts[peer]
            await self.flush(peer)

    async def _read(
        self,
        sub: Subscription,
        keys: dict[bytes, tuple[str, AliasPair]],
        receipts: dict[str, list[bytes]],
        done: Collected,
        timeout: float,  # noqa: ASYNC109 - a deadline for the loop, not one await
        until: Callable[[Collected], bool] | None,
        on_item: Callable[[str, MailboxItem, list[bytes]], None] | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        first_stored: float | None = None
        relays = len(self._pool.urls)
        while True:
            now = loop.time()
            stored = sub.stored_from
            if stored and first_stored is None:
                first_stored = now
            all_stored = len(stored) >= relays or (
                first_stored is not None and now - first_stored >= GRACE
            )
            if now >= deadline or (until is not None and until(done)):
                return  # (with `until`, whatever the relays still hold waits for the next fetch)
            try:
                event = await sub.next(timeout=min(0.1 if all_stored else 0.5, deadline - now))
            except TransportTimeout:
                if all_stored and until is None:
                    return
                continue
            self._take([event, *sub.queued(RECEIVE_BATCH - 1)], keys, receipts, done, on_item)

    def _take(
        self,
        events: list[NostrEvent],
        keys: dict[bytes, tuple[str, AliasPair]],
        receipts: dict[str, list[bytes]],
        done: Collected,
        on_item: Callable[[str, MailboxItem, list[bytes]], None] | None = None,
    ) -> None:
        """Open `events` (those already queued: one transaction per run of one contact's)."""
        opened: list[tuple[str, OpenedWrap]] = []
        for event in events:
            found = keys.get(recipient_of(event))
            if found is None:  # (the pool hands up only wraps to our keys)
                done.refused += 1
                continue
            peer, pair = found
            try:
                wrap = open_wrap(event, recipient_secret=pair.to_secret, now=int(self._clock()))
            except EnvelopeError as exc:
                log.debug("wrap %s refused: %s", event.id, exc)
                done.refused += 1
                continue
            if wrap.sender != pair.from_public:  # sealed by someone else than this contact
                log.debug("wrap %s refused: not sealed by the contact's alias", event.id)
                done.refused += 1
                continue
            opened.append((peer, wrap))
        start = 0
        while start < len(opened):
            peer = opened[start][0]
            end = start
            while end < len(opened) and opened[end][0] == peer:
                end += 1
            self._keep(peer, [wrap for _peer, wrap in opened[start:end]], receipts, done, on_item)
            start = end

    def _keep(
        self,
        peer: str,
        wraps: list[OpenedWrap],
        receipts: dict[str, list[bytes]],
        done: Collected,
        on_item: Callable[[str, MailboxItem, list[bytes]], None] | None = None,
    ) -> None:
        """Open the frames of one contact's wraps with the session read under the write lock,
        and keep what they carried: one transaction (a frame that does not authenticate leaves
        the session unchanged and adds nothing, messaging/mailbox.py)."""
        kept: list[tuple[MailboxItem, list[bytes]]] = []
        with self._box.updating(peer, now=self._now()) as session:
            for wrap in wraps:
                try:
                    item = session.open(wrap.payload)
                except MailboxFrameError:  # authenticated but malformed: its key is spent
                    done.refused += 1
                    continue
                except CryptoFailure:  # a copy or replay (its key is spent), or forged
                    log.debug("wrap %s: the frame does not open (a copy, a replay)", wrap.wrap_id)
                    done.duplicates += 1
                    continue
                new = (
                    []
                    if isinstance(item, MailboxRendezvous)
                    else self._box.keep_item(peer, item, now=self._now())
                )
                kept.append((item, new))
        for item, new in kept:
            if on_item is not None:
                on_item(peer, item, new)
            if isinstance(item, MailboxRendezvous):
                done.rendezvous += 1
                if on_item is None:  # nobody here waits for it: the next chat for them will
                    self.keep_rendezvous(peer, item.token)
            elif isinstance(item, MailboxText):
                receipts[peer].append(item.mid)  # again for a duplicate: its receipt may be lost
                done.texts += len(new)
            else:
                done.delivered.update(new)

    # -- staying online (didlink/mailbox/daemon.py) ------------------------------------------------

    def listening_keys(self) -> dict[bytes, tuple[str, AliasPair]]:
        """The `to` keys to listen to now (§8), each with its contact and alias pair."""
        return self._listening(self._box.sessions())

    def mark_fetched(self, started: int) -> None:
        """A subscription opened at `started` was answered by a relay (EOSE): the cursor."""
        self._settings.put(CURSOR_SETTING, str(started).encode("ascii"))

    def take(
        self,
        event: NostrEvent,
        keys: dict[bytes, tuple[str, AliasPair]],
        receipts: dict[str, list[bytes]],
        done: Collected,
    ) -> None:
        """Open and keep one wrap as `collect` does (texts to receipt go into `receipts`)."""
        self._take([event], keys, receipts, done)

    async def send_receipts(self, receipts: dict[str, list[bytes]]) -> None:
        """Wrap and publish one receipt per contact for the mids in `receipts` (emptied): mids
        kept by another path (the daemon's live subscription, a message request's text)."""
        await self._send_receipts(receipts)
