"""The keystore file's layout and limits, and its DID read without the passphrase.

Theory of operation (specs/keystore.md; identity/keystore.py has the pydantic models, sealing
and opening):
- This module needs neither pydantic's models nor pyca/cryptography: `didlink whoami` and the
  other commands that only show the DID read it through `read_did`, and they must start quickly
  (issue 28, point 4). Building pydantic's first model costs more than the rest of `whoami`.
- `read_did` takes a file at once when it is *plain*: exactly the fields that the strict models
  of identity/keystore.py accept, of their types and within their bounds, with ASCII texts
  (every file this code writes is plain). Anything else goes through
  `identity.keystore.parse_keystore`, which names the problem. Both paths then run the same
  checks of the contents (`check_contents`), so a file gives the same DID or the same error
  either way (tests/test_keystore.py checks that on valid and damaged files).
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any, Literal

from identity.did_key import ed25519_public_key
from identity.errors import DamagedKeystore, DidError, NoIdentity

FORMAT_VERSION: Literal[1] = 1
BOUND_VERSION: Literal[2] = 2
"""A device-bound keystore (specs/keystore.md, "Device-bound keystore, version 2")."""
VERSIONS = (FORMAT_VERSION, BOUND_VERSION)
SEED_SIZE = 32
"""identity.keys.SEED_SIZE, the Ed25519 seed (not imported: identity.keys loads cryptography)."""
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
KEY_ID_SIZE = 16
EC_POINT_SIZE = 65
"""An uncompressed P-256 point: 0x04 || x || y (SEC 1 section 2.3.3)."""
KEY_ID_SIZES = range(KEY_ID_SIZE, KEY_ID_SIZE + 1)
EC_POINT_SIZES = range(EC_POINT_SIZE, EC_POINT_SIZE + 1)
DEVICE_SCHEME = "pkcs11-ecdh-p256"
DEVICE_TEXT_BOUNDS = {
    "module": (1, 64),
    "token_label": (1, 32),
    "token_serial": (1, 16),
    "key_label": (1, 64),
}
"""The device binding's printable-ASCII texts and their lengths (the DeviceBinding model's)."""

_FIELDS = frozenset({"version", "did", "kdf", "cipher", "nonce", "ciphertext"})
_BOUND_FIELDS = _FIELDS | {"device"}
_DEVICE_FIELDS = frozenset({"scheme", *DEVICE_TEXT_BOUNDS, "key_id", "ephemeral_key"})
_KDF_FIELDS = frozenset({"algorithm", "salt", "memory_cost", "iterations", "lanes"})
_KDF_BOUNDS = {
    "memory_cost": (8, MAX_MEMORY_KIB),
    "iterations": (1, MAX_ITERATIONS),
    "lanes": (1, MAX_LANES),
}
"""The KeystoreKdf model's bounds (identity/keystore.py), for `is_plain`."""


def read_bytes(path: Path) -> bytes:
    """The file's bytes: NoIdentity if there is none, DamagedKeystore if it cannot be one."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_SIZE + 1)
    except FileNotFoundError as exc:
        raise NoIdentity(
            f"there is no identity in {path.parent} yet: run 'didlink init' first"
        ) from exc
    except IsADirectoryError as exc:
        raise DamagedKeystore(f"the keystore {path} is a directory, not a file") from exc
    except OSError as exc:
        raise DamagedKeystore(f"the keystore {path} cannot be read: {exc.strerror}") from exc
    if len(data) > MAX_FILE_SIZE:
        raise DamagedKeystore(f"the keystore {path} is far too large to be a keystore")
    return data


def json_object(data: bytes) -> dict[str, Any]:
    """The file's JSON object, of a version this code reads; DamagedKeystore otherwise."""
    try:
        text = data.decode("utf-8")
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:  # bad UTF-8, bad JSON, 5000-digit ints
        raise DamagedKeystore("the keystore file is damaged (not valid JSON)") from exc
    if not isinstance(raw, dict):
        raise DamagedKeystore("the keystore file is damaged (not a JSON object)")
    version = raw.get("version")
    if type(version) is not int or version not in VERSIONS:  # JSON true is not 1
        raise DamagedKeystore(
            f"the keystore has version {version!r}, which this didlink cannot read"
        )
    return raw


