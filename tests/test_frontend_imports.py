"""The frontends use the public Agent API only (issue 28, point 2): a static check.

The CLI (didlink/cli.py, didlink/commands/*), the CLI's live sessions (didlink/cli_session.py),
the chat screen (didlink/chat_ui.py), the `--jsonl` spelling (didlink/jsonl.py) and their small
helpers must import none of the session machinery: no node, no flows, no delivery, no outbox...
only `didlink.agent`, `didlink.events`, `didlink.errors`, the session's command classes and the
pure helpers. Every import statement counts, at the top of a module or inside a function (a late
import is still an import), `from didlink import node` as well as `import didlink.node`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "didlink"

MACHINERY = frozenset(
    {
        "node",
        "live",
        "driver",
        "delivery",
        "outgoing",
        "early_handshake",
        "session_close",
        "session_handshake",
        "session_outcome",
        "session_waits",
        "transfers",
        "outbox",
        "mailbox_route",
    }
)
"""Modules of didlink/ that make up the session machinery (behind `didlink.Agent`)."""

FRONTENDS = (
    "cli.py",
    "cli_session.py",
    "chat_ui.py",
    "chat_completion.py",
    "jsonl.py",
    "interrupt.py",
    "typed_path.py",
)
"""The frontend modules of didlink/ (and every module of didlink/commands/)."""

NOT_YET = {
    ("commands/mailbox.py", "didlink.mailbox_route"),
    ("commands/mailbox.py", "didlink.outbox"),
}
"""Known imports not yet moved behind the Agent: `didlink send --wait/--json` and `didlink
receive` report per-relay results the Agent's `send`/`receive` do not give yet (issue 28 point 2
names the live sessions; the mailbox commands are left to the lead). Listed so the list only
shrinks: a new machinery import anywhere fails, and so does an entry here that is gone."""


def frontend_files() -> list[Path]:
    files = [PACKAGE / name for name in FRONTENDS]
    files += sorted((PACKAGE / "commands").glob("*.py"))
    return files


def imported_modules(tree: ast.AST) -> list[str]:
    """Every module an import statement of `tree` names (`from didlink import x`: didlink.x)."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: didlink's modules import absolutely
                names.append("." * node.level + (node.module or ""))
            elif node.module == "didlink":
                names += [f"didlink.{alias.name}" for alias in node.names]
            elif node.module is not None:
                names.append(node.module)
    return names


def machinery_imports(path: Path, root: Path = PACKAGE) -> set[tuple[str, str]]:
    """(file under `root`, module) for each machinery module `path` imports."""
    found = set()
    for name in imported_modules(ast.parse(path.read_text(encoding="utf-8"))):
        parts = name.split(".")
        if name.startswith(".") or (
            parts[0] == "didlink" and len(parts) > 1 and parts[1] in MACHINERY
        ):
            found.add((path.relative_to(root).as_posix(), name))
    return found


def test_the_frontend_modules_exist() -> None:
    for path in frontend_files():
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
        ("import didlink.node", {("x.py", "didlink.node")}),
        ("from didlink import live", {("x.py", "didlink.live")}),
        ("from didlink.outbox import Outbox", {("x.py", "didlink.outbox")}),
        ("def f():\n    import didlink.session_waits\n", {("x.py", "didlink.session_waits")}),
        ("from . import node", {("x.py", ".")}),
        ("import didlink.agent\nfrom didlink import events, display", set()),
        ("from didlink.nodes import x\nimport livestock", set()),
    ],
)
def test_the_check_sees_every_spelling_of_an_import(
    tmp_path: Path, source: str, expected: set[tuple[str, str]]
) -> None:
    """Negative and positive cases of the checker itself."""
    path = tmp_path / "x.py"
    path.write_text(source, encoding="utf-8")
    assert machinery_imports(path, root=tmp_path) == expected
