"""Time windows of signed tokens, with a small clock-skew tolerance (specs/invitation.md §6).

Times are integer Unix seconds, always passed in by the caller (`now`): this module never reads
the clock, so tests can pin every edge exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime

from identity.errors import Expired, NotYetValid

CLOCK_SKEW = 120
"""Seconds two honest machines' clocks may disagree by (spec §6)."""

MAX_TIME = 253_402_300_799
"""9999-12-31T23:59:59Z: the last second a token time may name (so it always prints as a date)."""


def iso_time(seconds: int) -> str:
    """`seconds` since the Unix epoch as an ISO 8601 UTC time, e.g. 2023-11-14T22:13:20Z."""
    if not 0 <= seconds <= MAX_TIME:
        return f"{seconds} (Unix seconds)"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_window(*, created: int, expires: int, now: int, skew: int = CLOCK_SKEW) -> None:
    """Raise NotYetValid / Expired unless `created <= now + skew` and `now <= expires + skew`."""
    check_not_future(created=created, now=now, skew=skew)
    if now > expires + skew:
        raise Expired(f"The token expired at {iso_time(expires)}; ask for a new one.")


def check_not_future(*, created: int, now: int, skew: int = CLOCK_SKEW) -> None:
    """Raise NotYetValid if `created` is later than `now + skew` (a token from the future)."""
    if created > now + skew:
        raise NotYetValid(
            f"The token was made at {iso_time(created)} but this machine's clock says "
            f"{iso_time(now)}: check the clocks."
        )
