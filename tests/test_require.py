"""tests/support/require.py: a missing capability skips locally and fails in CI."""

from __future__ import annotations

import pytest

from tests.support.require import require


def test_a_present_capability_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for ci in ("true", ""):
        monkeypatch.setenv("CI", ci)
        require(True, "never shown")


def test_a_missing_capability_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    for ci in (None, "", "false", "1"):
        if ci is None:
            monkeypatch.delenv("CI", raising=False)
        else:
            monkeypatch.setenv("CI", ci)
        with pytest.raises(pytest.skip.Exception, match="needs root"):
            require(False, "needs root")


def test_a_missing_capability_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required in CI: needs root"):
        require(False, "needs root")
