"""A Noise Protocol Framework core (revision 34): X25519, AES-256-GCM / ChaCha20-Poly1305, SHA-256.

`HandshakeState("Noise_KK_25519_AESGCM_SHA256", initiator=True, s=..., rs=...)` runs any
interactive pattern of section 7.4, with psk modifiers; `split()` gives the transport
`CipherState`s. Decryption failures raise `messaging.errors.CryptoFailure`; misuse raises
`LocalProtocolError`; malformed peer input raises `RemoteProtocolError`.
"""

from messaging.noise.cipher_state import (
    AESGCM_CIPHER,
    CHACHAPOLY_CIPHER,
    CipherFunctions,
    CipherState,
)
from messaging.noise.handshake_state import HandshakeState, KeyPair, x25519_dh, x25519_public
from messaging.noise.patterns import HandshakePattern, Protocol, parse_protocol_name
from messaging.noise.symmetric_state import SymmetricState, noise_hkdf, sha256

__all__ = [
    "AESGCM_CIPHER",
    "CHACHAPOLY_CIPHER",
    "CipherFunctions",
    "CipherState",
    "HandshakePattern",
    "HandshakeState",
    "KeyPair",
    "Protocol",
    "SymmetricState",
    "noise_hkdf",
    "parse_protocol_name",
    "sha256",
    "x25519_dh",
    "x25519_public",
]
