"""Connections through NAT routers, STUN and TURN: the NAT lab (issue 29 point 4).

Every case runs the real CLI, one process per person, each inside its own home network of the
lab (tests/support/nat_lab.py): a host behind a NAT router whose public side shares a network
with coturn (STUN and TURN). Each home sees the other only through its router, as two people at
home see each other through the internet. The servers reach the processes through the issue's
environment variables (DIDLINK_STUN, DIDLINK_TURN with its user name and credential,
DIDLINK_ICE_POLICY) or through the profile (`didlink ice add`, `didlink ice policy`).

What each case shows:

- both homes behind endpoint-independent ("cone") NATs, STUN only: the two connect directly
  through their routers (`path` srflx or prflx, never host nor relay), and their routers saw
  each other's packets;
- one home behind a symmetric NAT, STUN and TURN: the connection takes the relay;
- the same without TURN: it fails at once, saying why (symmetric NAT) and what to try (TURN);
- relay-only (Alice's profile): her invitation holds the TURN server's address only, and
  neither router ever saw a packet of the other home: everything came through coturn;
- TURN down or refusing the credentials: a one-line reason naming the TURN server, exit 2;
- the path changes mid-session (Alice's router gets a new public address, every mapping of the
  old one gone): both sides see the connection lost, messages written meanwhile wait in the
  outbox, and a reconnect (`didlink chat` + `didlink accept`) delivers every one exactly once.

Under CI=true a missing lab (root, iproute2, nftables, coturn) fails these tests; elsewhere it
skips them (tests/support/require.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from identity.invitation import Invitation, Response
from identity.token import decode_token
from tests.e2e.driver import Cli, actor, cli_processes, make_identity
from tests.support.nat_lab import (
    SECOND_STUN_ADDRESS,
    TURN_ADDRESS,
    TURN_USER,
    Lab,
    LabError,
    Nat,
    missing,
    nat_lab,
)
from tests.support.require import require
from transport import CandidateKind, CompactOffer

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(150)]

PATH_EVENT_TIMEOUT = 45.0  # ICE through a NAT on a loaded 2-core machine
LOST_TIMEOUT = 90.0  # consent expires 30 s after the last answer (transport/liveness.py)


@contextmanager
def _lab(tmp_path: Path, nat_a: Nat = Nat.CONE, nat_b: Nat = Nat.CONE) -> Iterator[Lab]:
    """The lab for one test: skipped (locally) or failed (CI=true) if it cannot be built."""
    reason = missing()
    require(reason is None, reason or "")
    with ExitStack() as stack:
        try:
            lab = stack.enter_context(nat_lab(tmp_path / "lab", nat_a=nat_a, nat_b=nat_b))
        except LabError as exc:  # e.g. root without CAP_NET_ADMIN in a container
            require(False, f"the NAT lab could not be built: {exc}")
            raise
        yield lab


def _offer(token: str) -> CompactOffer:
    decoded = decode_token(token)
    assert isinstance(decoded, Invitation | Response)
    return CompactOffer.from_cbor(decoded.connect)


def _addresses(offer: CompactOffer) -> set[str]:
    """Every address an offer tells the peer: candidates and their related addresses."""
    seen = {str(c.ip) for c in offer.candidates}
    seen |= {str(c.related_ip) for c in offer.candidates if c.related_ip is not None}
    return seen - {"0.0.0.0"}  # aioice's "no related address" (port 9)


def _start(
    lab: Lab, tmp_path: Path, started: list[Cli], env_a: dict[str, str], env_b: dict[str, str]
) -> tuple[Cli, Cli, str, str]:
    """Alice (home a) invites, Bob (home b) accepts: (alice, bob, invitation, response)."""
    alice = Cli("invite", "--jsonl", home=tmp_path / "alice", env=env_a, prefix=lab.prefix("a"))
    started.append(alice)
    invitation = alice.expect("token", timeout=PATH_EVENT_TIMEOUT)["token"]
    bob = Cli(
        "accept", invitation, "--jsonl", home=tmp_path / "bob", env=env_b, prefix=lab.prefix("b")
    )
    started.append(bob)
    response = bob.expect("token", timeout=PATH_EVENT_TIMEOUT)["token"]
    alice.send("response", token=response)
    return alice, bob, invitation, response


def _confirmed(alice: Cli, bob: Cli) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both confirm the SAS; both `connected` events."""
    assert alice.expect("sas", timeout=PATH_EVENT_TIMEOUT) == bob.expect(
        "sas", timeout=PATH_EVENT_TIMEOUT
    )
    alice.send("confirm_sas")
    bob.send("confirm_sas")
    return alice.expect("connected"), bob.expect("connected")


