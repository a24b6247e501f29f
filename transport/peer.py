"""`Peer`: one WebRTC connection with one ordered, reliable data channel (specs/transport.md §6).

Theory of operation
-------------------
States: NEW -> CONNECTING -> OPEN -> CLOSED, with FAILED sticky from NEW/CONNECTING/OPEN.

The offerer calls `create_offer()` (ICE gathering completes first, so the compact offer holds
every candidate), hands the offer over by some signaling, and applies the answer with
`accept_answer()`. The answerer calls `accept_offer()` and hands back the answer it returns. Both
then `wait_open()`. The data channel is pre-negotiated (id 0), so neither side waits for the
other to announce it. When it opens we read the peer's DTLS certificate and check its sha-256
fingerprint against the compact offer once more (aiortc checks it too); `remote_fingerprint` is
that verified value, for the layer above to bind.

aiortc callbacks only record facts and set events; all waiting happens in `wait_open`, `send`
and `recv`, each of which re-checks the state after every wake-up, so a failure or close wakes
every waiter with a typed error instead of a hang. The one exception is `deliver_to`: a reader
that handles each message synchronously gets it inside aiortc's receive step, without the
event-loop hop a `recv` waiter costs; its credit goes back once that step is over. `send`
chunks and obeys two limits: the peer's credit (framing.py) and our own `bufferedAmount`
high-water mark, resuming on `bufferedamountlow`. SCTP acknowledges every second packet rather
than every one (delayed_sack.py), advertises no more than its socket holds and honours the
peer's window (receive_window.py), its transmit step walks the sent queue only when a chunk
may await retransmission (retransmit_scan.py), and its reassembly is bounded while it happens:
a message over the advertised 256 KiB aborts the association (message_size_limit.py).

Liveness (liveness.py, specs/transport.md §6.4): once open, RFC 7675 consent checks replace
aioice's stricter ones, and a watchdog task sends a KEEPALIVE when we sent nothing for a while and
fails the connection with PeerClosed when the peer sent nothing for `idle_timeout`. `close()`
gives aiortc a bounded time to shut down, so a dead path cannot hang the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import InvalidStateError
from cryptography.hazmat.primitives.serialization import Encoding

from transport import receive_buffer
from transport.compact_offer import CandidateKind, CompactOffer, format_fingerprint
from transport.delayed_sack import DelayedSack
from transport.errors import (
    CompactOfferError,
    IceFailed,
    NoCandidatePair,
    NoLocalCandidates,
    PeerClosed,
    ProtocolViolation,
    TransportError,
    TransportTimeout,
    TransportUsageError,
)
from transport.flag import Flag
from transport.framing import (
    CHUNK_MESSAGE_SIZE,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_WINDOW,
    KEEPALIVE_MESSAGE,
    ChannelFraming,
)
from transport.ice import IceConfig
from transport.ice_checks import IceChecks
from transport.ice_diagnosis import TURN_PROBE_TIMEOUT, classify, probe_turn
from transport.liveness import ConsentFreshness, Liveness
from transport.message_size_limit import MessageSizeLimit
from transport.presence import watch_presence
from transport.prompt_ice import PromptIce
from transport.receive_window import ReceiveWindow
from transport.retransmit_scan import RetransmitScan
from transport.sdp import compact_from_sdp, sdp_from_compact
from transport.states import (
    PeerState,
    PeerStateChanged,
    Role,
    TransportStats,
    classify_failure,
)
from transport.triggered_checks import TriggeredChecks

HIGH_WATER = 1 << 20  # send waits while more than this is buffered in aiortc (§6.3)
LOW_WATER = 256 << 10  # ... and resumes when bufferedamountlow fires at this level
CHANNEL_LABEL = "didlink"
CHANNEL_ID = 0
CLOSE_TIMEOUT = 5.0  # seconds aiortc gets to shut down in close(); a dead path must not hang us
OFFERER_GONE = (
    "The other side no longer answers at any of its addresses: they cancelled the invitation"
    " (or quit) before the connection opened."
)


class Peer:
    """An asyncio WebRTC peer moving opaque byte messages; see the module docstring."""

    def __init__(
        self,
        *,
        role: Role,
        ice: IceConfig | None = None,
        window: int = DEFAULT_WINDOW,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        high_water: int = HIGH_WATER,
        low_water: int = LOW_WATER,
        on_state: Callable[[PeerStateChanged], None] | None = None,
        liveness: Liveness | None = None,
        on_turn_problem: Callable[[IceFailed], None] | None = None,
    ) -> None:
        if not 0 <= low_water < high_water:
            raise TransportUsageError("low_water must be below high_water.")
        self.role = role
        self._high_water = high_water
        self._on_state = on_state
        self._framing = ChannelFraming(
            window=window, max_message_size=max_message_size, chunk_size=CHUNK_MESSAGE_SIZE
        )
        self._state = PeerState.NEW
        self._error: TransportError | None = None
        self._local: CompactOffer | None = None
        self._remote: CompactOffer | None = None
        self._remote_fingerprint: str | None = None
        self._inbox: deque[bytes] = deque()
        self._inbox_bytes = 0
        self._receiver: Callable[[bytes], None] | None = None  # deliver_to: no inbox
        self._credit_scheduled = False  # deliver_to: credit goes back after aiortc's step
        self._send_lock = asyncio.Lock()
        self._changed = Flag()  # state changes: wakes wait_open
        self._writable = Flag()  # credit or bufferedamountlow: wakes send
        self._readable = Flag()  # a message arrived: wakes recv
        self._liveness = liveness or Liveness()
        self._last_heard = self._last_sent = time.monotonic()
        self._watchdog: asyncio.Task[None] | None = None
        self._presence: asyncio.Task[None] | None = None  # answerer: is the offerer there?
        self._ice = ice or IceConfig()
        self._on_turn_problem = on_turn_problem
        self._turn_problem: asyncio.Task[IceFailed | None] | None = None  # §7.1
        self._diagnosis: asyncio.Task[None] | None = None
        self._path: str | None = None
        self._pc = RTCPeerConnection(self._ice.rtc_configuration())
        self._channel = self._pc.createDataChannel(
            CHANNEL_LABEL, negotiated=True, id=CHANNEL_ID, ordered=True
        )
        self._channel.bufferedAmountLowThreshold = low_water
        self._prompt_ice = PromptIce.install(self._ice_connection())  # §6.8
        self._checks = IceChecks.install(self._ice_connection())  # §6.12
        self._triggered = TriggeredChecks.install(self._ice_connection())  # §6.13
        self._scan = RetransmitScan.install(self._pc.sctp)  # §6.9; the window wraps it
        self._window = ReceiveWindow.install(self._pc.sctp)  # before: the SACK policy wraps it
        self._delayed_sack = DelayedSack.install(self._pc.sctp)
        self._reassembly = MessageSizeLimit.install(  # §6.10: before the channel opens too
            self._pc.sctp, on_violation=self._on_reassembly_violation
        )
        self._receive_buffer: int | None = None  # granted once open (§6.6)
        self._channel.on("open", self._on_open)
        self._channel.on("close", self._on_channel_close)
        self._channel.on("message", self._on_message)
        self._channel.on("bufferedamountlow", self._writable.set)
        self._pc.on("connectionstatechange", self._on_connection_state)

    # -- properties --------------------------------------------------------------------------

    @property
    def state(self) -> PeerState:
        """The current `PeerState`."""
        return self._state

    @property
    def local_fingerprint(self) -> str:
        """sha-256 of our DTLS certificate, "AB:CD:..." (known once the offer/answer exists)."""
        if self._local is None:
            raise TransportUsageError("No local offer or answer has been created yet.")
        return self._local.fingerprint_hex

    @property
    def remote_fingerprint(self) -> str | None:
        """sha-256 of the peer's DTLS certificate as verified on the open channel, else None."""
        return self._remote_fingerprint

    @property
    def path(self) -> str | None:
        """Our side of the selected candidate pair once open: "host", "srflx", "prflx" or
        "relay" (§6.12); None before, or if aioice's internals hide it."""
        return self._path

    @property
    def local_offer(self) -> CompactOffer | None:
        """Our compact offer or answer, once created."""
        return self._local

    def stats(self) -> TransportStats:
        """Sizes of the send and receive buffers right now, and the SACK counts (§6.5)."""
        return TransportStats(
            state=self._state,
            buffered_amount=self._channel.bufferedAmount,
            send_credit=self._framing.send_credit,
            receive_queue_bytes=self._inbox_bytes,
            receive_queue_messages=len(self._inbox),
            delayed_sack=self._delayed_sack is not None,
            data_packets_received=self._delayed_sack.packets if self._delayed_sack else 0,
            sacks_sent=self._delayed_sack.sacks if self._delayed_sack else 0,
            receive_buffer=self._receive_buffer,
            receive_window=self._window.window if self._window else None,
            peer_window=self._window.peer_window if self._window else None,
            receive_drops=self._window.receive_drops if self._window else None,
            retransmit_scan=self._scan is not None,
            reassembly_limit=self._reassembly is not None,
            reassembly_held=self._reassembly.held_bytes if self._reassembly else None,
            reassembly_peak=self._reassembly.peak_held_bytes if self._reassembly else None,
        )

    # -- offer / answer ----------------------------------------------------------------------

    async def create_offer(self) -> CompactOffer:
        """Offerer: gather candidates and return our compact offer."""
        self._expect(role=Role.OFFERER, local=False, what="create an offer")
        await self._pc.setLocalDescription(await self._pc.createOffer())
        self._local = await self._gathered()
        return self._local

    async def accept_offer(self, offer: CompactOffer) -> CompactOffer:
        """Answerer: apply the peer's offer, start connecting, and return our compact answer."""
        self._expect(role=Role.ANSWERER, local=False, what="accept an offer")
        if not offer.is_offer:
            raise CompactOfferError("Expected an offer (setup actpass) but got an answer.")
        await self._apply_remote(offer, "offer")
        await self._pc.setLocalDescription(await self._pc.createAnswer())
        self._local = await self._gathered()
        if not self._ice.relay_only:  # a probe would tell the offerer our address (§6.11)
            self._presence = asyncio.get_running_loop().create_task(self._watch_offerer(offer))
        return self._local

    async def _gathered(self) -> CompactOffer:
        """Our compact offer or answer, once gathering is done; a typed IceFailed if we have
        nothing to offer (§7.1). In relay-only mode it holds relayed candidates only."""
        connection = self._ice_connection()
        local = list(getattr(connection, "local_candidates", []) or [])
        turn = self._ice.turn
        if turn is not None and not any(c.type == "relay" for c in local):
            if self._ice.relay_only or not local:
                raise await probe_turn(turn) or NoLocalCandidates()
            self._turn_problem = asyncio.get_running_loop().create_task(probe_turn(turn))
            self._turn_problem.add_done_callback(self._turn_probed)
        try:
            offer = compact_from_sdp(self._pc.localDescription.sdp)
        except CompactOfferError:
            if not local:
                raise NoLocalCandidates() from None
            raise
        if self._ice.relay_only:  # aioice gathers nothing else then; make sure of it
            relayed = tuple(c for c in offer.candidates if c.kind is CandidateKind.RELAY)
            if not relayed:
                raise NoLocalCandidates()
            offer = offer.model_copy(update={"candidates": relayed})
        return offer

    async def _watch_offerer(self, offer: CompactOffer) -> None:
        """Until the channel opens: fail at once if the offerer is gone (§6.11, presence.py)."""
        addresses = [(str(c.ip), c.port) for c in offer.candidates]
        if await watch_presence(addresses, waiting=lambda: self._state is PeerState.CONNECTING):
            self._fail(PeerClosed(OFFERER_GONE))

    async def accept_answer(self, answer: CompactOffer) -> None:
        """Offerer: apply the peer's answer and start connecting."""
        self._expect(role=Role.OFFERER, local=True, what="accept an answer")
        if answer.is_offer:
            raise CompactOfferError("Expected an answer (setup active/passive) but got an offer.")
        await self._apply_remote(answer, "answer")

    async def _apply_remote(self, remote: CompactOffer, kind: str) -> None:
        sdp, sdp_type = sdp_from_compact(remote)
        assert sdp_type == kind  # guaranteed by the is_offer checks above
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=sdp_type))
        except (ValueError, AssertionError) as exc:
            raise CompactOfferError(f"The peer's {kind} was rejected by WebRTC ({exc}).") from None
        self._remote = remote
        self._set_state(PeerState.CONNECTING)

    def _expect(self, *, role: Role, local: bool, what: str) -> None:
        if self.role is not role:
            raise TransportUsageError(f"Only the {role.value} can {what}.")
        if self._state is not PeerState.NEW or (self._local is not None) != local:
            raise TransportUsageError(f"Cannot {what} in state {self._state.value}.")

    # -- open / close ------------------------------------------------------------------------

    async def wait_open(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 - typed error
        """Wait until the data channel is open; typed error on failure, TransportTimeout."""
        try:
            async with asyncio.timeout(timeout):
                while self._state is not PeerState.OPEN:
                    self._raise_if_ended()
                    if self._state is PeerState.NEW:
                        raise TransportUsageError("Apply the peer's offer or answer first.")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise TransportTimeout(
                f"The connection to the peer did not open within {timeout:g} s."
            ) from None

    async def close(self, *, linger: float = 5.0) -> None:
        """Close the connection; safe to call more than once.

        If the channel is open, first wait up to `linger` seconds for what we sent to be
        acknowledged by the peer, so that a send followed by close does not lose data.
        """
        if self._state is PeerState.OPEN:
            try:
                async with asyncio.timeout(linger):
                    while self._state is PeerState.OPEN:  # aiortc has no "acknowledged" event
                        if self._all_sent_acknowledged():
                            break
                        await asyncio.sleep(0.01)
            except TimeoutError:
                pass
        if self._state is not PeerState.FAILED:
            self._set_state(PeerState.CLOSED)
        self._wake_all()
        if self._watchdog is not None:
            self._watchdog.cancel()
        for task in (self._presence, self._turn_problem, self._diagnosis):
            if task is not None:
                task.cancel()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._pc.close()
        except TimeoutError:
            pass  # aiortc is stuck on a dead path; our side is closed all the same

    async def __aenter__(self) -> Peer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- data --------------------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        """Send one message (chunked if large); waits while the peer or our buffer is full."""
        payload = self._payload(data)
        async with self._send_lock:
            while True:
                self._raise_unless_open()
                if self._framing.can_start_message():
                    break
                self._writable.clear()
                await self._writable.wait()
            try:
                for chunk in self._framing.chunks(payload):
                    while True:
                        self._raise_unless_open()
                        if self._channel.bufferedAmount <= self._high_water:
                            break
                        self._writable.clear()
                        await self._writable.wait()
                    self._channel_send(chunk)
            except asyncio.CancelledError:
                # Half a message is on the wire: the peer would glue the next one onto it.
                self._fail(PeerClosed("A send was cancelled mid-message; the connection is lost."))
                raise

    def try_send(self, data: bytes) -> bool:
        """Send one message now if that needs no waiting: True. False, and nothing is sent, if
        `send` would wait (for credit, for room below `high_water` for the whole message, or for
        another `send` still in progress); then `send` it. Raises as `send` does (§6.1)."""
        payload = self._payload(data)
        self._raise_unless_open()
        if (
            self._send_lock.locked()
            or not self._framing.can_start_message()
            or self._channel.bufferedAmount + len(payload) > self._high_water
        ):
            return False
        for chunk in self._framing.chunks(payload):
            self._channel_send(chunk)
        return True

    def _payload(self, data: bytes) -> bytes:
        """`data` as bytes, checked for `send` and `try_send`."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TransportUsageError("Only bytes can be sent.")
        payload = bytes(data)
        if len(payload) > self._framing.max_message_size:
            raise TransportUsageError(
                f"A message is at most {self._framing.max_message_size} bytes, got {len(payload)}."
            )
        return payload

    async def recv(self, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        """The next message; PeerClosed (or the failure) once the peer is gone and all is read.

        After `deliver_to` no message is queued: `recv` waits for the end and raises it.
        """
        try:
            async with asyncio.timeout(timeout):
                while not self._inbox:
                    self._raise_if_ended()
                    if self._state is not PeerState.OPEN:
                        raise TransportUsageError("The connection is not open yet.")
                    self._readable.clear()
                    await self._readable.wait()
        except TimeoutError:
            raise TransportTimeout(f"No message arrived within {timeout:g} s.") from None
        message = self._inbox.popleft()
        self._inbox_bytes -= len(message)
        credit = self._framing.consumed(len(message), queue_empty=not self._inbox)
        if credit is not None:
            self._send_credit(credit)
        return message

    def deliver_to(self, receiver: Callable[[bytes], None]) -> None:
        """Hand every message to `receiver` as it completes, instead of queueing it (§6.1).

        Messages already queued are handed over first, now, in order; later ones from inside
        aiortc's receive step, so the reader runs without waiting for another event-loop
        iteration. `receiver` must be quick and synchronous: a slow one holds up the event loop,
        which is the backpressure (the consumed credit goes back once the receive step is over,
        so the sender is stopped by the window as before). It must not raise: if it does, the
        connection fails with TransportUsageError. `recv` then only waits for the end: it
        raises PeerClosed (or the failure) once the connection is gone. Set it at most once.
        """
        if self._receiver is not None:
            raise TransportUsageError("A message receiver is already set.")
        self._receiver = receiver
        while self._inbox:  # even if the connection ended since: recv would have read them
            message = self._inbox.popleft()
            self._inbox_bytes -= len(message)
            self._deliver(message)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Messages until the peer closes (a failure still raises)."""
        while True:
            try:
                yield await self.recv()
            except PeerClosed:
                return

    # -- aiortc callbacks (record facts, wake waiters) ----------------------------------------

    def _on_open(self) -> None:
        if self._state is not PeerState.CONNECTING:
            return
        actual = self._peer_certificate_fingerprint()
        expected = self._remote.fingerprint if self._remote else None
        if actual is None or actual != expected:
            self._fail(classify_failure(ice_state="", dtls_state="", fingerprint_matches=False))
            return
        self._remote_fingerprint = format_fingerprint(actual)
        self._path = self._checks.path() if self._checks is not None else None
        self._writable.set()
        self._set_state(PeerState.OPEN)
        connection = self._ice_connection()
        if connection is not None:
            self._receive_buffer = receive_buffer.enlarge(connection)  # §6.6
            sockets = receive_buffer.nominated_sockets(connection)
            if self._window is not None and sockets:
                self._window.watch(sockets[0])  # §6.7
        self._start_liveness(connection)

    def _on_message(self, raw: Any) -> None:
        if self._state not in (PeerState.CONNECTING, PeerState.OPEN):
            return
        self._last_heard = time.monotonic()
        if not isinstance(raw, bytes):
            self._fail(ProtocolViolation("The peer sent a text message."))
            return
        try:
            message = self._framing.receive(raw)
        except TransportError as exc:
            self._fail(exc)
            return
        if raw[0] == 0x02:
            self._writable.set()
        if message is None:
            return
        if self._receiver is not None:
            self._deliver(message)
            return
        self._inbox.append(message)
        self._inbox_bytes += len(message)
        self._readable.set()

    def _deliver(self, message: bytes) -> None:
        """Hand one message to the `deliver_to` receiver; its credit goes back after this step."""
        assert self._receiver is not None
        try:
            self._receiver(message)
        except Exception as exc:  # a bug in the layer above: end visibly rather than hang
            self._fail(TransportUsageError(f"The message receiver failed: {exc!r}."))
            self._inbox.clear()  # nothing more for the broken receiver, nor for recv
            self._inbox_bytes = 0
            return
        credit = self._framing.consumed(len(message), queue_empty=False)  # a full quarter window
        if credit is not None:
            self._send_credit(credit)
        if not self._credit_scheduled:  # whatever else this step delivers shares one CREDIT
            self._credit_scheduled = True
            asyncio.get_running_loop().call_soon(self._return_credit)

    def _return_credit(self) -> None:
        """After aiortc's receive step: the reader is idle, so all consumed credit goes back."""
        self._credit_scheduled = False
        credit = self._framing.return_pending()
        if credit is not None:
            self._send_credit(credit)

    def _send_credit(self, credit: bytes) -> None:
        if self._state is PeerState.OPEN:
            with contextlib.suppress(PeerClosed):  # the peer is gone: nobody needs the credit
                self._channel_send(credit)

    def _on_reassembly_violation(self, reason: str) -> None:
        """SCTP aborted the association: the peer sent an oversized or unbounded message."""
        self._fail(ProtocolViolation(reason))

    def _on_channel_close(self) -> None:
        if self._state in (PeerState.OPEN, PeerState.CONNECTING):
            self._fail(PeerClosed("The peer closed the connection."))

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        if self._diagnosis is not None:
            return  # ICE failed while connecting: the diagnosis ends it (§7.1)
        if (
            state == "failed"
            and self._state is PeerState.CONNECTING
            and self._pc.iceConnectionState == "failed"
        ):  # the reason needs a look at the check list, maybe a TURN probe's answer (§7.1)
            self._diagnosis = asyncio.get_running_loop().create_task(self._ice_failed())
            return
        if state == "failed" and self._state in (PeerState.CONNECTING, PeerState.OPEN):
            dtls = self._pc.sctp.transport if self._pc.sctp else None
            actual = self._peer_certificate_fingerprint()
            matches = None
            if actual is not None and self._remote is not None:
                matches = actual == self._remote.fingerprint
            self._fail(
                classify_failure(
                    ice_state=self._pc.iceConnectionState,
                    dtls_state=dtls.state if dtls else "",
                    fingerprint_matches=matches,
                )
            )
        elif state == "closed" and self._state is PeerState.OPEN:
            self._fail(PeerClosed("The peer closed the connection."))

    def _turn_probed(self, task: asyncio.Task[IceFailed | None]) -> None:
        """Mode all: tell `on_turn_problem` that the TURN server is not usable (§7.1), so the
        user can fix it before a network where only the relay works."""
        if task.cancelled() or task.exception() is not None or self._on_turn_problem is None:
            return
        problem = task.result()
        if problem is not None:
            self._on_turn_problem(problem)

    async def _ice_failed(self) -> None:
        """ICE failed while connecting: fail with the reason (§7.1), once a TURN probe started
        at gathering (a TURN server that gave no relayed candidate) has answered."""
        error = classify(self._ice_connection(), turn_problem=None)
        if self._turn_problem is not None and not isinstance(error, NoCandidatePair):
            try:
                async with asyncio.timeout(TURN_PROBE_TIMEOUT + 1):
                    error = await self._turn_problem or error
            except TimeoutError:
                pass
        self._fail(error)

    # -- liveness (§6.4) ---------------------------------------------------------------------

    def _start_liveness(self, connection: Any) -> None:
        if connection is not None:
            ConsentFreshness.attach(connection, self._liveness)
        self._last_heard = self._last_sent = time.monotonic()
        self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        """Send KEEPALIVEs while we are quiet; fail when the peer has been silent too long."""
        liveness = self._liveness
        while self._state is PeerState.OPEN:
            now = time.monotonic()
            silent = now - self._last_heard
            if silent > liveness.idle_timeout:
                self._fail(
                    PeerClosed(f"The peer sent nothing for {silent:.0f} s; the connection is lost.")
                )
                return
            if now - self._last_sent >= liveness.keepalive:
                with contextlib.suppress(PeerClosed):
                    self._channel_send(KEEPALIVE_MESSAGE)
            await asyncio.sleep(min(liveness.keepalive, liveness.idle_timeout - silent) / 2)

    # -- helpers -----------------------------------------------------------------------------

    def _ice_connection(self) -> Any:
        """The aioice Connection under the data channel (aiortc 1.16 keeps it), or None."""
        ice = self._pc.sctp.transport.transport if self._pc.sctp is not None else None
        return getattr(ice, "_connection", None)

    def _peer_certificate_fingerprint(self) -> bytes | None:
        """sha-256 of the certificate the peer presented in DTLS, if the handshake got that far.

        aiortc exposes no public accessor; RTCDtlsTransport keeps the OpenSSL connection in
        `_ssl` (aiortc 1.16). Any surprise here means "unknown", never a crash.
        """
        sctp = self._pc.sctp
        try:
            ssl = sctp.transport._ssl if sctp is not None else None
            cert = ssl.get_peer_certificate(as_cryptography=True) if ssl is not None else None
            if cert is None:
                return None
            return hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()
        except Exception:
            return None

    def _channel_send(self, data: bytes) -> None:
        """Send on the channel; aiortc's InvalidStateError (channel just closed) -> PeerClosed."""
        try:
            self._channel.send(data)
            self._last_sent = time.monotonic()
        except InvalidStateError:
            self._fail(PeerClosed("The peer closed the connection."))
            raise PeerClosed("The peer closed the connection.") from None

    def _all_sent_acknowledged(self) -> bool:
        """Nothing buffered in the channel nor unacknowledged in SCTP.

        aiortc (1.16) has no public way to ask; its SCTP transport keeps `_outbound_queue` and
        `_sent_queue`. If those ever disappear we fall back to `bufferedAmount` alone.
        """
        if self._channel.bufferedAmount:
            return False
        sctp = self._pc.sctp
        return not (getattr(sctp, "_outbound_queue", ()) or getattr(sctp, "_sent_queue", ()))

    def _set_state(self, state: PeerState) -> None:
        if self._state is state or self._state in (PeerState.CLOSED, PeerState.FAILED):
            return
        self._state = state
        if self._presence is not None and state is not PeerState.CONNECTING:
            self._presence.cancel()  # its probe sockets close now: only ICE's talk from here on
        self._wake_all()
        if self._on_state is not None:
            self._on_state(PeerStateChanged(state=state, error=self._error))

    def _fail(self, error: TransportError) -> None:
        if self._state in (PeerState.CLOSED, PeerState.FAILED):
            return
        self._error = error
        self._set_state(PeerState.FAILED)

    def _wake_all(self) -> None:
        self._changed.set()
        self._writable.set()
        self._readable.set()

    def _raise_if_ended(self) -> None:
        if self._state is PeerState.FAILED:
            error = self._error or PeerClosed("The connection to the peer failed.")
            raise type(error)(*error.args)  # a fresh instance: no traceback pile-up
        if self._state is PeerState.CLOSED:
            raise PeerClosed("The connection is closed.")

    def _raise_unless_open(self) -> None:
        self._raise_if_ended()
        if self._state is not PeerState.OPEN:
            raise TransportUsageError("The connection is not open yet.")
