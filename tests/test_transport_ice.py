"""Relay-only peers, TURN failures and the selected path, in process, with a real coturn
(tests/support/turn_server.py); and `IceChecks` on a stand-in aioice connection
(transport/ice_checks.py, specs/transport.md §6.12, §7.1)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from ipaddress import ip_address
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.turn_server import PASSWORD, USER, TurnServer, turn_server
from transport import (
    Candidate,
    CandidateKind,
    CompactOffer,
    IceConfig,
    IceServer,
    Peer,
    Role,
    SetupRole,
)
from transport.errors import NoLocalCandidates, TurnRefused, TurnUnreachable
from transport.ice import IcePolicy
from transport.ice_checks import CHECK_RETRANSMISSIONS, IceChecks

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def turn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServer]:
    with turn_server(tmp_path_factory.mktemp("coturn")) as server:
        yield server


def _relay(url: str, credential: str = PASSWORD) -> IceConfig:
    server = IceServer(urls=(url,), username=USER, credential=credential)
    return IceConfig(servers=(server,), policy=IcePolicy.RELAY)


async def _connect(offerer: Peer, answerer: Peer) -> None:
    offer = await offerer.create_offer()
    await offerer.accept_answer(await answerer.accept_offer(offer))
    await asyncio.gather(offerer.wait_open(20), answerer.wait_open(20))


def test_relay_only_offers_only_the_relay_and_connects_through_it(turn: TurnServer) -> None:
    async def main() -> None:
        async with (
            Peer(role=Role.OFFERER, ice=_relay(turn.url)) as offerer,
            Peer(role=Role.ANSWERER, ice=IceConfig()) as answerer,
        ):
            offer = await offerer.create_offer()
            assert [c.kind for c in offer.candidates] == [CandidateKind.RELAY]
            assert offer.candidates[0].related_ip == ip_address("0.0.0.0")
            assert offer.candidates[0].related_port == 9
            await offerer.accept_answer(await answerer.accept_offer(offer))
            await asyncio.gather(offerer.wait_open(20), answerer.wait_open(20))
            assert offerer.path == "relay"
            assert answerer.path == "host"  # the answerer is direct: its own address
            await offerer.send(b"via the relay")
            assert await answerer.recv(5) == b"via the relay"

    asyncio.run(main())


def test_default_config_path_is_host() -> None:
    async def main() -> None:
        async with Peer(role=Role.OFFERER) as offerer, Peer(role=Role.ANSWERER) as answerer:
            assert offerer.path is None
            await _connect(offerer, answerer)
            assert offerer.path == answerer.path == "host"

    asyncio.run(main())


def test_wrong_credentials_fail_at_gathering(turn: TurnServer) -> None:
    async def main() -> None:
        async with Peer(role=Role.OFFERER, ice=_relay(turn.url, "wrong")) as offerer:
            with pytest.raises(TurnRefused):
                await offerer.create_offer()
            assert offerer.local_offer is None

    asyncio.run(main())


def test_unreachable_turn_server(turn: TurnServer) -> None:
    closed = f"turn:127.0.0.1:{_closed_tcp_port()}?transport=tcp"

    async def main() -> None:
        async with Peer(role=Role.ANSWERER, ice=_relay(closed)) as answerer:
            async with Peer(role=Role.OFFERER) as offerer:
                offer = await offerer.create_offer()
            with pytest.raises(TurnUnreachable):
                await answerer.accept_offer(offer)

    asyncio.run(main())


def _closed_tcp_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again once we return


def test_relay_only_without_turn_has_nothing_to_offer() -> None:
    async def main() -> None:
        config = IceConfig(policy=IcePolicy.RELAY)
        async with Peer(role=Role.OFFERER, ice=config) as offerer:
            with pytest.raises(NoLocalCandidates):
                await offerer.create_offer()

    asyncio.run(main())


# --- IceChecks on a stand-in connection ---------------------------------------------------


class _Protocol:
    def __init__(self, kind: str, host: str, port: int, mapped: tuple[str, int] | None) -> None:
        self.local_candidate = SimpleNamespace(type=kind, host=host, port=port)
        self.calls: list[int | None] = []
        self._mapped = mapped

    async def request(
        self,
        request: Any,
        addr: tuple[str, int],
        integrity_key: bytes | None = None,
        retransmissions: int | None = None,
    ) -> tuple[Any, tuple[str, int]]:
        self.calls.append(retransmissions)
        attributes = {} if self._mapped is None else {"XOR-MAPPED-ADDRESS": self._mapped}
        return SimpleNamespace(attributes=attributes), addr


class _Connection:
    def __init__(self, protocol: _Protocol, srflx: tuple[str, int] | None = None) -> None:
        self._protocols: list[Any] = []
        self._nominated: dict[int, Any] = {}
        self._protocol = protocol
        self.local_candidates = [protocol.local_candidate]
        if srflx is not None:
            self.local_candidates.append(
                SimpleNamespace(type="srflx", host=srflx[0], port=srflx[1])
            )

    async def gather_candidates(self) -> None:
        self._protocols.append(self._protocol)


REMOTE = ("198.51.100.7", 4000)


def _path(kind: str, mapped: tuple[str, int] | None, srflx: tuple[str, int] | None = None) -> Any:
    protocol = _Protocol(kind, "10.0.0.2", 5000, mapped)
    connection = _Connection(protocol, srflx)
    checks = IceChecks.install(connection)
    assert checks is not None

    async def main() -> None:
        await connection.gather_candidates()
        await protocol.request(object(), REMOTE)  # a check: aioice gives no count
        await protocol.request(object(), REMOTE, retransmissions=2)  # consent: its own count

    asyncio.run(main())
    assert protocol.calls == [CHECK_RETRANSMISSIONS, 2]
    assert checks.path() is None  # nothing nominated yet
    connection._nominated[1] = SimpleNamespace(protocol=protocol, remote_addr=REMOTE)
    return checks.path()


def test_path_from_the_nominated_pair() -> None:
    assert _path("host", ("10.0.0.2", 5000)) == "host"
    assert _path("host", None) == "host"  # no mapped address in the answer: as gathered
    assert _path("host", ("203.0.113.9", 6000), srflx=("203.0.113.9", 6000)) == "srflx"
    assert _path("host", ("203.0.113.9", 6001), srflx=("203.0.113.9", 6000)) == "prflx"
    assert _path("relay", ("203.0.113.9", 6000)) == "relay"


def test_other_internals_are_left_alone() -> None:
    assert IceChecks.install(SimpleNamespace(gather_candidates=None)) is None
    assert IceChecks.install(object()) is None


async def _sources_seen(answerer_config: IceConfig, seconds: float = 2.8) -> tuple[set[Any], Any]:
    """Offer the answerer one host candidate that never answers; the source addresses of every
    datagram it sent there within `seconds`, and its answer."""
    loop = asyncio.get_running_loop()
    seen: set[Any] = set()

    class Silent(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            seen.add(addr[:2])

    transport, _ = await loop.create_datagram_endpoint(Silent, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        offer = CompactOffer(
            setup=SetupRole.ACTPASS,
            ufrag="abcd",
            pwd="a" * 22,
            fingerprint=bytes(32),
            candidates=(Candidate(kind=CandidateKind.HOST, ip=ip_address("127.0.0.1"), port=port),),
        )
        async with Peer(role=Role.ANSWERER, ice=answerer_config) as answerer:
            answer = await answerer.accept_offer(offer)
            await asyncio.sleep(seconds)  # presence probes: one round a second (§6.11)
    finally:
        transport.close()
    return seen, answer


def test_relay_only_sends_nothing_from_our_own_addresses(turn: TurnServer) -> None:
    """In relay-only mode everything that reaches the peer comes from the relay (the ICE checks),
    nothing from a socket of ours (the presence probes are off); in mode all the probes come."""
    seen, answer = asyncio.run(_sources_seen(_relay(turn.url)))
    relayed = {(str(c.ip), c.port) for c in answer.candidates}
    assert seen, "the checks through the relay should reach the offer's address"
    assert seen <= relayed, (seen, relayed)
    seen_all, answer_all = asyncio.run(_sources_seen(IceConfig()))
    own = {(str(c.ip), c.port) for c in answer_all.candidates}
    assert seen_all - own, "control: the presence probes leave from ports of their own"


def test_mode_all_goes_direct_and_reports_a_refused_turn_server(turn: TurnServer) -> None:
    """Mode all with wrong TURN credentials: the connection goes direct, and `on_turn_problem`
    says why the relay would not have worked (didlink warns the user with it)."""
    problems: list[Exception] = []
    server = IceServer(urls=(turn.url,), username=USER, credential="wrong")

    async def main() -> None:
        told = asyncio.Event()

        def on_turn_problem(error: Exception) -> None:
            problems.append(error)
            told.set()

        async with (
            Peer(
                role=Role.OFFERER,
                ice=IceConfig(servers=(server,)),
                on_turn_problem=on_turn_problem,
            ) as offerer,
            Peer(role=Role.ANSWERER) as answerer,
        ):
            offer = await offerer.create_offer()
            assert {c.kind for c in offer.candidates} == {CandidateKind.HOST}
            await offerer.accept_answer(await answerer.accept_offer(offer))
            await asyncio.gather(offerer.wait_open(20), answerer.wait_open(20))
            assert offerer.path == "host"
            async with asyncio.timeout(10):
                await told.wait()

    asyncio.run(main())
    assert [type(p) for p in problems] == [TurnRefused]
