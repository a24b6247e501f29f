"""`didlink ice`: the profile's STUN/TURN servers and ICE policy through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import assert_user_error, run_cli
from tests.test_cli_invite import make_profile

SECRET = "turn-credential-9f3a"  # a value to look for where it must not be


def _profile_bytes(home: Path) -> bytes:
    """Every byte of the profile folder's files (the store, its WAL, the keystore)."""
    return b"".join(p.read_bytes() for p in sorted(home.iterdir()) if p.is_file())


def _listing(home: Path) -> dict[str, object]:
    result = run_cli("ice", "--json", home=home)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout
    listing: dict[str, object] = json.loads(result.stdout)
    return listing


def test_none_by_default(home: Path) -> None:
    make_profile(home)
    assert _listing(home) == {"servers": [], "policy": "all"}
    result = run_cli("ice", home=home)
    assert result.returncode == 0
    assert "No STUN or TURN server" in result.stdout and "Policy: all" in result.stdout


def test_add_list_policy_remove(home: Path) -> None:
    make_profile(home)
    assert run_cli("ice", "add", "stun:stun.example.org:3478", home=home).returncode == 0
    added = run_cli(
        "ice",
        "add",
        "turn:turn.example.org:3478?transport=tcp",
        "--username",
        "alice",
        "--credential",
        SECRET,
        home=home,
    )
    assert added.returncode == 0, added.stderr
    assert SECRET not in added.stdout + added.stderr
    assert run_cli("ice", "policy", "relay", home=home).returncode == 0
    assert _listing(home) == {
        "servers": [
            {"url": "stun:stun.example.org:3478", "username": None},
            {"url": "turn:turn.example.org:3478?transport=tcp", "username": "alice"},
        ],
        "policy": "relay",
    }
    shown = run_cli("ice", home=home)
    assert "turn:turn.example.org:3478?transport=tcp  (user alice)" in shown.stdout
    assert "Policy: relay" in shown.stdout and SECRET not in shown.stdout
    assert SECRET.encode() not in _profile_bytes(home)  # sealed, never in clear
    # A second TURN server replaces the first (aioice uses one); its credential too.
    replaced = run_cli(
        "ice",
        "add",
        "turns:other.example.org:443",
        "--username",
        "bob",
        home=home,
        env={"DIDLINK_TURN_CREDENTIAL": "from-the-env-1"},
    )
    assert replaced.returncode == 0, replaced.stderr
    servers = _listing(home)["servers"]
    assert servers == [
        {"url": "stun:stun.example.org:3478", "username": None},
        {"url": "turns:other.example.org:443", "username": "bob"},
    ]
    assert b"from-the-env-1" not in _profile_bytes(home)
    assert run_cli("ice", "remove", "turns:other.example.org:443", home=home).returncode == 0
    assert run_cli("ice", "remove", "stun:stun.example.org:3478", home=home).returncode == 0
    assert run_cli("ice", "policy", "all", home=home).returncode == 0
    assert _listing(home) == {"servers": [], "policy": "all"}


def test_relay_policy_without_turn_warns(home: Path) -> None:
    make_profile(home)
    result = run_cli("ice", "policy", "relay", home=home)
    assert result.returncode == 0
    assert "no TURN server yet" in result.stderr


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://turn.example.org", "starts with stun: or turn:"),
        ("turn://turn.example.org", "no //"),
        ("turn:alice:pw@turn.example.org", "no user name or password"),
        ("stun:stun.example.org\x1b]0;owned\x07", "printable ASCII"),
        ("stun:stun.example.org\u202e", "printable ASCII"),
        ("stun:" + "a" * 400, "at most 255"),
        ("stuns:stun.example.org", "stuns:"),
        ("turns:turn.example.org?transport=udp", "TLS on TCP"),
        ("turn:turn.example.org?transport=quic", "udp or tcp"),
        ("stun:stun.example.org:99999", "port"),
        ("turn:[2001:db8::1]:3478", "SCHEME:HOST"),
    ],
)
def test_bad_urls_are_refused(home: Path, url: str, needle: str) -> None:
    make_profile(home)
    result = run_cli("ice", "add", url, "--username", "u", "--credential", "c", home=home)
    assert_user_error(result, "cannot add the ICE server", needle)
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr
    assert _listing(home)["servers"] == []


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (("stun:s.example.org", "--username", "u"), {}, "takes no --username"),
        (("turn:t.example.org", "--credential", "c"), {}, "needs --username"),
        (("turn:t.example.org", "--username", "u"), {}, "needs its credential"),
        (("turn:t.example.org", "--username", "u\x1b[2J", "--credential", "c"), {}, "user name"),
        (("turn:t.example.org", "--username", "u", "--credential", "x" * 300), {}, "credential"),
    ],
)
def test_bad_turn_options_are_refused(
    home: Path, args: tuple[str, ...], env: dict[str, str], needle: str
) -> None:
    make_profile(home)
    result = run_cli("ice", "add", *args, home=home, env=env)
    assert_user_error(result, needle)
    assert "\x1b" not in result.stderr


def test_remove_unknown_and_bad_policy(home: Path) -> None:
    make_profile(home)
    assert_user_error(run_cli("ice", "remove", "stun:nope.example.org", home=home), "no such")
    bad = run_cli("ice", "policy", "sometimes", home=home)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_no_identity(tmp_path: Path) -> None:
    result = run_cli("ice", home=tmp_path / "nobody")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_wrong_passphrase_keeps_nothing(home: Path) -> None:
    make_profile(home)
    result = run_cli(
        "ice",
        "add",
        "turn:t.example.org",
        "--username",
        "u",
        "--credential",
        SECRET,
        home=home,
        passphrase="not the passphrase",
    )
    assert result.returncode == 2
    assert _listing(home)["servers"] == []


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"DIDLINK_TURN": "turn:t.example.org"}, "DIDLINK_TURN_USERNAME"),
        ({"DIDLINK_TURN": "turn:u:p@t.example.org"}, "no user name or password"),
        ({"DIDLINK_STUN": "stun:s.example.org\x1b[2J"}, "printable ASCII"),
        ({"DIDLINK_ICE_POLICY": "relay\x07"}, "DIDLINK_ICE_POLICY is 'all' or 'relay'"),
    ],
)
def test_bad_ice_environment_stops_invite_before_anything(
    home: Path, env: dict[str, str], needle: str
) -> None:
    make_profile(home)
    result = run_cli("invite", "--jsonl", home=home, env=env)
    assert_user_error(result, needle)
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
