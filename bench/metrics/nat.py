"""Through a TURN server in the NAT lab: connect time and bulk throughput (issue 29 point 5).

Each sample is one session of the session probe's kind (bench/metrics/session.py: two OS
processes, driven and timed alike, didlink the real CLI, the baseline bench/raw_peer.py = plain
aiortc), with both processes in the homes of the NAT lab (tests/support/nat_lab.py): home a
behind an endpoint-independent NAT, home b behind a symmetric one, coturn on the lab's public
network. Both systems get the same environment: DIDLINK_TURN with the lab's user and
credential, and DIDLINK_ICE_POLICY=relay (aiortc's iceTransportPolicy "relay" for the
baseline), so every packet of both goes through the same coturn, in the same lab, in the same
run, alternating as every probe does.

turn_connect_time      both tokens in hand -> both sides report the session ready (didlink:
                       `connected` after the handshake and the SAS; raw: channel open), as
                       connect_time, but relayed.
turn_bulk_throughput   a file (didlink: hashed, encrypted, written, checked, acknowledged) or
                       raw bytes in 64 KiB sends (baseline) through the relay; as
                       bulk_throughput, but relayed.
turn_connect_time_checks_alike
                       for comparison: the same didlink figure, against a second raw session
                       whose peers trigger checks as didlink's transport does (see below).

The lab needs root, iproute2, nftables and coturn. Without them (or when the namespaces cannot
be made) the probe says why once, on the progress output, and yields no samples: the rows are
simply absent from the table.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.metrics.session import (
    BULK,
    CONNECT,
    PASSPHRASE,
    Bench,
    RawActor,
    Sizes,
    _running_pair,
)
from bench.suite import Metric, Probe, Samples, System, progress
from didlink.cli.driver import Actor
from tests.support.nat_lab import (
    Lab,
    LabError,
    Nat,
    missing,
    nat_lab,
)  # the tests' lab, as they build it

TURN_CONNECT = Metric(
    "turn_connect_time",
    "ms",
    "raw aiortc channel open, relay-only through the same TURN server",
    CONNECT.target,
)
TURN_BULK = Metric(
    "turn_bulk_throughput",
    "MiB/s",
    "raw aiortc 64 KiB sends, relay-only through the same TURN server",
    BULK.target,
)

TURN_CONNECT_CHECKS_ALIKE = Metric(
    "turn_connect_time_checks_alike",
    "ms",
    "raw aiortc channel open through the same TURN server, checks triggered as didlink's are",
    "",
)
"""For comparison, no target: didlink's relayed connect figure against a second raw session
whose peers answer a check on a pair still being checked with a new check at once (RFC 8445
§7.3.1.4; transport/triggered_checks.py), as didlink's transport does. Stock aiortc waits for
its 0.5 s retransmission there, and through TURN the answerer's first check is always lost
(the offerer's allocation has no permission for it yet), so `turn_connect_time` against stock
aiortc is mostly that half second; this row is what didlink's own work costs on the same path."""

FULL = Sizes(bulk=4 << 20, messages=0, pings=0)
QUICK = Sizes(bulk=1 << 20, messages=0, pings=0)


class TurnBench(Bench):
    """The session bench, its actors moved into the lab's homes with its TURN server."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped: str | None = None
        self._stack: contextlib.ExitStack | None = None
        self._lab: Lab | None = None

    def set_up(self, sizes: Sizes) -> None:
        self.skipped = missing()
        if self.skipped is not None:
            progress(f"nat: skipped, {self.skipped}")
            return
        self.setup(sizes)
        self._stack = contextlib.ExitStack()
        folder = Path(tempfile.mkdtemp(prefix="didlink-bench-lab-"))
        self._stack.callback(shutil.rmtree, folder, ignore_errors=True)
        try:
            self._lab = self._stack.enter_context(
                nat_lab(folder, nat_a=Nat.CONE, nat_b=Nat.SYMMETRIC)
            )
        except LabError as exc:  # e.g. root without CAP_NET_ADMIN: the rest of the bench runs
            self.tear_down()
            self.skipped = f"the NAT lab could not be built: {exc}"
            progress(f"nat: skipped, {self.skipped}")
            return
        progress("nat: the NAT lab is up (cone + symmetric NAT, coturn)")

    def tear_down(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None
        self._lab = None
        self.teardown()

    def _actors(self, system: System) -> tuple[Actor, Actor]:
        lab = self._lab
        assert lab is not None
        env = lab.env(turn=True, policy="relay")
        inviter, invitee = super()._actors(system)
        return (
            replace(inviter, prefix=lab.prefix("a"), extra_env=env),
            replace(invitee, prefix=lab.prefix("b"), extra_env=env),
        )

    def measure_turn(self, system: System) -> Samples:
        if self.skipped is not None:
            return {}
        with self._session(system) as (inviter, invitee, response):
            connect = self._connect(system, inviter, invitee, response)
            samples = {
                TURN_CONNECT.name: connect,
                TURN_BULK.name: self._bulk(system, inviter, invitee),
            }
        samples[TURN_CONNECT_CHECKS_ALIKE.name] = (
            connect if system == "didlink" else self._connect_checks_alike()
        )
        return samples

    def _connect_checks_alike(self) -> float:
        """A second raw session through the relay, connect only, checks as didlink's."""
        assert self.tmp is not None and self._lab is not None
        env = self._lab.env(turn=True, policy="relay")
        inviter, invitee = (
            RawActor(name, self.tmp / name, PASSPHRASE, extra_env=env,
                     prefix=self._lab.prefix(home), triggered_checks=True)
            for name, home in (("raw-tc-a", "a"), ("raw-tc-b", "b"))
        )  # fmt: skip
        with _running_pair(inviter, invitee, remove_homes=False) as pair:
            return self._connect("baseline", *pair)


_TURN_BENCH = TurnBench()

PROBE = Probe(
    "nat",
    (TURN_CONNECT, TURN_CONNECT_CHECKS_ALIKE, TURN_BULK),
    lambda system, quick: _TURN_BENCH.measure_turn(system),
    lambda quick: _TURN_BENCH.set_up(QUICK if quick else FULL),
    _TURN_BENCH.tear_down,
)
