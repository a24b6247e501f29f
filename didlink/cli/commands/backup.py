"""`didlink backup phrase|export|import` and `didlink restore phrase` (specs/backup.md).

The recovery phrase is the identity seed as 24 words; the backup file is the identity, the
contacts and the used invitation ids sealed under a passphrase. Both are written for a person
keeping their identity safe: every question and warning goes to stderr through `say`, and stdout
carries only what a script may want (the words, the DID).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from didlink.cli.passphrase import (
    BACKUP_PASSPHRASE_ENV,
    choose_passphrase,
    get_backup_passphrase,
    with_passphrase,
)
from didlink.errors import UserError
from didlink.profile.folder import Profile
from didlink.words.output import say, styled
from identity.errors import BackupDoesNotOpen, DamagedBackup, IdentityExists

# The backup format, the keys and the keystore (pydantic models, cryptography) are imported
# by the commands that use them (didlink/cli/commands/__init__.py): `didlink whoami` starts fast.

WORDS_PER_ROW = 4

PHRASE_WARNING = (
    "These 24 words ARE your identity: anyone who has them can be you, read what is sent to "
    "you and speak in your name, with no passphrase.",
    "Write them on paper, in order, and keep the paper somewhere safe. Never type them into a "
    "website, a chat or an email, and never photograph them; didlink will never ask for them "
    "except in `didlink restore phrase` on your own machine.",
)


def _ask_yes(question: str) -> bool:
    """Ask on stderr, read one line from stdin: True only for y / yes."""
    say(question, err=True)
    answer = sys.stdin.readline(64)
    return answer.strip().casefold() in ("y", "yes")


def _phrase_lines(words: list[str]) -> list[str]:
    cells = [f"{i:>2}. {word:<9}" for i, word in enumerate(words, start=1)]
    rows = [cells[i : i + WORDS_PER_ROW] for i in range(0, len(cells), WORDS_PER_ROW)]
    return ["  ".join(row).rstrip() for row in rows]


@click.group()
def backup() -> None:
    """Keep your identity safe: a recovery phrase, or an encrypted backup file."""


@backup.command("phrase")
def backup_phrase() -> None:
    """Show the 24-word recovery phrase of this identity (after the passphrase and a warning)."""
    from identity.recovery import seed_to_words  # late: loads the BIP-39 word list

    key = Profile.from_env().unlock(use_agent=False)  # the passphrase even when unlocked
    for line in PHRASE_WARNING:
        say(styled("Warning: ", fg="yellow", bold=True), line, err=True)
    if not _ask_yes("Show the 24 words now? Type y and Enter to show them:"):
        say("Nothing shown.", err=True)
        click.get_current_context().exit(1)
    for line in _phrase_lines(seed_to_words(key.seed)):
        say(line)
    say("Restore with: didlink restore phrase (on the new machine).", err=True)


@click.group()
def restore() -> None:
    """Recreate your identity on a new machine, from its recovery phrase."""


def _read_phrase() -> str:
    """The words: all of stdin when it is not a terminal, else asked until 24 are in."""
    from identity.recovery import MAX_INPUT_CHARS, WORD_COUNT, word_count

    if not sys.stdin.isatty():
        return sys.stdin.read(MAX_INPUT_CHARS + 1)
    text = click.prompt(
        f"Recovery phrase ({WORD_COUNT} words, any case and spacing)",
        default="",
        show_default=False,
        err=True,
    )
    while 0 < word_count(text) < WORD_COUNT:
        more = click.prompt(
            f"{word_count(text)} words so far; the next ones (Enter to stop)",
            default="",
            show_default=False,
            err=True,
        )
        if not more.strip():
            break
        text = f"{text} {more}"
    return str(text)


@restore.command("phrase")
@click.option("--force", is_flag=True, help="Replace the identity in this profile.")
def restore_phrase(force: bool) -> None:
    """Recreate the identity of a recovery phrase in this profile, under a new passphrase.

    The words are read from stdin when it is not a terminal. The passphrase comes from
    DIDLINK_PASSPHRASE for scripts. Also the way back in after a forgotten passphrase
    (with --force, in the same profile).
    """
    from identity.keys import IdentityKey
    from identity.keystore import create_keystore
    from identity.recovery import phrase_to_seed

    profile = Profile.from_env()
    if not force and (profile.keystore_path.exists() or profile.keystore_path.is_symlink()):
        raise IdentityExists(
            f"an identity already exists in {profile.path}: "
            "use --force to replace it (the old identity is then lost unless it is this one)"
        )
    key = IdentityKey(phrase_to_seed(_read_phrase()))
    passphrase = choose_passphrase()
    profile.ensure()
    try:
        create_keystore(profile.keystore_path, key, passphrase, overwrite=force)
    except OSError as exc:
        raise UserError(f"cannot write the keystore: {exc.strerror or exc}") from exc
    say(key.did)


@backup.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
def backup_export(file: Path, force: bool) -> None:
    """Write the identity, contacts (with their relays), conversations and used invitations
    to FILE, sealed under a passphrase.

    The profile's passphrase (DIDLINK_PASSPHRASE) unlocks the identity; the backup's own
    passphrase (DIDLINK_BACKUP_PASSPHRASE, else asked twice) seals the file.
    """
    from didlink.custody.restore import (
        profile_outbox_count,
        profile_parts,
        profile_reach,
        profile_received,
        profile_sessions,
        profile_settings,
    )
    from identity.atomic_file import write_atomic
    from identity.backup import make_backup, seal_backup

    profile = Profile.from_env()
    if not force and (file.exists() or file.is_symlink()):
        raise UserError(f"{file} already exists: use --force to overwrite it")
    key = profile.unlock(use_agent=False)  # the passphrase even when unlocked
    contacts, used = profile_parts(profile)
    sessions = profile_sessions(profile)
    contact_relays, contact_reach = profile_reach(profile)
    waiting = profile_outbox_count(profile)
    passphrase = get_backup_passphrase(confirm=True)
    try:
        backup = make_backup(
            key,
            contacts,
            used,
            now=datetime.now(UTC),
            settings=profile_settings(profile),
            sessions=sessions,
            received=profile_received(profile),
            contact_relays=contact_relays,
            contact_reach=contact_reach,
        )
        data = seal_backup(backup, passphrase)
    except ValueError as exc:  # over the format's limits (100 000 contacts, 32 MiB)
        raise UserError(f"cannot make one backup file of this profile: {exc}") from exc
    try:
        write_atomic(file, data)
    except OSError as exc:
        raise UserError(f"cannot write {file}: {exc.strerror or exc}") from exc
    say(
        f"Backup of {key.did} written to {file}: {len(contacts)} contacts, "
        f"{len(sessions)} conversations, {len(used)} used invitations. "
        "Keep it and its passphrase apart.",
        err=True,
    )
    if waiting:
        say(
            f"note: {waiting} messages waiting in the outbox are not in the backup "
            "(this device still sends them)",
            err=True,
        )
    from identity.keystore import device_of, load_keystore

    if device_of(load_keystore(profile.keystore_path)) is not None:
        say(
            "note: the backup does not need the PKCS#11 token this identity is bound to: it is"
            " the way back if the token is lost, and as strong as its own passphrase",
            err=True,
        )


def _read_backup(file: Path) -> bytes:
    from identity.backup import MAX_FILE_SIZE

    try:
        with open(file, "rb") as handle:
            return handle.read(MAX_FILE_SIZE + 1)
    except FileNotFoundError:
        raise UserError(f"there is no file {file}") from None
    except IsADirectoryError:
        raise DamagedBackup(f"{file} is a folder, not a backup file") from None
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror or exc}") from exc


@backup.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace what this profile holds (identity, contacts).")
def backup_import(file: Path, force: bool) -> None:
    """Restore a backup FILE into this (empty) profile, all or nothing.

    The backup's passphrase comes from DIDLINK_BACKUP_PASSPHRASE (else asked); the profile's
    new passphrase from DIDLINK_PASSPHRASE (else asked twice).
    """
    from didlink.custody.restore import install_backup, refuse_unless_empty
    from identity.backup import open_parsed_backup, parse_backup

    profile = Profile.from_env()
    model = parse_backup(_read_backup(file))  # damaged files are refused before any question
    if not force:
        refuse_unless_empty(profile)
    restored = with_passphrase(
        lambda passphrase: open_parsed_backup(model, passphrase),
        wrong=BackupDoesNotOpen,
        prompt="Backup passphrase",
        env_name=BACKUP_PASSPHRASE_ENV,
    )
    passphrase = choose_passphrase(prompt="New passphrase for this profile")
    install_backup(profile, restored, passphrase, replace=force)
    say(restored.key.did)
    say(
        f"Restored {len(restored.contacts)} contacts, {len(restored.sessions)} conversations "
        f"and {len(restored.used_invitations)} used invitations.",
        err=True,
    )
    if restored.sessions:
        say(
            "note: restored conversations continue from the backup's moment; run `didlink "
            "receive` before you send, and stop using the old device (specs/backup.md)",
            err=True,
        )


commands: list[click.Command] = [backup, restore]
