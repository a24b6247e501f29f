"""QR codes on a terminal (didlink/words/qr.py): drawn so they scan on light and dark themes, read
back by an independent decoder; and the rule for when a token's code is drawn at all."""

from __future__ import annotations

import io
import os
import time

import pyte
import pytest
import segno

from didlink.words import qr
from identity.invitation import Invitation, InvitationKind
from identity.keys import IdentityKey
from identity.token import encode_token
from tests.support.screen import decoded, plain_modules, qr_modules, qr_rows

KEY = IdentityKey(bytes([7]) * 32)


def live_token() -> str:
    """A token of a live invitation's size (its offer stood in for by random bytes)."""
    invitation = Invitation.create(
        KEY, now=int(time.time()), lifetime=900, kind=InvitationKind.INVITE, connect=os.urandom(100)
    )
    return encode_token(invitation)


def card_token() -> str:
    return encode_token(Invitation.create(KEY, now=int(time.time()), lifetime=86400))


def segno_modules(data: str) -> list[list[bool]]:
    code = segno.make(data, error="l", micro=False)
    return [[bool(m) for m in row] for row in code.matrix_iter(scale=1, border=qr.QUIET_ZONE)]


def on_emulator(lines: list[str], columns: int = 100) -> list[list[tuple[str, str, str]]]:
    """The cells a terminal shows for `lines` (pyte: the escape codes as a terminal reads them)."""
    screen = pyte.Screen(columns, len(lines) + 1)
    stream = pyte.Stream(screen)
    stream.feed("\r\n".join(lines))
    return [
        [
            (screen.buffer[y][x].data, screen.buffer[y][x].fg, screen.buffer[y][x].bg)
            for x in range(columns)
        ]
        for y in range(len(lines))
    ]


@pytest.mark.parametrize("make", [live_token, card_token, lambda: KEY.did])
def test_the_coloured_code_reads_back_as_segnos_matrix_and_decodes_on_both_themes(make) -> None:
    data = make()
    lines = qr.drawn(data, colour=True)
    cells = on_emulator(lines)
    assert qr_rows(cells) == list(range(len(lines)))  # every row in explicit colours
    modules = qr_modules(cells)  # fails on any cell in the theme's default colour
    expected = segno_modules(data)
    assert modules[: len(expected)] == expected
    assert all(not any(row) for row in modules[len(expected) :])  # padding: quiet zone
    for theme in ("dark", "light"):
        assert decoded(modules, theme=theme) == [data], theme


def test_the_quiet_zone_is_white_in_explicit_colour() -> None:
    """On a dark theme the quiet zone is what we draw: white, never the terminal's background."""
    cells = on_emulator(qr.drawn(card_token(), colour=True))
    width = len(segno_modules(card_token())[0])
    for row in cells:
        drawn = [cell for cell in row if cell[2] in ("000000", "ffffff")]
        assert len(drawn) == width
        assert drawn[0] == (" ", "000000", "ffffff") and drawn[-1] == (" ", "000000", "ffffff")
    assert all(cell == (" ", "000000", "ffffff") for cell in cells[0][:width])


def test_the_plain_code_has_no_escape_codes_and_reads_back() -> None:
    data = live_token()
    lines = qr.drawn(data, colour=False)
    assert not any("\x1b" in line for line in lines)
    expected = segno_modules(data)
    modules = plain_modules(lines)
    assert modules[: len(expected)] == expected
    assert decoded(modules, theme="light") == [data]


def test_a_live_token_is_version_12_and_takes_69_columns_and_35_lines() -> None:
    token = live_token()
    assert 320 <= len(token) <= 360
    assert segno.make(token, error="l", micro=False).version == 12
    assert qr.size(token) == (69, 35)
    assert len(qr.drawn(token, colour=True)) == 35


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch):
    """Set the terminal's size (COLUMNS x LINES) for shutil.get_terminal_size."""
    monkeypatch.setenv("TERM", "xterm-256color")

    def sized(columns: int, lines: int) -> Tty:
        monkeypatch.setenv("COLUMNS", str(columns))
        monkeypatch.setenv("LINES", str(lines))
        return Tty()

    return sized


def test_an_80x24_terminal_gets_the_token_alone_and_the_size_it_needs(terminal) -> None:
    token = live_token()
    screen = qr.token_screen(token, stream=terminal(80, 24), below=2, choice=qr.QrChoice.AUTO)
    assert screen.qr == []
    assert "69x" in screen.note and "80x24" in screen.note and "--qr" in screen.note
    assert len(screen.note) <= 80


def test_a_big_enough_terminal_gets_the_coloured_code(terminal) -> None:
    token = live_token()
    width, height = qr.size(token)
    token_lines = -(-len(token) // width)
    stream = terminal(width, height + token_lines + 2)
    screen = qr.token_screen(token, stream=stream, below=2, choice=qr.QrChoice.AUTO)
    assert screen.note == "" and len(screen.qr) == height and "\x1b[" in screen.qr[0]
    one_short = terminal(width, height + token_lines + 1)
    assert qr.token_screen(token, stream=one_short, below=2, choice=qr.QrChoice.AUTO).qr == []
    too_narrow = terminal(width - 1, 100)
    assert qr.token_screen(token, stream=too_narrow, below=2, choice=qr.QrChoice.AUTO).qr == []


def test_qr_forces_the_code_and_says_how_big_no_qr_never_draws(terminal) -> None:
    token = live_token()
    forced = qr.token_screen(token, stream=terminal(60, 20), below=2, choice=qr.QrChoice.ALWAYS)
    assert len(forced.qr) == 35 and "60x20" in forced.note
    never = qr.token_screen(token, stream=terminal(200, 80), below=2, choice=qr.QrChoice.NEVER)
    assert never.qr == [] and never.note == ""


def test_not_a_terminal_draws_it_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    token = card_token()
    screen = qr.token_screen(token, stream=io.StringIO(), below=1, choice=qr.QrChoice.AUTO)
    assert screen.qr and not any("\x1b" in line for line in screen.qr) and screen.note == ""


def test_term_dumb_gets_no_escape_codes(terminal, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = terminal(200, 100)
    monkeypatch.setenv("TERM", "dumb")
    screen = qr.token_screen(card_token(), stream=stream, below=1, choice=qr.QrChoice.AUTO)
    assert screen.qr and not any("\x1b" in line for line in screen.qr)
