"""Message requests: a first message to a contact known only from their card, and the requests
that arrive for us (issue 25 point 7; specs/first-message.md §5-§7, specs/store.md version 8).

Theory of operation
-------------------
Sending (Alice holds Bob's card, whose `reach` gave his relays and his request key; she has no
session with him): the text goes into the outbox (committed: never lost); then a REQUEST
(messaging/message_request.py: a one-way Noise_X first message, and the first frame of the
persistent session it sets up, carrying the text, Alice's label and her own reach) is sealed as
a gift wrap to Bob's request key, and ONE transaction writes the new session and the wrap beside
the outbox row, before the wrap leaves (commit-then-send, as didlink/mailbox/store.py). From then on
Alice has an ordinary persistent session with Bob: her next texts go by its alias keys.

Receiving (Bob): `receive` also listens on his request key (derived from his seed with
`reach_secret(seed, b"card")`, never stored). Each wrap to it is opened, the REQUEST read (size
and shape first, then the Noise_X message: the sender's DID is the key that wrote it), the frame
opened with the session it sets up, and ONE transaction: refuses a replay (the handshake hash was
seen) or a sender who already has a session (unless both sent each other a request at once:
then the request with the smaller handshake hash wins on both sides), or a new sender when
MAX_PENDING requests wait; otherwise adds the sender as an unverified contact whose label is only
a suggested name, marks it a pending request (until we answer it or remove it), keeps the
session, the sender's reach and the text (the mailbox inbox: it is shown once). Refused: nothing
changes.

Rows: `contact_reach` (in clear, as the contact's DID), `message_requests`, `first_messages` (the
handshake hashes, kept for the life of a wrap: FIRST_KEEP).
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from didlink.errors import UserError
from didlink.mailbox.relays import check_url
from didlink.mailbox.store import MailboxStore
from didlink.profile.outbox import Outbox
from didlink.profile.sealing import Sealer
from didlink.profile.store import DamagedStore, Store, as_suggestion
from identity.contact import Verification
from identity.did_key import ed25519_public_key
from identity.errors import IdentityError
from identity.invitation import MAX_REACH_RELAYS, MAX_REACH_URL_BYTES, Invitation, Reach
from identity.keys import IdentityKey, did_x25519_public
from messaging.alias import CARD_REACH_CONTEXT, SECP256K1_ORDER, alias_public, reach_secret
from messaging.errors import CryptoFailure, LocalProtocolError, RemoteProtocolError
from messaging.mailbox import MailboxText, SessionState
from messaging.message_request import OpenedRequest, RequestItem, read_request, write_request

if TYPE_CHECKING:
    from didlink.mailbox.route import MailboxRoute
    from didlink.profile.settings import Settings
    from transport.nostr_event import NostrEvent

log = logging.getLogger(__name__)

MAX_PENDING = 64
"""New senders waiting as requests (not answered, not removed): a request from one more new
sender is refused (it stays on the relays until it expires; `receive` after an answer or a
removal may take it)."""
MAX_PER_FETCH = 256
"""Request wraps read by one `receive` (each costs a NIP-44 decryption and two X25519)."""
FIRST_KEEP = 32 * 24 * 3600
"""Seconds a first message's handshake hash is kept: longer than a wrap lives (30 days, dated
up to two days back), after which no relay may hand the request over again."""
GRACE = 2.0


class NoReach(UserError):
    """The contact has no session and no card with reach: it cannot be messaged by relay."""


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REFUSED = "refused"


@dataclass(frozen=True)
class Taken:
    outcome: Outcome
    sender: str | None = None
    mid: bytes | None = None
    why: str = ""


@dataclass
class Requests:
    """What one fetch of requests did."""

    accepted: dict[str, list[bytes]] = field(default_factory=dict)  # sender: mids to receipt
    refused: int = 0
    duplicates: int = 0
    answered_by: frozenset[str] = frozenset()  # relays that sent everything they stored


@dataclass(frozen=True)
class ContactReach:
    """Where a contact can be reached by relay: its relays and its request key."""

    relays: tuple[str, ...]
    key: bytes


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="microseconds")


def _mid_time(mid: bytes) -> int:
    return int.from_bytes(mid[:6], "big") // 1000


def _fresh_secret() -> bytes:
    """A one-time secp256k1 secret: the seal of a request is signed by nobody we know."""
    while True:
        candidate = secrets.token_bytes(32)
        if 0 < int.from_bytes(candidate, "big") < SECP256K1_ORDER:
            return candidate


def checked_relays(urls: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """A reach's relays, each as `didlink relays add` accepts it (BadRelayUrl otherwise), 1..4."""
    if not 1 <= len(urls) <= MAX_REACH_RELAYS:
        raise UserError(f"a contact's reach has 1..{MAX_REACH_RELAYS} relays")
    out = []
    for url in urls:
        normal = check_url(url)
        if len(normal.encode("utf-8")) > MAX_REACH_URL_BYTES:
            raise UserError(f"a contact's relay URL is at most {MAX_REACH_URL_BYTES} bytes")
        out.append(normal)
    return tuple(dict.fromkeys(out))


