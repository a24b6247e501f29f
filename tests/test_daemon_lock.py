"""One daemon per profile (didlink/mailbox/daemon.py `DaemonLock`, specs/mailbox.md §16): a 0600
`daemon.lock` under an exclusive flock, holding the owner's pid; a second lock names it, a
damaged file names no pid, a link is refused, a loose mode tightened. (The real CLI refusing a
second daemon: tests/e2e/test_daemon.py.)"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest


def test_a_damaged_lock_file_names_no_pid(tmp_path: Path) -> None:
    from didlink.mailbox.daemon import DaemonLock, DaemonRunning

    folder = tmp_path / "p"
    folder.mkdir(mode=0o700)
    with DaemonLock(folder):
        (folder / "daemon.lock").write_bytes(b"\x1b[31m not a pid " * 100)
        with pytest.raises(DaemonRunning) as refused:
            DaemonLock(folder).__enter__()
        assert "pid" not in str(refused.value) and "\x1b" not in str(refused.value)
    with DaemonLock(folder):  # released: taken again
        assert (folder / "daemon.lock").read_text() == f"{os.getpid()}\n"


def test_a_lock_file_that_is_a_link_is_refused_and_a_loose_one_tightened(tmp_path: Path) -> None:
    from didlink.errors import UserError
    from didlink.mailbox.daemon import DaemonLock

    folder = tmp_path / "p"
    folder.mkdir(mode=0o700)
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep")
    (folder / "daemon.lock").symlink_to(target)
    with pytest.raises(UserError, match="lock file"):
        DaemonLock(folder).__enter__()
    assert target.read_bytes() == b"keep"  # nothing written through the link
    (folder / "daemon.lock").unlink()
    (folder / "daemon.lock").write_bytes(b"")
    os.chmod(folder / "daemon.lock", 0o644)
    with DaemonLock(folder):
        assert stat.S_IMODE((folder / "daemon.lock").stat().st_mode) == 0o600


def test_a_second_lock_names_the_first_ones_pid(tmp_path: Path) -> None:
    from didlink.mailbox.daemon import DaemonLock, DaemonRunning

    with (
        DaemonLock(tmp_path),
        pytest.raises(
            DaemonRunning, match=f"already runs for this profile \\(pid {os.getpid()}\\)"
        ),
    ):
        DaemonLock(tmp_path).__enter__()
    assert (tmp_path / "daemon.lock").read_bytes() == b""
