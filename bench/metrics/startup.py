"""cold_start: how long `didlink whoami --json` takes as a fresh process (issue 28, point 4).

cold_start  the wall time of one `didlink whoami --json` process (the installed console script,
            so what a user runs: interpreter start, the CLI's imports, reading the DID from the
            keystore, printing it), against `python -c "import click, pydantic"` with the same
            interpreter: what any click and pydantic program pays before doing anything. Both
            are started the same way and waited for; each sample is one process, ten samples of
            each system per repetition, alternating.

The profile is a temporary one with a fresh identity, made once by the set-up. On Linux it is
found the way a user's is, through platformdirs (XDG_DATA_HOME points at the temporary folder);
elsewhere through DIDLINK_HOME. Commands that make no connection load no transport
(tests/test_import_boundary.py asserts that, and whoami's peak RSS under 40 MB); this figure is
what that buys in time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.suite import Metric, Probe, Samples, System

COLD_START = Metric(
    "cold_start",
    "ms",
    'python -c "import click, pydantic"',
    "<= 2.0",
    "didlink whoami --json as a fresh process",
)
SAMPLES_PER_REPEAT = 10
"""Processes of each system per repetition, alternating: one takes 0.05-0.2 s, and a moment of
this shared machine's noise can double one, so the median rests on many."""
PASSPHRASE = "bench passphrase, not a secret"
BASELINE_CODE = "import click, pydantic"

_env: dict[str, str] | None = None
_folder: Path | None = None


def didlink_command() -> list[str]:
    """The installed `didlink` script beside this interpreter, else `python -m didlink`."""
    script = Path(sys.executable).with_name("didlink")
    if script.exists():
        return [str(script), "whoami", "--json"]
    return [sys.executable, "-m", "didlink", "whoami", "--json"]


def _setup(quick: bool) -> None:
    """A temporary profile with an identity, and the environment that names it."""
    global _env, _folder
    from identity.keys import IdentityKey
    from identity.keystore import KdfParams, create_keystore

    _folder = Path(tempfile.mkdtemp(prefix="didlink-bench-start-"))
    profile = _folder / "didlink"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}
    if sys.platform.startswith("linux"):  # platformdirs' user_data_dir honours XDG there
        env["XDG_DATA_HOME"] = str(_folder)
    else:
        env["DIDLINK_HOME"] = str(profile)
    profile.mkdir(mode=0o700)
    cheap = KdfParams(memory_cost=8, iterations=1, lanes=1)  # whoami never unlocks
    create_keystore(profile / "keystore.json", IdentityKey.generate(), PASSPHRASE, params=cheap)
    result = subprocess.run(didlink_command(), env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0 or '"did"' not in result.stdout:
        raise RuntimeError(f"didlink whoami failed in the bench profile: {result.stderr.strip()}")
    _env = env


def _teardown() -> None:
    global _env, _folder
    if _folder is not None:
        shutil.rmtree(_folder, ignore_errors=True)
    _env, _folder = None, None


def _measure(system: System, quick: bool) -> Samples:
    command = didlink_command() if system == "didlink" else [sys.executable, "-c", BASELINE_CODE]
    started = time.perf_counter()
    subprocess.run(
        command, env=_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
    )
    return {COLD_START.name: (time.perf_counter() - started) * 1000}


PROBE = Probe(
    "startup",
    (COLD_START,),
    _measure,
    _setup,
    _teardown,
    samples_per_repeat=SAMPLES_PER_REPEAT,
)
