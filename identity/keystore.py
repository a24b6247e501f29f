"""The encrypted keystore: one JSON file holding the identity seed under a passphrase.

Theory of operation (specs/keystore.md):
- The passphrase (UTF-8 of its NFC form) goes through Argon2id with a random 16-byte salt and
  the cost parameters written in the file; the 32-byte output is an AES-256-GCM key.
- The 32-byte Ed25519 seed is sealed with that key and a random 12-byte nonce. The associated
  data binds the file's label, version and DID, so the DID can be shown without the passphrase
  yet cannot be swapped: a file whose DID was edited fails to open like a wrong passphrase.
- Reading validates everything before any expensive work: size, JSON, types, lengths, base64,
  the DID, and bounds on the Argon2 parameters (a file asking for 1 TiB of memory is refused as
  damaged rather than obeyed). Only the AEAD tag check can say "wrong passphrase".
- Writing goes through `write_atomic` (temp file 0600, fsync, rename, fsync dir): a process
  killed at any instant leaves either the old file or the new one, both loadable.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import unicodedata
from pathlib import Path
from typing import Annotated, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from identity.atomic_file import write_atomic
from identity.did_key import ed25519_public_key
from identity.errors import (
    DamagedKeystore,
    DidError,
    IdentityExists,
    NoIdentity,
    WrongPassphrase,
)
from identity.keys import SEED_SIZE, IdentityKey

FORMAT_VERSION: Literal[1] = 1
AD_LABEL = b"didlink keystore v1\x00"
"""Associated data = AD_LABEL || UTF-8 DID (specs/keystore.md, "AEAD")."""

SALT_SIZE = 16
NONCE_SIZE = 12
KEY_SIZE = 32
TAG_SIZE = 16
CIPHERTEXT_SIZE = SEED_SIZE + TAG_SIZE
MAX_FILE_SIZE = 16 * 1024
"""A real keystore is about 400 bytes; anything far larger is not one (and is not read whole)."""

# Bounds on what a file may ask for (specs/keystore.md, "Limits"): outside them -> damaged.
MIN_SALT, MAX_SALT = 16, 64
MAX_MEMORY_KIB = 4 * 1024 * 1024  # 4 GiB
MAX_ITERATIONS = 64
MAX_LANES = 16
SALT_SIZES = range(MIN_SALT, MAX_SALT + 1)
NONCE_SIZES = range(NONCE_SIZE, NONCE_SIZE + 1)
CIPHERTEXT_SIZES = range(CIPHERTEXT_SIZE, CIPHERTEXT_SIZE + 1)


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


def _b64decode(text: str, *, field: str, sizes: range) -> bytes:
    """Strict canonical base64 (RFC 4648 §4, padded, unused bits zero) of a length in `sizes`."""
    try:
        raw = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise DamagedKeystore(f"the keystore's {field} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:  # unused bits set: one encoding only
        raise DamagedKeystore(f"the keystore's {field} is not canonical base64")
    if len(raw) not in sizes:
        raise DamagedKeystore(f"the keystore's {field} has the wrong length")
    return raw


def _associated_data(did: str) -> bytes:
    return AD_LABEL + did.encode("utf-8")


def _passphrase_bytes(passphrase: str) -> bytes:
    """NFC so that the same passphrase typed on different systems gives the same bytes."""
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def _derive_key(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
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


def _no_identity(path: Path) -> NoIdentity:
    return NoIdentity(f"there is no identity in {path.parent} yet: run 'didlink init' first")


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_SIZE + 1)
    except FileNotFoundError as exc:
        raise _no_identity(path) from exc
    except IsADirectoryError as exc:
        raise DamagedKeystore(f"the keystore {path} is a directory, not a file") from exc
    except OSError as exc:
        raise DamagedKeystore(f"the keystore {path} cannot be read: {exc.strerror}") from exc
    if len(data) > MAX_FILE_SIZE:
        raise DamagedKeystore(f"the keystore {path} is far too large to be a keystore")
    return data


def parse_keystore(data: bytes) -> KeystoreFile:
    """Validate the file's bytes completely (not the AEAD); DamagedKeystore on any problem."""
    try:
        text = data.decode("utf-8")
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:  # bad UTF-8, bad JSON, 5000-digit ints
        raise DamagedKeystore("the keystore file is damaged (not valid JSON)") from exc
    if not isinstance(raw, dict):
        raise DamagedKeystore("the keystore file is damaged (not a JSON object)")
    version = raw.get("version")
    if type(version) is not int or version != FORMAT_VERSION:  # JSON true is not 1
        raise DamagedKeystore(
            f"the keystore has version {version!r}, which this didlink cannot read"
        )
    try:
        model = KeystoreFile.model_validate(raw)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"]) or "file"
        raise DamagedKeystore(f"the keystore file is damaged (bad field: {where})") from exc
    try:
        ed25519_public_key(model.did)
    except DidError as exc:
        raise DamagedKeystore("the keystore's DID is not a valid Ed25519 did:key") from exc
    _b64decode(model.kdf.salt, field="salt", sizes=SALT_SIZES)
    _b64decode(model.nonce, field="nonce", sizes=NONCE_SIZES)
    _b64decode(model.ciphertext, field="ciphertext", sizes=CIPHERTEXT_SIZES)
    if model.kdf.memory_cost < 8 * model.kdf.lanes:
        raise DamagedKeystore("the keystore's Argon2 memory is below 8 KiB per lane")
    return model


def load_keystore(path: Path) -> KeystoreFile:
    """The validated keystore model at `path` (NoIdentity if missing, DamagedKeystore if bad)."""
    return parse_keystore(_read_bytes(Path(path)))


def seal_keystore(
    key: IdentityKey,
    passphrase: str,
    *,
    params: KdfParams = DEFAULT_KDF,
    salt: bytes | None = None,
    nonce: bytes | None = None,
) -> KeystoreFile:
    """Encrypt `key` under `passphrase` (salt and nonce injectable for known-answer tests)."""
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
    salt = _b64decode(model.kdf.salt, field="salt", sizes=SALT_SIZES)
    nonce = _b64decode(model.nonce, field="nonce", sizes=NONCE_SIZES)
    sealed = _b64decode(model.ciphertext, field="ciphertext", sizes=CIPHERTEXT_SIZES)
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


def read_did(path: Path) -> str:
    """The DID in the keystore, without the passphrase (NoIdentity / DamagedKeystore)."""
    return load_keystore(path).did


def unlock(path: Path, passphrase: str) -> IdentityKey:
    """The identity key in the keystore (WrongPassphrase / DamagedKeystore / NoIdentity)."""
    return open_keystore(load_keystore(path), passphrase)


def change_passphrase(path: Path, old: str, new: str, *, params: KdfParams | None = None) -> None:
    """Re-encrypt the keystore under `new` (fresh salt and nonce), atomically.

    `params` defaults to the larger of the file's parameters and DEFAULT_KDF, field by field,
    so that a passphrase change never weakens the file and upgrades old, cheap files.
    """
    path = Path(path)
    model = load_keystore(path)
    key = open_keystore(model, old)
    if params is None:
        current = model.kdf.params
        params = KdfParams(
            memory_cost=max(current.memory_cost, DEFAULT_KDF.memory_cost),
            iterations=max(current.iterations, DEFAULT_KDF.iterations),
            lanes=max(current.lanes, DEFAULT_KDF.lanes),
        )
    write_atomic(path, seal_keystore(key, new, params=params).to_bytes())