def b64decode(text: str, *, field: str, sizes: range) -> bytes:
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


def check_contents(
    *, did: str, salt: str, nonce: str, ciphertext: str, memory_cost: int, lanes: int
) -> None:
    """What the models cannot say about a file of the right shape; DamagedKeystore if wrong."""
    try:
        ed25519_public_key(did)
    except DidError as exc:
        raise DamagedKeystore("the keystore's DID is not a valid Ed25519 did:key") from exc
    b64decode(salt, field="salt", sizes=SALT_SIZES)
    b64decode(nonce, field="nonce", sizes=NONCE_SIZES)
    b64decode(ciphertext, field="ciphertext", sizes=CIPHERTEXT_SIZES)
    if memory_cost < 8 * lanes:
        raise DamagedKeystore("the keystore's Argon2 memory is below 8 KiB per lane")


def check_device(*, key_id: str, ephemeral_key: str) -> None:
    """What the DeviceBinding model cannot say about a device-bound file's `device` (the point
    itself is checked to be on P-256 before a token is asked to use it: identity/keystore.py)."""
    b64decode(key_id, field="device.key_id", sizes=KEY_ID_SIZES)
    b64decode(ephemeral_key, field="device.ephemeral_key", sizes=EC_POINT_SIZES)


def _printable(text: Any, low: int, high: int) -> bool:
    return type(text) is str and low <= len(text) <= high and all(" " <= c <= "~" for c in text)


def _is_plain_device(device: Any) -> bool:
    """`device` is exactly what the DeviceBinding model accepts, with ASCII base64 texts."""
    if type(device) is not dict or device.keys() != _DEVICE_FIELDS:
        return False
    if device["scheme"] != DEVICE_SCHEME:
        return False
    texts = (device["key_id"], device["ephemeral_key"])
    if not all(type(text) is str and text.isascii() for text in texts):
        return False
    return all(
        _printable(device[name], low, high) for name, (low, high) in DEVICE_TEXT_BOUNDS.items()
    )


def is_plain(raw: dict[str, Any]) -> bool:
    """True if `raw` (a JSON object of a version this code reads) is exactly what the
    KeystoreFile model (version 1) or BoundKeystoreFile model (version 2) accepts (each field
    present, of its strict type, within its bounds, no other field), with ASCII texts. False is
    not an error: the model then decides, and names the problem."""
    kdf = raw.get("kdf")
    fields = _BOUND_FIELDS if raw.get("version") == BOUND_VERSION else _FIELDS
    if raw.keys() != fields or type(kdf) is not dict or kdf.keys() != _KDF_FIELDS:
        return False
    if fields is _BOUND_FIELDS and not _is_plain_device(raw["device"]):
        return False
    texts = (raw["did"], raw["nonce"], raw["ciphertext"], kdf["salt"])
    if not all(type(text) is str and text.isascii() for text in texts):
        return False
    if raw["cipher"] != "aes-256-gcm" or kdf["algorithm"] != "argon2id":
        return False
    return all(
        type(kdf[name]) is int and low <= kdf[name] <= high
        for name, (low, high) in _KDF_BOUNDS.items()
    )


def read_did(path: Path) -> str:
    """The DID in the keystore, without the passphrase (NoIdentity / DamagedKeystore)."""
    raw = json_object(read_bytes(Path(path)))
    if not is_plain(raw):
        from identity.keystore import validate_keystore  # late: the models name the problem

        return validate_keystore(raw).did
    kdf = raw["kdf"]
    check_contents(
        did=raw["did"],
        salt=kdf["salt"],
        nonce=raw["nonce"],
        ciphertext=raw["ciphertext"],
        memory_cost=kdf["memory_cost"],
        lanes=kdf["lanes"],
    )
    if raw["version"] == BOUND_VERSION:
        device = raw["device"]
        check_device(key_id=device["key_id"], ephemeral_key=device["ephemeral_key"])
    did: str = raw["did"]
    return did
