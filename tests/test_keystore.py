"""The encrypted keystore (specs/keystore.md): format, KDF, AEAD, validation, crash safety.

Most tests use tiny Argon2 parameters (`FAST`) so that the many-case tests stay quick; one test
uses the defaults. The format is cross-checked against libsodium (through PyNaCl), an
implementation of Argon2id and AES-256-GCM independent of pyca/cryptography.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import unicodedata
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.pwhash
import pytest
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity import keystore, keystore_file
from identity.atomic_file import write_atomic
from identity.errors import (
    DamagedKeystore,
    IdentityError,
    IdentityExists,
    NoIdentity,
    WrongPassphrase,
)
from identity.keys import IdentityKey
from identity.keystore import (
    DEFAULT_KDF,
    KdfParams,
    change_passphrase,
    create_keystore,
    parse_keystore,
    read_did,
    seal_keystore,
    unlock,
)
from identity.keystore_file import MAX_MEMORY_KIB

FAST = KdfParams(memory_cost=64, iterations=1, lanes=1)
PASS = "correct horse battery staple"
SEED = bytes(range(32))
KEY = IdentityKey(SEED)
REPO = Path(__file__).resolve().parent.parent


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A keystore (fast parameters) holding KEY under PASS."""
    target = tmp_path / "keystore.json"
    create_keystore(target, KEY, PASS, params=FAST)
    return target


def fields(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_bytes())
    return value


def write_fields(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value), encoding="utf-8")


# --- the Argon2id primitive itself ----------------------------------------------------------


@pytest.mark.vectors
def test_argon2id_rfc9106_vector() -> None:
    """RFC 9106 §5.3 Argon2id test vector, through the API the keystore uses."""
    kdf = Argon2id(
        salt=b"\x02" * 16,
        length=32,
        iterations=3,
        lanes=4,
        memory_cost=32,
        ad=b"\x04" * 12,
        secret=b"\x03" * 8,
    )
    expected = "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
    assert kdf.derive(b"\x01" * 32).hex() == expected


# --- round trips and the independent implementation ----------------------------------------


def test_defaults_round_trip_and_timing(tmp_path: Path) -> None:
    """The default parameters (64 MiB, t=3, p=1) are what is written, and unlock works."""
    target = tmp_path / "keystore.json"
    key = IdentityKey.generate()
    create_keystore(target, key, PASS)
    kdf = fields(target)["kdf"]
    assert (kdf["memory_cost"], kdf["iterations"], kdf["lanes"]) == (65536, 3, 1)
    assert KdfParams(memory_cost=65536, iterations=3, lanes=1) == DEFAULT_KDF
    started = time.perf_counter()
    assert unlock(target, PASS) == key
    elapsed = time.perf_counter() - started
    print(f"unlock with default Argon2id parameters: {elapsed:.3f} s")
    assert read_did(target) == key.did


def test_file_layout(path: Path) -> None:
    raw = path.read_bytes()
    assert not raw.endswith(b"\n")
    value = json.loads(raw)
    assert list(value) == ["version", "did", "kdf", "cipher", "nonce", "ciphertext"]
    assert value["version"] == 1
    assert value["did"] == KEY.did
    assert value["cipher"] == "aes-256-gcm"
    assert list(value["kdf"]) == ["algorithm", "salt", "memory_cost", "iterations", "lanes"]
    assert value["kdf"]["algorithm"] == "argon2id"
    assert len(unb64(value["kdf"]["salt"])) == 16
    assert len(unb64(value["nonce"])) == 12
    assert len(unb64(value["ciphertext"])) == 48
    assert SEED not in raw and b64(SEED).encode() not in raw


