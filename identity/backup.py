"""The backup file: identity, contacts and used invitation ids, sealed under a passphrase.

Theory of operation (specs/backup.md section 2):
- The file is one line of UTF-8 JSON (the envelope: format name, version, Argon2id parameters
  and salt, cipher, nonce, ciphertext) ending in a newline. Reading accepts exactly the bytes
  that writing would produce from the fields it parsed, so any change anywhere is either
  refused as damaged or changes what goes into the key or the AEAD.
- Key: Argon2id of the passphrase with the file's salt and parameters, the keystore's KDF
  (identity/keystore.py `derive_key`) under the keystore's limits, checked before any work.
- AEAD: AES-256-GCM; associated data = label || the KDF parameters and salt, so the header is
  bound to the ciphertext as well as feeding the key.
- Plaintext: deterministic CBOR (identity/canonical.py) of {version, seed, created, contacts,
  used_invitations} and, from contents version 2, the profile's settings (relays, ICE servers;
  sealed ones stay sealed under the store key, which the same seed gives again), from
  contents version 3 the persistent sessions (sealed as the store holds them) and the ids of
  messages already received (exactly-once after a restore), from contents version 4 where
  each contact listens (the relays of its token, the reach of its card: relays and request
  key), decoded
  strictly and validated completely (DIDs, states, times, lengths, duplicates) before the
  caller sees anything: a caller writes nothing until `open_backup` has returned.
- Errors: anything wrong with the bytes -> DamagedBackup; a tag that does not verify ->
  BackupDoesNotOpen (a wrong passphrase and an altered ciphertext look the same, on purpose).
  No message quotes the file's contents.

Sans-IO: bytes in, bytes out; time, salt and nonce are parameters where a test must pin them.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from identity import canonical, relay_url
from identity.contact import Contact, Verification
from identity.did_key import ed25519_public_key
from identity.errors import BackupDoesNotOpen, DamagedBackup, DidError, validation_summary
from identity.invitation import MAX_REACH_RELAYS, ReachKey, ReachUrl
from identity.keys import SEED_SIZE, IdentityKey
from identity.keystore import DEFAULT_KDF, KdfParams, KeystoreKdf, derive_key
from identity.keystore_file import MAX_SALT, MIN_SALT

FORMAT_NAME: Literal["didlink backup"] = "didlink backup"
FORMAT_VERSION: Literal[1] = 1
CONTENTS_VERSION: Literal[4] = 4
"""The sealed contents' version: 2 adds `settings`, 3 adds `sessions` and `received`, 4 adds
`contact_relays` and `contact_reach`; versions 1 to 3 still open."""
AD_LABEL = b"didlink backup v1\x00"
"""Associated data = AD_LABEL || len(salt) (1 byte) || salt || memory_cost || iterations || lanes
(each a 4-byte big-endian unsigned integer); specs/backup.md, "AEAD"."""

SALT_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16
MAX_FILE_SIZE = 32 * 1024 * 1024
"""A backup of 10 000 contacts is about 3 MiB; anything above this is refused before parsing."""
MAX_PLAINTEXT_SIZE = 3 * MAX_FILE_SIZE // 4
MAX_CONTACTS = 100_000
MAX_USED_INVITATIONS = 100_000
MAX_INVITATION_ID = 64
MAX_NAME_CHARS = 256
MAX_SETTINGS = 256
MAX_SETTING_NAME = 64
MAX_SETTING_VALUE = 64 * 1024
MAX_TIME_CHARS = 40
MAX_SESSIONS = 10_000
MAX_SESSION_SEALED = 1024 * 1024
"""A session's sealed state: its ratchet with up to 2000 skipped keys, twice (a restored
session keeps the state it was restored from), is about 0.7 MiB of JSON."""
MAX_RECEIVED_PEERS = 100_000
MAX_RECEIVED_IDS = 200_000
"""Message ids already received, over all contacts (the store keeps about 9 000 per contact)."""
MAX_MESSAGE_ID = 64
MAX_CONTACT_RELAYS = 4
"""A contact's relays (its token's `relays`, the store's `contact_relays`): 1..4 URLs."""


