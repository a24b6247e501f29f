"""`didlink.Agent`: one profile, opened, for programs - identity, contacts, live sessions.

Theory of operation (docs/agent.md walks through it)
----------------------------------------------------
An `Agent` owns one profile folder: the unlocked identity key, one connection to the local
store (shared by its sessions), and its live `Session`s. It is an async context manager, like
aiohttp's `ClientSession`:

    async with await Agent.open("~/alice", passphrase="...") as alice:
        session = await alice.invite(label="Alice")      # session.token: give it to Bob
        ...

Everything the CLI can do is here: cards (`card`, `accept_card`), live first contact
(`invite` + `Session.submit_response`, `accept`), reconnecting to a contact (`reconnect`), the
SAS (`Session.sas`, `confirm_sas`, `reject_sas`), texts and files, contacts, names, safety
numbers and verification. A session runs the same machinery as `didlink invite` / `accept`
(didlink/live.py, didlink/node.py), with the events of specs/cli-jsonl.md delivered as frozen
objects (didlink/events.py) instead of JSON lines. `Agent.send(contact, text)` does not care
whether the contact is connected: with a live, verified session the text leaves at once;
otherwise it waits, sealed in the persistent outbox, and leaves on the next session with that
contact.

Errors are the documented exceptions: `UserError` (a bad argument, an unknown contact, a token
for something else), `IdentityError` subclasses (a bad token, a wrong passphrase), and
`SessionClosed` when a session ended before what was awaited happened. Nothing is printed and
nothing is asked on a terminal; a passphrase is given, never prompted for.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from didlink import live
from didlink.errors import UserError
from didlink.events import (
    Closed,
    Connected,
    Event,
    MailboxDelivered,
    MailboxMessage,
    MessageSent,
    SasShown,
    SessionError,
    TokenReady,
    event_from,
)
from didlink.file_policy import FilePolicy
from didlink.history import HistoryLog
from didlink.ice_settings import IceSettings, ice_config
from didlink.ice_words import turn_warning
from didlink.jsonl import (
    AcceptFile,
    ConfirmSas,
    Quit,
    RefuseFile,
    RejectSas,
    SendFile,
    SendText,
    SubmitResponse,
)
from didlink.node import Node, Outcome, Timeouts
from didlink.outbox import Outbox
from didlink.profile import Profile
from didlink.sealing import Sealer
from didlink.store import Store, check_did
from identity import keystore
from identity.contact import Contact, Verification
from identity.errors import IdentityError, IdentityExists
from identity.invitation import (
    Invitation,
    InvitationKind,
    Response,
    label_problem,
    verify_invitation,
)
from identity.keys import IdentityKey
from identity.token import decode_token, encode_token
from messaging.safety_number import SafetyNumber
from transport import IceConfig, Peer, Role

if TYPE_CHECKING:
    from didlink.mailbox_route import MailboxRoute

E = TypeVar("E", bound=Event)

CARD_LIFETIME = 30 * 24 * 3600
LIVE_LIFETIME = 15 * 60


class SessionClosed(UserError):
    """The session ended before what was awaited happened (see `Session.closed`)."""


class Session:
    """One live connection with one person, from its token to its close.

    Made by `Agent.invite`, `Agent.accept` and `Agent.reconnect`. Its events arrive in order
    through `events()`; `sas()`, `connected()` and `wait_for()` wait for one of them.
    """

    def __init__(self, agent: Agent, *, history: bool, files: FilePolicy) -> None:
        self._agent = agent
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._last: dict[type[Any], Event] = {}
        self._waiters: list[tuple[type[Any], asyncio.Future[Any]]] = []
        self._sent: dict[int, asyncio.Future[str]] = {}
        self._refs = itertools.count(1)
        self._errors: list[str] = []
        self._task: asyncio.Task[Outcome] | None = None
        self.token = ""
        """The token to hand over: the invitation (inviter) or the response (invitee)."""
        self.peer: str | None = None
        """The peer's DID, once the session is connected (or known from the start)."""
        self.closed: Closed | None = None
        """The `Closed` event, once the session ended."""
        self.exit_code: int | None = None
        """What the CLI would exit with: 0 for a clean end, 1 otherwise (after `close`)."""
        self._node = Node(
            key=agent.key,
            profile=agent.profile,
            sink=_SessionSink(self),
            store=agent.store,
            timeouts=agent.timeouts,
            files=files,
            history=HistoryLog(profile=agent.profile, key=agent.key, on_error=self._warn)
            if history
            else None,
        )

    # -- what the session reports --------------------------------------------------------

    def _on(self, event: Event) -> None:
        if isinstance(event, TokenReady):
            self.token = event.token
        elif isinstance(event, Connected):
            self.peer = event.peer
        elif isinstance(event, MessageSent) and isinstance(event.ref, int):
            sent = self._sent.pop(event.ref, None)
            if sent is not None and not sent.done():
                sent.set_result(event.id)
        elif isinstance(event, SessionError):
            self._errors.append(event.message)
        elif isinstance(event, Closed):
            self.closed = event
        self._last[type(event)] = event
        for kind, future in list(self._waiters):
            if isinstance(event, kind) and not future.done():
                future.set_result(event)
        self._waiters = [(k, f) for k, f in self._waiters if not f.done()]
        if isinstance(event, Closed):
            self._fail_waiters(event)
        self._queue.put_nowait(event)

    def _warn(self, text: str) -> None:
        self._on(SessionError(message=text))

    def _turn_problem(self, error: Exception) -> None:
        """The profile's TURN server failed while this session goes on without it."""
        self._warn(turn_warning(error))

    def _fail_waiters(self, closed: Closed) -> None:
        error = SessionClosed(f"the session ended: {closed.reason}")
        for _kind, future in self._waiters:
            if not future.done():
                future.set_exception(error)
        for future in self._sent.values():
            if not future.done():
                future.set_exception(error)
        self._waiters.clear()
        self._sent.clear()

    async def events(self) -> AsyncIterator[Event]:
        """Every event of the session, in order, ending with `Closed`."""
        while True:
            event = await self._queue.get()
            yield event
            if isinstance(event, Closed):
                return

    async def wait_for(self, kind: type[E]) -> E:
        """The first event of class `kind` (at once if one came already); SessionClosed if the
        session ends first. Bound it with `asyncio.timeout` where needed."""
        seen = self._last.get(kind)
        if isinstance(seen, kind):
            return seen
        if self.closed is not None:
            raise SessionClosed(f"the session ended: {self.closed.reason}")
        future: asyncio.Future[E] = asyncio.get_running_loop().create_future()
        self._waiters.append((kind, future))
        return await future

    @property
    def is_connected(self) -> bool:
        """Connected (both confirmed the SAS) and not closed: a text sent now leaves at once."""
        return Connected in self._last and self.closed is None

    async def sas(self) -> SasShown:
        """The Short Authentication String to compare (not shown for a verified contact)."""
        return await self.wait_for(SasShown)

    async def connected(self) -> Connected:
        """Wait until both sides confirmed the SAS (or it was a verified contact)."""
        return await self.wait_for(Connected)

    # -- what the program does -----------------------------------------------------------

    def submit_response(self, token: str) -> None:
        """(Inviter) the response token the other person sent back; a bad one is reported as a
        `SessionError` event and the session goes on waiting for a good one."""
        self._node.handle(SubmitResponse(token))

    def confirm_sas(self) -> None:
        """Our user compared the SAS and it matches."""
        self._node.handle(ConfirmSas())

    def reject_sas(self) -> None:
        """The SAS differs: the session closes and the peer's DID is marked suspect."""
        self._node.handle(RejectSas())

    async def send(self, text: str) -> str:
        """Send a text; its message id (32 hex) once it has left, encrypted and safe.

        Before the session is connected the text waits in the outbox, and this waits too.
        """
        ref = next(self._refs)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._sent[ref] = future
        self._node.handle(SendText(text, ref=ref))
        return await future

    def send_file(self, path: str | Path) -> None:
        """Send a file (`FileSent` when the peer has all of it, `Progress` meanwhile); not kept
        if the session ends first (`Agent.send_file` queues it for the next session)."""
        self._node.handle(SendFile(str(Path(path).expanduser())))

    def accept_file(self) -> None:
        """(`files="ask"`) receive the oldest file offered and not yet answered."""
        self._node.handle(AcceptFile())

    def refuse_file(self) -> None:
        """(`files="ask"`) refuse the oldest file offered and not yet answered."""
        self._node.handle(RefuseFile())

    async def close(self) -> Closed:
        """Wait for receipts (bounded), close the session, and return its `Closed` event."""
        self._node.handle(Quit())
        return await self.wait_closed()

    async def wait_closed(self) -> Closed:
        """Wait until the session ends by itself (the peer quits, a failure) or by `close`."""
        if self._task is not None:
            outcome = await asyncio.shield(self._task)
            self.exit_code = outcome.exit_code
        assert self.closed is not None  # the node always emits `closed` last
        return self.closed

    # -- started by the agent ------------------------------------------------------------

    def _start(self, flow: Callable[[Node], Coroutine[Any, Any, Outcome]]) -> None:
        self._task = asyncio.create_task(flow(self._node))
        self._agent._sessions.add(self)
        self._task.add_done_callback(lambda _task: self._agent._sessions.discard(self))

    async def _until_token(self) -> Session:
        first = await asyncio.wait(
            [
                asyncio.ensure_future(self.wait_for(TokenReady)),
                asyncio.ensure_future(self.wait_closed()),
            ],
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in first[1]:
            task.cancel()
        if not self.token:
            reason = self.closed.reason if self.closed else "no token"
            why = f" ({'; '.join(self._errors)})" if self._errors else ""
            raise SessionClosed(f"the session ended before its token: {reason}{why}")
        return self

    @property
    def node(self) -> Node:
        """(Internal) the live node: for didlink's own frontends and tests."""
        return self._node


class _SessionSink:
    """The node's event sink for a `Session`: events become objects."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def emit(self, event: str, **fields: Any) -> None:
        made = event_from(event, fields)
        if made is not None:
            self._session._on(made)

    def warn(self, text: str) -> None:
        self._session._warn(text)


class Agent:
    """One profile, opened (see the module docstring). Use `Agent.open` or `Agent.create`."""

    def __init__(
        self,
        *,
        profile: Profile,
        key: IdentityKey,
        ice: IceConfig | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.profile = profile
        self.key = key
        self.ice = ice
        """The ICE servers and policy of every connection; None (the default): the profile's
        (`ice_settings`, with DIDLINK_STUN / DIDLINK_TURN / DIDLINK_ICE_POLICY over them),
        read at each connection."""
        self.timeouts = timeouts or Timeouts()
        self.store: Store = profile.open_store()
        self._sessions: set[Session] = set()
        self._closed = False

    # -- opening and closing ----------------------------------------------------------------

    @classmethod
    async def create(
        cls,
        home: str | Path,
        *,
        passphrase: str,
        ice: IceConfig | None = None,
        timeouts: Timeouts | None = None,
        kdf: keystore.KdfParams = keystore.DEFAULT_KDF,
    ) -> Agent:
        """A new identity in `home` (which must not have one), sealed under `passphrase`."""
        profile = _profile(home)
        if profile.keystore_path.exists() or profile.keystore_path.is_symlink():
            raise IdentityExists(f"an identity already exists in {profile.path}")
        profile.create_store()  # with the identity, as `didlink init` does (no "lost store" note)
        key = IdentityKey.generate()
        await asyncio.to_thread(
            keystore.create_keystore, profile.keystore_path, key, passphrase, params=kdf
        )
        return cls(profile=profile, key=key, ice=ice, timeouts=timeouts)

    @classmethod
    async def open(
        cls,
        home: str | Path | None = None,
        *,
        passphrase: str,
        ice: IceConfig | None = None,
        timeouts: Timeouts | None = None,
    ) -> Agent:
        """The identity in `home` (default: DIDLINK_HOME, else the user's data folder)."""
        profile = _profile(home)
        profile.did()  # NoIdentity / DamagedKeystore before the slow key derivation
        key = await asyncio.to_thread(keystore.unlock, profile.keystore_path, passphrase)
        return cls(profile=profile, key=key, ice=ice, timeouts=timeouts)

    async def close(self) -> None:
        """Close every live session (each waits for its receipts, bounded), then the store."""
        if self._closed:
            return
        for session in list(self._sessions):
            with contextlib.suppress(SessionClosed):
                await session.close()
        self._closed = True
        self.store.close()

    async def __aenter__(self) -> Agent:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def ice_settings(self) -> IceSettings:
        """The profile's STUN and TURN servers and ICE policy (`didlink ice`): `servers()`,
        `policy()`, `add(url, username=, credential=)`, `remove(url)`, `set_policy(policy)`."""
        return IceSettings(self.store, Sealer(self.key))

    def _ice(self) -> IceConfig:
        """The ICE configuration of a new connection (UserError: relay-only without TURN)."""
        return self.ice if self.ice is not None else ice_config(self.store, Sealer(self.key))

    @property
    def did(self) -> str:
        """This identity's DID (did:key:z6Mk...)."""
        return self.key.did

    # -- contacts ---------------------------------------------------------------------------

    def contacts(self) -> list[Contact]:
        """Every contact: named ones by name, then unnamed ones by DID."""
        return self.store.list_contacts()

    def contact(self, who: str) -> Contact:
        """The contact with this name, DID, or unique DID prefix (UserError if none)."""
        return self.store.find_contact(who)

    def rename(self, who: str, name: str | None = None) -> Contact:
        """Name a contact; without `name`, adopt the name it suggested (specs/store.md)."""
        did = self.contact(who).did
        if name is None:
            return self.store.adopt_suggestion(did)
        return self.store.rename_contact(did, name)

    def remove(self, who: str) -> None:
        """Forget a contact."""
        self.store.remove_contact(self.contact(who).did)

    def safety_number(self, who: str) -> SafetyNumber:
        """The 60-digit safety number shared with a contact, or with the full DID of someone
        not in the contacts yet (a card adds a contact on one side only): compare it in person.
        """
        try:
            did = self.contact(who).did
        except UserError as missing:
            did = who.strip()
            try:
                check_did(did)
            except IdentityError:  # a name or a DID prefix that matched no contact
                raise missing from None
        return SafetyNumber.for_pair(self.did, did)

    def mark_verified(self, who: str) -> Contact:
        """Record that the safety numbers were compared and match."""
        return self.store.set_verification(self.contact(who).did, Verification.SAFETY_NUMBER)

    # -- cards ------------------------------------------------------------------------------

    def card(
        self, *, label: str | None = None, lifetime: int = CARD_LIFETIME, multi_use: bool = False
    ) -> str:
        """A signed contact card (a `didlink:` token) to give someone."""
        invitation = Invitation.create(
            self.key, now=_now(), lifetime=lifetime, label=label, multi_use=multi_use
        )
        return encode_token(invitation)

    def accept_card(self, token: str) -> Contact:
        """Verify a card and keep its signer as an unverified contact (its label a suggestion)."""
        decoded = decode_token(token)
        if isinstance(decoded, Response) or decoded.kind is not InvitationKind.CARD:
            raise UserError("this is not a contact card: use Agent.accept for a live invitation")
        now = _now()
        verify_invitation(decoded, now=now, already_used=self.store.is_invitation_used(decoded.id))
        if decoded.inviter == self.did:
            raise UserError("this is your own card: give it to someone else to accept")
        live.claim_invitation(decoded, store=self.store)
        return self.store.add_contact(
            decoded.inviter, suggested_name=decoded.label, now=datetime.fromtimestamp(now, UTC)
        )

    # -- live sessions ----------------------------------------------------------------------

    async def invite(
        self,
        *,
        label: str | None = None,
        lifetime: int = LIVE_LIFETIME,
        history: bool = False,
        files: FilePolicy | str = FilePolicy.ACCEPT,
    ) -> Session:
        """A live invitation: returns once `session.token` is ready to hand over; then give
        the response token back with `session.submit_response`."""
        problem = None if label is None else label_problem(label)
        if problem:
            raise UserError(f"cannot make the invitation: {problem}")
        return await self._inviting(label=label, lifetime=lifetime, history=history, files=files)

    async def reconnect(
        self,
        who: str,
        *,
        lifetime: int = LIVE_LIFETIME,
        history: bool = False,
        files: FilePolicy | str = FilePolicy.ACCEPT,
    ) -> Session:
        """A reconnect token for a known contact (`didlink chat`): no new SAS if verified."""
        did = self.contact(who).did
        return await self._inviting(
            label=None, lifetime=lifetime, history=history, files=files, contact=did
        )

    async def _inviting(
        self,
        *,
        label: str | None,
        lifetime: int,
        history: bool,
        files: FilePolicy | str,
        contact: str | None = None,
    ) -> Session:
        session = Session(self, history=history, files=FilePolicy(files))
        session.peer = contact
        peer = Peer(role=Role.OFFERER, ice=self._ice(), on_turn_problem=session._turn_problem)
        session._start(
            lambda node: live.run_inviter(
                node, peer, self.key, self.profile, label=label, lifetime=lifetime, contact=contact
            )
        )
        return await session._until_token()

    async def accept(
        self,
        token: str,
        *,
        label: str | None = None,
        history: bool = False,
        files: FilePolicy | str = FilePolicy.ACCEPT,
    ) -> Session:
        """Accept a live invitation or a reconnect token: returns once `session.token` (the
        response, to give back to the inviter) is ready. `label`: the name the response
        suggests to the inviter (first contact only; specs/invitation.md section 3)."""
        decoded = decode_token(token)
        if isinstance(decoded, Response):
            raise UserError(
                "this is a response token: only the inviter who asked for it can use it"
            )
        if decoded.kind is InvitationKind.CARD:
            raise UserError("this is a contact card: use Agent.accept_card")
        reconnect = decoded.kind is InvitationKind.RECONNECT
        problem = None if label is None or reconnect else label_problem(label)
        if problem:
            raise UserError(f"cannot answer the invitation: label: {problem}")
        live.check_live_invitation(decoded, store=self.store, own_did=self.did)
        ice = self._ice()  # before burning the invitation
        live.claim_invitation(decoded, store=self.store)
        session = Session(self, history=history, files=FilePolicy(files))
        peer = Peer(role=Role.ANSWERER, ice=ice, on_turn_problem=session._turn_problem)
        session.peer = decoded.inviter
        session._start(
            lambda node: live.run_invitee(
                node,
                peer,
                self.key,
                invitation=decoded,
                reconnect=reconnect,
                label=None if reconnect else label,
            )
        )
        return await session._until_token()

    # -- messages, whether or not the contact is connected --------------------------------

    async def send(self, who: str, text: str) -> str:
        """Send `text` to a contact; its message id (32 hex).

        With a connected session to that contact it leaves now (and this returns once it left);
        otherwise, with relays configured and a persistent session with the contact, it goes by
        mailbox (specs/mailbox.md; it stays queued if no relay took it); otherwise it waits in
        the sealed outbox and leaves on the next session with them.
        """
        did = self.contact(who).did
        for session in self._sessions:
            if session.peer == did and session.is_connected:
                return await session.send(text)
        route = self._mailbox(did)
        if route is None:
            return Outbox(self.store, Sealer(self.key)).add(did, text).hex()
        async with route:  # sealed, committed, then handed to the relays (specs/mailbox.md §10)
            mid, _accepted = await route.post(did, text)  # none accepted: it stays queued
        return mid.hex()

    async def send_file(self, who: str, path: str | Path) -> str:
        """Send a file to a contact; its file id (32 hex: the `id` of its `Progress` and
        `FileSent` events).

        Files go over a live connection only. The file is checked now (it exists, is a regular
        file, at most 4 GiB; UserError otherwise) and queued for the contact (a sealed reference
        to it: path, size, time, SHA-256; not a copy). With a connected session to that
        contact it leaves now, after any queued before it; otherwise on the next session with
        them, once verified. If it changed or is gone by then it is not sent (`FileUnsent`).
        """
        from didlink.queued_files import check_file, queue_file
        from didlink.resume import TransferStates

        did = self.contact(who).did
        checked = await asyncio.to_thread(check_file, Path(path))  # hashed: seconds for GBs
        queued = queue_file(TransferStates(self.store, Sealer(self.key)), did, checked)
        for session in self._sessions:
            if session.peer == did and session.is_connected and session.node.send_queued_files():
                break
        return queued.id

    def _mailbox(self, did: str | None = None) -> MailboxRoute | None:
        """The mailbox route when relays are configured (and `did` has a persistent session)."""
        from didlink import relays
        from didlink.mailbox import MailboxStore
        from didlink.settings import Settings

        sealer = Sealer(self.key)
        settings = Settings(self.store, sealer)
        urls = relays.configured(settings)
        box = MailboxStore(self.store, sealer)
        if not urls or (did is not None and box.session(did) is None):
            return None
        from didlink.mailbox_route import MailboxRoute  # late: nostr-sdk, websockets

        return MailboxRoute(box, Outbox(self.store, sealer), settings, urls)

    async def receive(
        self,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - how long the relays may take, not one await
    ) -> list[MailboxMessage | MailboxDelivered]:
        """Fetch what arrived by mailbox since the last time (texts, and receipts for ours),
        each once, oldest first; receipts go back by mailbox. [] without relays."""
        from didlink.mailbox import MailboxStore

        route = self._mailbox()
        if route is None:
            return []
        async with route:
            await route.flush_all()
            await route.collect(timeout=timeout)
        box = MailboxStore(self.store, Sealer(self.key))
        entries = box.inbox()
        out: list[MailboxMessage | MailboxDelivered] = [
            MailboxMessage(
                sender=entry.peer_did,
                id=entry.message_id.hex(),
                text=entry.text,
                sent_at=entry.sent_at,
                arrived_at=entry.arrived_at,
            )
            if entry.kind == "text"
            else MailboxDelivered(
                peer=entry.peer_did,
                id=entry.message_id.hex(),
                text=entry.text,
                arrived_at=entry.arrived_at,
            )
            for entry in entries
        ]
        box.forget_shown([entry.seq for entry in entries])
        return out

    def queued(self, who: str) -> int:
        """How many messages to a contact wait for their receipt (sent or not)."""
        return Outbox(self.store, Sealer(self.key)).count(self.contact(who).did)


def _profile(home: str | Path | None) -> Profile:
    """`home`'s profile (DIDLINK_HOME, else the user's data folder, when None)."""
    return Profile.from_env() if home is None else Profile(Path(home).expanduser())


def _now() -> int:
    return int(datetime.now(UTC).timestamp())
