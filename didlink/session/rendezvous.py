"""Rendezvous: `didlink chat CONTACT` connects with no token pasted, the offer and the answer
sealed through the relays (specs/rendezvous.md; issue 25 point 5).

Theory of operation
-------------------
An offer is the reconnect invitation token `chat` used to print (identity/invitation.py, kind
RECONNECT, a compact WebRTC offer inside, lifetime `OFFER_LIFETIME`); an answer is the response
token `accept` used to print. Each travels as one mailbox item `{"t": "rendezvous", "token"}`
inside a frame of the contact's persistent session (messaging/mailbox.py), in a gift wrap to the
session's pairwise alias key like any mailbox text (didlink/mailbox/route.py
`publish_rendezvous`): a relay sees one more wrap, never a DID. The receiver verifies the token
exactly as a pasted one (`verify_invitation` / `verify_response`, single use, a reconnect only
from this contact); a replayed wrap does not even open (its ratchet key is spent).

`chat CONTACT`: publish our offer; wait up to `wait` seconds (DIDLINK_RENDEZVOUS_TIMEOUT) for an
answer. Both may offer at once (both ran `chat` for each other): while our offer is alive, the
offer of the smaller DID wins; the other side closes its own offer and answers that one, so
exactly one connection forms. No answer in time: the chat says the contact is not online (event
`offline`), texts typed go by mailbox as they are typed, mailbox texts from the contact are
shown as they arrive, and an offer from the contact that comes later is answered (a late answer
to our own offer, while its token is valid, still connects too). Connected: the node's session
runs as for a pasted reconnect (Noise KK, no SAS for a verified contact).

The listener (`Listener`) is one subscription round after another (`ROUND` seconds each:
receipts for the texts it kept go back at the end of each) on the profile's relays.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from didlink.errors import UserError
from didlink.profile.store import Store, StoreError
from didlink.session.node import Node, Outcome, PhaseTimeout, QuitRequested, SessionEnded
from identity.errors import AlreadyUsed, IdentityError
from identity.invitation import Invitation, InvitationKind, Response
from identity.keys import IdentityKey
from identity.token import decode_token, encode_token
from identity.validity import CLOCK_SKEW
from messaging.mailbox import MailboxItem, MailboxReceipt, MailboxRendezvous, MailboxText
from transport import CompactOffer, CompactOfferError, IceConfig, Peer, Role
from transport.errors import PublishFailed, TransportError

if TYPE_CHECKING:
    from didlink.mailbox.route import MailboxRoute
    from didlink.mailbox.store import MailboxStore
    from identity.contact import Contact

WAIT_ENV = "DIDLINK_RENDEZVOUS_TIMEOUT"
DEFAULT_WAIT = 12.0
"""Seconds `chat` waits for an answer before it says the contact is not online."""
OFFER_LIFETIME = 120
"""Seconds an offer's token is valid (its signed `expires`); an answer must come within it."""
ROUND = 5.0
"""Seconds of one subscription round of the listener."""
MAX_PENDING = 16
"""Rendezvous tokens waiting to be looked at; more are dropped (a flooding contact)."""


def wait_from_env() -> float:
    """DIDLINK_RENDEZVOUS_TIMEOUT (seconds, 0 < s <= 3600), else `DEFAULT_WAIT`."""
    from didlink.session.outcome import seconds_from_env

    return seconds_from_env(WAIT_ENV, DEFAULT_WAIT, most=3600)


def offer_wins(own_did: str, peer_did: str) -> bool:
    """Both offered: ours wins (the contact answers it) iff our DID sorts first."""
    return own_did < peer_did


def _now() -> int:
    return int(time.time())


# --- the listener ----------------------------------------------------------------------------