# --- the envelope (JSON) ------------------------------------------------------------------


class BackupFile(BaseModel):
    """The backup file's envelope, version 1. Binary fields are standard padded base64."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    format: Literal["didlink backup"]
    version: Literal[1]
    kdf: KeystoreKdf  # the keystore's own `kdf` object, with its bounds
    cipher: Literal["aes-256-gcm"]
    nonce: str
    ciphertext: str

    def to_bytes(self) -> bytes:
        """The file's bytes: compact JSON in field order, UTF-8, one final newline."""
        return self.model_dump_json().encode("utf-8") + b"\n"


# --- the sealed contents (deterministic CBOR) -----------------------------------------------


class _ContactRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    did: str
    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)] | None
    suggested_name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)] | None
    verification: Literal["unverified", "sas", "safety-number", "suspect"]
    first_seen: Annotated[str, Field(max_length=MAX_TIME_CHARS)]
    last_seen: Annotated[str, Field(max_length=MAX_TIME_CHARS)]


class _UsedInvitationRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    id: Annotated[bytes, Field(min_length=1, max_length=MAX_INVITATION_ID)]
    used_at: Annotated[str, Field(max_length=MAX_TIME_CHARS)]


class _SettingRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    name: Annotated[str, Field(min_length=1, max_length=MAX_SETTING_NAME, pattern=r"^[ -~]+$")]
    sealed: bool
    value: Annotated[bytes, Field(max_length=MAX_SETTING_VALUE)]


class _SessionRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    did: str
    sealed: Annotated[bytes, Field(min_length=1, max_length=MAX_SESSION_SEALED)]


class _ReceivedRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    did: str
    ids: list[Annotated[bytes, Field(min_length=1, max_length=MAX_MESSAGE_ID)]] = Field(
        min_length=1, max_length=MAX_RECEIVED_IDS
    )


def _normalised_relay(url: str) -> str:
    if relay_url.normalised(url) != url:  # ValueError with its own sentence if it is refused
        raise ValueError("a relay URL is not in its normalised form")
    return url


_RelayUrl = Annotated[str, Field(max_length=relay_url.MAX_URL), AfterValidator(_normalised_relay)]


class _ContactRelaysRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    did: str
    relays: list[_RelayUrl] = Field(min_length=1, max_length=MAX_CONTACT_RELAYS)


class _ContactReachRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    did: str
    relays: list[ReachUrl] = Field(min_length=1, max_length=MAX_REACH_RELAYS)
    key: ReachKey


