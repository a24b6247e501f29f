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
(didlink/session/live.py, didlink/session/node.py), with the events of specs/cli-jsonl.md delivered
as frozen objects (didlink/events.py) instead of JSON lines. `Agent.send(contact, text)` does not
care whether the contact is connected: with a live, verified session the text leaves at once;
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
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import transport
from didlink.errors import UserError
from didlink.events import (
    Closed,
    Connected,
    Event,
    MailboxDelivered,
    MailboxMessage,
    MessageSent,
    RelayState,
    SasShown,
    SessionError,
    SessionWarning,
    TokenReady,
    event_from,
)
from didlink.file_policy import FilePolicy
from didlink.profile.folder import Profile
from didlink.profile.history import HistoryLog
from didlink.profile.ice_settings import IceSettings, ice_config
from didlink.profile.outbox import Outbox
from didlink.profile.sealing import Sealer
from didlink.profile.store import Store, check_did
from didlink.session import live
from didlink.session.commands import (
    AcceptFile,
    ConfirmSas,
    Expecting,
    Quit,
    RefuseFile,
    RejectSas,
    SendFile,
    SendText,
    SubmitResponse,
)
from didlink.session.node import Node, Outcome, Timeouts
from didlink.session.outcome import timeouts_from_env
from didlink.words.ice import turn_warning
from didlink.words.transfer import TransferInProgress
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
    from didlink.mailbox.daemon import WrapHandler
    from didlink.mailbox.route import MailboxRoute

__all__ = [
    "Agent",
    "EventListener",
    "Expecting",
    "Session",
    "SessionClosed",
    "Timeouts",
    "TransferInProgress",
    "check_invitation",
    "run",
    "timeouts_from_env",
]

E = TypeVar("E", bound=Event)
T = TypeVar("T")

EventListener = Callable[[Event], None]
"""A program's own handler of a session's events (`on_event` of `Agent.invite`, `accept`,
`reconnect`): called with each event as it happens, in order, in the event loop; it must not
block or raise."""

CARD_LIFETIME = 30 * 24 * 3600
LIVE_LIFETIME = 15 * 60


class SessionClosed(UserError):
    """The session ended before what was awaited happened (see `Session.closed`)."""


class NoRendezvous(UserError):
    """No rendezvous with this contact: no relay configured, or no persistent session."""


NO_RENDEZVOUS = (
    "no rendezvous with this contact: it needs relays (didlink relays add) and a session with"
    " them (meet once with invite / accept); use reconnect and hand over the token instead"
)


