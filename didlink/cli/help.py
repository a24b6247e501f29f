"""The help a person reads: `didlink` alone, each command's one-line summary and its examples.

Kept in one place, apart from the commands' code: `apply_help` gives every command its summary
(`short_help`, never cut mid-sentence by click) and an "Examples:" block (its `epilog`), and
`overview` lays out `didlink` alone in sections, starting with where to start. A command with
no summary here shows the first sentence of its docstring; one with no examples has none (a test
asks for both: tests/test_cli_help.py).
"""

from __future__ import annotations

import click

START = "Start here: didlink init"

SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Getting started", ("init", "invite", "accept", "chat")),
    ("Contacts", ("contacts", "safety-number", "history")),
    ("Offline contacts", ("send", "receive", "daemon", "relays")),
    ("Your identity", ("whoami", "name", "passwd", "unlock", "lock", "backup", "restore")),
    ("Tools", ("ice", "inspect", "resolve", "demo")),
)
"""The order of `didlink` alone; commands not named here follow under "More commands"."""

SUMMARIES: dict[str, str] = {
    "init": "Create your identity (a did:key), protected by a passphrase.",
    "invite": "Invite someone to a live chat, or make a contact --card.",
    "accept": "Accept an invitation or a contact card someone gave you.",
    "chat": "Chat again with a contact (through relays, or by a token).",
    "contacts": "List your contacts; rename, verify or remove one.",
    "contacts rename": "Give a contact a name of your choice.",
    "contacts verify": "Mark a contact verified after comparing safety numbers.",
    "contacts remove": "Forget a contact and all that is kept about them.",
    "safety-number": "Show the number to compare with a contact, and its QR code.",
    "history": "Show (or --clear) the messages kept with --history.",
    "whoami": "Show your DID and its QR code (no passphrase needed).",
    "passwd": "Change the passphrase that protects your identity.",
    "backup": "Save your identity: a recovery phrase or a backup file.",
    "backup phrase": "Show the 24-word recovery phrase of your identity.",
    "backup export": "Write your identity and contacts to a sealed backup file.",
    "backup import": "Restore a backup file into an empty profile.",
    "restore": "Recreate your identity from its recovery phrase.",
    "restore phrase": "Recreate your identity from its 24-word recovery phrase.",
    "inspect": "Check a token's signature and show what it says.",
    "resolve": "Show the DID document of a did:key (no network needed).",
    "demo": "Watch the whole story with two throwaway identities.",
    "name": "Show or set the name you suggest to the people you invite.",
    "send": "Send a text to a contact, online or not; or queue a file.",
    "receive": "Fetch the messages that arrived since last time, each once.",
    "daemon": "Stay online: receive and send messages until stopped.",
    "relays": "List the Nostr relays that carry messages to offline contacts.",
    "relays add": "Add relays (wss://...; ws:// only on this machine).",
    "relays remove": "Remove a relay.",
    "unlock": "Ask for the passphrase once, then not again for a while.",
    "lock": "Forget the unlocked key: the next command asks again.",
    "keystore": "Bind your keystore to a hardware token, or unbind it.",
    "keystore bind": "Seal the keystore under a PKCS#11 token as well.",
    "keystore unbind": "Seal the keystore under the passphrase alone again.",
    "ice": "Your STUN and TURN servers and the ICE policy.",
    "ice add": "Add a STUN or TURN server (replaces one of its kind).",
    "ice remove": "Forget a STUN or TURN server and its credential.",
    "ice policy": "relay: always through your TURN server; all: direct if can.",
}

