"""The long fuzzing runs (issue 7 §1): skipped unless DIDLINK_RELIABILITY=1 (`make reliability`).

- Hypothesis: tests/test_fuzz.py again, in a subprocess, with DIDLINK_FUZZ_EXAMPLES examples per
  test (default here 20000; `make test` runs 200).
- atheris (coverage-guided, libFuzzer): every parser of tests.support.hostile.TARGETS for
  DIDLINK_ATHERIS_RUNS inputs each (default 200000), seeded with the authentic inputs of
  tests/test_fuzz.py and the whole hostile corpus. Skipped if atheris is not installed.

Both pass only with zero unexpected exceptions.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.hostile import TARGETS

ROOT = Path(__file__).resolve().parents[2]
ENABLED = os.environ.get("DIDLINK_RELIABILITY") == "1"
HYPOTHESIS_EXAMPLES = os.environ.get("DIDLINK_FUZZ_EXAMPLES", "20000")
ATHERIS_RUNS = os.environ.get("DIDLINK_ATHERIS_RUNS", "200000")
LONG = 4 * 3600

pytestmark = pytest.mark.skipif(
    not ENABLED, reason="long run: set DIDLINK_RELIABILITY=1 (make reliability)"
)


@pytest.mark.timeout(LONG)
def test_hypothesis_fuzzing_with_a_large_budget() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzz.py"],
        cwd=ROOT,
        env={**os.environ, "DIDLINK_FUZZ_EXAMPLES": HYPOTHESIS_EXAMPLES},
        capture_output=True,
        text=True,
        timeout=LONG,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]


def _seed_folder(target: str, folder: Path) -> Path:
    from tests.test_corpus import case_input, load_cases
    from tests.test_fuzz import SEEDS

    folder.mkdir()
    cases = [case for case in load_cases(target) if "bug" not in case]  # known: xfail tests
    seeds = [SEEDS[target]] + [case_input(target, case) for case in cases]
    for number, seed in enumerate(seeds):
        if isinstance(seed, str):
            seed = seed.encode("utf-8", "surrogatepass")
        if isinstance(seed, bytes) and len(seed) <= 65536:
            (folder / f"seed-{number}").write_bytes(seed)
    return folder


@pytest.mark.timeout(LONG)
@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris not installed")
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_atheris_fuzzing(target: str, tmp_path: Path) -> None:
    seeds = _seed_folder(target, tmp_path / "seeds")
    work = tmp_path / "corpus"
    work.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.reliability.atheris_fuzz",
            target,
            f"-runs={ATHERIS_RUNS}",
            "-max_len=70000",
            "-rss_limit_mb=4096",
            f"-artifact_prefix={tmp_path}/",
            str(work),
            str(seeds),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=LONG,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-5000:]
