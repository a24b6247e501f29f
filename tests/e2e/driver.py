"""The tests' side of the process driver: didlink/cli/driver.py with the tests' defaults.

`Cli` is a `didlink.cli.driver.JsonlProcess` started from a profile folder with the tests'
passphrase, in the checkout, with a 30 s default for every wait; its failures are
`DriverError`s whose note (shown by pytest) holds the recent stderr and events.
`cli_processes()` kills whatever is still running at the end of a test, whatever happened.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from didlink.cli.driver import Actor, JsonlProcess

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "correct horse battery staple"
EVENT_TIMEOUT = 30.0


def actor(
    home: Path, *, env: Mapping[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> Actor:
    """The person whose profile is `home` (named after the folder), with the tests' passphrase."""
    return Actor(home.name, home, PASSPHRASE, extra_env=dict(env or {}), prefix=prefix, cwd=ROOT)


def make_identity(home: Path) -> str:
    """`didlink init` in `home`; the new DID."""
    return actor(home).run_init()


class Cli(JsonlProcess):
    """One running `didlink ARGS` process (give `--jsonl` in ARGS) for the profile `home`.

    `env` is added to the environment; `prefix` goes before the command (for example
    `("ip", "netns", "exec", NS)` to start it inside a network namespace).
    """

    def __init__(
        self,
        *args: str,
        home: Path,
        env: Mapping[str, str] | None = None,
        prefix: tuple[str, ...] = (),
        timeout: float = EVENT_TIMEOUT,
    ) -> None:
        super().__init__(actor(home, env=env, prefix=prefix), args, timeout=timeout)


@contextmanager
def cli_processes() -> Iterator[list[Cli]]:
    """A list to put `Cli`s in; all are killed at the end, whatever happens."""
    started: list[Cli] = []
    try:
        yield started
    finally:
        for cli in started:
            cli.kill()


def connect_pair(
    started: list[Cli], alice_home: Path, bob_home: Path, *, env: dict[str, str] | None = None
) -> tuple[Cli, Cli]:
    """Alice invites, Bob accepts, Alice takes the response: both reach the SAS (not confirmed)."""
    alice = Cli("invite", "--jsonl", home=alice_home, env=env)
    started.append(alice)
    token = alice.expect("token")
    assert token["kind"] == "invite"
    bob = Cli("accept", token["token"], "--jsonl", home=bob_home, env=env)
    started.append(bob)
    response = bob.expect("token")
    assert response["kind"] == "response"
    alice.send("response", token=response["token"])
    return alice, bob
