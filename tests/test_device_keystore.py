"""The device-bound keystore's format and crypto (identity/keystore.py, version 2), no token:
the device secret is computed here in software, as the token would (ECDH P-256)."""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity import keystore_file
from identity.errors import DamagedKeystore, DeviceBoundKeystore, IdentityError, WrongPassphrase
from identity.keys import IdentityKey
from identity.keystore import (
    BoundKeystoreFile,
    KdfParams,
    change_passphrase,
    create_keystore,
    device_exchange,
    new_device_binding,
    open_keystore,
    parse_keystore,
    seal_keystore,
    unlock,
    unlock_and_strengthen,
)

KEY = IdentityKey(b"\x01" * 32)
PASS = "correct horse battery staple"
FAST = KdfParams(memory_cost=8, iterations=1, lanes=1)
TOKEN_KEY = ec.generate_private_key(ec.SECP256R1())


def _point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def bound() -> tuple[BoundKeystoreFile, bytes]:
    ephemeral, secret = device_exchange(_point(TOKEN_KEY))
    # what the token computes from the file alone: ECDH(token key, ephemeral public key)
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ephemeral)
    assert TOKEN_KEY.exchange(ec.ECDH(), peer) == secret
    binding = new_device_binding(
        module="libsofthsm2.so",
        token_label="didlink",
        token_serial="0123456789abcdef",
        key_label="didlink " + KEY.did[-16:],
        key_id=bytes(range(16)),
        ephemeral_point=ephemeral,
    )
    model = seal_keystore(KEY, PASS, params=FAST, device=binding, device_secret=secret)
    assert isinstance(model, BoundKeystoreFile)
    return model, secret


def test_opens_with_passphrase_and_device_secret_only() -> None:
    model, secret = bound()
    assert open_keystore(model, PASS, device_secret=secret).did == KEY.did
    with pytest.raises(DeviceBoundKeystore, match="didlink"):
        open_keystore(model, PASS)
    with pytest.raises(WrongPassphrase):
        open_keystore(model, "wrong", device_secret=secret)
    with pytest.raises(WrongPassphrase):
        open_keystore(model, PASS, device_secret=bytes(32))


def test_round_trip_through_the_file(tmp_path: Path) -> None:
    model, secret = bound()
    path = tmp_path / "keystore.json"
    path.write_bytes(model.to_bytes())
    assert parse_keystore(path.read_bytes()) == model
    assert keystore_file.read_did(path) == KEY.did  # no passphrase, no token
    assert unlock(path, PASS, device_secret=secret).did == KEY.did


def test_weak_parameters_are_strengthened_and_stay_bound(tmp_path: Path) -> None:
    model, secret = bound()
    path = tmp_path / "keystore.json"
    path.write_bytes(model.to_bytes())
    key, params = unlock_and_strengthen(path, PASS, device_secret=secret)
    assert key.did == KEY.did and params is not None
    again = parse_keystore(path.read_bytes())
    assert isinstance(again, BoundKeystoreFile) and again.device == model.device
    with pytest.raises(DeviceBoundKeystore):
        unlock(path, PASS)


def test_passphrase_change_keeps_the_binding(tmp_path: Path) -> None:
    model, secret = bound()
    path = tmp_path / "keystore.json"
    path.write_bytes(model.to_bytes())
    change_passphrase(path, PASS, "new", params=FAST, device_secret=secret)
    assert unlock(path, "new", device_secret=secret).did == KEY.did
    with pytest.raises(DeviceBoundKeystore):
        unlock(path, "new")


def test_a_binding_without_its_secret_is_refused() -> None:
    model, _ = bound()
    with pytest.raises(ValueError, match="together"):
        seal_keystore(KEY, PASS, params=FAST, device=model.device)
    with pytest.raises(ValueError, match="32 bytes"):
        seal_keystore(KEY, PASS, params=FAST, device=model.device, device_secret=b"short")


def _document() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(bound()[0].to_bytes())
    return value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("key_id", "AAAA"),
        ("key_id", 16),
        ("ephemeral_key", "AAAA"),
        ("ephemeral_key", "not base64!"),
        ("token_label", ""),
        ("token_label", "x" * 33),
        ("token_label", "bad\nlabel"),
        ("token_serial", "é"),
        ("module", "m" * 65),
        ("key_label", None),
        ("scheme", "pkcs11-aes"),
        ("extra", "field"),
    ],
)
def test_damaged_bindings(field: str, value: Any) -> None:
    document = _document()
    document["device"][field] = value
    with pytest.raises(DamagedKeystore):
        parse_keystore(json.dumps(document).encode())


