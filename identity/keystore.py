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
- A device-bound keystore (version 2, `BoundKeystoreFile`) also needs a 32-byte secret that
  only a hardware or OS token can compute: ECDH between a P-256 key that never leaves the token
  and an ephemeral public key written in the file (`device`). The AEAD key is then
  HKDF(Argon2id(passphrase) || that secret), so the passphrase and the token are both needed.
  This module is pure data and crypto: the token itself is talked to in
  didlink/custody/device_token.py,
  which hands the secret in (`device_secret`).
"""

from __future__ import annotations

import base64
import os
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from identity.atomic_file import write_atomic
from identity.errors import DamagedKeystore, DeviceBoundKeystore, IdentityExists, WrongPassphrase
from identity.keystore_file import (
    BOUND_VERSION,
    CIPHERTEXT_SIZES,
    EC_POINT_SIZES,
    FORMAT_VERSION,
    KEY_ID_SIZES,
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
    check_device,
    json_object,
    read_bytes,
)
from identity.keystore_file import read_did as read_did  # re-exported

if TYPE_CHECKING:
    from identity.keys import IdentityKey

AD_LABEL = b"didlink keystore v1\x00"
"""Associated data = AD_LABEL || UTF-8 DID (specs/keystore.md, "AEAD")."""
AD_LABEL_BOUND = b"didlink keystore v2\x00"
"""Version 2: AD_LABEL_BOUND || UTF-8 DID || 0x00 || the device binding (`binding_bytes`)."""
SEAL_KEY_INFO = b"didlink keystore v2 seal key"
"""HKDF-SHA256 info of a device-bound keystore's AEAD key (specs/keystore.md)."""
DEVICE_SECRET_SIZE = 32
_PRINTABLE = r"^[ -~]*$"
"""Printable ASCII (keystore_file.DEVICE_TEXT_BOUNDS has the lengths)."""


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


_Printable = Annotated[str, Field(pattern=_PRINTABLE)]


class DeviceBinding(BaseModel):
    """The `device` object of a device-bound keystore: which token, which key on it, and the
    ephemeral public key whose ECDH with that key is the device secret. All of it is a hint
    and an input to the AEAD; the module name is never loaded from here (specs/keystore.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    scheme: Literal["pkcs11-ecdh-p256"]
    module: Annotated[_Printable, Field(min_length=1, max_length=64)]
    token_label: Annotated[_Printable, Field(min_length=1, max_length=32)]
    token_serial: Annotated[_Printable, Field(min_length=1, max_length=16)]
    key_label: Annotated[_Printable, Field(min_length=1, max_length=64)]
    key_id: str
    ephemeral_key: str

    def binding_bytes(self) -> bytes:
        """Each field in declaration order as a 2-byte big-endian length and its UTF-8."""
        out = bytearray()
        for value in self.model_dump().values():
            data = str(value).encode("utf-8")
            out += len(data).to_bytes(2, "big") + data
        return bytes(out)

    @property
    def key_id_bytes(self) -> bytes:
        return b64decode(self.key_id, field="device.key_id", sizes=KEY_ID_SIZES)

    def ephemeral_point(self) -> bytes:
        """The ephemeral public key, checked to be a point of P-256 (DamagedKeystore if not),
        before any token is asked to use it."""
        from cryptography.hazmat.primitives.asymmetric import ec

        raw = b64decode(self.ephemeral_key, field="device.ephemeral_key", sizes=EC_POINT_SIZES)
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError as exc:
            raise DamagedKeystore(
                "the keystore's device.ephemeral_key is not a P-256 point"
            ) from exc
        return raw


class BoundKeystoreFile(BaseModel):
    """The device-bound keystore file (JSON, UTF-8), version 2: version 1 plus `device`."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    version: Literal[2]
    did: str
    kdf: KeystoreKdf
    device: DeviceBinding
    cipher: Literal["aes-256-gcm"]
    nonce: str
    ciphertext: str

    def to_bytes(self) -> bytes:
        """The file's bytes: compact JSON in field order, UTF-8, no trailing newline."""
        return self.model_dump_json().encode("utf-8")


AnyKeystore = KeystoreFile | BoundKeystoreFile