class Session:
    """One live connection with one person, from its token to its close.

    Made by `Agent.invite`, `Agent.accept` and `Agent.reconnect`. Its events arrive in order
    through `events()`; `sas()`, `connected()` and `wait_for()` wait for one of them.
    """

    def __init__(
        self,
        agent: Agent,
        *,
        history: bool,
        files: FilePolicy,
        on_event: EventListener | None = None,
        batch: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> None:
        self._agent = agent
        self._listener = on_event
        self._batch = batch
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
        if self._listener is not None:
            self._listener(event)
        else:
            self._queue.put_nowait(event)

    def _warn(self, text: str) -> None:
        self._on(SessionWarning(message=text))

    def _held(self) -> AbstractContextManager[None]:
        """The events of one received frame, reported together (the listener's `batch`)."""
        return self._batch() if self._batch is not None else contextlib.nullcontext()

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
        """Every event of the session, in order, ending with `Closed` (none when the session
        was started with an `on_event` listener: that one gets them)."""
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

    def post(self, text: str, *, ref: Any = None) -> None:
        """Send a text without waiting: `MessageSent` (with this `ref`, any JSON value) says
        when it left. Before the session is connected it waits in the outbox."""
        self._node.handle(SendText(text, ref=ref))

    def accept_file(self, file_id: str | None = None) -> None:
        """(`files="ask"`) receive the file offered as `file_id` (the `FileOffered` event's
        id), or the oldest one not yet answered."""
        self._node.handle(AcceptFile(file_id))

    def refuse_file(self, file_id: str | None = None) -> None:
        """(`files="ask"`) refuse the file offered as `file_id`, or the oldest one not yet
        answered."""
        self._node.handle(RefuseFile(file_id))

    def quit(self, *, wait_for_files: bool = True) -> None:
        """Ask the session to end, without waiting for it (`wait_closed` does): it waits for
        the receipts of our messages (bounded), and for our files unless `wait_for_files` is
        False (a transfer left unfinished resumes in a later session)."""
        self._node.handle(Quit(wait_for_files=wait_for_files))

    def begin_commands(self) -> None:
        """Commands given together follow (e.g. the lines of one read of input): what they
        queue leaves in one step at `end_commands`. Plain calls, for the sending hot path."""
        self._node.begin_commands()

    def end_commands(self) -> None:
        """The end of the commands begun with `begin_commands`: what they queued leaves now."""
        self._node.end_commands()

    @property
    def expecting(self) -> Expecting:
        """What a person's typed line answers right now: the response token (inviter), the
        SAS question, a file offer (`files="ask"`), or else a chat message."""
        return self._node.expecting

    def transfers_in_progress(self) -> list[TransferInProgress]:
        """The files being sent or received now (what quitting would interrupt)."""
        return self._node.transfers_in_progress()

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

    async def _until(self, *kinds: type[Any]) -> None:
        """Wait for the first event of one of `kinds`, or the end of the session."""
        waits = [asyncio.ensure_future(self.wait_for(kind)) for kind in kinds]
        waits.append(asyncio.ensure_future(self.wait_closed()))
        _done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in waits:  # consumed: a SessionClosed of a cancelled or failed wait
            if task.done() and not task.cancelled():
                task.exception()

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

    def held(self) -> AbstractContextManager[None]:
        return self._session._held()


class Agent:
    """One profile, opened (see the module docstring). Use `Agent.open` or `Agent.create`."""

    def __init__(
        self,
        *,
        profile: Profile,
        key: IdentityKey,
        ice: IceConfig | None = None,
        timeouts: Timeouts | None = None,
        store: Store | None = None,
    ) -> None:
        """`key`: the profile's identity, already unlocked (as `Agent.open` does, or by a
        passphrase prompt, a key agent or a device token). `store`: a connection to the
        profile's store that is already open (the caller closes it); by default the agent
        opens its own and closes it in `close`."""
        self.profile = profile
        self.key = key
        self.ice = ice
        """The ICE servers and policy of every connection; None (the default): the profile's
        (`ice_settings`, with DIDLINK_STUN / DIDLINK_TURN / DIDLINK_ICE_POLICY over them),
        read at each connection."""
        self.timeouts = timeouts or Timeouts()
        """How long each phase of a session may take (`timeouts_from_env()`: as the CLI)."""
        self._own_store = store is None
        self.store: Store = profile.open_store() if store is None else store
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
        token_pin: str | None = None,
        token_module: str | Path | None = None,
        ice: IceConfig | None = None,
        timeouts: Timeouts | None = None,
    ) -> Agent:
        """The identity in `home` (default: DIDLINK_HOME, else the user's data folder).

        A device-bound keystore (`didlink init --device-bound`, specs/keystore.md) also needs
        its PKCS#11 token: `token_pin` is its PIN (else DIDLINK_PKCS11_PIN), `token_module`
        the PKCS#11 module to load (else DIDLINK_PKCS11_MODULE, else SoftHSM2's or OpenSC's
        known paths). Nothing is prompted. Errors (didlink/custody/device_token.py): TokenMissing
        (the token it is bound to is not there; names it), TokenPinNeeded (no PIN given),
        UserError for a wrong or locked PIN; WrongPassphrase as for any keystore. Both are
        ignored for a passphrase-only keystore."""
        profile = _profile(home)
        profile.did()  # NoIdentity / DamagedKeystore before the slow key derivation
        device = keystore.device_of(keystore.load_keystore(profile.keystore_path))
        secret = None
        if device is not None:
            from didlink.custody.device_token import device_secret  # late: loads python-pkcs11

            secret = await asyncio.to_thread(
                device_secret, device, pin=token_pin, module=token_module
            )
        key = await asyncio.to_thread(
            keystore.unlock, profile.keystore_path, passphrase, device_secret=secret
        )
        return cls(profile=profile, key=key, ice=ice, timeouts=timeouts)

    async def close(self) -> None:
        """Close every live session (each waits for its receipts, bounded), then the store."""
        if self._closed:
            return
        for session in list(self._sessions):
            with contextlib.suppress(SessionClosed):
                await session.close()
        self._closed = True
        if self._own_store:
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
        return self.ice if self.ice is not None else self.connection_ice()

    def connection_ice(self) -> IceConfig:
        """The profile's ICE servers and policy with the environment's over them (what a
        connection uses when `ice` is None); UserError for a relay-only policy without TURN."""
        return ice_config(self.store, Sealer(self.key))

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
        from didlink.mailbox.reach import own_relays, reach_for
        from didlink.profile.settings import Settings
        from messaging.alias import CARD_REACH_CONTEXT

        relays = own_relays(Settings(self.store))  # the card carries them (specs/invitation.md)
        invitation = Invitation.create(
            self.key,
            now=_now(),
            lifetime=lifetime,
            label=label,
            multi_use=multi_use,
            reach=reach_for(self.key, relays, context=CARD_REACH_CONTEXT),
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
        stamp = datetime.fromtimestamp(now, UTC)
        contact = self.store.add_contact(decoded.inviter, suggested_name=decoded.label, now=stamp)
        if decoded.reach is not None:  # where they read their mailbox (`send` goes there)
            self.store.set_contact_relays(decoded.inviter, decoded.reach.relays, now=stamp)
        from didlink.mailbox.requests import keep_card_reach

        keep_card_reach(self.store, decoded, now=stamp)  # a message request can go at once
        return contact

    # -- live sessions ----------------------------------------------------------------------

    async def invite(
        self,
        *,
        label: str | None = None,
        lifetime: int = LIVE_LIFETIME,
        history: bool = False,
        files: FilePolicy | str = FilePolicy.ACCEPT,
        on_event: EventListener | None = None,
        batch: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> Session:
        """A live invitation: returns once `session.token` is ready to hand over; then give
        the response token back with `session.submit_response`.

        `history`: keep the session's messages in the encrypted history. `files`: what to do
        with the files the peer offers ("accept", "ask", "refuse"). `on_event`: a listener
        that gets every event as it happens (instead of `events()`); the session is then
        returned at once, its token coming as a `TokenReady` event, and a failure before it
        as `SessionError` and `Closed` events rather than `SessionClosed`. `batch`: with
        `on_event`, a context manager around the events of one received frame (a writer may
        write them together)."""
        problem = None if label is None else label_problem(label)
        if problem:
            raise UserError(f"cannot make the invitation: {problem}")
        return await self._inviting(
            label=label,
            lifetime=lifetime,
            history=history,
            files=files,
            on_event=on_event,
            batch=batch,
        )

    async def reconnect(
        self,
        who: str,
        *,
        lifetime: int = LIVE_LIFETIME,
        history: bool = False,
        files: FilePolicy | str = FilePolicy.ACCEPT,
        on_event: EventListener | None = None,
        batch: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> Session:
        """A reconnect token for a known contact (`didlink chat`): no new SAS if verified.
        The keyword arguments are `invite`'s."""
        did = self.contact(who).did
        return await self._inviting(
            label=None,
            lifetime=lifetime,
            history=history,
            files=files,
            contact=did,
            on_event=on_event,
            batch=batch,
        )

    async def _inviting(
        self,
        *,
        label: str | None,
        lifetime: int,
        history: bool,
        files: FilePolicy | str,
        contact: str | None = None,
        on_event: EventListener | None = None,
        batch: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> Session:
        session = Session(
            self, history=history, files=FilePolicy(files), on_event=on_event, batch=batch
        )
        session.peer = contact
        peer = Peer(role=Role.OFFERER, ice=self._ice(), on_turn_problem=session._turn_problem)
        session._start(
            lambda node: live.run_inviter(
                node,
                peer,
                self.key,
                self.profile,
                label=label,
                lifetime=lifetime,
                contact=contact,
                relays=self._reach_relays(),
            )
        )
        return session if on_event is not None else await session._until_token()

    async def accept(
        self,
        token: str | Invitation,
        *,
        label: str | None = None,
        history: bool = False,
        files: FilePolicy | str = FilePolicy.ACCEPT,
        relay_response: bool = True,
        on_event: EventListener | None = None,
        batch: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> Session:
        """Accept a live invitation or a reconnect token: returns once `session.token` (the
        response, to give back to the inviter) is ready. `label`: the name the response
        suggests to the inviter (first contact only; specs/invitation.md section 3). `token`
        may be one already decoded (an `Invitation`). With relays configured and an invitation
        that carries a reach, the response also goes back by relay (`relay_response=False`:
        not; the token is given back by hand). The other keyword arguments are `invite`'s."""
        decoded = decode_token(token) if isinstance(token, str) else token
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
        relays = self._reach_relays()
        live.claim_invitation(decoded, store=self.store)
        session = Session(
            self, history=history, files=FilePolicy(files), on_event=on_event, batch=batch
        )
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
                relays=relays,
                send_by_relay=bool(relays) and relay_response,
            )
        )
        return session if on_event is not None else await session._until_token()

    def _reach_relays(self) -> tuple[str, ...]:
        """The relays our tokens carry (didlink/mailbox/reach.py); () without relays configured."""
        from didlink.mailbox.reach import own_relays
        from didlink.profile.settings import Settings

        return own_relays(Settings(self.store))

    # -- rendezvous through the relays (specs/rendezvous.md) -------------------------------

    async def chat(
        self,
        who: str,
        *,
        relay: bool = True,
        lifetime: int = LIVE_LIFETIME,
        history: bool = False,
        files: FilePolicy | str = FilePolicy.ACCEPT,
        on_event: EventListener | None = None,
        batch: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> Session:
        """A session with a contact as `didlink chat` makes it: by rendezvous through the
        relays when there are relays and a persistent session with them (no token; while the
        contact does not answer, the session stays open, says `ContactOffline`, and texts go by
        mailbox; a later answer still connects); otherwise, or with `relay=False`, a reconnect
        token to hand over (`reconnect`). The other keyword arguments are `invite`'s; with
        `on_event` it returns at once, else once the token is ready (a rendezvous has none:
        at once)."""
        from didlink.session import rendezvous

        contact = self.contact(who)
        rdv = None
        if relay:
            rdv = rendezvous.prepare(
                self.key,
                self.store,
                self._ice(),
                contact=contact,
                wait=rendezvous.wait_from_env(),
                offline_mode=True,
            )
        if rdv is None:
            return await self.reconnect(
                contact.did,
                lifetime=lifetime,
                history=history,
                files=files,
                on_event=on_event,
                batch=batch,
            )
        session = Session(
            self, history=history, files=FilePolicy(files), on_event=on_event, batch=batch
        )
        session.peer = contact.did
        peer = Peer(role=Role.OFFERER, ice=rdv.ice, on_turn_problem=session._turn_problem)
        session._start(lambda node: rendezvous.run_chat(node, peer, rdv))
        return session

    async def connect(
        self,
        who: str,
        *,
        timeout: float = 12.0,  # noqa: ASYNC109 - how long the contact may take to answer
        history: bool = False,
        files: FilePolicy | str = FilePolicy.ACCEPT,
    ) -> Session | None:
        """Connect to a contact with no token: our offer goes through the relays, and the
        contact's running `chat` (or daemon) answers it. Returns the session once it is
        connected (or, for an unverified contact, once its SAS is shown: `session.sas()`), or
        None if no answer came within `timeout` seconds (they are offline: `send` goes by
        mailbox). If the contact offered at the same moment and their offer wins the
        tie-break, this answers theirs instead. NoRendezvous without relays or without a
        persistent session with them (use `reconnect` and hand over the token)."""
        from didlink.session import rendezvous

        contact = self.contact(who)
        rdv = rendezvous.prepare(
            self.key, self.store, self._ice(), contact=contact, wait=timeout, offline_mode=False
        )
        if rdv is None:
            raise NoRendezvous(NO_RENDEZVOUS)
        session = Session(self, history=history, files=FilePolicy(files))
        session.peer = contact.did
        peer = Peer(role=Role.OFFERER, ice=rdv.ice, on_turn_problem=session._turn_problem)
        session._start(lambda node: rendezvous.run_chat(node, peer, rdv))
        await session._until(Connected, SasShown)
        if session.closed is None:
            return session
        if session.closed.reason == rendezvous.OFFLINE:
            return None
        why = f" ({'; '.join(session._errors)})" if session._errors else ""
        raise SessionClosed(f"the session ended before connecting: {session.closed.reason}{why}")

    async def answer_rendezvous(
        self,
        who: str,
        token: str,
        *,
        history: bool = False,
        files: FilePolicy | str = FilePolicy.ACCEPT,
    ) -> Session:
        """(A listening side: the daemon) answer a contact's rendezvous offer, the token of a
        rendezvous item that `receive(on_rendezvous=...)` handed over. It is verified as a
        pasted reconnect token (signature, time, single use, from this contact): UserError or
        IdentityError otherwise, nothing done. The session then connects in the background
        (`await session.connected()`)."""
        from didlink.session import rendezvous

        contact = self.contact(who)
        rdv = rendezvous.prepare(
            self.key, self.store, self._ice(), contact=contact, wait=1.0, offline_mode=False
        )
        if rdv is None:
            raise NoRendezvous(NO_RENDEZVOUS)
        invitation, offer = rendezvous.check_offer(
            token, store=self.store, own_did=self.did, contact=contact.did
        )
        session = Session(self, history=history, files=FilePolicy(files))
        session.peer = contact.did
        session._start(lambda node: rendezvous.run_answer(node, rdv, invitation, offer))
        return session

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
        requested = await self._request(did, text)
        if requested is not None:
            return requested
        route = self._mailbox(did)
        if route is None:
            return Outbox(self.store, Sealer(self.key)).add(did, text).hex()
        async with route:  # sealed, committed, then handed to the relays (specs/mailbox.md §10)
            mid, _accepted = await route.post(did, text)  # none accepted: it stays queued
        from didlink.mailbox.requests import MessageRequests

        MessageRequests(self.store, self.key).answered(did)  # our reply: no longer a request
        return mid.hex()

    async def _request(self, did: str, text: str) -> str | None:
        """With relays configured, no persistent session with `did` and its card's reach known:
        `text` goes as a message request (specs/first-message.md §5); its mid. Otherwise None."""
        from didlink.mailbox import relays
        from didlink.mailbox.requests import MessageRequests, contact_reach, send_request
        from didlink.mailbox.store import MailboxStore
        from didlink.profile import own_name
        from didlink.profile.settings import Settings
        from messaging.mailbox import check_mailbox_text

        sealer = Sealer(self.key)
        settings = Settings(self.store, sealer)
        box = MailboxStore(self.store, sealer)
        if (
            not relays.configured(settings)
            or box.session(did) is not None
            or contact_reach(self.store, did) is None
        ):
            return None
        try:
            check_mailbox_text(text)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        mid, _accepted = await send_request(  # none accepted: committed, it stays queued
            MessageRequests(self.store, self.key),
            box,
            Outbox(self.store, sealer),
            settings,
            did,
            text,
            label=own_name.read(self.profile.path),
        )
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
        from didlink.session.queued_files import check_file, queue_file
        from didlink.session.resume import TransferStates

        did = self.contact(who).did
        checked = await asyncio.to_thread(check_file, Path(path))  # hashed: seconds for GBs
        queued = queue_file(TransferStates(self.store, Sealer(self.key)), did, checked)
        for session in self._sessions:
            if session.peer == did and session.is_connected and session.node.send_queued_files():
                break
        return queued.id

    def _mailbox(self, did: str | None = None) -> MailboxRoute | None:
        """The mailbox route when relays are configured (and `did`, if given, has a persistent
        session): it listens on our relays and sends to each contact's."""
        from didlink.mailbox import relays
        from didlink.mailbox.requests import mailbox_relays
        from didlink.mailbox.store import MailboxStore
        from didlink.profile.settings import Settings

        sealer = Sealer(self.key)
        settings = Settings(self.store, sealer)
        urls = relays.configured(settings)
        box = MailboxStore(self.store, sealer)
        if not urls or (did is not None and box.session(did) is None):
            return None
        from didlink.mailbox.route import MailboxRoute  # late: nostr-sdk, websockets

        store = self.store
        return MailboxRoute(
            box,
            Outbox(store, sealer),
            settings,
            urls,
            peer_relays=lambda peer: mailbox_relays(store, peer),  # where the contact listens
        )

    async def receive(
        self,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - how long the relays may take, not one await
        on_rendezvous: Callable[[str, str], None] | None = None,
    ) -> list[MailboxMessage | MailboxDelivered]:
        """Fetch what arrived by mailbox since the last time (texts, and receipts for ours),
        each once, oldest first; receipts go back by mailbox. [] without relays.
        `on_rendezvous(contact DID, token)`: a contact's rendezvous offer or answer came (not
        verified yet: give an offer to `answer_rendezvous`); without it, each contact's latest is
        kept for the next `chat` / `connect` with them."""
        from didlink.mailbox.requests import MessageRequests, receive_requests
        from didlink.mailbox.store import MailboxStore
        from messaging.mailbox import MailboxItem, MailboxRendezvous

        def on_item(peer: str, item: MailboxItem, _new: list[bytes]) -> None:
            if on_rendezvous is not None and isinstance(item, MailboxRendezvous):
                on_rendezvous(peer, item.token)

        route = self._mailbox()
        if route is None:
            return []
        requests = MessageRequests(self.store, self.key)
        async with route:
            await route.flush_all()
            # Requests first: the sessions they set up are listened on by the collect.
            _asked, started = await receive_requests(requests, route, timeout=timeout)
            # without `on_rendezvous`, rendezvous items are kept for the next chat with them
            await route.collect(
                timeout=timeout, started=started, on_item=on_item if on_rendezvous else None
            )
        box = MailboxStore(self.store, Sealer(self.key))
        pending = requests.pending()
        entries = box.inbox()
        out: list[MailboxMessage | MailboxDelivered] = [
            MailboxMessage(
                sender=entry.peer_did,
                id=entry.message_id.hex(),
                text=entry.text,
                sent_at=entry.sent_at,
                arrived_at=entry.arrived_at,
                request=entry.peer_did in pending,
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

    async def serve(
        self, *, handlers: Sequence[WrapHandler] = ()
    ) -> AsyncGenerator[MailboxMessage | MailboxDelivered | RelayState, None]:
        """Stay online on the profile's relays until the iteration stops: every text that
        arrives by mailbox (each once, receipted), every receipt for ours (`MailboxDelivered`),
        and each relay connection opening or ending (`RelayState`); meanwhile what the outbox
        holds is published and failed publishes are retried (specs/mailbox.md §16). UserError
        without a relay. `handlers` receive the wraps of other purposes (didlink/mailbox/daemon.py
        `WrapHandler`). Close it to stop (relays are then closed cleanly):

            async with contextlib.aclosing(agent.serve()) as events:
                async for event in events: ...
        """
        from didlink.mailbox.daemon import MailboxService, ServiceEvent
        from didlink.mailbox.requests import MessageRequests
        from didlink.mailbox.store import MailboxStore
        from didlink.profile.settings import Settings

        sealer = Sealer(self.key)
        queue: asyncio.Queue[ServiceEvent] = asyncio.Queue()
        service = MailboxService(
            box=MailboxStore(self.store, sealer),
            outbox=Outbox(self.store, sealer),
            settings=Settings(self.store, sealer),
            emit=queue.put_nowait,
            handlers=handlers,
            requests=MessageRequests(self.store, self.key),
        )
        task = asyncio.create_task(service.run(), name="mailbox service")
        getter: asyncio.Future[ServiceEvent] | None = None
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    task.result()  # the service's error, if it failed
                    return
                yield getter.result()
        finally:
            if getter is not None:
                getter.cancel()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def queued(self, who: str) -> int:
        """How many messages to a contact wait for their receipt (sent or not)."""
        return Outbox(self.store, Sealer(self.key)).count(self.contact(who).did)


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` (a program using an `Agent`) to completion on a new event loop: uvloop's when
    it is installed (the fastest for the transport), else asyncio's."""
    return transport.run(main)


def check_invitation(invitation: Invitation, *, store: Store, own_did: str) -> None:
    """Whether a live or reconnect invitation may be accepted, before the identity is unlocked
    (`Agent.accept` checks it again): verified, not ours, from a contact if it is a reconnect,
    its offer usable. UserError or IdentityError otherwise; nothing is written."""
    live.check_live_invitation(invitation, store=store, own_did=own_did)


def _profile(home: str | Path | None) -> Profile:
    """`home`'s profile (DIDLINK_HOME, else the user's data folder, when None)."""
    return Profile.from_env() if home is None else Profile(Path(home).expanduser())


def _now() -> int:
    return int(datetime.now(UTC).timestamp())
