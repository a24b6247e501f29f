"""Output helpers for the CLI: JSON on stdout, terminal QR codes."""

from __future__ import annotations

import json
import sys
from typing import Any

import segno


def print_json(value: Any) -> None:
    """One JSON document on stdout, keys in a stable order."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, sort_keys=True) + "\n")
    sys.stdout.flush()


def print_qr(data: str) -> None:
    """A QR code of `data` drawn with text blocks on stdout (scannable from a terminal)."""
    qr = segno.make(data, error="l", micro=False)
    qr.terminal(out=sys.stdout, compact=True, border=2)
