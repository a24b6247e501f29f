"""The profile's own name: the label it suggests to others by default (specs/store.md).

Theory of operation. A person sets it once (`didlink init --name NAME`, later `didlink name
NAME`); `invite`, `invite --card` and `accept` of a live invitation then put it in their
signed token as the label, the name the other side sees as a *suggestion* (never adopted by
itself there: specs/store.md "Names"). `--label` overrides it for one token.

It is one small JSON file in the profile, `name.json` = `{"name": "Bob"}`, mode 0600, written
atomically (identity/atomic_file.py). It is not in the store, whose schema it would change, and
not in the keystore, which `whoami` reads without the passphrase anyway. The file is read as
hostile like any other: bounded before parsing, and a name that is no longer a valid name or
label is an error naming the file and what to do, never silently used.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from didlink.errors import UserError
from didlink.profile.names import check_name
from didlink.words.display import shown

NAME_FILE = "name.json"
MAX_FILE = 4096
MAX_LABEL_BYTES = 128
"""identity.invitation.MAX_LABEL_BYTES (not imported: that loads pydantic, and `whoami` reads
the name). check_name already keeps a name within the label's other rules: at most 64
characters, no control or format characters (tests/test_cli_names.py checks both)."""


def checked(name: str) -> str:
    """`name` as the profile's name: a valid contact name (didlink/profile/names.py) that also fits
    a
    token's label (specs/invitation.md §2); normalised, or UserError saying what is wrong."""
    name = check_name(name)  # "a contact name ..." errors: the same rules as a petname
    if len(name.encode("utf-8")) > MAX_LABEL_BYTES:
        raise UserError(f"a name is at most {MAX_LABEL_BYTES} bytes in UTF-8 (it goes in tokens)")
    return name


def path_of(profile_path: Path) -> Path:
    return profile_path / NAME_FILE


def read(profile_path: Path) -> str | None:
    """The profile's name, or None if none is set; UserError if the file is unusable."""
    path = path_of(profile_path)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UserError(f"cannot read your name from {path}: {exc.strerror or exc}") from exc
    damaged = UserError(
        f"the file {path} that holds your name is damaged: set it again (didlink name NAME)"
        " or remove it (didlink name --clear)"
    )
    if len(data) > MAX_FILE:
        raise damaged
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise damaged from None
    if not isinstance(value, dict) or set(value) != {"name"} or not isinstance(value["name"], str):
        raise damaged
    try:
        return checked(value["name"])
    except UserError as exc:
        raise UserError(
            f"the name in {path} ({shown(value['name'], limit=80)!r}) is not usable: {exc}"
        ) from None


def write(profile_path: Path, name: str | None) -> str | None:
    """Set (or with None, remove) the profile's name; the stored name. UserError if it is bad
    or the file cannot be written."""
    from identity.atomic_file import write_atomic

    path = path_of(profile_path)
    try:
        if name is None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return None
        name = checked(name)
        write_atomic(path, json.dumps({"name": name}, ensure_ascii=False).encode("utf-8"))
    except OSError as exc:
        raise UserError(f"cannot write your name to {path}: {exc.strerror or exc}") from exc
    return name


def default_label(profile_path: Path, label: str | None) -> str | None:
    """The label for a token: `label` when given (--label), else the profile's name."""
    return label if label is not None else read(profile_path)