def _talk(alice: Cli, bob: Cli, tag: str) -> None:
    """Three messages each way, each arriving once and in order."""
    for i in range(3):
        alice.send("send", text=f"{tag} a{i}")
        bob.send("send", text=f"{tag} b{i}")
    assert [bob.expect("message")["text"] for _ in range(3)] == [f"{tag} a{i}" for i in range(3)]
    assert [alice.expect("message")["text"] for _ in range(3)] == [f"{tag} b{i}" for i in range(3)]


def _quit(alice: Cli, bob: Cli) -> None:
    alice.send("quit")
    assert alice.expect("closed")["reason"] == "quit"
    assert bob.expect("closed")["reason"] == "peer closed"
    assert alice.wait() == 0, alice.stderr
    assert bob.wait() == 0, bob.stderr


def _identities(tmp_path: Path) -> tuple[str, str]:
    return make_identity(tmp_path / "alice"), make_identity(tmp_path / "bob")


# -- the lab itself ----------------------------------------------------------------------------


def test_the_lab_nats_map_as_named(tmp_path: Path) -> None:
    """One socket asks two STUN addresses: one mapping behind the cone NAT, two behind the
    symmetric one, each at the router's public address; and the homes cannot see each other."""
    with _lab(tmp_path, Nat.CONE, Nat.SYMMETRIC) as lab:
        cone = lab.mapped("a")
        assert [host for host, _ in cone] == [lab.homes["a"].public] * 2
        assert cone[0] == cone[1]
        symmetric = lab.mapped("b")
        assert [host for host, _ in symmetric] == [lab.homes["b"].public] * 2
        assert symmetric[0][1] != symmetric[1][1]
        # A host is unreachable at its private address from the other home.
        with pytest.raises(LabError):
            lab.mapped("a", servers=((lab.homes["b"].address, 3478),), timeout=0.5)
        assert lab.packets_from_peers("a") == lab.packets_from_peers("b") == 0
        # A new public address: a new mapping, at the new address.
        new = lab.renumber("a")
        assert {host for host, _ in lab.mapped("a")} == {new}
        assert new in lab.our_addresses("a") and lab.homes["a"].public == new
        assert SECOND_STUN_ADDRESS != TURN_ADDRESS


def test_raw_aiortc_takes_the_relay_past_a_symmetric_nat(tmp_path: Path) -> None:
    """The baseline of the bench (bench/raw_peer.py, plain aiortc) through the same lab: with
    STUN and TURN it connects across the symmetric NAT, and a relay is on the path. This is
    what the lab offers any WebRTC stack; the didlink cases below must do at least as well."""
    from bench.metrics.session import RawActor

    with _lab(tmp_path, Nat.CONE, Nat.SYMMETRIC) as lab:
        env = lab.env(stun=True, turn=True)
        a, b = (
            RawActor(f"raw-{h}", tmp_path / h, "unused", extra_env=env, prefix=lab.prefix(h))
            for h in ("a", "b")
        )
        with cli_processes() as started:
            offerer = a.spawn("invite", timeout=PATH_EVENT_TIMEOUT)
            started.append(offerer)  # type: ignore[arg-type]
            token = offerer.expect("token")["token"]
            answerer = b.spawn("accept", token, timeout=PATH_EVENT_TIMEOUT)
            started.append(answerer)  # type: ignore[arg-type]
            offerer.send("response", token=answerer.expect("token")["token"])
            paths = {offerer.expect("connected")["path"], answerer.expect("connected")["path"]}
            assert "relay" in paths, paths
            offerer.send("send", text="through the lab")
            assert answerer.expect("message")["text"] == "through the lab"
            for process in (offerer, answerer):
                process.send("quit")
                process.wait(timeout=30)


# -- didlink through the lab -----------------------------------------------------------------


