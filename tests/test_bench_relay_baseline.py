"""The raw relay baselines of `make bench` run against a real relay (bench/relay_baseline.py):
they deliver what they publish (no figure is checked: timing belongs to `make bench`)."""

from __future__ import annotations

from pathlib import Path

from bench import relay_baseline
from tests.support.nostr_relays import local_relays


def test_the_raw_baselines_deliver_through_a_real_relay(tmp_path: Path) -> None:
    with local_relays(tmp_path, 1) as (relay,):
        assert relay_baseline.publish_to_subscriber(relay.url) > 0
        assert relay_baseline.throughput(relay.url, 20) > 0


def test_the_wraps_are_real_and_distinct() -> None:
    recipient, wraps = relay_baseline.make_wraps(3)
    assert len({wrap.id for wrap in wraps}) == 3
    assert all(wrap.kind == 1059 and wrap.tag_values("p") == [recipient] for wrap in wraps)
