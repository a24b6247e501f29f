"""A missing capability skips a test locally and fails it in CI (`CI=true`).

On a developer's machine a test that needs, say, root and network namespaces is skipped when
they are not there. In CI the environment is ours (`.ci/run` installs iproute2 and runs as
root), so a missing capability means the check silently stopped running: that must be red.
"""

from __future__ import annotations

import os

import pytest


def require(condition: bool, reason: str) -> None:
    """Return if `condition` holds; else skip the test (locally) or fail it (CI=true)."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason)
