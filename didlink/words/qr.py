"""QR codes drawn on a terminal, and the rule for when a token's QR code is drawn at all.

Theory of operation (specs/chat-ui.md section 2c)
-------------------------------------------------
- The code is segno's, at error level L (the smallest; segno raises it for free when the data
  leaves room in the same version), never Micro QR. A live token (~340 characters of base58,
  which has lower-case letters, so byte mode) is version 12: 65x65 modules.
- Drawn with half blocks, two rows of modules per line: with a quiet zone of `QUIET_ZONE`
  modules a side, 65 modules take 69 columns and 35 lines.
- On a terminal the colours are explicit, never the theme's: dark modules black (256-colour 16),
  light ones white (231), from the 6x6x6 colour cube, which themes leave alone (they remap the
  first 16). A cell that is dark (or light) in both halves is a space on that background colour,
  so that no glyph gaps (line spacing) break a run of modules; a mixed cell is `▀` or `▄` black
  on white. So the code and its quiet zone read the same on light and on dark themes.
- Elsewhere (a pipe, a file, TERM=dumb) there are no escape codes: `█ ▀ ▄` are dark modules
  and spaces light ones, right for dark-on-light viewing (a printout, a light editor).
- `--qr` draws it always, `--no-qr` never; by default (`auto`) a token's code is drawn when
  it fits the terminal together with what must stay below it (the token itself, the prompt):
  else one line says the size it needs. Not on a terminal, `auto` draws it.
"""

from __future__ import annotations

import enum
import functools
import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

import click

QUIET_ZONE = 2
"""Light modules around the code (the standard asks 4; phone scanners read 2, and on a light
theme the terminal's background adds more)."""

DARK = "\x1b[38;5;16;48;5;16m"
"""Black on black: a space in it is a cell of two dark modules."""
LIGHT = "\x1b[38;5;16;48;5;231m"
"""Black on white: a space is two light modules, `▀` / `▄` one dark module above / below."""
RESET = "\x1b[0m"
UPPER = "\u2580"
LOWER = "\u2584"
FULL = "\u2588"

QR_META_KEY = "didlink.words.qr"

F = TypeVar("F", bound=Callable[..., Any])


class QrChoice(enum.Enum):
    """`--qr` / `--no-qr` / neither."""

    ALWAYS = "always"
    NEVER = "never"
    AUTO = "auto"


def modules(data: str) -> list[list[bool]]:
    """The QR code of `data` as rows of modules (True: dark), quiet zone included."""
    return [list(row) for row in _matrix(data)]


@functools.lru_cache(maxsize=4)
def _matrix(data: str) -> tuple[tuple[bool, ...], ...]:
    """segno's matrix of `data`, made once for measuring and drawing alike."""
    import segno  # late: only the commands that draw a QR code pay its import

    code = segno.make(data, error="l", micro=False)
    return tuple(
        tuple(bool(module) for module in row)
        for row in code.matrix_iter(scale=1, border=QUIET_ZONE)
    )


def size(data: str) -> tuple[int, int]:
    """(columns, lines) the drawn QR code of `data` takes."""
    rows = modules(data)
    return len(rows[0]), (len(rows) + 1) // 2


def drawn(data: str, *, colour: bool) -> list[str]:
    """The QR code of `data` as lines of text (module docstring: explicit colours or none)."""
    rows = modules(data)
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))  # a light half-row below: more quiet zone
    lines: list[str] = []
    for top, bottom in zip(rows[::2], rows[1::2], strict=True):
        if not colour:
            lines.append("".join(_plain(t, b) for t, b in zip(top, bottom, strict=True)))
            continue
        parts: list[str] = []
        current = ""
        for t, b in zip(top, bottom, strict=True):
            state = DARK if t and b else LIGHT
            if state != current:
                parts.append(state)
                current = state
            parts.append(UPPER if t and not b else LOWER if b and not t else " ")
        lines.append("".join(parts) + RESET)
    return lines


def _plain(top: bool, bottom: bool) -> str:
    if top and bottom:
        return FULL
    return UPPER if top else LOWER if bottom else " "


def colour_wanted(stream: TextIO) -> bool:
    """Explicit colours on `stream`: it is a terminal, and TERM is not `dumb`."""
    if os.environ.get("TERM", "") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def terminal_size(stream: TextIO) -> tuple[int, int] | None:
    """(columns, lines) of the terminal `stream` shows on, or None when it is not one."""
    try:
        if not stream.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    found = shutil.get_terminal_size()
    return found.columns, found.lines


