"""The serialisable state of a Double Ratchet session (specs/session.md section 5).

A versioned pydantic model: the disk schema that lets a `RatchetSession` survive a restart.
Byte fields are hex strings in JSON (`model_dump_json` / `model_validate_json`). The model
holds secrets (root, chain and message keys, the ratchet private key): store it only inside
encrypted storage.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator

STATE_VERSION: Literal[1] = 1


def _hex_to_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError as exc:
            raise ValueError("not a hex string") from exc
    raise ValueError("expected a hex string")


HexBytes = Annotated[
    bytes,
    PlainValidator(_hex_to_bytes),
    PlainSerializer(lambda value: value.hex(), return_type=str, when_used="json"),
]
Key32 = Annotated[HexBytes, Field(min_length=32, max_length=32)]


class SkippedKey(BaseModel):
    """A stored message key for a message that has not arrived yet (spec: MKSKIPPED entry)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dh: Key32
    n: int = Field(ge=0, lt=2**32)
    mk: Key32


class RatchetState(BaseModel):
    """All of a session's state variables (Signal Double Ratchet spec section 3.2)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = STATE_VERSION
    associated_data: HexBytes
    dhs_private: Key32
    dhr: Key32 | None
    rk: Key32
    cks: Key32 | None
    ckr: Key32 | None
    ns: int = Field(ge=0, lt=2**32)
    nr: int = Field(ge=0, lt=2**32)
    pn: int = Field(ge=0, lt=2**32)
    skipped: list[SkippedKey]
