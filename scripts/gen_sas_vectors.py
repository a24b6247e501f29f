"""Generate tests/vectors/sas/didlink-sas.json: known answers for didlink's SAS derivation.

What it holds: for a handful of fixed handshake hashes (32 zero bytes, 32 0xff bytes,
bytes 0..31, SHA-256 of fixed labels, and one 64-byte hash), the 6 SAS bytes
HKDF-SHA256(ikm=hash, salt absent, info=b"didlink/v1 sas", L=6), the 7 emoji indices, names and
characters (Matrix "SAS method: emoji") and the 3 numbers (Matrix "SAS method: decimal"), as
computed by messaging/sas.py (specs/verification.md section 1).

Why: the file pins today's output so that any change to the label, the bit layout or the emoji
table shows up as a failing test (tests/test_sas.py, marked `vectors`). Its values are also
recomputed there by an independent implementation (stdlib hmac/hashlib HKDF, bit-string
slicing), so a bug in messaging/sas.py cannot hide in this file.

Run after an intentional change only, and review the diff:

    .venv/bin/python scripts/gen_sas_vectors.py
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from messaging.sas import SAS_INFO, ShortAuthString, derive_sas_bytes  # noqa: E402

TARGET = ROOT / "tests" / "vectors" / "sas" / "didlink-sas.json"


def handshake_hashes() -> list[tuple[str, bytes]]:
    """The fixed inputs: (comment, handshake hash)."""
    return [
        ("32 zero bytes", bytes(32)),
        ("32 bytes 0xff", b"\xff" * 32),
        ("bytes 0x00..0x1f", bytes(range(32))),
        ('SHA-256("didlink sas vector 1")', hashlib.sha256(b"didlink sas vector 1").digest()),
        ('SHA-256("didlink sas vector 2")', hashlib.sha256(b"didlink sas vector 2").digest()),
        ('SHA-256("didlink sas vector 3")', hashlib.sha256(b"didlink sas vector 3").digest()),
        (
            'SHA-512("didlink sas vector 4") (64-byte hash)',
            hashlib.sha512(b"didlink sas vector 4").digest(),
        ),
    ]


def build() -> dict[str, object]:
    """The JSON document."""
    vectors = []
    for comment, handshake_hash in handshake_hashes():
        sas = ShortAuthString.from_handshake_hash(handshake_hash)
        vectors.append(
            {
                "comment": comment,
                "handshake_hash": handshake_hash.hex(),
                "sas_bytes": derive_sas_bytes(handshake_hash).hex(),
                "emoji_indices": list(sas.indices()),
                "emoji_names": list(sas.names()),
                "emoji": [e.emoji for e in sas.emoji],
                "decimal": list(sas.decimal),
            }
        )
    return {
        "source": "didlink scripts/gen_sas_vectors.py (specs/verification.md section 1)",
        "hkdf": {"hash": "SHA-256", "salt": "", "info": SAS_INFO.decode("ascii"), "length": 6},
        "vectors": vectors,
    }


def main() -> int:
    text = json.dumps(build(), ensure_ascii=False, indent=2) + "\n"
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
