"""Live first contact: `didlink invite` (live) and `didlink accept` of a live invitation.

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

Reconnect (`didlink chat CONTACT`, specs/cli-jsonl.md section 4a): the inviter's flow with a
RECONNECT token (kind 2) and the contact's DID known from the start, so messages typed before
the connection go straight into the persistent outbox (didlink/outbox.py); only that contact's
response is taken. The accepter refuses a reconnect token whose inviter is not a contact. The
handshake authenticates both DIDs (Noise KK with the contacts' keys), and a side whose contact
is verified confirms the SAS by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import click

from didlink import chat_ui
from didlink.chat_ui import ChatScreen
from didlink.errors import UserError
from didlink.file_policy import files_policy
from didlink.history import HistoryLog, history_requested
from didlink.ice_settings import STUN_ENV as STUN_ENV
from didlink.ice_settings import check_env, ice_config, policy_from_env, servers_from_env
from didlink.ice_words import failure_words, turn_warning
from didlink.interrupt import InterruptGuard
from didlink.jsonl import (
    BadCommand,
    EventSink,
    HumanSink,
    JsonlSink,
    LineReader,
    Quit,
    human_command,
    parse_command,
)
from didlink.node import Node, Outcome, PhaseTimeout, QuitRequested, SessionEnded, Timeouts
from didlink.output import say
from didlink.profile import Profile
from didlink.sealing import Sealer
from didlink.session_outcome import EXIT_STORE, STORE_ERROR
from didlink.store import Store, StoreError
from identity.errors import AlreadyUsed, IdentityError, ResponseMismatch
from identity.invitation import (
    Invitation,
    InvitationKind,
    Response,
    label_problem,
    verify_invitation,
    verify_response,
)
from identity.keys import IdentityKey
from identity.token import decode_response, encode_token, looks_incomplete, starts_like_token
from identity.validity import CLOCK_SKEW
from transport import CompactOffer, CompactOfferError, Flag, IceConfig, Peer, Role, run
from transport.errors import IceFailed, TransportError

CONNECT_TIMEOUT_ENV = "DIDLINK_CONNECT_TIMEOUT"
RESPONSE_TIMEOUT_ENV = "DIDLINK_RESPONSE_TIMEOUT"
SAS_TIMEOUT_ENV = "DIDLINK_SAS_TIMEOUT"
NO_PATH = "no network path"
"""The `closed` reason (exit 2) when ICE found no path to the peer (specs/cli-jsonl.md §6)."""
EXIT_NO_PATH = 2


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{name} must be a number of seconds, not {text!r}") from None
    if not 0 < value <= 86400:
        raise UserError(f"{name} must be between 0 and 86400 seconds")
    return value


def timeouts_from_env() -> Timeouts:
    """The phase timeouts, overridable by DIDLINK_*_TIMEOUT (seconds) for tests and scripts."""
    default = Timeouts()
    return Timeouts(
        connect=_seconds(CONNECT_TIMEOUT_ENV, default.connect),
        response=_seconds(RESPONSE_TIMEOUT_ENV, default.response),
        sas=_seconds(SAS_TIMEOUT_ENV, default.sas),
        flush=default.flush,
    )


def ice_from_env() -> IceConfig:
    """The ICE servers and policy the environment alone names (DIDLINK_STUN, DIDLINK_TURN,
    DIDLINK_ICE_POLICY; didlink/ice_settings.py); none by default. A run uses `ice_config`,
    which starts from the profile's."""
    from transport.ice import IcePolicy

    return IceConfig(servers=servers_from_env() or (), policy=policy_from_env() or IcePolicy.ALL)


def _sink(jsonl: bool, relay_host: str | None = None) -> EventSink:
    if jsonl:
        return JsonlSink()
    if chat_ui.wanted():  # a terminal: the chat screen
        return ChatScreen(relay_host=relay_host)
    return HumanSink(relay_host=relay_host)


def _now() -> int:
    return int(time.time())


async def _pump(node: Node, *, jsonl: bool, sink: EventSink | None = None) -> None:
    """stdin lines -> commands -> node, until the end of input (a quit) or cancellation."""
    if isinstance(sink, ChatScreen):
        await sink.run(node)
        return
    ended = Flag()

    def on_lines(lines: list[str | None]) -> None:
        node.begin_commands()  # what they queue leaves together, at the end
        try:
            for line in lines:
                if line is None:
                    node.handle(Quit())
                    ended.set()
                    return
                try:
                    command = parse_command(line) if jsonl else human_command(line, node.expecting)
                except BadCommand as exc:
                    node.error(str(exc))
                    continue
                if command is not None:
                    node.handle(command)
        finally:
            node.end_commands()

    reader = LineReader(on_lines)
    guard = None  # the line mode: Ctrl-C during a transfer warns first (didlink/interrupt.py)
    if not jsonl:
        guard = InterruptGuard(running=node.transfers_in_progress, tell=_tell_interrupted)
        guard.install()
    try:
        await ended.wait()
    finally:
        reader.close()
        if guard is not None:
            guard.remove()


