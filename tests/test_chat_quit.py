"""Ctrl-C while a file is being sent or received asks first (issue 27, 8): the chat screen in
process (prompt_toolkit keys through a pipe), the line mode's second Ctrl-C (a real SIGINT in
this process), and the wording."""

from __future__ import annotations

import asyncio
import signal

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from didlink.cli.interrupt import WINDOW, InterruptGuard
from didlink.jsonl import Quit
from didlink.words.transfer import TransferInProgress, progress_line, still_running
from tests.test_chat_ui import FakeNode, _screen

CTRL_C = "\x03"
REPORT = TransferInProgress("out", "report.pdf", 3_200_000, 10_000_000)
PHOTO = TransferInProgress("in", "photo\x1b[2J.jpg", 5, 10)


def test_the_wording() -> None:
    assert still_running([REPORT]) == "report.pdf is still being sent (3.2 MB of 10.0 MB)"
    assert still_running([PHOTO]) == "photo\\x1b[2J.jpg is still being received (5 B of 10 B)"
    assert still_running([REPORT, REPORT]) == "2 files are still being sent"
    assert still_running([REPORT, PHOTO]) == "2 files are still being sent or received"
    assert progress_line("in", "photo.jpg", 37, 100) == "receiving photo.jpg: 37% (37 B of 100 B)"
    assert progress_line("out", "a\nb", 0, 0) == "sending a\\nb: 100% (0 B of 0 B)"


async def _typed(node: FakeNode, *keys: str) -> None:
    """Run the chat screen and type `keys`, each a moment after the previous one, until it
    ends."""
    screen = _screen()
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        typing = asyncio.get_running_loop().create_task(screen.run(node))
        for key in keys:
            await asyncio.sleep(0.2)
            pipe.send_text(key)
        async with asyncio.timeout(10):
            await typing


@pytest.mark.timeout(20)
async def test_ctrl_c_quits_at_once_when_no_file_is_moving() -> None:
    node = FakeNode()
    await _typed(node, CTRL_C)
    assert node.commands == [Quit()]


@pytest.mark.timeout(20)
async def test_ctrl_c_during_a_transfer_asks_and_n_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    node = FakeNode()
    node.running = [REPORT]
    await _typed(node, CTRL_C, "n\r", "still here\r", CTRL_C, "y\r")
    out = capsys.readouterr().out
    assert out.count("report.pdf is still being sent (3.2 MB of 10.0 MB); if you quit now,") == 2
    assert "Not quitting: the transfer goes on." in out
    assert [type(c).__name__ for c in node.commands] == ["SendText", "Quit"]
    assert node.commands[0].text == "still here"  # type: ignore[union-attr]
    assert node.commands[1] == Quit(wait_for_files=False)  # "quit anyway": no wait for the file


@pytest.mark.timeout(20)
async def test_a_second_ctrl_c_at_the_question_quits() -> None:
    node = FakeNode()
    node.running = [PHOTO]
    await _typed(node, CTRL_C, CTRL_C)
    assert node.commands == [Quit(wait_for_files=False)]


def test_the_question_is_the_prompt() -> None:
    screen = _screen()
    node = FakeNode()
    node.running = [REPORT]
    screen._node = node
    assert screen._ask_before_quitting(node) is True
    assert screen.prompt_text() == "Quit anyway? [y/N] "
    assert screen._ask_before_quitting(node) is False  # asked already: this one quits


# --- the line mode: a real SIGINT -------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.timeout(20)
async def test_line_mode_wants_a_second_ctrl_c_within_the_window() -> None:
    running: list[TransferInProgress] = [REPORT]
    told: list[str] = []
    clock = Clock()
    passed: list[int] = []
    before = signal.signal(signal.SIGINT, lambda signum, frame: passed.append(signum))
    guard = InterruptGuard(running=lambda: running, tell=told.append, clock=clock)
    try:
        guard.install()

        async def interrupt() -> None:
            signal.raise_signal(signal.SIGINT)
            await asyncio.sleep(0.05)  # the loop runs the handler

        await interrupt()
        assert len(told) == 1 and not passed
        assert told[0] == (
            "report.pdf is still being sent (3.2 MB of 10.0 MB): press Ctrl-C again within"
            f" {WINDOW:g} seconds to quit anyway (it resumes the next time you connect)."
        )
        clock.now += WINDOW + 1  # too late: warned again, still running
        await interrupt()
        assert len(told) == 2 and not passed
        clock.now += 1  # in time: handed to the handler that was there before
        await interrupt()
        assert passed == [signal.SIGINT] and len(told) == 2
        await interrupt()  # given back: the guard is gone
        assert passed == [signal.SIGINT] * 2
        guard.remove()  # twice is harmless
        running.clear()  # no transfer: the first Ctrl-C goes through at once
        guard.install()
        await interrupt()
        assert passed == [signal.SIGINT] * 3 and len(told) == 2
    finally:
        guard.remove()
        signal.signal(signal.SIGINT, before)