def libsodium_key(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    """Argon2id (lanes = 1) as libsodium computes it; memlimit is in bytes there."""
    assert params.lanes == 1
    return bytes(
        nacl.pwhash.argon2id.kdf(
            32,
            unicodedata.normalize("NFC", passphrase).encode(),
            salt,
            opslimit=params.iterations,
            memlimit=params.memory_cost * 1024,
        )
    )


AD_PREFIX = b"didlink keystore v1\x00"


def test_libsodium_opens_our_file(tmp_path: Path) -> None:
    """Decrypting our file with libsodium (specs/keystore.md recipe) gives back the seed."""
    params = KdfParams(memory_cost=8192, iterations=2, lanes=1)
    target = tmp_path / "keystore.json"
    create_keystore(target, KEY, PASS, params=params)
    value = fields(target)
    key = libsodium_key(PASS, unb64(value["kdf"]["salt"]), params)
    seed = nacl.bindings.crypto_aead_aes256gcm_decrypt(
        unb64(value["ciphertext"]), AD_PREFIX + KEY.did.encode(), unb64(value["nonce"]), key
    )
    assert seed == SEED


def test_we_open_a_libsodium_file(tmp_path: Path) -> None:
    """A file built by hand with libsodium, following the spec, unlocks with our code."""
    params = KdfParams(memory_cost=8192, iterations=2, lanes=1)
    salt, nonce = b"S" * 16, b"N" * 12
    other = IdentityKey(b"\x42" * 32)
    key = libsodium_key("pässword", salt, params)
    sealed = nacl.bindings.crypto_aead_aes256gcm_encrypt(
        other.seed, AD_PREFIX + other.did.encode(), nonce, key
    )
    document = {
        "version": 1,
        "did": other.did,
        "kdf": {
            "algorithm": "argon2id",
            "salt": b64(salt),
            "memory_cost": 8192,
            "iterations": 2,
            "lanes": 1,
        },
        "cipher": "aes-256-gcm",
        "nonce": b64(nonce),
        "ciphertext": b64(sealed),
    }
    target = tmp_path / "keystore.json"
    target.write_text(json.dumps(document, indent=2) + "\n")  # any whitespace is fine
    assert unlock(target, "pässword") == other
    # the same passphrase typed in decomposed form (NFD) gives the same key
    assert unlock(target, unicodedata.normalize("NFD", "pässword")) == other
    # and sealing with the same salt and nonce reproduces the libsodium ciphertext
    model = seal_keystore(other, "pässword", params=params, salt=salt, nonce=nonce)
    assert model.ciphertext == document["ciphertext"]


# --- errors ---------------------------------------------------------------------------------


def test_wrong_passphrase(path: Path) -> None:
    with pytest.raises(WrongPassphrase) as info:
        unlock(path, PASS + "!")
    assert info.value.code == "wrongPassphrase"


def test_missing_file_is_no_identity(tmp_path: Path) -> None:
    with pytest.raises(NoIdentity):
        read_did(tmp_path / "keystore.json")
    with pytest.raises(NoIdentity):
        unlock(tmp_path / "keystore.json", PASS)


def test_directory_is_damaged(tmp_path: Path) -> None:
    (tmp_path / "keystore.json").mkdir()
    with pytest.raises(DamagedKeystore):
        read_did(tmp_path / "keystore.json")


def test_huge_file_is_damaged(tmp_path: Path) -> None:
    target = tmp_path / "keystore.json"
    target.write_bytes(b" " * 100_000)
    with pytest.raises(DamagedKeystore, match="too large"):
        read_did(target)


def test_swapped_did_fails_like_a_wrong_passphrase(path: Path) -> None:
    """The DID is associated data: another valid DID in the file does not open."""
    value = fields(path)
    value["did"] = IdentityKey(b"\x07" * 32).did
    write_fields(path, value)
    assert read_did(path) == value["did"]  # still parses...
    with pytest.raises(WrongPassphrase):  # ...but never opens
        unlock(path, PASS)


def test_changed_parameters_fail(path: Path) -> None:
    value = fields(path)
    value["kdf"]["memory_cost"] = 128
    write_fields(path, value)
    with pytest.raises(WrongPassphrase):
        unlock(path, PASS)


def test_every_truncation_is_damaged(path: Path) -> None:
    """Every prefix of a real file (0 .. len-1 bytes) is refused as damaged."""
    data = path.read_bytes()
    for length in range(len(data)):
        path.write_bytes(data[:length])
        with pytest.raises(DamagedKeystore):
            unlock(path, PASS)
    path.write_bytes(data)
    assert unlock(path, PASS) == KEY


def test_every_flipped_byte_fails_cleanly(path: Path) -> None:
    """Flipping one bit anywhere: damaged or wrong passphrase, never the key, never a crash."""
    data = path.read_bytes()
    outcomes: set[str] = set()
    for index in range(len(data)):
        for bit in (0x01, 0x20):
            changed = bytearray(data)
            changed[index] ^= bit
            path.write_bytes(bytes(changed))
            with pytest.raises((DamagedKeystore, WrongPassphrase)) as info:
                unlock(path, PASS)
            outcomes.add(type(info.value).__name__)
    assert outcomes == {"DamagedKeystore", "WrongPassphrase"}


def good_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(seal_keystore(KEY, PASS, params=FAST).to_bytes())
    return document


def mutate(change: str) -> bytes:
    """A document with one field changed (dotted path = JSON value, or path!del to remove)."""
    document = good_document()
    where, _, value = change.partition("=")
    target = document
    keys = where.removesuffix("!del").split(".")
    for key in keys[:-1]:
        target = target[key]
    if where.endswith("!del"):
        del target[keys[-1]]
    else:
        target[keys[-1]] = json.loads(value)
    return json.dumps(document).encode()


DAMAGED = {
    "empty": b"",
    "not json": b"not json",
    "not utf-8": b'{"version":1,"did":"\xff"}',
    "array": b"[1, 2]",
    "null": b"null",
    "huge int": b'{"version":1,"did":' + b"9" * 6000 + b"}",
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "version 2": mutate("version=2"),
    "version true": mutate("version=true"),
    "version 1.0": mutate("version=1.0"),
    "version string": mutate('version="1"'),
    "no version": mutate("version!del"),
    "no did": mutate("did!del"),
    "no kdf": mutate("kdf!del"),
    "no nonce": mutate("nonce!del"),
    "no ciphertext": mutate("ciphertext!del"),
    "no cipher": mutate("cipher!del"),
    "extra field": mutate('extra="x"'),
    "extra kdf field": mutate("kdf.extra=1"),
    "other cipher": mutate('cipher="chacha20-poly1305"'),
    "other kdf": mutate('kdf.algorithm="scrypt"'),
    "did not a did": mutate('did="alice"'),
    "did bad base58": mutate('did="did:key:z6Mk0OIl"'),
    "did x25519": mutate('did="did:key:z6LSeu9HkTHSfLLeUs2nnzUSNedgDUevfNQgQjQC23ZCit6F"'),
    "did number": mutate("did=5"),
    "salt short": mutate(f'kdf.salt="{b64(b"s" * 8)}"'),
    "salt long": mutate(f'kdf.salt="{b64(b"s" * 65)}"'),
    "salt not base64": mutate('kdf.salt="!!!!"'),
    "salt unpadded": mutate('kdf.salt="c2FsdHNhbHRzYWx0c2FsdA"'),
    "salt non-canonical": mutate('kdf.salt="c2FsdHNhbHRzYWx0c2FsdB=="'),
    "salt with newline": mutate('kdf.salt="c2FsdHNhbHRz\\nYWx0c2FsdA=="'),
    "salt bytes": mutate("kdf.salt=[1, 2]"),
    "nonce short": mutate(f'nonce="{b64(b"n" * 11)}"'),
    "nonce long": mutate(f'nonce="{b64(b"n" * 24)}"'),
    "ciphertext short": mutate(f'ciphertext="{b64(b"c" * 47)}"'),
    "ciphertext long": mutate(f'ciphertext="{b64(b"c" * 49)}"'),
    "ciphertext non-ascii": mutate('ciphertext="é"'),
    "memory 5 GiB": mutate(f"kdf.memory_cost={5 * 1024 * 1024}"),
    "memory 1 TiB": mutate(f"kdf.memory_cost={1024**3}"),
    "memory 0": mutate("kdf.memory_cost=0"),
    "memory negative": mutate("kdf.memory_cost=-1"),
    "memory float": mutate("kdf.memory_cost=64.0"),
    "memory string": mutate('kdf.memory_cost="64"'),
    "iterations 0": mutate("kdf.iterations=0"),
    "iterations 1000": mutate("kdf.iterations=1000"),
    "iterations true": mutate("kdf.iterations=true"),
    "lanes 0": mutate("kdf.lanes=0"),
    "lanes 255": mutate("kdf.lanes=255"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_damaged_files(tmp_path: Path, case: str) -> None:
    target = tmp_path / "keystore.json"
    target.write_bytes(DAMAGED[case])
    with pytest.raises(DamagedKeystore) as info:
        read_did(target)
    assert info.value.code == "damagedKeystore"
    assert str(info.value)  # a message for a person
    with pytest.raises(DamagedKeystore):
        unlock(target, PASS)


def test_memory_below_8_per_lane() -> None:
    document = good_document()
    document["kdf"]["memory_cost"] = 8
    document["kdf"]["lanes"] = 2
    with pytest.raises(DamagedKeystore, match="8 KiB per lane"):
        parse_keystore(json.dumps(document).encode())


def test_unknown_version_is_named() -> None:
    with pytest.raises(DamagedKeystore, match="version 3"):
        parse_keystore(mutate("version=3"))


def test_version_2_without_a_device_binding_is_damaged() -> None:
    """Version 2 is the device-bound form (tests/test_device_keystore.py): it needs `device`."""
    with pytest.raises(DamagedKeystore, match="device"):
        parse_keystore(mutate("version=2"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_any_bytes_parse_or_are_damaged(data: bytes) -> None:
    with contextlib.suppress(DamagedKeystore):
        parse_keystore(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(
    field=st.sampled_from(["version", "did", "kdf", "cipher", "nonce", "ciphertext"]),
    value=json_values,
)
def test_any_field_value_is_validated(field: str, value: Any) -> None:
    """Replacing any top-level field by any JSON value: damaged, or (rarely) still valid."""
    document = good_document()
    document[field] = value
    try:
        model = parse_keystore(json.dumps(document).encode())
    except DamagedKeystore:
        return
    assert getattr(model, field) == value or field == "kdf"


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_any_byte_change_never_opens(index: int, byte: int) -> None:
    data = seal_keystore(KEY, PASS, params=FAST).to_bytes()
    position = index % len(data)
    if data[position] == byte:
        return
    changed = data[:position] + bytes([byte]) + data[position + 1 :]
    try:
        model = parse_keystore(changed)
    except DamagedKeystore:
        return
    with pytest.raises(WrongPassphrase):
        keystore.open_keystore(model, PASS)


def test_mismatched_did_and_seed_is_damaged(tmp_path: Path) -> None:
    """A file whose AD names another DID than its seed (crafted on purpose) is damaged."""
    other = IdentityKey(b"\x09" * 32)
    salt, nonce = b"s" * 16, b"n" * 12
    key = libsodium_key(PASS, salt, FAST)
    sealed = nacl.bindings.crypto_aead_aes256gcm_encrypt(
        KEY.seed, AD_PREFIX + other.did.encode(), nonce, key
    )
    document = good_document()
    document.update(did=other.did, nonce=b64(nonce), ciphertext=b64(sealed))
    document["kdf"]["salt"] = b64(salt)
    target = tmp_path / "keystore.json"
    write_fields(target, document)
    with pytest.raises(DamagedKeystore, match="does not match"):
        unlock(target, PASS)


# --- create / change ------------------------------------------------------------------------


def test_create_refuses_to_replace(path: Path) -> None:
    before = path.read_bytes()
    with pytest.raises(IdentityExists) as info:
        create_keystore(path, IdentityKey.generate(), PASS, params=FAST)
    assert info.value.code == "identityExists"
    assert path.read_bytes() == before


def test_create_overwrite(path: Path) -> None:
    other = IdentityKey.generate()
    create_keystore(path, other, "other", overwrite=True, params=FAST)
    assert unlock(path, "other") == other


def test_change_passphrase(path: Path) -> None:
    before = fields(path)
    change_passphrase(path, PASS, "new passphrase", params=FAST)
    after = fields(path)
    assert after["did"] == KEY.did
    assert after["kdf"]["salt"] != before["kdf"]["salt"]
    assert after["nonce"] != before["nonce"]
    assert unlock(path, "new passphrase") == KEY
    with pytest.raises(WrongPassphrase):
        unlock(path, PASS)


def test_change_passphrase_upgrades_weak_parameters(path: Path) -> None:
    change_passphrase(path, PASS, "new")
    kdf = fields(path)["kdf"]
    assert (kdf["memory_cost"], kdf["iterations"], kdf["lanes"]) == (65536, 3, 1)


def test_change_passphrase_wrong_old_leaves_file(path: Path) -> None:
    before = path.read_bytes()
    with pytest.raises(WrongPassphrase):
        change_passphrase(path, "nope", "new", params=FAST)
    assert path.read_bytes() == before


# --- crash safety and permissions ------------------------------------------------------------


def test_failed_rename_keeps_old_keystore(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash between writing the temp file and the rename: the old keystore still loads."""

    def crash(src: Any, dst: Any) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        change_passphrase(path, PASS, "new", params=FAST)
    monkeypatch.undo()
    assert unlock(path, PASS) == KEY
    assert sorted(p.name for p in path.parent.iterdir()) == ["keystore.json"]  # no temp left


def test_failed_write_keeps_old_keystore(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(fd: int) -> None:
        raise OSError("simulated disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        create_keystore(path, IdentityKey.generate(), "x", overwrite=True, params=FAST)
    monkeypatch.undo()
    assert unlock(path, PASS) == KEY
    assert sorted(p.name for p in path.parent.iterdir()) == ["keystore.json"]


CHILD_ENV = {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.mark.faults
def test_killed_between_write_and_rename(path: Path) -> None:
    """SIGKILL while the new file is written but not yet renamed: the old one loads."""
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from identity.keystore import KdfParams, change_passphrase
        def stall(src, dst):
            print("written", flush=True)
            time.sleep(60)
        os.replace = stall
        change_passphrase(Path({str(path)!r}), {PASS!r}, "new",
                          params=KdfParams(memory_cost=64, iterations=1, lanes=1))
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, env=CHILD_ENV, cwd=REPO
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"written\n"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
        if child.stdout:
            child.stdout.close()
    assert unlock(path, PASS) == KEY
    temps = [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert len(temps) == 1  # the complete new file, never read
    assert stat.S_IMODE(temps[0].stat().st_mode) == 0o600


@pytest.mark.faults
def test_killed_at_random_instants(path: Path) -> None:
    """A child rewrites the keystore in a loop; after each SIGKILL it opens with one passphrase."""
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from identity.keystore import KdfParams, change_passphrase
        fast = KdfParams(memory_cost=64, iterations=1, lanes=1)
        path, phrases = Path({str(path)!r}), ["a", "b"]
        change_passphrase(path, {PASS!r}, "a", params=fast)
        print("started", flush=True)
        i = 0
        while True:
            change_passphrase(path, phrases[i % 2], phrases[(i + 1) % 2], params=fast)
            i += 1
        """
    )
    for delay in (0.0, 0.003, 0.011, 0.023, 0.05, 0.097):
        child = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, env=CHILD_ENV, cwd=REPO
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == b"started\n"
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait(timeout=10)
            if child.stdout:
                child.stdout.close()
        opened = []
        for phrase in ("a", "b"):
            with contextlib.suppress(WrongPassphrase):
                opened.append(unlock(path, phrase))
        assert opened == [KEY]
        # reset for the next round
        create_keystore(path, KEY, PASS, overwrite=True, params=FAST)


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_keystore_is_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        target = tmp_path / "keystore.json"
        create_keystore(target, KEY, PASS, params=FAST)
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        change_passphrase(target, PASS, "x", params=FAST)
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_write_atomic_replaces_and_sets_mode(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"old")
    os.chmod(target, 0o644)
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    write_atomic(target, b"", mode=0o640)
    assert target.read_bytes() == b""
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# --- weak parameters are re-sealed at once (issue 26, class 5) -------------------------------

WEAKEST = KdfParams(memory_cost=8, iterations=1, lanes=1)  # the weakest the parser accepts


def _spy_writes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record every write_atomic of the keystore module (and still do it)."""
    written: list[Path] = []

    def spy(target: Path, data: bytes, *, mode: int = 0o600) -> None:
        written.append(Path(target))
        write_atomic(target, data, mode=mode)

    monkeypatch.setattr(keystore, "write_atomic", spy)
    return written


def test_weak_parameters_are_resealed_on_unlock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "keystore.json"
    create_keystore(target, KEY, PASS, params=WEAKEST)
    before = fields(target)
    written = _spy_writes(monkeypatch)
    key, params = keystore.unlock_and_strengthen(target, PASS)
    assert key == KEY
    assert params == DEFAULT_KDF
    assert written == [target]  # one atomic write (temp file, fsync, rename)
    after = fields(target)
    kdf = after["kdf"]
    assert (kdf["memory_cost"], kdf["iterations"], kdf["lanes"]) == (65536, 3, 1)
    assert after["did"] == before["did"] == KEY.did
    assert kdf["salt"] != before["kdf"]["salt"] and after["nonce"] != before["nonce"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert unlock(target, PASS) == KEY  # the same passphrase opens it
    assert keystore.unlock_and_strengthen(target, PASS) == (KEY, None)  # now current: left
    assert written == [target]


@pytest.mark.parametrize(
    ("weak", "expected"),
    [
        (KdfParams(memory_cost=8, iterations=5, lanes=1), (65536, 5, 1)),  # memory only
        (KdfParams(memory_cost=65536 + 8, iterations=1, lanes=2), (65536 + 8, 3, 2)),  # passes
    ],
)
def test_resealing_never_weakens_a_field(
    tmp_path: Path, weak: KdfParams, expected: tuple[int, int, int]
) -> None:
    target = tmp_path / "keystore.json"
    create_keystore(target, KEY, PASS, params=weak)
    key, params = keystore.unlock_and_strengthen(target, PASS)
    assert key == KEY and params is not None
    assert (params.memory_cost, params.iterations, params.lanes) == expected
    kdf = fields(target)["kdf"]
    assert (kdf["memory_cost"], kdf["iterations"], kdf["lanes"]) == expected


def test_current_parameters_are_not_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "keystore.json"
    create_keystore(target, KEY, PASS)  # DEFAULT_KDF
    before = target.read_bytes()
    written = _spy_writes(monkeypatch)
    assert keystore.unlock_and_strengthen(target, PASS) == (KEY, None)
    assert written == [] and target.read_bytes() == before


def test_wrong_passphrase_rewrites_nothing(tmp_path: Path) -> None:
    target = tmp_path / "keystore.json"
    create_keystore(target, KEY, PASS, params=WEAKEST)
    before = target.read_bytes()
    with pytest.raises(WrongPassphrase):
        keystore.unlock_and_strengthen(target, "nope")
    assert target.read_bytes() == before


def test_a_keystore_changed_meanwhile_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process changed the passphrase while we re-sealed: its file stays."""
    target = tmp_path / "keystore.json"
    create_keystore(target, KEY, PASS, params=WEAKEST)
    real_seal = keystore.seal_keystore

    def seal_while_passwd_runs(*args: Any, **kwargs: Any) -> keystore.KeystoreFile:
        elsewhere = real_seal(KEY, "changed elsewhere", params=WEAKEST)  # `passwd` elsewhere
        write_atomic(target, elsewhere.to_bytes())
        return real_seal(*args, **kwargs)

    monkeypatch.setattr(keystore, "seal_keystore", seal_while_passwd_runs)
    assert keystore.unlock_and_strengthen(target, PASS) == (KEY, None)
    monkeypatch.undo()
    assert unlock(target, "changed elsewhere") == KEY


def test_a_failed_reseal_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "keystore.json"
    create_keystore(target, KEY, PASS, params=WEAKEST)
    before = target.read_bytes()
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(30, "Read-only")))
    with pytest.raises(OSError):
        keystore.unlock_and_strengthen(target, PASS)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keystore.json"]  # no temp left


def _cli(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DIDLINK_")}
    full_env.update({"DIDLINK_HOME": str(home), "DIDLINK_PASSPHRASE": PASS, **env})
    return subprocess.run(
        [sys.executable, "-m", "didlink", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_reseals_a_weak_keystore_and_says_so(tmp_path: Path) -> None:
    home = tmp_path / "profile"
    home.mkdir(mode=0o700)
    target = home / "keystore.json"
    create_keystore(target, KEY, PASS, params=WEAKEST)
    first = _cli("invite", "--card", "--json", home=home)  # unlocks the identity
    assert first.returncode == 0, first.stderr
    assert first.stderr == (
        "note: the keystore was re-sealed with stronger key-derivation parameters"
        " (64 MiB, 3 passes)\n"
    )
    kdf = fields(target)["kdf"]
    assert (kdf["memory_cost"], kdf["iterations"]) == (65536, 3)
    second = _cli("invite", "--card", "--json", home=home)
    assert (second.returncode, second.stderr) == (0, "")  # current now: no rewrite, no note
    assert _cli("whoami", home=home).stdout.splitlines()[0] == KEY.did


def test_cli_passwd_seals_with_current_parameters(tmp_path: Path) -> None:
    home = tmp_path / "profile"
    home.mkdir(mode=0o700)
    target = home / "keystore.json"
    create_keystore(target, KEY, PASS, params=WEAKEST)
    result = _cli("passwd", home=home, DIDLINK_NEW_PASSPHRASE="another one")
    assert result.returncode == 0, result.stderr
    kdf = fields(target)["kdf"]
    assert (kdf["memory_cost"], kdf["iterations"], kdf["lanes"]) == (65536, 3, 1)
    assert unlock(target, "another one") == KEY


def test_the_seed_size_is_the_keys_one() -> None:
    """The keystore spells the seed size out (reading a DID must not load identity.keys)."""
    from identity import keys, keystore_file

    assert keystore_file.SEED_SIZE == keys.SEED_SIZE


# --- reading the DID without the models (identity/keystore_file.py, issue 28 point 4) --------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=5,
)
_TOP = ("version", "did", "kdf", "cipher", "nonce", "ciphertext")
_KDF = ("algorithm", "salt", "memory_cost", "iterations", "lanes")
_EDGES = (
    0, 1, 7, 8, 15, 16, 17, 63, 64, 65, MAX_MEMORY_KIB, MAX_MEMORY_KIB + 1, 2**64, -1, True,
    1.0, "8", "argon2id", "aes-256-gcm", "", "é", "\ud800", None, [], {},
)  # fmt: skip


def _plain_value() -> dict[str, Any]:
    """A fresh copy of a valid keystore's JSON object (KEY under PASS, fast parameters)."""
    value: dict[str, Any] = json.loads(seal_keystore(KEY, PASS, params=FAST).to_bytes())
    return value


def _outcome(call: Any) -> tuple[str, str]:
    """("ok", DID) or (error class, message): what a caller of read_did would see."""
    try:
        return ("ok", call())
    except IdentityError as exc:
        return (type(exc).__name__, str(exc))


def _both_ways(path: Path, value: Any) -> None:
    """The quick reader and the models' validation agree on `value` written as the file."""
    data = json.dumps(value).encode("utf-8")
    path.write_bytes(data)
    quick = _outcome(lambda: keystore_file.read_did(path))
    full = _outcome(lambda: parse_keystore(data).did)
    assert quick == full
    try:
        raw = keystore_file.json_object(data)
    except DamagedKeystore:
        return
    if keystore_file.is_plain(raw):  # never more lenient than the models
        keystore.KeystoreFile.model_validate(raw)


def test_a_written_keystore_is_plain_and_read_without_the_models(path: Path) -> None:
    assert keystore_file.is_plain(fields(path))
    assert keystore_file.read_did(path) == read_did(path) == KEY.did


@pytest.mark.parametrize("edge", range(len(_EDGES)))
@pytest.mark.parametrize("name", [*_TOP, *(f"kdf.{name}" for name in _KDF)])
def test_the_quick_reader_agrees_with_the_models_on_edge_values(
    tmp_path: Path, edge: int, name: str
) -> None:
    value = _plain_value()
    target, _, field = name.rpartition(".")
    (value[target] if target else value)[field] = _EDGES[edge]
    _both_ways(tmp_path / "keystore.json", value)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    where=st.sampled_from(["top", "kdf"]),
    name=st.sampled_from([*_TOP, *_KDF, "extra"]),
    change=st.sampled_from(["set", "drop"]),
    new=_JSON,
)
def test_the_quick_reader_agrees_with_the_models(
    tmp_path: Path, where: str, name: str, change: str, new: Any
) -> None:
    value = _plain_value()
    target = value if where == "top" else value["kdf"]
    if change == "drop":
        target.pop(name, None)
    else:
        target[name] = new
    _both_ways(tmp_path / "keystore.json", value)
