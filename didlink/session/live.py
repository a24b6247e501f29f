"""Live first contact, the flows: the inviter's and the invitee's (`didlink.Agent` runs them).

`Agent.invite` / `Agent.reconnect` run `run_inviter`, `Agent.accept` runs `run_invitee`, each
with a node (didlink/session/node.py); the CLI's live commands are a frontend of the Agent
(didlink/cli/session.py).

Theory of operation (specs/cli-jsonl.md "Flows")
------------------------------------------------
Inviter: unlock the identity; a transport `Peer` (offerer) gathers its candidates; its compact
offer becomes the `connect` attachment of a signed, single-use live invitation (identity/
invitation.py, kind INVITE), shown as a token. The inviter then waits (bounded by the
invitation's expiry and DIDLINK_RESPONSE_TIMEOUT) for the invitee's signed response token:
each one is decoded and verified (signature, names our invitation, time window, a compact
answer inside); a bad one is reported and the wait goes on; the first good one is taken and
every later one is refused. Its answer is applied and the data channel opens.

Invitee: the invitation is fully verified (issue 2 checks, single-use against the store) and
the identity unlocked *before* the invitation id is marked used, so a typo in the passphrase
does not burn the invitation; then a `Peer` (answerer) applies the offer, and the answer goes
back inside a signed response token. Both then hand the open peer to `Node.run_session`
(inviter = handshake initiator). Errors before anything was printed are user errors (exit 2);
after that they are `error` + `closed` events (exit 1).

Reach (issue 25 point 2; didlink/mailbox/reach.py): with relays configured, the invitation carries
them and a reach key; the inviter listens there while it waits, and a response that arrives by
relay goes through exactly the checks of a pasted one (the paste prompt stays open: the first
good one wins). An invitee with relays configured sends its response there too (`--no-relay`:
not) and still shows the token to paste. Each side keeps the other's relays (the response
carries the invitee's) with the contact once the SAS is confirmed.

Reconnect (`didlink chat CONTACT`, specs/cli-jsonl.md section 4a): the inviter's flow with a
RECONNECT token (kind 2) and the contact's DID known from the start, so messages typed before
the connection go straight into the persistent outbox (didlink/profile/outbox.py); only that
contact's response is taken. The accepter refuses a reconnect token whose inviter is not a contact.
The handshake authenticates both DIDs (Noise KK with the contacts' keys), and a side whose contact
is verified confirms the SAS by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

from didlink.errors import UserError
from didlink.mailbox.reach import (
    PUBLISH_TIMEOUT,
    RESPONSE_SOURCE_PASTE,
    RESPONSE_SOURCE_RELAY,
    ResponseListener,
    reach_for,
    send_response,
)
from didlink.profile.folder import Profile
from didlink.profile.ice_settings import STUN_ENV as STUN_ENV
from didlink.profile.ice_settings import ice_from_env as ice_from_env
from didlink.profile.store import Store, StoreError
from didlink.session.node import Node, Outcome, PhaseTimeout, QuitRequested, SessionEnded
from didlink.session.outcome import EXIT_STORE, STORE_ERROR
from didlink.words.ice import failure_words
from identity.errors import AlreadyUsed, IdentityError, ResponseMismatch
from identity.invitation import (
    ID_SIZE,
    Invitation,
    InvitationKind,
    Response,
    verify_invitation,
    verify_response,
)
from identity.keys import IdentityKey
from identity.token import decode_response, encode_token, looks_incomplete, starts_like_token
from identity.validity import CLOCK_SKEW
from transport import CompactOffer, CompactOfferError, Peer
from transport.errors import IceFailed, TransportError

NO_PATH = "no network path"
"""The `closed` reason (exit 2) when ICE found no path to the peer (specs/cli-jsonl.md §6)."""
EXIT_NO_PATH = 2


def _now() -> int:
    return int(time.time())


async def _before_session(node: Node, peer: Peer, error: BaseException) -> Outcome:
    """The flow ended before the session started: say why, close the peer."""
    if isinstance(error, QuitRequested | SessionEnded):
        outcome = Outcome("quit", 0)
    elif isinstance(error, PhaseTimeout):
        node.error(str(error))
        outcome = Outcome("timeout", 1)
    elif isinstance(error, StoreError):  # names the file and what to do
        node.error(str(error))
        outcome = Outcome(STORE_ERROR, EXIT_STORE)
    elif isinstance(error, IceFailed):  # why, in words, and what to try (§7.1)
        node.error(failure_words(error))
        outcome = Outcome(NO_PATH, EXIT_NO_PATH)
    else:
        node.error(str(error) or type(error).__doc__ or "the connection failed")
        outcome = Outcome("connection failed", 1)
    await peer.close()
    node.release()
    node.emit("closed", reason=outcome.reason)
    return outcome


# --- inviter ---------------------------------------------------------------------------------


async def run_inviter(
    node: Node,
    peer: Peer,
    key: IdentityKey,
    profile: Profile,
    *,
    label: str | None,
    lifetime: int,
    contact: str | None = None,
    relays: tuple[str, ...] = (),
) -> Outcome:
    """The inviting side: a live invitation, or (`contact` given) a reconnect token.

    `relays` (the profile's, `own_relays`): the invitation carries them with a reach key, and
    the response is also listened for there."""
    if contact is not None:
        node.bind_peer(contact)  # messages typed from now on are kept in the outbox
    listener: ResponseListener | None = None
    try:
        offer = await node.wait(
            peer.create_offer(), node.timeouts.connect, "gathering network addresses"
        )
        invitation_id = os.urandom(ID_SIZE)
        invitation = Invitation.create(
            key,
            now=_now(),
            lifetime=lifetime,
            label=label,
            kind=InvitationKind.INVITE if contact is None else InvitationKind.RECONNECT,
            connect=offer.to_cbor(),
            reach=reach_for(key, relays, context=invitation_id),
            id=invitation_id,
        )
        if invitation.reach is not None:  # listening before anyone can have the token
            listener = ResponseListener(invitation, key)
            await listener.start()
        kind = "invite" if contact is None else "reconnect"
        extra = {} if invitation.reach is None else {"relays": list(invitation.reach.relays)}
        node.emit("token", kind=kind, token=encode_token(invitation), **extra)
        node.mark("token")
        response, answer, source = await _await_response(
            node, invitation, contact=contact, relayed=None if listener is None else listener.texts
        )
        node.stop_responses()
        node.mark("response")
        node.response_source = source
        await peer.accept_answer(answer)  # the transport starts connecting at once
        if listener is not None:  # let go of the relays while the transport connects
            closing = asyncio.create_task(listener.close())
            _CLOSING.add(closing)
            closing.add_done_callback(_CLOSING.discard)
            listener = None

        def bookkeeping() -> None:
            node.bind_peer(response.responder)  # from now on, typed messages are kept
            node.store().mark_invitation_used(invitation.id, now=datetime.now(UTC))
            node.prepare_handshake(
                initiator=True,
                peer_did=response.responder,
                invitation_id=invitation.id,
                local_fingerprint=offer.fingerprint_hex,
                peer_fingerprint=answer.fingerprint_hex,
            )

        await _while_opening(node, peer, bookkeeping)
        node.mark("open")
    except (QuitRequested, SessionEnded, PhaseTimeout, TransportError, StoreError) as exc:
        return await _before_session(node, peer, exc)
    finally:
        if listener is not None:
            await listener.close()
    return await node.run_session(
        peer,
        initiator=True,
        peer_did=response.responder,
        invitation_id=invitation.id,
        suggested_name=response.label if contact is None else None,
        reconnect=contact is not None,
        peer_relays=response.relays or (),
    )


_CLOSING: set[asyncio.Task[None]] = set()
"""Listeners being closed in the background (a reference keeps each task alive)."""


IDLE_DELAY = 0.0
"""Seconds after applying the answer before the inviter's bookkeeping runs. Zero: one turn of
the event loop, in which the transport sends its first connectivity check, and the work then
fills the wait for the answer to it and for the DTLS handshake. (When aioice noticed a completed
check list only at its next 20 ms tick, the work waited 8 ms into that tick; with the transport's
prompt ICE completion, specs/transport.md 6.8, that put it after the channel opened. Paired
connects: medians 18.6 ms at 0 against 21.5 ms at 8 ms and 21.9 ms at 2 ms, 12 each.) If the
channel opens sooner, the work runs at once."""


async def _while_opening(node: Node, peer: Peer, work: Callable[[], None]) -> None:
    """Wait for the channel to open, doing `work` meanwhile (after IDLE_DELAY) or else then.

    `work` runs exactly once, before this returns, and its errors are raised here.
    """

    async def after_delay() -> None:
        await asyncio.sleep(IDLE_DELAY)
        work()

    early = asyncio.create_task(after_delay())
    try:
        await node.wait(peer.wait_open(node.timeouts.connect), None, "connecting")
    finally:  # also when the wait failed: the work is done as it was before the wait
        if early.done():
            early.result()  # its error, if it had one
        else:
            early.cancel()  # still sleeping: do the work now
            work()


async def _await_response(
    node: Node,
    invitation: Invitation,
    *,
    contact: str | None = None,
    relayed: asyncio.Queue[str] | None = None,
) -> tuple[Response, CompactOffer, str]:
    """The first valid response token the user gives, or `relayed` brings
    (didlink/mailbox/reach.py);
    bad ones are reported and skipped. Also where it came from (`RESPONSE_SOURCE_*`).

    `contact`: a reconnect takes a response from that DID only. A token cut short (a paste
    broken at a line break: each line arrives as its own `response`) is kept, and the next
    one given is joined to it unless it starts a token of its own.
    """
    give_up = min(invitation.expires + CLOCK_SKEW, time.time() + node.timeouts.response)
    pending = ""  # the start of a token that looked cut short
    while True:
        remaining = give_up - time.time()
        if remaining <= 0:
            raise PhaseTimeout("no valid response token arrived before the invitation expired")
        text, source = await _next_response(node, remaining, relayed)
        if source == RESPONSE_SOURCE_RELAY:
            try:
                response, answer = _checked_response(text, invitation, contact)
            except (IdentityError, TransportError) as exc:
                node.error(f"a response by relay was refused: {exc}")
                continue
            return response, answer, source
        if pending and not starts_like_token(text):  # the rest of the token cut short
            text = pending + text
        pending = ""
        try:
            response, answer = _checked_response(text, invitation, contact)
            return response, answer, source
        except (IdentityError, TransportError) as exc:
            if looks_incomplete(text, expected="response"):
                pending = text
                node.error(f"response refused: {exc} Paste the rest: it is joined to this part.")
            else:
                node.error(f"response refused: {exc}")


async def _next_response(
    node: Node, limit: float, relayed: asyncio.Queue[str] | None
) -> tuple[str, str]:
    """The next response text, pasted (the node's wait: quit, the end, the limit) or relayed;
    and where it came from. Both waits are cancelled safely (a queue keeps what it holds)."""
    if relayed is None:
        return await node.next_response(limit), RESPONSE_SOURCE_PASTE
    if not relayed.empty():
        return relayed.get_nowait(), RESPONSE_SOURCE_RELAY
    pasted = asyncio.ensure_future(node.next_response(limit))
    by_relay = asyncio.ensure_future(relayed.get())
    try:
        await asyncio.wait({pasted, by_relay}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pasted, by_relay):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    if pasted.done() and not pasted.cancelled():
        if by_relay.done() and not by_relay.cancelled():
            relayed.put_nowait(by_relay.result())  # both at once: the relayed one comes next
        return pasted.result(), RESPONSE_SOURCE_PASTE  # (or its PhaseTimeout, QuitRequested...)
    return by_relay.result(), RESPONSE_SOURCE_RELAY


def _checked_response(
    text: str, invitation: Invitation, contact: str | None
) -> tuple[Response, CompactOffer]:
    """The response in `text` and its transport answer, every check passed."""
    response = decode_response(text)
    verify_response(response, invitation=invitation, now=_now())
    if contact is not None and response.responder != contact:
        raise ResponseMismatch(f"The response comes from {response.responder}, not from {contact}.")
    answer = CompactOffer.from_cbor(response.connect)
    if answer.is_offer:
        raise CompactOfferError("The response carries an offer instead of an answer.")
    return response, answer


# --- invitee ---------------------------------------------------------------------------------


NOT_A_CONTACT = (
    "not a contact: use an invitation (didlink invite / accept) to connect for the first time;"
    " this reconnect token comes from {did}, who is not one of your contacts"
)


def check_live_invitation(invitation: Invitation, *, store: Store, own_did: str) -> None:
    """A live or reconnect invitation we may accept: verified, not ours, from a contact if it is
    a reconnect; its offer usable. User errors (exit 2) otherwise; nothing is written."""
    try:
        offer = CompactOffer.from_cbor(invitation.connect)
    except CompactOfferError as exc:
        raise UserError(f"the invitation's transport offer is not usable: {exc}") from None
    if not offer.is_offer:
        raise UserError("the invitation's transport offer is an answer, not an offer")
    verify_invitation(invitation, now=_now(), already_used=store.is_invitation_used(invitation.id))
    if invitation.inviter == own_did:
        raise UserError("this is your own invitation: give it to someone else to accept")
    reconnect = invitation.kind is InvitationKind.RECONNECT
    if reconnect and store.get_contact(invitation.inviter) is None:
        raise UserError(NOT_A_CONTACT.format(did=invitation.inviter))


def claim_invitation(invitation: Invitation, *, store: Store) -> None:
    """Burn a single-use invitation (atomically); AlreadyUsed if someone was first."""
    if not invitation.multi_use and not store.mark_invitation_used(
        invitation.id, now=datetime.now(UTC)
    ):
        raise AlreadyUsed("This single-use invitation was already accepted.")


async def run_invitee(
    node: Node,
    peer: Peer,
    key: IdentityKey,
    *,
    invitation: Invitation,
    reconnect: bool,
    label: str | None = None,
    relays: tuple[str, ...] = (),
    send_by_relay: bool = False,
) -> Outcome:
    """The invited side. `relays` (ours): the response carries them when the invitation has a
    reach (so its inviter reads version 3); `send_by_relay`: it is also sent there."""
    node.bind_peer(invitation.inviter)  # messages typed from now on are kept in the outbox
    try:
        offer = CompactOffer.from_cbor(invitation.connect)
        answer = await node.wait(
            peer.accept_offer(offer), node.timeouts.connect, "preparing the answer"
        )
        node.prepare_handshake(  # now rather than once the channel is open: it is on time
            initiator=False,
            peer_did=invitation.inviter,
            invitation_id=invitation.id,
            local_fingerprint=answer.fingerprint_hex,
            peer_fingerprint=offer.fingerprint_hex,
        )
        response = Response.create(
            key,
            invitation=invitation,
            now=_now(),
            connect=answer.to_cbor(),
            label=label,
            relays=relays if invitation.reach is not None else (),
        )
        token = encode_token(response)
        extra: dict[str, list[str]] = {}
        if send_by_relay and invitation.reach is not None:
            sent = await node.wait(
                send_response(token, invitation, timeout=PUBLISH_TIMEOUT),
                None,
                "sending the response by relay",
            )
            extra["sent_by_relay"] = list(sent)
        node.emit("token", kind="response", token=token, **extra)
        node.mark("token")
        await node.wait(peer.wait_open(node.timeouts.connect), None, "connecting")
        node.mark("open")
    except (QuitRequested, SessionEnded, PhaseTimeout, TransportError, StoreError) as exc:
        return await _before_session(node, peer, exc)
    return await node.run_session(
        peer,
        initiator=False,
        peer_did=invitation.inviter,
        invitation_id=invitation.id,
        suggested_name=None if reconnect else invitation.label,
        reconnect=reconnect,
        peer_relays=() if invitation.reach is None else invitation.reach.relays,
    )
