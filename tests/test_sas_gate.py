"""The SAS gate: every (state, input) pair, sticky failure, nothing crosses before both confirm."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.errors import LocalProtocolError, MessagingError, RemoteProtocolError
from messaging.frames import (
    Close,
    FileAck,
    FileChunk,
    FileOffer,
    Hello,
    Receipt,
    SasConfirm,
    Text,
)
from messaging.sas_gate import GateState, SasGate

APPLICATION = [
    Text(text="hi"),
    Receipt(ids=[1]),
    FileOffer(file_id=bytes(16), name="a.txt", size=1, sha256=bytes(32), chunk_size=65536),
    FileChunk(file_id=bytes(16), offset=0, data=b"x"),
    FileAck(file_id=bytes(16), next_offset=1),
]


def test_opens_only_after_both_confirm_in_either_order() -> None:
    first = SasGate()
    assert isinstance(first.confirm(), SasConfirm)
    assert first.state is GateState.AWAITING_PEER and not first.is_open
    assert first.receive(SasConfirm()) is True
    assert first.is_open

    second = SasGate()
    assert second.receive(SasConfirm()) is True
    assert second.state is GateState.AWAITING_LOCAL and not second.is_open
    second.confirm()
    assert second.is_open and second.local_confirmed


@pytest.mark.parametrize("message", APPLICATION, ids=lambda m: m.type)
@pytest.mark.parametrize("confirmations", ["none", "local", "peer"])
def test_application_messages_before_the_gate_break_the_protocol(
    message: object, confirmations: str
) -> None:
    gate = SasGate()
    if confirmations == "local":
        gate.confirm()
    elif confirmations == "peer":
        gate.receive(SasConfirm())
    with pytest.raises(RemoteProtocolError, match="before both confirmed"):
        gate.receive(message)  # type: ignore[arg-type]
    assert gate.state is GateState.FAILED
    with pytest.raises(LocalProtocolError):
        gate.confirm()


@pytest.mark.parametrize("message", APPLICATION, ids=lambda m: m.type)
def test_application_messages_pass_once_open(message: object) -> None:
    gate = SasGate()
    gate.confirm()
    gate.receive(SasConfirm())
    assert gate.receive(message) is False  # type: ignore[arg-type]


@pytest.mark.parametrize("message", [Hello(), Close(reason="bye")], ids=lambda m: m.type)
def test_hello_and_close_always_pass(message: object) -> None:
    assert SasGate().receive(message) is False  # type: ignore[arg-type]


def test_second_peer_confirmation_is_a_remote_error() -> None:
    gate = SasGate()
    gate.receive(SasConfirm())
    with pytest.raises(RemoteProtocolError):
        gate.receive(SasConfirm())
    assert gate.state is GateState.FAILED


def test_local_misuse() -> None:
    gate = SasGate()
    gate.confirm()
    with pytest.raises(LocalProtocolError):
        gate.confirm()
    rejected = SasGate()
    rejected.reject()
    assert rejected.state is GateState.REJECTED
    assert rejected.receive(SasConfirm()) is True  # crossed our rejection in flight
    assert rejected.state is GateState.REJECTED and not rejected.is_open
    with pytest.raises(LocalProtocolError):
        rejected.confirm()
    assert rejected.state is GateState.FAILED


ACTIONS = st.lists(
    st.sampled_from(
        ["confirm", "reject", "peer_confirm", "hello", "close", *range(len(APPLICATION))]
    ),
    max_size=8,
)


@given(ACTIONS)
def test_any_sequence_only_raises_messaging_errors_and_failure_is_sticky(actions: list) -> None:
    gate = SasGate()
    local = peer = failed = False
    for action in actions:
        before = gate.state
        try:
            if action == "confirm":
                gate.confirm()
                local = True
            elif action == "reject":
                gate.reject()
            elif action == "peer_confirm":
                gate.receive(SasConfirm())
                peer = True
            elif action == "hello":
                gate.receive(Hello())
            elif action == "close":
                gate.receive(Close(reason=""))
            else:
                gate.receive(APPLICATION[action])
        except MessagingError:
            assert gate.state is GateState.FAILED
            failed = True
            continue
        assert before is not GateState.FAILED and not failed, "a failed gate refuses everything"
        if gate.is_open:  # only ever after both confirmations
            assert local and peer
        if isinstance(action, int):  # an application message passed: the gate was open
            assert gate.is_open