EXAMPLES: dict[str, tuple[str, ...]] = {
    "": (
        "didlink init                  # create your identity",
        "didlink invite                # a live chat: give the token, paste the reply",
        "didlink accept                # paste a token someone gave you",
        "didlink COMMAND --help        # more about one command",
    ),
    "init": ("didlink init", "didlink init --name Alice"),
    "invite": (
        "didlink invite                        # live: connect, compare, chat",
        "didlink invite --card --label Alice   # a contact card, valid 30 days",
        "didlink invite --qr                   # its QR code, even a big one",
    ),
    "accept": (
        "didlink accept                        # then paste the token",
        "didlink accept 'didlink:...'          # the token in single quotes",
        "didlink accept --no-relay             # the reply by hand only, not by relay",
    ),
    "chat": (
        "didlink chat bob                      # bob: a contact's name or DID",
        "didlink chat bob --no-relay           # a token to paste, even with relays",
    ),
    "contacts": ("didlink contacts", "didlink contacts --json"),
    "contacts rename": (
        "didlink contacts rename did:key:z6Mk... bob   # name a contact",
        "didlink contacts rename bob robert            # rename them",
    ),
    "contacts verify": (
        "didlink contacts verify bob                   # compare, then answer",
        "didlink contacts verify bob --scanned 'didlink-sn:1:...'",
    ),
    "contacts remove": ("didlink contacts remove bob",),
    "safety-number": ("didlink safety-number bob",),
    "history": (
        "didlink chat bob --history                    # keep this chat's messages",
        "didlink history bob --limit 20                # the last 20 of them",
        "didlink history bob --clear",
    ),
    "whoami": ("didlink whoami", "didlink whoami --json"),
    "passwd": ("didlink passwd",),
    "backup": ("didlink backup phrase", "didlink backup export ~/didlink-backup.bin"),
    "backup phrase": ("didlink backup phrase             # write the words down, on paper",),
    "backup export": ("didlink backup export ~/didlink-backup.bin",),
    "backup import": ("didlink backup import ~/didlink-backup.bin",),
    "restore": ("didlink restore phrase",),
    "restore phrase": ("didlink restore phrase            # then type the 24 words",),
    "inspect": ("didlink inspect 'didlink:...'", "didlink inspect 'didlink:...' --json"),
    "resolve": (
        "didlink resolve did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
        "didlink resolve did:key:z6Mk... --format base58 --json",
    ),
    "demo": ("didlink demo", "didlink demo --attack mitm     # and a man in the middle caught"),
    "send": (
        "didlink send bob 'See you at 8'            # exits once a relay has it",
        "didlink send bob 'Are you there?' --wait   # until bob's receipt",
        "didlink send bob --file notes.pdf          # leaves on the next live chat",
    ),
    "receive": ("didlink receive", "didlink receive --jsonl"),
    "daemon": (
        "didlink daemon                    # until Ctrl-C (or SIGTERM)",
        "didlink daemon --jsonl            # one JSON object per line",
    ),
    "relays": ("didlink relays", "didlink relays --json"),
    "relays add": ("didlink relays add wss://relay.example.org wss://nos.example.net",),
    "relays remove": ("didlink relays remove wss://relay.example.org",),
    "name": (
        "didlink name                      # the name you suggest now",
        "didlink name Alice",
        "didlink name --clear              # suggest none",
    ),
    "unlock": (
        "didlink unlock                    # for 8 hours",
        "didlink unlock --for 30m",
    ),
    "lock": ("didlink lock                      # when you step away",),
    "keystore": ("didlink keystore bind", "didlink keystore unbind"),
    "keystore bind": (
        "didlink keystore bind                  # the only token present",
        "didlink keystore bind --token YubiKey  # one of several, by label",
    ),
    "keystore unbind": ("didlink keystore unbind            # with the token present",),
    "ice": ("didlink ice", "didlink ice --json"),
    "ice add": (
        "didlink ice add stun:stun.example.org:3478",
        "didlink ice add turn:turn.example.org:3478 --username alice",
        "didlink ice add 'turns:turn.example.org:5349?transport=tcp' --username alice",
    ),
    "ice remove": ("didlink ice remove stun:stun.example.org:3478",),
    "ice policy": (
        "didlink ice policy relay          # peers never learn your addresses",
        "didlink ice policy all            # the default: direct when possible",
    ),
}


def examples_text(lines: tuple[str, ...]) -> str:
    """An "Examples:" block for click's epilog (`\\b`: kept as it is, not rewrapped)."""
    return "Examples:\n\n\b\n" + "\n".join("  " + line for line in lines)


def first_sentence(command: click.Command) -> str:
    """A command's summary when SUMMARIES has none: the first sentence of its help, whole."""
    text = " ".join((command.help or "").split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def apply_help(group: click.Group, path: str = "") -> None:
    """Give every command under `group` its summary and examples (module docstring)."""
    examples = EXAMPLES.get(path)
    if examples and not group.epilog:
        group.epilog = examples_text(examples)
    for name, command in group.commands.items():
        full = f"{path} {name}".strip()
        command.short_help = SUMMARIES.get(full) or command.short_help or first_sentence(command)
        if not command.epilog and full in EXAMPLES:
            command.epilog = examples_text(EXAMPLES[full])
        if isinstance(command, click.Group):
            apply_help(command, full)


def overview(group: click.Group, ctx: click.Context, formatter: click.HelpFormatter) -> None:
    """The commands of `didlink` alone, in SECTIONS, each with its whole summary."""
    listed: set[str] = set()
    sections: list[tuple[str, list[str]]] = []
    for title, wanted in SECTIONS:
        present = [n for n in wanted if n in group.commands]
        listed.update(present)
        sections.append((title, present))
    rest = sorted(n for n in group.list_commands(ctx) if n not in listed)
    sections.append(("More commands", rest))
    shown = {n for _, listed_names in sections for n in listed_names}
    shown = {n for n in shown if not group.commands[n].hidden}
    column = max((len(n) for n in shown), default=0)  # one column for every section
    for title, section in sections:
        rows = [
            (name.ljust(column), group.commands[name].get_short_help_str(limit=1000))
            for name in section
            if name in shown
        ]
        if rows:
            with formatter.section(title):
                formatter.write_dl(rows, col_max=16)


FIRST_STEPS: tuple[tuple[str, str], ...] = (
    ("didlink invite", "invite someone to a live chat (they run didlink accept)"),
    ("didlink accept", "accept an invitation or a contact card someone gave you"),
    ("didlink chat NAME", "chat again with a contact"),
    ("didlink contacts", "list your contacts"),
)


def first_steps(*, has_identity: bool) -> list[str]:
    """`didlink` alone: what it is, where to start, the few commands a person starts with;
    short enough for an 80x24 terminal (the whole list is `didlink --help`)."""
    lines = [
        "didlink: your own identity (a did:key) and private chats, straight from",
        "computer to computer: no account, no server.",
        "",
    ]
    if has_identity:
        lines.append("You have an identity here (didlink whoami shows it). Next:")
    else:
        lines.append(f"{START}        (creates your identity, under a passphrase)")
        lines.append("Then:")
    lines += [f"  {command:<19}{what}" for command, what in FIRST_STEPS]
    lines += [
        "",
        "All commands: didlink --help        One command: didlink COMMAND --help",
    ]
    return lines
