"""The `didlink` command line.

Every command lives in a module of `didlink.cli.commands` that exports `commands`, a list of click
commands. Errors the user can act on (bad input, wrong passphrase, invalid token, ...) are printed
as one line on stderr with exit code 2, never a traceback; nothing is printed on stdout then.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from didlink import __version__
from didlink.cli.commands import COMMAND_MODULES
from didlink.cli.help import apply_help, first_steps, overview
from didlink.errors import UserError
from didlink.words.display import one_line as display_line
from didlink.words.output import say
from identity.errors import IdentityError
from messaging.errors import MessagingError

EXIT_USAGE = 2
MAX_ERROR_CHARS = 400
USER_FACING: tuple[type[Exception], ...] = (UserError, IdentityError, MessagingError)
"""With `TransportError` once the transport is loaded (`user_facing`)."""


def user_facing() -> tuple[type[Exception], ...]:
    """The errors printed as one line. transport.errors is not imported here: importing it
    loads the transport package and aiortc, which the commands that make no connection never
    need (issue 28, point 4); a TransportError can only be raised once it is loaded."""
    transport_errors = sys.modules.get("transport.errors")
    if transport_errors is None:
        return USER_FACING
    return (*USER_FACING, transport_errors.TransportError)


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (or its docstring when it has none), display-safe.

    Messages may quote what a peer or a token holds: every control or format character is
    escaped (didlink/words/display.py), and whitespace runs become one space.
    """
    text = str(exc) or (type(exc).__doc__ or type(exc).__name__)
    return display_line(text, limit=MAX_ERROR_CHARS)


class DidlinkGroup(click.Group):
    """A click group that turns user-facing errors into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except user_facing() as exc:
            code = getattr(exc, "code", None)
            prefix = f"error: {code}: " if isinstance(exc, IdentityError) and code else "error: "
            say(prefix + one_line(exc), err=True)
            ctx.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            say("interrupted", err=True)
            ctx.exit(130)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands in sections for people, each summary whole (didlink/cli/help.py)."""
        overview(self, ctx, formatter)


@click.group(
    cls=DidlinkGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="didlink")
@click.pass_context
def main(ctx: click.Context) -> None:
    """didlink: your own identity (a did:key) and private chats, straight from computer to
    computer: no account, no server.

    \b
    Start here: didlink init
    """
    if ctx.invoked_subcommand is None:  # `didlink` alone: first steps, on stdout, exit 0
        for line in first_steps(has_identity=_has_identity()):
            say(line)


def _has_identity() -> bool:
    """An identity in the profile? (False when the profile cannot even be found.)"""
    from didlink.profile.folder import Profile  # late: --help and the commands need it not here

    try:
        path = Profile.from_env().keystore_path
        return path.exists() or path.is_symlink()
    except (UserError, OSError):
        return False


for _module in COMMAND_MODULES:
    for _command in _module.commands:
        main.add_command(_command)
apply_help(main)
