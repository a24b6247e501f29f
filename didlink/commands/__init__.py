"""The CLI's commands, one module per domain; each module exports `commands`."""

from __future__ import annotations

from types import ModuleType

from didlink.commands import backup, chat, contacts, demo, history, invite, profile, resolve, safety

COMMAND_MODULES: tuple[ModuleType, ...] = (
    resolve,
    profile,
    backup,
    invite,
    chat,
    contacts,
    safety,
    demo,
    history,
)
