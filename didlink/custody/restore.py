"""A profile and its backup: what it holds, whether it is empty, an all-or-nothing restore.

Theory of operation (specs/backup.md section 3):
- Export reads the identity (unlocked by the caller), the contacts and the used invitation ids,
  the settings, sessions and received ids, and where each contact listens (its relays and its
  reach, each read back through the store's own checks).
- A profile is *empty* when it has no keystore and its store (if any) has no row in any table.
  Restoring over anything else needs `--force`.
- Restore builds the whole new profile (keystore.json and store.sqlite3, files 0600, folder
  0700) in a staging folder `.<name>.restore-<hex>` beside the profile, fsyncs it, then puts it
  in place with one rename: onto a missing or empty profile folder `rename(2)` is atomic; onto a
  non-empty one (`--force`) the two folders are swapped atomically (Linux `renameat2` with
  RENAME_EXCHANGE), and what the old profile held besides its keystore and store (its
  `downloads/`) is moved into the new one before the old one is deleted. A process killed at any
  instant leaves the old profile or the new one, whole, never a mix; a kill before the rename
  may leave the staging folder, which nothing reads and the next restore removes.
- Where the swap is not available (another OS, a file system without RENAME_EXCHANGE) the old
  folder is first renamed aside to `.<name>.replaced-<hex>` and the new one renamed in: a kill
  between those two renames leaves no profile at the path but the old one, whole, beside it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from didlink.errors import UserError
from didlink.profile.folder import FILE_MODE, FOLDER_MODE, KEYSTORE_NAME, STORE_NAME, Profile
from didlink.profile.store import DamagedStore, Store
from identity.backup import Backup, BackupReach, BackupRelays, BackupSession, BackupSetting
from identity.contact import Contact
from identity.errors import DamagedBackup, IdentityExists
from identity.keystore import DEFAULT_KDF, KdfParams, create_keystore

STAGING_INFIX = ".restore-"
ASIDE_INFIX = ".replaced-"
PROFILE_FILES = frozenset(
    {KEYSTORE_NAME, STORE_NAME, f"{STORE_NAME}-wal", f"{STORE_NAME}-shm", f"{STORE_NAME}-journal"}
)
"""What a restore replaces; anything else in an old profile (downloads/) is carried over."""
STORE_TABLES = (
    "contacts",
    "used_invitations",
    "outbox",
    "received",
    "transfers",
    "history",
    "settings",
    "sessions",
    "wraps",
    "inbox",
)

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


# --- reading a profile ----------------------------------------------------------------------


def profile_parts(profile: Profile) -> tuple[list[Contact], list[tuple[bytes, datetime]]]:
    """The contacts and used invitation ids of `profile` (none if it has no store yet)."""
    if not profile.store_path.exists():
        return [], []
    with Store(profile.store_path) as store:
        contacts = store.list_contacts()
        rows = store.connection.execute(
            "SELECT id, used_at FROM used_invitations ORDER BY id"
        ).fetchall()
    return contacts, [(bytes(row[0]), datetime.fromisoformat(row[1])) for row in rows]


def profile_settings(profile: Profile) -> list[BackupSetting]:
    """The settings of `profile` as the store holds them (sealed ones stay sealed)."""
    if not profile.store_path.exists():
        return []
    with Store(profile.store_path) as store:
        rows = store.connection.execute(
            "SELECT name, sealed, value FROM settings ORDER BY name"
        ).fetchall()
    return [BackupSetting(str(row[0]), bool(row[1]), bytes(row[2])) for row in rows]


def profile_sessions(profile: Profile) -> list[BackupSession]:
    """The persistent sessions of `profile`, sealed as the store holds them."""
    if not profile.store_path.exists():
        return []
    with Store(profile.store_path) as store:
        rows = store.connection.execute(
            "SELECT peer_did, sealed FROM sessions ORDER BY peer_did"
        ).fetchall()
    return [BackupSession(str(row[0]), bytes(row[1])) for row in rows]


def profile_received(profile: Profile) -> list[tuple[str, list[bytes]]]:
    """Per contact, the ids of the messages already received from it (exactly-once)."""
    if not profile.store_path.exists():
        return []
    found: dict[str, list[bytes]] = {}
    with Store(profile.store_path) as store:
        for did, mid in store.connection.execute(
            "SELECT peer_did, message_id FROM received ORDER BY peer_did, message_id"
        ):
            found.setdefault(str(did), []).append(bytes(mid))
    return list(found.items())


def profile_reach(profile: Profile) -> tuple[list[BackupRelays], list[BackupReach]]:
    """Where each contact listens: the relays of its latest token (`contact_relays`) and the
    reach of its card or request (`contact_reach`), read through the store's checks (a damaged
    row is a StoreError / DamagedStore, exit 2). Rows of a DID that is no contact (none are
    expected: they go with the contact) are left out."""
    from didlink.mailbox.requests import contact_reach

    if not profile.store_path.exists():
        return [], []
    relays, reach = [], []
    with Store(profile.store_path) as store:
        db = store.connection
        for (did,) in db.execute(
            "SELECT peer_did FROM contact_relays WHERE peer_did IN (SELECT did FROM contacts)"
            " ORDER BY peer_did"
        ).fetchall():
            urls = store.contact_relays(str(did))
            if urls:
                relays.append(BackupRelays(str(did), tuple(urls)))
        for (did,) in db.execute(
            "SELECT peer_did FROM contact_reach WHERE peer_did IN (SELECT did FROM contacts)"
            " ORDER BY peer_did"
        ).fetchall():
            found = contact_reach(store, str(did))
            if found is not None:
                reach.append(BackupReach(str(did), found.relays, found.key))
    return relays, reach


def profile_outbox_count(profile: Profile) -> int:
    """How many messages wait in the outbox (they are not carried by a backup)."""
    if not profile.store_path.exists():
        return 0
    with Store(profile.store_path) as store:
        row = store.connection.execute("SELECT count(*) FROM outbox").fetchone()
    return int(row[0])


def restored_sessions(backup: Backup) -> list[tuple[str, bytes]]:
    """The backup's sessions, each opened (under the store key of the backup's identity),
    checked, marked restored (messaging/mailbox.py `restored_state`: it takes a fresh DH
    ratchet step before it sends anything) and sealed again. DamagedBackup if one does not
    open or parse."""
    from didlink.mailbox.store import session_context
    from didlink.profile.sealing import Sealer
    from didlink.profile.store import DamagedStore
    from messaging.mailbox import SessionState, restored_state

    sealer = Sealer(backup.key)
    out = []
    for one in backup.sessions:
        context = session_context(one.did)
        try:
            state = SessionState.model_validate_json(sealer.open(one.sealed, context=context))
        except (DamagedStore, ValueError):
            raise DamagedBackup("a session in the backup does not open") from None
        sealed = sealer.seal(restored_state(state).model_dump_json().encode(), context=context)
        out.append((one.did, sealed))
    return out


def occupant(profile: Profile) -> str | None:
    """What makes `profile` non-empty (for a message), or None if a restore may fill it."""
    path = profile.path
    if path.exists() and not path.is_dir():
        raise UserError(f"cannot use {path} as the profile folder: it is not a folder")
    if profile.keystore_path.exists() or profile.keystore_path.is_symlink():
        return "an identity"
    if not profile.store_path.exists():
        return None
    try:
        with Store(profile.store_path) as store:
            for table in STORE_TABLES:
                row = store.connection.execute(
                    f"SELECT EXISTS (SELECT 1 FROM {table})"  # noqa: S608 (fixed names)
                ).fetchone()
                if row[0]:
                    return "contacts or messages"
    except (DamagedStore, sqlite3.Error):
        return "a local store that cannot be read"
    return None


def refuse_unless_empty(profile: Profile) -> None:
    """IdentityExists / UserError if `profile` holds anything a restore would replace."""
    what = occupant(profile)
    if what == "an identity":
        raise IdentityExists(
            f"an identity already exists in {profile.path}: use --force to replace it "
            "(the old identity is then lost)"
        )
    if what is not None:
        raise UserError(
            f"the profile {profile.path} is not empty (it holds {what}): use --force to replace it"
        )


# --- building and swapping in a profile -------------------------------------------------------


def _fsync(path: Path, *, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:  # some systems cannot open a folder: nothing more to do there
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def _fill_store(path: Path, backup: Backup) -> None:
    from didlink.mailbox.requests import set_contact_reach

    with Store(path) as store, store.transaction():
        db = store.connection
        db.executemany(
            "INSERT INTO contacts (did, name, suggested_name, verification, first_seen,"
            " last_seen) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    c.did,
                    c.name,
                    c.suggested_name,
                    c.verification.value,
                    _timestamp(c.first_seen),
                    _timestamp(c.last_seen),
                )
                for c in backup.contacts
            ],
        )
        db.executemany(
            "INSERT INTO used_invitations (id, used_at) VALUES (?, ?)",
            [(invitation_id, _timestamp(at)) for invitation_id, at in backup.used_invitations],
        )
        db.executemany(
            "INSERT INTO settings (name, sealed, value, updated_at) VALUES (?, ?, ?, ?)",
            [
                (setting.name, int(setting.sealed), setting.value, _timestamp(backup.created))
                for setting in backup.settings
            ],
        )
        created = _timestamp(backup.created)
        db.executemany(
            "INSERT INTO sessions (peer_did, created_at, updated_at, sealed) VALUES (?, ?, ?, ?)",
            [(did, created, created, sealed) for did, sealed in restored_sessions(backup)],
        )
        db.executemany(
            "INSERT INTO received (peer_did, message_id, received_at) VALUES (?, ?, ?)",
            [(did, mid, created) for did, ids in backup.received for mid in ids],
        )
        for relays in backup.contact_relays:  # the store checks each list again
            store.set_contact_relays(relays.did, relays.relays, now=backup.created)
        for reach in backup.contact_reach:
            set_contact_reach(store, reach.did, reach.relays, reach.key, now=backup.created)
    with Store(path) as store:
        # Everything into the one file (no -wal / -shm to move with it); the next Store to open
        # it switches back to WAL.
        mode = store.connection.execute("PRAGMA journal_mode = DELETE").fetchone()
        if str(mode[0]).lower() != "delete":
            raise sqlite3.OperationalError("the restored store could not leave WAL mode")


def _build(staging: Path, backup: Backup, passphrase: str, params: KdfParams) -> None:
    staging.mkdir(mode=FOLDER_MODE)
    os.chmod(staging, FOLDER_MODE)
    create_keystore(staging / KEYSTORE_NAME, backup.key, passphrase, params=params)
    _fill_store(staging / STORE_NAME, backup)
    extra = set(os.listdir(staging)) - {KEYSTORE_NAME, STORE_NAME}
    if extra:  # never expected: a staging folder holds exactly the two files
        raise OSError(errno.EEXIST, f"unexpected files in the staging folder: {sorted(extra)}")
    os.chmod(staging / STORE_NAME, FILE_MODE)
    _fsync(staging / STORE_NAME)
    _fsync(staging, directory=True)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    renameat2.restype = ctypes.c_int
    result = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _carry_over(old: Path, new: Path) -> None:
    """Move what the old profile held besides keystore and store (downloads/) into the new."""
    with contextlib.suppress(OSError):
        for name in os.listdir(old):
            if name in PROFILE_FILES or name.startswith("."):
                continue
            if not (new / name).exists():
                with contextlib.suppress(OSError):
                    os.rename(old / name, new / name)


def _commit(staging: Path, target: Path) -> None:
    """Put the built profile in place: the one step that makes the restore visible."""
    try:
        os.rename(staging, target)  # target missing or an empty folder: atomic
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    if _exchange(staging, target):
        old = staging  # the old profile is now where the staging folder was
    else:
        old = target.parent / f".{target.name}{ASIDE_INFIX}{secrets.token_hex(6)}"
        os.rename(target, old)
        try:
            os.rename(staging, target)
        except BaseException:
            os.rename(old, target)  # put the old profile back: nothing changed
            raise
    _carry_over(old, target)
    shutil.rmtree(old, ignore_errors=True)


def _remove_stale_staging(target: Path) -> None:
    for stale in target.parent.glob(f".{target.name}{STAGING_INFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)


def install_backup(
    profile: Profile,
    backup: Backup,
    passphrase: str,
    *,
    replace: bool,
    params: KdfParams = DEFAULT_KDF,
) -> Path:
    """Make `profile` hold exactly `backup` (keystore under `passphrase`), all or nothing.

    Unless `replace` (--force), the profile must be empty (`refuse_unless_empty`): checked
    again just before the final rename, since the user may have taken minutes to type the
    passphrases. Returns the profile folder it wrote (a DIDLINK_HOME symlink is followed).
    """
    target = Path(os.path.realpath(profile.path))
    staging = target.parent / f".{target.name}{STAGING_INFIX}{secrets.token_hex(6)}"
    try:
        target.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        _remove_stale_staging(target)
        _build(staging, backup, passphrase, params)
        if not replace:
            refuse_unless_empty(profile)
        _commit(staging, target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise UserError(
                f"cannot restore into {profile.path}: {exc.strerror or exc} (nothing was changed)"
            ) from exc
        if isinstance(exc, sqlite3.Error):
            raise UserError(
                f"cannot build the restored store: {exc} (nothing was changed)"
            ) from exc
        raise
    _fsync(target.parent, directory=True)
    return target
