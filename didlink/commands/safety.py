"""(placeholder: this module's commands are being written)"""

from __future__ import annotations

import click

commands: list[click.Command] = []
