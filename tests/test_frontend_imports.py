"""The frontends use the public Agent API only (issue 28, point 2): a static check.

The command line (didlink/cli/, its commands and its live sessions), the chat screen
(didlink/chat/) and the `--jsonl` spelling (didlink/jsonl.py) must import none of the machinery
behind `didlink.Agent`: nothing of didlink/session/ (the live sessions) or didlink/mailbox/ (the
relays route), and not the outbox, but the few parts that are vocabulary rather than machinery
(`ALLOWED`). Every import statement counts, at the top of a module or inside a function (a late
import is still an import), `from didlink.session import node` as well as
`import didlink.session.node`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "didlink"

MACHINERY_PACKAGES = ("didlink.session", "didlink.mailbox")
"""The packages behind `didlink.Agent`: a frontend imports nothing from them but `ALLOWED`."""

MACHINERY_MODULES = frozenset({"didlink.profile.outbox"})
"""Machinery kept elsewhere (the persistent outbox is the store's, but only sessions use it)."""

ALLOWED = frozenset(
    {
        "didlink.session.commands",  # the commands a session takes (what --jsonl parses into)
        "didlink.mailbox.relays",  # the profile's relay list (`didlink relays`)
        "didlink.mailbox.display",  # how a mailbox arrival is printed (`receive`, `daemon`)
        "didlink.mailbox.local_relay",  # a relay process of this machine (the demo's)
    }
)

NOT_YET = {
    ("cli/commands/mailbox.py", "didlink.mailbox.route"),
    ("cli/commands/mailbox.py", "didlink.mailbox.store"),
    ("cli/commands/mailbox.py", "didlink.mailbox.requests"),
    ("cli/commands/mailbox.py", "didlink.profile.outbox"),
    ("cli/commands/mailbox.py", "didlink.session.queued_files"),
    ("cli/commands/mailbox.py", "didlink.session.resume"),
    ("cli/commands/contacts.py", "didlink.mailbox.requests"),
    ("cli/commands/invite.py", "didlink.mailbox.reach"),
    ("cli/commands/invite.py", "didlink.mailbox.requests"),
    ("cli/commands/daemon.py", "didlink.mailbox.daemon"),
}
"""Known imports not yet moved behind the Agent (issue 28, left): `didlink send` (`--wait`,
`--json`, `--file`) and `didlink receive` report per-relay results and queue files in ways the
Agent's `send`/`receive`/`send_file` do not give yet; `accept` of a card, `invite --card` and
`contacts` keep or read a card's reach and the message requests directly; `daemon` takes the
profile's lock itself. Listed so the list only shrinks: a new machinery import anywhere fails,
and so does an entry here that is gone."""


def frontend_files() -> list[Path]:
    files = sorted((PACKAGE / "cli").rglob("*.py")) + sorted((PACKAGE / "chat").rglob("*.py"))
    return [*files, PACKAGE / "jsonl.py"]


def imported_modules(tree: ast.AST) -> list[str]:
    """Every module an import statement of `tree` names (`from didlink.x import y`: didlink.x.y
    as well as didlink.x, since y may be a module)."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: didlink's modules import absolutely
                names.append("." * node.level + (node.module or ""))
            elif node.module is not None:
                names.append(node.module)
                if node.module.startswith("didlink"):
                    names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _machinery(name: str) -> bool:
    if name in ALLOWED or any(name.startswith(allowed + ".") for allowed in ALLOWED):
        return False
    if name in MACHINERY_MODULES:
        return True
    return any(name.startswith(package + ".") for package in MACHINERY_PACKAGES)


def machinery_imports(path: Path, root: Path = PACKAGE) -> set[tuple[str, str]]:
    """(file under `root`, module) for each machinery module `path` imports."""
    found = set()
    names = imported_modules(ast.parse(path.read_text(encoding="utf-8")))
    for name in names:
        if name.startswith(".") or _machinery(name):
            # `from didlink.session.node import Node` names both the module and Node: one entry
            module = name
            while module.rsplit(".", 1)[0] in names and _machinery(module.rsplit(".", 1)[0]):
                module = module.rsplit(".", 1)[0]
            found.add((path.relative_to(root).as_posix(), module))
    return found


def test_the_frontend_modules_exist() -> None:
    files = frontend_files()
    assert PACKAGE / "cli" / "session.py" in files and PACKAGE / "chat" / "screen.py" in files
    for path in files:
        assert path.is_file(), path


@pytest.mark.parametrize("path", frontend_files(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_a_frontend_imports_no_session_machinery(path: Path) -> None:
    assert machinery_imports(path) - NOT_YET == set()


def test_the_known_exceptions_are_still_there() -> None:
    """An exception that was fixed leaves the list (so it cannot come back unnoticed)."""
    found = set().union(*(machinery_imports(path) for path in frontend_files()))
    assert found >= NOT_YET


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import didlink.session.node", {("x.py", "didlink.session.node")}),
        ("from didlink.session import live", {("x.py", "didlink.session.live")}),
        ("from didlink.profile.outbox import Outbox", {("x.py", "didlink.profile.outbox")}),
        (
            "def f():\n    import didlink.session.waits\n",
            {("x.py", "didlink.session.waits")},
        ),
        ("from didlink.mailbox.route import MailboxRoute", {("x.py", "didlink.mailbox.route")}),
        ("from . import node", {("x.py", ".")}),
        ("import didlink.agent\nfrom didlink.words import display", set()),
        ("from didlink.session.commands import SendText", set()),
        ("from didlink.mailbox import relays", set()),
        ("from didlink.sessions import x\nimport livestock", set()),
    ],
)
def test_the_check_sees_every_spelling_of_an_import(
    tmp_path: Path, source: str, expected: set[tuple[str, str]]
) -> None:
    """Negative and positive cases of the checker itself."""
    path = tmp_path / "x.py"
    path.write_text(source, encoding="utf-8")
    assert machinery_imports(path, root=tmp_path) == expected
