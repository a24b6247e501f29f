"""The PKCS#11 token of a device-bound keystore (specs/keystore.md, "Device-bound keystore").

Theory of operation:
- Binding makes an EC P-256 key pair on the token (CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE,
  not CKA_EXTRACTABLE, CKA_DERIVE only), reads its public key, and lets identity/keystore.py
  (`device_exchange`) make an ephemeral key pair in software and compute the ECDH secret with
  it. The token then computes the same ECDH (CKM_ECDH1_DERIVE, no KDF) from the ephemeral
  public key; the two must agree, or nothing is written. The ephemeral private key is dropped,
  so from then on only the token can compute the secret again: a copied keystore is useless
  without it. Unlocking asks the token for that ECDH again (`TokenSession.secret`).
- The module (a shared library, loaded into this process) is never taken from the keystore
  file: DIDLINK_PKCS11_MODULE, else the first of the known SoftHSM2 / OpenSC paths that exists
  (for unlocking, preferring the one whose file name the keystore records). SOFTHSM2_CONF is
  read by SoftHSM2 itself.
- The token is chosen by `--token LABEL`, else it is the only initialised token the module
  shows; for unlocking, it is the token with the serial number (and label) the keystore records.
  A missing token is a one-line error naming it.
- The PIN comes from DIDLINK_PKCS11_PIN, else a hidden prompt on the terminal.
- Everything the token says (labels, serials, points, secrets) is checked before use.
- python-pkcs11 is imported here only, and only by the commands that need a token.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from didlink.errors import UserError

if TYPE_CHECKING:
    from identity.keystore import DeviceBinding

MODULE_ENV = "DIDLINK_PKCS11_MODULE"
PIN_ENV = "DIDLINK_PKCS11_PIN"
KNOWN_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib64/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
    "/usr/local/lib/opensc-pkcs11.so",
    "/opt/homebrew/lib/opensc-pkcs11.so",
    "/Library/OpenSC/lib/opensc-pkcs11.so",
)
"""Searched in this order when DIDLINK_PKCS11_MODULE is not set: SoftHSM2, then OpenSC."""
MAX_PIN_CHARS = 256
KEY_LABEL_PREFIX = "didlink "
DID_SUFFIX_CHARS = 16
MAX_TOKENS = 64
"""Tokens looked at in one module (a module listing more is answered from the first ones)."""


class TokenMissing(UserError):
    """The PKCS#11 token a device-bound keystore is bound to is not there: no module to load,
    or no token with the serial number and label the keystore records. The message names it."""


class TokenPinNeeded(UserError):
    """A device-bound keystore was opened without its token's PIN (no `token_pin`, no
    DIDLINK_PKCS11_PIN) where nothing may prompt for it (the Python API)."""


def _printable(text: str) -> bool:
    return all(" " <= ch <= "~" for ch in text)


def _token_text(value: Any, limit: int) -> str | None:
    """A label or serial as the token gave it (str or bytes), stripped; None if unusable."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str):
        return None
    text: str = value.strip()
    if not text or len(text) > limit or not _printable(text):
        return None
    return text


def module_path(hint: str | None = None, *, module: str | Path | None = None) -> Path:
    """The PKCS#11 module to load: `module` (the Python API's choice), else
    DIDLINK_PKCS11_MODULE, else a known path that exists (the one named `hint` first).
    UserError when there is none."""
    if module is not None:
        path = Path(module).expanduser()
        if not path.is_file():
            raise UserError(f"the PKCS#11 module {str(module)!r} is not a file")
        return path
    named = os.environ.get(MODULE_ENV)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise UserError(f"{MODULE_ENV} names {named!r}, which is not a file")
        return path
    found = [Path(p) for p in KNOWN_MODULES if Path(p).is_file()]
    if hint is not None:
        found.sort(key=lambda path: path.name != hint)
    if not found:
        raise UserError(
            f"no PKCS#11 module found (SoftHSM2 or OpenSC): set {MODULE_ENV} to the module of"
            " your token"
        )
    return found[0]


def _load(path: Path) -> Any:
    import pkcs11  # late: only the commands that use a token load it

    try:
        return pkcs11.lib(str(path))
    except pkcs11.PKCS11Error as exc:
        raise UserError(f"cannot load the PKCS#11 module {path}") from exc


@dataclass(frozen=True)
class DeviceToken:
    """One initialised token of one module."""

    module: Path
    label: str
    serial: str
    token: Any  # a pkcs11.Token

    @contextlib.contextmanager
    def session(self, pin: str) -> Iterator[TokenSession]:
        """A read-write session logged in with `pin`; clear errors for a wrong or locked PIN."""
        import pkcs11
        from pkcs11 import exceptions as errors

        try:
            session = self.token.open(user_pin=pin, rw=True)
        except (errors.PinIncorrect, errors.PinInvalid, errors.PinLenRange) as exc:
            raise UserError(
                f"the PIN of the PKCS#11 token '{self.label}' is wrong (a token locks itself"
                " after a few wrong PINs)"
            ) from exc
        except errors.PinLocked as exc:
            raise UserError(f"the PIN of the PKCS#11 token '{self.label}' is locked") from exc
        except pkcs11.PKCS11Error as exc:
            raise UserError(
                f"cannot log in to the PKCS#11 token '{self.label}' ({type(exc).__name__})"
            ) from exc
        try:
            yield TokenSession(self, session)
        finally:
            with contextlib.suppress(pkcs11.PKCS11Error):
                session.close()


