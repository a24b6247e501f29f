"""`didlink safety-number` and `didlink contacts verify`: offline verification of a contact.

The safety number (messaging/safety_number.py, specs/verification.md section 2) depends only on
the two DIDs, so it can be compared at any time with no connection: read aloud, side by side, or
by scanning the QR code of the other screen. `contacts verify` records the result in the store
(Verification.SAFETY_NUMBER) once the user confirms that both screens match.

`contacts_verify` is attached to the `contacts` group by didlink/cli/commands/contacts.py.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from didlink.errors import UserError
from didlink.profile.folder import Profile
from didlink.profile.names import BARE_DID_START
from didlink.words.display import shown
from didlink.words.output import print_json, print_qr, say
from identity.contact import Contact, Verification
from messaging.safety_number import SafetyNumber

if TYPE_CHECKING:
    from didlink.profile.store import Store

EXIT_NOT_VERIFIED = 1


@dataclass(frozen=True)
class Target:
    """Whom a safety number is computed with: a contact, or someone not (yet) one of them."""

    did: str
    contact: Contact | None  # None: not a contact (a DID or a token given on the command line)
    label: str | None = None  # the token's label, kept as a suggestion if they are added

    @property
    def display_name(self) -> str:
        return self.contact.display_name if self.contact is not None else self.did


def _target(store: Store, text: str, *, own_did: str) -> Target:
    """A contact (name, DID, or the start of one: Store.find_contact); else a full DID or an
    authentic didlink token (its signer) that is not a contact yet: the safety number depends
    only on the two DIDs, so the side that does not have the other yet can compare it too
    (a card makes a contact on one side only: specs/verification.md section 2)."""
    try:
        found = store.find_contact(text)
    except UserError as missing:
        # late: a contact's number needs none of these (pydantic's models: a slower start)
        from didlink.profile.store import check_did
        from identity.errors import IdentityError
        from identity.invitation import Response
        from identity.token import PREFIX, decode_token

        compact = "".join(text.split())
        if compact[: len(PREFIX)].lower() == PREFIX:
            token = decode_token(compact)  # an altered or forged token: its error
            did = token.responder if isinstance(token, Response) else token.inviter
            label = token.label
        else:
            did = "did:key:" + compact if compact.startswith(BARE_DID_START) else compact
            label = None
            try:
                check_did(did)
            except IdentityError:  # a name, or a DID prefix, that matched no contact
                raise missing from None
    else:
        return Target(did=found.did, contact=found)
    if did == own_did:
        raise UserError("this is your own DID: a safety number is between you and someone else")
    contact = store.get_contact(did)
    return Target(did=did, contact=contact, label=None if contact else label)


def _target_and_number(text: str) -> tuple[Target, SafetyNumber]:
    """The target named on the command line and our safety number with it.

    NoIdentity (exit 2) comes first when the profile has no identity; an unknown contact is a
    UserError (exit 2). Only public data is needed: the passphrase is never asked for.
    """
    profile = Profile.from_env()
    local_did = profile.did()
    with profile.open_store() as store:
        target = _target(store, text, own_did=local_did)
    return target, SafetyNumber.for_pair(local_did, target.did)


def _show(target: Target, number: SafetyNumber, *, qr: bool) -> None:
    """The number as 3 lines of 4 groups of 5 digits (and its QR code) on stdout."""
    say(f"Safety number with {shown(target.display_name)}")
    if target.contact is None:
        say("(not one of your contacts yet)")
    elif target.contact.name:
        say(f"({target.did})")
    say()
    for line in number.display_lines():
        say(f"    {line}")
    say()
    if qr:
        print_qr(number.qr_payload())
        say(number.qr_payload())
        say()


@click.command("safety-number")
@click.argument("contact")
@click.option("--json", "as_json", is_flag=True, help='Print {"digits": "<60 digits>"}.')
@click.option("--no-qr", is_flag=True, help="Do not draw the QR code.")
def safety_number(contact: str, as_json: bool, no_qr: bool) -> None:
    """Show the safety number you share with CONTACT (a name, a DID or a unique start of one).

    Both of you see the same 60 digits; compare them in person or over a channel you trust,
    then run `didlink contacts verify CONTACT`. Someone not in your contacts yet (they accepted
    your card) works too: give their full DID (their `didlink whoami`) or their card.
    """
    found, number = _target_and_number(contact)
    if as_json:
        print_json({"digits": number.digits})
        return
    _show(found, number, qr=not no_qr)
    reference = contact if found.contact is not None else found.did
    hint = f"didlink contacts verify {shlex.quote(reference)}"
    who = shown(found.display_name)
    if found.contact is None:
        say(f"If they see the same digits, run: {hint} (it adds them as a verified contact)")
    else:
        say(f"If {who} sees the same digits, run: {hint}")


@click.command("verify")
@click.argument("contact")
@click.option("--yes", is_flag=True, help="Do not ask: the numbers were compared already.")
@click.option(
    "--scanned",
    metavar="PAYLOAD",
    help="The text of the QR code scanned from the other screen; compared instead of asking.",
)
@click.option("--no-qr", is_flag=True, help="Do not draw the QR code.")
def contacts_verify(contact: str, yes: bool, scanned: str | None, no_qr: bool) -> None:
    """Mark CONTACT verified after comparing your safety numbers (a full DID or a card of
    someone not in your contacts adds them, verified).

    Shows the safety number and asks whether it matches what CONTACT sees (--yes skips the
    question; --scanned compares the other screen's QR payload instead). A 'no' leaves the
    contact as it was and exits with status 1.
    """
    if scanned is not None:
        SafetyNumber.from_qr_payload(scanned)  # malformed: one-line error (exit 2) before output
    found, number = _target_and_number(contact)
    name = shown(found.display_name)
    _show(found, number, qr=not no_qr and scanned is None)
    if scanned is not None:
        if not number.compare_scanned(scanned):
            if found.contact is None:  # nothing to mark: they stay out of the contacts
                say(
                    f"The scanned safety number does NOT match: {name} was not added. "
                    "Someone may be impersonating one of you.",
                    err=True,
                )
                raise click.exceptions.Exit(EXIT_NOT_VERIFIED)
            with Profile.from_env().open_store() as store:
                store.set_verification(found.did, Verification.SUSPECT)
            say(
                f"The scanned safety number does NOT match: {name} is now marked suspect. "
                "Someone may be impersonating one of you; do not trust this contact yet.",
                err=True,
            )
            raise click.exceptions.Exit(EXIT_NOT_VERIFIED)
    elif not yes:
        try:
            confirmed = click.confirm(f"Does it match what {name} sees?", default=False)
        except click.Abort:  # end of input (no terminal, nothing piped)
            confirmed = False
            say()
        if not confirmed:
            known = found.contact
            state = "not added" if known is None else f"left as {known.verification}"
            say(f"Not verified: {name} was {state}.", err=True)
            raise click.exceptions.Exit(EXIT_NOT_VERIFIED)
    profile = Profile.from_env()
    with profile.open_store() as store:
        if found.contact is None:
            store.add_contact(found.did, suggested_name=found.label, now=datetime.now(UTC))
        store.set_verification(found.did, Verification.SAFETY_NUMBER)
    if found.contact is None:
        say(f"Added {name} as a contact, verified (safety number).")
    else:
        say(f"Marked {name} as verified (safety number).")


commands: list[click.Command] = [safety_number]