def test_cone_nats_with_stun_connect_directly(tmp_path: Path) -> None:
    _identities(tmp_path)
    with _lab(tmp_path) as lab, cli_processes() as started:
        env = lab.env(stun=True)
        alice, bob, invitation, response = _start(lab, tmp_path, started, env, env)
        # Each side offered its own address and its router's mapping (from STUN).
        for token, home in ((invitation, "a"), (response, "b")):
            kinds = {(c.kind, str(c.ip)) for c in _offer(token).candidates}
            assert (CandidateKind.HOST, lab.homes[home].address) in kinds
            assert (CandidateKind.SRFLX, lab.homes[home].public) in kinds
        connected = _confirmed(alice, bob)
        for event in connected:
            assert event["path"] in ("srflx", "prflx"), event  # through the router, directly
        _talk(alice, bob, "direct")
        # Directly: each router saw the other home's packets.
        assert lab.packets_from_peers("a") > 0 and lab.packets_from_peers("b") > 0
        _quit(alice, bob)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_symmetric_nat_is_crossed_through_turn(tmp_path: Path, transport: str) -> None:
    """STUN and TURN (over UDP, or over TCP: `?transport=tcp`, for networks that block UDP to
    the relay) on both sides; Bob is behind the symmetric NAT, which no direct check crosses
    without help (the next test). The TURN allocation is offered and the session connects:
    usually through the relay; sometimes ICE's checks through the relay open the routers' state
    for a direct peer-reflexive pair (seen 1 run in about 10), which is a success too. Never a
    host pair: nobody saw a private address."""
    _identities(tmp_path)
    with _lab(tmp_path, Nat.CONE, Nat.SYMMETRIC) as lab, cli_processes() as started:
        env = lab.env(stun=True, turn=True, tcp=transport == "tcp")
        alice, bob, _, response = _start(lab, tmp_path, started, env, env)
        assert CandidateKind.RELAY in {c.kind for c in _offer(response).candidates}
        connected = _confirmed(alice, bob)
        paths = {event["path"] for event in connected}
        assert paths <= {"relay", "srflx", "prflx"} and paths, paths  # never "host"
        _talk(alice, bob, "relayed")
        _quit(alice, bob)


def test_a_symmetric_nat_without_turn_fails_at_once_and_says_why(tmp_path: Path) -> None:
    """No TURN: every check dies at Bob's symmetric NAT. Both sides end with a reason that names
    the symmetric NAT and suggests TURN, with exit 2, before the 60 s connect timeout (which
    this test would not outlive: its timeout, with the processes' start, is shorter)."""
    _identities(tmp_path)
    with _lab(tmp_path, Nat.CONE, Nat.SYMMETRIC) as lab, cli_processes() as started:
        env = {**lab.env(stun=True), "DIDLINK_CONNECT_TIMEOUT": "60"}
        alice, bob, _, _ = _start(lab, tmp_path, started, env, env)
        for side in (alice, bob):
            said = side.expect("error", timeout=PATH_EVENT_TIMEOUT)["message"]
            assert "TURN" in said and "symmetric NAT" in said, said
            assert side.expect("closed")["reason"] == "no network path"
            assert side.wait() == 2
            assert not side.seen("connected")


def test_relay_only_shows_the_peer_no_address_of_ours(tmp_path: Path) -> None:
    """Alice sets TURN and relay-only in her profile; Bob uses STUN and TURN from the
    environment with the default policy. Alice's invitation names the TURN server only (no
    host, no srflx, no related address), the session takes the relay, and neither router ever
    saw a packet from the other home: all of it came from coturn's address."""
    _identities(tmp_path)
    with _lab(tmp_path, Nat.CONE, Nat.CONE) as lab, cli_processes() as started:
        alice_actor = actor(tmp_path / "alice")
        alice_actor.run(
            "ice", "add", lab.turn_url, "--username", TURN_USER, "--credential", lab.credential
        )
        alice_actor.run("ice", "policy", "relay")
        shown = alice_actor.run_json("ice", "--json")
        assert lab.credential not in str(shown)  # the credential is sealed, never shown
        alice, bob, invitation, _ = _start(
            lab, tmp_path, started, {}, lab.env(stun=True, turn=True)
        )
        offer = _offer(invitation)
        assert {c.kind for c in offer.candidates} == {CandidateKind.RELAY}
        assert _addresses(offer) == {TURN_ADDRESS}
        assert not _addresses(offer) & lab.our_addresses("a")
        connected_a, connected_b = _confirmed(alice, bob)
        assert connected_a["path"] == "relay"
        assert connected_b["path"] in ("srflx", "prflx", "relay")  # Bob: his router's mapping
        _talk(alice, bob, "relay-only")
        assert lab.packets_from_peers("b") == 0  # Bob's side never saw Alice's address
        assert lab.packets_from_peers("a") == 0
        _quit(alice, bob)