class _Contents(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    version: Literal[1, 2, 3, 4]
    seed: Annotated[bytes, Field(min_length=SEED_SIZE, max_length=SEED_SIZE)]
    created: Annotated[str, Field(max_length=MAX_TIME_CHARS)]
    contacts: Annotated[list[_ContactRecord], Field(max_length=MAX_CONTACTS)]
    used_invitations: Annotated[list[_UsedInvitationRecord], Field(max_length=MAX_USED_INVITATIONS)]
    settings: Annotated[list[_SettingRecord], Field(max_length=MAX_SETTINGS)] | None = None
    sessions: Annotated[list[_SessionRecord], Field(max_length=MAX_SESSIONS)] | None = None
    received: Annotated[list[_ReceivedRecord], Field(max_length=MAX_RECEIVED_PEERS)] | None = None
    contact_relays: Annotated[list[_ContactRelaysRecord], Field(max_length=MAX_CONTACTS)] | None = (
        None
    )
    contact_reach: Annotated[list[_ContactReachRecord], Field(max_length=MAX_CONTACTS)] | None = (
        None
    )


@dataclass(frozen=True)
class BackupSetting:
    """One row of the profile's settings (specs/store.md "Settings"), as the store holds it:
    `value` is the clear value, or the sealed bytes when `sealed`."""

    name: str
    sealed: bool
    value: bytes = field(repr=False)


@dataclass(frozen=True, repr=False)
class BackupSession:
    """A contact's persistent session (specs/mailbox.md §7) as the store holds it: sealed under
    the store key with the context "sessions\\0" + DID. The restore marks it restored
    (specs/backup.md "Restored sessions"); this layer does not open it."""

    did: str
    sealed: bytes


@dataclass(frozen=True)
class BackupRelays:
    """Where a contact reads its mailbox (the store's `contact_relays`, specs/store.md schema
    7): the 1..4 relay URLs of its latest token, normalised."""

    did: str
    relays: tuple[str, ...]


@dataclass(frozen=True)
class BackupReach:
    """Where a contact is reached by a message request (the store's `contact_reach`, schema 8):
    the relays of its card (or its request) and its x-only secp256k1 request key."""

    did: str
    relays: tuple[str, ...]
    key: bytes


@dataclass(frozen=True, repr=False)
class Backup:
    """What a backup holds. Its repr never shows the key's seed."""

    key: IdentityKey
    contacts: tuple[Contact, ...]
    used_invitations: tuple[tuple[bytes, datetime], ...]
    created: datetime
    settings: tuple[BackupSetting, ...] = ()
    sessions: tuple[BackupSession, ...] = ()
    received: tuple[tuple[str, tuple[bytes, ...]], ...] = ()
    """Per contact DID, the ids of the messages already received from it."""
    contact_relays: tuple[BackupRelays, ...] = ()
    contact_reach: tuple[BackupReach, ...] = ()

    def __repr__(self) -> str:
        return (
            f"Backup(did={self.key.did!r}, contacts={len(self.contacts)}, "
            f"used_invitations={len(self.used_invitations)}, settings={len(self.settings)}, "
            f"sessions={len(self.sessions)}, contact_relays={len(self.contact_relays)}, "
            f"contact_reach={len(self.contact_reach)})"
        )


def _timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds, as the store writes times (specs/store.md)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("backup times must be timezone-aware datetimes")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _moment(text: str, *, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DamagedBackup(f"the backup's {field} is not a time") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise DamagedBackup(f"the backup's {field} has no time zone")
    return moment


def _contents_cbor(backup: Backup) -> bytes:
    contents: dict[str, Any] = {
        "version": CONTENTS_VERSION,
        "seed": backup.key.seed,
        "created": _timestamp(backup.created),
        "contacts": [
            {
                "did": contact.did,
                "name": contact.name,
                "suggested_name": contact.suggested_name,
                "verification": Verification(contact.verification).value,
                "first_seen": _timestamp(contact.first_seen),
                "last_seen": _timestamp(contact.last_seen),
            }
            for contact in backup.contacts
        ],
        "used_invitations": [
            {"id": bytes(invitation_id), "used_at": _timestamp(used_at)}
            for invitation_id, used_at in backup.used_invitations
        ],
        "settings": [
            {"name": setting.name, "sealed": setting.sealed, "value": setting.value}
            for setting in backup.settings
        ],
        "sessions": [{"did": one.did, "sealed": one.sealed} for one in backup.sessions],
        "received": [{"did": did, "ids": list(ids)} for did, ids in backup.received if ids],
        "contact_relays": [
            {"did": one.did, "relays": list(one.relays)} for one in backup.contact_relays
        ],
        "contact_reach": [
            {"did": one.did, "relays": list(one.relays), "key": one.key}
            for one in backup.contact_reach
        ],
    }
    return canonical.encode(contents)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _nocase(name: str) -> str:
    """A name as the store's `COLLATE NOCASE` compares it (ASCII letters folded only)."""
    return name.translate(_ASCII_LOWER)


def _backup_from(contents: _Contents) -> Backup:
    key = IdentityKey(contents.seed)
    contacts = []
    seen: set[str] = set()
    for record in contents.contacts:
        try:
            ed25519_public_key(record.did)
        except DidError:
            raise DamagedBackup("a contact in the backup has an invalid DID") from None
        if record.did in seen:
            raise DamagedBackup("a contact appears twice in the backup")
        seen.add(record.did)
        contacts.append(
            Contact(
                did=record.did,
                name=record.name,
                verification=Verification(record.verification),
                first_seen=_moment(record.first_seen, field="first_seen"),
                last_seen=_moment(record.last_seen, field="last_seen"),
                suggested_name=record.suggested_name,
            )
        )
    names = [_nocase(c.name) for c in contacts if c.name is not None]
    if len(set(names)) != len(names):
        raise DamagedBackup("two contacts in the backup have the same name")
    used = []
    ids: set[bytes] = set()
    for invitation in contents.used_invitations:
        if invitation.id in ids:
            raise DamagedBackup("an invitation id appears twice in the backup")
        ids.add(invitation.id)
        used.append((invitation.id, _moment(invitation.used_at, field="used_at")))
    if (contents.settings is None) != (contents.version == 1):
        raise DamagedBackup("the backup's settings do not match its contents version")
    records = contents.settings or ()
    settings = tuple(BackupSetting(r.name, r.sealed, r.value) for r in records)
    if len({setting.name for setting in settings}) != len(settings):
        raise DamagedBackup("a setting appears twice in the backup")
    sessions, received = _sessions_from(contents, seen)
    contact_relays, contact_reach = _reach_from(contents, seen)
    return Backup(
        key=key,
        contacts=tuple(contacts),
        used_invitations=tuple(used),
        created=_moment(contents.created, field="created"),
        settings=settings,
        sessions=sessions,
        received=received,
        contact_relays=contact_relays,
        contact_reach=contact_reach,
    )


def _sessions_from(
    contents: _Contents, contacts: set[str]
) -> tuple[tuple[BackupSession, ...], tuple[tuple[str, tuple[bytes, ...]], ...]]:
    """Contents version 3's sessions and received ids: each of a contact, none twice."""
    if (contents.sessions is None or contents.received is None) != (contents.version < 3):
        raise DamagedBackup("the backup's sessions do not match its contents version")
    sessions = []
    for record in contents.sessions or ():
        if record.did not in contacts:
            raise DamagedBackup("a session in the backup is not a contact's")
        sessions.append(BackupSession(record.did, record.sealed))
    if len({one.did for one in sessions}) != len(sessions):
        raise DamagedBackup("a contact has two sessions in the backup")
    received = []
    total = 0
    for entry in contents.received or ():
        if entry.did not in contacts:
            raise DamagedBackup("received message ids in the backup are not a contact's")
        total += len(entry.ids)
        if total > MAX_RECEIVED_IDS:
            raise DamagedBackup("the backup holds too many received message ids")
        if len(set(entry.ids)) != len(entry.ids):
            raise DamagedBackup("a received message id appears twice in the backup")
        received.append((entry.did, tuple(entry.ids)))
    if len({did for did, _ in received}) != len(received):
        raise DamagedBackup("a contact's received message ids appear twice in the backup")
    return tuple(sessions), tuple(received)


def _reach_from(
    contents: _Contents, contacts: set[str]
) -> tuple[tuple[BackupRelays, ...], tuple[BackupReach, ...]]:
    """Contents version 4's relays and reach: each of a contact, none twice, no relay twice
    in one list (each URL normalised, the key a point on the curve: the model's checks)."""
    if (contents.contact_relays is None or contents.contact_reach is None) != (
        contents.version < 4
    ):
        raise DamagedBackup("the backup's contacts' relays do not match its contents version")
    relays = []
    for record in contents.contact_relays or ():
        if record.did not in contacts:
            raise DamagedBackup("relays in the backup are not a contact's")
        if len(set(record.relays)) != len(record.relays):
            raise DamagedBackup("a relay appears twice in a contact's relays in the backup")
        relays.append(BackupRelays(record.did, tuple(record.relays)))
    if len({one.did for one in relays}) != len(relays):
        raise DamagedBackup("a contact's relays appear twice in the backup")
    reach = []
    for entry in contents.contact_reach or ():
        if entry.did not in contacts:
            raise DamagedBackup("a reach in the backup is not a contact's")
        if len(set(entry.relays)) != len(entry.relays):
            raise DamagedBackup("a relay appears twice in a contact's reach in the backup")
        reach.append(BackupReach(entry.did, tuple(entry.relays), entry.key))
    if len({one.did for one in reach}) != len(reach):
        raise DamagedBackup("a contact's reach appears twice in the backup")
    return tuple(relays), tuple(reach)


# --- seal / open ----------------------------------------------------------------------------


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str, *, field: str) -> bytes:
    try:
        raw = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raise DamagedBackup(f"the backup's {field} is not valid base64") from None
    if _b64encode(raw) != text:
        raise DamagedBackup(f"the backup's {field} is not canonical base64")
    return raw


def _associated_data(salt: bytes, params: KdfParams) -> bytes:
    return (
        AD_LABEL
        + bytes((len(salt),))
        + salt
        + struct.pack(">III", params.memory_cost, params.iterations, params.lanes)
    )


def seal_backup(
    backup: Backup,
    passphrase: str,
    *,
    params: KdfParams = DEFAULT_KDF,
    salt: bytes | None = None,
    nonce: bytes | None = None,
) -> bytes:
    """The backup file's bytes for `backup` under `passphrase` (salt, nonce injectable)."""
    if len(backup.contacts) > MAX_CONTACTS or len(backup.used_invitations) > MAX_USED_INVITATIONS:
        raise ValueError("too many contacts or used invitations for one backup file")
    if len(backup.settings) > MAX_SETTINGS:
        raise ValueError("too many settings for one backup file")
    if len(backup.sessions) > MAX_SESSIONS or any(
        len(one.sealed) > MAX_SESSION_SEALED for one in backup.sessions
    ):
        raise ValueError("too many sessions, or one too large, for one backup file")
    if sum(len(ids) for _, ids in backup.received) > MAX_RECEIVED_IDS:
        raise ValueError("too many received message ids for one backup file")
    if len(backup.contact_relays) > MAX_CONTACTS or len(backup.contact_reach) > MAX_CONTACTS:
        raise ValueError("too many contacts' relays for one backup file")
    salt = os.urandom(SALT_SIZE) if salt is None else salt
    nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
    if not MIN_SALT <= len(salt) <= MAX_SALT or len(nonce) != NONCE_SIZE:
        raise ValueError("bad salt or nonce length")
    plaintext = _contents_cbor(backup)
    if len(plaintext) > MAX_PLAINTEXT_SIZE:
        raise ValueError("the backup would be larger than a backup file may be")
    _check_opens(plaintext)
    key = derive_key(passphrase, salt, params)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, _associated_data(salt, params))
    data = BackupFile(
        format=FORMAT_NAME,
        version=FORMAT_VERSION,
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
    ).to_bytes()
    if len(data) > MAX_FILE_SIZE:
        raise ValueError("the backup would be larger than a backup file may be")
    return data


