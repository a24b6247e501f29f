"""The SAS gate: no application message crosses until both people confirmed the SAS.

Theory of operation (specs/cli-jsonl.md section 4, DESIGN.md "Messaging" 3)
-----------------------------------------------------------------------------
After the handshake each side shows the SAS. When its user confirms, a side sends a
`sas_confirm` frame (messaging/frames.py). The gate is open once this side's user confirmed
*and* the peer's `sas_confirm` arrived; before that the application sends nothing but the
handshake, `hello`, `sas_confirm` and `close`, and a peer that sends anything else has broken
the protocol. A local rejection closes the gate for good.

States are named for what the gate waits for; inputs outside the table are errors and leave
the gate in FAILED, which is sticky (as in h11): local misuse -> LocalProtocolError, a peer's
misbehaviour -> RemoteProtocolError.
"""

from __future__ import annotations

import enum

from messaging.errors import LocalProtocolError, RemoteProtocolError
from messaging.frames import Close, Hello, Message, SasConfirm


class GateState(enum.Enum):
    AWAITING_BOTH = "awaiting both confirmations"
    AWAITING_PEER = "awaiting the peer's confirmation"
    AWAITING_LOCAL = "awaiting our user's confirmation"
    OPEN = "open"
    REJECTED = "rejected"
    FAILED = "failed"


class GateInput(enum.Enum):
    LOCAL_CONFIRM = "our user confirmed"
    LOCAL_REJECT = "our user rejected"
    PEER_CONFIRM = "the peer's sas_confirm"


_TRANSITIONS: dict[tuple[GateState, GateInput], GateState] = {
    (GateState.AWAITING_BOTH, GateInput.LOCAL_CONFIRM): GateState.AWAITING_PEER,
    (GateState.AWAITING_BOTH, GateInput.PEER_CONFIRM): GateState.AWAITING_LOCAL,
    (GateState.AWAITING_BOTH, GateInput.LOCAL_REJECT): GateState.REJECTED,
    (GateState.AWAITING_PEER, GateInput.PEER_CONFIRM): GateState.OPEN,
    (GateState.AWAITING_LOCAL, GateInput.LOCAL_CONFIRM): GateState.OPEN,
    (GateState.AWAITING_LOCAL, GateInput.LOCAL_REJECT): GateState.REJECTED,
    # the peer's confirmation may cross our rejection in flight: it changes nothing
    (GateState.REJECTED, GateInput.PEER_CONFIRM): GateState.REJECTED,
}
_LOCAL_INPUTS = frozenset({GateInput.LOCAL_CONFIRM, GateInput.LOCAL_REJECT})
_ALWAYS_ALLOWED = (Hello, Close)


class SasGate:
    """Tracks both SAS confirmations for one session."""

    def __init__(self) -> None:
        self.state = GateState.AWAITING_BOTH

    @property
    def is_open(self) -> bool:
        """True when application messages may be sent and received."""
        return self.state is GateState.OPEN

    @property
    def local_confirmed(self) -> bool:
        return self.state in (GateState.AWAITING_PEER, GateState.OPEN)

    def confirm(self) -> SasConfirm:
        """Our user confirmed the SAS: returns the frame message to send to the peer."""
        self._apply(GateInput.LOCAL_CONFIRM)
        return SasConfirm()

    def reject(self) -> None:
        """Our user rejected the SAS (or gave up): the gate never opens."""
        self._apply(GateInput.LOCAL_REJECT)

    def receive(self, message: Message) -> bool:
        """Check a message from the peer against the gate.

        Returns True when the message was the peer's `sas_confirm` (consumed by the gate), False
        when it is for the application. Raises RemoteProtocolError for an application message
        before the gate is open, or a second `sas_confirm`.
        """
        if self.state is GateState.FAILED:
            raise LocalProtocolError("the SAS gate failed earlier; close the session")
        if isinstance(message, SasConfirm):
            self._apply(GateInput.PEER_CONFIRM)
            return True
        if isinstance(message, _ALWAYS_ALLOWED) or self.is_open:
            return False
        self.state = GateState.FAILED
        raise RemoteProtocolError(
            f"the peer sent a {message.type} message before both confirmed the SAS"
        )

    def _apply(self, event: GateInput) -> None:
        if self.state is GateState.FAILED:
            raise LocalProtocolError("the SAS gate failed earlier; close the session")
        new = _TRANSITIONS.get((self.state, event))
        if new is None:
            previous = self.state
            self.state = GateState.FAILED
            error = LocalProtocolError if event in _LOCAL_INPUTS else RemoteProtocolError
            raise error(f"{event.value} is not allowed when the gate is {previous.value}")
        self.state = new
