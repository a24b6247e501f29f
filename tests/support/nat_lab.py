"""A NAT lab: two home networks behind NAT routers and a public network with STUN/TURN (issue 29).

`nat_lab(folder, nat_a=..., nat_b=...)` builds, for one test (or one bench run), five network
namespaces with unique names (`dlnat<pid>-<serial>-<role>`) and starts coturn in one of them:

    home a  192.168.1.2 --lan-- router a [NAT a] 203.0.113.10 --+
                                                                 |-- br0 (public, 203.0.113.0/24)
    home b  192.168.2.2 --lan-- router b [NAT b] 203.0.113.20 --+      coturn: 203.0.113.1:3478
                                                                        second STUN address: .2

Every address lives inside the lab's namespaces only: the routers have no default route, the
public namespace forwards nothing, so nothing here can reach (or be reached from) a real
network. 203.0.113.0/24 is TEST-NET-3 (RFC 5737); the homes use private ranges.

The NATs are nftables rules on each router's `wan` interface:

- `Nat.CONE`: `masquerade`. Linux keeps the source port when it is free and reuses one mapping
  for every destination: endpoint-independent mapping (RFC 4787 §4.1), with address-and-port
  dependent filtering (conntrack lets in only replies): a "port-restricted cone".
- `Nat.SYMMETRIC`: `masquerade random,fully-random`. Every new (destination, port) gets a new
  random public port: address-and-port dependent mapping. A STUN-learned (srflx) address is
  then useless to a peer, and only TURN gets through.

`Lab.mapped(home)` asks the two STUN addresses from one socket in a home and returns both mapped
addresses: equal behind a cone NAT, different behind a symmetric one (the lab's self-test
checks exactly that, so a kernel whose NAT behaves otherwise fails loudly instead of making the
cases below pass or fail for the wrong reason).

coturn (Debian's `coturn` package) runs in the public namespace with a config file written
here: listening and relay address 203.0.113.1 (and .2 for the second STUN address), the
long-term credential mechanism with one static user whose password is random per lab, realm
`lab.test`, no TLS/DTLS, no CLI, its own SQLite file and log in the lab's folder.
Like a home router's firewall, each router drops what arrives unasked at its own public
address (`ct state new drop` on input). Without it a peer's early check, which reaches the
router before our own check left through it, would be answered with ICMP and leave a conntrack
entry for its (address, port) pair behind; masquerade would then map our own check to that peer
on another port, and two cone NATs could never meet (Linux has no endpoint-independent filtering
of its own). A packet dropped before the conntrack entry is confirmed leaves none.

`stop_turn()`/`start_turn()` take it down and bring it back. Each router counts the packets
that reach it from anyone but the STUN/TURN server (`packets_from_peers`): the other home's
packets on a direct path; none when every packet went through the relay. `renumber(home)`
gives a router a new public address, as an ISP does: masquerade drops every mapping of the old
address (the kernel forgets conntrack entries of an address that goes away), so every path
through that router breaks at once.

Teardown, whatever happened: coturn is stopped, every process still inside a lab namespace (the
`didlink` processes a test started there) is killed by its pid, and the namespaces are deleted,
which deletes their veth pairs and bridge. `remove_stale_labs()` (called first) does the same for
the namespaces of a lab whose process no longer exists (a test run that was SIGKILLed), and
leaves alone the labs of runs still alive (other users of a shared machine).

No pytest here: the bench uses the lab too. What the lab cannot run without (root, `ip`, `nft`,
`turnserver`) is reported by `missing()` so that a test can skip (locally) or fail (CI=true).
"""

from __future__ import annotations

import enum
import itertools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "dlnat"
PUBLIC_NET = "203.0.113"  # TEST-NET-3, RFC 5737
TURN_ADDRESS = f"{PUBLIC_NET}.1"
SECOND_STUN_ADDRESS = f"{PUBLIC_NET}.2"
TURN_PORT = 3478
REALM = "lab.test"
TURN_USER = "lab"
RELAY_PORTS = (49152, 49999)
PEER_COUNTER = "from_peers"
COMMAND_TIMEOUT = 10.0
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
_serial = itertools.count()

Address = tuple[str, int]


class LabError(RuntimeError):
    """The lab could not be built or driven (a command failed, coturn did not come up)."""


class Nat(enum.Enum):
    """How a home router maps its hosts' UDP flows to its public address (RFC 4787)."""

    CONE = "endpoint-independent"
    SYMMETRIC = "address-and-port-dependent"

    @property
    def masquerade(self) -> str:
        """The nftables statement of this NAT."""
        return "masquerade" if self is Nat.CONE else "masquerade random,fully-random"


