"""The encrypted keystore: one JSON file holding the identity seed under a passphrase.

Theory of operation (specs/keystore.md):
- The passphrase (UTF-8 of its NFC form) goes through Argon2id with a random 16-byte salt and
  the cost parameters written in the file; the 32-byte output is an AES-256-GCM key.
- The 32-byte Ed25519 seed is sealed with that key and a random 12-byte nonce. The associated
  data binds the file's label, version and DID, so the DID can be shown without the passphrase
  yet cannot be swapped: a file whose DID was edited fails to open like a wrong passphrase.
- Reading validates everything before any expensive work: size, JSON, types, lengths, base64,
  the DID, and bounds on the Argon2 parameters (a file asking for 1 TiB of memory is refused as
  damaged rather than obeyed). Only the AEAD tag check can say "wrong passphrase". The file's
  layout, limits and the checks that need no model live in identity/keystore_file.py, which
  also reads the DID alone without building these models (`read_did`).
- Writing goes through `write_atomic` (temp file 0600, fsync, rename, fsync dir): a process
  killed at any instant leaves either the old file or the new one, both loadable.
- pyca/cryptography (Argon2id, AES-GCM, the key) is imported by the functions that seal and
  open, so that commands that only show the DID start quickly and small (issue 28, point 4).
"""

from __future__ import annotations

import base64
import os
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from identity.atomic_file import write_atomic
from identity.errors import DamagedKeystore, IdentityExists, WrongPassphrase
from identity.keystore_file import (
    CIPHERTEXT_SIZES,
    FORMAT_VERSION,
    KEY_SIZE,
    MAX_ITERATIONS,
    MAX_LANES,
    MAX_MEMORY_KIB,
    MAX_SALT,
    MIN_SALT,
    NONCE_SIZE,
    NONCE_SIZES,
    SALT_SIZE,
    SALT_SIZES,
    b64decode,
    check_contents,
    json_object,
    read_bytes,
)
from identity.keystore_file import read_did as read_did  # re-exported

if TYPE_CHECKING:
    from identity.keys import IdentityKey

AD_LABEL = b"didlink keystore v1\x00"
"""Associated data = AD_LABEL || UTF-8 DID (specs/keystore.md, "AEAD")."""


class KdfParams(BaseModel):
    """Argon2id parameters (RFC 9106): memory in KiB, passes, lanes. Stored with each file."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    memory_cost: Annotated[int, Field(ge=8, le=MAX_MEMORY_KIB)]
    iterations: Annotated[int, Field(ge=1, le=MAX_ITERATIONS)]
    lanes: Annotated[int, Field(ge=1, le=MAX_LANES)]


DEFAULT_KDF = KdfParams(memory_cost=64 * 1024, iterations=3, lanes=1)
"""64 MiB, 3 passes, 1 lane: 0.15-0.3 s per unlock on this 2-core VM (measured, cryptography 50)."""


class KeystoreKdf(BaseModel):
    """The `kdf` object of the file: algorithm name, salt (base64) and cost parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    algorithm: Literal["argon2id"]
    salt: str
    memory_cost: Annotated[int, Field(ge=8, le=MAX_MEMORY_KIB)]
    iterations: Annotated[int, Field(ge=1, le=MAX_ITERATIONS)]
    lanes: Annotated[int, Field(ge=1, le=MAX_LANES)]

    @property
    def params(self) -> KdfParams:
        return KdfParams(memory_cost=self.memory_cost, iterations=self.iterations, lanes=self.lanes)


class KeystoreFile(BaseModel):
    """The keystore file (JSON, UTF-8), version 1. Binary fields are standard padded base64."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    version: Literal[1]
    did: str
    kdf: KeystoreKdf
    cipher: Literal["aes-256-gcm"]
    nonce: str
    ciphertext: str

    def to_bytes(self) -> bytes:
        """The file's bytes: compact JSON in field order, UTF-8, no trailing newline."""
        return self.model_dump_json().encode("utf-8")


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _associated_data(did: str) -> bytes:
    return AD_LABEL + did.encode("utf-8")


