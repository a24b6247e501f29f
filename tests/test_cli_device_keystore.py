"""Device-bound keystore (issue 30 part 3) through the real CLI, on a real SoftHSM2 token.

`didlink init --device-bound`, `keystore bind`, `keystore unbind`, and every command that
unlocks, each run as a subprocess with the token's SOFTHSM2_CONF, module and PIN in its
environment (tests/support/softhsm.py). SoftHSM2 missing: skipped locally, a failure in CI.
"""

from __future__ import annotations

import base64
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from didlink.profile.folder import Profile
from identity.errors import DeviceBoundKeystore
from identity.keys import IdentityKey
from identity.keystore import load_keystore, unlock
from tests.support.cli import assert_user_error, run_cli
from tests.support.softhsm import LABEL, SoftHsm

PASS = "correct horse battery staple"
BACKUP_PASS = "backup passphrase for the tests"
PEER = IdentityKey(bytes([7]) * 32)


@pytest.fixture
def hsm(tmp_path: Path) -> SoftHsm:
    token = SoftHsm(tmp_path / "softhsm")
    token.init_token()
    return token


def cli(*args: str, home: Path, hsm: SoftHsm, **kwargs: Any) -> Any:
    env = {**hsm.env(), **kwargs.pop("env", {})}
    return run_cli(*args, home=home, env=env, **kwargs)


def bound_init(home: Path, hsm: SoftHsm) -> str:
    result = cli("init", "--device-bound", home=home, hsm=hsm)
    assert result.returncode == 0, result.stderr
    return str(result.stdout.strip())


