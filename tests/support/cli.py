"""Run the real `didlink` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

CLI_TIMEOUT = 120.0


def run_cli(
    *args: str,
    home: Path,
    passphrase: str | None = "correct horse battery staple",
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = CLI_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """`didlink ARGS` with DIDLINK_HOME=home (and DIDLINK_PASSPHRASE unless passphrase is None)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}
    full_env["DIDLINK_HOME"] = str(home)
    full_env["PYTHONUNBUFFERED"] = "1"
    if passphrase is not None:
        full_env["DIDLINK_PASSPHRASE"] = passphrase
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "didlink", *args],
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_user_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit code 2, nothing on stdout, one line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