def test_no_device_object_or_one_in_version_1_is_damaged() -> None:
    document = _document()
    del document["device"]
    with pytest.raises(DamagedKeystore):
        parse_keystore(json.dumps(document).encode())
    document = _document()
    document["version"] = 1
    with pytest.raises(DamagedKeystore):
        parse_keystore(json.dumps(document).encode())


def test_a_point_off_the_curve_is_damaged_before_any_token_sees_it() -> None:
    model, _ = bound()
    document = json.loads(model.to_bytes())
    off_curve = base64.b64encode(b"\x04" + bytes(64)).decode()  # (0, 0) is not on P-256
    document["device"]["ephemeral_key"] = off_curve
    parsed = parse_keystore(json.dumps(document).encode())
    assert isinstance(parsed, BoundKeystoreFile)
    with pytest.raises(DamagedKeystore, match="P-256"):
        parsed.device.ephemeral_point()


@pytest.mark.parametrize(
    "field", ["module", "token_label", "token_serial", "key_label", "key_id", "ephemeral_key"]
)
def test_every_binding_field_is_bound_to_the_ciphertext(field: str) -> None:
    """Changing any field of the binding (to another valid value) fails like a wrong secret."""
    model, secret = bound()
    document = json.loads(model.to_bytes())
    old = document["device"][field]
    if field == "ephemeral_key":
        other = _point(ec.generate_private_key(ec.SECP256R1()))
        document["device"][field] = base64.b64encode(other).decode()
    elif field == "key_id":
        document["device"][field] = "AAAAAAAAAAAAAAAAAAAAAA=="
    else:
        document["device"][field] = old[:-1] + ("x" if old[-1] != "x" else "y")
    changed = parse_keystore(json.dumps(document).encode())
    with pytest.raises(WrongPassphrase):
        open_keystore(changed, PASS, device_secret=secret)


def test_create_writes_a_bound_file(tmp_path: Path) -> None:
    model, secret = bound()
    path = tmp_path / "keystore.json"
    create_keystore(path, KEY, PASS, params=FAST, device=model.device, device_secret=secret)
    assert json.loads(path.read_bytes())["version"] == 2
    assert unlock(path, PASS, device_secret=secret).did == KEY.did


# --- the quick reader (keystore_file.read_did) agrees with the models on version 2 -------------

_DEVICE = (
    "scheme",
    "module",
    "token_label",
    "token_serial",
    "key_label",
    "key_id",
    "ephemeral_key",
)
_EDGES = (
    "", "x", "x" * 16, "x" * 17, "x" * 32, "x" * 33, "x" * 64, "x" * 65, " ", "~", "\x7f", "\x1f",
    "é", "\ud800", "a\n", "AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAAA=", "pkcs11-ecdh-p256",
    base64.b64encode(b"\x04" + bytes(64)).decode(), 0, 1, True, None, [], {},
)  # fmt: skip
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=70),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=5,
)


def _outcome(call: Any) -> tuple[str, str]:
    try:
        return ("ok", call())
    except IdentityError as exc:
        return (type(exc).__name__, str(exc))


def _both_ways(path: Path, value: Any) -> None:
    data = json.dumps(value).encode("utf-8")
    path.write_bytes(data)
    assert _outcome(lambda: keystore_file.read_did(path)) == _outcome(
        lambda: parse_keystore(data).did
    )
    with contextlib.suppress(DamagedKeystore):
        raw = keystore_file.json_object(data)
        if keystore_file.is_plain(raw):  # never more lenient than the models
            BoundKeystoreFile.model_validate(raw)


def test_a_bound_keystore_is_plain() -> None:
    assert keystore_file.is_plain(_document())


@pytest.mark.parametrize("edge", range(len(_EDGES)))
@pytest.mark.parametrize("name", _DEVICE)
def test_the_quick_reader_agrees_on_edge_values(tmp_path: Path, name: str, edge: int) -> None:
    value = _document()
    value["device"][name] = _EDGES[edge]
    _both_ways(tmp_path / "keystore.json", value)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from([*_DEVICE, "extra"]), drop=st.booleans(), new=_JSON)
def test_the_quick_reader_agrees_on_any_device(
    tmp_path: Path, name: str, drop: bool, new: Any
) -> None:
    value = _document()
    if drop:
        value["device"].pop(name, None)
    else:
        value["device"][name] = new
    _both_ways(tmp_path / "keystore.json", value)
