"""What a person sees: `didlink` in a real pseudo-terminal of a given size, through a terminal
emulator (pyte), and QR codes read back off that screen and decoded by an independent decoder
(zxing-cpp), as a phone pointed at the screen would.

- `PtyScreen`: `didlink ARGS` on the slave side of a pty of `columns` x `rows`; everything it
  writes is fed to a pyte screen of the same size (which wraps, scrolls and colours as a
  terminal does, so lines pushed off the top are gone); cursor-position requests are answered
  with the emulated cursor.
- `qr_modules(cells)`: the modules of a QR code drawn with half blocks, from the cells' glyphs
  and their *explicit* colours (a cell in the theme's default colour counts as neither: a QR
  code that relies on the theme fails here).
- `decoded(modules, theme=...)`: the text zxing-cpp reads from the modules drawn as an image,
  surrounded by a dark or a light terminal background.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pyte

from tests.support import pty_spawn

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "correct horse battery staple"
WAIT = 30.0
CPR_REQUEST = b"\x1b[6n"
BLACK = "000000"
WHITE = "ffffff"
UPPER, LOWER, FULL = "\u2580", "\u2584", "\u2588"


class PtyScreen:
    """`didlink ARGS` in a pty of `columns` x `rows`, shown on an emulated terminal."""

    def __init__(
        self,
        *args: str,
        home: Path,
        columns: int = 80,
        rows: int = 24,
        env: dict[str, str] | None = None,
    ) -> None:
        self.columns, self.rows = columns, rows
        environment = pty_spawn.environment(
            home,
            DIDLINK_PASSPHRASE=PASSPHRASE,
            TERM="xterm-256color",
            COLUMNS=str(columns),
            LINES=str(rows),
        )
        environment.update(env or {})
        self._screen = pyte.Screen(columns, rows)
        self._stream = pyte.ByteStream(self._screen)
        self._lock = threading.Lock()
        self.raw = bytearray()
        self.proc, self._master = pty_spawn.spawn(
            args, env=environment, size=(columns, rows), cwd=ROOT
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        pty_spawn.read_until_closed(self._master, self._show)

    def _show(self, chunk: bytes) -> None:
        answers: list[bytes] = []
        with self._lock:
            self.raw += chunk
            parts = chunk.split(CPR_REQUEST)
            for index, part in enumerate(parts):
                self._stream.feed(part)
                if index < len(parts) - 1:  # answered where it was asked, as a terminal does
                    cursor = self._screen.cursor
                    answers.append(f"\x1b[{cursor.y + 1};{cursor.x + 1}R".encode())
        for answer in answers:
            os.write(self._master, answer)

    def lines(self) -> list[str]:
        """The rows shown now, as text (trailing blanks removed)."""
        with self._lock:
            return [line.rstrip() for line in self._screen.display]

    def cells(self) -> list[list[tuple[str, str, str]]]:
        """The rows shown now: each cell's (glyph, foreground, background)."""
        with self._lock:
            buffer = self._screen.buffer
            return [
                [(buffer[y][x].data, buffer[y][x].fg, buffer[y][x].bg) for x in range(self.columns)]
                for y in range(self.rows)
            ]

    def cursor_row(self) -> int:
        with self._lock:
            return int(self._screen.cursor.y)

    def wait_until(self, pattern: str, *, timeout: float = WAIT) -> None:
        """Until `pattern` is on the screen (its rows joined, so wrapped text matches)."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            if regex.search("".join(self.lines_padded())):
                return
            if self.proc.poll() is not None:  # all it wrote is read once the pty closes
                self._reader.join(timeout=5)
                if regex.search("".join(self.lines_padded())):
                    return
                raise AssertionError(f"{pattern!r}: the process ended; screen: {self.lines()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not shown; screen: {self.lines()}")
            time.sleep(0.05)

    def settle(self, quiet: float = 0.5, *, timeout: float = WAIT) -> None:
        """Until the screen did not change for `quiet` seconds (or the process ended). What is
        shown, not the bytes: the chat screen's prompt redraws itself every 0.5 s (its toolbar),
        writing cursor moves that change nothing on the screen."""
        deadline = time.monotonic() + timeout
        seen, since = self.lines_padded(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.lines_padded()
            if now != seen:
                seen, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return

    def lines_padded(self) -> list[str]:
        with self._lock:
            return list(self._screen.display)

    def type(self, text: str) -> None:
        os.write(self._master, text.encode("utf-8"))

    def wait(self, timeout: float = WAIT) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        os.close(self._master)


def token_rows(lines: list[str], token: str, columns: int) -> tuple[int, int]:
    """(first, last) row of `token` on a screen `columns` wide, wrapped there as a terminal
    wraps one long line; AssertionError if it is not shown whole, one piece per row."""
    pieces = [token[i : i + columns] for i in range(0, len(token), columns)]
    for first in range(len(lines) - len(pieces) + 1):
        if all(lines[first + i].rstrip() == piece for i, piece in enumerate(pieces)):
            return first, first + len(pieces) - 1
    raise AssertionError(f"the token is not shown whole on one line: {lines}")


def _halves(glyph: str, fg: str, bg: str) -> tuple[str, str]:
    """The colours of a cell's upper and lower halves."""
    if glyph == UPPER:
        return fg, bg
    if glyph == LOWER:
        return bg, fg
    if glyph == FULL:
        return fg, fg
    if glyph == " ":
        return bg, bg
    raise AssertionError(f"not a half-block QR cell: {glyph!r}")


