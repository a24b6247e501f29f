"""The strength estimate of a new passphrase (zxcvbn) and `unlock --for`'s durations."""

from __future__ import annotations

import pytest

from didlink.cli.commands.unlock import parse_duration
from didlink.cli.passphrase_strength import estimate
from didlink.errors import UserError


@pytest.mark.parametrize(
    "weak", ["a", "password1", "dragon", "qwerty123", "didlink2026", "aaaaaaa"]
)
def test_weak_passphrases_are_weak_with_a_reason(weak: str) -> None:
    strength = estimate(weak)
    assert strength.weak
    assert strength.advice()  # always something to show


@pytest.mark.parametrize(
    "strong",
    ["correct horse battery staple", "purple elephant juggling seventeen", "x" * 10 + "Q7#k!v"],
)
def test_strong_passphrases_pass(strong: str) -> None:
    assert not estimate(strong).weak


def test_long_passphrases_are_judged_on_their_start() -> None:
    assert not estimate("correct horse battery staple " * 10).weak  # zxcvbn refuses > 72 chars
    assert estimate("a" * 500).weak


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1), ("90s", 90), ("30m", 1800), ("8h", 28800), ("1d", 86400), ("7d", 604800)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0s", "08h", "8", "h", "8H", "1h30m", "8d", "604801s", "+1h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UserError, match="--for"):
        parse_duration(text)
