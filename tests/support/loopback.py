"""An in-memory pair of `SecureChannel`s joined by links with deterministic loss, reordering
and duplication (in the spirit of aiortc's tests/utils.py `dummy_*_pair(loss_pattern)`).

A link's pattern is a string, one character per frame, cycled:
  "." deliver   "x" drop   "d" deliver twice   "h" hold, deliver after the next frame
e.g. Link("..x") drops every third frame. `Link.schedule(list)` takes an explicit, non-cycled
list (for Hypothesis), falling back to "." after it runs out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from messaging.channel import Event, SecureChannel
from messaging.ratchet import RatchetSession

ACTIONS = ".xdh"


@dataclass
class Link:
    """One direction of the wire; `carry(frames)` returns what arrives, in arrival order."""

    pattern: str = "."
    cycle: bool = True
    dropped: list[bytes] = field(default_factory=list)
    dropped_at: list[int] = field(default_factory=list)  # indices of the dropped frames
    _count: int = 0
    _held: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.pattern or any(c not in ACTIONS for c in self.pattern):
            raise ValueError(f"a pattern uses only {ACTIONS!r}")

    @classmethod
    def schedule(cls, actions: str) -> Link:
        return cls(actions + ".", cycle=False)

    def _action(self) -> str:
        i = self._count
        self._count += 1
        if self.cycle:
            return self.pattern[i % len(self.pattern)]
        return self.pattern[i] if i < len(self.pattern) else "."

    def carry(self, frames: list[bytes]) -> list[bytes]:
        arrived: list[bytes] = []
        for frame in frames:
            action = self._action()
            if action == "x":
                self.dropped.append(frame)
                self.dropped_at.append(self._count - 1)
                continue
            if action == "h":
                self._held.append(frame)
                continue
            arrived.append(frame)
            if action == "d":
                arrived.append(frame)
            arrived.extend(self._held)
            self._held.clear()
        return arrived

    @property
    def held(self) -> bool:
        """Whether frames are being held back."""
        return bool(self._held)

    def flush(self) -> list[bytes]:
        """Release frames still held back (end of a test)."""
        held, self._held = self._held, []
        return held


@dataclass
class ChannelPair:
    """Initiator `a` and responder `b`, seeded as the handshake would seed them."""

    a: SecureChannel
    b: SecureChannel
    a_to_b: Link
    b_to_a: Link
    a_events: list[Event] = field(default_factory=list)
    b_events: list[Event] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        *,
        a_to_b: Link | None = None,
        b_to_a: Link | None = None,
        max_frame_plaintext: int = 256 * 1024,
        associated_data: bytes = b"loopback",
    ) -> ChannelPair:
        seed = os.urandom(32)
        bob = X25519PrivateKey.generate()
        alice = RatchetSession.initiator(
            seed, bob.public_key().public_bytes_raw(), associated_data=associated_data
        )
        bob_session = RatchetSession.responder(
            seed, bob.private_bytes_raw(), associated_data=associated_data
        )
        return cls(
            a=SecureChannel(alice, initiator=True, max_frame_plaintext=max_frame_plaintext),
            b=SecureChannel(bob_session, initiator=False, max_frame_plaintext=max_frame_plaintext),
            a_to_b=a_to_b or Link(),
            b_to_a=b_to_a or Link(),
        )

    def pump(self, *, rounds: int = 10) -> None:
        """Move frames both ways until nothing is left to send (bounded by `rounds`)."""
        for _ in range(rounds):
            out_a = self.a.data_to_send()
            out_b = self.b.data_to_send()
            if not out_a and not out_b:
                return
            for frame in self.a_to_b.carry(out_a):
                self.b_events.extend(self.b.receive(frame))
            for frame in self.b_to_a.carry(out_b):
                self.a_events.extend(self.a.receive(frame))

    def flush(self) -> None:
        """Deliver held-back frames in both directions."""
        for frame in self.a_to_b.flush():
            self.b_events.extend(self.b.receive(frame))
        for frame in self.b_to_a.flush():
            self.a_events.extend(self.a.receive(frame))

    def settle(self, *, rounds: int = 20) -> None:
        """Pump and release held frames until the pair is quiet (bounded by `rounds`)."""
        for _ in range(rounds):
            self.pump()
            if not self.a_to_b.held and not self.b_to_a.held:
                return
            self.flush()
