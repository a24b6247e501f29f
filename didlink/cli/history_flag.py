"""The `--history` flag of the live commands (`invite`, `accept`, `chat`; specs/history.md).

`history_option` is the click decorator every live command applies; it puts the flag in the
click context, where `history_requested()` finds it (so the session glue needs no new
parameters). It lives apart from didlink/profile/history.py, which seals and reads the stored
messages, so that declaring the CLI's commands loads neither the store nor pydantic (issue 28, point
4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

HISTORY_META_KEY = "didlink.profile.history"

F = TypeVar("F", bound=Callable[..., Any])


def _remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    ctx.meta[HISTORY_META_KEY] = bool(value)
    return value


def history_option(command: F) -> F:
    """`--history` for a live command (invite, accept, chat): keep this session's messages.

    The flag is also stored in the click context (see `history_requested`), and it is not
    passed to the command function, so applying the decorator changes no signature.
    """
    return click.option(
        "--history",
        is_flag=True,
        expose_value=False,
        callback=_remember,
        help="Keep this session's messages in the local store (sealed; off by default).",
    )(command)


def history_requested() -> bool:
    """True if the running click command was given `--history` (False outside click)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().meta.get(HISTORY_META_KEY, False))
