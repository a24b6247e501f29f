"""didlink/cli/driver.py against a scripted child process (no didlink, no network: fast).

The child stands in for `didlink ... --jsonl`: it prints JSON events, echoes the commands it is
sent, and misbehaves on demand (garbage on stdout, silence, an early exit), so that each
failure path of the driver is seen to give a one-line DriverError with the stderr attached.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from didlink.cli.driver import Actor, DriverError, JsonlProcess
from didlink.errors import UserError

pytestmark = pytest.mark.timeout(30)

CHILD = r"""
import json, os, sys, time
def out(**event):
    print(json.dumps(event), flush=True)
mode = sys.argv[1]
if mode == "echo":
    out(event="ready", home=os.environ["DIDLINK_HOME"], passphrase=os.environ["DIDLINK_PASSPHRASE"],
        extra=os.environ.get("EXTRA"), leaked=os.environ.get("DIDLINK_LEAK"),
        prefixed=os.environ.get("PREFIXED"))
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "quit":
            out(event="closed")
            break
        out(event="echo", **command)
elif mode == "garbage":
    print("this is not json", flush=True)
    time.sleep(30)
elif mode == "silent":
    print("still thinking", file=sys.stderr, flush=True)
    time.sleep(30)
elif mode == "dies":
    out(event="started")
    print("error: the thing broke", file=sys.stderr, flush=True)
    sys.exit(2)
elif mode == "json":
    print(json.dumps({"answer": 42}))
"""


@dataclass(frozen=True)
class Scripted(Actor):
    """An actor whose `didlink` is the script above."""

    def command(self, *args: str) -> list[str]:
        return [*self.prefix, sys.executable, "-c", CHILD, *args]


def _actor(
    tmp_path: Path, *, extra_env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> Scripted:
    home = tmp_path / "home"
    return Scripted("Tester", home, "pass phrase", extra_env=extra_env or {}, prefix=prefix)


def _note(error: DriverError) -> str:
    return "\n".join(getattr(error, "__notes__", []))


def test_commands_in_events_out_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIDLINK_LEAK", "from the parent")
    actor = _actor(tmp_path, extra_env={"EXTRA": "yes"}, prefix=("env", "PREFIXED=1"))
    with JsonlProcess(actor, ["echo"], timeout=10) as child:
        ready = child.expect("ready")
        assert ready["home"] == str(tmp_path / "home")
        assert ready["passphrase"] == "pass phrase"
        assert ready["extra"] == "yes"
        assert ready["leaked"] is None  # DIDLINK_ variables of the parent never pass through
        assert ready["prefixed"] == "1"  # the prefix ran before the command
        child.send("first", n=1)
        child.send("second", n=2)
        child.send("quit")
        # Taken out of order: `closed` first, the echoes stay for later.
        assert child.expect("closed") == {"event": "closed"}
        assert [e["n"] for e in child.seen("echo")] == [1, 2]
        assert child.expect("echo") == {"event": "echo", "cmd": "first", "n": 1}
        assert child.rest() == [{"event": "echo", "cmd": "second", "n": 2}]
        assert [e["event"] for e in child.events] == ["ready", "echo", "echo", "closed"]
        assert child.wait() == 0


def test_a_missing_event_times_out_with_the_stderr(tmp_path: Path) -> None:
    with JsonlProcess(_actor(tmp_path), ["silent"]) as child:
        start = time.monotonic()
        with pytest.raises(DriverError) as caught:
            child.expect("sas", timeout=1.0)
        assert time.monotonic() - start < 5
    message = str(caught.value)
    assert "\n" not in message
    assert "Tester" in message and "'sas'" in message and "within 1 s" in message
    assert "still thinking" in message  # the last stderr line, for the CLI's one line
    assert "still thinking" in _note(caught.value)
    assert isinstance(caught.value, UserError)  # so the CLI prints it as one line


def test_output_that_is_not_json_is_refused(tmp_path: Path) -> None:
    refused = pytest.raises(DriverError, match="not a JSON event: 'this is not json'")
    with JsonlProcess(_actor(tmp_path), ["garbage"]) as child, refused:
        child.expect("token", timeout=10)


def test_an_early_exit_ends_the_wait_at_once(tmp_path: Path) -> None:
    with JsonlProcess(_actor(tmp_path), ["dies"], timeout=10) as child:
        start = time.monotonic()
        with pytest.raises(DriverError) as caught:
            child.expect("connected")
        assert time.monotonic() - start < 5
        assert child.wait() == 2
    assert "output ended while waiting for 'connected'" in str(caught.value)
    assert "the thing broke" in str(caught.value)
    assert '"event": "started"' in _note(caught.value)  # the events read so far
    with pytest.raises(DriverError, match="its output ended"):
        child.next_event(timeout=1)
    with pytest.raises(DriverError, match="no longer reads its input"):
        child.send("quit")


def test_wait_is_bounded_and_kill_can_repeat(tmp_path: Path) -> None:
    child = JsonlProcess(_actor(tmp_path), ["silent"])
    try:
        with pytest.raises(DriverError, match=r"did not exit within 0\.5 s"):
            child.wait(timeout=0.5)
        with pytest.raises(DriverError, match=r"output did not end within 0\.5 s"):
            child.rest(timeout=0.5)
    finally:
        child.kill()
        child.kill()
    assert child.proc.returncode is not None


def test_run_to_completion(tmp_path: Path) -> None:
    actor = _actor(tmp_path)
    assert actor.run_json("json") == {"answer": 42}
    with pytest.raises(DriverError) as caught:
        actor.run("dies")
    assert "`didlink dies` failed (exit 2): error: the thing broke" in str(caught.value)
    assert actor.run("dies", check=False).returncode == 2


def test_the_prefix_comes_first_and_spawn_adds_jsonl(tmp_path: Path) -> None:
    actor = Actor("Alice", tmp_path, "p", prefix=("ip", "netns", "exec", "ns1"))
    assert actor.command("invite", "--jsonl") == [
        "ip", "netns", "exec", "ns1", sys.executable, "-m", "didlink", "invite", "--jsonl"
    ]  # fmt: skip
    with _actor(tmp_path).spawn("echo", timeout=10) as child:
        assert child.args == ["echo", "--jsonl"]
        assert child.label == "Tester (didlink echo)"
        child.expect("ready")