def lines_taken(text: str, columns: int) -> int:
    """Lines one line of `text` takes on a terminal `columns` wide (it wraps there)."""
    from didlink.words.display import width

    return max(1, -(-width(text) // max(columns, 1)))


@dataclass(frozen=True)
class TokenScreen:
    """What to print for a token: `qr` (lines, may be empty), `note` (a line, may be empty),
    then the token itself on one line, then whatever follows (the prompt)."""

    qr: list[str]
    note: str


def token_screen(
    token: str, *, stream: TextIO, below: int, choice: QrChoice | None = None
) -> TokenScreen:
    """The QR code of `token` if it is to be drawn on `stream`, else a note saying why not.

    `below`: the lines that must stay visible under the token (the prompt, a toolbar); the
    token's own lines are counted here.
    """
    choice = qr_choice() if choice is None else choice
    if choice is QrChoice.NEVER:
        return TokenScreen([], "")
    screen = terminal_size(stream)
    colour = colour_wanted(stream)
    if screen is None:  # a pipe or a file: nothing to fit
        return TokenScreen(drawn(token, colour=colour), "")
    columns, lines = screen
    width, height = size(token)
    needed_lines = height + lines_taken(token, width) + below
    if width <= columns and height + lines_taken(token, columns) + below <= lines:
        return TokenScreen(drawn(token, colour=colour), "")
    if choice is QrChoice.ALWAYS:
        need = f"a {width}x{needed_lines} terminal; this one is {columns}x{lines}"
        return TokenScreen(drawn(token, colour=colour), f"(To see all of the QR code: {need}.)")
    need = f"a {width}x{needed_lines} terminal, this is {columns}x{lines}"
    return TokenScreen([], f"(QR code left out: it needs {need}; --qr shows it.)")


def token_lines(
    intro: Sequence[str], token: str, *, stream: TextIO, below: int, choice: QrChoice | None = None
) -> list[str]:
    """All a command prints for a token, as lines ready to write on `stream`: `intro` (what to
    do with it), the QR code or the note of `token_screen`, then the token, last and whole.

    Our own sentences are wrapped at the terminal's width, between words; the token is not
    (the terminal wraps it, and copying it gives it back as one line).
    """
    from didlink.words.output import rendered  # display-safe, as every line for a person

    screen = token_screen(token, stream=stream, below=below, choice=choice)
    size = terminal_size(stream)
    columns = size[0] if size is not None else None

    def wrapped(text: str) -> list[str]:
        if columns is None:
            return [rendered(text)]
        return [rendered(line) for line in textwrap.wrap(text, width=columns) or [""]]

    lines = [line for text in intro for line in wrapped(text)]
    lines += screen.qr  # our own drawing, with our own colours: written as it is
    if screen.note:
        lines += wrapped(screen.note)
    lines.append(rendered(token))
    return lines


def print_token(intro: Sequence[str], token: str, *, below: int) -> None:
    """`token_lines` on stdout: for `invite --card` (`below`: the shell's prompt) and the line
    mode of a live session (`below`: the line the response is typed on)."""
    for line in token_lines(intro, token, stream=sys.stdout, below=below):
        sys.stdout.write(line + "\n")  # display-safe already; the QR code's colours are ours
    sys.stdout.flush()


def _remember(ctx: click.Context, _param: click.Parameter, value: bool | None) -> bool | None:
    choice = QrChoice.AUTO if value is None else QrChoice.ALWAYS if value else QrChoice.NEVER
    ctx.meta[QR_META_KEY] = choice
    return value


def qr_option(command: F) -> F:
    """`--qr/--no-qr` for a command that prints a token (invite, accept, chat).

    Kept in the click context (`qr_choice`), not passed to the command function, as
    didlink/cli/history_flag.py does, so applying it changes no signature.
    """
    return click.option(
        "--qr/--no-qr",
        default=None,
        expose_value=False,
        callback=_remember,
        help="Draw the token's QR code always / never [default: when it fits the terminal].",
    )(command)


def qr_choice() -> QrChoice:
    """The running command's `--qr` / `--no-qr` (AUTO outside click, or when neither)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return QrChoice.AUTO
    found = ctx.find_root().meta.get(QR_META_KEY)
    return found if isinstance(found, QrChoice) else QrChoice.AUTO


def write_qr(data: str, *, out: TextIO | None = None) -> None:
    """Draw the QR code of `data` on `out` (stdout): coloured on a terminal, plain elsewhere."""
    stream = sys.stdout if out is None else out
    for line in drawn(data, colour=colour_wanted(stream)):
        stream.write(line + "\n")
    stream.flush()
