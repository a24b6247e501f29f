"""The profile's ICE servers and policy, and the environment variables that override them.

Stored in the profile's settings (didlink/profile/settings.py, specs/store.md "Settings"):

- `ice.servers`: clear JSON, a list of {"url": URL, "username": NAME or null}: at most one
  STUN and one TURN server (aioice uses one of each);
- `ice.turn_credential`: sealed under the store key, JSON {"url", "username", "credential"}
  of the TURN server: the credential never lies in clear in the file, and one sealed for
  another server or user name is not used;
- `ice.policy`: clear, "all" (the default) or "relay".

None by default: no STUN or TURN server is ever contacted unless the user configured one.
For one run, `DIDLINK_STUN` / `DIDLINK_TURN` (with `DIDLINK_TURN_USERNAME` and
`DIDLINK_TURN_CREDENTIAL`) replace the profile's servers (all of them, when either is set), and
`DIDLINK_ICE_POLICY` replaces its policy. Everything read from the environment or the store is
checked as hostile: a bad value is one clear line (a `UserError`), never quoted raw.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from didlink.errors import UserError
from didlink.profile.settings import Settings
from didlink.profile.store import DamagedStore

if TYPE_CHECKING:
    from didlink.profile.sealing import Sealer
    from didlink.profile.store import Store
    from transport.ice import IceConfig, IcePolicy, IceServer

STUN_ENV = "DIDLINK_STUN"
TURN_ENV = "DIDLINK_TURN"
TURN_USERNAME_ENV = "DIDLINK_TURN_USERNAME"
TURN_CREDENTIAL_ENV = "DIDLINK_TURN_CREDENTIAL"
POLICY_ENV = "DIDLINK_ICE_POLICY"

SERVERS = "ice.servers"
TURN_CREDENTIAL = "ice.turn_credential"
POLICY = "ice.policy"

NO_TURN_FOR_RELAY = (
    "relay-only mode needs a TURN server: add one with"
    " 'didlink ice add turn:HOST:PORT --username NAME' (or set DIDLINK_TURN), or go back to"
    " 'didlink ice policy all'"
)


class StoredServer(BaseModel):
    """One entry of `ice.servers`."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    url: str = Field(max_length=255)
    username: str | None = Field(default=None, max_length=256)