@pytest.mark.parametrize("fault", ["down", "refused"])
def test_turn_down_or_refusing_ends_with_the_reason(tmp_path: Path, fault: str) -> None:
    """Relay-only with coturn stopped, or with a wrong credential: the invitation is never
    offered; one error naming the TURN server, exit 2, and the credential never shown."""
    make_identity(tmp_path / "alice")
    with _lab(tmp_path) as lab, cli_processes() as started:
        wrong = "not-the-lab-credential"
        if fault == "down":
            lab.stop_turn()
            env = lab.env(turn=True, policy="relay")
        else:
            env = lab.env(turn=True, policy="relay", credential=wrong)
        alice = Cli("invite", "--jsonl", home=tmp_path / "alice", env=env, prefix=lab.prefix("a"))
        started.append(alice)
        said = alice.expect("error", timeout=PATH_EVENT_TIMEOUT)["message"]
        assert "TURN" in said, said
        assert ("did not answer" if fault == "down" else "refused") in said, said
        assert wrong not in said and lab.credential not in said
        assert alice.wait() == 2
        assert not alice.seen("token")
        assert wrong not in alice.stderr and lab.credential not in alice.stderr


def test_a_path_that_changes_mid_session_loses_nothing(tmp_path: Path) -> None:
    """Alice's router gets a new public address mid-session (its NAT mappings go with the old
    one). Both sides notice the path is gone (RFC 7675 consent expires) and end with
    "connection lost"; what both wrote meanwhile stays in their outboxes; Alice reconnects
    (`didlink chat BOB`, Bob accepts, both on STUN) from her new address, and every message
    written during the outage arrives exactly once, none of the earlier ones again."""
    alice_did, bob_did = _identities(tmp_path)
    with _lab(tmp_path) as lab:
        env = lab.env(stun=True)
        with cli_processes() as started:
            alice, bob, _, _ = _start(lab, tmp_path, started, env, env)
            _confirmed(alice, bob)
            _talk(alice, bob, "before")
            old = lab.homes["a"].public
            new = lab.renumber("a")
            alice.send("send", text="during a0")
            alice.send("send", text="during a1")
            bob.send("send", text="during b0")
            for side in (alice, bob):
                assert side.expect("closed", timeout=LOST_TIMEOUT)["reason"] == "connection lost"
                assert side.wait() != 0
                side.rest()
            assert [m["text"] for m in bob.seen("message")] == [f"before a{i}" for i in range(3)]
            assert [m["text"] for m in alice.seen("message")] == [f"before b{i}" for i in range(3)]
        with cli_processes() as started:
            alice = Cli("chat", bob_did, "--jsonl", home=tmp_path / "alice", env=env,
                        prefix=lab.prefix("a"))  # fmt: skip
            started.append(alice)
            token = alice.expect("token", timeout=PATH_EVENT_TIMEOUT)
            assert token["kind"] == "reconnect"
            srflx = {str(c.ip) for c in _offer(token["token"]).candidates
                     if c.kind is CandidateKind.SRFLX}  # fmt: skip
            assert srflx == {new} and old not in srflx  # offered from the new address
            bob = Cli("accept", token["token"], "--jsonl", home=tmp_path / "bob", env=env,
                      prefix=lab.prefix("b"))  # fmt: skip
            started.append(bob)
            alice.send("response", token=bob.expect("token", timeout=PATH_EVENT_TIMEOUT)["token"])
            assert alice.expect("connected", timeout=PATH_EVENT_TIMEOUT)["peer"] == bob_did
            assert bob.expect("connected", timeout=PATH_EVENT_TIMEOUT)["peer"] == alice_did
            got_b = [bob.expect("message")["text"] for _ in range(2)]
            got_a = [alice.expect("message")["text"]]
            assert got_b == ["during a0", "during a1"]
            assert got_a == ["during b0"]
            _talk(alice, bob, "after")
            _quit(alice, bob)
            assert [m["text"] for m in bob.seen("message")].count("during a0") == 1
            assert not any(m["text"].startswith("before") for m in bob.seen("message"))
            assert not any(m["text"].startswith("before") for m in alice.seen("message"))