def _tokens(lib: Any, module: Path) -> list[DeviceToken]:
    """The initialised tokens the module shows (label and serial usable), in slot order."""
    import pkcs11

    found: list[DeviceToken] = []
    try:
        slots = lib.get_slots(token_present=True)[:MAX_TOKENS]
        for slot in slots:
            token = slot.get_token()
            if not token.flags & pkcs11.TokenFlag.TOKEN_INITIALIZED:
                continue
            label = _token_text(token.label, 32)
            serial = _token_text(token.serial, 16)
            if label is not None and serial is not None:
                found.append(DeviceToken(module=module, label=label, serial=serial, token=token))
    except pkcs11.PKCS11Error as exc:
        raise UserError(f"the PKCS#11 module {module} cannot list its tokens") from exc
    return found


def choose_token(label: str | None) -> DeviceToken:
    """The token to bind to: the one labelled `label`, else the only initialised one."""
    module = module_path()
    tokens = _tokens(_load(module), module)
    if label is not None:
        tokens = [token for token in tokens if token.label == label]
        if not tokens:
            raise UserError(f"no PKCS#11 token labelled {label!r} in {module}")
    if not tokens:
        raise UserError(
            f"no initialised PKCS#11 token in {module}: insert one (or initialise a SoftHSM2"
            f" token), or set {MODULE_ENV}"
        )
    if len(tokens) > 1:
        names = ", ".join(repr(token.label) for token in tokens[:8])
        raise UserError(f"several PKCS#11 tokens ({names}): choose one with --token LABEL")
    return tokens[0]


def _missing(binding: DeviceBinding) -> str:
    return (
        f"this identity is bound to the PKCS#11 token '{binding.token_label}' (serial"
        f" {binding.token_serial}, module {binding.module}): insert it or set {MODULE_ENV}"
    )


def find_token(binding: DeviceBinding, *, module: str | Path | None = None) -> DeviceToken:
    """The token a keystore is bound to (in `module`, else as `module_path` finds one);
    TokenMissing naming it when it is not there."""
    try:
        path = module_path(binding.module, module=module)
        tokens = _tokens(_load(path), path)
    except UserError as exc:
        raise TokenMissing(f"{_missing(binding)} ({exc})") from exc
    for token in tokens:
        if token.serial == binding.token_serial and token.label == binding.token_label:
            return token
    raise TokenMissing(_missing(binding))


def get_pin(token: DeviceToken) -> str:
    """The token's PIN from DIDLINK_PKCS11_PIN, else asked on the terminal (hidden)."""
    value = os.environ.get(PIN_ENV)
    if value is None:
        if not sys.stdin.isatty():
            raise UserError(
                f"no terminal to ask for the PIN of the PKCS#11 token '{token.label}': set"
                f" {PIN_ENV} to use didlink from a script"
            )
        value = str(
            click.prompt(
                f"PIN of the PKCS#11 token '{token.label}'",
                hide_input=True,
                default="",
                show_default=False,
                err=True,
            )
        )
    if not value or len(value) > MAX_PIN_CHARS:
        raise UserError("the PKCS#11 PIN must not be empty (nor over 256 characters)")
    return value


def _point(value: Any) -> bytes:
    """An uncompressed P-256 point from CKA_EC_POINT (DER OCTET STRING, or raw)."""
    from asn1crypto.core import OctetString

    if not isinstance(value, bytes):
        raise UserError("the PKCS#11 token returned no public key")
    raw = value
    if len(value) == 67 and value[:2] == b"\x04\x41":
        try:
            raw = OctetString.load(value).native
        except ValueError as exc:
            raise UserError("the PKCS#11 token returned a malformed public key") from exc
    if len(raw) != 65 or raw[0] != 4:
        raise UserError("the PKCS#11 token returned a public key that is not a P-256 point")
    return bytes(raw)


