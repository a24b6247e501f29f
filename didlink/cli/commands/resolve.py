"""`didlink resolve DID [--json] [--format jwk|base58]`: show the DID document of a did:key.

An invalid DID raises the identity error; the CLI frame prints "error: <code>: <message>" on
stderr and exits 2 (specs/identity.md §3 lists the codes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from didlink.words.output import print_json, say
from identity.did_key import parse_did_key

if TYPE_CHECKING:
    from identity.did_document import DidDocument

KEY_FORMATS = ("jwk", "base58")
"""The values of identity.did_document.PublicKeyFormat, spelled out so that declaring the
command does not build the DID document's pydantic models (tests/test_cli_resolve.py checks
that they agree)."""

_RELATIONSHIPS = (
    ("authentication", "authentication"),
    ("assertion_method", "assertionMethod"),
    ("capability_invocation", "capabilityInvocation"),
    ("capability_delegation", "capabilityDelegation"),
    ("key_agreement", "keyAgreement"),
)


@click.command("resolve")
@click.argument("did")
@click.option("--json", "as_json", is_flag=True, help="Print the DID document as JSON.")
@click.option(
    "--format",
    "key_format",
    type=click.Choice(KEY_FORMATS),
    default=KEY_FORMATS[0],
    show_default=True,
    help="Key representation: JsonWebKey2020 (jwk) or the 2018/2019 base58 suites.",
)
def resolve_command(did: str, as_json: bool, key_format: str) -> None:
    """Resolve a did:key DID to its DID document (no network: the key is the DID)."""
    from identity.did_document import PublicKeyFormat, resolve  # late: pydantic models

    key = parse_did_key(did)
    document = resolve(did, key_format=PublicKeyFormat(key_format))
    if as_json:
        print_json(document.to_json())
        return
    say(f"DID:       {document.id}")
    say(f"Key type:  {key.key_type.label}")
    say("Verification methods:")
    for method in document.verification_method:
        uses = ", ".join(
            name for attr, name in _RELATIONSHIPS if method.id in _refs(document, attr)
        )
        say(f"  #{method.id.partition('#')[2]}")
        say(f"      type: {method.type}")
        say(f"      used for: {uses}")
    for method_id in document.key_agreement or []:
        say(f"Key agreement: {method_id}")


def _refs(document: DidDocument, attr: str) -> list[str]:
    value = getattr(document, attr)
    return list(value) if value else []


commands: list[click.Command] = [resolve_command]
