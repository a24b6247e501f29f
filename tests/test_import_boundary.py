"""Fast start (issue 28, point 4): the commands that make no connection load no transport.

`--help`, `whoami`, `contacts`, `inspect`, `resolve`, `safety-number`, `lock` and `ice`
(listing the ICE servers) must not import aiortc, aioice, av, our transport package,
didlink.session.live or didlink.session.node: those take most of half a second and most of 100 MB
to load, and these commands never connect. Nor python-pkcs11 (didlink.custody.device_token): only
the commands that talk to a PKCS#11 token load it. Each command runs here in a fresh interpreter
that calls the click entry point, as `python -m didlink` does, and then writes the names of every
module it loaded and its peak RSS. Time is not asserted (this machine is shared and noisy; `make
bench` measures it as a ratio, bench/metrics/startup.py); memory is steady enough to assert: `whoami
--json` stays under 40 MB of peak RSS.

The peak is the child's own VmHWM (/proc/self/status), not the parent's `ru_maxrss` for the
child: Linux carries the pre-exec high-water mark of the forked copy (here, pytest's 75 MB)
into the child's `ru_maxrss`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from didlink.profile.folder import Profile
from identity.invitation import Invitation, InvitationKind
from identity.keys import IdentityKey
from identity.token import encode_token
from tests.support.cli import run_cli

FORBIDDEN = (
    "aiortc",
    "aioice",
    "av",
    "transport",
    "didlink.session.live",
    "didlink.session.node",
    "pkcs11",
    "didlink.custody.device_token",
)
"""Top-level names whose modules (and submodules) these commands must not load."""
MAX_RSS_MB = 40.0
PEER = IdentityKey(bytes([7]) * 32)

# Runs the CLI as `python -m didlink ARGS` does, then lists sys.modules and the peak RSS (KiB)
# whatever the exit.
_RUNNER = """
import json, sys
from didlink.cli.main import main
out, args = sys.argv[1], sys.argv[2:]
try:
    main(args=args, prog_name="didlink")
except SystemExit as exit_:
    code = exit_.code
else:
    code = 0
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
with open(out, "w") as handle:
    json.dump({"code": code, "modules": sorted(sys.modules), "peak_rss_kib": peak}, handle)
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A profile with an identity and one contact, "Bob"."""
    path = tmp_path_factory.mktemp("boundary") / "profile"
    result = run_cli("init", home=path)
    assert result.returncode == 0, result.stderr
    with Profile(path).open_store() as store:
        store.add_contact(PEER.did, name="Bob", now=datetime(2026, 1, 1, tzinfo=UTC))
    return path


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}
    env["DIDLINK_HOME"] = str(home)
    return env


def _run(home: Path, tmp_path: Path, *args: str) -> dict[str, Any]:
    """`didlink ARGS` in a fresh interpreter: its exit code, modules loaded and peak RSS."""
    out = tmp_path / "modules.json"
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(out), *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(out.read_text())
    report["stdout"] = result.stdout
    return report


def _loaded(home: Path, tmp_path: Path, *args: str) -> list[str]:
    """The modules loaded by `didlink ARGS` (which must succeed)."""
    report = _run(home, tmp_path, *args)
    assert report["code"] in (0, None), report
    modules: list[str] = report["modules"]
    return modules


def _forbidden(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]


def _live_token() -> str:
    """A live invitation (its `connect` bytes stand in for a transport offer: inspect only
    counts them)."""
    invitation = Invitation.create(
        PEER,
        now=int(time.time()),
        lifetime=900,
        label="Bob",
        kind=InvitationKind.INVITE,
        connect=bytes(98),
    )
    return encode_token(invitation)


def _card_token() -> str:
    return encode_token(Invitation.create(PEER, now=int(time.time()), lifetime=86400))


COMMANDS = {
    "help": lambda: ["--help"],
    "whoami": lambda: ["whoami", "--json"],
    "whoami-qr": lambda: ["whoami"],
    "contacts": lambda: ["contacts", "--json"],
    "contacts-text": lambda: ["contacts"],
    "inspect-live": lambda: ["inspect", _live_token()],
    "inspect-card": lambda: ["inspect", _card_token(), "--json"],
    "resolve": lambda: ["resolve", PEER.did],
    "resolve-json": lambda: ["resolve", PEER.did, "--json"],
    "safety-number": lambda: ["safety-number", "Bob", "--json"],
    "safety-number-qr": lambda: ["safety-number", "Bob"],
    "lock": lambda: ["lock"],
    "unlock-help": lambda: ["unlock", "--help"],
    "ice": lambda: ["ice", "--json"],
    "ice-text": lambda: ["ice"],
}


@pytest.mark.parametrize("name", COMMANDS)
def test_commands_without_a_connection_load_no_transport(
    name: str, home: Path, tmp_path: Path
) -> None:
    modules = _loaded(home, tmp_path, *COMMANDS[name]())
    assert "didlink.cli.main" in modules  # the runner really ran the CLI
    assert _forbidden(modules) == []


def test_whoami_reads_the_did_without_building_pydantic_models(home: Path, tmp_path: Path) -> None:
    """The first pydantic model costs more than the rest of `whoami` (about 70 ms): the DID is
    read by identity/keystore_file.py, not through the keystore's models."""
    modules = _loaded(home, tmp_path, "whoami", "--json")
    assert "identity.keystore_file" in modules
    assert [m for m in modules if m in ("identity.keystore", "pydantic.main")] == []


def test_whoami_loads_no_asyncio(home: Path, tmp_path: Path) -> None:
    """asyncio costs about 20 ms to import: the commands that run an event loop (`send`,
    `receive`, the live ones) import it when they run, not when the CLI loads them."""
    modules = _loaded(home, tmp_path, "whoami", "--json")
    assert [m for m in modules if m == "asyncio" or m.startswith("asyncio.")] == []


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_whoami_json_stays_under_40_mb(home: Path, tmp_path: Path) -> None:
    """Peak RSS of the whole process, interpreter included."""
    report = _run(home, tmp_path, "whoami", "--json")
    assert report["code"] in (0, None), report
    assert json.loads(report["stdout"]) == {
        "did": Profile(home).did(),
        "name": None,
        "unlocked_until": None,
    }
    peak_mb = report["peak_rss_kib"] / 1024
    assert peak_mb < MAX_RSS_MB, f"whoami --json peaked at {peak_mb:.1f} MB"


def test_a_connecting_command_still_loads_the_transport(home: Path, tmp_path: Path) -> None:
    """The runner sees what a command loads: `chat` with an unknown contact gets as far as
    loading the live flow (then refuses the contact), so the checks above are not vacuous."""
    report = _run(home, tmp_path, "chat", "Nobody")
    assert report["code"] == 2  # no such contact: a user error
    assert "didlink.session.live" in report["modules"]
    assert "aiortc" in report["modules"]
    assert report["peak_rss_kib"] / 1024 > MAX_RSS_MB


def test_whoami_of_a_device_bound_profile_loads_no_models_nor_pkcs11(tmp_path: Path) -> None:
    """A device-bound keystore (version 2) is read the quick way too, with no token needed."""
    from tests.test_device_keystore import bound

    model, _ = bound()
    profile = tmp_path / "bound"
    profile.mkdir(mode=0o700)
    (profile / "keystore.json").write_bytes(model.to_bytes())
    report = _run(profile, tmp_path, "whoami", "--json")
    assert json.loads(report["stdout"]) == {"did": model.did, "name": None, "unlocked_until": None}
    modules: list[str] = report["modules"]
    assert [m for m in modules if m in ("identity.keystore", "pydantic.main")] == []
    assert _forbidden(modules) == []
