"""STUN/TURN from the profile, relay-only mode and clear ICE failures (issue 29, points 1-3).

Two real `didlink ... --jsonl` processes and a real TURN server (coturn on loopback,
tests/support/turn_server.py). What is checked: a relay-only connection goes through the TURN
server (`connected` says `"path": "relay"`) and its tokens carry relayed candidates only, no
address of ours; the environment replaces the profile's servers for one run; wrong TURN
credentials, relay-only without TURN and a peer no check reaches each end with one sentence and
exit 2, the last one long before the connect timeout (the test's own timeout is shorter).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path

import pytest

from identity.invitation import Invitation, InvitationKind, Response
from identity.keystore import unlock
from identity.token import decode_token, encode_token
from tests.e2e.driver import PASSPHRASE, Cli, cli_processes, make_identity
from tests.support.cli import assert_user_error, run_cli
from tests.support.turn_server import PASSWORD, USER, TurnServer, turn_server
from transport import Candidate, CandidateKind, CompactOffer, SetupRole

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def turn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServer]:
    with turn_server(tmp_path_factory.mktemp("coturn")) as server:
        yield server


def _offer_of(token: str) -> CompactOffer:
    decoded = decode_token(token)
    assert isinstance(decoded, Invitation | Response)
    return CompactOffer.from_cbor(decoded.connect)


def _only_relayed(offer: CompactOffer, turn: TurnServer) -> None:
    """Relayed candidates only, at the TURN server, with the related address hidden."""
    assert offer.candidates
    for candidate in offer.candidates:
        assert candidate.kind is CandidateKind.RELAY, offer.candidates
        assert str(candidate.ip) == "127.0.0.1"  # coturn's relay address
        assert candidate.related_ip in (None, ip_address("0.0.0.0"))


def _confirm_and_quit(alice: Cli, bob: Cli) -> tuple[dict[str, object], dict[str, object]]:
    alice.expect("sas")
    bob.expect("sas")
    alice.send("confirm_sas")
    bob.send("confirm_sas")
    connected = alice.expect("connected"), bob.expect("connected")
    alice.send("send", text="through the relay")
    assert bob.expect("message")["text"] == "through the relay"
    alice.send("quit")
    assert alice.expect("closed")["reason"] == "quit"
    assert bob.expect("closed")["reason"] == "peer closed"
    assert alice.wait() == 0, alice.stderr
    assert bob.wait() == 0, bob.stderr
    return connected


def test_relay_only_from_the_profile_and_from_the_environment(
    tmp_path: Path, turn: TurnServer
) -> None:
    """Alice configures TURN and relay-only in her profile; Bob gives them for one run in the
    environment. Both connect through coturn, and neither token holds an address of theirs."""
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    make_identity(a_home)
    make_identity(b_home)
    added = run_cli(
        "ice", "add", turn.url, "--username", USER, "--credential", PASSWORD, home=a_home
    )
    assert added.returncode == 0, added.stderr
    assert run_cli("ice", "policy", "relay", home=a_home).returncode == 0
    bob_env = {
        "DIDLINK_TURN": turn.tcp_url,  # TURN over TCP, for once
        "DIDLINK_TURN_USERNAME": USER,
        "DIDLINK_TURN_CREDENTIAL": PASSWORD,
        "DIDLINK_ICE_POLICY": "relay",
    }
    with cli_processes() as started:
        alice = Cli("invite", "--jsonl", home=a_home)
        started.append(alice)
        token = alice.expect("token")["token"]
        _only_relayed(_offer_of(token), turn)
        bob = Cli("accept", token, "--jsonl", home=b_home, env=bob_env)
        started.append(bob)
        response = bob.expect("token")["token"]
        _only_relayed(_offer_of(response), turn)
        alice.send("response", token=response)
        connected_a, connected_b = _confirm_and_quit(alice, bob)
    assert connected_a["path"] == "relay"
    assert connected_b["path"] == "relay"


def test_direct_connection_says_host(tmp_path: Path) -> None:
    """Without any server the path is direct: `"path": "host"`, and nobody else was asked."""
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    make_identity(a_home)
    make_identity(b_home)
    with cli_processes() as started:
        alice = Cli("invite", "--jsonl", home=a_home)
        started.append(alice)
        token = alice.expect("token")["token"]
        kinds = {c.kind for c in _offer_of(token).candidates}
        assert kinds == {CandidateKind.HOST}
        bob = Cli("accept", token, "--jsonl", home=b_home)
        started.append(bob)
        alice.send("response", token=bob.expect("token")["token"])
        connected_a, connected_b = _confirm_and_quit(alice, bob)
    assert connected_a["path"] == connected_b["path"] == "host"


def test_wrong_turn_credentials_end_with_the_reason(tmp_path: Path, turn: TurnServer) -> None:
    home = tmp_path / "alice"
    make_identity(home)
    added = run_cli(
        "ice", "add", turn.url, "--username", USER, "--credential", "not-the-password", home=home
    )
    assert added.returncode == 0, added.stderr
    assert run_cli("ice", "policy", "relay", home=home).returncode == 0
    with cli_processes() as started:
        alice = Cli("invite", "--jsonl", home=home)
        started.append(alice)
        error = alice.expect("error")["message"]
        assert "TURN server refused the credentials" in error
        assert "not-the-password" not in error
        assert alice.expect("closed")["reason"] == "no network path"
        assert alice.wait() == 2
        assert not alice.seen("token")  # nothing was offered
    # Line mode (stdin kept open: its end would be a quit): the same sentence, on one line.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}
    env.update(DIDLINK_HOME=str(home), DIDLINK_PASSPHRASE=PASSPHRASE)
    with subprocess.Popen(
        [sys.executable, "-m", "didlink", "invite"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.wait(timeout=30) == 2
        finally:
            process.kill()
        out, err = process.communicate(timeout=10)
    said = [line for line in (out + err).splitlines() if "refused the credentials" in line]
    assert len(said) == 1, (out, err)
    assert "Traceback" not in err


def test_relay_only_without_turn_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "alice"
    make_identity(home)
    assert run_cli("ice", "policy", "relay", home=home).returncode == 0
    assert_user_error(run_cli("invite", "--jsonl", home=home), "relay-only", "TURN server")
    # The environment's policy, too, over a profile that has none.
    other = tmp_path / "bob"
    make_identity(other)
    result = run_cli("invite", "--jsonl", home=other, env={"DIDLINK_ICE_POLICY": "relay"})
    assert_user_error(result, "relay-only", "TURN server")


def _silent_port() -> tuple[socket.socket, int]:
    """A UDP port on loopback that takes every packet and answers none."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock, int(sock.getsockname()[1])


