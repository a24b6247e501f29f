"""ICE in words: which path a session takes, and why none was found with what to try.

The transport reports a candidate type (`Peer.path`) and typed failures (transport/errors.py,
specs/transport.md §7.1); this module says them to a person (the chat screen, line mode and
the `error` event of `--jsonl`). Imports nothing of the transport: the failure's class name is
enough, so the words are ready before aiortc is loaded.
"""

from __future__ import annotations

PATHS = ("host", "srflx", "prflx", "relay")

_ADD_TURN = "didlink ice add turn:HOST:PORT --username NAME"

FAILURES = {
    "NoLocalCandidates": (
        "no network path: we have no address to offer (no usable network interface, or"
        " relay-only mode without a working TURN server); check the network, or the TURN"
        " server with 'didlink ice'"
    ),
    "NoCandidatePair": (
        "no network path: none of the peer's addresses can be paired with ours (e.g. one side"
        " has only IPv6, the other only IPv4); a TURN server both can reach gets around it:"
        f" {_ADD_TURN}"
    ),
    "ChecksFailed": (
        "no network path: every direct path to the peer failed; one side is probably behind a"
        " symmetric NAT or a firewall, which only a relay gets through: configure a TURN server"
        f" ({_ADD_TURN}, or DIDLINK_TURN)"
    ),
    "RelayChecksFailed": (
        "no network path: every path failed, the one through the TURN relay too; check that"
        " the TURN server can reach the peer (or the peer's TURN server), or try TURN over TCP"
        " (?transport=tcp) or turns: on port 443 if UDP is blocked"
    ),
    "TurnRefused": (
        "no network path: the TURN server refused the credentials; check the user name and"
        " credential ('didlink ice', then 'didlink ice add URL --username NAME' again, or"
        " DIDLINK_TURN_USERNAME / DIDLINK_TURN_CREDENTIAL)"
    ),
    "TurnTlsFailed": (
        "no network path: the TLS connection to the TURN server failed (its certificate was not"
        " accepted: it must be valid for the host name in the turns: URL); check the URL, or use"
        " turn: with ?transport=tcp"
    ),
    "TurnUnreachable": (
        "no network path: the TURN server did not answer; check its host and port, or try"
        " ?transport=tcp or turns: if UDP is blocked on your network"
    ),
}


def failure_words(error: BaseException) -> str:
    """One line: why ICE failed and what to try (the message itself for an unknown reason)."""
    for cls in type(error).__mro__:
        words = FAILURES.get(cls.__name__)
        if words is not None:
            return words
    detail = str(error) or "ICE failed"
    return f"no network path: {detail.rstrip('.')}; a TURN server may help ({_ADD_TURN})"


def path_words(path: str | None, relay_host: str | None = None) -> str:
    """How a session's packets travel, in words ("" when unknown)."""
    if path == "host":
        return "direct"
    if path in ("srflx", "prflx"):
        return "direct (through your router)"
    if path == "relay":
        return f"relayed by {relay_host}" if relay_host else "relayed by your TURN server"
    return ""


def turn_warning(error: BaseException) -> str:
    """One line for a TURN server that failed while a connection goes on without it."""
    reason = failure_words(error).removeprefix("no network path: ")
    return f"the TURN server is not usable, so a network that needs the relay will fail: {reason}"
