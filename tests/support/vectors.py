"""Load known-answer vector files from tests/vectors/ (each directory's README names the source)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def load_json(relative: str) -> Any:
    """Parse tests/vectors/<relative> as JSON."""
    return json.loads((VECTORS / relative).read_text(encoding="utf-8"))
