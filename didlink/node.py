"""The node: one live connection = a transport `Peer` + a `Handshake` + a `SecureChannel`.

Theory of operation (specs/cli-jsonl.md has the events and commands)
---------------------------------------------------------------------
This is thin asyncio glue; every protocol decision lives in messaging/ and transport/.

    token exchange (didlink/live.py) -> handshake -> SAS shown -> both confirm -> chat, files
                                                              -> a rejection -> closed, exit 1

- Commands arrive at any time (`handle`). Messages and files typed before both sides confirmed
  the SAS wait in `_outbox`; nothing but the handshake, the Hello, a `SasConfirm` and a `Close`
  leaves before that (DESIGN.md "Messaging" 3).
- After the handshake two tasks run: the reader (frames in -> events out, receipts batched;
  each frame is handled inside the transport's receive step, `Peer.deliver_to`, so no
  event-loop hop delays it, and the receipts of one step go out together after it) and the
  writer (the only one that encrypts and sends: `channel.data_to_send()` then
  `await peer.send()` frame by frame, so frames leave in ratchet order and `Peer.send`'s
  backpressure slows whoever queued them). Files are didlink/transfers.py's business: one
  task per file queues a few chunks and waits until the writer is idle again.
- The SAS gate is messaging/sas_gate.py's state machine: each side sends `SasConfirm` when its
  user confirms, and the gate refuses any application message before both confirmations. The
  responder's channel cannot send before the initiator's Hello, so its confirmation simply waits
  in the channel's queue. When the gate opens, `connected` is emitted, the contact is saved
  as SAS-verified and the outbox is sent.
- The connect path (bench/: connect_time) does first what the peer or the user waits for: the
  handshake is built before the channel opens (`prepare_handshake`; didlink/session_handshake.py,
  used only if it fits the verified fingerprints), `sas` is emitted and the Hello put on the
  wire before the contact is written, and our `SasConfirm` is handed to the transport before
  `connected`'s bookkeeping.
- Nothing lost (specs/cli-jsonl.md 4b) is didlink/delivery.py's business: once the peer is
  known (`bind_peer`) every text goes to the persistent, sealed outbox under a stable 16-byte
  `mid`, written before the writer encrypts anything; it leaves when the session is verified
  (earlier sessions' leftovers first) and is removed when its receipt arrives; the receiver
  drops a `mid` it already delivered. Unfinished files resume (didlink/resume.py). A reconnect
  (`didlink chat`) to a verified contact confirms the SAS by itself (section 4a).
- Every wait is bounded or races the user's quit; the end of the session is one `Outcome`
  (reason, exit code; didlink/session_outcome.py): quit -> 0; the peer closed a verified
  session -> 0; anything else (SAS rejected by either side, timeout, lost connection, protocol
  error) -> 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from didlink.delivery import RECEIPT_BATCH, Delivery
from didlink.errors import UserError
from didlink.files import OutgoingFile
from didlink.history import HistoryLog
from didlink.jsonl import (
    Command,
    ConfirmSas,
    EventSink,
    Expecting,
    Quit,
    RejectSas,
    SendFile,
    SendText,
    SubmitResponse,
)
from didlink.outbox import Outbox
from didlink.profile import Profile
from didlink.resume import TransferStates
from didlink.sealing import Sealer
from didlink.session_handshake import MessagePipe, PreparedHandshake, pump_handshake
from didlink.session_outcome import (
    EXIT_FAILED,
    EXIT_OK,
    HandshakeFailed,
    Outcome,
    PhaseTimeout,
    QuitRequested,
    SessionEnded,
    Timeouts,
)
from didlink.store import Store, check_did, check_name
from didlink.transfers import Transfers
from identity.contact import Verification
from identity.keys import IdentityKey
from messaging.channel import (
    ChannelState,
    CloseReceived,
    Event,
    HelloReceived,
    MessageReceived,
    MessagesLost,
    MessagesMissing,
    ReceiptReceived,
    SecureChannel,
)
from messaging.errors import MessagingError, RemoteProtocolError
from messaging.frames import FileAck, FileChunk, FileOffer, Text
from messaging.handshake import HandshakeResult
from messaging.sas import ShortAuthString
from messaging.sas_gate import SasGate
from transport import Peer, TransportError

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

SAS_REJECTED = "sas rejected"
HELLO_GRACE = 2.0  # closing before the Hello: seconds to wait so that the Close can be sent


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
    ) -> None:
        self._key = key
        self._profile = profile
        self._sink = sink
        self.timeouts = timeouts
        self.downloads = profile.path / "downloads"
        self.expecting = Expecting.CHAT
        self._quit = asyncio.Event()
        self._ended = asyncio.Event()
        self._outcome: Outcome | None = None
        self._outbox: list[SendText | OutgoingFile] = []  # in memory: files, texts before a peer
        self._store: Store | None = None  # open once the peer is known (bind_peer)
        self._shared_store = store  # given by a caller running several sessions; it closes it
        self._delivery = Delivery(  # chat messages: outbox, receipts, exactly once
            sink=sink,
            history=history,
            fail=lambda error: self._end("internal error", EXIT_FAILED, error),
        )
        self._states: TransferStates | None = None  # file transfers to resume
        self._responses: asyncio.Queue[str] | None = None
        self._answered = False
        self._sas_decision: asyncio.Future[bool] | None = None
        # the session, once the transport is open
        self._peer: Peer | None = None
        self._channel: SecureChannel | None = None
        self._peer_did = ""
        self._prepared: PreparedHandshake | None = None
        self._gate = SasGate()  # messaging/sas_gate.py: both confirmations before anything else
        self._verified = False  # the gate opened and `connected` was emitted
        self._closing = False
        self._transfers: Transfers | None = None
        self._kick = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._hello = asyncio.Event()  # the responder received the initiator's Hello
        self._progressed = asyncio.Event()  # a receipt, a file ack or a file task ended
        self._tasks: list[asyncio.Task[None]] = []
        self._reading = False  # the reader takes frames (from its start until it ends)
        self._receipts_due = False  # a frame was read: its receipts go out after this step
        self.timings_ms: dict[str, int] = {}
        self._t0 = time.monotonic()

    # -- commands ------------------------------------------------------------------------------

    def handle(self, command: Command) -> None:
        """Act on one user command (any phase); problems become `error` events."""
        if isinstance(command, Quit):
            self._quit.set()
        elif isinstance(command, SubmitResponse):
            if self._responses is not None:
                self._responses.put_nowait(command.token)
            elif self._answered:
                self.error("this invitation was already answered: it connects only once")
            else:
                self.error("no response token is expected now")
        elif isinstance(command, ConfirmSas | RejectSas):
            if self._sas_decision is None or self._sas_decision.done():
                self.error("there is no SAS waiting for a decision now")
            else:
                self._sas_decision.set_result(isinstance(command, ConfirmSas))
        elif self._closing or self._ended.is_set():
            self.error("the session is closing: nothing more can be sent")
        elif isinstance(command, SendText):
            try:
                Text(text=command.text)
            except ValueError as exc:
                self.error(f"cannot send this message: {exc}")
                return
            self._queue_or_send(command)
        elif isinstance(command, SendFile):
            try:
                outgoing = OutgoingFile(Path(command.path).expanduser())
                outgoing.offer()  # the name must be sendable
            except UserError as exc:
                self.error(str(exc))
                return
            self._queue_or_send(outgoing)

    def _queue_or_send(self, item: SendText | OutgoingFile) -> None:
        if isinstance(item, SendText) and self._delivery.bound:
            mid = self._delivery.add(item.text, ref=item.ref)
            if self._verified:
                self._delivery.send(mid, item.text)
        elif not self._verified:
            self._outbox.append(item)
        elif isinstance(item, SendText):  # pragma: no cover - a verified session has a peer
            raise AssertionError("a verified session always has its outbox")
        else:
            self._transfers_now().send(item)

    def bind_peer(self, peer_did: str) -> None:
        """The peer is known: open the persistent outbox; texts typed so far move into it."""
        if self._delivery.bound:
            return
        self._peer_did = check_did(peer_did)  # validated now (and remembered) rather than
        self._store = self.store()  # when the contact is saved, on the connect path
        sealer = Sealer(self._key)
        self._delivery.bind(self._peer_did, Outbox(self._store, sealer))
        self._states = TransferStates(self._store, sealer)
        waiting, self._outbox = self._outbox, []
        for item in waiting:
            self._queue_or_send(item)

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
        prepared handshake only if the open channel verified exactly these fingerprints, and
        builds one there otherwise (which is also where a bad peer DID is reported).
        """
        try:
            self._prepared = PreparedHandshake.build(
                key=self._key,
                initiator=initiator,
                peer_did=peer_did,
                invitation_id=invitation_id,
                local_fingerprint=local_fingerprint,
                peer_fingerprint=peer_fingerprint,
            )
        except MessagingError:
            self._prepared = None

    def store(self) -> Store:
        """The session's local store: opened on first use, kept open until the node ends.

        One SQLite connection per session (or one shared by a process's sessions): opening and
        closing one per write cost milliseconds on the connect path (closing checkpoints the
        WAL, with fsyncs) and memory (bench/: connect_time, memory_per_session).
        """
        if self._store is None:
            shared = self._shared_store
            self._store = shared if shared is not None else self._profile.open_store()
        return self._store

    def _warn_unsent(self, *, kept_too: bool) -> None:
        """Tell the user what was queued but not sent: kept messages (if `kept_too`), and
        queued items that are dropped."""
        kept = self._delivery.kept() if kept_too else 0
        if kept:
            self._sink.warn(
                f"{kept} queued messages were not sent yet: they are kept (encrypted) in the"
                f" outbox and will be sent the next time you connect with {self._peer_did}."
            )
        if self._outbox:
            self._sink.warn(
                f"{len(self._outbox)} queued files or messages were not sent"
                " (files are not kept: send them again next time)."
            )

    def release(self) -> None:
        """The flow ended before a session started: say what stays queued, close the store."""
        self._warn_unsent(kept_too=True)
        for item in self._outbox:
            if isinstance(item, OutgoingFile):
                item.close()
        self._outbox = []
        if self._store is not None:
            self._delivery.close()
            if self._store is not self._shared_store:
                self._store.close()
            self._store, self._states = None, None

    def emit(self, event: str, **fields: Any) -> None:
        """Report an event (see specs/cli-jsonl.md)."""
        self._sink.emit(event, **fields)

    def error(self, message: str) -> None:
        self._sink.emit("error", message=" ".join(message.split()))

    # -- waiting (every wait races quit and the end of the session) --------------------------

    async def wait(self, awaitable: Awaitable[T], limit: float | None, what: str) -> T:
        """`awaitable`'s result; QuitRequested, SessionEnded or PhaseTimeout(what) first."""
        main = asyncio.ensure_future(awaitable)
        quit_ = asyncio.ensure_future(self._quit.wait())
        ended = asyncio.ensure_future(self._ended.wait())
        try:
            done, _ = await asyncio.wait(
                {main, quit_, ended}, timeout=limit, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (quit_, ended):
                task.cancel()
        if main in done:
            return main.result()
        main.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await main
        if quit_ in done:
            raise QuitRequested()
        if ended in done:
            raise SessionEnded()
        raise PhaseTimeout(f"{what} took longer than {limit or 0:g} s")

    async def next_response(self, limit: float) -> str:
        """The next response token the user gives (the inviter's side)."""
        if self._responses is None:
            self._responses = asyncio.Queue()
        self.expecting = Expecting.RESPONSE
        return await self.wait(self._responses.get(), limit, "waiting for the response token")

    def stop_responses(self) -> None:
        """A valid response was taken: any further one is refused (single use)."""
        self._responses = None
        self._answered = True
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
        petname: str | None = None,
        reconnect: bool = False,
    ) -> Outcome:
        """Handshake, SAS gate, chat until quit or close; always emits `closed` at the end.

        `reconnect`: a session with a known contact (`didlink chat`): if our contact is verified,
        we confirm the SAS on our user's behalf (no `sas` event; specs/cli-jsonl.md section 4a).
        """
        self._peer = peer
        self.bind_peer(peer_did)
        try:
            outcome = await self._session(
                peer,
                initiator=initiator,
                invitation_id=invitation_id,
                petname=petname,
                reconnect=reconnect,
            )
        except QuitRequested:
            outcome = await self._quit_session()
        except SessionEnded:
            outcome = self._outcome or Outcome("connection lost", EXIT_FAILED)
        except PhaseTimeout as exc:
            self.error(str(exc))
            outcome = Outcome("timeout", EXIT_FAILED)
        except HandshakeFailed as exc:
            self.error(f"the secure handshake failed ({exc.__cause__})")
            outcome = Outcome("handshake failed", EXIT_FAILED)
        except MessagingError as exc:
            self.error(f"the secure session failed ({exc})")
            outcome = Outcome("protocol error", EXIT_FAILED)
        except TransportError as exc:
            self.error(str(exc))
            outcome = Outcome("connection lost", EXIT_FAILED)
        if outcome.reason in (SAS_REJECTED, "sas rejected by peer"):
            self._delivery.drop_typed()  # typed for a connection that may be intercepted
        await self._shutdown(close_reason=outcome.reason)
        if outcome.reason == SAS_REJECTED:
            self._sink.warn(
                "You rejected the SAS: this connection may have been intercepted. Nothing was"
                f" sent and {peer_did} stays unverified."
            )
        elif outcome.reason == "sas rejected by peer":
            self._sink.warn(
                "Your contact rejected the SAS: this connection may have been intercepted."
                f" Nothing was sent and {peer_did} stays unverified."
            )
        self._sink.emit("closed", reason=outcome.reason)
        return outcome

    async def _session(
        self,
        peer: Peer,
        *,
        initiator: bool,
        invitation_id: bytes,
        petname: str | None,
        reconnect: bool,
    ) -> Outcome:
        try:
            result = await self.wait(
                self._handshake(peer, initiator=initiator, invitation_id=invitation_id),
                self.timeouts.connect,
                "the handshake",
            )
        except MessagingError as exc:  # e.g. a man in the middle: the commitment does not match
            raise HandshakeFailed() from exc
        self.mark("handshake")
        # Connect-path order (bench/: connect_time): what the user and the peer wait for first,
        # the bookkeeping while they compare. Nothing is read from the peer before the end.
        known_verified = reconnect and self._contact_verified()
        self._sas_decision = asyncio.get_running_loop().create_future()
        if known_verified:  # verified before: the Noise KK handshake authenticated the DID
            self._sas_decision.set_result(True)
        else:
            sas = ShortAuthString.from_handshake_hash(result.handshake_hash)
            self.expecting = Expecting.SAS
            self._sink.emit(
                "sas",
                emoji=[e.emoji for e in sas.emoji],
                names=list(sas.names()),
                decimal=list(sas.decimal),
            )
        self._channel = SecureChannel.from_handshake(result)
        self._delivery.start(self._channel, kick=self._kick_writer)
        for frame in self._channel.data_to_send():  # the initiator's Hello (no writer yet)
            await peer.send(frame)
        await asyncio.sleep(0)  # the transport puts it on the wire now, then we go on
        self._save_contact(petname)  # before the reader starts: the gate may open on a frame
        self._transfers = Transfers(
            channel=self._channel,
            downloads=self.downloads,
            peer_did=self._peer_did,
            emit=self._sink.emit,
            flush=self._flush,
            kick=self._kick_writer,
            progressed=self._progressed.set,
            states=self._states,
        )
        self._tasks = [
            asyncio.create_task(self._read_loop()),
            asyncio.create_task(self._write_loop()),
        ]
        confirmed = await self.wait(self._sas_decision, self.timeouts.sas, "confirming the SAS")
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
        await self.wait(asyncio.Event().wait(), None, "the chat")  # until quit / end
        raise AssertionError("unreachable")  # pragma: no cover

    async def _handshake(
        self, peer: Peer, *, initiator: bool, invitation_id: bytes
    ) -> HandshakeResult:
        remote = peer.remote_fingerprint
        if remote is None:  # pragma: no cover - wait_open sets it
            raise UserError("the transport did not expose the peer's fingerprint")
        prepared, self._prepared = self._prepared, None
        if prepared is None or not prepared.fits(
            peer_did=self._peer_did,
            invitation_id=invitation_id,
            local=peer.local_fingerprint,
            remote=remote,
        ):
            prepared = PreparedHandshake.build(
                key=self._key,
                initiator=initiator,
                peer_did=self._peer_did,
                invitation_id=invitation_id,
                local_fingerprint=peer.local_fingerprint,
                peer_fingerprint=remote,
            )
        return await pump_handshake(peer, prepared.handshake, first=prepared.first)

    def _save_contact(self, petname: str | None) -> None:
        now = datetime.now(UTC)
        store = self.store()
        if petname is not None and store.get_contact(self._peer_did) is None:
            try:
                store.add_contact(self._peer_did, name=check_name(petname), now=now)
                return
            except UserError:  # a bad or taken name: keep the contact unnamed
                pass
        store.add_contact(self._peer_did, now=now)

    def _contact_verified(self) -> bool:
        contact = self.store().get_contact(self._peer_did)
        return contact is not None and contact.verification is not Verification.UNVERIFIED

    def _check_verified(self) -> None:
        if not self._mark_verified():
            return
        self._delivery.send_pending()  # unacknowledged messages, older sessions' first
        self._transfers_now().resume_outgoing()  # files a previous session did not finish
        outbox, self._outbox = self._outbox, []
        for item in outbox:
            self._queue_or_send(item)

    def _mark_verified(self) -> bool:
        """Once the gate is open: `connected`, and the contact is SAS-verified; True that once."""
        if self._verified or not self._gate.is_open:
            return False
        self._verified = True
        self.mark("verified")
        self._sink.emit(
            "connected", peer=self._peer_did, verified=True, timings_ms=dict(self.timings_ms)
        )
        if not self._contact_verified():  # never downgrade a safety-number verification
            self.store().set_verification(self._peer_did, Verification.SAS)
        return True

    # -- sending -----------------------------------------------------------------------------

    def _kick_writer(self) -> None:
        self._idle.clear()
        self._kick.set()

    async def _flush(self) -> None:
        """Until the writer handed everything queued so far to the transport."""
        self._kick_writer()
        await self._idle.wait()

    def _transfers_now(self) -> Transfers:
        assert self._transfers is not None  # exists from the handshake on
        return self._transfers

    async def _write_loop(self) -> None:
        assert self._channel is not None and self._peer is not None
        try:
            while True:
                await self._kick.wait()
                self._kick.clear()
                self._delivery.before_encrypt()  # what we encrypt is on disk first (4b)
                leaving = self._delivery.take_leaving()
                for frame in self._channel.data_to_send():
                    await self._peer.send(frame)
                self._delivery.report_sent(leaving)
                if not self._kick.is_set():
                    self._idle.set()
        except (TransportError, MessagingError) as exc:
            self._idle.set()
            self._end("connection lost", EXIT_FAILED, str(exc))
        except Exception as exc:  # a bug: end the session visibly rather than hang
            self._idle.set()
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
        """One frame from the peer, inside the transport's receive step (Peer.deliver_to)."""
        if not self._reading or self._ended.is_set():
            return
        assert self._channel is not None
        with self._read_errors():
            for event in self._channel.receive(frame):
                self._on_event(event)
            self._send_receipts(queue_empty=False)  # only a full batch goes now
            if not self._receipts_due:  # the rest once this receive step is over
                self._receipts_due = True
                asyncio.get_running_loop().call_soon(self._after_frames)

    def _after_frames(self) -> None:
        """The transport's receive step is over: acknowledge what it brought in one receipt,
        and do the key work of our next send now rather than when it is typed."""
        self._receipts_due = False
        with self._read_errors():
            self._send_receipts(queue_empty=True)
            assert self._channel is not None
            self._channel.prepare_send()

    def _send_receipts(self, *, queue_empty: bool) -> None:
        assert self._channel is not None
        receipts = self._delivery.receipts(queue_empty=queue_empty)
        for receipt in receipts:
            self._channel.send(receipt)
        if receipts:
            self._kick_writer()

    @contextlib.contextmanager
    def _read_errors(self) -> Iterator[None]:
        """A frame the peer should not have sent, or a bug, ends the session and the reading."""
        try:
            yield
        except MessagingError as exc:
            self._reading = False
            self._end("protocol error", EXIT_FAILED, f"the peer broke the protocol: {exc}")
        except Exception as exc:  # a bug: end the session visibly rather than hang
            self._reading = False
            self._end("internal error", EXIT_FAILED, f"internal error: {exc!r}")

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
        """Quit: give receipts and file acks `flush` seconds, then close (exit 0)."""
        self._warn_unsent(kept_too=not self._verified)
        self._outbox = []
        if self._verified:
            deadline = time.monotonic() + self.timeouts.flush
            transfers = self._transfers_now()
            while (self._delivery.unacknowledged or transfers.pending) and not (
                self._ended.is_set() or time.monotonic() > deadline
            ):
                self._progressed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(deadline - time.monotonic()):
                        await self._progressed.wait()
            if self._delivery.unacknowledged or transfers.unacknowledged:
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
            with contextlib.suppress(MessagingError, TimeoutError):
                channel.close(close_reason)
                if not channel.session.can_send:  # the responder before the Hello: wait a bit,
                    async with asyncio.timeout(HELLO_GRACE):  # so the peer learns why
                        await self._hello.wait()
            with contextlib.suppress(TimeoutError):
                self._kick_writer()
                async with asyncio.timeout(5.0):
                    await self._idle.wait()
        if self._transfers is not None:
            await self._transfers.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if peer is not None:
            with contextlib.suppress(TransportError):
                await peer.close()
        for item in self._outbox:
            if isinstance(item, OutgoingFile):
                item.close()
        if self._store is not None:
            self._delivery.close()
            if self._store is not self._shared_store:
                self._store.close()
            self._store, self._states = None, None
