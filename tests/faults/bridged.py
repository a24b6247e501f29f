"""Two peer namespaces joined through the impairing bridge of tests/faults/bridge.py (issue 7 §3).

`bridged_hosts(impairment)` builds, for one test, three namespaces with unique (pid-based)
names, A and B holding the peers' addresses on one /24 and BR holding the other two veth ends
(up, no address), starts `python -m tests.faults.bridge` inside BR and yields a `BridgedHosts`.
On exit, whatever happened, it stops the bridge (SIGTERM, then SIGKILL) and deletes the three
namespaces, which deletes the veth pairs with them. Without root or iproute2 the test is skipped
(locally) or failed (CI=true), see tests/support/require.py.

`in_namespace(namespace)` is the command prefix that starts a `didlink` process (tests/e2e/
driver.py `Cli(..., prefix=...)`) inside a namespace.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.faults.bridge import Impairment
from tests.support.require import require

ROOT = Path(__file__).resolve().parents[2]
SUBNET = "10.214.{}.{}"
READY_TIMEOUT = 10.0
_serial = itertools.count()

Stats = dict[str, dict[str, int]]


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)


def ip_steps(steps: list[tuple[str, ...]]) -> None:
    """Run `ip` with each argument tuple in order; the first failure fails (or skips) the test."""
    for step in steps:
        result = ip(*step)
        require(result.returncode == 0, f"ip {' '.join(step)}: {result.stderr.strip()}")


def in_namespace(namespace: str) -> tuple[str, ...]:
    """The command prefix that starts a process inside `namespace` (for `Cli(prefix=...)`)."""
    return ("ip", "netns", "exec", namespace)


def can_make_namespaces() -> bool:
    return shutil.which("ip") is not None and os.geteuid() == 0


@dataclass(frozen=True)
class BridgedHosts:
    """The two peer namespaces, their addresses, and the bridge's counts between them."""

    ns_a: str
    addr_a: str
    ns_b: str
    addr_b: str
    stats_path: Path

    def stats(self) -> Stats:
        """The bridge's latest counts: {"a_to_b": {...}, "b_to_a": {...}} (see bridge.py)."""
        loaded: Stats = json.loads(self.stats_path.read_text())
        return loaded


@contextmanager
def bridged_hosts(impairment: Impairment, *, stats_dir: Path) -> Iterator[BridgedHosts]:
    """A - BR - B with the bridge running in BR; everything torn down on exit."""
    require(can_make_namespaces(), "needs root and iproute2 to create network namespaces")
    serial = next(_serial)
    tag = f"{os.getpid() % 100000}{serial % 10}"  # <= 6 characters: names stay <= 15
    ns_a, ns_b, ns_br = f"dlb{tag}a", f"dlb{tag}b", f"dlb{tag}r"
    if_a, if_al, if_b, if_br = f"w{tag}a", f"w{tag}al", f"w{tag}b", f"w{tag}br"
    net = (os.getpid() + serial) % 250
    addr_a, addr_b = SUBNET.format(net, 1), SUBNET.format(net, 2)
    stats_path = stats_dir / f"bridge-{tag}.json"
    created: list[str] = []
    bridge: subprocess.Popen[str] | None = None
    try:
        for ns in (ns_a, ns_b, ns_br):
            result = ip("netns", "add", ns)
            require(result.returncode == 0, f"cannot create namespace {ns}: {result.stderr}")
            created.append(ns)
        steps = [
            ("link", "add", if_a, "netns", ns_a, "type", "veth", "peer", if_al, "netns", ns_br),
            ("link", "add", if_b, "netns", ns_b, "type", "veth", "peer", if_br, "netns", ns_br),
            ("-n", ns_a, "addr", "add", f"{addr_a}/24", "dev", if_a),
            ("-n", ns_b, "addr", "add", f"{addr_b}/24", "dev", if_b),
            ("-n", ns_br, "link", "set", if_al, "promisc", "on", "up"),
            ("-n", ns_br, "link", "set", if_br, "promisc", "on", "up"),
            ("-n", ns_a, "link", "set", if_a, "up"),
            ("-n", ns_b, "link", "set", if_b, "up"),
            ("-n", ns_a, "link", "set", "lo", "up"),
            ("-n", ns_b, "link", "set", "lo", "up"),
        ]  # fmt: skip
        ip_steps(steps)
        bridge = subprocess.Popen(
            ["ip", "netns", "exec", ns_br, sys.executable, "-m", "tests.faults.bridge",
             f"--left={if_al}", f"--right={if_br}", f"--stats={stats_path}", *impairment.argv()],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT
        while not stats_path.exists():
            if bridge.poll() is not None or time.monotonic() > deadline:
                _, err = bridge.communicate(timeout=5) if bridge.poll() is not None else ("", "")
                raise AssertionError(f"the bridge did not start: {err.strip()[-2000:]}")
            time.sleep(0.05)
        yield BridgedHosts(ns_a, addr_a, ns_b, addr_b, stats_path)
    finally:
        if bridge is not None:
            _stop(bridge)
        for ns in created:
            ip("netns", "del", ns)  # deletes the veth ends in it, so both pairs


def _stop(bridge: subprocess.Popen[str]) -> None:
    if bridge.poll() is None:
        bridge.terminate()
        try:
            bridge.wait(timeout=5)
        except subprocess.TimeoutExpired:
            bridge.kill()
            bridge.wait(timeout=5)
    with suppress(OSError, ValueError, subprocess.TimeoutExpired):
        bridge.communicate(timeout=5)
