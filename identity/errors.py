"""Every error the identity package raises derives from `IdentityError`.

The did:key errors carry the spec's error names (w3c-ccg did:key, "Resolve" algorithm) in `code`.
The message of each error is written for a person: the CLI prints it as its one-line diagnosis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only a type here: importing pydantic costs every command ~20 ms
    from pydantic import ValidationError


class IdentityError(Exception):
    """Base class of every identity error."""

    code: str = "identityError"


# --- did:key (specs/identity.md) ---------------------------------------------------------


class DidError(IdentityError):
    """A DID could not be parsed or resolved."""

    code = "invalidDid"


class InvalidDid(DidError):
    """The DID is not a well-formed did:key."""

    code = "invalidDid"


class InvalidPublicKeyLength(DidError):
    """The key inside the DID has the wrong length for its type."""

    code = "invalidPublicKeyLength"


class InvalidPublicKey(DidError):
    """The key inside the DID is not a valid point / key for its type."""

    code = "invalidPublicKey"


class UnsupportedPublicKeyType(DidError):
    """The multicodec inside the DID names a key type we do not support."""

    code = "unsupportedPublicKeyType"


# --- keystore (specs/keystore.md) --------------------------------------------------------


class KeystoreError(IdentityError):
    """The keystore could not be read or written."""

    code = "keystoreError"


class WrongPassphrase(KeystoreError):
    """The passphrase does not open the keystore."""

    code = "wrongPassphrase"


class DamagedKeystore(KeystoreError):
    """The keystore file is truncated, corrupt or of an unknown version."""

    code = "damagedKeystore"


class NoIdentity(KeystoreError):
    """There is no identity in this profile yet."""

    code = "noIdentity"


class IdentityExists(KeystoreError):
    """An identity already exists and would be replaced."""

    code = "identityExists"


class DeviceBoundKeystore(KeystoreError):
    """The keystore is bound to a device token: the passphrase alone does not open it."""

    code = "deviceBound"


# --- recovery phrase (specs/backup.md section 1) ------------------------------------------


class RecoveryPhraseError(IdentityError):
    """The words are not a valid recovery phrase."""

    code = "badRecoveryPhrase"


class WrongWordCount(RecoveryPhraseError):
    """A recovery phrase has exactly 24 words."""

    code = "wrongWordCount"


class UnknownWords(RecoveryPhraseError):
    """Some words are not in the BIP-39 English word list."""

    code = "unknownWords"


class BadChecksum(RecoveryPhraseError):
    """The words are all in the list, but their checksum does not match."""

    code = "badChecksum"


# --- backup file (specs/backup.md section 2) ---------------------------------------------


class BackupError(IdentityError):
    """A backup file could not be read or written."""

    code = "backupError"


class DamagedBackup(BackupError):
    """The backup file is truncated, corrupt, too large or of an unknown version."""

    code = "damagedBackup"


class BackupDoesNotOpen(BackupError):
    """The passphrase does not open this backup, or the file was altered."""

    code = "backupDoesNotOpen"


# --- invitations (specs/invitation.md); checked in this order ----------------------------


class InvitationError(IdentityError):
    """A didlink token (invitation, response) was rejected."""

    code = "invalidToken"


class MalformedToken(InvitationError):
    """The token is not a well-formed didlink token."""

    code = "malformed"


class UnsupportedVersion(InvitationError):
    """The token was made by an incompatible version of didlink."""

    code = "unsupportedVersion"


class BadTokenDid(InvitationError):
    """The DID inside the token is not a valid Ed25519 did:key."""

    code = "badDid"


class BadSignature(InvitationError):
    """The token's signature does not verify: it was altered or forged."""

    code = "badSignature"


class Expired(InvitationError):
    """The token has expired."""

    code = "expired"


class NotYetValid(InvitationError):
    """The token's validity starts in the future (check the clocks)."""

    code = "notYetValid"


class AlreadyUsed(InvitationError):
    """This single-use invitation was already accepted."""

    code = "alreadyUsed"


class ResponseMismatch(InvitationError):
    """The response does not answer this invitation."""

    code = "responseMismatch"


# --- schema errors, worded without the input ------------------------------------------------

_WORDED_WITHOUT_INPUT = {
    "union_tag_invalid": "unknown type",
    "union_tag_not_found": "no type given",
    "extra_forbidden": "unexpected field",
}


def validation_summary(exc: ValidationError) -> str:
    """The first schema error of `exc`, worded without quoting what was received.

    pydantic's messages may quote the input (a union's tag, an unexpected field's key): a token
    or a peer chooses those bytes, so they never reach a message. Field names are kept only
    when they are short ASCII identifiers (ours); anything else in the location becomes `?`.
    """
    error = exc.errors(include_url=False, include_input=False, include_context=False)[0]
    where = ".".join(_location_part(part) for part in error["loc"])
    kind = str(error["type"])
    message = _WORDED_WITHOUT_INPUT.get(kind) or str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _location_part(part: object) -> str:
    if isinstance(part, int):
        return str(part)
    text = str(part)
    return text if text.isascii() and text.isidentifier() and len(text) <= 32 else "?"
