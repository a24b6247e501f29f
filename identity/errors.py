"""Every error the identity package raises derives from `IdentityError`.

The did:key errors carry the spec's error names (w3c-ccg did:key, "Resolve" algorithm) in `code`.
The message of each error is written for a person: the CLI prints it as its one-line diagnosis.
"""

from __future__ import annotations


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
