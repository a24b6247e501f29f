"""What binds a didlink handshake to its context: the Noise prologue and the ephemeral commitment.

specs/handshake.md section 3 (prologue) and section 4 (commitment) describe these bytes.

The prologue is the deterministic CBOR encoding of a 6-element array:

    ["didlink/1", invitation_id, initiator_did, responder_did, fingerprint_lo, fingerprint_hi]

with the two DTLS fingerprints sorted (by their UTF-8 bytes) so both sides build the same
array without agreeing on who is "local". Noise hashes the prologue into `h` before the first
message, so any difference between the two sides makes the first AEAD check fail.
"""

from __future__ import annotations

from identity import canonical
from messaging.errors import LocalProtocolError
from messaging.noise.symmetric_state import sha256

PROTOCOL_ID = "didlink/1"
NOISE_PROTOCOL = "Noise_KK_25519_AESGCM_SHA256"
COMMITMENT_LABEL = b"didlink/v1 ephemeral commitment"
COMMITMENT_SIZE = 32
MAX_INVITATION_ID_SIZE = 64
MAX_FINGERPRINT_SIZE = 256


def handshake_prologue(
    *,
    invitation_id: bytes,
    initiator_did: str,
    responder_did: str,
    initiator_fingerprint: str,
    responder_fingerprint: str,
) -> bytes:
    """The canonical prologue bytes (specs/handshake.md section 3)."""
    if not isinstance(invitation_id, bytes) or not 1 <= len(invitation_id) <= (
        MAX_INVITATION_ID_SIZE
    ):
        raise LocalProtocolError("the invitation id must be 1 to 64 bytes")
    fingerprints = (initiator_fingerprint, responder_fingerprint)
    for text in (initiator_did, responder_did, *fingerprints):
        if not isinstance(text, str) or not text:
            raise LocalProtocolError("DIDs and fingerprints must be non-empty strings")
    if any(len(fp.encode("utf-8")) > MAX_FINGERPRINT_SIZE for fp in fingerprints):
        raise LocalProtocolError("a DTLS fingerprint is at most 256 bytes")
    low, high = sorted(fingerprints, key=lambda fp: fp.encode("utf-8"))
    return canonical.encode([PROTOCOL_ID, invitation_id, initiator_did, responder_did, low, high])


def ephemeral_commitment(prologue: bytes, ephemeral_public: bytes) -> bytes:
    """SHA-256(label || SHA-256(prologue) || responder ephemeral public key), 32 bytes.

    The ephemeral public key is 32 uniformly random bytes, so the commitment hides it without
    a separate nonce; SHA-256's collision resistance binds the responder to it.
    """
    if len(ephemeral_public) != 32:
        raise LocalProtocolError("an X25519 public key is 32 bytes")
    return sha256(COMMITMENT_LABEL + sha256(prologue) + ephemeral_public)