def _check_opens(plaintext: bytes) -> None:
    """ValueError unless these contents pass every check a reader makes (section 2): a backup
    that its own import would refuse (a store row a backup cannot carry) is never written."""
    try:
        value = canonical.decode(plaintext, max_size=MAX_PLAINTEXT_SIZE)
        _backup_from(_Contents.model_validate(value))
    except (ValidationError, DamagedBackup, canonical.NonCanonicalCbor) as exc:
        why = validation_summary(exc) if isinstance(exc, ValidationError) else str(exc)
        raise ValueError(f"the profile holds something a backup cannot carry ({why})") from None


def parse_backup(data: bytes) -> BackupFile:
    """Validate the file's bytes completely (everything but the AEAD); DamagedBackup if not."""
    if len(data) > MAX_FILE_SIZE:
        raise DamagedBackup("the file is far too large to be a didlink backup")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):  # bad UTF-8, bad JSON, 5000-digit integers
        raise DamagedBackup("the file is not a didlink backup, or it is damaged") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
        raise DamagedBackup("the file is not a didlink backup, or it is damaged")
    version = raw.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        shown = version if type(version) is int and abs(version) < 10**6 else "?"
        raise DamagedBackup(f"the backup has version {shown}, which this didlink cannot read")
    try:
        model = BackupFile.model_validate(raw)
    except ValidationError as exc:
        raise DamagedBackup(f"the backup is damaged ({validation_summary(exc)})") from None
    salt = _b64decode(model.kdf.salt, field="salt")
    nonce = _b64decode(model.nonce, field="nonce")
    sealed = _b64decode(model.ciphertext, field="ciphertext")
    if not MIN_SALT <= len(salt) <= MAX_SALT:
        raise DamagedBackup("the backup's salt has the wrong length")
    if len(nonce) != NONCE_SIZE:
        raise DamagedBackup("the backup's nonce has the wrong length")
    if not TAG_SIZE < len(sealed) <= MAX_PLAINTEXT_SIZE + TAG_SIZE:
        raise DamagedBackup("the backup's ciphertext has an impossible length")
    if model.kdf.memory_cost < 8 * model.kdf.lanes:
        raise DamagedBackup("the backup's Argon2 memory is below 8 KiB per lane")
    if model.to_bytes() != data:  # one spelling only: no other whitespace, order or escapes
        raise DamagedBackup("the backup is damaged (not in the form didlink writes)")
    return model


