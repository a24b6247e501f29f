"""A real SoftHSM2 token for the tests, in a temp folder of the test's own.

`SoftHsm(tmp_path)` writes a SOFTHSM2_CONF whose token folder is inside `tmp_path` and
initialises tokens in it with `softhsm2-util --init-token --free` (the real tool, not a mock).
`env()` gives what the `didlink` subprocess needs: SOFTHSM2_CONF, DIDLINK_PKCS11_MODULE and
DIDLINK_PKCS11_PIN. SoftHSM2 missing skips the test locally and fails it under CI=true
(tests/support/require.py; `.ci/run` installs softhsm2).

`inspect()` runs a short python-pkcs11 script in a fresh interpreter under this SOFTHSM2_CONF
(a PKCS#11 module is initialised once per process, so the test process never loads it itself).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from didlink.custody.device_token import KNOWN_MODULES
from tests.support.require import require

SO_PIN = "12345678"
PIN = "1234"
LABEL = "didlink-test"
TIMEOUT = 60.0


def find_module() -> Path | None:
    for path in KNOWN_MODULES:
        if "softhsm" in path and Path(path).is_file():
            return Path(path)
    return None


@dataclass
class SoftHsm:
    folder: Path
    module: Path = field(init=False)

    def __post_init__(self) -> None:
        module = find_module()
        require(
            module is not None and shutil.which("softhsm2-util") is not None,
            "SoftHSM2 (softhsm2-util, libsofthsm2.so) is not installed",
        )
        assert module is not None
        self.module = module
        (self.folder / "tokens").mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f"directories.tokendir = {self.folder / 'tokens'}\n"
            "objectstore.backend = file\nlog.level = ERROR\n",
            encoding="utf-8",
        )

    @property
    def conf(self) -> Path:
        return self.folder / "softhsm2.conf"

    def init_token(self, label: str = LABEL, *, pin: str = PIN) -> None:
        result = subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", SO_PIN,
             "--pin", pin],
            env={**os.environ, "SOFTHSM2_CONF": str(self.conf)},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr + result.stdout

    def env(self, *, pin: str = PIN) -> dict[str, str]:
        return {
            "SOFTHSM2_CONF": str(self.conf),
            "DIDLINK_PKCS11_MODULE": str(self.module),
            "DIDLINK_PKCS11_PIN": pin,
        }

    def inspect(self, script: str, **values: Any) -> Any:
        """Run `script` (python-pkcs11, `lib` loaded, `values` as globals, `PIN`) in a fresh
        interpreter under this token folder; it sets `result`, returned here from JSON."""
        runner = (
            "import json, sys, pkcs11\n"
            f"lib = pkcs11.lib({str(self.module)!r})\n"
            "globals().update(json.loads(sys.argv[1]))\n"
            f"PIN = {PIN!r}\n" + script + "\nprint(json.dumps(result))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", runner, json.dumps(values)],
            env={**os.environ, "SOFTHSM2_CONF": str(self.conf)},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])