class Listener:
    """The relays, for one contact, while a chat waits: rendezvous tokens into a queue, mailbox
    texts and receipts to the callbacks (once each; they leave the inbox when shown)."""

    def __init__(
        self,
        route: MailboxRoute,
        box: MailboxStore,
        peer: str,
        *,
        on_text: Callable[[MailboxText], None] | None = None,
        on_delivered: Callable[[bytes], None] | None = None,
    ) -> None:
        self._route = route
        self._box = box
        self._peer = peer
        self._on_text = on_text
        self._on_delivered = on_delivered
        self._tokens: asyncio.Queue[str] = asyncio.Queue(MAX_PENDING)
        self._stop = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop now: the round in progress is cancelled (what it kept is committed; a receipt
        it had not published yet is stored and leaves with the next flush)."""
        self._stop = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def next(self) -> str:
        """The next rendezvous token from the contact (not verified yet)."""
        return await self._tokens.get()

    async def _run(self) -> None:
        while not self._stop:
            self._take_kept()
            try:
                await self._route.collect(
                    timeout=ROUND, until=lambda _done: self._stop, on_item=self._on_item
                )
            except (TransportError, StoreError, UserError):  # a relay or the store: try again
                await asyncio.sleep(1.0)

    def _take_kept(self) -> None:
        """A token that another process opened for us meanwhile (`receive`), if still valid."""
        try:
            token = self._route.take_rendezvous(self._peer)
        except (StoreError, ValueError):
            return
        if token is None:
            return
        try:
            decoded = decode_token(token)
        except IdentityError:
            return
        # an offer: its own expiry; an answer: the offer it answers lived OFFER_LIFETIME
        if isinstance(decoded, Invitation):
            valid_until = decoded.expires + CLOCK_SKEW
        else:
            valid_until = decoded.created + OFFER_LIFETIME + CLOCK_SKEW
        if valid_until < _now():
            return  # expired long ago: dropped quietly
        with contextlib.suppress(asyncio.QueueFull):
            self._tokens.put_nowait(token)

    def _on_item(self, peer: str, item: MailboxItem, new: list[bytes]) -> None:
        if peer != self._peer:
            if isinstance(item, MailboxRendezvous):  # for the next chat with that contact
                with contextlib.suppress(StoreError, ValueError):
                    self._route.keep_rendezvous(peer, item.token)
            return  # another contact's text stays in the inbox for `receive`
        if isinstance(item, MailboxRendezvous):
            with contextlib.suppress(asyncio.QueueFull):
                self._tokens.put_nowait(item.token)
        elif isinstance(item, MailboxText) and new:
            if self._on_text is not None:
                self._on_text(item)
            self._forget_shown(new)
        elif isinstance(item, MailboxReceipt):
            for mid in new:
                if self._on_delivered is not None:
                    self._on_delivered(mid)
            self._forget_shown(new)

    def _forget_shown(self, mids: list[bytes]) -> None:
        shown = set(mids)
        self._box.forget_shown(
            [e.seq for e in self._box.inbox() if e.peer_did == self._peer and e.message_id in shown]
        )


# --- verifying what came --------------------------------------------------------------------


def check_offer(
    token: str, *, store: Store, own_did: str, contact: str
) -> tuple[Invitation, CompactOffer]:
    """A rendezvous offer from `contact`, verified as a pasted reconnect token would be (not
    claimed yet). IdentityError / UserError / CompactOfferError if it is not one."""
    from didlink.session.live import check_live_invitation

    decoded = decode_token(token)
    if isinstance(decoded, Response) or decoded.kind is not InvitationKind.RECONNECT:
        raise UserError("a rendezvous offer is a reconnect invitation")
    if decoded.inviter != contact:
        raise UserError("the rendezvous offer is not from this contact")
    check_live_invitation(decoded, store=store, own_did=own_did)
    return decoded, CompactOffer.from_cbor(decoded.connect)


# --- the flows -------------------------------------------------------------------------------


@dataclass
class Rendezvous:
    """What a rendezvous needs beyond the node: the contact, the relays, the ICE settings."""

    key: IdentityKey
    contact: str
    route: MailboxRoute
    box: MailboxStore
    ice: IceConfig
    wait: float = DEFAULT_WAIT
    name: str | None = None
    """The contact's name (for the `offline` wording), if it has one."""
    offline_mode: bool = True
    """No answer in time: go on by mailbox (`chat`); False: end with `closed` "offline"."""


@dataclass
class _Opened:
    peer: Peer
    initiator: bool
    invitation_id: bytes


OFFLINE = "offline"
"""The `closed` reason of `Agent.connect` when the contact did not answer in time (exit 0)."""


async def run_chat(node: Node, offer_peer: Peer, rdv: Rendezvous) -> Outcome:
    """`chat CONTACT` over relays: offer, wait, connect (see the module docstring)."""
    node.bind_peer(rdv.contact)  # messages typed from now on are kept in the outbox
    listener = Listener(
        rdv.route,
        rdv.box,
        rdv.contact,
        on_text=lambda text: node.emit(
            "message", **{"from": rdv.contact}, id=text.mid.hex(), text=text.text, via="mailbox"
        ),
        on_delivered=lambda mid: node.emit("delivered", id=mid.hex(), via="mailbox"),
    )
    await rdv.route.__aenter__()
    listener.start()
    try:
        opened = await _meet(node, offer_peer, rdv, listener)
    except (QuitRequested, SessionEnded, PhaseTimeout, TransportError, StoreError, _Offline) as exc:
        from didlink.session.live import _before_session

        node.on_queued = None
        await _let_go(listener, rdv.route)
        if isinstance(exc, _Offline):
            await offer_peer.close()
            node.release()
            node.emit("closed", reason=OFFLINE)
            return Outcome(OFFLINE, 0)
        return await _before_session(node, offer_peer, exc)
    node.on_queued = None
    # The listener and the relays are let go of while the session starts, not before it: the
    # handshake does not wait for a subscription round to end.
    extra = None if opened.peer is offer_peer else offer_peer
    letting_go = asyncio.create_task(_let_go(listener, rdv.route, extra))
    try:
        return await node.run_session(
            opened.peer,
            initiator=opened.initiator,
            peer_did=rdv.contact,
            invitation_id=opened.invitation_id,
            suggested_name=None,
            reconnect=True,
        )
    finally:
        await letting_go


