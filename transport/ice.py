"""ICE server configuration and policy: none by default, so no third party learns anything.

aiortc's `RTCIceGatherer` falls back to a public Google STUN server when `iceServers` is None
(aiortc 1.16, `RTCIceGatherer.getDefaultIceServers`). We therefore always pass an explicit list,
which is empty unless the user configured STUN or TURN servers (specs/transport.md §2).

URLs are checked strictly here (`parse_ice_url`), because aiortc skips what it cannot use
without a word: a `turns:` URL over UDP, a second STUN or TURN server (aioice 0.13 uses one of
each), `stuns:` (aioice has no STUN over TLS). What aiortc would skip is refused instead.

The relay policy (`IcePolicy.RELAY`) is aiortc's `iceTransportPolicy="relay"` (RFC 9429
§3.5.3): aioice then gathers no host and no server-reflexive candidate, only the TURN server's
relayed one, and hides its related address (0.0.0.0 port 9), so an offer or answer holds no
address of ours.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_URL_CHARS = 255
MAX_USERNAME_CHARS = 256
MAX_CREDENTIAL_CHARS = 256
MAX_SERVERS = 2  # one STUN and one TURN server: aioice 0.13 uses no more

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_URL = re.compile(
    rf"(?P<scheme>stun|stuns|turn|turns):(?P<host>{_LABEL}(?:\.{_LABEL})*)"
    r"(?::(?P<port>[0-9]{1,5}))?(?:\?transport=(?P<transport>[a-z]+))?"
)
DEFAULT_PORTS = {"stun": 3478, "turn": 3478, "turns": 5349}


class IcePolicy(enum.Enum):
    """Which candidates ICE may use: every kind (the default), or only the TURN relay's."""

    ALL = "all"
    RELAY = "relay"


@dataclass(frozen=True)
class IceUrl:
    """A checked STUN or TURN URL (RFC 7064, RFC 7065)."""

    scheme: str  # "stun", "turn" or "turns"
    host: str
    port: int
    transport: str | None  # "udp" or "tcp" for TURN; None for STUN

    @property
    def is_turn(self) -> bool:
        return self.scheme in ("turn", "turns")


def parse_ice_url(url: str) -> IceUrl:
    """Check `url` strictly; ValueError (a sentence that never quotes the URL) otherwise."""
    if not isinstance(url, str) or not url:
        raise ValueError("an ICE server URL must not be empty")
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"an ICE server URL is at most {MAX_URL_CHARS} characters")
    if not url.isascii() or not url.isprintable() or any(c.isspace() for c in url):
        raise ValueError("an ICE server URL is printable ASCII without spaces or controls")
    if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
        raise ValueError("an ICE server URL starts with stun: or turn: (turns: for TLS)")
    if "@" in url:
        raise ValueError(
            "an ICE server URL holds no user name or password: give them with --username"
            " and --credential"
        )
    if url.startswith(("stun://", "turn://", "turns://")):
        raise ValueError("an ICE server URL has no // (e.g. turn:turn.example.org:3478)")
    match = _URL.fullmatch(url)
    if match is None:
        raise ValueError(
            "an ICE server URL is SCHEME:HOST[:PORT][?transport=udp|tcp], HOST a DNS name"
            " or an IPv4 address"
        )
    scheme, host = match["scheme"], match["host"]
    if scheme == "stuns":
        raise ValueError("stuns: (STUN over TLS) is not supported by the WebRTC stack: use stun:")
    port = int(match["port"]) if match["port"] else DEFAULT_PORTS[scheme]
    if not 1 <= port <= 65535:
        raise ValueError("an ICE server's port is between 1 and 65535")
    transport = match["transport"]
    if scheme == "stun":
        if transport is not None:
            raise ValueError("a stun: URL takes no ?transport=")
        return IceUrl(scheme, host, port, None)
    if transport is None:
        transport = "udp" if scheme == "turn" else "tcp"
    if transport not in ("udp", "tcp"):
        raise ValueError("a TURN URL's transport is udp or tcp")
    if scheme == "turns" and transport != "tcp":
        raise ValueError("a turns: URL runs over TLS on TCP: ?transport=udp is not possible")
    return IceUrl(scheme, host, port, transport)


def check_username(username: str) -> str:
    """A TURN user name: 1..256 printable characters (ValueError otherwise)."""
    if not username or len(username) > MAX_USERNAME_CHARS or not username.isprintable():
        raise ValueError(f"a TURN user name is 1 to {MAX_USERNAME_CHARS} printable characters")
    return username


def check_credential(credential: str) -> str:
    """A TURN credential (password): 1..256 printable characters (ValueError otherwise)."""
    if not credential or len(credential) > MAX_CREDENTIAL_CHARS or not credential.isprintable():
        raise ValueError(f"a TURN credential is 1 to {MAX_CREDENTIAL_CHARS} printable characters")
    return credential


class IceServer(BaseModel):
    """One STUN or TURN server (TURN servers need a username and credential)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    urls: tuple[str, ...] = Field(min_length=1, max_length=1)
    username: str | None = None
    credential: str | None = Field(default=None, repr=False)

    @field_validator("urls")
    @classmethod
    def _check_urls(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        for url in urls:
            parse_ice_url(url)
        return urls

    @model_validator(mode="after")
    def _check_credentials(self) -> IceServer:
        if self.parsed.is_turn:
            if self.username is None or self.credential is None:
                raise ValueError("a TURN server needs a user name and a credential")
            check_username(self.username)
            check_credential(self.credential)
        elif self.username is not None or self.credential is not None:
            raise ValueError("a STUN server takes no user name or credential")
        return self

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def parsed(self) -> IceUrl:
        return parse_ice_url(self.urls[0])


class IceConfig(BaseModel):
    """The ICE servers and policy; the default (no servers, policy all) uses host candidates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    servers: tuple[IceServer, ...] = Field(default=(), max_length=MAX_SERVERS)
    policy: IcePolicy = IcePolicy.ALL

    @model_validator(mode="after")
    def _one_of_each(self) -> IceConfig:
        kinds = [s.parsed.is_turn for s in self.servers]
        if kinds.count(True) > 1 or kinds.count(False) > 1:
            raise ValueError("one STUN and one TURN server at most (aioice uses one of each)")
        return self

    @property
    def turn(self) -> IceServer | None:
        """The TURN server, if one is configured."""
        return next((s for s in self.servers if s.parsed.is_turn), None)

    @property
    def relay_only(self) -> bool:
        return self.policy is IcePolicy.RELAY

    def rtc_configuration(self) -> RTCConfiguration:
        """The aiortc configuration, always with an explicit (possibly empty) server list."""
        return RTCConfiguration(
            iceServers=[
                RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
                for s in self.servers
            ],
            iceTransportPolicy=RTCIceTransportPolicy.RELAY
            if self.relay_only
            else RTCIceTransportPolicy.ALL,
        )
