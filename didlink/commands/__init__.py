"""The CLI's commands, one module per domain; each module exports `commands`."""

from __future__ import annotations

from types import ModuleType

from didlink.commands import contacts, demo, invite, profile, resolve, safety

COMMAND_MODULES: tuple[ModuleType, ...] = (resolve, profile, invite, contacts, safety, demo)
