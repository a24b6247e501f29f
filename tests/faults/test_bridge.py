"""The impairing bridge itself (tests/faults/bridge.py): its schedule, its frames, its counts.

The schedule (`Shaper`) is tested without I/O against figures worked out by hand; the UDP
checksum against a naive independent RFC 768 sum; and the whole bridge, between two real
namespaces, by counting what a plain UDP receiver gets: its kernel accepts a datagram only if
the bridge's checksum is right, and it must get exactly what the bridge says it forwarded.
"""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.bridge import (
    DirectionStats,
    Impairment,
    Shaper,
    is_ipv4_udp,
    parse,
    with_udp_checksum,
)
from tests.faults.bridged import Stats, bridged_hosts, in_namespace

pytestmark = [pytest.mark.faults]

MAC = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02"


def udp_frame(payload: bytes, *, checksum: int = 0, flags_fragment: int = 0) -> bytes:
    udp = struct.pack("!HHHH", 40000, 5000, 8 + len(payload), checksum) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, flags_fragment, 64, 17, 0,
        bytes([10, 214, 7, 1]), bytes([10, 214, 7, 2]),
    )  # fmt: skip
    return MAC + b"\x08\x00" + ip + udp


def naive_checksum(frame: bytes) -> int:
    """RFC 768 one's complement sum, written out plainly: pseudo header, then the UDP segment."""
    ip, udp = frame[14:34], bytearray(frame[34:])
    udp[6:8] = b"\0\0"
    data = ip[12:20] + bytes([0, 17]) + len(udp).to_bytes(2, "big") + bytes(udp)
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += data[i] << 8 | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return (~total & 0xFFFF) or 0xFFFF


@pytest.mark.parametrize("payload", [b"", b"x", b"hello, bridge", bytes(range(256)) * 5 + b"!"])
def test_udp_checksum_is_finished(payload: bytes) -> None:
    partial = udp_frame(payload, checksum=0x1234)  # what checksum offload leaves: not final
    fixed = with_udp_checksum(partial)
    assert fixed[:40] == partial[:40] and fixed[42:] == partial[42:]  # only the checksum changed
    assert int.from_bytes(fixed[40:42], "big") == naive_checksum(partial)


def test_which_frames_are_impaired() -> None:
    assert is_ipv4_udp(udp_frame(b"data"))
    assert not is_ipv4_udp(udp_frame(b"data", flags_fragment=0x2000))  # first fragment
    assert not is_ipv4_udp(udp_frame(b"data", flags_fragment=0x0010))  # later fragment
    tcp = bytearray(udp_frame(b"data"))
    tcp[14 + 9] = 6
    assert not is_ipv4_udp(bytes(tcp))
    arp = MAC + b"\x08\x06" + bytes(28)
    assert not is_ipv4_udp(arp)
    assert not is_ipv4_udp(MAC + b"\x08\x00" + bytes(10))  # truncated


def test_loss_is_seeded_and_close_to_the_probability() -> None:
    def drops(seed: int) -> list[bool]:
        shaper = Shaper(Impairment(loss=0.2, seed=seed), random.Random(seed))
        return [shaper.due(100, 0.0) is None for _ in range(10_000)]

    assert drops(1) == drops(1)
    assert drops(1) != drops(2)
    assert 1800 < sum(drops(1)) < 2200


def test_delay_jitter_and_reordering() -> None:
    imp = Impairment(delay=0.1, jitter=0.01, reorder=0.1, reorder_extra=0.05)
    shaper = Shaper(imp, random.Random(3))
    dues = [shaper.due(100, 5.0) for _ in range(2000)]
    assert all(d is not None for d in dues)
    late = [d for d in dues if d is not None and d > 5.0 + 0.11]
    assert all(5.0 + 0.09 <= d <= 5.0 + 0.16 for d in dues if d is not None)
    assert len(late) == shaper.stats.udp_reordered and 150 < len(late) < 250
    assert shaper.stats == DirectionStats(udp_reordered=len(late))


def test_rate_cap_serialises_and_tail_drops() -> None:
    shaper = Shaper(Impairment(rate=10_000, queue_limit=2_500, delay=0.1), random.Random(0))
    # Five 1000-byte frames at t=0 on a 10 kB/s link: 0.1 s each, behind one another;
    # the fourth would wait 0.3 s (3000 bytes queued > 2500): dropped, as is the fifth.
    dues = [shaper.due(1000, 0.0) for _ in range(5)]
    assert dues == [pytest.approx(0.2), pytest.approx(0.3), pytest.approx(0.4), None, None]
    assert shaper.stats.udp_overflow == 2
    assert shaper.due(1000, 10.0) == pytest.approx(10.2)  # the link drained meanwhile


