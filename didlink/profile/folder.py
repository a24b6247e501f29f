"""The profile: the folder that holds one person's identity (keystore) and local store.

Its place is `DIDLINK_HOME` when set, else the platform's user data folder
(platformdirs.user_data_dir("didlink")). The folder is private (0700) and every file in it is
0600; `ensure()` creates the folder and repairs its mode if something loosened it.

The identity key comes from the profile's key agent when `didlink unlock` left it there
(specs/key-agent.md), else from the keystore and its passphrase (`unlock`).

Commands that only read the DID (`didlink whoami`) must start quickly (issue 28, point 4): the
DID is read by identity/keystore_file.py, which needs neither pydantic's models nor pyca; the
keystore's models and cryptography (identity.keystore), the store and platformdirs are imported
by the methods that use them.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from didlink.cli.passphrase import with_passphrase
from didlink.errors import UserError
from didlink.words.output import say
from identity import keystore_file

if TYPE_CHECKING:
    from didlink.profile.store import Store
    from identity.keys import IdentityKey
    from identity.keystore import KdfParams

HOME_ENV = "DIDLINK_HOME"
KEYSTORE_NAME = "keystore.json"
STORE_NAME = "store.sqlite3"
FOLDER_MODE = 0o700
FILE_MODE = 0o600


def _describe(params: KdfParams) -> str:
    """e.g. '64 MiB, 3 passes'."""
    memory = params.memory_cost
    size = f"{memory // 1024} MiB" if memory % 1024 == 0 else f"{memory} KiB"
    passes = f"{params.iterations} pass" + ("es" if params.iterations != 1 else "")
    return f"{size}, {passes}"


@dataclass(frozen=True)
class Profile:
    """One profile folder. Creating the object touches nothing on disk; `ensure()` does."""

    path: Path

    @classmethod
    def from_env(cls) -> Profile:
        """The profile named by DIDLINK_HOME, else the platform's user data folder."""
        home = os.environ.get(HOME_ENV)
        if home:
            return cls(Path(home).expanduser())
        import platformdirs  # late: not needed when DIDLINK_HOME names the profile

        return cls(Path(platformdirs.user_data_dir("didlink")))

    @property
    def keystore_path(self) -> Path:
        return self.path / KEYSTORE_NAME

    @property
    def store_path(self) -> Path:
        return self.path / STORE_NAME

    def ensure(self) -> None:
        """Create the folder (0700) if missing; make it and its known files private again."""
        try:
            self.path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
            if stat.S_IMODE(self.path.stat().st_mode) != FOLDER_MODE:
                os.chmod(self.path, FOLDER_MODE)
            for file in (self.keystore_path, self.store_path):
                with contextlib.suppress(FileNotFoundError):
                    if stat.S_IMODE(file.stat().st_mode) != FILE_MODE:
                        os.chmod(file, FILE_MODE)
        except OSError as exc:
            raise UserError(
                f"cannot use {self.path} as the profile folder: {exc.strerror or exc}"
            ) from exc

    def has_identity(self) -> bool:
        return self.keystore_path.exists()

    def did(self) -> str:
        """The profile's DID, read from the keystore without the passphrase."""
        return keystore_file.read_did(self.keystore_path)

    def _token_secret(self) -> Callable[[], bytes | None]:
        """What the keystore needs besides the passphrase: for a device-bound keystore, the
        secret its PKCS#11 token computes (didlink/custody/device_token.py), asked of the token
        once, when first needed (its PIN after the passphrase); None for a passphrase-only one. A
        missing token is named now, before the passphrase is asked for."""
        from identity import keystore

        device = keystore.device_of(keystore.load_keystore(self.keystore_path))
        if device is None:
            return lambda: None
        from didlink.custody.device_token import find_token, token_secret

        token = find_token(device)
        computed: list[bytes] = []

        def secret() -> bytes:
            if not computed:
                computed.append(token_secret(token, device))
            return computed[0]

        return secret

    def credentials(self, *, prompt: str = "Passphrase") -> tuple[str, bytes | None]:
        """The passphrase that opens the keystore (checked: DIDLINK_PASSPHRASE one try, typed up
        to three) and, for a device-bound keystore, the secret its token computes."""
        from identity import keystore

        self.did()  # NoIdentity / DamagedKeystore before prompting
        secret = self._token_secret()

        def opens(passphrase: str) -> str:
            keystore.unlock(self.keystore_path, passphrase, device_secret=secret())
            return passphrase

        return with_passphrase(opens, prompt=prompt), secret()

    def unlock(self, *, use_agent: bool = True) -> IdentityKey:
        """The identity key: from the key agent when `didlink unlock` left it there (and
        `use_agent`), else from the keystore (`unlock_keystore`)."""
        did = self.did()  # NoIdentity / DamagedKeystore before anything else
        if use_agent:
            from didlink.custody.key_agent_client import cached_key  # late, as below

            key = cached_key(self.path, did)
            if key is not None:
                return key
        return self.unlock_keystore()

    def unlock_keystore(self) -> IdentityKey:
        """The identity key opened with the passphrase (DIDLINK_PASSPHRASE: one try; typed on
        a terminal: up to three, didlink/cli/passphrase.py `with_passphrase`) and, for a
        device-bound keystore, its token."""
        self.did()  # NoIdentity / DamagedKeystore before prompting
        secret = self._token_secret()
        return with_passphrase(lambda passphrase: self._open_keystore(passphrase, secret()))

    def _open_keystore(self, passphrase: str, secret: bytes | None) -> IdentityKey:
        """The identity key under `passphrase` (WrongPassphrase if it does not open it).

        A keystore sealed with weaker key-derivation parameters than the current ones is
        re-sealed with them at once (identity/keystore.py `unlock_and_strengthen`), and one
        line on stderr says so (or says why it could not be).

        A device-bound keystore also needs its PKCS#11 token (didlink/custody/device_token.py): a
        missing token is named before the passphrase is asked for, the PIN after it.
        """
        from identity import keystore  # late (see the module docstring)

        try:
            key, params = keystore.unlock_and_strengthen(
                self.keystore_path, passphrase, device_secret=secret
            )
        except OSError as exc:
            key = keystore.unlock(self.keystore_path, passphrase, device_secret=secret)
            say(
                "note: the keystore uses weak key-derivation parameters and could not be"
                f" re-sealed ({exc.strerror or exc}): run 'didlink passwd' to strengthen it",
                err=True,
            )
            return key
        if params is not None:
            say(
                "note: the keystore was re-sealed with stronger key-derivation parameters"
                f" ({_describe(params)})",
                err=True,
            )
        return key

    def open_store(self, *, check: bool = True) -> Store:
        """The profile's local store: created with its schema if it does not exist (by `init`,
        or the first command that needs it), else checked whole (`check`, specs/store.md).

        A store created for a profile that already had an identity is said on stderr: either
        the profile predates the store, or its store was deleted (never silently).
        """
        from didlink.profile.store import Store

        self.ensure()
        had_identity = self.has_identity()
        store = Store(self.store_path, check=check)
        if store.created and had_identity:
            say(
                f"note: there was no local store in {self.path}: a new, empty one was created",
                err=True,
            )
        return store

    def create_store(self) -> None:
        """Make the local store of a new identity (`init`) if there is none yet."""
        self.ensure()
        if not os.path.lexists(self.store_path):  # (an existing one is checked when used)
            from didlink.profile.store import Store

            Store(self.store_path).close()
