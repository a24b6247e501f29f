"""`--files accept|ask|refuse`: what a live session does with the files a peer offers.

- `accept` (the default, as before): every offer within the limits is received at once.
- `ask`: each new offer waits for the user (`file_offer` event; `accept_file` / `refuse_file`
  commands; "Receive file NAME (SIZE) from PEER? [y/N]" on a terminal). A file the user
  accepted in an earlier session resumes without a second question.
- `refuse`: every offer is refused; the peer is told (`file_error` with code `refused`).

Like `--history` (didlink/profile/history.py), the option is kept in the click context, where
`files_policy()` finds it, so the commands' signatures do not change.
"""

from __future__ import annotations

import enum
from typing import Any, TypeVar

import click

from didlink.words.display import shown
from didlink.words.transfer import human_size


class FilePolicy(enum.Enum):
    ACCEPT = "accept"
    ASK = "ask"
    REFUSE = "refuse"


_KEY = "didlink_files"

F = TypeVar("F", bound=Any)


def _remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta[_KEY] = FilePolicy(value)


def files_option(command: F) -> F:
    """`--files accept|ask|refuse` for a live command (invite, accept, chat)."""
    return click.option(
        "--files",
        type=click.Choice([policy.value for policy in FilePolicy]),
        default=FilePolicy.ACCEPT.value,
        show_default=True,
        expose_value=False,
        callback=_remember,
        help="Files the peer offers: receive them, ask first, or refuse them.",
    )(command)


def file_question(name: str, size: int, who: str) -> str:
    """'Receive file NAME (SIZE) from WHO? [y/N]', the peer's name shown safely."""
    return f"Receive file {shown(name)} ({human_size(size)}) from {shown(who)}? [y/N]"


def file_refusal(name: str, by: str, who: str) -> str:
    """'WHO refused NAME' (the peer refused our file) / 'Refused NAME from WHO' (we did)."""
    if by == "peer":
        return f"{shown(who)} refused {shown(name)}"
    return f"Refused {shown(name)} from {shown(who)}"


def files_policy() -> FilePolicy:
    """The `--files` of the running command (accept outside a command, e.g. in tests)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return FilePolicy.ACCEPT
    found = ctx.meta.get(_KEY)
    return found if isinstance(found, FilePolicy) else FilePolicy.ACCEPT