def qr_rows(cells: list[list[tuple[str, str, str]]]) -> list[int]:
    """The rows of the screen that hold a QR code in explicit colours (black/white cells)."""
    return [
        y
        for y, row in enumerate(cells)
        if sum(1 for _, _, bg in row if bg in (BLACK, WHITE)) >= 21  # the smallest code
    ]


def qr_modules(cells: list[list[tuple[str, str, str]]]) -> list[list[bool]]:
    """The QR code drawn on these screen rows, as modules (True: dark), from explicit colours
    only: every cell of it must be black or white in both halves."""
    modules: list[list[bool]] = []
    for row in cells:
        drawn = [cell for cell in row if cell[2] in (BLACK, WHITE)]
        top: list[bool] = []
        bottom: list[bool] = []
        for glyph, fg, bg in drawn:
            upper, lower = _halves(glyph, fg, bg)
            for colour in (upper, lower):
                assert colour in (BLACK, WHITE), f"a QR cell in the theme's colour: {colour}"
            top.append(upper == BLACK)
            bottom.append(lower == BLACK)
        modules += [top, bottom]
    return modules


def plain_modules(lines: list[str]) -> list[list[bool]]:
    """The modules of a QR code drawn without colours (`█ ▀ ▄` dark, spaces light)."""
    modules: list[list[bool]] = []
    for line in lines:
        top = [ch in (FULL, UPPER) for ch in line]
        bottom = [ch in (FULL, LOWER) for ch in line]
        modules += [top, bottom]
    return modules


def decoded(modules: list[list[bool]], *, theme: str, scale: int = 4) -> list[str]:
    """What zxing-cpp reads from `modules` drawn as a grey image, `scale` pixels a module,
    on a `theme` ("dark" or "light") terminal background 8 modules wide all round."""
    import zxingcpp

    margin = 8
    height = len(modules) + 2 * margin
    width = max(len(row) for row in modules) + 2 * margin
    around = 0 if theme == "dark" else 255
    pixels = bytearray()
    for y in range(height):
        row = modules[y - margin] if margin <= y < height - margin else []
        line = bytearray()
        for x in range(width):
            inside = margin <= x < margin + len(row)
            value = (0 if row[x - margin] else 255) if inside else around
            line += bytes([value]) * scale
        pixels += bytes(line) * scale
    image = memoryview(bytes(pixels)).cast("B", (height * scale, width * scale))
    found = zxingcpp.read_barcodes(image, try_invert=False)
    return [barcode.text for barcode in found]