async def _let_go(listener: Listener, route: MailboxRoute, peer: Peer | None = None) -> None:
    """Stop the listener, close the relay connections (and an offer no longer needed)."""
    await listener.stop()
    with contextlib.suppress(Exception):
        await route.__aexit__(None, None, None)
    if peer is not None:
        await peer.close()


async def run_answer(
    node: Node, rdv: Rendezvous, invitation: Invitation, offer: CompactOffer
) -> Outcome:
    """Answer a verified offer (`Agent.answer_rendezvous`: a listening side, the daemon) and
    run the session."""
    from didlink.session.live import _before_session

    node.bind_peer(rdv.contact)
    peer = _answering_peer(node, rdv)
    try:
        async with rdv.route:
            opened = await answer_offer(node, rdv, invitation, offer, peer=peer)
    except (QuitRequested, SessionEnded, PhaseTimeout, TransportError, StoreError) as exc:
        return await _before_session(node, peer, exc)
    return await node.run_session(
        opened.peer,
        initiator=False,
        peer_did=rdv.contact,
        invitation_id=opened.invitation_id,
        suggested_name=None,
        reconnect=True,
    )


def _answering_peer(node: Node, rdv: Rendezvous) -> Peer:
    from didlink.words.ice import turn_warning

    return Peer(
        role=Role.ANSWERER, ice=rdv.ice, on_turn_problem=lambda e: node.error(turn_warning(e))
    )


class _Offline(Exception):
    """(Agent.connect) no answer in time."""


async def _meet(node: Node, offer_peer: Peer, rdv: Rendezvous, listener: Listener) -> _Opened:
    offer = await node.wait(
        offer_peer.create_offer(), node.timeouts.connect, "gathering network addresses"
    )
    invitation = Invitation.create(
        rdv.key,
        now=_now(),
        lifetime=OFFER_LIFETIME,
        label=None,
        kind=InvitationKind.RECONNECT,
        connect=offer.to_cbor(),
    )
    ours_alive = True
    try:
        await rdv.route.publish_rendezvous(rdv.contact, encode_token(invitation))
    except PublishFailed:
        ours_alive = False  # no relay took it: only the contact's offer can connect us
    node.mark("token")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + rdv.wait
    offline = False
    while True:
        if ours_alive and time.time() > invitation.expires:
            ours_alive = False
        limits = [] if offline else [max(deadline - loop.time(), 0.0)]
        if ours_alive:  # wake up when it dies too: the tie-break changes then
            limits.append(max(invitation.expires - time.time(), 0.0) + 0.1)
        try:
            token = await node.wait(
                listener.next(), min(limits) if limits else None, "waiting for the contact"
            )
        except PhaseTimeout:
            if not offline and loop.time() >= deadline:
                if not rdv.offline_mode:
                    raise _Offline() from None
                offline = True
                _go_offline(node, rdv)
            continue
        try:
            decoded = decode_token(token)
        except IdentityError as exc:
            node.error(f"rendezvous refused: {exc}")
            continue
        if isinstance(decoded, Response):
            if not ours_alive:
                node.error("rendezvous refused: an answer to an offer that is no longer valid")
                continue
            from didlink.session.live import _checked_response

            try:
                response, answer = _checked_response(token, invitation, rdv.contact)
            except (IdentityError, TransportError) as exc:
                node.error(f"rendezvous refused: {exc}")
                continue
            if not node.store().mark_invitation_used(invitation.id, now=datetime.now(UTC)):
                node.error("rendezvous refused: our offer was answered already")
                continue
            del response
            return await _connect_offer(node, offer_peer, rdv, invitation, offer, answer)
        try:
            their, their_offer = check_offer(
                token, store=node.store(), own_did=rdv.key.did, contact=rdv.contact
            )
        except (IdentityError, UserError, CompactOfferError) as exc:
            node.error(f"rendezvous refused: {exc}")
            continue
        if ours_alive and offer_wins(rdv.key.did, rdv.contact):
            continue  # both offered: ours wins, the contact answers it
        try:
            return await answer_offer(node, rdv, their, their_offer)
        except AlreadyUsed as exc:  # taken meanwhile (by another process of ours)
            node.error(f"rendezvous refused: {exc}")


