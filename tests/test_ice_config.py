"""ICE servers and policy: URL checks, the environment overrides, the failure reasons and the
path's words (transport/ice.py, transport/ice_diagnosis.py, didlink/profile/ice_settings.py,
didlink/words/ice.py)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aioice import stun
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from didlink.errors import UserError
from didlink.profile.ice_settings import ice_config, servers_from_env
from didlink.profile.sealing import Sealer
from didlink.profile.store import Store
from didlink.session.live import ice_from_env
from didlink.words.ice import FAILURES, failure_words, path_words
from identity.keys import IdentityKey
from transport import IceConfig, IceServer
from transport.errors import (
    ChecksFailed,
    IceFailed,
    NoCandidatePair,
    NoLocalCandidates,
    RelayChecksFailed,
    TurnRefused,
    TurnTlsFailed,
    TurnUnreachable,
)
from transport.ice import IcePolicy, parse_ice_url
from transport.ice_diagnosis import classify, turn_failure

ENV = (
    "DIDLINK_STUN",
    "DIDLINK_TURN",
    "DIDLINK_TURN_USERNAME",
    "DIDLINK_TURN_CREDENTIAL",
    "DIDLINK_ICE_POLICY",
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "store.sqlite3")
    yield opened
    opened.close()


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(IdentityKey.generate())


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


# --- URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "transport"),
    [
        ("stun:stun.example.org", "stun", "stun.example.org", 3478, None),
        ("stun:192.0.2.1:19302", "stun", "192.0.2.1", 19302, None),
        ("turn:turn.example.org", "turn", "turn.example.org", 3478, "udp"),
        ("turn:turn.example.org:80?transport=tcp", "turn", "turn.example.org", 80, "tcp"),
        ("turn:t.example.org?transport=udp", "turn", "t.example.org", 3478, "udp"),
        ("turns:turn.example.org:443", "turns", "turn.example.org", 443, "tcp"),
        ("turns:turn.example.org", "turns", "turn.example.org", 5349, "tcp"),
    ],
)
def test_good_urls(url: str, scheme: str, host: str, port: int, transport: str | None) -> None:
    parsed = parse_ice_url(url)
    assert (parsed.scheme, parsed.host, parsed.port, parsed.transport) == (
        scheme,
        host,
        port,
        transport,
    )


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://example.org",
        "stun://stun.example.org",
        "turn:user:pass@turn.example.org",
        "turn:user@turn.example.org",
        "stun:stun.example.org\x1b[31m",
        "stun:stun.example.org\n",
        "stun:stun .example.org",
        "stun:" + "a" * 300,
        "stun:ex\u00e4mple.org",
        "stun:stun.example.org:0",
        "stun:stun.example.org:70000",
        "stun:stun.example.org:",
        "stun:stun.example.org?transport=udp",
        "stuns:stun.example.org",
        "turn:turn.example.org?transport=sctp",
        "turns:turn.example.org?transport=udp",
        "turn:[::1]:3478",
        "turn:-bad-.example.org",
        "turn:turn.example.org/path",
        "turn:turn.example.org?transport=tcp&x=1",
        "STUN:stun.example.org",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_ice_url(url)
    message = str(caught.value)
    assert "\x1b" not in message and "\n" not in message
    if len(url) > 20:
        assert url not in message  # never quoted: it may be hostile


def test_servers_need_the_right_credentials() -> None:
    with pytest.raises(ValueError):
        IceServer(urls=("turn:turn.example.org",))  # no user name nor credential
    with pytest.raises(ValueError):
        IceServer(urls=("stun:stun.example.org",), username="u", credential="c")
    with pytest.raises(ValueError):
        IceServer(urls=("turn:turn.example.org",), username="u\x00", credential="c")
    with pytest.raises(ValueError):
        IceServer(urls=("turn:turn.example.org",), username="u", credential="c" * 300)
    with pytest.raises(ValueError):  # one TURN server (aioice uses one)
        IceConfig(
            servers=(
                IceServer(urls=("turn:a.example.org",), username="u", credential="c"),
                IceServer(urls=("turns:b.example.org",), username="u", credential="c"),
            )
        )
    secret = IceServer(urls=("turn:turn.example.org",), username="u", credential="hunter22")
    assert "hunter22" not in repr(secret)


def test_rtc_configuration_policy_and_explicit_list() -> None:
    assert IceConfig().rtc_configuration().iceServers == []  # not None: no Google fallback
    assert IceConfig().rtc_configuration().iceTransportPolicy is RTCIceTransportPolicy.ALL
    turn = IceServer(urls=("turn:turn.example.org",), username="u", credential="c")
    relay = IceConfig(servers=(turn,), policy=IcePolicy.RELAY)
    config = relay.rtc_configuration()
    assert config.iceTransportPolicy is RTCIceTransportPolicy.RELAY
    assert config.iceServers is not None and config.iceServers[0].username == "u"
    assert relay.turn == turn and relay.relay_only


# --- the environment -----------------------------------------------------------------------


def test_no_env_no_servers() -> None:
    assert servers_from_env() is None
    assert ice_from_env() == IceConfig()


def test_env_stun_and_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIDLINK_STUN", " stun:stun.example.org:3478 ")
    monkeypatch.setenv("DIDLINK_TURN", "turn:turn.example.org?transport=tcp")
    monkeypatch.setenv("DIDLINK_TURN_USERNAME", "alice")
    monkeypatch.setenv("DIDLINK_TURN_CREDENTIAL", "s3cret")
    monkeypatch.setenv("DIDLINK_ICE_POLICY", "relay")
    config = ice_from_env()
    assert [s.url for s in config.servers] == [
        "stun:stun.example.org:3478",
        "turn:turn.example.org?transport=tcp",
    ]
    assert config.turn is not None and config.turn.credential == "s3cret"
    assert config.policy is IcePolicy.RELAY


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"DIDLINK_STUN": "turn:turn.example.org"}, "DIDLINK_STUN takes stun:"),
        ({"DIDLINK_STUN": "stun:a.example.org,stun:b.example.org"}, "names 2 servers"),
        ({"DIDLINK_STUN": "stun:a.example.org\x07"}, "DIDLINK_STUN is not a usable URL"),
        ({"DIDLINK_TURN": "stun:a.example.org"}, "DIDLINK_TURN takes turn:"),
        ({"DIDLINK_TURN": "turn:a.example.org"}, "DIDLINK_TURN_USERNAME"),
        (
            {"DIDLINK_TURN": "turn:a.example.org", "DIDLINK_TURN_USERNAME": "u"},
            "DIDLINK_TURN_CREDENTIAL",
        ),
        (
            {
                "DIDLINK_TURN": "turn:a.example.org",
                "DIDLINK_TURN_USERNAME": "u" * 300,
                "DIDLINK_TURN_CREDENTIAL": "c",
            },
            "user name",
        ),
        ({"DIDLINK_ICE_POLICY": "relay-ish"}, "DIDLINK_ICE_POLICY is 'all' or 'relay'"),
    ],
)
def test_bad_env_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], needle: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(UserError) as caught:
        ice_from_env()
    assert needle in str(caught.value)
    assert "\x07" not in str(caught.value)


def test_env_replaces_the_profile_servers(
    monkeypatch: pytest.MonkeyPatch, store: Store, sealer: Sealer
) -> None:
    from didlink.profile.ice_settings import IceSettings

    settings = IceSettings(store, sealer)
    settings.add("turn:profile.example.org", username="p", credential="profile-secret")
    settings.add("stun:profile.example.org")
    settings.set_policy(IcePolicy.RELAY)
    config = ice_config(store, sealer)
    assert {s.url for s in config.servers} == {
        "turn:profile.example.org",
        "stun:profile.example.org",
    }
    assert config.turn is not None and config.turn.credential == "profile-secret"
    assert config.policy is IcePolicy.RELAY
    # DIDLINK_STUN alone replaces all the profile's servers: relay-only now has no TURN.
    monkeypatch.setenv("DIDLINK_STUN", "stun:env.example.org")
    with pytest.raises(UserError, match="relay-only mode needs a TURN server"):
        ice_config(store, sealer)
    monkeypatch.setenv("DIDLINK_ICE_POLICY", "all")
    config = ice_config(store, sealer)
    assert [s.url for s in config.servers] == ["stun:env.example.org"]
    assert config.policy is IcePolicy.ALL


def test_a_credential_sealed_for_another_server_is_not_used(store: Store, sealer: Sealer) -> None:
    from didlink.profile.ice_settings import SERVERS, IceSettings
    from didlink.profile.settings import Settings

    IceSettings(store, sealer).add("turn:a.example.org", username="u", credential="for-a")
    Settings(store).put(SERVERS, b'[{"url":"turn:b.example.org","username":"u"}]')
    with pytest.raises(UserError, match="no credential"):
        ice_config(store, sealer)


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b"{}",
        b'[{"url": 1}]',
        b'[{"url": "http://x"}]',
        b'[{"url":"stun:a","x":1}]',
        b'[{"url":"stun:a\\u001b[2J"}]',
        b'[{"url":"stun:a b"}]',
        b'[{"url":"turn:a","username":"\\u0007"}]',
    ],
)
def test_a_damaged_servers_setting_is_refused(store: Store, value: bytes) -> None:
    from didlink.profile.ice_settings import SERVERS, IceSettings
    from didlink.profile.settings import Settings
    from didlink.profile.store import DamagedStore

    Settings(store).put(SERVERS, value)
    with pytest.raises(DamagedStore, match="ICE servers setting is damaged"):
        IceSettings(store).config()


# --- failure reasons -----------------------------------------------------------------------


def _candidate(kind: str) -> Any:
    return SimpleNamespace(type=kind)


def _connection(local: list[str], remote: list[str], pairs: int = 1) -> Any:
    return SimpleNamespace(
        local_candidates=[_candidate(k) for k in local],
        remote_candidates=[_candidate(k) for k in remote],
        _check_list=[object()] * pairs,
    )


@pytest.mark.parametrize(
    ("connection", "turn_problem", "expected"),
    [
        (_connection([], ["host"]), None, NoLocalCandidates),
        (_connection([], ["host"]), TurnRefused(), TurnRefused),
        (_connection(["host"], ["host"], pairs=0), None, NoCandidatePair),
        (_connection(["host"], []), None, NoCandidatePair),
        (_connection(["host", "srflx"], ["host", "srflx"]), None, ChecksFailed),
        (_connection(["host"], ["host"]), TurnUnreachable(), TurnUnreachable),
        (_connection(["relay"], ["host"]), None, RelayChecksFailed),
        (_connection(["host"], ["relay"]), None, RelayChecksFailed),
    ],
)
def test_classify(connection: Any, turn_problem: IceFailed | None, expected: type) -> None:
    assert type(classify(connection, turn_problem=turn_problem)) is expected


def _error_response(code: int) -> stun.TransactionFailed:
    message = stun.Message(message_method=stun.Method.ALLOCATE, message_class=stun.Class.ERROR)
    message.attributes["ERROR-CODE"] = (code, "x")
    return stun.TransactionFailed(message)


@pytest.mark.parametrize("code", [401, 403, 437, 438, 441])
def test_turn_credential_errors(code: int) -> None:
    assert isinstance(turn_failure(_error_response(code)), TurnRefused)


def test_other_turn_failures() -> None:
    assert isinstance(turn_failure(stun.TransactionTimeout()), TurnUnreachable)
    assert isinstance(turn_failure(ConnectionRefusedError()), TurnUnreachable)
    assert isinstance(turn_failure(ssl.SSLCertVerificationError()), TurnTlsFailed)
    other = turn_failure(_error_response(486))
    assert type(other) is IceFailed and "486" in str(other)
    assert turn_failure(ValueError()) is None


def test_every_failure_has_words_with_what_to_try() -> None:
    for error in (
        NoLocalCandidates(),
        NoCandidatePair(),
        ChecksFailed(),
        RelayChecksFailed(),
        TurnRefused(),
        TurnUnreachable(),
        TurnTlsFailed(),
    ):
        words = failure_words(error)
        assert words == FAILURES[type(error).__name__]
        assert words.startswith("no network path: ") and "\n" not in words
    assert "symmetric NAT" in failure_words(ChecksFailed()) and "TURN" in failure_words(
        ChecksFailed()
    )
    assert "refused the credentials" in failure_words(TurnRefused())
    assert "error 486" in failure_words(IceFailed("The TURN server refused (error 486)."))


def test_path_words() -> None:
    assert path_words("host") == "direct"
    assert path_words("srflx") == path_words("prflx") == "direct (through your router)"
    assert path_words("relay", "turn.example.org") == "relayed by turn.example.org"
    assert path_words("relay") == "relayed by your TURN server"
    assert path_words(None) == ""


def test_connected_event_carries_the_path() -> None:
    from didlink.events import Connected, event_from

    event = event_from("connected", {"peer": "did:key:z6Mk", "verified": True, "path": "relay"})
    assert event == Connected(peer="did:key:z6Mk", verified=True, path="relay")
    older = event_from("connected", {"peer": "did:key:z6Mk", "verified": True})
    assert isinstance(older, Connected) and older.path is None


def test_a_damaged_policy_is_refused(store: Store) -> None:
    from didlink.profile.ice_settings import POLICY, IceSettings
    from didlink.profile.settings import Settings
    from didlink.profile.store import DamagedStore

    Settings(store).put(POLICY, b"relay\x1b")
    with pytest.raises(DamagedStore, match="ICE policy setting is damaged"):
        IceSettings(store).policy()
