"""A user-space impairing L2 bridge: netem-like loss, delay, jitter, reordering, rate (issue 7 §3).

Why: this kernel has no `sch_netem` and no nft/iptables, so a veth pair cannot be made lossy.
Instead two veth pairs join three namespaces, A - BR - B, and this process runs inside BR:

    ns A: peer 10.x.y.1 ==veth== [left | bridge.py | right] ==veth== peer 10.x.y.2 :ns B

Theory of operation. Both BR ends are up, with no address and no kernel bridge. One AF_PACKET
raw socket per end receives every frame arriving there. A frame that arrived on `left` goes out
of `right` and vice versa:

- ARP, IPv6 and any IPv4 that is not UDP go out at once, untouched.
- IPv4/UDP (all of ICE, DTLS and SCTP) is, per direction and with its own seeded RNG: dropped
  with probability `loss`; else queued behind the previous frames of that direction when a
  `rate` cap is set (serialisation at `rate` bytes/s, tail drop beyond `queue_limit` bytes);
  then held `delay` +- uniform `jitter` seconds, and with probability `reorder` another
  `reorder_extra` seconds, so later frames overtake it. A heap ordered by due time holds the
  frames in flight; the loop sleeps in `select` until the next socket is readable or the next
  frame is due.

Frames this process writes come back on the socket of the end they were written to as
`PACKET_OUTGOING`, as do frames the BR kernel itself emits: both are ignored, or the bridge would
loop. The peers' veth ends hand their UDP over with the checksum still to be finished (checksum
offload: the skb is CHECKSUM_PARTIAL); the kernel does not finish it for a raw socket reader, so
the bridge does, else B would drop every datagram as corrupt.

Counts per direction are written as JSON to `--stats` (atomically, every half second and at
exit) and printed as one line on stdout at exit (SIGTERM or SIGINT). The first write of the
stats file means the bridge is ready.

    ip netns exec BR python -m tests.faults.bridge --left vA --right vB --loss 0.05 \
        --delay 0.1 --jitter 0.01 --reorder 0.02 --seed 7 --stats /tmp/stats.json
"""

from __future__ import annotations

import argparse
import array
import heapq
import json
import os
import random
import selectors
import signal
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType

ETH_P_ALL = 0x0003
IPPROTO_UDP = 17
PACKET_OUTGOING = 4
SOL_PACKET = 263
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33  # <asm-generic/socket.h>; not in Python's socket
SOCKET_BUFFER = 8 * 1024 * 1024  # bursts wait here while the loop is busy, instead of dropping
PACKET_STATISTICS = 6
ETH_HEADER = 14
STATS_EVERY = 0.5
BATCH = 64  # frames read from one socket before looking at the others and the heap


@dataclass(frozen=True)
class Impairment:
    """What the bridge does to IPv4/UDP frames, in each direction independently."""

    loss: float = 0.0  # probability of dropping a frame
    delay: float = 0.0  # one-way seconds added to every frame kept
    jitter: float = 0.0  # +- uniform seconds around `delay`
    reorder: float = 0.0  # probability that a frame is held `reorder_extra` more
    reorder_extra: float = 0.020
    rate: float = 0.0  # bytes per second; 0 = no cap
    queue_limit: int = 256 * 1024  # bytes waiting for the rate cap before tail drop
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss < 1.0 or not 0.0 <= self.reorder <= 1.0:
            raise ValueError("loss must be in [0, 1) and reorder in [0, 1]")
        if min(self.delay, self.jitter, self.reorder_extra, self.rate) < 0 or self.queue_limit < 0:
            raise ValueError("delay, jitter, reorder_extra, rate and queue_limit must be >= 0")
        if self.jitter > self.delay:
            raise ValueError("jitter must not exceed delay (a frame cannot leave before it came)")

    def argv(self) -> list[str]:
        """The command-line options that give this impairment to `python -m tests.faults.bridge`."""
        return [
            f"--{name.replace('_', '-')}={value}" for name, value in asdict(self).items()
        ]  # fmt: skip


