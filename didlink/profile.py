"""The profile: the folder that holds one person's identity (keystore) and local store.

Its place is `DIDLINK_HOME` when set, else the platform's user data folder
(platformdirs.user_data_dir("didlink")). The folder is private (0700) and every file in it is
0600; `ensure()` creates the folder and repairs its mode if something loosened it.

Commands that only read the DID (`didlink whoami`) must start quickly (issue 28, point 4): the
DID is read by identity/keystore_file.py, which needs neither pydantic's models nor pyca; the
keystore's models and cryptography (identity.keystore), the store and platformdirs are imported
by the methods that use them.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from didlink.errors import UserError
from didlink.passphrase import get_passphrase
from identity import keystore_file

if TYPE_CHECKING:
    from didlink.store import Store
    from identity.keys import IdentityKey

HOME_ENV = "DIDLINK_HOME"
KEYSTORE_NAME = "keystore.json"
STORE_NAME = "store.sqlite3"
FOLDER_MODE = 0o700
FILE_MODE = 0o600


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

    def unlock(self) -> IdentityKey:
        """The identity key; asks for the passphrase (or reads DIDLINK_PASSPHRASE)."""
        from identity import keystore  # late (see the module docstring), as below

        self.did()  # NoIdentity / DamagedKeystore before prompting
        return keystore.unlock(self.keystore_path, get_passphrase())

    def open_store(self) -> Store:
        """The profile's local store (created on first use)."""
        from didlink.store import Store

        self.ensure()
        return Store(self.store_path)
