"""Times for a person: the local time with its zone, and UTC beside it when that differs.

`--json` outputs keep UTC ISO-8601 (identity/validity.py `iso_time`); the lines a person reads
use `local_time`: `2026-12-08 10:15 CET (09:15 UTC)`, or `2026-12-08 09:15 UTC` where the
local zone is UTC. The zone is the process's (TZ, else the system's).
"""

from __future__ import annotations

from datetime import UTC, datetime


def local_time(moment: int | float | datetime, *, seconds: bool = False) -> str:
    """`moment` (Unix seconds, or an aware datetime) as a person reads it (module docstring).

    A naive datetime is taken as UTC, as the store keeps them.
    """
    if isinstance(moment, datetime):
        utc = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        utc = utc.astimezone(UTC)
    else:
        utc = datetime.fromtimestamp(moment, UTC)
    local = utc.astimezone()
    clock = "%H:%M:%S" if seconds else "%H:%M"
    zone = local.tzname() or local.strftime("%z")
    shown = f"{local.strftime('%Y-%m-%d ' + clock)} {zone}"
    if local.utcoffset() == utc.utcoffset():
        return shown if zone == "UTC" else f"{shown} (UTC)"
    day = "" if local.date() == utc.date() else utc.strftime("%Y-%m-%d ")
    return f"{shown} ({day}{utc.strftime(clock)} UTC)"


def utc_time(iso: object) -> datetime | None:
    """An event's ISO 8601 UTC time (`2026-12-08T09:15:00Z`), or None if it is not one."""
    if not isinstance(iso, str) or len(iso) > 40:
        return None
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


def clock_time(moment: datetime, *, beside: datetime) -> str:
    """`moment` in local time: `14:02`, with its date when its local day is not `beside`'s."""
    local = moment.astimezone()
    if local.date() == beside.astimezone().date():
        return local.strftime("%H:%M")
    return local.strftime("%Y-%m-%d %H:%M")


def zone_note(moment: int | float | datetime | None = None) -> str:
    """The local zone as a person reads it: `CET, UTC+01:00`, or `UTC`."""
    if moment is None:
        local = datetime.now(UTC).astimezone()
    elif isinstance(moment, datetime):
        local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone()
    else:
        local = datetime.fromtimestamp(moment, UTC).astimezone()
    zone = local.tzname() or ""
    offset = local.strftime("%z")
    utc_offset = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    if offset in ("", "+0000") and zone in ("UTC", ""):
        return "UTC"
    return f"{zone}, {utc_offset}" if zone else utc_offset


def shell_word(text: str) -> str:
    """`text` quoted for a shell where it needs it (a name with spaces in a next-step hint)."""
    import shlex

    return shlex.quote(text)