def missing() -> str | None:
    """Why the lab cannot run here (a sentence), or None if it can."""
    if os.geteuid() != 0:
        return "the NAT lab needs root (network namespaces, nftables)"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables"), ("turnserver", "coturn")):
        if shutil.which(tool) is None:
            return f"the NAT lab needs `{tool}` (Debian package {package})"
    return None


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    if check and result.returncode != 0:
        raise LabError(f"`{' '.join(command)}` failed: {result.stderr.strip()}")
    return result


def in_namespace(namespace: str) -> tuple[str, ...]:
    """The command prefix that runs a process inside `namespace`."""
    return ("ip", "netns", "exec", namespace)


@dataclass(frozen=True)
class Home:
    """One home network: a host behind a NAT router."""

    name: str  # "a" or "b"
    namespace: str  # the host's
    router: str  # the router's namespace
    address: str  # the host's private address
    nat: Nat
    public: str  # the router's public address now (see `Lab.renumber`)


@dataclass
class Lab:
    """A built lab; see the module docstring."""

    folder: Path
    public: str  # the public namespace (coturn's)
    homes: dict[str, Home]
    credential: str  # the TURN password of `TURN_USER`, random per lab
    namespaces: list[str]
    turn: subprocess.Popen[bytes] | None = None
    _renumbered: Iterator[int] = field(default_factory=lambda: itertools.count(100))
    _public_history: dict[str, set[str]] = field(init=False)

    @property
    def stun_url(self) -> str:
        return f"stun:{TURN_ADDRESS}:{TURN_PORT}"

    @property
    def turn_url(self) -> str:
        return f"turn:{TURN_ADDRESS}:{TURN_PORT}"

    @property
    def turn_log(self) -> Path:
        return self.folder / "turnserver.log"

    def env(
        self,
        *,
        stun: bool = False,
        turn: bool = False,
        policy: str | None = None,
        credential: str | None = None,
        tcp: bool = False,
    ) -> dict[str, str]:
        """The DIDLINK_* variables that give a process this lab's servers (issue 29 contract);
        `tcp`: TURN over TCP (`?transport=tcp`)."""
        env: dict[str, str] = {}
        if stun:
            env["DIDLINK_STUN"] = self.stun_url
        if turn:
            env["DIDLINK_TURN"] = self.turn_url + ("?transport=tcp" if tcp else "")
            env["DIDLINK_TURN_USERNAME"] = TURN_USER
            env["DIDLINK_TURN_CREDENTIAL"] = self.credential if credential is None else credential
        if policy is not None:
            env["DIDLINK_ICE_POLICY"] = policy
        return env

    def prefix(self, home: str) -> tuple[str, ...]:
        """The command prefix that starts a process on the host of `home`."""
        return in_namespace(self.homes[home].namespace)

    def our_addresses(self, home: str) -> set[str]:
        """Every address that identifies the user of `home`: private and public, past and now."""
        return {self.homes[home].address, *self._public_history[home]}

    # -- coturn ------------------------------------------------------------------------------

    def start_turn(self) -> None:
        """Start coturn in the public namespace and wait (bounded) until it answers STUN."""
        if self.turn is not None and self.turn.poll() is None:
            return
        config = self.folder / "turnserver.conf"
        config.write_text(_turn_config(self.folder, self.credential))
        with (self.folder / "turnserver.out").open("ab") as out:
            self.turn = subprocess.Popen(
                [*in_namespace(self.public), "turnserver", "-c", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.turn.poll() is not None:
                raise LabError(f"coturn exited at start ({self._turn_tail()})")
            with suppress(LabError):
                self.mapped(self.public, servers=((TURN_ADDRESS, TURN_PORT),), timeout=0.5)
                return
            if time.monotonic() > deadline:
                raise LabError(f"coturn did not answer within {READY_TIMEOUT:g} s")

    def stop_turn(self) -> None:
        """Stop coturn (SIGTERM, then SIGKILL); its ports then answer ICMP port unreachable."""
        if self.turn is None:
            return
        _stop(self.turn)
        self.turn = None

    def _turn_tail(self) -> str:
        for path in (self.turn_log, self.folder / "turnserver.out"):
            with suppress(OSError):
                lines = path.read_text(errors="replace").strip().splitlines()
                if lines:
                    return " | ".join(lines[-3:])
        return "no log"

    # -- the network -------------------------------------------------------------------------

    def mapped(
        self,
        namespace_or_home: str,
        *,
        servers: Sequence[Address] = ((TURN_ADDRESS, TURN_PORT), (SECOND_STUN_ADDRESS, TURN_PORT)),
        timeout: float = 2.0,
    ) -> list[Address]:
        """The address each STUN server saw, asked in turn from one UDP socket (RFC 5389)."""
        home = self.homes.get(namespace_or_home)
        namespace = home.namespace if home else namespace_or_home
        result = _run(
            *in_namespace(namespace),
            sys.executable,
            "-c",
            _STUN_PROBE,
            json.dumps([list(s) for s in servers]),
            str(timeout),
            check=False,
        )
        if result.returncode != 0:
            raise LabError(f"STUN probe in {namespace} failed: {result.stderr.strip()[-300:]}")
        return [(str(host), int(port)) for host, port in json.loads(result.stdout)]

    def packets_from_peers(self, home: str) -> int:
        """IP packets that reached `home`'s router from anyone but the STUN/TURN server.

        In this lab that is the other home: a direct path between the two shows here, and a
        relayed one does not (everything then comes from the TURN server's address)."""
        listed = _run(*in_namespace(self.homes[home].router), "nft", "-j", "list", "counter",
                      "ip", "watch", PEER_COUNTER)  # fmt: skip
        for item in json.loads(listed.stdout)["nftables"]:
            if "counter" in item:
                return int(item["counter"]["packets"])
        raise LabError(f"no counter {PEER_COUNTER} in {self.homes[home].router}")

    def renumber(self, home: str) -> str:
        """Give `home`'s router a new public address (the old one goes, with its mappings)."""
        old = self.homes[home]
        new = f"{PUBLIC_NET}.{next(self._renumbered)}"
        # The old one first: deleting a primary address deletes its secondaries too.
        _run("ip", "-n", old.router, "addr", "del", f"{old.public}/24", "dev", "wan")
        _run("ip", "-n", old.router, "addr", "add", f"{new}/24", "dev", "wan")
        self.homes[home] = Home(old.name, old.namespace, old.router, old.address, old.nat, new)
        self._public_history[home].add(new)
        return new

    def __post_init__(self) -> None:
        self._public_history: dict[str, set[str]] = {k: {h.public} for k, h in self.homes.items()}

    # -- teardown ----------------------------------------------------------------------------

    def close(self) -> None:
        self.stop_turn()
        for namespace in self.namespaces:
            _delete_namespace(namespace)


def _turn_config(folder: Path, credential: str) -> str:
    return "\n".join(
        [
            f"listening-ip={TURN_ADDRESS}",
            f"listening-ip={SECOND_STUN_ADDRESS}",
            f"relay-ip={TURN_ADDRESS}",
            f"listening-port={TURN_PORT}",
            f"min-port={RELAY_PORTS[0]}",
            f"max-port={RELAY_PORTS[1]}",
            "lt-cred-mech",
            f"user={TURN_USER}:{credential}",
            f"realm={REALM}",
            "no-tls",
            "no-dtls",
            "no-cli",
            "no-tcp-relay",
            "no-rfc5780",
            "no-software-attribute",
            "no-multicast-peers",
            # As production configs do (coturn's docs): no relaying into private networks. It
            # also keeps allocations alive here: a relay to an unroutable peer (a home's host
            # candidate) fails to send and coturn closes the whole allocation.
            "denied-peer-ip=10.0.0.0-10.255.255.255",
            "denied-peer-ip=172.16.0.0-172.31.255.255",
            "denied-peer-ip=192.168.0.0-192.168.255.255",
            f"userdb={folder / 'turndb.sqlite'}",
            f"pidfile={folder / 'turnserver.pid'}",
            f"log-file={folder / 'turnserver.log'}",
            "simple-log",
            "verbose",
            "",
        ]
    )


# One UDP socket asks each server in turn; prints [[host, port], ...] (the XOR-MAPPED-ADDRESS).
_STUN_PROBE = """
import json, socket, sys
from aioice import stun
servers, timeout = json.loads(sys.argv[1]), float(sys.argv[2])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(timeout)
sock.bind(("0.0.0.0", 0))
seen = []
for host, port in servers:
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    sock.sendto(bytes(request), (host, port))
    while True:
        data, _ = sock.recvfrom(2048)
        answer = stun.parse_message(data)
        if answer.transaction_id == request.transaction_id:
            break
    seen.append(list(answer.attributes["XOR-MAPPED-ADDRESS"]))
print(json.dumps(seen))
"""


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


def _delete_namespace(namespace: str) -> None:
    """Kill every process left inside `namespace` (by pid), then delete it."""
    pids = _run("ip", "netns", "pids", namespace, check=False).stdout.split()
    for pid in pids:
        with suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    for _ in range(50):
        if not _run("ip", "netns", "pids", namespace, check=False).stdout.split():
            break
        time.sleep(0.1)
    _run("ip", "netns", "del", namespace, check=False)


def _namespaces() -> list[str]:
    listed = _run("ip", "netns", "list", check=False).stdout.splitlines()
    return [line.split()[0] for line in listed if line.strip()]


def remove_stale_labs() -> list[str]:
    """Delete the namespaces of labs whose process is gone; the names deleted."""
    removed = []
    for namespace in _namespaces():
        if not namespace.startswith(PREFIX):
            continue
        owner = namespace[len(PREFIX) :].split("-", 1)[0]
        if not owner.isdigit() or _alive(int(owner)):
            continue
        _delete_namespace(namespace)
        removed.append(namespace)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def nat_lab(folder: Path, *, nat_a: Nat = Nat.CONE, nat_b: Nat = Nat.CONE) -> Iterator[Lab]:
    """Build the lab in fresh namespaces, start coturn, yield it; tear everything down after."""
    reason = missing()
    if reason is not None:
        raise LabError(reason)
    remove_stale_labs()
    folder.mkdir(parents=True, exist_ok=True)
    tag = f"{PREFIX}{os.getpid()}-{next(_serial)}"
    public = f"{tag}-pub"
    plan = {
        "a": (nat_a, "192.168.1", f"{PUBLIC_NET}.10"),
        "b": (nat_b, "192.168.2", f"{PUBLIC_NET}.20"),
    }
    homes = {
        name: Home(name, f"{tag}-h{name}", f"{tag}-r{name}", f"{net}.2", nat, wan)
        for name, (nat, net, wan) in plan.items()
    }
    namespaces: list[str] = []
    lab = Lab(folder, public, homes, secrets.token_urlsafe(16), namespaces)
    try:
        for namespace in (
            public,
            *(h.router for h in homes.values()),
            *(h.namespace for h in homes.values()),
        ):
            _run("ip", "netns", "add", namespace)
            namespaces.append(namespace)
            _run("ip", "-n", namespace, "link", "set", "lo", "up")
        _build_public(public)
        for home in homes.values():
            _build_home(public, home, plan[home.name][1])
        lab.start_turn()
        yield lab
    finally:
        lab.close()


def _build_public(public: str) -> None:
    steps: list[tuple[str, ...]] = [
        ("-n", public, "link", "add", "br0", "type", "bridge"),
        ("-n", public, "addr", "add", f"{TURN_ADDRESS}/24", "dev", "br0"),
        ("-n", public, "addr", "add", f"{SECOND_STUN_ADDRESS}/24", "dev", "br0"),
        ("-n", public, "link", "set", "br0", "up"),
    ]
    for step in steps:
        _run("ip", *step)


def _build_home(public: str, home: Home, net: str) -> None:
    port = f"to{home.name}"  # the router's cable on the public bridge
    steps: list[tuple[str, ...]] = [
        ("link", "add", "wan", "netns", home.router, "type", "veth", "peer", port, "netns", public),
        ("-n", public, "link", "set", port, "master", "br0", "up"),
        ("link", "add", "lan", "netns", home.router, "type", "veth", "peer", "eth0", "netns",
         home.namespace),
        ("-n", home.router, "addr", "add", f"{home.public}/24", "dev", "wan"),
        ("-n", home.router, "addr", "add", f"{net}.1/24", "dev", "lan"),
        ("-n", home.namespace, "addr", "add", f"{home.address}/24", "dev", "eth0"),
        ("-n", home.router, "link", "set", "wan", "up"),
        ("-n", home.router, "link", "set", "lan", "up"),
        ("-n", home.namespace, "link", "set", "eth0", "up"),
        ("-n", home.namespace, "route", "add", "default", "via", f"{net}.1"),
    ]  # fmt: skip
    for step in steps:
        _run("ip", *step)
    router = in_namespace(home.router)
    _run(*router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    servers = f"{{ {TURN_ADDRESS}, {SECOND_STUN_ADDRESS} }}"
    ruleset = (
        "table ip nat {\n"
        "  chain postrouting {\n"
        "    type nat hook postrouting priority srcnat; policy accept;\n"
        f'    oifname "wan" {home.nat.masquerade}\n'
        "  }\n"
        "}\n"
        "table ip filter {\n"
        "  chain input {\n"
        "    type filter hook input priority filter; policy accept;\n"
        '    iifname "wan" ct state new drop\n'
        "  }\n"
        "}\n"
        "table ip watch {\n"
        f"  counter {PEER_COUNTER} {{ }}\n"
        "  chain prerouting {\n"
        "    type filter hook prerouting priority raw; policy accept;\n"
        f'    iifname "wan" ip saddr != {servers} counter name "{PEER_COUNTER}"\n'
        "  }\n"
        "}\n"
    )
    result = subprocess.run(
        [*router, "nft", "-f", "-"],
        input=ruleset,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise LabError(f"nft in {home.router} failed: {result.stderr.strip()}")
