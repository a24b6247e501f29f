"""Tokens as a person sees them (issue 27, point 4): `didlink invite`, `accept`, `invite --card`
in real pseudo-terminals of 80x24, 60x20 and larger, read through a terminal emulator.

The token is the last thing above the prompt, whole, on one line (wrapped only by the
terminal); its QR code is drawn only when it fits with them, and then it decodes (zxing-cpp,
on a dark and a light theme) to that very token.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.driver import Cli, cli_processes, make_identity
from tests.support.screen import PtyScreen, decoded, qr_modules, qr_rows, token_rows

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TOKEN = re.compile(r"didlink:[1-9A-HJ-NP-Za-km-z]{40,}")
PROMPT = "Paste the response token:"


@pytest.fixture
def alice(tmp_path: Path) -> Path:
    home = tmp_path / "alice"
    make_identity(home)
    return home


@pytest.fixture
def screens() -> Iterator[list[PtyScreen]]:
    started: list[PtyScreen] = []
    yield started
    for screen in started:
        screen.kill()


def shown_token(screen: PtyScreen) -> str:
    """The token on the screen, its wrapped rows joined."""
    found = TOKEN.search("".join(screen.lines_padded()))
    assert found is not None, screen.lines()
    return found.group(0)


def row_of(lines: list[str], text: str) -> int:
    rows = [y for y, line in enumerate(lines) if text in line]
    assert rows, (text, lines)
    return rows[-1]


def assert_qr_decodes_to(screen: PtyScreen, token: str, *, above: int) -> None:
    """A whole QR code on the screen, in explicit colours, ending right above row `above`,
    which reads as `token` on dark and light themes alike."""
    cells = screen.cells()
    rows = qr_rows(cells)
    assert rows and rows == list(range(rows[0], rows[-1] + 1)), rows
    assert rows[-1] == above - 1
    assert rows[0] > 0  # its top is on the screen, not scrolled away
    modules = qr_modules([cells[y] for y in rows])
    for theme in ("dark", "light"):
        assert decoded(modules, theme=theme) == [token], theme


@pytest.mark.parametrize(("columns", "rows"), [(80, 24), (60, 20)])
def test_invite_on_a_small_terminal_shows_the_token_right_above_the_prompt(
    alice: Path, screens: list[PtyScreen], columns: int, rows: int
) -> None:
    screen = PtyScreen("invite", home=alice, columns=columns, rows=rows)
    screens.append(screen)
    screen.wait_until(PROMPT)
    screen.settle()
    lines = screen.lines()
    token = shown_token(screen)
    first, last = token_rows(lines, token, columns)
    assert PROMPT in lines[last + 1]  # nothing between the token and the prompt
    assert qr_rows(screen.cells()) == []  # it cannot fit: not drawn at all
    above = " ".join(lines[:first])  # our sentences, wrapped between words
    note = above[above.index("(QR code left out") :]
    assert f"{columns}x{rows}" in note and note.endswith("--qr shows it.)")
    assert "Then paste the response token they send back." in above
    assert all(len(line) <= columns for line in lines)


def test_invite_on_a_big_terminal_draws_a_qr_code_that_scans_to_the_token(
    alice: Path, screens: list[PtyScreen]
) -> None:
    screen = PtyScreen("invite", home=alice, columns=100, rows=50)
    screens.append(screen)
    screen.wait_until(PROMPT)
    screen.settle()
    lines = screen.lines()
    token = shown_token(screen)
    first, last = token_rows(lines, token, 100)
    assert PROMPT in lines[last + 1]
    assert_qr_decodes_to(screen, token, above=first)


def test_invite_qr_draws_it_on_a_small_terminal_with_the_token_still_last(
    alice: Path, screens: list[PtyScreen]
) -> None:
    screen = PtyScreen("invite", "--qr", home=alice, columns=80, rows=24)
    screens.append(screen)
    screen.wait_until(PROMPT)
    screen.settle()
    lines = screen.lines()
    first, last = token_rows(lines, shown_token(screen), 80)
    assert PROMPT in lines[last + 1]
    assert "To see all of the QR code" in lines[first - 1]
    assert len(qr_rows(screen.cells())) >= 10  # drawn (its top scrolled away, as said)


def test_accept_shows_the_response_token_right_above_its_prompt(
    alice: Path, tmp_path: Path, screens: list[PtyScreen]
) -> None:
    bob = tmp_path / "bob"
    make_identity(bob)
    with cli_processes() as started:
        inviter = Cli("invite", "--jsonl", home=alice)
        started.append(inviter)
        invitation = inviter.expect("token")["token"]
        screen = PtyScreen("accept", invitation, home=bob, columns=80, rows=24)
        screens.append(screen)
        screen.wait_until(r"didlink> ")
        screen.settle()
        lines = screen.lines()
        first, last = token_rows(lines, shown_token(screen), 80)
        assert "didlink>" in lines[last + 1]
        assert "QR code left out" in lines[first - 1]
        assert "Waiting for the connection" in lines[first - 2]


@pytest.mark.parametrize(("columns", "rows", "qr"), [(80, 24, False), (100, 45, True)])
def test_a_card_ends_with_its_token(
    alice: Path, screens: list[PtyScreen], columns: int, rows: int, qr: bool
) -> None:
    screen = PtyScreen("invite", "--card", home=alice, columns=columns, rows=rows)
    screens.append(screen)
    assert screen.wait() == 0
    lines = screen.lines()
    while lines and not lines[-1]:
        lines.pop()
    token = shown_token(screen)
    first, last = token_rows(lines, token, columns)
    assert last == len(lines) - 1  # the last thing printed
    if qr:
        assert_qr_decodes_to(screen, token, above=first)
        assert "they paste it into didlink accept" in lines[qr_rows(screen.cells())[0] - 1]
    else:
        assert "QR code left out" in lines[first - 1]


README = Path(__file__).resolve().parents[2] / "README.md"


def without_token(lines: list[str], columns: int = 80) -> list[str]:
    """`lines` with the token (a line starting `didlink:` and the rows it wraps onto: each
    full row is followed by more of it) replaced by one `<TOKEN>` line, sizes by `WxH`."""
    out: list[str] = []
    in_token = False
    for line in lines:
        if in_token:
            in_token = len(line) == columns
            continue
        if line.startswith("didlink:") and TOKEN.match(line):
            out.append("<TOKEN>")
            in_token = len(line) == columns
            continue
        out.append(re.sub(r"\d+x\d+ terminal", "WxH terminal", line))
    return out


def readme_block(first_line: str) -> list[str]:
    """The README's sample output block that starts with `first_line`."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```") and current is None:  # a block opens
            current = []
        elif line.startswith("```") and current is not None:  # it closes
            blocks.append(current)
            current = None
        elif current is not None:
            current.append(line)
    found = [block for block in blocks if block and block[0].startswith(first_line)]
    assert len(found) == 1, first_line
    return found[0]


