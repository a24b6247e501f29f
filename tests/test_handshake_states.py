"""Property tests of the handshake state machine over every (role, state, input kind) pair.

Whatever is fed in, in whatever state, the machine either answers or raises a
`MessagingError` subclass; any error leaves it FAILED, and FAILED is sticky. The transition
table is checked to be exactly the five intended transitions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity.keys import IdentityKey
from messaging.errors import LocalProtocolError, MessagingError
from messaging.handshake import _TRANSITIONS, Handshake, Role, State, Step

ALICE = IdentityKey(bytes.fromhex("11" * 32))
BOB = IdentityKey(bytes.fromhex("22" * 32))
INVITATION = b"invitation-0001"


def _rng(label: bytes) -> Callable[[int], bytes]:
    counter = 0

    def rng(size: int) -> bytes:
        nonlocal counter
        counter += 1
        return hashlib.sha256(label + counter.to_bytes(4, "big")).digest()[:size]

    return rng


def _pair(label: bytes) -> tuple[Handshake, Handshake]:
    initiator = Handshake(
        role=Role.INITIATOR,
        local_key=ALICE,
        peer_did=BOB.did,
        invitation_id=INVITATION,
        local_fingerprint="fp-a",
        peer_fingerprint="fp-b",
        rng=_rng(b"i" + label),
    )
    responder = Handshake(
        role=Role.RESPONDER,
        local_key=BOB,
        peer_did=ALICE.did,
        invitation_id=INVITATION,
        local_fingerprint="fp-b",
        peer_fingerprint="fp-a",
        rng=_rng(b"r" + label),
    )
    return initiator, responder


def _transcript(label: bytes) -> dict[str, bytes]:
    """Genuine messages of one honest run, to use as well-formed inputs."""
    initiator, responder = _pair(label)
    initiator.start()
    commitment = responder.start() or b""
    initiation = initiator.receive(commitment) or b""
    response = responder.receive(initiation) or b""
    initiator.receive(response)
    return {"commitment": commitment, "initiation": initiation, "response": response}


def machine_in(role: Role, state: State) -> tuple[Handshake, dict[str, bytes]]:
    """A machine of `role` driven into `state` by an honest peer, plus that run's messages."""
    initiator, responder = _pair(b"same")
    mine = initiator if role is Role.INITIATOR else responder
    sent: dict[str, bytes] = {}
    if state is State.FAILED:
        with pytest.raises(LocalProtocolError):
            mine.receive(b"")  # receive() before start()
        return mine, _transcript(b"same")
    if state is State.NEEDS_START:
        return mine, _transcript(b"same")
    initiator.start()
    sent["commitment"] = responder.start() or b""
    if state in (State.AWAITING_COMMITMENT, State.AWAITING_INITIATION):
        if role is Role.RESPONDER:  # the responder needs the initiator's message 1 next
            sent["initiation"] = initiator.receive(sent["commitment"]) or b""
        return mine, {**_transcript(b"same"), **sent}
    sent["initiation"] = initiator.receive(sent["commitment"]) or b""
    if state is State.AWAITING_RESPONSE:
        sent["response"] = responder.receive(sent["initiation"]) or b""
        return mine, sent
    sent["response"] = responder.receive(sent["initiation"]) or b""
    initiator.receive(sent["response"])
    return mine, sent


REACHABLE = [
    (Role.INITIATOR, State.NEEDS_START),
    (Role.INITIATOR, State.AWAITING_COMMITMENT),
    (Role.INITIATOR, State.AWAITING_RESPONSE),
    (Role.INITIATOR, State.DONE),
    (Role.INITIATOR, State.FAILED),
    (Role.RESPONDER, State.NEEDS_START),
    (Role.RESPONDER, State.AWAITING_INITIATION),
    (Role.RESPONDER, State.DONE),
    (Role.RESPONDER, State.FAILED),
]
INPUT_KINDS = [
    "start",
    "commitment",
    "initiation",
    "response",
    "framed-random",
    "random",
    "result",
]


@pytest.mark.parametrize(("role", "state"), REACHABLE)
def test_machine_in_reaches_the_state(role: Role, state: State) -> None:
    machine, _ = machine_in(role, state)
    assert machine.state is state


def _apply(machine: Handshake, kind: str, honest: dict[str, bytes], data: bytes) -> None:
    if kind == "start":
        machine.start()
    elif kind == "result":
        _ = machine.result
    elif kind in honest:
        machine.receive(honest[kind])
    elif kind == "framed-random":
        machine.receive(data)
    else:
        machine.receive(data[2:])


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.sampled_from(REACHABLE),
    kinds=st.lists(st.sampled_from(INPUT_KINDS), min_size=1, max_size=4),
    frame_type=st.integers(0, 4),
    version=st.sampled_from([0, 1, 1, 2]),
    body=st.binary(max_size=100),
)
def test_only_messaging_errors_and_failed_is_sticky(
    start: tuple[Role, State],
    kinds: list[str],
    frame_type: int,
    version: int,
    body: bytes,
) -> None:
    machine, honest = machine_in(*start)
    data = bytes([frame_type, version]) + body
    for kind in kinds:
        before = machine.state
        try:
            _apply(machine, kind, honest, data)
        except MessagingError as exc:
            if kind != "result":  # reading `.result` too early changes nothing
                assert machine.state is State.FAILED
            if before is State.FAILED:
                assert isinstance(exc, LocalProtocolError)
        else:
            assert before is not State.FAILED
            if kind != "result":
                assert (machine.role, before, _step(kind, data)) in _TRANSITIONS
        if before is State.FAILED:
            assert machine.state is State.FAILED


def _step(kind: str, data: bytes) -> Step:
    if kind == "start":
        return Step.START
    if kind in ("commitment", "initiation", "response"):
        return Step[kind.upper()]
    return Step(data[0])


@pytest.mark.parametrize(("role", "state"), REACHABLE)
@pytest.mark.parametrize("kind", INPUT_KINDS)
def test_every_state_input_pair(role: Role, state: State, kind: str) -> None:
    """The exhaustive grid, with one deterministic junk input for the random kinds."""
    machine, honest = machine_in(role, state)
    try:
        _apply(machine, kind, honest, b"\x02\x01" + bytes(48))
    except MessagingError:
        if kind != "result":
            assert machine.state is State.FAILED
    else:
        if kind == "result":
            assert state is State.DONE
        else:
            assert machine.state is not State.FAILED


def test_transition_table_is_exactly_the_protocol() -> None:
    assert _TRANSITIONS == {
        (Role.INITIATOR, State.NEEDS_START, Step.START): State.AWAITING_COMMITMENT,
        (Role.INITIATOR, State.AWAITING_COMMITMENT, Step.COMMITMENT): State.AWAITING_RESPONSE,
        (Role.INITIATOR, State.AWAITING_RESPONSE, Step.RESPONSE): State.DONE,
        (Role.RESPONDER, State.NEEDS_START, Step.START): State.AWAITING_INITIATION,
        (Role.RESPONDER, State.AWAITING_INITIATION, Step.INITIATION): State.DONE,
    }
    assert State.FAILED not in {state for _, state, _ in _TRANSITIONS}
    assert State.DONE not in {state for _, state, _ in _TRANSITIONS}