@dataclass
class DirectionStats:
    """What happened to the frames of one direction."""

    udp_forwarded: int = 0
    udp_dropped: int = 0  # by `loss`
    udp_overflow: int = 0  # tail drops at the rate cap
    udp_reordered: int = 0  # held the extra `reorder_extra`
    other_forwarded: int = 0  # ARP, IPv6, non-UDP IPv4: passed untouched
    bytes_forwarded: int = 0
    send_errors: int = 0
    kernel_drops: int = 0  # frames the kernel dropped before we read them (socket full)


@dataclass
class Shaper:
    """The impairment of one direction, without I/O: when does a frame of `size` bytes leave?"""

    impairment: Impairment
    rng: random.Random
    stats: DirectionStats = field(default_factory=DirectionStats)
    link_free: float = 0.0  # when the rate-capped link finishes what is queued on it

    def due(self, size: int, now: float) -> float | None:
        """When a UDP frame of `size` bytes that arrived at `now` leaves, or None if dropped."""
        imp = self.impairment
        if imp.loss and self.rng.random() < imp.loss:
            self.stats.udp_dropped += 1
            return None
        leaves = now
        if imp.rate:
            start = max(now, self.link_free)
            if (start - now) * imp.rate > imp.queue_limit:
                self.stats.udp_overflow += 1
                return None
            self.link_free = start + size / imp.rate
            leaves = self.link_free
        leaves += imp.delay + (self.rng.uniform(-imp.jitter, imp.jitter) if imp.jitter else 0.0)
        if imp.reorder and self.rng.random() < imp.reorder:
            self.stats.udp_reordered += 1
            leaves += imp.reorder_extra
        return max(now, leaves)


@dataclass
class Direction:
    """One way through the bridge: frames read from `source` are written to `sink`."""

    name: str
    source: socket.socket
    sink: socket.socket
    shaper: Shaper

    @property
    def stats(self) -> DirectionStats:
        return self.shaper.stats


def is_ipv4_udp(frame: bytes) -> bool:
    return (
        len(frame) >= ETH_HEADER + 28
        and frame[12:14] == b"\x08\x00"
        and frame[ETH_HEADER + 9] == IPPROTO_UDP
        and (frame[ETH_HEADER + 6] & 0x3F) | frame[ETH_HEADER + 7] == 0  # not a fragment
    )


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def with_udp_checksum(frame: bytes) -> bytes:
    """`frame` (IPv4/UDP) with its UDP checksum computed afresh (RFC 768; 0 is sent as 0xFFFF)."""
    ihl = (frame[ETH_HEADER] & 0x0F) * 4
    udp_at = ETH_HEADER + ihl
    udp_len = int.from_bytes(frame[udp_at + 4 : udp_at + 6], "big")
    if udp_len < 8 or udp_at + udp_len > len(frame):
        return frame  # malformed: pass it on as it is, the receiver will judge
    segment = bytearray(frame[udp_at : udp_at + udp_len])
    segment[6:8] = b"\x00\x00"
    pseudo = frame[ETH_HEADER + 12 : ETH_HEADER + 20] + struct.pack("!BBH", 0, 17, udp_len)
    data = pseudo + segment + (b"\x00" if udp_len % 2 else b"")
    words = array.array("H", data)
    if sys.byteorder == "little":
        words.byteswap()
    checksum = 0xFFFF - _fold(sum(words)) or 0xFFFF
    segment[6:8] = checksum.to_bytes(2, "big")
    return frame[:udp_at] + bytes(segment) + frame[udp_at + udp_len :]