def keystore_json(home: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((home / "keystore.json").read_bytes())
    return value


def didlink_objects(hsm: SoftHsm) -> list[dict[str, Any]]:
    """Every object on the token whose label starts with 'didlink ', with its attributes."""
    return list(
        hsm.inspect(
            """
from pkcs11 import Attribute, ObjectClass
from pkcs11.exceptions import AttributeSensitive
token = lib.get_token(token_label=LABEL)
result = []
with token.open(user_pin=PIN) as session:
    for item in session.get_objects():
        label = item[Attribute.LABEL]
        if not label.startswith("didlink "):
            continue
        entry = {"label": label, "class": int(item[Attribute.CLASS])}
        if item[Attribute.CLASS] == ObjectClass.PRIVATE_KEY:
            for name in ("SENSITIVE", "EXTRACTABLE", "NEVER_EXTRACTABLE", "ALWAYS_SENSITIVE",
                         "TOKEN", "PRIVATE", "DERIVE", "SIGN"):
                entry[name] = bool(item[getattr(Attribute, name)])
            try:
                item[Attribute.VALUE]
                entry["value_read"] = True
            except AttributeSensitive:
                entry["value_read"] = False
        result.append(entry)
""",
            LABEL=LABEL,
        )
    )


def test_init_device_bound_unlocks_with_the_token(home: Path, hsm: SoftHsm, tmp_path: Path) -> None:
    did = bound_init(home, hsm)
    stored = keystore_json(home)
    assert stored["version"] == 2
    assert stored["did"] == did
    assert stored["device"]["token_label"] == LABEL
    assert stored["device"]["module"] == hsm.module.name
    # whoami needs neither passphrase nor token
    whoami = run_cli("whoami", "--json", home=home, passphrase=None)
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout) == {"did": did, "name": None, "unlocked_until": None}
    # the passphrase alone does not open it (the library says why)
    with pytest.raises(DeviceBoundKeystore, match=LABEL):
        unlock(home / "keystore.json", PASS)
    # a command that unlocks works with token + PIN: the backup export is passphrase-only
    backup = tmp_path / "identity.backup"
    exported = cli(
        "backup", "export", str(backup), home=home, hsm=hsm,
        env={"DIDLINK_BACKUP_PASSPHRASE": BACKUP_PASS},
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert "does not need the PKCS#11 token" in exported.stderr
    # ... and restores on a machine without the token (the way out if it is lost)
    elsewhere = tmp_path / "elsewhere"
    restored = run_cli(
        "backup", "import", str(backup), home=elsewhere,
        env={"DIDLINK_BACKUP_PASSPHRASE": BACKUP_PASS, "DIDLINK_PKCS11_MODULE": "/nonexistent"},
    )  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.strip() == did
    assert unlock(elsewhere / "keystore.json", PASS).did == did
    assert keystore_json(elsewhere)["version"] == 1


def test_the_token_key_is_sensitive_and_not_extractable(home: Path, hsm: SoftHsm) -> None:
    bound_init(home, hsm)
    label = keystore_json(home)["device"]["key_label"]
    objects = didlink_objects(hsm)
    private = [o for o in objects if o["class"] == 3]  # CKO_PRIVATE_KEY
    assert len(private) == 1, objects
    key = private[0]
    assert key["label"] == label
    assert key["SENSITIVE"] and key["ALWAYS_SENSITIVE"] and key["TOKEN"] and key["PRIVATE"]
    assert not key["EXTRACTABLE"] and key["NEVER_EXTRACTABLE"]
    assert key["DERIVE"] and not key["SIGN"]
    assert key["value_read"] is False  # CKA_VALUE cannot be read


def test_a_copied_profile_does_not_open_without_the_token(
    home: Path, hsm: SoftHsm, tmp_path: Path
) -> None:
    bound_init(home, hsm)
    serial = keystore_json(home)["device"]["token_serial"]
    copy = tmp_path / "copied"
    shutil.copytree(home, copy)
    # another machine: its own SoftHSM2 with another, empty token
    other = SoftHsm(tmp_path / "other-softhsm")
    other.init_token("someone-else")
    result = cli("backup", "phrase", home=copy, hsm=other, stdin="n\n")
    assert_user_error(result, f"PKCS#11 token '{LABEL}'", serial, "insert it")
    # no token folder at all
    bare = SoftHsm(tmp_path / "nothing")
    result = cli("backup", "phrase", home=copy, hsm=bare, stdin="n\n")
    assert_user_error(result, f"PKCS#11 token '{LABEL}'", serial)
    # no module at all
    result = cli(
        "backup", "phrase", home=copy, hsm=hsm, stdin="n\n",
        env={"DIDLINK_PKCS11_MODULE": str(tmp_path / "missing.so")},
    )  # fmt: skip
    assert_user_error(result, f"PKCS#11 token '{LABEL}'", "DIDLINK_PKCS11_MODULE")
    # with the token, the copy opens (the token, not the folder, is what is needed)
    result = cli("backup", "phrase", home=copy, hsm=hsm, stdin="n\n")
    assert result.returncode == 1, result.stderr  # unlocked, then "n": nothing shown
    assert "Nothing shown" in result.stderr


def test_wrong_pin_and_no_pin(home: Path, hsm: SoftHsm) -> None:
    bound_init(home, hsm)
    result = cli("backup", "phrase", home=home, hsm=hsm, env={"DIDLINK_PKCS11_PIN": "9999"})
    assert_user_error(result, "PIN", LABEL, "wrong")
    env = {k: v for k, v in hsm.env().items() if k != "DIDLINK_PKCS11_PIN"}
    result = run_cli("backup", "phrase", home=home, env=env, stdin="")
    assert_user_error(result, "DIDLINK_PKCS11_PIN")
    result = cli("backup", "phrase", home=home, hsm=hsm, passphrase="wrong", stdin="n\n")
    assert_user_error(result, "error: wrongPassphrase:")


def test_bind_then_unbind_keeps_the_identity_and_contacts(home: Path, hsm: SoftHsm) -> None:
    init = run_cli("init", home=home)
    assert init.returncode == 0, init.stderr
    did = init.stdout.strip()
    with Profile(home).open_store() as store:
        store.add_contact(PEER.did, name="Bob", now=datetime(2026, 1, 1, tzinfo=UTC))
    bound = cli("keystore", "bind", home=home, hsm=hsm)
    assert bound.returncode == 0, bound.stderr
    assert keystore_json(home)["version"] == 2
    assert "backup" in bound.stderr  # says how to survive a lost token
    assert len(didlink_objects(hsm)) == 2  # the key pair
    again = cli("keystore", "bind", home=home, hsm=hsm)
    assert_user_error(again, "already bound", LABEL)
    # passwd keeps the binding
    changed = cli("passwd", home=home, hsm=hsm, env={"DIDLINK_NEW_PASSPHRASE": "new one"})
    assert changed.returncode == 0, changed.stderr
    assert keystore_json(home)["version"] == 2
    unbound = cli("keystore", "unbind", home=home, hsm=hsm, passphrase="new one")
    assert unbound.returncode == 0, unbound.stderr
    assert keystore_json(home)["version"] == 1
    assert unlock(home / "keystore.json", "new one").did == did
    assert didlink_objects(hsm) == []  # deleted from the token once the file was written
    contacts = run_cli("contacts", "--json", home=home)
    assert contacts.returncode == 0, contacts.stderr
    assert PEER.did in contacts.stdout
    assert_user_error(cli("keystore", "unbind", home=home, hsm=hsm), "not bound")


def test_unbind_needs_the_token(home: Path, hsm: SoftHsm, tmp_path: Path) -> None:
    bound_init(home, hsm)
    before = (home / "keystore.json").read_bytes()
    (tmp_path / "empty").mkdir()
    result = cli("keystore", "unbind", home=home, hsm=SoftHsm(tmp_path / "empty"))
    assert_user_error(result, f"PKCS#11 token '{LABEL}'")
    assert (home / "keystore.json").read_bytes() == before


def _tampered(home: Path, field: str, value: str) -> None:
    stored = keystore_json(home)
    stored["device"][field] = value
    (home / "keystore.json").write_text(json.dumps(stored))


def _other_point() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return base64.b64encode(point).decode()


@pytest.mark.parametrize(
    ("field", "value", "needles"),
    [
        ("ephemeral_key", "other point", ("error: wrongPassphrase:", "altered")),
        ("ephemeral_key", base64.b64encode(b"\x04" + bytes(64)).decode(), ("damagedKeystore",)),
        ("ephemeral_key", "AAAA", ("error: damagedKeystore:", "ephemeral_key")),
        ("key_id", base64.b64encode(bytes(16)).decode(), ("not on the PKCS#11 token",)),
        ("key_label", "didlink something else", ("error: wrongPassphrase:",)),
        ("module", "libother.so", ("error: wrongPassphrase:",)),
        ("token_label", "another-token", ("PKCS#11 token 'another-token'", "insert it")),
        ("token_serial", "0000", ("serial 0000",)),
        ("token_label", "bad\u001b[31m", ("error: damagedKeystore:",)),
        ("scheme", "pkcs11-aes", ("error: damagedKeystore:",)),
    ],
)
def test_a_tampered_binding_is_refused(
    home: Path, hsm: SoftHsm, field: str, value: str, needles: tuple[str, ...]
) -> None:
    did = bound_init(home, hsm)
    _tampered(home, field, _other_point() if value == "other point" else value)
    result = cli("backup", "phrase", home=home, hsm=hsm, stdin="y\n")
    assert_user_error(result, *needles)
    assert did not in result.stdout
    # nothing was deleted from the token by a refused unlock
    assert len(didlink_objects(hsm)) == 2


def test_choosing_the_token(home: Path, hsm: SoftHsm) -> None:
    hsm.init_token("second-token")
    result = cli("init", "--device-bound", home=home, hsm=hsm)
    assert_user_error(result, "several PKCS#11 tokens", "--token")
    assert not (home / "keystore.json").exists()
    missing = cli("init", "--device-bound", "--token", "nope", home=home, hsm=hsm)
    assert_user_error(missing, "no PKCS#11 token labelled")
    chosen = cli("init", "--device-bound", "--token", "second-token", home=home, hsm=hsm)
    assert chosen.returncode == 0, chosen.stderr
    assert load_keystore(home / "keystore.json").device.token_label == "second-token"  # type: ignore[union-attr]
    assert_user_error(run_cli("init", "--token", "x", home=home / "new"), "--device-bound")


def test_init_device_bound_with_a_wrong_pin_writes_nothing(home: Path, hsm: SoftHsm) -> None:
    result = cli("init", "--device-bound", home=home, hsm=hsm, env={"DIDLINK_PKCS11_PIN": "0"})
    assert_user_error(result, "PIN", "wrong")
    assert not (home / "keystore.json").exists()
    assert didlink_objects(hsm) == []


TTY_PASS = "a tty secret, strong enough for zxcvbn"
NEW_TTY_PASS = "another tty secret, strong enough too"


def test_pin_is_asked_hidden_on_a_terminal_and_the_module_is_found(
    home: Path, hsm: SoftHsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No DIDLINK_* at all: passphrase and PIN typed on a real pty, the SoftHSM2 module found
    among the known paths, SOFTHSM2_CONF honoured."""
    from tests.test_cli_profile import run_on_tty

    monkeypatch.setenv("SOFTHSM2_CONF", str(hsm.conf))
    output = run_on_tty(["init", "--device-bound"], home, [TTY_PASS, TTY_PASS, "1234"])
    assert f"PIN of the PKCS#11 token '{LABEL}'" in output
    assert TTY_PASS not in output and "1234" not in output  # hidden input
    assert keystore_json(home)["version"] == 2
    did = keystore_json(home)["did"]
    output = run_on_tty(["passwd"], home, [TTY_PASS, "1234", NEW_TTY_PASS, NEW_TTY_PASS])
    assert "Passphrase changed" in output, output
    assert keystore_json(home)["did"] == did
    assert keystore_json(home)["version"] == 2
