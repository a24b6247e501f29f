"""Where passphrases come from: the environment (for scripts) or a hidden terminal prompt.

`DIDLINK_PASSPHRASE` unlocks the keystore; `DIDLINK_NEW_PASSPHRASE` is the new one for
`didlink passwd`; `DIDLINK_BACKUP_PASSPHRASE` seals and opens a backup file (`didlink backup
export` / `import`). Without them we prompt on a terminal (input hidden) and refuse, with a clear
message, when there is no terminal to prompt on.
"""

from __future__ import annotations

import os
import sys

import click

from didlink.errors import UserError

PASSPHRASE_ENV = "DIDLINK_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)
NEW_PASSPHRASE_ENV = "DIDLINK_NEW_PASSPHRASE"  # noqa: S105
BACKUP_PASSPHRASE_ENV = "DIDLINK_BACKUP_PASSPHRASE"  # noqa: S105


def _interactive() -> bool:
    return sys.stdin.isatty()


def _checked(value: str) -> str:
    if value == "":
        raise UserError("the passphrase must not be empty")
    return value


def _prompt(prompt: str, *, confirm: bool, env_name: str) -> str:
    if not _interactive():
        raise UserError(
            f"no terminal to ask for the passphrase: set {env_name} to use didlink from a script"
        )
    first = click.prompt(prompt, hide_input=True, default="", show_default=False, err=True)
    _checked(first)
    if confirm:
        again = click.prompt(
            "Repeat to confirm", hide_input=True, default="", show_default=False, err=True
        )
        if again != first:
            raise UserError("the two passphrases do not match")
    return str(first)


def get_passphrase(*, confirm: bool = False, prompt: str = "Passphrase") -> str:
    """The passphrase from DIDLINK_PASSPHRASE, else asked on the terminal (twice if confirm)."""
    value = os.environ.get(PASSPHRASE_ENV)
    if value is not None:
        return _checked(value)
    return _prompt(prompt, confirm=confirm, env_name=PASSPHRASE_ENV)


def get_new_passphrase() -> str:
    """The new passphrase from DIDLINK_NEW_PASSPHRASE, else asked twice on the terminal."""
    value = os.environ.get(NEW_PASSPHRASE_ENV)
    if value is not None:
        return _checked(value)
    return _prompt("New passphrase", confirm=True, env_name=NEW_PASSPHRASE_ENV)


def get_backup_passphrase(*, confirm: bool) -> str:
    """The backup file's passphrase from DIDLINK_BACKUP_PASSPHRASE, else asked on the terminal
    (twice when `confirm`, for a new backup)."""
    value = os.environ.get(BACKUP_PASSPHRASE_ENV)
    if value is not None:
        return _checked(value)
    return _prompt("Backup passphrase", confirm=confirm, env_name=BACKUP_PASSPHRASE_ENV)