def test_the_readme_shows_what_alice_and_bob_see_at_80x24(
    alice: Path, tmp_path: Path, screens: list[PtyScreen]
) -> None:
    bob = tmp_path / "bob"
    make_identity(bob)
    inviting = PtyScreen("invite", "--label", "Alice", home=alice)
    screens.append(inviting)
    inviting.wait_until(PROMPT)
    inviting.settle()
    alice_sees = [line for line in inviting.lines() if line]
    assert alice_sees[-1] == "/help: commands" or alice_sees[-1].endswith("/help: commands")
    readme = readme_block("Give this invitation to your contact")
    assert without_token(alice_sees[:-1]) == without_token(readme)
    accepting = PtyScreen("accept", shown_token(inviting), home=bob)
    screens.append(accepting)
    accepting.wait_until("didlink> ")
    accepting.settle()
    bob_sees = [line for line in accepting.lines() if line][:-1]  # the toolbar left out
    assert without_token(bob_sees) == without_token(readme_block("Send this response token"))


def normalized(lines: list[str]) -> list[str]:
    """Lines with what differs from run to run made equal: the token, DIDs, digits, a path."""
    out = []
    for line in without_token(lines):
        line = re.sub(r"did:key:z[1-9A-HJ-NP-Za-km-z]+", "<DID>", line)
        line = re.sub(r"^  /\S+$", "  <PATH>", line)
        out.append(re.sub(r"\d", "0", line))
    return out


def test_the_readme_shows_what_init_and_a_card_show_at_80x24(
    screens: list[PtyScreen],
) -> None:
    with tempfile.TemporaryDirectory(prefix="dl") as short:  # a path that fits a line
        the_readme_shows_init_and_a_card(Path(short) / "me", screens)


def the_readme_shows_init_and_a_card(home: Path, screens: list[PtyScreen]) -> None:
    init = PtyScreen("init", home=home, env={"TZ": "Europe/Paris"})
    screens.append(init)
    assert init.wait() == 0
    shown = [line for line in init.lines() if line]
    assert normalized(shown) == normalized(readme_block("did:key:z6Mk"))
    card = PtyScreen("invite", "--card", home=home, env={"TZ": "Europe/Paris"})
    screens.append(card)
    assert card.wait() == 0
    shown = [line for line in card.lines() if line]
    assert normalized(shown) == normalized(readme_block("A contact card for"))