def contact_reach(store: Store, peer: str) -> ContactReach | None:
    """Where `peer` can be reached by relay, if known (from its card, or its request)."""
    row = store.connection.execute(
        "SELECT relays, key FROM contact_reach WHERE peer_did = ?", (peer,)
    ).fetchone()
    if row is None:
        return None
    try:
        relays = json.loads(row[0])
        if not isinstance(relays, list) or not all(isinstance(u, str) for u in relays):
            raise ValueError("not a list of URLs")
        return ContactReach(relays=checked_relays(relays), key=bytes(row[1]))
    except (ValueError, UserError) as exc:
        raise DamagedStore("a contact's relays do not parse") from exc


def set_contact_reach(
    store: Store, peer: str, relays: tuple[str, ...], key: bytes, *, now: datetime
) -> None:
    """Keep where `peer` can be reached (its card's or its request's reach): one statement, in
    clear like the contact's DID (neither is a secret; `contacts remove` erases it)."""
    if len(key) != 32:
        raise LocalProtocolError("a reach key is 32 bytes")
    store.connection.execute(
        "INSERT INTO contact_reach (peer_did, updated_at, relays, key) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (peer_did) DO UPDATE SET updated_at = excluded.updated_at,"
        " relays = excluded.relays, key = excluded.key",
        (peer, _stamp(now), json.dumps(list(checked_relays(relays))), key),
    )


def pending_requests(store: Store) -> set[str]:
    """The senders of message requests not answered yet (no key needed)."""
    return {
        str(row[0]) for row in store.connection.execute("SELECT peer_did FROM message_requests")
    }


def keep_card_reach(store: Store, invitation: Invitation, *, now: datetime) -> None:
    """An accepted card's reach (if it has one) for its inviter: a message request can then go
    to them at once."""
    if invitation.reach is not None:
        set_contact_reach(
            store, invitation.inviter, invitation.reach.relays, invitation.reach.key, now=now
        )


