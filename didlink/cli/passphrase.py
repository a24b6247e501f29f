"""Where passphrases come from: the environment (for scripts) or a hidden terminal prompt.

`DIDLINK_PASSPHRASE` unlocks the keystore; `DIDLINK_NEW_PASSPHRASE` is the new one for
`didlink passwd`; `DIDLINK_BACKUP_PASSPHRASE` seals and opens a backup file (`didlink backup
export` / `import`). Without them we prompt on a terminal (input hidden) and refuse, with a clear
message, when there is no terminal to prompt on.

On a terminal a person may mistype, as with ssh or sudo: a passphrase that does not open what
it should is asked again, up to `MAX_TRIES` times in all (`with_passphrase`); a new passphrase
is asked, judged (didlink/cli/passphrase_strength.py: a weak one is shown why and needs a "y"), then
repeated, and a mismatch starts the round again, up to `MAX_ROUNDS` rounds (`choose_passphrase`).
A passphrase from the environment is a script's: one try, and a weak new one is accepted with a
warning on stderr (a script cannot answer a question).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TypeVar

import click

from didlink.errors import UserError
from didlink.words.output import say, styled
from identity.errors import WrongPassphrase

PASSPHRASE_ENV = "DIDLINK_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)
NEW_PASSPHRASE_ENV = "DIDLINK_NEW_PASSPHRASE"  # noqa: S105
BACKUP_PASSPHRASE_ENV = "DIDLINK_BACKUP_PASSPHRASE"  # noqa: S105
MAX_TRIES = 3
"""Passphrases typed on a terminal before giving up (ssh and sudo allow three)."""
MAX_ROUNDS = 3
"""Rounds of "new passphrase, repeat" before giving up."""

T = TypeVar("T")


def _interactive() -> bool:
    return sys.stdin.isatty()


def _checked(value: str) -> str:
    if value == "":
        raise UserError("the passphrase must not be empty")
    return value


def _need_terminal(env_name: str) -> None:
    if not _interactive():
        unlock = ", or unlock with 'didlink unlock'," if env_name == PASSPHRASE_ENV else ""
        raise UserError(
            f"no terminal to ask for the passphrase: set {env_name}{unlock}"
            " to use didlink from a script"
        )


def _tries_left(count: int) -> str:
    return f"{count} {'try' if count == 1 else 'tries'} left"


def _ask(prompt: str) -> str:
    """One hidden line from the terminal (the prompt on stderr)."""
    return str(click.prompt(prompt, hide_input=True, default="", show_default=False, err=True))


def with_passphrase(
    open_: Callable[[str], T],
    *,
    wrong: type[Exception] = WrongPassphrase,
    prompt: str = "Passphrase",
    env_name: str = PASSPHRASE_ENV,
) -> T:
    """`open_(passphrase)`, the passphrase from `env_name` (one try) or typed on the terminal:
    while `open_` raises `wrong` (or nothing was typed), say so and ask again, `MAX_TRIES` times
    in all; then the last error, saying how many tries were made."""
    value = os.environ.get(env_name)
    if value is not None:
        return open_(_checked(value))
    _need_terminal(env_name)
    failure: Exception = UserError("the passphrase must not be empty")
    for attempt in range(1, MAX_TRIES + 1):
        typed = _ask(prompt)
        if typed:
            try:
                return open_(typed)
            except wrong as exc:
                failure = exc
                problem = "Wrong passphrase."
        else:
            failure = UserError("the passphrase must not be empty")
            problem = "The passphrase must not be empty."
        if attempt < MAX_TRIES:
            say(f"{problem} Try again ({_tries_left(MAX_TRIES - attempt)}).", err=True)
    raise type(failure)(f"{failure} ({MAX_TRIES} tries)") from failure


def _weak_accepted(advice: str) -> bool:
    say(styled("Warning: ", fg="yellow", bold=True), f"this passphrase is weak. {advice}", err=True)
    return bool(click.confirm("Use it anyway?", default=False, err=True))


def choose_passphrase(*, env_name: str = PASSPHRASE_ENV, prompt: str = "New passphrase") -> str:
    """A new passphrase: from `env_name` (a weak one is accepted with a warning on stderr), else
    asked on the terminal, judged (a weak one needs a "y"), repeated; `MAX_ROUNDS` rounds."""
    from didlink.cli.passphrase_strength import estimate  # late: zxcvbn's word lists

    value = os.environ.get(env_name)
    if value is not None:
        strength = estimate(_checked(value))
        if strength.weak:
            say(f"warning: the passphrase in {env_name} is weak: {strength.advice()}", err=True)
        return value
    _need_terminal(env_name)
    problem = ""
    for attempt in range(1, MAX_ROUNDS + 1):
        if problem:
            say(f"{problem} Try again ({_tries_left(MAX_ROUNDS - attempt + 1)}).", err=True)
        first = _ask(prompt)
        if not first:
            problem = "The passphrase must not be empty."
            continue
        strength = estimate(first)
        if strength.weak and not _weak_accepted(strength.advice()):
            problem = "Choose another passphrase."
            continue
        if _ask("Repeat to confirm") != first:
            problem = "The two passphrases do not match."
            continue
        return first
    raise UserError(f"no new passphrase chosen after {MAX_ROUNDS} tries: {problem.lower()}")


def get_passphrase(*, confirm: bool = False, prompt: str = "Passphrase") -> str:
    """The passphrase from DIDLINK_PASSPHRASE, else asked on the terminal; with `confirm`, a
    new passphrase (`choose_passphrase`). Callers that check it use `with_passphrase`."""
    if confirm:
        return choose_passphrase(prompt=prompt)
    value = os.environ.get(PASSPHRASE_ENV)
    if value is not None:
        return _checked(value)
    _need_terminal(PASSPHRASE_ENV)
    return _checked(_ask(prompt))


def get_new_passphrase() -> str:
    """The new passphrase from DIDLINK_NEW_PASSPHRASE, else chosen on the terminal."""
    return choose_passphrase(env_name=NEW_PASSPHRASE_ENV)


def get_backup_passphrase(*, confirm: bool) -> str:
    """The backup file's passphrase from DIDLINK_BACKUP_PASSPHRASE, else asked on the terminal
    (chosen, for a new backup, when `confirm`)."""
    if confirm:
        return choose_passphrase(env_name=BACKUP_PASSPHRASE_ENV, prompt="Backup passphrase")
    value = os.environ.get(BACKUP_PASSPHRASE_ENV)
    if value is not None:
        return _checked(value)
    _need_terminal(BACKUP_PASSPHRASE_ENV)
    return _checked(_ask("Backup passphrase"))
