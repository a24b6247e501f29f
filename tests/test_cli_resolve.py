"""`didlink resolve` through a real subprocess: documents on stdout, one-line errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import base58
import pytest

from tests.support.cli import assert_user_error, run_cli
from tests.support.vectors import load_json

ED25519 = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
ED25519_TWIN = "z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW"
P256_JWK = "did:key:zDnaerx9CtbPJ1q36T5Ln5wYt3MQYeGRG5ehnPAmxcf5mDZpv"


def _did(payload: bytes) -> str:
    return "did:key:z" + base58.b58encode(payload).decode()


@pytest.mark.vectors
def test_json_base58_is_the_vector_document(home: Path) -> None:
    expected = load_json("did-key/ed25519-x25519.json")[ED25519]["didDocument"]
    result = run_cli("resolve", ED25519, "--json", "--format", "base58", home=home)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected
    assert result.stderr == ""


@pytest.mark.vectors
def test_json_default_is_the_jwk_vector_document(home: Path) -> None:
    expected = load_json("did-key/nist-curves.json")[P256_JWK]["didDocument"]
    result = run_cli("resolve", P256_JWK, "--json", home=home)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected


def test_human_form(home: Path) -> None:
    result = run_cli("resolve", ED25519, home=home)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert ED25519 in out
    assert "Ed25519" in out
    assert f"#{ED25519[8:]}" in out
    assert f"Key agreement: {ED25519}#{ED25519_TWIN}" in out
    assert "authentication" in out


@pytest.mark.parametrize(
    ("did", "code"),
    [
        ("did:key:tKwz7Ge1Yxzr4JHavN33wiwa8y81QdcMRLXQsrH9T53b", "invalidDid"),
        (
            "did:key:z6MkNCwzLDQsNSw3LDcsNSw1LDAsMyw0LDUsMCwzLDQsMywxLDMsNCw1LDAsMyw0LDUsMCwz"
            "LDQsNSw3LDAsMCwxMDA=",
            "invalidDid",
        ),
        (ED25519 + "#" + ED25519_TWIN, "invalidDid"),
        ("did:web:example.com", "invalidDid"),
        ("did:key:z" + "1" * 300, "invalidDid"),
        (_did(b"\xe8\x01" + bytes(48)), "unsupportedPublicKeyType"),
        (_did(b"\xed\x01" + bytes(31)), "invalidPublicKeyLength"),
        (_did(b"\xed\x01" + bytes(32)), "invalidPublicKey"),
        (_did(b"\x80\x24\x02" + (1).to_bytes(32, "big")), "invalidPublicKey"),
    ],
    ids=lambda v: str(v)[:24],
)
def test_invalid_did_is_one_line_exit_2(home: Path, did: str, code: str) -> None:
    result = run_cli("resolve", did, "--json", home=home)
    assert_user_error(result, f"error: {code}: ")


def test_missing_argument_is_a_usage_error(home: Path) -> None:
    result = run_cli("resolve", home=home)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_the_format_choices_are_the_public_key_formats() -> None:
    """The command spells the formats out (declaring it must not load the document's models)."""
    from didlink.cli.commands.resolve import KEY_FORMATS
    from identity.did_document import PublicKeyFormat

    assert tuple(f.value for f in PublicKeyFormat) == KEY_FORMATS
    assert KEY_FORMATS[0] == PublicKeyFormat.JWK.value  # the default