def open_end(interface: str) -> socket.socket:
    """A raw socket that sees every frame arriving on `interface` and can write frames to it."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    for forced, plain in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
        try:  # root may exceed net.core.rmem_max / wmem_max
            sock.setsockopt(socket.SOL_SOCKET, forced, SOCKET_BUFFER)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, plain, SOCKET_BUFFER)
    sock.bind((interface, 0))
    sock.setblocking(False)
    return sock


class Bridge:
    """The loop: read both ends, schedule UDP on the heap, write what is due."""

    def __init__(self, left: str, right: str, impairment: Impairment, stats_path: Path) -> None:
        self.left, self.right = open_end(left), open_end(right)
        seed = impairment.seed  # each direction its own stream: the same run, the same drops
        self.directions = [
            Direction("a_to_b", self.left, self.right, Shaper(impairment, random.Random(seed))),
            Direction("b_to_a", self.right, self.left, Shaper(impairment, random.Random(~seed))),
        ]
        self.stats_path = stats_path
        self.in_flight: list[tuple[float, int, int, bytes]] = []  # (due, order, direction, frame)
        self.order = 0
        self.running = True

    def stop(self, _signum: int = 0, _frame: FrameType | None = None) -> None:
        self.running = False

    def run(self) -> None:
        selector = selectors.DefaultSelector()
        for index, direction in enumerate(self.directions):
            selector.register(direction.source, selectors.EVENT_READ, index)
        self.write_stats()
        next_stats = time.monotonic() + STATS_EVERY
        while self.running:
            now = time.monotonic()
            wait = min(next_stats, self.in_flight[0][0] if self.in_flight else next_stats) - now
            for key, _ in selector.select(max(0.0, wait)):
                self.receive(key.data)
            now = time.monotonic()
            while self.in_flight and self.in_flight[0][0] <= now:
                _, _, index, frame = heapq.heappop(self.in_flight)
                self.transmit(self.directions[index], frame)
            if now >= next_stats:
                self.write_stats()
                next_stats = now + STATS_EVERY
        self.write_stats()
        print("bridge " + json.dumps(self.snapshot(), sort_keys=True), flush=True)

    def receive(self, index: int) -> None:
        direction = self.directions[index]
        for _ in range(BATCH):
            try:
                frame, address = direction.source.recvfrom(65536)
            except BlockingIOError:
                return
            if address[2] == PACKET_OUTGOING:
                continue  # written by us (or by BR's own kernel) to this end: not arriving
            if not is_ipv4_udp(frame):
                direction.stats.other_forwarded += 1
                self.send(direction, frame)
                continue
            now = time.monotonic()
            due = direction.shaper.due(len(frame), now)
            if due is not None:
                self.order += 1
                heapq.heappush(self.in_flight, (due, self.order, index, frame))

    def transmit(self, direction: Direction, frame: bytes) -> None:
        if self.send(direction, with_udp_checksum(frame)):
            direction.stats.udp_forwarded += 1
            direction.stats.bytes_forwarded += len(frame)

    def send(self, direction: Direction, frame: bytes) -> bool:
        try:
            direction.sink.send(frame)
        except OSError:  # ENOBUFS, ENETDOWN, EMSGSIZE: the frame is lost, counted
            direction.stats.send_errors += 1
            return False
        return True

    def snapshot(self) -> dict[str, dict[str, int]]:
        for direction in self.directions:
            raw = direction.source.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
            _packets, drops = struct.unpack("II", raw)  # reading resets the kernel counters
            direction.stats.kernel_drops += drops
        return {d.name: asdict(d.stats) for d in self.directions}

    def write_stats(self) -> None:
        temporary = self.stats_path.with_name(self.stats_path.name + ".tmp")
        temporary.write_text(json.dumps(self.snapshot(), sort_keys=True))
        os.replace(temporary, self.stats_path)


def parse(argv: list[str]) -> tuple[argparse.Namespace, Impairment]:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.bridge", description=__doc__)
    parser.add_argument("--left", required=True, help="BR's end of the veth pair towards A")
    parser.add_argument("--right", required=True, help="BR's end of the veth pair towards B")
    parser.add_argument("--stats", required=True, type=Path, help="JSON counts, kept up to date")
    defaults = Impairment()
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    fields = {name: getattr(args, name) for name in asdict(defaults)}
    return args, Impairment(**fields)


def main(argv: list[str] | None = None) -> None:
    args, impairment = parse(sys.argv[1:] if argv is None else argv)
    # One CPU: a veth hands each frame to the backlog of the CPU that sent it, so a sender that
    # migrates mid-burst can let later frames overtake earlier ones. The bridge reorders only
    # what its impairment says.
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    bridge = Bridge(args.left, args.right, impairment, args.stats)
    signal.signal(signal.SIGTERM, bridge.stop)
    signal.signal(signal.SIGINT, bridge.stop)
    bridge.run()


if __name__ == "__main__":
    main()