def _passphrase_bytes(passphrase: str) -> bytes:
    """NFC so that the same passphrase typed on different systems gives the same bytes."""
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def _derive_key(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id  # late: see the docstring

    kdf = Argon2id(
        salt=salt,
        length=KEY_SIZE,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_cost,
    )
    return kdf.derive(_passphrase_bytes(passphrase))


def derive_key(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    """The 32-byte AEAD key of a passphrase: Argon2id of UTF-8(NFC(passphrase)) (section "Key
    derivation"). Shared with the backup file (identity/backup.py, specs/backup.md)."""
    return _derive_key(passphrase, salt, params)


def parse_keystore(data: bytes) -> KeystoreFile:
    """Validate the file's bytes completely (not the AEAD); DamagedKeystore on any problem."""
    return validate_keystore(json_object(data))


def validate_keystore(raw: dict[str, Any]) -> KeystoreFile:
    """Validate a keystore's JSON object of this version (keystore_file.json_object) completely."""
    try:
        model = KeystoreFile.model_validate(raw)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"]) or "file"
        raise DamagedKeystore(f"the keystore file is damaged (bad field: {where})") from exc
    check_contents(
        did=model.did,
        salt=model.kdf.salt,
        nonce=model.nonce,
        ciphertext=model.ciphertext,
        memory_cost=model.kdf.memory_cost,
        lanes=model.kdf.lanes,
    )
    return model


def load_keystore(path: Path) -> KeystoreFile:
    """The validated keystore model at `path` (NoIdentity if missing, DamagedKeystore if bad)."""
    return parse_keystore(read_bytes(Path(path)))


def seal_keystore(
    key: IdentityKey,
    passphrase: str,
    *,
    params: KdfParams = DEFAULT_KDF,
    salt: bytes | None = None,
    nonce: bytes | None = None,
) -> KeystoreFile:
    """Encrypt `key` under `passphrase` (salt and nonce injectable for known-answer tests)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt = os.urandom(SALT_SIZE) if salt is None else salt
    nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
    if not MIN_SALT <= len(salt) <= MAX_SALT or len(nonce) != NONCE_SIZE:
        raise ValueError("bad salt or nonce length")
    did = key.did
    ciphertext = AESGCM(_derive_key(passphrase, salt, params)).encrypt(
        nonce, key.seed, _associated_data(did)
    )
    return KeystoreFile(
        version=FORMAT_VERSION,
        did=did,
        kdf=KeystoreKdf(
            algorithm="argon2id",
            salt=_b64encode(salt),
            memory_cost=params.memory_cost,
            iterations=params.iterations,
            lanes=params.lanes,
        ),
        cipher="aes-256-gcm",
        nonce=_b64encode(nonce),
        ciphertext=_b64encode(ciphertext),
    )


def open_keystore(model: KeystoreFile, passphrase: str) -> IdentityKey:
    """Decrypt a validated keystore model: WrongPassphrase if the AEAD tag does not verify."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from identity.keys import IdentityKey

    salt = b64decode(model.kdf.salt, field="salt", sizes=SALT_SIZES)
    nonce = b64decode(model.nonce, field="nonce", sizes=NONCE_SIZES)
    sealed = b64decode(model.ciphertext, field="ciphertext", sizes=CIPHERTEXT_SIZES)
    aead_key = _derive_key(passphrase, salt, model.kdf.params)
    try:
        seed = AESGCM(aead_key).decrypt(nonce, sealed, _associated_data(model.did))
    except InvalidTag as exc:
        raise WrongPassphrase("the passphrase does not open this keystore") from exc
    key = IdentityKey(seed)
    if key.did != model.did:  # only reachable if someone sealed a mismatched file on purpose
        raise DamagedKeystore("the keystore's DID does not match its key")
    return key


def create_keystore(
    path: Path,
    key: IdentityKey,
    passphrase: str,
    *,
    overwrite: bool = False,
    params: KdfParams = DEFAULT_KDF,
) -> None:
    """Write a new keystore for `key`; IdentityExists if one is there and not `overwrite`."""
    path = Path(path)
    if not overwrite and (path.exists() or path.is_symlink()):
        raise IdentityExists(
            f"an identity already exists in {path.parent}: use --force to replace it "
            "(the old identity is then lost)"
        )
    write_atomic(path, seal_keystore(key, passphrase, params=params).to_bytes())


def unlock(path: Path, passphrase: str) -> IdentityKey:
    """The identity key in the keystore (WrongPassphrase / DamagedKeystore / NoIdentity)."""
    return open_keystore(load_keystore(path), passphrase)


def is_weak(params: KdfParams) -> bool:
    """The parameters cost less memory or fewer passes than DEFAULT_KDF (the current ones)."""
    return (
        params.memory_cost < DEFAULT_KDF.memory_cost or params.iterations < DEFAULT_KDF.iterations
    )


def strengthened(params: KdfParams) -> KdfParams:
    """The field-wise maximum of `params` and DEFAULT_KDF: never weaker than either."""
    return KdfParams(
        memory_cost=max(params.memory_cost, DEFAULT_KDF.memory_cost),
        iterations=max(params.iterations, DEFAULT_KDF.iterations),
        lanes=max(params.lanes, DEFAULT_KDF.lanes),
    )


def unlock_and_strengthen(path: Path, passphrase: str) -> tuple[IdentityKey, KdfParams | None]:
    """The identity key; a keystore sealed with weak parameters (`is_weak`) is re-sealed at
    once under the same passphrase with `strengthened` ones (fresh salt and nonce, atomically
    through `write_atomic`), and the new parameters are returned (None: nothing was written).

    The file is re-read just before the write: if it changed since it was opened (another
    process changed the passphrase meanwhile), it is left as it is. OSError if the write fails
    (the key was unlocked all the same; the file is unchanged).
    """
    path = Path(path)
    data = read_bytes(path)
    model = parse_keystore(data)
    key = open_keystore(model, passphrase)
    if not is_weak(model.kdf.params):
        return key, None
    params = strengthened(model.kdf.params)
    sealed = seal_keystore(key, passphrase, params=params).to_bytes()
    if read_bytes(path) != data:
        return key, None
    write_atomic(path, sealed)
    return key, params


def change_passphrase(path: Path, old: str, new: str, *, params: KdfParams | None = None) -> None:
    """Re-encrypt the keystore under `new` (fresh salt and nonce), atomically.

    `params` defaults to `strengthened(file's parameters)`: the current parameters, or the
    file's where they are stronger, so that a passphrase change never weakens the file and
    always upgrades old, cheap files.
    """
    path = Path(path)
    model = load_keystore(path)
    key = open_keystore(model, old)
    if params is None:
        params = strengthened(model.kdf.params)
    write_atomic(path, seal_keystore(key, new, params=params).to_bytes())