def test_impairment_is_validated_and_round_trips_through_the_command_line() -> None:
    for bad in ({"loss": 1.0}, {"delay": -1.0}, {"jitter": 0.2, "delay": 0.1}, {"rate": -1}):
        with pytest.raises(ValueError):
            Impairment(**bad)
    imp = Impairment(loss=0.05, delay=0.1, jitter=0.01, reorder=0.02, rate=1e6, seed=9)
    args, parsed = parse(["--left=x", "--right=y", "--stats=/tmp/s.json", *imp.argv()])
    assert parsed == imp and args.left == "x" and args.right == "y"


RECEIVER = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind((sys.argv[1], 5000))
s.settimeout(1.5)
print("ready", flush=True)
got, times = [], []
try:
    while True:
        got.append(int(s.recv(2048)[:8]))
        times.append(time.monotonic())
except TimeoutError:
    pass
print(len(got), sum(1 for a, b in zip(got, got[1:]) if b < a), times[-1] - times[0] if got else 0)
"""

SENDER = """
import os, socket, sys, time
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # see bridge.main: no veth reordering
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(1000):
    s.sendto(b"%08d" % i + bytes(1000), (sys.argv[1], 5000))
    if i % 20 == 19:
        time.sleep(0.002)
"""


def blast(imp: Impairment, tmp_path: Path) -> tuple[int, int, float, Stats]:
    """1000 datagrams of 1008 bytes from A to B through the bridge, sent within about 0.2 s.

    Returns what B received (count, order inversions, seconds from first to last) and the
    bridge's counts.
    """
    with bridged_hosts(imp, stats_dir=tmp_path) as hosts:
        receiver = subprocess.Popen(
            [*in_namespace(hosts.ns_b), sys.executable, "-c", RECEIVER, hosts.addr_b],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert receiver.stdout is not None and receiver.stdout.readline() == "ready\n"
            subprocess.run(
                [*in_namespace(hosts.ns_a), sys.executable, "-c", SENDER, hosts.addr_b],
                timeout=30,
                check=True,
            )
            out, _ = receiver.communicate(timeout=30)
        finally:
            receiver.kill()
        received, inversions, span = out.split()
        return int(received), int(inversions), float(span), hosts.stats()


def test_the_bridge_forwards_exactly_what_it_counts(tmp_path: Path) -> None:
    """A plain UDP receiver gets exactly `udp_forwarded` datagrams: checksums right, counts true."""
    imp = Impairment(loss=0.3, delay=0.02, jitter=0.01, reorder=0.1, seed=5)
    received, inversions, _, stats = blast(imp, tmp_path)
    a_to_b = stats["a_to_b"]
    assert a_to_b["udp_forwarded"] + a_to_b["udp_dropped"] == 1000
    assert received == a_to_b["udp_forwarded"]
    assert 200 < a_to_b["udp_dropped"] < 400
    assert inversions > 0  # jitter and the held-back frames reordered some
    assert a_to_b["other_forwarded"] > 0  # the ARP request went through untouched
    assert stats["b_to_a"]["udp_forwarded"] == 0
    assert a_to_b["send_errors"] == 0 and a_to_b["kernel_drops"] == 0


def test_the_rate_cap_spreads_a_burst_and_drops_the_overflow(tmp_path: Path) -> None:
    """1000 frames of 1050 bytes on a 500 kB/s link with 600 kB of queue: about 600 fit, 1.2 s."""
    imp = Impairment(rate=500_000, queue_limit=600_000, seed=5)
    received, inversions, span, stats = blast(imp, tmp_path)
    a_to_b = stats["a_to_b"]
    # The schedule is in order (test_rate_cap_serialises_and_tail_drops) and the sender and the
    # bridge each stay on one CPU. A CI run once still saw 2 inversions in 622, before the
    # pinning: a few are the kernel's, a broken schedule would give hundreds.
    assert received == a_to_b["udp_forwarded"] and inversions <= 3
    assert a_to_b["udp_overflow"] > 0 and a_to_b["udp_dropped"] == 0
    assert a_to_b["udp_forwarded"] + a_to_b["udp_overflow"] == 1000
    expected_span = a_to_b["bytes_forwarded"] / 500_000
    assert expected_span * 0.9 < span < expected_span * 1.2 + 0.1
