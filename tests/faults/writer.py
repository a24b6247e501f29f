"""Child processes that write a profile in a tight loop until they are SIGKILLed.

Usage:
  python -m tests.faults.writer passwd KEYSTORE CURRENT   alternate the passphrase "a" <-> "b"
  python -m tests.faults.writer store PROFILE             outbox writes, one transaction each

Each prints "started" once its first write is about to begin, then writes for ever. The
parent (tests/faults/test_kills.py) kills it at a random instant and checks that the profile
opens with either the old or the new state.

Store invariant: transaction n adds message "m<n>" (sealed, under message id n) and
acknowledges (deletes) message n - 2, so after any number n + 1 >= 2 of complete transactions
the outbox holds exactly two consecutive messages, "m<n-1>" and "m<n>"; a torn transaction
would leave one or three, or a sealed value that does not open.
"""

from __future__ import annotations

import sys
from pathlib import Path

from didlink.profile.outbox import Outbox
from didlink.profile.sealing import Sealer
from didlink.profile.store import Store
from identity.keys import IdentityKey
from identity.keystore import KdfParams, change_passphrase

FAST = KdfParams(memory_cost=64, iterations=1, lanes=1)
PHRASES = ("a", "b")
STORE_KEY = IdentityKey(bytes(range(32)))
PEER = IdentityKey(bytes(range(1, 33))).did


def message_id(number: int) -> bytes:
    return number.to_bytes(16, "big")


def last_message(outbox: Outbox) -> int:
    """The number of the newest message in the outbox (-1 if it is empty)."""
    pending = outbox.pending(PEER)
    return int(pending[-1].text[1:]) if pending else -1


def write_store(profile: Path) -> None:
    with Store(profile / "store.sqlite3") as store:
        outbox = Outbox(store, Sealer(STORE_KEY))
        number = last_message(outbox) + 1
        print("started", flush=True)
        while True:
            with store.transaction():
                outbox.add(PEER, f"m{number}", message_id=message_id(number))
                if number >= 2:
                    outbox.acknowledge(message_id(number - 2))
            number += 1


def change_forever(keystore: Path, current: str) -> None:
    index = PHRASES.index(current)
    print("started", flush=True)
    while True:
        change_passphrase(keystore, PHRASES[index], PHRASES[1 - index], params=FAST)
        index = 1 - index


if __name__ == "__main__":
    if sys.argv[1] == "passwd":
        change_forever(Path(sys.argv[2]), sys.argv[3])
    elif sys.argv[1] == "store":
        write_store(Path(sys.argv[2]))
    else:
        raise SystemExit(f"unknown writer {sys.argv[1]!r}")
