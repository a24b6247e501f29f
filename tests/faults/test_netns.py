"""Two hosts: the real CLI in two network namespaces joined by a veth pair (issue 7 §3).

No impairment here: this kernel has no `sch_netem`, so `tc qdisc add ... netem` is refused
(loss and delay are emulated in user space instead: tests/faults/test_network.py). What this
proves is that two `didlink` processes that share no network stack but a cable find each
other with host candidates only, authenticate, and exchange messages and a file. Skipped unless
we may create namespaces (root with iproute2).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.e2e.driver as driver
from identity.token import decode_token
from tests.e2e.driver import cli_processes, make_identity
from tests.faults.bridged import can_make_namespaces, in_namespace, ip, ip_steps
from tests.support.require import require
from transport import CompactOffer

pytestmark = [pytest.mark.faults, pytest.mark.e2e, pytest.mark.timeout(90)]

SUBNET = "10.213.{}.{}"


@pytest.fixture
def namespaces() -> Iterator[tuple[str, str, str, str]]:
    """Two namespaces joined by a veth pair: (ns_a, address_a, ns_b, address_b)."""
    require(can_make_namespaces(), "needs root and iproute2 to create network namespaces")
    tag = f"{os.getpid() % 100000}"
    ns_a, ns_b = f"dl{tag}a", f"dl{tag}b"
    net = os.getpid() % 250
    addr_a, addr_b = SUBNET.format(net, 1), SUBNET.format(net, 2)
    created = []
    try:
        for ns in (ns_a, ns_b):
            require(ip("netns", "add", ns).returncode == 0, f"cannot create namespace {ns}")
            created.append(ns)
        steps = [
            ("link", "add", f"v{tag}a", "netns", ns_a, "type", "veth", "peer", "name", f"v{tag}b",
             "netns", ns_b),
            ("-n", ns_a, "addr", "add", f"{addr_a}/24", "dev", f"v{tag}a"),
            ("-n", ns_b, "addr", "add", f"{addr_b}/24", "dev", f"v{tag}b"),
            ("-n", ns_a, "link", "set", f"v{tag}a", "up"),
            ("-n", ns_b, "link", "set", f"v{tag}b", "up"),
            ("-n", ns_a, "link", "set", "lo", "up"),
            ("-n", ns_b, "link", "set", "lo", "up"),
        ]  # fmt: skip
        ip_steps(steps)
        yield ns_a, addr_a, ns_b, addr_b
    finally:
        for ns in created:
            ip("netns", "del", ns)  # deletes the veth pair with it


def test_two_namespaces_over_a_veth_pair(
    tmp_path: Path, namespaces: tuple[str, str, str, str]
) -> None:
    ns_a, addr_a, ns_b, addr_b = namespaces
    a_home, b_home = tmp_path / "alice", tmp_path / "bob"
    alice_did, bob_did = make_identity(a_home), make_identity(b_home)
    payload = os.urandom(1_000_000)
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)
    with cli_processes() as started:
        alice = driver.Cli("invite", "--jsonl", home=a_home, prefix=in_namespace(ns_a))
        started.append(alice)
        invite = alice.expect("token")["token"]
        bob = driver.Cli("accept", invite, "--jsonl", home=b_home, prefix=in_namespace(ns_b))
        started.append(bob)
        response = bob.expect("token")["token"]
        # Each side offered only the addresses of its own namespace (its veth end).
        for token, address in ((invite, addr_a), (response, addr_b)):
            offer = CompactOffer.from_cbor(decode_token(token).connect)
            assert {str(c.ip) for c in offer.candidates} == {address}
        alice.send("response", token=response)
        assert alice.expect("sas") == bob.expect("sas")
        alice.send("confirm_sas")
        bob.send("confirm_sas")
        assert alice.expect("connected")["peer"] == bob_did
        assert bob.expect("connected")["peer"] == alice_did
        for i in range(100):
            alice.send("send", text=f"a{i}")
            bob.send("send", text=f"b{i}")
        assert [bob.expect("message")["text"] for _ in range(100)] == [f"a{i}" for i in range(100)]
        assert [alice.expect("message")["text"] for _ in range(100)] == [
            f"b{i}" for i in range(100)
        ]
        alice.send("send_file", path=str(source))
        arrived = bob.expect("file", timeout=60)
        assert arrived["sha256"] == hashlib.sha256(payload).hexdigest()
        assert Path(arrived["path"]).read_bytes() == payload
        alice.expect("file_sent", timeout=30)
        alice.send("quit")
        assert alice.expect("closed")["reason"] == "quit"
        assert bob.expect("closed")["reason"] == "peer closed"
        assert alice.wait() == 0 and bob.wait() == 0