class StoredCredential(BaseModel):
    """The sealed `ice.turn_credential`."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    url: str = Field(max_length=255)
    username: str = Field(max_length=256)
    credential: str = Field(max_length=256)


def _problem(exc: ValueError) -> str:
    """A model's or parser's first complaint, without the input (it may be hostile)."""
    if isinstance(exc, ValidationError):
        err = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        return str(err["msg"]).removeprefix("Value error, ")
    return str(exc)


def _urls(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_policy(text: str) -> IcePolicy:
    from transport.ice import IcePolicy

    try:
        return IcePolicy(text.strip())
    except ValueError:
        raise UserError("the ICE policy is 'all' or 'relay'") from None


def servers_from_env() -> tuple[IceServer, ...] | None:
    """The servers DIDLINK_STUN / DIDLINK_TURN name; None when neither is set (or both empty)."""
    from transport.ice import IceServer, parse_ice_url

    stun_text = os.environ.get(STUN_ENV, "")
    turn_text = os.environ.get(TURN_ENV, "")
    if not stun_text.strip() and not turn_text.strip():
        return None
    servers: list[IceServer] = []
    for name, text, turn in ((STUN_ENV, stun_text, False), (TURN_ENV, turn_text, True)):
        urls = _urls(text)
        if len(urls) > 1:
            raise UserError(f"{name} names {len(urls)} servers: didlink uses one (aioice's limit)")
        for url in urls:
            try:
                parsed = parse_ice_url(url)
            except ValueError as exc:
                raise UserError(f"{name} is not a usable URL: {exc}") from None
            if parsed.is_turn != turn:
                want = "turn: or turns:" if turn else "stun:"
                raise UserError(f"{name} takes {want} URLs")
            if not turn:
                servers.append(IceServer(urls=(url,)))
                continue
            username = os.environ.get(TURN_USERNAME_ENV)
            credential = os.environ.get(TURN_CREDENTIAL_ENV)
            if not username or not credential:
                raise UserError(
                    f"{TURN_ENV} needs {TURN_USERNAME_ENV} and {TURN_CREDENTIAL_ENV} (the TURN"
                    " server's user name and credential)"
                )
            try:
                servers.append(IceServer(urls=(url,), username=username, credential=credential))
            except ValueError as exc:
                raise UserError(f"{TURN_ENV}: {_problem(exc)}") from None
    return tuple(servers)


def policy_from_env() -> IcePolicy | None:
    """DIDLINK_ICE_POLICY, if set."""
    text = os.environ.get(POLICY_ENV)
    if text is None or not text.strip():
        return None
    try:
        return parse_policy(text)
    except UserError:
        raise UserError(f"{POLICY_ENV} is 'all' or 'relay'") from None


def check_env() -> None:
    """Refuse bad ICE environment variables before anything starts (a UserError)."""
    servers_from_env()
    policy_from_env()


class IceSettings:
    """The ICE servers and policy kept in one profile's store (module docstring)."""

    def __init__(self, store: Store, sealer: Sealer | None = None) -> None:
        self._settings = Settings(store, sealer)

    # -- reading ---------------------------------------------------------------------------

    def servers(self) -> list[StoredServer]:
        """The stored servers (URLs and user names; never a credential)."""
        raw = self._settings.get(SERVERS)
        if raw is None:
            return []
        try:
            decoded: Any = json.loads(raw)
            if not isinstance(decoded, list) or len(decoded) > 2:
                raise ValueError("not a list of at most 2 servers")
            servers = [StoredServer.model_validate(item) for item in decoded]
            for server in servers:  # the full grammar is checked when used (`config`)
                if not (server.url.isascii() and server.url.isprintable()):
                    raise ValueError("a URL is not printable ASCII")
                if not server.url.startswith(("stun:", "turn:", "turns:")):
                    raise ValueError("a URL is not stun:, turn: or turns:")
                if server.username is not None and not server.username.isprintable():
                    raise ValueError("a user name is not printable")
        except ValueError as exc:
            raise DamagedStore(
                f"the profile's ICE servers setting is damaged ({_problem(exc)}):"
                " 'didlink ice remove URL' them and add them again"
            ) from None
        return servers

    def policy_name(self) -> str:
        """ "all" or "relay" (what `policy` returns, without loading the transport)."""
        raw = self._settings.get(POLICY)
        if raw is None:
            return "all"
        if raw not in (b"all", b"relay"):
            raise DamagedStore(
                "the profile's ICE policy setting is damaged: set it again with"
                " 'didlink ice policy all' (or relay)"
            )
        return raw.decode("ascii")

    def policy(self) -> IcePolicy:
        from transport.ice import IcePolicy

        return IcePolicy(self.policy_name())

    def _credential(self, server: StoredServer) -> str | None:
        raw = self._settings.get_sealed(TURN_CREDENTIAL)
        if raw is None:
            return None
        try:
            stored = StoredCredential.model_validate_json(raw)
        except ValueError:
            raise DamagedStore("the profile's sealed TURN credential is damaged") from None
        if stored.url != server.url or stored.username != server.username:
            return None
        return stored.credential

    def config(self) -> IceConfig:
        """The profile's ICE configuration (opens the sealed credential: needs the Sealer)."""
        from transport.ice import IceConfig, IceServer, parse_ice_url

        servers: list[IceServer] = []
        for stored in self.servers():
            try:
                parsed = parse_ice_url(stored.url)
            except ValueError as exc:
                raise DamagedStore(
                    f"the profile's ICE servers setting is damaged ({exc}):"
                    " 'didlink ice remove URL' them and add them again"
                ) from None
            if not parsed.is_turn:
                servers.append(IceServer(urls=(stored.url,)))
                continue
            credential = self._credential(stored)
            if credential is None or stored.username is None:
                raise UserError(
                    "the profile's TURN server has no credential: add it again with"
                    " 'didlink ice add URL --username NAME'"
                )
            servers.append(
                IceServer(urls=(stored.url,), username=stored.username, credential=credential)
            )
        return IceConfig(servers=tuple(servers), policy=self.policy())

    # -- changing --------------------------------------------------------------------------

    def add(self, url: str, *, username: str | None = None, credential: str | None = None) -> str:
        """Add (or replace) a server; the URL as stored. UserError for anything unusable."""
        from transport.ice import IceServer, parse_ice_url

        try:
            parsed = parse_ice_url(url)
            server = IceServer(urls=(url,), username=username, credential=credential)
        except ValueError as exc:
            raise UserError(f"cannot add the ICE server: {_problem(exc)}") from None
        kept = [s for s in self.servers() if parse_ice_url(s.url).is_turn != parsed.is_turn]
        kept.append(StoredServer(url=url, username=server.username))
        if parsed.is_turn:
            assert server.username is not None and server.credential is not None
            sealed = StoredCredential(
                url=url, username=server.username, credential=server.credential
            )
            self._settings.put_sealed(TURN_CREDENTIAL, sealed.model_dump_json().encode())
        self._write(kept)
        return url

    def remove(self, url: str) -> bool:
        """Forget the server `url` (and its credential); False if it was not configured."""
        servers = self.servers()
        kept = [s for s in servers if s.url != url]
        if len(kept) == len(servers):
            return False
        from transport.ice import parse_ice_url

        if parse_ice_url(url).is_turn:
            self._settings.delete(TURN_CREDENTIAL)
        self._write(kept)
        return True

    def set_policy(self, policy: IcePolicy) -> None:
        self._settings.put(POLICY, policy.value.encode("ascii"))

    def _write(self, servers: list[StoredServer]) -> None:
        if not servers:
            self._settings.delete(SERVERS)
            return
        value = json.dumps([s.model_dump() for s in servers], separators=(",", ":"))
        self._settings.put(SERVERS, value.encode())


def ice_config(store: Store, sealer: Sealer | None) -> IceConfig:
    """The ICE configuration of one run: the profile's, with the environment's overrides.

    The profile's TURN credential is opened only when the environment does not replace the
    servers. Relay-only mode without a TURN server is refused here (a UserError, exit 2).
    """
    from transport.ice import IceConfig, IcePolicy

    settings = IceSettings(store, sealer)
    env_servers = servers_from_env()
    env_policy = policy_from_env()
    if env_servers is None:
        profile_config = settings.config()
        servers, policy = profile_config.servers, profile_config.policy
    else:
        servers, policy = env_servers, settings.policy()
    config = IceConfig(servers=servers, policy=env_policy or policy)
    if config.policy is IcePolicy.RELAY and config.turn is None:
        raise UserError(NO_TURN_FOR_RELAY)
    return config


def ice_from_env() -> IceConfig:
    """The ICE servers and policy the environment alone names (DIDLINK_STUN, DIDLINK_TURN,
    DIDLINK_ICE_POLICY; didlink/profile/ice_settings.py); none by default. A run uses `ice_config`,
    which starts from the profile's."""
    from transport.ice import IceConfig, IcePolicy

    return IceConfig(servers=servers_from_env() or (), policy=policy_from_env() or IcePolicy.ALL)
