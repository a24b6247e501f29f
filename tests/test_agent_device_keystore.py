"""`Agent.open` for a device-bound keystore (issue 30 part 3; didlink/agent.py, didlink/
device_token.py `device_secret`) on a real SoftHSM2 token: the PIN as a parameter (or
DIDLINK_PKCS11_PIN), the module as a parameter (or DIDLINK_PKCS11_MODULE), typed errors for a
missing token and a missing PIN. Each opening runs in a fresh interpreter (a PKCS#11 module is
initialised once per process). SoftHSM2 missing: skipped locally, a failure under CI=true.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_cli
from tests.support.softhsm import LABEL, PIN, SoftHsm

PASS = "correct horse battery staple"
TIMEOUT = 120.0

OPEN = """
import asyncio, json, sys
import didlink

async def main():
    home, passphrase, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    try:
        agent = await didlink.Agent.open(home, passphrase=passphrase, **options)
    except didlink.UserError as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
    except didlink.IdentityError as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
    async with agent:
        return {"did": agent.did}

print(json.dumps(asyncio.run(main())))
"""


@pytest.fixture
def hsm(tmp_path: Path) -> SoftHsm:
    token = SoftHsm(tmp_path / "softhsm")
    token.init_token()
    return token


@pytest.fixture
def bound(tmp_path: Path, hsm: SoftHsm) -> tuple[Path, str]:
    home = tmp_path / "profile"
    result = run_cli("init", "--device-bound", home=home, passphrase=PASS, env=hsm.env())
    assert result.returncode == 0, result.stderr
    return home, result.stdout.strip()


def _open(home: Path, env: dict[str, str], passphrase: str = PASS, **options: Any) -> Any:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}
    clean.pop("SOFTHSM2_CONF", None)
    result = subprocess.run(
        [sys.executable, "-c", OPEN, str(home), passphrase, json.dumps(options)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_agent_opens_a_device_bound_keystore_with_the_pin_given(
    bound: tuple[Path, str], hsm: SoftHsm
) -> None:
    home, did = bound
    conf = {"SOFTHSM2_CONF": str(hsm.conf)}
    # the PIN and the module as parameters, nothing in the environment but SoftHSM2's own conf
    assert _open(home, conf, token_pin=PIN, token_module=str(hsm.module)) == {"did": did}
    # ... or both from the environment, as the CLI takes them
    assert _open(home, hsm.env()) == {"did": did}


def test_agent_open_errors_are_typed_and_name_the_token(
    bound: tuple[Path, str], hsm: SoftHsm, tmp_path: Path
) -> None:
    home, _ = bound
    conf = {"SOFTHSM2_CONF": str(hsm.conf), "DIDLINK_PKCS11_MODULE": str(hsm.module)}
    no_pin = _open(home, conf)
    assert no_pin["error"] == "TokenPinNeeded" and LABEL in no_pin["message"]
    assert "DIDLINK_PKCS11_PIN" in no_pin["message"]
    wrong = _open(home, conf, token_pin="9999")
    assert (
        wrong["error"] == "UserError" and "PIN" in wrong["message"] and "wrong" in wrong["message"]
    )
    assert "9999" not in wrong["message"]
    # the token is not there: another machine's SoftHSM2 with another token, or no module
    other = SoftHsm(tmp_path / "other")
    other.init_token("someone-else")
    missing = _open(home, {**other.env(pin=PIN)}, token_pin=PIN)
    assert missing["error"] == "TokenMissing" and LABEL in missing["message"]
    no_module = _open(home, conf, token_pin=PIN, token_module=str(tmp_path / "missing.so"))
    assert no_module["error"] == "TokenMissing" and "missing.so" in no_module["message"]
    # the token and PIN are right but the passphrase is not
    wrong_pass = _open(home, conf, passphrase="not the passphrase", token_pin=PIN)
    assert wrong_pass["error"] == "WrongPassphrase"


def test_the_pin_is_ignored_for_a_passphrase_only_keystore(tmp_path: Path) -> None:
    home = tmp_path / "plain"
    result = run_cli("init", home=home, passphrase=PASS)
    assert result.returncode == 0, result.stderr
    opened = _open(home, {"DIDLINK_PKCS11_MODULE": "/nonexistent"}, token_pin="1234")
    assert opened == {"did": result.stdout.strip()}
