"""The CLI's commands, one module per domain; each module exports `commands`.

Every command module is imported to declare the CLI, whatever command runs, so a module imports
at its top only what declaring its commands needs (click, the output helpers, small modules);
what a command runs that is slow to import (the live flow and the transport above all, pydantic
models, the store, the keystore's cryptography) is imported inside the command ("late"). So
`didlink --help` and the commands that make no connection start quickly and small (issue 28,
point 4; tests/test_import_boundary.py).
"""

from __future__ import annotations

from types import ModuleType

from didlink.cli.commands import (
    backup,
    chat,
    contacts,
    daemon,
    demo,
    history,
    ice,
    invite,
    keystore,
    mailbox,
    profile,
    relays,
    resolve,
    safety,
    unlock,
)

COMMAND_MODULES: tuple[ModuleType, ...] = (
    resolve,
    profile,
    keystore,
    unlock,
    backup,
    invite,
    chat,
    contacts,
    safety,
    demo,
    history,
    ice,
    relays,
    mailbox,
    daemon,
)