def _tell_interrupted(text: str) -> None:
    say(text, err=True, fg="yellow", bold=True)


Flow = Callable[[Node, Peer], Awaitable[Outcome]]


async def _serve(
    *,
    role: Role,
    key: IdentityKey,
    profile: Profile,
    store: Store,
    ice: IceConfig,
    jsonl: bool,
    flow: Flow,
) -> int:
    """Run one flow with a node, a peer and the stdin command pump; the exit code.

    `store` is the process's one connection to the local store, opened before the session (the
    caller closes it): opening it, and the first write into a fresh WAL, cost milliseconds that
    would otherwise fall between the response token and the connection (bench/: connect_time).
    """
    turn = ice.turn
    sink = _sink(jsonl, relay_host=turn.parsed.host if turn is not None else None)
    node = Node(
        key=key,
        profile=profile,
        sink=sink,
        store=store,
        timeouts=timeouts_from_env(),
        history=HistoryLog(profile=profile, key=key, on_error=sink.warn)
        if history_requested()
        else None,
        files=files_policy(),
    )
    pump = asyncio.create_task(_pump(node, jsonl=jsonl, sink=sink))
    peer = Peer(role=role, ice=ice, on_turn_problem=lambda e: sink.warn(turn_warning(e)))
    _settle_garbage_collector()
    try:
        outcome = await flow(node, peer)
    finally:
        await _stop_pump(pump, screen=isinstance(sink, ChatScreen))
    return outcome.exit_code


SCREEN_GRACE = 2.0
"""Seconds the chat screen may take to put its prompt away after `closed` (didlink/chat_ui.py)."""


async def _stop_pump(pump: asyncio.Task[None], *, screen: bool) -> None:
    """End the command pump, and wait until it has ended.

    The chat screen ends its own input loop at `closed` (its prompt erased, the terminal set
    back) and is given `SCREEN_GRACE` seconds for it; the line readers are cancelled. Either
    way the pump has ended before the process goes on to exit, rather than being cancelled
    with whatever was left on the event loop.
    """
    if screen:
        with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
            async with asyncio.timeout(SCREEN_GRACE):
                await asyncio.shield(pump)
    pump.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await pump


def _settle_garbage_collector() -> None:
    """Collect once, then freeze what start-up made (modules, the store, the node, aiortc).

    The cyclic collector otherwise rescans those long-lived objects in every generation-1
    and -2 pass: a pass then takes 0.5-1.5 ms (24 ms for a full one) in the middle of the
    connection or of a message, wherever the allocation count happens to trigger it.
    Frozen objects are never collected; start-up leaves nothing that should be.
    """
    gc.collect()
    gc.freeze()


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


def invite_live(*, label: str | None, lifetime: int, multi_use: bool, jsonl: bool) -> int:
    """`didlink invite` without --card; returns the exit code."""
    if multi_use:
        raise UserError("a live invitation connects once: --multi-use is only for cards")
    problem = None if label is None else label_problem(label)
    if problem:
        raise UserError(f"cannot make the invitation: {problem}")
    timeouts_from_env()  # bad settings are user errors, before anything starts
    check_env()
    profile = Profile.from_env()
    key = profile.unlock()
    with profile.open_store() as store:
        ice = ice_config(store, Sealer(key))
        return _serve_inviter(key, profile, store, ice, jsonl=jsonl, label=label, lifetime=lifetime)


def chat_live(target: str, *, lifetime: int, jsonl: bool, relay: bool = True) -> int:
    """`didlink chat CONTACT`: with relays and a persistent session, a rendezvous through the
    relays (didlink/rendezvous.py); otherwise (or `relay` False) a reconnect token for a known
    contact. Returns the exit code."""
    timeouts_from_env()
    check_env()
    profile = Profile.from_env()
    profile.did()  # no identity: a clear error before anything else
    with profile.open_store() as store:
        contact = store.find_contact(target)
        key = profile.unlock()
        ice = ice_config(store, Sealer(key))
        if relay:
            from didlink.rendezvous import serve_chat

            code = serve_chat(key, profile, store, ice, contact=contact, jsonl=jsonl)
            if code is not None:
                return code
        return _serve_inviter(
            key,
            profile,
            store,
            ice,
            jsonl=jsonl,
            label=None,
            lifetime=lifetime,
            contact=contact.did,
        )