def open_backup(data: bytes, passphrase: str) -> Backup:
    """Check, decrypt and validate a backup file (DamagedBackup / BackupDoesNotOpen)."""
    return open_parsed_backup(parse_backup(data), passphrase)


def open_parsed_backup(model: BackupFile, passphrase: str) -> Backup:
    """Decrypt and validate a parsed backup (`parse_backup`); BackupDoesNotOpen on a bad tag."""
    salt = _b64decode(model.kdf.salt, field="salt")
    nonce = _b64decode(model.nonce, field="nonce")
    sealed = _b64decode(model.ciphertext, field="ciphertext")
    params = model.kdf.params
    key = derive_key(passphrase, salt, params)
    try:
        plaintext = AESGCM(key).decrypt(nonce, sealed, _associated_data(salt, params))
    except InvalidTag:
        raise BackupDoesNotOpen(
            "the passphrase does not open this backup (or the file was altered)"
        ) from None
    # From here on the bytes are authentic (made by someone who knew the passphrase); they are
    # still checked as strictly as anything else we read.
    try:
        value = canonical.decode(plaintext, max_size=MAX_PLAINTEXT_SIZE)
    except canonical.NonCanonicalCbor:
        raise DamagedBackup("the backup's contents are not valid deterministic CBOR") from None
    inner = value.get("version") if isinstance(value, dict) else None
    if type(inner) is not int or inner not in (1, 2, 3, CONTENTS_VERSION):
        raise DamagedBackup("the backup's contents have an unknown version")
    try:
        contents = _Contents.model_validate(value)
    except ValidationError as exc:
        where = validation_summary(exc)
        raise DamagedBackup(f"the backup's contents are damaged ({where})") from None
    return _backup_from(contents)


def make_backup(
    key: IdentityKey,
    contacts: Sequence[Contact],
    used_invitations: Sequence[tuple[bytes, datetime]],
    *,
    now: datetime,
    settings: Sequence[BackupSetting] = (),
    sessions: Sequence[BackupSession] = (),
    received: Sequence[tuple[str, Sequence[bytes]]] = (),
    contact_relays: Sequence[BackupRelays] = (),
    contact_reach: Sequence[BackupReach] = (),
) -> Backup:
    """A `Backup` of these parts, made at `now`."""
    return Backup(
        key=key,
        contacts=tuple(contacts),
        used_invitations=tuple(used_invitations),
        created=now,
        settings=tuple(settings),
        sessions=tuple(sessions),
        received=tuple((did, tuple(ids)) for did, ids in received),
        contact_relays=tuple(contact_relays),
        contact_reach=tuple(contact_reach),
    )
