"""Passphrases typed on a real pseudo-terminal (issue 27, point 3): three tries to unlock, a new
passphrase asked again on a mismatch, a weak one shown why and confirmed, and `init --force`
asking for the last characters of the DID it would destroy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from identity.errors import WrongPassphrase
from identity.keystore import unlock
from tests.support.cli import run_cli
from tests.support.key_agents import agent_pids
from tests.support.pty_cli import PtyCli

PASS = "correct horse battery staple"
OTHER = "purple elephant juggling seventeen"
ASKED = r"Passphrase: "
NEW = r"New passphrase: "
REPEAT = r"Repeat to confirm: "


@pytest.fixture
def terminals() -> Iterator[list[PtyCli]]:
    started: list[PtyCli] = []
    yield started
    for terminal in started:
        terminal.close()


def on_tty(started: list[PtyCli], *args: str, home: Path) -> PtyCli:
    terminal = PtyCli(*args, home=home)
    started.append(terminal)
    return terminal


def init(home: Path) -> str:
    result = run_cli("init", home=home, passphrase=PASS)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_three_wrong_passphrases_then_exit_2(
    home: Path, terminals: list[PtyCli], runtime_dir: Path
) -> None:
    init(home)
    term = on_tty(terminals, "unlock", home=home)
    term.answer(ASKED, "wrong one")
    term.expect(r"Wrong passphrase\. Try again \(2 tries left\)\.")
    term.answer(ASKED, "wrong two")
    term.expect(r"Wrong passphrase\. Try again \(1 try left\)\.")
    term.answer(ASKED, "wrong three")
    assert term.wait() == 2
    tail = term.text[term.text.index("1 try left") :].strip().splitlines()
    assert tail[-1] == (
        "error: wrongPassphrase: the passphrase does not open this keystore (3 tries)"
    )
    assert "Traceback" not in term.text
    assert "wrong one" not in term.text  # hidden input
    assert agent_pids(runtime_dir) == []


def test_a_wrong_try_then_the_right_one(
    home: Path, terminals: list[PtyCli], runtime_dir: Path
) -> None:
    init(home)
    term = on_tty(terminals, "unlock", "--for", "1m", home=home)
    term.answer(ASKED, "typo")
    term.expect(r"Wrong passphrase\. Try again \(2 tries left\)\.")
    term.answer(ASKED, PASS)
    term.expect(r"Unlocked until \d\d:\d\d")
    assert term.wait() == 0, term.text
    assert PASS not in term.text
    assert len(agent_pids(runtime_dir)) == 1


def test_an_empty_passphrase_counts_as_a_try(home: Path, terminals: list[PtyCli]) -> None:
    init(home)
    term = on_tty(terminals, "passwd", home=home)
    term.answer(r"Current passphrase: ", "")
    term.expect(r"The passphrase must not be empty\. Try again \(2 tries left\)\.")
    term.answer(r"Current passphrase: ", PASS)
    term.answer(NEW, OTHER)
    term.answer(REPEAT, OTHER)
    term.expect(r"Passphrase changed\.")
    assert term.wait() == 0, term.text
    assert unlock(home / "keystore.json", OTHER)


def test_init_asks_again_after_a_mismatch(home: Path, terminals: list[PtyCli]) -> None:
    term = on_tty(terminals, "init", home=home)
    term.answer(NEW, PASS)
    term.answer(REPEAT, PASS + " typo")
    term.expect(r"The two passphrases do not match\. Try again \(2 tries left\)\.")
    term.answer(NEW, OTHER)
    term.answer(REPEAT, OTHER)
    did = term.expect(r"did:key:z6Mk\w+").group(0)
    assert term.wait() == 0, term.text
    assert unlock(home / "keystore.json", OTHER).did == did
    with pytest.raises(WrongPassphrase):
        unlock(home / "keystore.json", PASS)


def test_init_gives_up_after_three_mismatches(home: Path, terminals: list[PtyCli]) -> None:
    term = on_tty(terminals, "init", home=home)
    for attempt in range(3):
        term.answer(NEW, f"{PASS} {attempt}")
        term.answer(REPEAT, f"{OTHER} {attempt}")
    assert term.wait() == 2
    assert term.text.strip().splitlines()[-1] == (
        "error: no new passphrase chosen after 3 tries: the two passphrases do not match."
    )
    assert not (home / "keystore.json").exists()


def test_a_weak_passphrase_is_explained_and_refused_unless_confirmed(
    home: Path, terminals: list[PtyCli]
) -> None:
    term = on_tty(terminals, "init", home=home)
    term.answer(NEW, "password1")
    term.expect(r"Warning: this passphrase is weak\. This is a very common password\.")
    term.answer(r"Use it anyway\? \[y/N\]: ", "")  # the default is no
    term.expect(r"Choose another passphrase\. Try again \(2 tries left\)\.")
    term.answer(NEW, "dragon")
    term.expect(r"Warning: this passphrase is weak\.")
    term.answer(r"Use it anyway\? \[y/N\]: ", "y")
    term.answer(REPEAT, "dragon")
    did = term.expect(r"did:key:z6Mk\w+").group(0)
    assert term.wait() == 0, term.text
    assert unlock(home / "keystore.json", "dragon").did == did


def test_a_strong_passphrase_is_not_questioned(home: Path, terminals: list[PtyCli]) -> None:
    term = on_tty(terminals, "init", home=home)
    term.answer(NEW, PASS)
    term.answer(REPEAT, PASS)
    term.expect(r"did:key:z6Mk\w+")
    assert term.wait() == 0, term.text
    assert "weak" not in term.text


def test_init_force_asks_for_the_end_of_the_did(home: Path, terminals: list[PtyCli]) -> None:
    did = init(home)
    before = (home / "keystore.json").read_bytes()
    wrong = on_tty(terminals, "init", "--force", home=home)
    wrong.expect(rf"this destroys the identity {did}")
    wrong.answer(rf"Type the last 6 characters of {did} to destroy it: ", did[-7:-1])
    assert wrong.wait() == 2
    assert wrong.text.strip().splitlines()[-1] == (
        "error: not confirmed: the identity was left as it is"
    )
    assert (home / "keystore.json").read_bytes() == before
    right = on_tty(terminals, "init", "--force", home=home)
    right.answer(r"to destroy it: ", did[-6:])
    right.answer(NEW, OTHER)
    right.answer(REPEAT, OTHER)
    new_did = right.expect(r"did:key:z6Mk\w+").group(0)
    assert right.wait() == 0, right.text
    assert new_did != did
    assert unlock(home / "keystore.json", OTHER).did == new_did
