"""ICE server configuration: none by default, so no third party learns anything.

aiortc's `RTCIceGatherer` falls back to a public Google STUN server when `iceServers` is None
(aiortc 1.16, `RTCIceGatherer.getDefaultIceServers`). We therefore always pass an explicit list,
which is empty unless the user configured STUN or TURN servers (specs/transport.md §2).
"""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCIceServer
from pydantic import BaseModel, ConfigDict, Field, field_validator

_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


class IceServer(BaseModel):
    """One STUN or TURN server (TURN servers need a username and credential)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    urls: tuple[str, ...] = Field(min_length=1)
    username: str | None = None
    credential: str | None = Field(default=None, repr=False)

    @field_validator("urls")
    @classmethod
    def _check_urls(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        for url in urls:
            if not url.startswith(_SCHEMES):
                raise ValueError(f"ICE server URL {url!r} must start with stun(s): or turn(s):")
        return urls


class IceConfig(BaseModel):
    """The ICE servers to use; the default (no servers) uses host candidates only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    servers: tuple[IceServer, ...] = ()

    def rtc_configuration(self) -> RTCConfiguration:
        """The aiortc configuration, always with an explicit (possibly empty) server list."""
        return RTCConfiguration(
            iceServers=[
                RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
                for s in self.servers
            ]
        )