def device_exchange(token_point: bytes) -> tuple[bytes, bytes]:
    """The software half of binding to a token whose P-256 public key is `token_point`
    (uncompressed): a fresh ephemeral key pair, ECDH with the token's key. Returns (the
    ephemeral public key to write in the file, the 32-byte device secret); the ephemeral private
    key is dropped here, so from now on only the token can compute the secret again.
    ValueError if `token_point` is not a P-256 point."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), token_point)
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    secret = ephemeral.exchange(ec.ECDH(), public)
    point = ephemeral.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return point, secret


def new_device_binding(
    *,
    module: str,
    token_label: str,
    token_serial: str,
    key_label: str,
    key_id: bytes,
    ephemeral_point: bytes,
) -> DeviceBinding:
    """The `device` object for these values (pydantic ValidationError if any is out of bounds)."""
    return DeviceBinding(
        scheme="pkcs11-ecdh-p256",
        module=module,
        token_label=token_label,
        token_serial=token_serial,
        key_label=key_label,
        key_id=_b64encode(key_id),
        ephemeral_key=_b64encode(ephemeral_point),
    )


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _associated_data(did: str, device: DeviceBinding | None = None) -> bytes:
    if device is None:
        return AD_LABEL + did.encode("utf-8")
    return AD_LABEL_BOUND + did.encode("utf-8") + b"\x00" + device.binding_bytes()


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


def _aead_key(
    passphrase: str, salt: bytes, params: KdfParams, device_secret: bytes | None
) -> bytes:
    """Argon2id of the passphrase; with a device secret, HKDF-SHA256(that || the secret)."""
    passphrase_key = _derive_key(passphrase, salt, params)
    if device_secret is None:
        return passphrase_key
    if len(device_secret) != DEVICE_SECRET_SIZE:
        raise ValueError("a device secret is 32 bytes")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=SEAL_KEY_INFO)
    return hkdf.derive(passphrase_key + device_secret)


def parse_keystore(data: bytes) -> AnyKeystore:
    """Validate the file's bytes completely (not the AEAD); DamagedKeystore on any problem."""
    return validate_keystore(json_object(data))


def validate_keystore(raw: dict[str, Any]) -> AnyKeystore:
    """Validate a keystore's JSON object of a known version (keystore_file.json_object)."""
    schema: type[KeystoreFile] | type[BoundKeystoreFile] = (
        BoundKeystoreFile if raw.get("version") == BOUND_VERSION else KeystoreFile
    )
    try:
        model = schema.model_validate(raw)
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
    if isinstance(model, BoundKeystoreFile):
        check_device(key_id=model.device.key_id, ephemeral_key=model.device.ephemeral_key)
    return model


def load_keystore(path: Path) -> AnyKeystore:
    """The validated keystore model at `path` (NoIdentity if missing, DamagedKeystore if bad)."""
    return parse_keystore(read_bytes(Path(path)))


