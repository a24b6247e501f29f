"""`didlink keystore bind|unbind` and `init --device-bound`: a keystore that needs a PKCS#11
token as well as the passphrase (specs/keystore.md, "Device-bound keystore, version 2").

The token is talked to in didlink/custody/device_token.py (python-pkcs11, imported only here, late);
the sealing is identity/keystore.py's. Order of the questions: the token is found first (a
missing one is named before anything is typed), then the passphrase, then the token's PIN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from didlink.cli.passphrase import get_passphrase
from didlink.errors import UserError
from didlink.profile.folder import Profile
from didlink.words.output import say

if TYPE_CHECKING:
    from didlink.custody.device_token import TokenSession
    from identity.keys import IdentityKey
    from identity.keystore import DeviceBinding, KdfParams

KEEP_A_BACKUP = (
    "If the token is lost or broken, the keystore cannot be opened: keep a backup"
    " ('didlink backup export' or 'didlink backup phrase'), which does not need the token."
)


def _seal_bound(
    profile: Profile,
    session: TokenSession,
    key: IdentityKey,
    passphrase: str,
    *,
    params: KdfParams,
    overwrite: bool,
    unchanged: bytes | None = None,
) -> DeviceBinding:
    """A new key on the token, and the keystore sealed under it and `passphrase`. If the file
    cannot be written (or changed since it was read: `unchanged`), the key is destroyed again
    and nothing changed."""
    from identity.keystore import create_keystore
    from identity.keystore_file import read_bytes

    binding, secret = session.bind(key.did)
    try:
        if unchanged is not None and read_bytes(profile.keystore_path) != unchanged:
            raise UserError("the keystore changed while it was being bound: nothing was done")
        create_keystore(
            profile.keystore_path,
            key,
            passphrase,
            overwrite=overwrite,
            params=params,
            device=binding,
            device_secret=secret,
        )
    except BaseException as exc:
        session.delete(binding)
        if isinstance(exc, OSError):
            raise UserError(f"cannot write the keystore: {exc.strerror or exc}") from exc
        raise
    return binding


def _bound_note(binding: DeviceBinding) -> None:
    say(
        f"The keystore is bound to the PKCS#11 token '{binding.token_label}' (serial"
        f" {binding.token_serial}, key '{binding.key_label}'): it opens only with that token"
        " and the passphrase.",
        err=True,
    )
    say(KEEP_A_BACKUP, err=True)


def init_device_bound(profile: Profile, *, token_label: str | None, force: bool) -> IdentityKey:
    """`didlink init --device-bound`: a new identity whose keystore is bound to a token."""
    from didlink.custody.device_token import choose_token, get_pin
    from identity.keys import IdentityKey
    from identity.keystore import DEFAULT_KDF

    token = choose_token(token_label)
    passphrase = get_passphrase(confirm=True, prompt="New passphrase")
    pin = get_pin(token)
    profile.ensure()
    key = IdentityKey.generate()
    with token.session(pin) as session:
        binding = _seal_bound(
            profile, session, key, passphrase, params=DEFAULT_KDF, overwrite=force
        )
    _bound_note(binding)
    return key


@click.group()
def keystore() -> None:
    """Bind the keystore to a PKCS#11 token (a YubiKey, Nitrokey, TPM or SoftHSM2), or undo it."""


@keystore.command("bind")
@click.option("--token", "token_label", metavar="LABEL", help="The PKCS#11 token to bind to.")
def keystore_bind(token_label: str | None) -> None:
    """Seal this identity's keystore under a new key on a PKCS#11 token as well as the
    passphrase, so that a copy of the profile is useless without the token.

    The module is DIDLINK_PKCS11_MODULE (else SoftHSM2 or OpenSC where installed), the PIN
    DIDLINK_PKCS11_PIN (else asked). The token is the only one present, or --token LABEL.
    """
    from didlink.custody.device_token import choose_token, get_pin
    from identity.keystore import device_of, open_keystore, parse_keystore, strengthened
    from identity.keystore_file import read_bytes

    profile = Profile.from_env()
    profile.did()  # NoIdentity / DamagedKeystore before asking anything
    data = read_bytes(profile.keystore_path)
    model = parse_keystore(data)
    device = device_of(model)
    if device is not None:
        raise UserError(
            f"this identity is already bound to the PKCS#11 token '{device.token_label}'"
            f" (serial {device.token_serial}): 'didlink keystore unbind' first"
        )
    token = choose_token(token_label)
    passphrase = get_passphrase()
    key = open_keystore(model, passphrase)  # WrongPassphrase before the PIN
    pin = get_pin(token)
    with token.session(pin) as session:
        binding = _seal_bound(
            profile,
            session,
            key,
            passphrase,
            params=strengthened(model.kdf.params),
            overwrite=True,
            unchanged=data,
        )
    _bound_note(binding)


@keystore.command("unbind")
def keystore_unbind() -> None:
    """Seal the keystore under the passphrase alone again (the token must be present), then
    delete this identity's key from the token."""
    from didlink.custody.device_token import find_token, get_pin
    from identity.atomic_file import write_atomic
    from identity.keystore import (
        device_of,
        open_keystore,
        parse_keystore,
        seal_keystore,
        strengthened,
    )
    from identity.keystore_file import read_bytes

    profile = Profile.from_env()
    profile.did()
    data = read_bytes(profile.keystore_path)
    model = parse_keystore(data)
    device = device_of(model)
    if device is None:
        raise UserError("this identity is not bound to a token: nothing to unbind")
    token = find_token(device)
    passphrase = get_passphrase()
    pin = get_pin(token)
    with token.session(pin) as session:
        key = open_keystore(model, passphrase, device_secret=session.secret(device))
        sealed = seal_keystore(key, passphrase, params=strengthened(model.kdf.params))
        if read_bytes(profile.keystore_path) != data:
            raise UserError("the keystore changed while it was being unbound: nothing was done")
        try:
            write_atomic(profile.keystore_path, sealed.to_bytes())
        except OSError as exc:
            raise UserError(f"cannot write the keystore: {exc.strerror or exc}") from exc
        deleted = session.delete(device)  # only now: the passphrase-only keystore is on disk
    say("The keystore is sealed under the passphrase alone again.", err=True)
    if deleted:
        say(
            f"The key '{device.key_label}' was deleted from the token '{device.token_label}'.",
            err=True,
        )
    else:
        say(
            f"note: the key '{device.key_label}' could not be deleted from the token"
            f" '{device.token_label}': delete it with the token's own tools",
            err=True,
        )


commands: list[click.Command] = [keystore]
