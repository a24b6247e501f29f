"""How long a live session's phases may take, and how a session ends (specs/cli-jsonl.md s.6).

Every wait of a session is bounded by a `Timeouts` field or races the user's quit; a wait that
does not get its result raises one of the exceptions below, and the session ends with one
`Outcome` (the `closed` event's reason and the process exit code).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from didlink.errors import UserError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_STORE = 2  # the local store failed (damaged, locked, not writable): as the CLI's errors
STORE_ERROR = "store error"


@dataclass(frozen=True)
class Timeouts:
    """Seconds each phase may take (the CLI reads them from options / the environment)."""

    connect: float = 60.0  # response token -> open channel -> handshake done
    response: float = 900.0  # the inviter waiting for the response token
    sas: float = 600.0  # the users comparing the SAS
    flush: float = 10.0  # quit: waiting for receipts and file acks


CONNECT_TIMEOUT_ENV = "DIDLINK_CONNECT_TIMEOUT"
RESPONSE_TIMEOUT_ENV = "DIDLINK_RESPONSE_TIMEOUT"
SAS_TIMEOUT_ENV = "DIDLINK_SAS_TIMEOUT"


def seconds_from_env(name: str, default: float, *, most: float = 86400) -> float:
    """The environment variable `name` as seconds (0 < s <= `most`), else `default`;
    UserError for anything else."""
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{name} must be a number of seconds, not {text!r}") from None
    if not 0 < value <= most:
        raise UserError(f"{name} must be between 0 and {most:g} seconds")
    return value


def timeouts_from_env() -> Timeouts:
    """The phase timeouts, overridable by DIDLINK_*_TIMEOUT (seconds) for tests and scripts."""
    default = Timeouts()
    return Timeouts(
        connect=seconds_from_env(CONNECT_TIMEOUT_ENV, default.connect),
        response=seconds_from_env(RESPONSE_TIMEOUT_ENV, default.response),
        sas=seconds_from_env(SAS_TIMEOUT_ENV, default.sas),
        flush=default.flush,
    )


@dataclass(frozen=True)
class Outcome:
    """How a session ended: the `closed` event's reason and the process exit code."""

    reason: str
    exit_code: int


class QuitRequested(Exception):
    """The user asked to quit while we were waiting for something."""


class SessionEnded(Exception):
    """The session ended (peer closed, failure) while we were waiting for something."""


class HandshakeFailed(Exception):
    """The handshake failed (its cause is the messaging error)."""


class PhaseTimeout(Exception):
    """A bounded wait ran out; the message names the phase."""
