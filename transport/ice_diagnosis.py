"""Why ICE failed, in one typed error (specs/transport.md §7.1).

aioice reports one thing: "ICE negotiation failed". What the user can do about it depends on
why, and the connection knows most of it:

- `NoLocalCandidates`: we gathered nothing to offer (relay-only and the TURN server gave no
  allocation, or no usable interface);
- `TurnRefused` / `TurnUnreachable`: a TURN server is configured but gave no relayed candidate:
  aioice drops the reason, so `probe_turn` asks the server once more with the same credentials
  and reads its answer (a 401, 403, 437 or 441 error: the credentials; no answer in time, a
  refused connection, a name that does not resolve: unreachable; a TLS handshake or certificate
  refused on `turns:`: `TurnTlsFailed`);
- `NoCandidatePair`: none of the peer's candidates can be paired with ours (no check was made);
- `ChecksFailed`: every check failed and neither side had a relayed candidate: the usual cause
  is a symmetric NAT (or a firewall) on one side, which only a TURN relay gets through;
- `RelayChecksFailed`: every check failed, the relayed ones too.

Reading the check list uses aioice's private `_check_list` (as prompt_ice.py does); if it is
missing the classification goes on without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

from aioice import stun, turn

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
from transport.ice import IceServer

TURN_PROBE_TIMEOUT = 5.0  # seconds: aioice gives gathering (and so the allocation) as long
CREDENTIAL_ERRORS = (401, 403, 437, 441)  # RFC 8656 §7.2 (and 438 twice: a stale nonce)


def turn_failure(exc: BaseException) -> IceFailed | None:
    """The typed error for what an allocation attempt raised; None if it is not a refusal."""
    if isinstance(exc, stun.TransactionFailed):
        code = exc.response.error_code if exc.response is not None else None
        if code in (*CREDENTIAL_ERRORS, 438):
            return TurnRefused()
        return IceFailed(f"The TURN server refused the allocation (error {code}).")
    if isinstance(exc, ssl.SSLError):  # (an OSError too)
        return TurnTlsFailed()
    if isinstance(exc, stun.TransactionTimeout | TimeoutError | OSError):
        return TurnUnreachable()
    return None


async def probe_turn(server: IceServer, *, wait: float = TURN_PROBE_TIMEOUT) -> IceFailed | None:
    """Ask `server` for an allocation as aioice does; the error if it fails, None if it works
    (the allocation is released at once)."""
    url = server.parsed
    try:
        async with asyncio.timeout(wait):
            transport, _ = await turn.create_turn_endpoint(
                asyncio.DatagramProtocol,
                server_addr=(url.host, url.port),
                username=server.username,
                password=server.credential,
                ssl=url.scheme == "turns",
                transport=url.transport or "udp",
            )
    except Exception as exc:
        return turn_failure(exc) or TurnUnreachable()
    with contextlib.suppress(Exception):
        transport.close()
    return None


def classify(connection: Any, *, turn_problem: IceFailed | None) -> IceFailed:
    """The reason ICE failed on `connection` (an aioice Connection) as a typed error."""
    local = list(getattr(connection, "local_candidates", []) or [])
    remote = list(getattr(connection, "remote_candidates", []) or [])
    if not local:
        return turn_problem or NoLocalCandidates()
    check_list = getattr(connection, "_check_list", None)
    if not remote or (isinstance(check_list, list) and not check_list):
        return NoCandidatePair()
    if turn_problem is not None:
        return turn_problem
    relayed = any(getattr(c, "type", None) == "relay" for c in local + remote)
    return RelayChecksFailed() if relayed else ChecksFailed()
