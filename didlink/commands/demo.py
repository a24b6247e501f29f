"""`didlink demo`: the whole story on this machine (didlink/demo.py)."""

from __future__ import annotations

import click

from didlink.demo import run_demo
from didlink.output import print_json


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print only a JSON report of what happened.")
def demo(as_json: bool) -> None:
    """Two fresh identities in a temporary folder: cards, verification, safety numbers."""
    report = run_demo(as_json=as_json)
    if as_json:
        print_json(report)


commands: list[click.Command] = [demo]
