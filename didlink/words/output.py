"""Output for the CLI: lines for a person, JSON on stdout, terminal QR codes.

Every line a command prints for a person goes through `say`, which escapes anything a terminal
could act on (didlink/words/display.py) before adding our own styling; values from outside are
escaped where they are inserted (`shown`, `block`), so that their line breaks cannot start a
line either. JSON goes through `print_json`, exact and \\u-escaped where a terminal could act.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

import click

from didlink.words.display import json_text, sanitized


@dataclass(frozen=True)
class Styled:
    """A part of a line with its own style (click.style's arguments: fg, bold, ...)."""

    text: str
    style: dict[str, Any] = field(default_factory=dict)


def styled(text: str, **style: Any) -> Styled:
    """`text` to be shown with `style` as one part of a line given to `say`."""
    return Styled(text, style)


def rendered(*parts: str | Styled, **style: Any) -> str:
    """`parts` joined into one line (or lines) for a person, each made display-safe.

    Line breaks are kept; every other control or format character is escaped; styles (`style`
    for plain parts, a `Styled` part's own) are applied after, so only our styling is raw.
    """
    return "".join(
        click.style(sanitized(part.text), **part.style)
        if isinstance(part, Styled)
        else (click.style(sanitized(part), **style) if style else sanitized(part))
        for part in parts
    )


def say(*parts: str | Styled, err: bool = False, file: TextIO | None = None, **style: Any) -> None:
    """Print one line (or lines) for a person: `parts` joined, each made display-safe
    (`rendered`), on stdout (stderr with `err`) or `file`; click drops the styling where the
    stream is not a terminal."""
    click.echo(rendered(*parts, **style), file=file, err=err)


def print_json(value: Any) -> None:
    """One JSON document on stdout, keys in a stable order."""
    sys.stdout.write(json_text(value) + "\n")
    sys.stdout.flush()


def print_qr(data: str) -> None:
    """A QR code of `data` on stdout: explicit black on white on a terminal, plain text
    elsewhere (didlink/words/qr.py)."""
    from didlink.words.qr import write_qr  # late: segno loads only for the commands that draw one

    write_qr(data)
