"""The node: one live connection = a transport `Peer` + a `Handshake` + a `SecureChannel`.

Theory of operation (specs/cli-jsonl.md has the events and commands)
---------------------------------------------------------------------
This is thin asyncio glue; every protocol decision lives in messaging/ and transport/.

    token exchange (didlink/session/live.py) -> handshake -> SAS shown -> both confirm -> chat,
    files
                                                              -> a rejection -> closed, exit 1

- Commands arrive at any time (`handle`). Messages and files typed before both sides confirmed
  the SAS wait (texts in the outbox once the peer is known, the rest in memory:
  didlink/session/outgoing.py); nothing but the handshake, the Hello, a `SasConfirm` and a `Close`
  leaves before that (DESIGN.md "Messaging" 3). The user's answers the session waits for (the
  response token, the SAS decision) are didlink/session/waits.py's.
- After the handshake two tasks run: the reader (frames in -> events out, receipts batched;
  each frame is handled inside the transport's receive step, `Peer.deliver_to`, so no
  event-loop hop delays it, and the receipts of one step go out together after it) and the
  writer (the only one that encrypts and sends: `channel.data_to_send()` then the frames to
  the transport in ratchet order, `await peer.send()` for any that has to wait, so that
  `Peer.send`'s backpressure slows whoever queued them). The commands of one read of stdin are
  handled together (`begin_commands` / `end_commands`); if the writer is idle then, its step
  runs right there (`_write_through`, with `Peer.try_send`): a typed text reaches the
  transport in the loop turn it was read in, without waking the writer's task. Files are
  didlink/session/transfers.py's business: one task per file queues a few chunks and waits until the
  writer is idle again.
- The SAS gate is messaging/sas_gate.py's state machine: each side sends `SasConfirm` when its
  user confirms, and the gate refuses any application message before both confirmations. The
  responder's channel cannot send before the initiator's Hello, so its confirmation simply waits
  in the channel's queue. When the gate opens, `connected` is emitted, the contact is saved
  as SAS-verified (didlink/session/peer_records.py: the store and the contact) and the outbox is
  sent.
- The connect path (bench/: connect_time) does first what the peer or the user waits for: the
  handshake is built before the channel opens (`prepare_handshake`;
  didlink/session/early_handshake.py,
  used only if it fits the verified fingerprints), the Hello is put on the wire and the contact
  written before `sas` is emitted (so no store write delays the answer), and our `SasConfirm`
  is handed to the transport before `connected`'s bookkeeping.
- Nothing lost (specs/cli-jsonl.md 4b) is didlink/session/delivery.py's business: once the peer is
  known (`bind_peer`) every text goes to the persistent, sealed outbox under a stable 16-byte
  `mid`, written before the writer encrypts anything; it leaves when the session is verified
  (earlier sessions' leftovers first) and is removed when its receipt arrives; the receiver
  drops a `mid` it already delivered. Unfinished files resume (didlink/session/resume.py). A
  reconnect (`didlink chat`) to a verified contact confirms the SAS by itself (section 4a).
- Every wait is bounded or races the user's quit (`wait`); the end of the session is one
  `Outcome` (reason, exit code; didlink/session/outcome.py): quit -> 0; the peer closed a
  verified session -> 0; anything else (SAS rejected by either side, timeout, lost connection,
  protocol error) -> 1. The end's steps (the wait for acknowledgements at quit, the `Close`,
  the warnings) are didlink/session/close.py's; their order is `run_session`'s.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from didlink.file_policy import FilePolicy
from didlink.profile.folder import Profile
from didlink.profile.history import HistoryLog
from didlink.profile.outbox import Outbox
from didlink.profile.sealing import Sealer
from didlink.profile.store import Store, StoreError, as_suggestion, check_did
from didlink.session.close import (
    SAS_REJECTED,
    failure_outcome,
    sas_rejected,
    send_close,
    stop_tasks,
    wait_acknowledged,
    warn_rejected,
)
from didlink.session.commands import (
    AcceptFile,
    Command,
    ConfirmSas,
    EventSink,
    Expecting,
    Quit,
    RefuseFile,
    RejectSas,
    SendFile,
    SendText,
    SubmitResponse,
    held,
)
from didlink.session.delivery import RECEIPT_BATCH, Delivery
from didlink.session.early_handshake import EarlyHandshake
from didlink.session.handshake import MessagePipe, PreparedHandshake, pump_handshake
from didlink.session.outcome import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STORE,
    STORE_ERROR,
    HandshakeFailed,
    Outcome,
    PhaseTimeout,
    QuitRequested,
    SessionEnded,
    Timeouts,
)
from didlink.session.outgoing import Outgoing
from didlink.session.peer_records import PeerRecords
from didlink.session.resume import TransferStates
from didlink.session.transfers import Transfers
from didlink.session.waits import ResponseTokens, SasDecision, race
from didlink.words.transfer import TransferInProgress
from identity.keys import IdentityKey
from messaging.channel import (
    ChannelState,
    CloseReceived,
    Event,
    HandshakeOutput,
    HelloReceived,
    MessageReceived,
    MessagesLost,
    MessagesMissing,
    ReceiptReceived,
    SecureChannel,
)
from messaging.errors import MessagingError, RemoteProtocolError
from messaging.frames import FileAck, FileChunk, FileError, FileOffer, Text
from messaging.sas_gate import SasGate
from transport import Flag, Peer, TransportError

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "RECEIPT_BATCH",
    "SAS_REJECTED",
    "HandshakeFailed",
    "MessagePipe",
    "Node",
    "Outcome",
    "PhaseTimeout",
    "PreparedHandshake",
    "QuitRequested",
    "SessionEnded",
    "Timeouts",
    "pump_handshake",
]

T = TypeVar("T")


class Node:
    """One live connection from the token exchange to its close. See the module docstring."""

    def __init__(
        self,
        *,
        key: IdentityKey,
        profile: Profile,
        sink: EventSink,
        timeouts: Timeouts,
        history: HistoryLog | None = None,
        store: Store | None = None,
        files: FilePolicy = FilePolicy.ACCEPT,
    ) -> None:
        self._key = key
        self._files = files  # --files: what to do with the files the peer offers
        self._sink = sink
        self.timeouts = timeouts
        self.downloads = profile.path / "downloads"
        self.expecting = Expecting.CHAT
        self._quit = Flag()
        self._quit_waits_for_files = True  # at quit: wait for file acks too (`Quit.wait_for_files`)
        self._ended = Flag()
        self._outcome: Outcome | None = None
        self._records = PeerRecords(profile=profile, shared=store)  # the store, the contact
        self._delivery = Delivery(  # chat messages: outbox, receipts, exactly once
            sink=sink,
            history=history,
            fail=lambda error: self._end(STORE_ERROR, EXIT_STORE, error),  # the store failed
        )
        self._outgoing = Outgoing(  # what the user sends: checked, held until it can go
            sink=sink,
            delivery=self._delivery,
            verified=lambda: self._verified,
            transfers=self._transfers_now,
            error=self.error,
        )
        self._states: TransferStates | None = None  # file transfers to resume
        self._responses = ResponseTokens()  # the inviter waits for the response token
        self._sas_decision = SasDecision(sink=sink)  # the user's answer to the SAS
        # the session, once the transport is open
        self._peer: Peer | None = None
        self._channel: SecureChannel | None = None
        self._peer_did = ""
        self._handshake = EarlyHandshake(key)  # built while the transport connects
        self._first_contact: HandshakeOutput | None = None  # see `_session`
        self._gate = SasGate()  # messaging/sas_gate.py: both confirmations before anything else
        self._verified = False  # the gate opened and `connected` was emitted
        self._suggested_name: str | None = None  # the peer's label, kept as a suggestion
        self._peer_relays: tuple[str, ...] = ()  # where the peer reads its mailbox (its token)
        self.response_source: str | None = None  # inviter: "relay" or "paste" (`connected`)
        self._closing = False
        self._transfers: Transfers | None = None
        self._kick = Flag()
        self._writer_waiting = False  # the writer waits for a kick (not for the transport)
        self._idle = Flag()
        self._idle.set()
        self._unsent: collections.deque[bytes] = collections.deque()  # encrypted, not handed over
        self._leaving: list[tuple[bytes, Any]] = []  # the texts of those frames (`report_sent`)
        self._commands = False  # between `begin_commands` and `end_commands`: kicks wait
        self._kick_held = False  # a kick came in between
        self._hello = Flag()  # the responder received the initiator's Hello
        self._progressed = Flag()  # a receipt, a file ack or a file task ended
        self._tasks: list[asyncio.Task[None]] = []
        self._reading = False  # the reader takes frames (from its start until it ends)
        self._receipts_due = False  # a frame was read: its receipts go out after this step
        self.timings_ms: dict[str, int] = {}
        self._t0 = time.monotonic()
        self.on_queued: Callable[[], None] | None = None
        """Called after a text went to the outbox while not connected
        (didlink/session/rendezvous.py:
        it then goes by mailbox)."""

    # -- commands ------------------------------------------------------------------------------

    def begin_commands(self) -> None:
        """Commands handled together follow (the lines of one read of stdin): what they queue
        leaves in one writer step at `end_commands`, in this loop turn if the writer is idle
        (`_write_through`). Plain calls, not a context manager: this is the sending hot path."""
        self._commands = True

    def end_commands(self) -> None:
        self._commands = False
        if self._kick_held:
            self._kick_held = False
            self._write_through()

    def handle(self, command: Command) -> None:
        """Act on one user command (any phase); problems become `error` events."""
        if isinstance(command, Quit):
            self._quit_waits_for_files = command.wait_for_files
            self._quit.set()
        elif isinstance(command, SubmitResponse):
            refused = self._responses.submit(command.token)
            if refused is not None:
                self.error(refused)
        elif isinstance(command, ConfirmSas | RejectSas):
            refused = self._sas_decision.answer(isinstance(command, ConfirmSas))
            if refused is not None:
                self.error(refused)
        elif self._closing or self._ended.is_set():
            self.error("the session is closing: nothing more can be sent")
        elif isinstance(command, SendText | SendFile):
            self._outgoing.give(command)
            if self.on_queued is not None and not self._verified and isinstance(command, SendText):
                self.on_queued()  # not connected: the rendezvous sends it by mailbox
        elif isinstance(command, AcceptFile | RefuseFile):
            refused = (
                "no file offer is waiting for an answer"
                if self._transfers is None
                else self._transfers.answer(command.id, accept=isinstance(command, AcceptFile))
            )
            if refused is not None:
                self.error(refused)

    def bind_peer(self, peer_did: str) -> None:
        """The peer is known: open the persistent outbox; texts typed so far move into it."""
        if self._delivery.bound:
            return
        self._peer_did = check_did(peer_did)  # validated now (and remembered) rather than
        store = self.store()  # when the contact is saved, on the connect path
        sealer = Sealer(self._key)
        self._delivery.bind(self._peer_did, Outbox(store, sealer))
        self._states = TransferStates(store, sealer)
        self._outgoing.release()  # texts typed so far move into the outbox
        if not self._verified:  # what waits for this peer (specs/cli-jsonl.md)
            self._delivery.report_queued(files=self._queued_files())

    def _queued_files(self) -> list[dict[str, Any]]:
        """The files queued for the peer (`queued`'s `files` entries, specs/cli-jsonl.md)."""
        if self._states is None:
            return []
        return [
            {"id": state.file_id.hex(), "name": state.path.name, "size": state.size}
            for state in self._states.queued(self._peer_did)
        ]

    def send_queued_files(self) -> bool:
        """A file was queued for this peer meanwhile (`Agent.send_file`): if the session is
        verified it leaves now, after those queued before it; False if it waits."""
        if not self._verified or self._closing or self._ended.is_set():
            return False
        self._transfers_now().send_queued()
        return True

    def prepare_handshake(
        self,
        *,
        initiator: bool,
        peer_did: str,
        invitation_id: bytes,
        local_fingerprint: str,
        peer_fingerprint: str,
    ) -> None:
        """Build the handshake now, while the transport connects, rather than once it is open.

        `peer_fingerprint` is the one in the peer's signed token; `run_session` uses the
        prepared handshake only if it fits the open channel (didlink/session/early_handshake.py).
        """
        self._handshake.prepare(
            initiator=initiator,
            peer_did=peer_did,
            invitation_id=invitation_id,
            local_fingerprint=local_fingerprint,
            peer_fingerprint=peer_fingerprint,
        )

    def store(self) -> Store:
        """The session's local store: opened on first use, kept open until the node ends
        (one per session or per process; didlink/session/peer_records.py says why)."""
        return self._records.store()

    def _warn_unsent(self, *, kept_too: bool) -> None:
        """Tell the user what was queued but not sent: kept messages (if `kept_too`), and
        queued items that are dropped."""
        kept = self._delivery.kept() if kept_too else 0
        self._outgoing.warn_unsent(kept=kept, peer_did=self._peer_did)

    def release(self) -> None:
        """The flow ended before a session started: say what stays queued, close the store."""
        self._warn_unsent(kept_too=True)
        self._outgoing.discard()
        self._close_store()

    def _close_store(self) -> None:
        """Write what delivery deferred, then let go of the store (closed unless shared)."""
        if self._records.is_open:
            try:
                self._delivery.close()
            except StoreError as exc:  # reported once, unless the session ended with it
                if self._outcome is None or self._outcome.reason != STORE_ERROR:
                    self.error(str(exc))
                    self._outcome = Outcome(STORE_ERROR, EXIT_STORE)
            finally:
                with contextlib.suppress(StoreError):
                    self._records.close()
                self._states = None

    def emit(self, event: str, **fields: Any) -> None:
        """Report an event (see specs/cli-jsonl.md)."""
        self._sink.emit(event, **fields)

    def mailbox_sent(self, mid: bytes) -> None:
        """An outbox text left by mailbox (a relay took it): `sent` with `via` "mailbox"."""
        self._delivery.emit_sent_by_mailbox(mid)

    def error(self, message: str) -> None:
        self._sink.emit("error", message=" ".join(message.split()))

    # -- waiting (every wait races quit and the end of the session) --------------------------

    async def wait(self, awaitable: Awaitable[T], limit: float | None, what: str) -> T:
        """`awaitable`'s result; QuitRequested, SessionEnded or PhaseTimeout(what) first."""
        return await race(awaitable, limit, what, quit_=self._quit, ended=self._ended)

    async def next_response(self, limit: float) -> str:
        """The next response token the user gives (the inviter's side)."""
        tokens = self._responses.open()
        self.expecting = Expecting.RESPONSE
        return await self.wait(tokens.get(), limit, "waiting for the response token")

    def stop_responses(self) -> None:
        """A valid response was taken: any further one is refused (single use)."""
        self._responses.stop()
        self.expecting = Expecting.CHAT

    def mark(self, name: str) -> None:
        """Record the time since the node was made (ms) under `name` (for `connected`)."""
        self.timings_ms[name] = round((time.monotonic() - self._t0) * 1000)

    # -- the session -------------------------------------------------------------------------

    async def run_session(
        self,
        peer: Peer,
        *,
        initiator: bool,
        peer_did: str,
        invitation_id: bytes,
        suggested_name: str | None = None,
        reconnect: bool = False,
        peer_relays: tuple[str, ...] = (),
    ) -> Outcome:
        """Handshake, SAS gate, chat until quit or close; always emits `closed` at the end.

        `reconnect`: a session with a known contact (`didlink chat`): if our contact is verified,
        we confirm the SAS on our user's behalf (no `sas` event; specs/cli-jsonl.md section 4a).
        `peer_relays`: the relays the peer's token carried, kept with the contact once verified.
        """
        self._peer = peer
        self._suggested_name = suggested_name
        self._peer_relays = peer_relays
        self.bind_peer(peer_did)
        try:
            outcome = await self._session(
                peer,
                initiator=initiator,
                invitation_id=invitation_id,
                reconnect=reconnect,
            )
        except QuitRequested:
            outcome = await self._quit_session()
        except SessionEnded:
            outcome = self._outcome or Outcome("connection lost", EXIT_FAILED)
        except (PhaseTimeout, HandshakeFailed, MessagingError, TransportError, StoreError) as exc:
            outcome, message = failure_outcome(exc)
            self.error(message)
        if sas_rejected(outcome.reason):
            self._delivery.drop_typed()  # typed for a connection that may be intercepted
            self._records.mark_suspect(peer_did)  # the only write (specs/store.md)
        await self._shutdown(close_reason=outcome.reason)
        if self._outcome is not None and self._outcome.reason == STORE_ERROR:
            outcome = self._outcome  # (also when writing what was deferred failed at the end)
        warn_rejected(self._sink, outcome.reason, peer_did)
        self._sink.emit("closed", reason=outcome.reason)
        return outcome

    async def _session(
        self,
        peer: Peer,
        *,
        initiator: bool,
        invitation_id: bytes,
        reconnect: bool,
    ) -> Outcome:
        try:
            result = await self.wait(
                self._handshake.run(
                    peer, initiator=initiator, peer_did=self._peer_did, invitation_id=invitation_id
                ),
                self.timeouts.connect,
                "the handshake",
            )
        except MessagingError as exc:  # e.g. a man in the middle: the commitment does not match
            raise HandshakeFailed() from exc
        self.mark("handshake")
        # Connect-path order (bench/: connect_time): the Hello first (the peer waits for it),
        # then the `sas` event. Nothing is read from the peer before the end. The contact is
        # written once the SAS step is over, whichever way (PeerRecords).
        known_verified = reconnect and self._records.contact_verified(self._peer_did)
        self._channel = SecureChannel.from_handshake(result)
        # A first contact (not a reconnect) leaves a persistent session once verified (issue 25).
        self._first_contact = None if reconnect else result
        self._delivery.start(
            self._channel, kick=self._kick_writer, writer_waiting=lambda: self._writer_waiting
        )
        for frame in self._channel.data_to_send():  # the initiator's Hello (no writer yet)
            await peer.send(frame)
        await asyncio.sleep(0)  # the transport puts it on the wire now, then we go on
        if not known_verified:
            self.expecting = Expecting.SAS  # before the `sas` event: its reader may ask
        decision = self._sas_decision.ask(result.handshake_hash, known_verified=known_verified)
        self._transfers = Transfers(
            channel=self._channel,
            downloads=self.downloads,
            peer_did=self._peer_did,
            emit=self._sink.emit,
            flush=self._flush,
            kick=self._kick_writer,
            progressed=self._progressed.set,
            states=self._states,
            policy=self._files,
            asking=self._asking_files,
            store_failed=lambda exc: self._end(STORE_ERROR, EXIT_STORE, str(exc)),
        )
        self._tasks = [
            asyncio.create_task(self._read_loop()),
            asyncio.create_task(self._write_loop()),
        ]
        confirmed = await self.wait(decision, self.timeouts.sas, "confirming the SAS")
        self.expecting = Expecting.CHAT
        if self._ended.is_set():  # the peer closed while the user was deciding
            raise SessionEnded()
        if not confirmed:
            self._gate.reject()
            return Outcome(SAS_REJECTED, EXIT_FAILED)
        self.mark("sas_confirmed")
        self._channel.send(self._gate.confirm())
        # On the wire before `connected` and its bookkeeping: the peer waits for it.
        await self.wait(self._flush(), self.timeouts.connect, "sending the SAS confirmation")
        self._check_verified()
        await self.wait(Flag().wait(), None, "the chat")  # until quit / end
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_verified(self) -> None:
        if not self._mark_verified():
            return
        self._delivery.send_pending()  # unacknowledged messages, older sessions' first
        self._transfers_now().start()  # tidy partial files; resume, then the queued files
        self._outgoing.release()  # what was given before: texts, files

    def _mark_verified(self) -> bool:
        """Once the gate is open: `connected`, and the contact is SAS-verified; True that once."""
        if self._verified or not self._gate.is_open:
            return False
        self._verified = True
        self.mark("verified")
        extra = {} if self.response_source is None else {"response_via": self.response_source}
        self._sink.emit(
            "connected",
            peer=self._peer_did,
            verified=True,
            path=self._peer.path if self._peer is not None else None,  # transport.md §6.12
            timings_ms=dict(self.timings_ms),
            suggested_name=self._peer_suggestion(),
            **extra,
        )
        self._records.mark_sas_verified(self._peer_did, self._suggested_name)
        if self._peer_relays:
            self._records.keep_relays(self._peer_did, self._peer_relays)
        if self._first_contact is not None:
            self._records.install_session(self._peer_did, self._first_contact, Sealer(self._key))
        return True

    def _peer_suggestion(self) -> str | None:
        """The name the peer suggests for itself: the one kept with its contact (an existing
        contact's new label changes nothing: specs/store.md "Names"), else this session's
        label (its invitation's or response's) if it is a valid name, else None."""
        contact = self._records.store().get_contact(self._peer_did)
        if contact is not None:
            return contact.suggested_name
        return as_suggestion(self._suggested_name)

    # -- sending -----------------------------------------------------------------------------

    def _kick_writer(self) -> None:
        if self._commands:
            self._kick_held = True
            return
        self._idle.clear()
        self._kick.set()

    def _write_through(self) -> None:
        """The writer's step done here, now, if the writer is idle (no wake-up of its task
        between a typed text and the wire); the writer itself if the transport has to wait."""
        if self._writer_waiting:  # (so the session's peer and channel exist)
            try:
                if self._write_step():
                    return
            except Exception as exc:  # as in the writer's task
                self._writer_failed(exc)
                return
        self._kick_writer()

    async def _flush(self) -> None:
        """Until the writer handed everything queued so far to the transport."""
        self._kick_writer()
        await self._idle.wait()

    def transfers_in_progress(self) -> list[TransferInProgress]:
        """The files being sent or received now (none before the handshake)."""
        return [] if self._transfers is None else self._transfers.in_progress()

    def _transfers_now(self) -> Transfers:
        assert self._transfers is not None  # exists from the handshake on
        return self._transfers

    async def _write_loop(self) -> None:
        assert self._channel is not None and self._peer is not None
        try:
            while True:
                self._writer_waiting = True
                await self._kick.wait()
                self._writer_waiting = False
                self._kick.clear()
                while not self._write_step():
                    await self._peer.send(self._unsent.popleft())  # waits for room
                if not self._kick.is_set():
                    self._idle.set()
        except Exception as exc:
            self._writer_failed(exc)
        finally:
            self._writer_waiting = False  # no writer step runs any more, here or through

    def _write_step(self) -> bool:
        """Encrypt what is queued and hand the transport every frame it takes without waiting,
        in ratchet order; True if none is left (False: the rest waits in `_unsent`)."""
        assert self._channel is not None and self._peer is not None
        if not self._hand_over():  # frames that waited come first
            return False
        self._leaving = self._delivery.take_leaving()
        self._unsent.extend(self._channel.data_to_send())
        return self._hand_over()

    def _hand_over(self) -> bool:
        """`_unsent` to the transport while it takes them at once; once all went, `sent` can be
        reported for their texts. True if none is left."""
        assert self._peer is not None
        unsent = self._unsent
        while unsent:
            if not self._peer.try_send(unsent[0]):
                return False
            unsent.popleft()
        if self._leaving:
            leaving, self._leaving = self._leaving, []
            self._delivery.report_sent(leaving)
        return True

    def _writer_failed(self, exc: Exception) -> None:
        self._idle.set()
        if isinstance(exc, TransportError | MessagingError):
            self._end("connection lost", EXIT_FAILED, str(exc))
        elif isinstance(exc, StoreError):  # names the file and what to do
            self._end(STORE_ERROR, EXIT_STORE, str(exc))
        else:  # a bug: end the session visibly rather than hang
            self._end("internal error", EXIT_FAILED, f"internal error: {exc!r}")

    # -- receiving ---------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        """Frames are read by `_on_frame` as they arrive; this task ends with the connection."""
        assert self._peer is not None
        try:
            self._reading = True
            self._peer.deliver_to(self._on_frame)  # frames queued so far are read right now
            await self._peer.recv()  # after deliver_to it only raises: the connection ended
            raise AssertionError("recv returned a frame after deliver_to")  # pragma: no cover
        except TransportError as exc:
            if self._verified or self._closing:
                self._end("connection lost", EXIT_FAILED)
            else:
                self._end("connection lost", EXIT_FAILED, f"{exc} (before the SAS was confirmed)")
        except Exception as exc:  # a bug: end the session visibly rather than hang
            self._end("internal error", EXIT_FAILED, f"internal error: {exc!r}")
        finally:
            self._reading = False  # cancelled (shutdown) or ended: later frames are not read

    def _on_frame(self, frame: bytes) -> None:
        """One frame from the peer, inside the transport's receive step (Peer.deliver_to).
        (No context manager on this path unless needed: a generator one costs tens of
        microseconds when the caches are cold, as they are for a message after a pause.)"""
        if not self._reading or self._ended.is_set():
            return
        assert self._channel is not None
        try:
            events = self._channel.receive(frame)
            # A verified session's burst (texts, receipts) leaves in one write, before any
            # receipt; a lone event, and those of the connection's set-up (`connected` is
            # followed by store work), at once.
            if self._verified and len(events) > 1:
                with held(self._sink):
                    for event in events:
                        self._on_event(event)
            else:
                for event in events:
                    self._on_event(event)
            self._send_receipts(queue_empty=False)  # only a full batch goes now
            if not self._receipts_due:  # the rest once this receive step is over
                self._receipts_due = True
                asyncio.get_running_loop().call_soon(self._after_frames)
        except Exception as exc:
            self._read_failed(exc)

    def _after_frames(self) -> None:
        """The transport's receive step is over: acknowledge what it brought in one receipt,
        do the key work of our next send now rather than when it is typed, if nothing is
        leaving announce our new ratchet key so that the peer's key work is done now too, and
        do the key work of the next message we expect to read."""
        self._receipts_due = False
        try:
            self._send_receipts(queue_empty=True)
            channel = self._channel
            assert channel is not None
            channel.prepare_send()
            if not self._unsent:  # (else the frames waiting before it come first anyway)
                announcement = channel.key_announcement()
                if announcement is not None:
                    self._unsent.append(announcement)
                    self._write_through()
                    channel.prepare_send()  # for the message after it
            channel.prepare_receive()
        except Exception as exc:
            self._read_failed(exc)

    def _read_failed(self, exc: Exception) -> None:
        """A frame the peer should not have sent, or a bug, ends the session and the reading."""
        self._reading = False
        if isinstance(exc, MessagingError):
            self._end("protocol error", EXIT_FAILED, f"the peer broke the protocol: {exc}")
        elif isinstance(exc, StoreError):  # e.g. a damaged page read for a resent message
            self._end(STORE_ERROR, EXIT_STORE, str(exc))
        else:  # a bug: end the session visibly rather than hang
            self._end("internal error", EXIT_FAILED, f"internal error: {exc!r}")

    def _send_receipts(self, *, queue_empty: bool) -> None:
        assert self._channel is not None
        receipts = self._delivery.receipts(queue_empty=queue_empty)
        for receipt in receipts:
            self._channel.send(receipt)
        if receipts:
            self._kick_writer()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, HelloReceived):
            self._hello.set()
            self._kick_writer()  # the responder can send now: its queued SasConfirm goes out
        elif isinstance(event, ReceiptReceived):
            self._progressed.set()
            self._delivery.on_receipt(event.ids)
        elif isinstance(event, CloseReceived):
            if event.reason == SAS_REJECTED:
                self._end("sas rejected by peer", EXIT_FAILED)
            else:  # both confirmed, though our bookkeeping (after the flush) may not have run
                self._mark_verified()
                self._end("peer closed", EXIT_OK if self._verified else EXIT_FAILED)
        elif isinstance(event, MessagesMissing | MessagesLost):
            raise RemoteProtocolError("messages went missing on a reliable channel")
        elif isinstance(event, MessageReceived):
            self._on_message(event)

    def _on_message(self, event: MessageReceived) -> None:
        message = event.message
        if self._gate.receive(message):  # the peer's sas_confirm; or RemoteProtocolError
            self._check_verified()
            return
        if isinstance(message, Text):
            self._delivery.on_text(event.seq, message)
        elif isinstance(message, FileOffer | FileChunk):
            self._transfers_now().on_data(message)
        elif isinstance(message, FileAck):
            self._transfers_now().on_ack(message)
        elif isinstance(message, FileError):
            self._transfers_now().on_file_error(message)

    def _asking_files(self, asking: bool) -> None:
        """A typed line answers the file question while one waits (--files ask, line mode)."""
        if asking and self.expecting is Expecting.CHAT:
            self.expecting = Expecting.FILE
        elif not asking and self.expecting is Expecting.FILE:
            self.expecting = Expecting.CHAT

    # -- the end -----------------------------------------------------------------------------

    def _end(self, reason: str, exit_code: int, error: str | None = None) -> None:
        if self._outcome is not None or self._closing:
            return
        if error is not None:
            self.error(error)
        self._outcome = Outcome(reason, exit_code)
        self._ended.set()
        self._progressed.set()

    async def _quit_session(self) -> Outcome:
        """Quit: give receipts and file acks `flush` seconds, then close (exit 0). After "quit
        anyway" during a transfer (`Quit.wait_for_files` False) only the receipts are waited for."""
        self._warn_unsent(kept_too=not self._verified)
        self._outgoing.discard()
        if self._verified:
            transfers = self._transfers_now()
            files = self._quit_waits_for_files  # else they resume in a later session
            await wait_acknowledged(
                busy=lambda: self._delivery.unacknowledged or (files and transfers.pending),
                progressed=self._progressed,
                ended=self._ended,
                limit=self.timeouts.flush,
            )
            if self._delivery.unacknowledged or (files and transfers.unacknowledged):
                self.error(
                    "quit before the peer confirmed everything that was sent (unconfirmed"
                    " messages stay in the outbox and are sent again next time)"
                )
        return Outcome("quit", EXIT_OK)

    async def _shutdown(self, *, close_reason: str) -> None:
        """Send Close if we still can, close the transport, stop the tasks, drop partial files."""
        self._closing = True
        channel, peer = self._channel, self._peer
        if channel is not None and channel.state is ChannelState.OPEN and not self._ended.is_set():
            await send_close(
                channel,
                close_reason,
                hello=self._hello,
                kick_writer=self._kick_writer,
                writer_idle=self._idle,
            )
        if self._transfers is not None:
            await self._transfers.stop()
        await stop_tasks(self._tasks)
        if peer is not None:
            with contextlib.suppress(TransportError):
                await peer.close()
        self._outgoing.discard()
        self._close_store()
