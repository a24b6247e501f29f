"""`didlink demo`: the whole story on this machine (didlink/cli/demo.py)."""

from __future__ import annotations

import click

from didlink.words.output import print_json


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print only a JSON report of what happened.")
@click.option(
    "--attack",
    type=click.Choice(["mitm"]),
    help="Replay the story with a man in the middle who substitutes the invitation.",
)
def demo(as_json: bool, attack: str | None) -> None:
    """The whole story with two fresh identities in a temporary folder, on this machine only."""
    from didlink.cli.demo import run_demo  # late: the transport (aiortc) loads only when we connect

    report = run_demo(as_json=as_json, attack=attack)
    if as_json:
        print_json(report)


commands: list[click.Command] = [demo]
