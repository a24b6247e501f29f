"""`didlink safety-number` and `didlink contacts verify`: offline verification of a contact.

The safety number (messaging/safety_number.py, specs/verification.md section 2) depends only on
the two DIDs, so it can be compared at any time with no connection: read aloud, side by side, or
by scanning the QR code of the other screen. `contacts verify` records the result in the store
(Verification.SAFETY_NUMBER) once the user confirms that both screens match.

`contacts_verify` is attached to the `contacts` group by didlink/commands/contacts.py.
"""

from __future__ import annotations

import shlex

import click

from didlink.display import shown
from didlink.output import print_json, print_qr, say
from didlink.profile import Profile
from identity.contact import Contact, Verification
from messaging.safety_number import SafetyNumber

EXIT_NOT_VERIFIED = 1


def _contact_and_number(did_or_name: str) -> tuple[Contact, SafetyNumber]:
    """The contact named on the command line and our safety number with it.

    NoIdentity (exit 2) comes first when the profile has no identity; an unknown contact is a
    UserError (exit 2). Only public data is needed: the passphrase is never asked for.
    """
    profile = Profile.from_env()
    local_did = profile.did()
    with profile.open_store() as store:
        contact = store.find_contact(did_or_name)
    return contact, SafetyNumber.for_pair(local_did, contact.did)


def _show(contact: Contact, number: SafetyNumber, *, qr: bool) -> None:
    """The number as 3 lines of 4 groups of 5 digits (and its QR code) on stdout."""
    say(f"Safety number with {shown(contact.display_name)}")
    if contact.name:
        say(f"({contact.did})")
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
    """Show the safety number you share with CONTACT (a DID, a unique start of one, or a name).

    Both of you see the same 60 digits; compare them in person or over a channel you trust,
    then run `didlink contacts verify CONTACT`.
    """
    found, number = _contact_and_number(contact)
    if as_json:
        print_json({"digits": number.digits})
        return
    _show(found, number, qr=not no_qr)
    hint = f"didlink contacts verify {shlex.quote(contact)}"
    say(f"If {shown(found.display_name)} sees the same digits, run: {hint}")


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
    """Mark CONTACT verified after comparing your safety numbers.

    Shows the safety number and asks whether it matches what CONTACT sees (--yes skips the
    question; --scanned compares the other screen's QR payload instead). A 'no' leaves the
    contact as it was and exits with status 1.
    """
    if scanned is not None:
        SafetyNumber.from_qr_payload(scanned)  # malformed: one-line error (exit 2) before output
    found, number = _contact_and_number(contact)
    name = shown(found.display_name)
    _show(found, number, qr=not no_qr and scanned is None)
    if scanned is not None:
        if not number.compare_scanned(scanned):
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
            say(f"Not verified: {name} was left as {found.verification}.", err=True)
            raise click.exceptions.Exit(EXIT_NOT_VERIFIED)
    profile = Profile.from_env()
    with profile.open_store() as store:
        store.set_verification(found.did, Verification.SAFETY_NUMBER)
    say(f"Marked {name} as verified (safety number).")


commands: list[click.Command] = [safety_number]
