"""Noise hash functions, HKDF and the SymmetricState object (Noise spec rev 34, sections 4.3, 5.2).

SymmetricState holds the chaining key `ck` and the handshake hash `h`, plus a CipherState.
Every public key, DH output, psk and ciphertext of the handshake passes through it, so the
final `h` is a transcript hash both sides agree on only if they saw exactly the same bytes.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, hmac

from messaging.noise.cipher_state import KEY_SIZE, CipherFunctions, CipherState

HASHLEN = 32
BLOCKLEN = 64
HASH_NAME = "SHA256"


def sha256(data: bytes) -> bytes:
    """HASH(data) for SHA256."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-HASH(key, data) (RFC 2104 with SHA-256)."""
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def noise_hkdf(chaining_key: bytes, input_key_material: bytes, num_outputs: int) -> list[bytes]:
    """HKDF(chaining_key, input_key_material, num_outputs) exactly as section 4.3 defines it."""
    temp_key = hmac_sha256(chaining_key, input_key_material)
    outputs: list[bytes] = []
    previous = b""
    for i in range(1, num_outputs + 1):
        previous = hmac_sha256(temp_key, previous + bytes([i]))
        outputs.append(previous)
    return outputs


class SymmetricState:
    """Section 5.2: `ck`, `h` and a CipherState."""

    def __init__(self, protocol_name: bytes, cipher: CipherFunctions) -> None:
        """InitializeSymmetric(protocol_name)."""
        if len(protocol_name) <= HASHLEN:
            self.h = protocol_name.ljust(HASHLEN, b"\x00")
        else:
            self.h = sha256(protocol_name)
        self.ck = self.h
        self.cipher_state = CipherState(cipher)

    def mix_key(self, input_key_material: bytes) -> None:
        self.ck, temp_k = noise_hkdf(self.ck, input_key_material, 2)
        self.cipher_state.initialize_key(temp_k[:KEY_SIZE])

    def mix_hash(self, data: bytes) -> None:
        self.h = sha256(self.h + data)

    def mix_key_and_hash(self, input_key_material: bytes) -> None:
        self.ck, temp_h, temp_k = noise_hkdf(self.ck, input_key_material, 3)
        self.mix_hash(temp_h)
        self.cipher_state.initialize_key(temp_k[:KEY_SIZE])

    def get_handshake_hash(self) -> bytes:
        return self.h

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher_state.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher_state.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        """Split(): (initiator-to-responder, responder-to-initiator) cipher states."""
        temp_k1, temp_k2 = noise_hkdf(self.ck, b"", 2)
        cipher = self.cipher_state.cipher
        return CipherState(cipher, temp_k1[:KEY_SIZE]), CipherState(cipher, temp_k2[:KEY_SIZE])