class MessageRequests:
    """The message requests of one profile (its store, its unlocked identity)."""

    def __init__(self, store: Store, key: IdentityKey) -> None:
        self._store = store
        self._db = store.connection
        self._key = key
        self._sealer = Sealer(key)
        self._box = MailboxStore(store, self._sealer)
        self._secret: bytes | None = None

    @property
    def store(self) -> Store:
        return self._store

    # -- where contacts can be reached ---------------------------------------------------------

    def reach(self, peer: str) -> ContactReach | None:
        return contact_reach(self._store, peer)

    def set_reach(self, peer: str, relays: tuple[str, ...], key: bytes, *, now: datetime) -> None:
        set_contact_reach(self._store, peer, relays, key, now=now)

    # -- requests waiting for an answer --------------------------------------------------------

    def pending(self) -> set[str]:
        """The senders of requests not answered yet."""
        return pending_requests(self._store)

    def answered(self, peer: str) -> None:
        """We wrote to `peer`: its request (if any) is no longer pending."""
        self._db.execute("DELETE FROM message_requests WHERE peer_did = ?", (peer,))

    # -- our request key -----------------------------------------------------------------------

    @property
    def request_secret(self) -> bytes:
        if self._secret is None:
            self._secret = reach_secret(self._key.seed, CARD_REACH_CONTEXT)
        return self._secret

    @property
    def request_key(self) -> bytes:
        """Our request key (x-only): the `reach` key of every card we make."""
        return alias_public(self.request_secret)

    def own_reach(self, relays: list[str]) -> Reach | None:
        """What a request we send says about reaching us: our relays (the first four that fit)
        and our request key; None without relays."""
        fitting = [url for url in relays if len(url.encode("utf-8")) <= MAX_REACH_URL_BYTES]
        if not fitting:
            return None
        return Reach(relays=tuple(fitting[:MAX_REACH_RELAYS]), key=self.request_key)

    # -- sending -------------------------------------------------------------------------------

    def prepare(
        self,
        peer: str,
        text: str,
        *,
        label: str | None,
        own_relays: list[str],
        expires_in: int,
        now: datetime,
    ) -> bytes:
        """Queue `text` for `peer`, who has no session, as a message request: the outbox row,
        then the session and the request's wrap in one transaction (commit-then-send); its mid.
        If a session appeared meanwhile (another process), the text stays in the outbox for
        that session's next flush."""
        from transport.nostr_envelope import expiration_of, seal_wrap  # late: nostr-sdk

        if not own_relays:
            raise UserError(
                "no relay is configured, so no reply could come back: add one with"
                " `didlink relays add wss://...`"
            )
        reach = self.reach(peer)
        if reach is None:
            raise NoReach(
                "no session with this contact yet, and its card carries no relays: it cannot be"
                " messaged by relay (ask for a card made with relays, or meet live: didlink"
                " invite / accept)"
            )
        mid = Outbox(self._store, self._sealer).add(peer, text, now=now)
        item = RequestItem(
            mid=mid,
            at=_mid_time(mid),
            text=text,
            label=label,
            reach=self.own_reach(own_relays),
        )
        written = write_request(self._key, peer, item)
        event = seal_wrap(
            written.payload,
            sender_secret=_fresh_secret(),
            recipient=reach.key,
            expires_in=expires_in,
        )
        with self._store.transaction():
            if self._box.session(peer) is not None:
                return mid  # (nothing else written: the outbox row waits for that session)
            self._box.add_session(peer, written.state, now=now)
            self._keep_hash(written.state.handshake_hash, now)
            self._box.add_wrap(
                peer,
                event_id=bytes.fromhex(event.id),
                event_json=event.to_json(),
                expiration=expiration_of(event),
                message_id=mid,
                now=now,
            )
        return mid

    # -- receiving -----------------------------------------------------------------------------

    def _keep_hash(self, handshake_hash: bytes, now: datetime) -> None:
        stamp = int(now.timestamp())
        self._db.execute("DELETE FROM first_messages WHERE accepted_at < ?", (stamp - FIRST_KEEP,))
        self._db.execute(
            "INSERT OR IGNORE INTO first_messages (handshake_hash, accepted_at) VALUES (?, ?)",
            (handshake_hash, stamp),
        )

    def _seen_hash(self, handshake_hash: bytes) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM first_messages WHERE handshake_hash = ?", (handshake_hash,)
        ).fetchone()
        return row is not None

    def _gives_way(self, peer: str, incoming: bytes) -> bool | None:
        """A session with `peer` exists: None if it must stay (the request is refused); True
        if it is our own unanswered request and the incoming one wins (the smaller handshake
        hash: both sides choose the same), False if ours wins."""
        session = self._box.session(peer)
        assert session is not None
        state: SessionState = session.to_state()
        ours_unanswered = (
            state.initiator
            and self._seen_hash(state.handshake_hash)
            and state.ratchet.nr == 0
            and state.ratchet.dhr == did_x25519_public(peer)
        )
        if not ours_unanswered:
            return None
        return incoming < state.handshake_hash

    def take(self, payload: bytes, *, now: datetime) -> Taken:
        """Read one request's payload (the wrap already opened with our request key) and keep
        it, or refuse it (nothing changes)."""
        try:
            opened = read_request(self._key, payload)
        except (RemoteProtocolError, CryptoFailure, LocalProtocolError) as exc:
            return Taken(Outcome.REFUSED, why=f"not a valid request ({type(exc).__name__})")
        relays: tuple[str, ...] | None = None
        if opened.item.reach is not None:
            try:
                relays = checked_relays(opened.item.reach.relays)
            except UserError:
                return Taken(Outcome.REFUSED, why="the request's relays are not acceptable")
        return self._keep(opened, relays, now)

    def _keep(self, opened: OpenedRequest, relays: tuple[str, ...] | None, now: datetime) -> Taken:
        sender, item = opened.sender, opened.item
        with self._store.transaction():
            if self._seen_hash(opened.handshake_hash):
                return Taken(Outcome.DUPLICATE, sender=sender)
            replace = False
            if self._box.session(sender) is not None:
                wins = self._gives_way(sender, opened.handshake_hash)
                if not wins:
                    why = "ours wins" if wins is False else "the sender already has a session"
                    return Taken(Outcome.REFUSED, sender=sender, why=why)
                replace = True
            contact = self._store.get_contact(sender)
            if contact is not None and contact.verification is Verification.SUSPECT:
                return Taken(Outcome.REFUSED, sender=sender, why="the sender is marked suspect")
            if contact is None:
                waiting = self._db.execute("SELECT count(*) FROM message_requests").fetchone()
                if int(waiting[0]) >= MAX_PENDING:
                    return Taken(Outcome.REFUSED, sender=sender, why="too many pending requests")
                self._add_contact(sender, item.label, now)
            self._keep_hash(opened.handshake_hash, now)
            self._box.add_session(sender, opened.state, now=now, replace=replace)
            if relays is not None and item.reach is not None:
                self.set_reach(sender, relays, item.reach.key, now=now)
            self._box.keep_item(
                sender, MailboxText(mid=item.mid, at=item.at, text=item.text), now=now
            )
        return Taken(Outcome.ACCEPTED, sender=sender, mid=item.mid)

    def _add_contact(self, did: str, label: str | None, now: datetime) -> None:
        """A new sender: an unverified contact whose label is only a suggestion, and a pending
        request (inside `_keep`'s transaction)."""
        try:
            ed25519_public_key(did)
        except IdentityError as exc:  # (read_request checked it already)
            raise DamagedStore("a request's sender is not a DID") from exc
        stamp = _stamp(now)
        self._db.execute(
            "INSERT INTO contacts (did, name, suggested_name, verification, first_seen,"
            " last_seen) VALUES (?, NULL, ?, ?, ?, ?)",
            (did, as_suggestion(label), Verification.UNVERIFIED.value, stamp, stamp),
        )
        self._db.execute(
            "INSERT OR IGNORE INTO message_requests (peer_did, arrived_at) VALUES (?, ?)",
            (did, stamp),
        )

    async def collect(
        self,
        route: MailboxRoute,
        *,
        since: int | None,
        timeout: float,  # noqa: ASYNC109 - a deadline for the whole fetch
    ) -> Requests:
        """Fetch the wraps to our request key from the route's relays and take each (at most
        MAX_PER_FETCH), until every relay sent what it stored (GRACE after the first) or
        `timeout`."""
        from transport.errors import TransportTimeout

        done = Requests()
        sub = await route.pool.subscribe(recipients=[self.request_key], since=since)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        first_stored: float | None = None
        relays = len(route.pool.urls)
        taken = 0
        try:
            while taken < MAX_PER_FETCH:
                now = loop.time()
                stored = sub.stored_from
                if stored and first_stored is None:
                    first_stored = now
                all_stored = len(stored) >= relays or (
                    first_stored is not None and now - first_stored >= GRACE
                )
                if now >= deadline:
                    break
                try:
                    event: NostrEvent = await sub.next(
                        timeout=min(0.1 if all_stored else 0.5, deadline - now)
                    )
                except TransportTimeout:
                    if all_stored:
                        break
                    continue
                taken += 1
                self.take_wrap(event, done)
        finally:
            done.answered_by = sub.stored_from
            await sub.close()
        return done

    def take_wrap(self, event: NostrEvent, done: Requests) -> None:
        """Open one wrap to our request key and take the request in it (`take`), counted in
        `done` (the mids to receipt by sender, refusals, copies)."""
        from transport.errors import EnvelopeError
        from transport.nostr_envelope import open_wrap

        try:
            opened = open_wrap(event, recipient_secret=self.request_secret, now=int(time.time()))
        except EnvelopeError as exc:
            log.debug("request wrap %s refused: %s", event.id, exc)
            done.refused += 1
            return
        result = self.take(opened.payload, now=datetime.now(UTC))
        if result.outcome is Outcome.ACCEPTED:
            assert result.sender is not None and result.mid is not None
            done.accepted.setdefault(result.sender, []).append(result.mid)
        elif result.outcome is Outcome.DUPLICATE:
            done.duplicates += 1
        else:
            log.debug("request wrap %s refused: %s", event.id, result.why)
            done.refused += 1