def _serve_inviter(
    key: IdentityKey,
    profile: Profile,
    store: Store,
    ice: IceConfig,
    *,
    jsonl: bool,
    label: str | None,
    lifetime: int,
    contact: str | None = None,
) -> int:
    """Run the inviter's flow (an invitation, or a reconnect token for `contact`)."""
    return run(
        _serve(
            role=Role.OFFERER,
            key=key,
            profile=profile,
            store=store,
            ice=ice,
            jsonl=jsonl,
            flow=lambda node, peer: run_inviter(
                node, peer, key, profile, label=label, lifetime=lifetime, contact=contact
            ),
        )
    )


async def run_inviter(
    node: Node,
    peer: Peer,
    key: IdentityKey,
    profile: Profile,
    *,
    label: str | None,
    lifetime: int,
    contact: str | None = None,
) -> Outcome:
    """The inviting side: a live invitation, or (`contact` given) a reconnect token."""
    if contact is not None:
        node.bind_peer(contact)  # messages typed from now on are kept in the outbox
    try:
        offer = await node.wait(
            peer.create_offer(), node.timeouts.connect, "gathering network addresses"
        )
        invitation = Invitation.create(
            key,
            now=_now(),
            lifetime=lifetime,
            label=label,
            kind=InvitationKind.INVITE if contact is None else InvitationKind.RECONNECT,
            connect=offer.to_cbor(),
        )
        kind = "invite" if contact is None else "reconnect"
        node.emit("token", kind=kind, token=encode_token(invitation))
        node.mark("token")
        response, answer = await _await_response(node, invitation, contact=contact)
        node.stop_responses()
        node.mark("response")
        await peer.accept_answer(answer)  # the transport starts connecting at once

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
    return await node.run_session(
        peer,
        initiator=True,
        peer_did=response.responder,
        invitation_id=invitation.id,
        suggested_name=response.label if contact is None else None,
        reconnect=contact is not None,
    )


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
    node: Node, invitation: Invitation, *, contact: str | None = None
) -> tuple[Response, CompactOffer]:
    """The first valid response token the user gives; bad ones are reported and skipped.

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
        text = await node.next_response(remaining)
        if pending and not starts_like_token(text):  # the rest of the token cut short
            text = pending + text
        pending = ""
        try:
            return _checked_response(text, invitation, contact)
        except (IdentityError, TransportError) as exc:
            if looks_incomplete(text, expected="response"):
                pending = text
                node.error(f"response refused: {exc} Paste the rest: it is joined to this part.")
            else:
                node.error(f"response refused: {exc}")


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


def accept_live(invitation: Invitation, *, jsonl: bool, label: str | None = None) -> int:
    """`didlink accept TOKEN` for a live or reconnect invitation (decoded); the exit code.

    `label`: the name our response suggests to the inviter (a first contact only; a reconnect's
    response carries none: the inviter knows us already)."""
    reconnect = invitation.kind is InvitationKind.RECONNECT
    if reconnect:
        label = None
    problem = None if label is None else label_problem(label)
    if problem:  # before the passphrase is asked for
        raise UserError(f"cannot answer the invitation: label: {problem}")
    timeouts_from_env()
    check_env()
    profile = Profile.from_env()
    own_did = profile.did()
    with profile.open_store() as store:
        check_live_invitation(invitation, store=store, own_did=own_did)
        key = profile.unlock()  # before burning the invitation: a mistyped passphrase is free
        ice = ice_config(store, Sealer(key))  # a relay-only profile without TURN, too
        claim_invitation(invitation, store=store)
        return run(
            _serve(
                role=Role.ANSWERER,
                key=key,
                profile=profile,
                store=store,
                ice=ice,
                jsonl=jsonl,
                flow=lambda node, peer: run_invitee(
                    node, peer, key, invitation=invitation, reconnect=reconnect, label=label
                ),
            )
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
) -> Outcome:
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
            key, invitation=invitation, now=_now(), connect=answer.to_cbor(), label=label
        )
        node.emit("token", kind="response", token=encode_token(response))
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
    )


def exit_with(code: int) -> None:
    """End the click command with `code` (0 returns normally)."""
    if code:
        click.get_current_context().exit(code)