@pytest.mark.timeout(45)  # the connect timeout is 60 s: ICE must end it first
def test_unreachable_peer_fails_with_advice_before_the_connect_timeout(tmp_path: Path) -> None:
    """An invitation whose only address answers no check (as behind a symmetric NAT): the
    accepting side says so and suggests TURN as soon as ICE failed, well before the 60 s
    connect timeout (this test's own timeout, 45 s, is shorter)."""
    inviter, home = tmp_path / "inviter", tmp_path / "bob"
    make_identity(inviter)
    make_identity(home)
    sock, port = _silent_port()
    try:
        key = unlock(inviter / "keystore.json", PASSPHRASE)
        offer = CompactOffer(
            setup=SetupRole.ACTPASS,
            ufrag="abcd",
            pwd="a" * 22,
            fingerprint=bytes(32),
            candidates=(Candidate(kind=CandidateKind.HOST, ip=ip_address("127.0.0.1"), port=port),),
        )
        token = encode_token(
            Invitation.create(
                key,
                now=int(time.time()),
                lifetime=600,
                kind=InvitationKind.INVITE,
                connect=offer.to_cbor(),
            )
        )
        with cli_processes() as started:
            bob = Cli("accept", token, "--jsonl", home=home, env={"DIDLINK_CONNECT_TIMEOUT": "60"})
            started.append(bob)
            bob.expect("token", timeout=20)
            error = bob.expect("error", timeout=40)["message"]
            assert "symmetric NAT" in error and "TURN" in error
            assert bob.expect("closed")["reason"] == "no network path"
            assert bob.wait() == 2
    finally:
        sock.close()