class RequestHandler:
    """Message requests for a running daemon (didlink/mailbox/daemon.py `WrapHandler`): each
    wrap to our request key is taken as `receive` takes it, and its receipt goes out at once;
    the text waits in the inbox, shown with the rest (marked a request)."""

    def __init__(self, requests: MessageRequests, route: MailboxRoute) -> None:
        self._requests = requests
        self._route = route

    def recipients(self) -> tuple[bytes, ...]:
        return (self._requests.request_key,)

    async def handle(self, event: NostrEvent) -> None:
        done = Requests()
        self._requests.take_wrap(event, done)
        if done.accepted:
            await self._route.send_receipts(dict(done.accepted))


def mailbox_relays(store: Store, peer: str) -> list[str]:
    """Where `peer` reads its mailbox: the relays its token or response carried (the store's
    `contact_relays`), else those of its card or its request (`contact_reach`), else none (the
    route then uses ours)."""
    known = store.contact_relays(peer)
    if known:
        return known
    reach = contact_reach(store, peer)
    return list(reach.relays) if reach is not None else []


async def send_request(
    requests: MessageRequests,
    box: MailboxStore,
    outbox: Outbox,
    settings: Settings,
    peer: str,
    text: str,
    *,
    label: str | None,
) -> tuple[bytes, tuple[str, ...]]:
    """`text` to `peer` (no session yet) as a message request: prepared (committed), then
    published to the contact's relays; (its mid, the relays that took it)."""
    from didlink.mailbox import relays
    from didlink.mailbox.route import MailboxRoute
    from transport.nostr_envelope import DEFAULT_EXPIRES_IN

    own = relays.configured(settings)
    mid = requests.prepare(
        peer,
        text,
        label=label,
        own_relays=own,
        expires_in=DEFAULT_EXPIRES_IN,
        now=datetime.now(UTC),
    )
    urls = mailbox_relays(requests.store, peer) or own  # the card's (or its token's) relays
    async with MailboxRoute(box, outbox, settings, urls) as route:
        accepted = await route.flush(peer)
    return mid, accepted.get(mid, ())


async def receive_requests(
    requests: MessageRequests,
    route: MailboxRoute,
    *,
    timeout: float,  # noqa: ASYNC109 - a deadline for the fetch
) -> tuple[Requests, int]:
    """The requests pass of a `receive` (before the sessions' pass, which then also listens on
    the sessions the requests set up): (what it did, the time it started: the next cursor)."""
    started = int(time.time())
    done = await requests.collect(route, since=route.since(), timeout=timeout)
    if done.accepted:
        await route.send_receipts(dict(done.accepted))  # (a copy: it is emptied)
    return done, started