async def _connect_offer(
    node: Node,
    peer: Peer,
    rdv: Rendezvous,
    invitation: Invitation,
    offer: CompactOffer,
    answer: CompactOffer,
) -> _Opened:
    """Our offer was answered: apply the answer; returns once the channel is open."""
    from didlink.session.live import _while_opening

    node.mark("response")
    await peer.accept_answer(answer)

    def bookkeeping() -> None:
        node.prepare_handshake(
            initiator=True,
            peer_did=rdv.contact,
            invitation_id=invitation.id,
            local_fingerprint=offer.fingerprint_hex,
            peer_fingerprint=answer.fingerprint_hex,
        )

    await _while_opening(node, peer, bookkeeping)
    node.mark("open")
    return _Opened(peer=peer, initiator=True, invitation_id=invitation.id)


async def answer_offer(
    node: Node,
    rdv: Rendezvous,
    invitation: Invitation,
    offer: CompactOffer,
    *,
    peer: Peer | None = None,
) -> _Opened:
    """Answer a verified offer: claim it (single use), an answering peer, the response token
    sealed back through the relays; returns once the channel is open."""
    from didlink.session.live import claim_invitation

    claim_invitation(invitation, store=node.store())
    peer = peer or _answering_peer(node, rdv)
    try:
        answer = await node.wait(
            peer.accept_offer(offer), node.timeouts.connect, "preparing the answer"
        )
        node.prepare_handshake(
            initiator=False,
            peer_did=rdv.contact,
            invitation_id=invitation.id,
            local_fingerprint=answer.fingerprint_hex,
            peer_fingerprint=offer.fingerprint_hex,
        )
        response = Response.create(
            rdv.key, invitation=invitation, now=_now(), connect=answer.to_cbor(), label=None
        )
        await rdv.route.publish_rendezvous(rdv.contact, encode_token(response))
        node.mark("response")
        await node.wait(peer.wait_open(node.timeouts.connect), None, "connecting")
        node.mark("open")
    except BaseException:
        await peer.close()
        raise
    return _Opened(peer=peer, initiator=False, invitation_id=invitation.id)


def _go_offline(node: Node, rdv: Rendezvous) -> None:
    """No answer in time: say so; from now on texts typed go by mailbox as they are typed."""
    node.emit("offline", peer=rdv.contact, name=rdv.name, via="mailbox")
    flushing: set[asyncio.Task[None]] = set()

    async def flush() -> None:
        await asyncio.sleep(0)  # after the end of the loop turn: the outbox rows are written
        try:
            accepted = await rdv.route.flush(rdv.contact)
        except (TransportError, StoreError, UserError) as exc:
            node.error(f"the mailbox could not take the message now: {exc}")
            return
        for mid, relays in accepted.items():
            if relays:
                node.mailbox_sent(mid)

    def queued() -> None:
        task = asyncio.create_task(flush())
        flushing.add(task)
        task.add_done_callback(flushing.discard)

    node.on_queued = queued
    queued()  # what was typed before now goes too


# --- preparing one ---------------------------------------------------------------------------


def prepare(
    key: IdentityKey,
    store: Store,
    ice: IceConfig,
    *,
    contact: Contact,
    wait: float,
    offline_mode: bool,
) -> Rendezvous | None:
    """The rendezvous with `contact`, or None when it cannot be (no relay configured, or no
    persistent session with them: then the token is pasted, as before)."""
    from didlink.mailbox import relays
    from didlink.mailbox.store import MailboxStore
    from didlink.profile.outbox import Outbox
    from didlink.profile.sealing import Sealer
    from didlink.profile.settings import Settings

    sealer = Sealer(key)
    settings = Settings(store, sealer)
    urls = relays.configured(settings)
    box = MailboxStore(store, sealer)
    if not urls or box.session(contact.did) is None:
        return None
    from didlink.mailbox.requests import mailbox_relays
    from didlink.mailbox.route import MailboxRoute  # late: nostr-sdk, websockets

    route = MailboxRoute(
        box,
        Outbox(store, sealer),
        settings,
        urls,
        peer_relays=lambda did: mailbox_relays(store, did),  # where the contact listens
    )
    return Rendezvous(
        key=key,
        contact=contact.did,
        route=route,
        box=box,
        ice=ice,
        wait=wait,
        name=contact.name,
        offline_mode=offline_mode,
    )