@dataclass(frozen=True)
class TokenSession:
    """A logged-in session on a token: make, use and delete the binding's key."""

    device: DeviceToken
    session: Any  # a pkcs11.Session

    def _derive(self, private: Any, point: bytes) -> bytes:
        import pkcs11
        from pkcs11 import KDF, Attribute, KeyType

        try:
            derived = private.derive_key(
                KeyType.GENERIC_SECRET,
                256,
                mechanism_param=(KDF.NULL, None, point),
                store=False,
                template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
            )
            value = derived[Attribute.VALUE]
        except pkcs11.PKCS11Error as exc:
            raise UserError(
                f"the PKCS#11 token '{self.device.label}' refused the ECDH derivation"
                f" ({type(exc).__name__})"
            ) from exc
        if not isinstance(value, bytes) or len(value) != 32:
            raise UserError(f"the PKCS#11 token '{self.device.label}' gave a malformed secret")
        return value

    def _key(self, binding: DeviceBinding) -> Any:
        import pkcs11
        from pkcs11 import KeyType, ObjectClass

        try:
            return self.session.get_key(
                object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC, id=binding.key_id_bytes
            )
        except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned) as exc:
            raise UserError(
                f"the key '{binding.key_label}' of this identity is not on the PKCS#11 token"
                f" '{self.device.label}' (serial {self.device.serial}): it was deleted, or this"
                " is another token"
            ) from exc
        except pkcs11.PKCS11Error as exc:
            raise UserError(
                f"the PKCS#11 token '{self.device.label}' cannot look for keys"
                f" ({type(exc).__name__})"
            ) from exc

    def bind(self, did: str) -> tuple[DeviceBinding, bytes]:
        """A new key on the token for `did`, and the binding and secret to seal with."""
        import pkcs11
        from pkcs11 import Attribute, KeyType
        from pkcs11.util.ec import encode_named_curve_parameters

        from identity.keystore import device_exchange, new_device_binding

        key_id = secrets.token_bytes(16)
        key_label = KEY_LABEL_PREFIX + did[-DID_SUFFIX_CHARS:]
        try:
            parameters = self.session.create_domain_parameters(
                KeyType.EC,
                {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                local=True,
            )
            public, private = parameters.generate_keypair(
                store=True,
                label=key_label,
                id=key_id,
                public_template={Attribute.VERIFY: False},
                private_template={
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.DERIVE: True,
                    Attribute.SIGN: False,
                },
            )
        except pkcs11.PKCS11Error as exc:
            raise UserError(
                f"the PKCS#11 token '{self.device.label}' cannot make an EC P-256 key"
                f" ({type(exc).__name__})"
            ) from exc
        try:
            token_point = _point(public[Attribute.EC_POINT])
            try:
                ephemeral, secret = device_exchange(token_point)
            except ValueError as exc:
                raise UserError("the PKCS#11 token returned an invalid P-256 key") from exc
            if not secrets.compare_digest(self._derive(private, ephemeral), secret):
                raise UserError(
                    f"the PKCS#11 token '{self.device.label}' computes ECDH wrongly: not bound"
                )
            binding = new_device_binding(
                module=self.device.module.name[:64],
                token_label=self.device.label,
                token_serial=self.device.serial,
                key_label=key_label,
                key_id=key_id,
                ephemeral_point=ephemeral,
            )
        except BaseException:
            self._destroy(key_id)
            raise
        return binding, secret

    def secret(self, binding: DeviceBinding) -> bytes:
        """The device secret of a keystore bound to this token."""
        point = binding.ephemeral_point()  # DamagedKeystore before the token sees it
        return self._derive(self._key(binding), point)

    def _destroy(self, key_id: bytes) -> None:
        import pkcs11
        from pkcs11 import Attribute

        with contextlib.suppress(pkcs11.PKCS11Error):
            for item in list(self.session.get_objects({Attribute.ID: key_id})):
                item.destroy()

    def delete(self, binding: DeviceBinding) -> bool:
        """Destroy the binding's key pair on the token (the objects with its id and label,
        which only didlink gives); False if it could not be done."""
        import pkcs11
        from pkcs11 import Attribute

        if not binding.key_label.startswith(KEY_LABEL_PREFIX):
            return False
        template = {Attribute.ID: binding.key_id_bytes, Attribute.LABEL: binding.key_label}
        try:
            for item in list(self.session.get_objects(template)):
                item.destroy()
        except pkcs11.PKCS11Error:
            return False
        return True


def token_secret(token: DeviceToken, binding: DeviceBinding) -> bytes:
    """The device secret of `binding` (asks for the token's PIN)."""
    with token.session(get_pin(token)) as session:
        return session.secret(binding)


def device_secret(
    binding: DeviceBinding, *, pin: str | None, module: str | Path | None = None
) -> bytes:
    """The device secret of `binding` with no prompt (the Python API, `Agent.open`): the token
    is found first (TokenMissing), then logged in with `pin`, else DIDLINK_PKCS11_PIN
    (TokenPinNeeded if neither; UserError for a wrong or locked PIN)."""
    token = find_token(binding, module=module)
    if pin is None:
        pin = os.environ.get(PIN_ENV)
    if pin is None:
        raise TokenPinNeeded(
            f"this identity is bound to the PKCS#11 token '{token.label}': give its PIN"
            f" (Agent.open(token_pin=...)) or set {PIN_ENV}"
        )
    if not pin or len(pin) > MAX_PIN_CHARS:
        raise UserError("the PKCS#11 PIN must not be empty (nor over 256 characters)")
    with token.session(pin) as session:
        return session.secret(binding)