def seal_keystore(
    key: IdentityKey,
    passphrase: str,
    *,
    params: KdfParams = DEFAULT_KDF,
    salt: bytes | None = None,
    nonce: bytes | None = None,
    device: DeviceBinding | None = None,
    device_secret: bytes | None = None,
) -> AnyKeystore:
    """Encrypt `key` under `passphrase` (salt and nonce injectable for known-answer tests);
    with `device` and its `device_secret`, a device-bound keystore (version 2)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt = os.urandom(SALT_SIZE) if salt is None else salt
    nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
    if not MIN_SALT <= len(salt) <= MAX_SALT or len(nonce) != NONCE_SIZE:
        raise ValueError("bad salt or nonce length")
    if (device is None) != (device_secret is None):
        raise ValueError("a device binding and its secret go together")
    did = key.did
    ciphertext = AESGCM(_aead_key(passphrase, salt, params, device_secret)).encrypt(
        nonce, key.seed, _associated_data(did, device)
    )
    kdf = KeystoreKdf(
        algorithm="argon2id",
        salt=_b64encode(salt),
        memory_cost=params.memory_cost,
        iterations=params.iterations,
        lanes=params.lanes,
    )
    if device is not None:
        return BoundKeystoreFile(
            version=BOUND_VERSION,
            did=did,
            kdf=kdf,
            device=device,
            cipher="aes-256-gcm",
            nonce=_b64encode(nonce),
            ciphertext=_b64encode(ciphertext),
        )
    return KeystoreFile(
        version=FORMAT_VERSION,
        did=did,
        kdf=kdf,
        cipher="aes-256-gcm",
        nonce=_b64encode(nonce),
        ciphertext=_b64encode(ciphertext),
    )


def device_of(model: AnyKeystore) -> DeviceBinding | None:
    """The token binding of a keystore (None for a passphrase-only one)."""
    return model.device if isinstance(model, BoundKeystoreFile) else None


def open_keystore(
    model: AnyKeystore, passphrase: str, *, device_secret: bytes | None = None
) -> IdentityKey:
    """Decrypt a validated keystore model: WrongPassphrase if the AEAD tag does not verify.

    A device-bound one needs `device_secret` (from its token; DeviceBoundKeystore without
    it); a passphrase-only one ignores it.
    """
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from identity.keys import IdentityKey

    device = device_of(model)
    if device is None:
        device_secret = None
    elif device_secret is None:
        raise DeviceBoundKeystore(
            f"this identity is bound to the PKCS#11 token '{device.token_label}' "
            f"(serial {device.token_serial}): the passphrase alone does not open it"
        )
    salt = b64decode(model.kdf.salt, field="salt", sizes=SALT_SIZES)
    nonce = b64decode(model.nonce, field="nonce", sizes=NONCE_SIZES)
    sealed = b64decode(model.ciphertext, field="ciphertext", sizes=CIPHERTEXT_SIZES)
    aead_key = _aead_key(passphrase, salt, model.kdf.params, device_secret)
    try:
        seed = AESGCM(aead_key).decrypt(nonce, sealed, _associated_data(model.did, device))
    except InvalidTag as exc:
        if device is not None:
            raise WrongPassphrase(
                "the passphrase does not open this keystore with its token (a wrong passphrase,"
                " or the keystore was altered)"
            ) from exc
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
    device: DeviceBinding | None = None,
    device_secret: bytes | None = None,
) -> None:
    """Write a new keystore for `key` (device-bound with `device` and its `device_secret`);
    IdentityExists if one is there and not `overwrite`."""
    path = Path(path)
    if not overwrite and (path.exists() or path.is_symlink()):
        raise IdentityExists(
            f"an identity already exists in {path.parent}: use --force to replace it "
            "(the old identity is then lost)"
        )
    sealed = seal_keystore(
        key, passphrase, params=params, device=device, device_secret=device_secret
    )
    write_atomic(path, sealed.to_bytes())


def unlock(path: Path, passphrase: str, *, device_secret: bytes | None = None) -> IdentityKey:
    """The identity key in the keystore (WrongPassphrase / DamagedKeystore / NoIdentity;
    DeviceBoundKeystore for a device-bound one without its `device_secret`)."""
    return open_keystore(load_keystore(path), passphrase, device_secret=device_secret)


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


def unlock_and_strengthen(
    path: Path, passphrase: str, *, device_secret: bytes | None = None
) -> tuple[IdentityKey, KdfParams | None]:
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
    key = open_keystore(model, passphrase, device_secret=device_secret)
    if not is_weak(model.kdf.params):
        return key, None
    params = strengthened(model.kdf.params)
    device = device_of(model)
    secret = None if device is None else device_secret
    sealed = seal_keystore(
        key, passphrase, params=params, device=device, device_secret=secret
    ).to_bytes()
    if read_bytes(path) != data:
        return key, None
    write_atomic(path, sealed)
    return key, params


def change_passphrase(
    path: Path,
    old: str,
    new: str,
    *,
    params: KdfParams | None = None,
    device_secret: bytes | None = None,
) -> None:
    """Re-encrypt the keystore under `new` (fresh salt and nonce), atomically; a device-bound
    one stays bound to the same token key (its `device_secret` is needed).

    `params` defaults to `strengthened(file's parameters)`: the current parameters, or the
    file's where they are stronger, so that a passphrase change never weakens the file and
    always upgrades old, cheap files.
    """
    path = Path(path)
    model = load_keystore(path)
    key = open_keystore(model, old, device_secret=device_secret)
    if params is None:
        params = strengthened(model.kdf.params)
    device = device_of(model)
    secret = None if device is None else device_secret
    sealed = seal_keystore(key, new, params=params, device=device, device_secret=secret)
    write_atomic(path, sealed.to_bytes())
