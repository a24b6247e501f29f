"""Compact offer: known bytes, SDP round trips through aiortc, strict parsing, Hypothesis."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable

import cbor2
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from hypothesis import given, settings
from hypothesis import strategies as st

from transport.compact_offer import Candidate, CandidateKind, CompactOffer, SetupRole
from transport.errors import CompactOfferError
from transport.sdp import compact_from_sdp, sdp_from_compact

FP = bytes(range(32))
V4 = ipaddress.IPv4Address("192.0.2.2")
V6 = ipaddress.IPv6Address("fd00::2")


def _offer(**changes: object) -> CompactOffer:
    fields: dict[str, object] = {
        "setup": SetupRole.ACTPASS,
        "ufrag": "JOHK",
        "pwd": "j290cX1BIg3F3IVCikHsD6",
        "fingerprint": FP,
        "candidates": (
            Candidate(kind=CandidateKind.HOST, ip=V4, port=54288),
            Candidate(kind=CandidateKind.HOST, ip=V6, port=44005),
        ),
    }
    fields.update(changes)
    return CompactOffer(**fields)  # type: ignore[arg-type]


def test_known_bytes_written_by_hand_from_the_spec() -> None:
    # specs/transport.md §3: a5 map(5); 01 00 setup actpass; 02 64 "JOHK"; 03 76 pwd(22);
    # 04 58 20 fp(32); 05 82 [ 47 (00 c0000202 d410), 53 (04 fd00..02 abe5) ]
    expected = (
        bytes.fromhex("a5" "0100" "0264") + b"JOHK"
        + bytes.fromhex("0376") + b"j290cX1BIg3F3IVCikHsD6"
        + bytes.fromhex("045820") + FP + bytes.fromhex("0582")
        + bytes.fromhex("47" "00" "c0000202" "d410")
        + bytes.fromhex("53" "04" "fd000000000000000000000000000002" "abe5")
    )  # fmt: skip
    assert _offer().to_cbor() == expected
    assert CompactOffer.from_cbor(expected) == _offer()
    assert len(expected) <= 150


def test_related_address_encoding() -> None:
    cand = Candidate(
        kind=CandidateKind.SRFLX,
        ip=ipaddress.ip_address("203.0.113.7"),
        port=3478,
        related_ip=ipaddress.ip_address("2001:db8::1"),
        related_port=0,
    )
    packed = cand.pack()
    assert packed[0] == 0b0001_1001  # srflx | related | related-ipv6
    related = bytes.fromhex("20010db8000000000000000000000001")
    assert packed == bytes([0x19, 203, 0, 113, 7]) + b"\x0d\x96" + related + b"\x00\x00"
    assert Candidate.unpack(packed) == cand


async def test_aiortc_sdp_round_trip_and_acceptance() -> None:
    config = RTCConfiguration(iceServers=[])
    offerer, answerer = RTCPeerConnection(config), RTCPeerConnection(config)
    try:
        offerer.createDataChannel("d", negotiated=True, id=0)
        answerer.createDataChannel("d", negotiated=True, id=0)
        await offerer.setLocalDescription(await offerer.createOffer())
        original = offerer.localDescription.sdp
        compact = compact_from_sdp(original)
        assert compact.setup is SetupRole.ACTPASS
        assert compact.ufrag in original and compact.pwd in original
        assert compact.fingerprint_hex in original
        assert all(f" {c.ip} {c.port} typ host" in original for c in compact.candidates)
        assert len(compact.to_cbor()) <= 150
        sdp, kind = sdp_from_compact(compact)
        assert kind == "offer"
        assert compact_from_sdp(sdp) == compact
        await answerer.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        await answerer.setLocalDescription(await answerer.createAnswer())
        answer = compact_from_sdp(answerer.localDescription.sdp)
        assert answer.setup is SetupRole.ACTIVE
        sdp, kind = sdp_from_compact(answer)
        assert kind == "answer"
        await offerer.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
    finally:
        await offerer.close()
        await answerer.close()


CHROMIUM_ANSWER = """v=0\r
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r
s=-\r
t=0 0\r
a=group:BUNDLE 0\r
a=extmap-allow-mixed\r
a=msid-semantic: WMS\r
m=application 50724 UDP/DTLS/SCTP webrtc-datachannel\r
c=IN IP4 192.0.2.2\r
a=candidate:2043152155 1 udp 2122260223 192.0.2.2 50724 typ host generation 0 network-id 1\r
a=candidate:1234567890 1 udp 2122262783 fd00::2 50725 typ host generation 0 network-id 2\r
a=candidate:3333333333 1 udp 2122262783 fe80::1 50726 typ host generation 0 network-id 3\r
a=candidate:4444444444 1 udp 2122262783 0b2c3f5e-1234.local 50727 typ host generation 0\r
a=candidate:934373355 1 tcp 1518280447 192.0.2.2 9 typ host tcptype active generation 0\r
a=candidate:842163049 1 udp 1686052607 203.0.113.9 61000 typ srflx raddr 192.0.2.2 rport 50724\r
a=ice-ufrag:5Ddx\r
a=ice-pwd:QeFNnh3fVAfyUZFDRMHu9gxs\r
a=ice-options:trickle\r
a=fingerprint:sha-256 FINGERPRINT\r
a=setup:active\r
a=mid:0\r
a=sctp-port:5000\r
a=max-message-size:262144\r
""".replace("FINGERPRINT", ":".join(f"{b:02X}" for b in FP))


def test_chromium_style_answer_keeps_udp_ip_candidates_only() -> None:
    answer = compact_from_sdp(CHROMIUM_ANSWER)
    assert answer.setup is SetupRole.ACTIVE
    assert answer.ufrag == "5Ddx" and answer.pwd == "QeFNnh3fVAfyUZFDRMHu9gxs"
    assert answer.fingerprint == FP
    assert [(c.kind, str(c.ip), c.port) for c in answer.candidates] == [
        (CandidateKind.HOST, "192.0.2.2", 50724),
        (CandidateKind.HOST, "fd00::2", 50725),
        (CandidateKind.SRFLX, "203.0.113.9", 61000),
    ]
    assert str(answer.candidates[2].related_ip) == "192.0.2.2"
    sdp, kind = sdp_from_compact(answer)
    assert kind == "answer"
    # RFC 8445 §5.1.2.1: 100 << 24 | (65535 - 2) << 8 | 255 = 1694498303
    assert (
        "a=candidate:3 1 udp 1694498303 203.0.113.9 61000 typ srflx raddr 192.0.2.2 rport 50724"
        in sdp
    )


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda s: s.replace("a=setup:active\r\n", ""), "setup"),
        (lambda s: s.replace("a=ice-pwd:", "a=ice-pwdx:"), "ice-pwd"),
        (lambda s: s.replace("a=setup:active", "a=setup:sideways"), "setup role"),
        (lambda s: s.replace("a=mid:0", "a=mid:data"), "mid"),
        (lambda s: s.replace("sha-256 00:01", "sha-256 00"), "fingerprint"),
        (lambda s: s.replace("sha-256", "sha-1"), "fingerprint"),
        (lambda s: s + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "data-channel"),
        (lambda s: s.replace("50724 typ host", "70000 typ host"), "port"),
        (lambda s: s.replace("50724 typ host", "0 typ host"), "port"),
        (lambda s: s.replace("typ srflx", "typ weird"), "type"),
        (lambda s: s.replace("50724 typ host", "50724 type host"), "malformed"),
        (lambda s: "\r\n".join(x for x in s.split("\r\n") if " udp " not in x), "no usable"),
        (lambda s: s.replace("a=ice-ufrag:5Ddx", "a=ice-ufrag:5D"), "ICE credentials"),
        (lambda s: s * 200, "too large"),
    ],
)
def test_sdp_negative(edit: Callable[[str], str], needle: str) -> None:
    with pytest.raises(CompactOfferError, match=needle):
        compact_from_sdp(edit(CHROMIUM_ANSWER))


def _cbor_map(**overrides: object) -> bytes:
    base = cbor2.loads(_offer().to_cbor())
    for key, value in overrides.items():
        index = int(key[1:])
        if value is None:
            del base[index]
        else:
            base[index] = value
    return cbor2.dumps(base, canonical=True)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "not valid CBOR"),
        (_offer().to_cbor()[:-1], "not valid CBOR"),
        (_offer().to_cbor() + b"\x00", "canonical"),
        (b"\xa5" + b"\x00" * 600, "at most 512"),
        (cbor2.dumps([1, 2, 3]), "map with keys"),
        (_cbor_map(k6=1), "map with keys"),
        (_cbor_map(k5=None), "map with keys"),
        (_cbor_map(k1=3), "setup role"),
        (_cbor_map(k1="0"), "setup role"),
        (_cbor_map(k1=True), "setup role"),
        (_cbor_map(k2=b"JOHK"), "ufrag"),
        (_cbor_map(k2="J K!"), "ufrag"),
        (_cbor_map(k3="short"), "pwd"),
        (_cbor_map(k4=FP[:31]), "fingerprint"),
        (_cbor_map(k4="00" * 32), "fingerprint"),
        (_cbor_map(k5=[]), "candidates"),
        (_cbor_map(k5=["x"]), "list of byte strings"),
        (_cbor_map(k5=[bytes.fromhex("00c0000202d4")]), "wrong length"),
        (_cbor_map(k5=[bytes.fromhex("00c0000202d41000")]), "wrong length"),
        (_cbor_map(k5=[bytes.fromhex("20c0000202d410")]), "reserved"),
        (_cbor_map(k5=[bytes.fromhex("10c0000202d410")]), "related IPv6"),
        (_cbor_map(k5=[bytes.fromhex("00c00002020000")]), "port"),
        (_cbor_map(k5=[bytes.fromhex("08c0000202d410c00002020001")]), "host candidate"),
        (_cbor_map(k5=[b""]), "empty"),
        (_cbor_map(k5=[bytes.fromhex("00c0000202d410")] * 9), "more than 8"),
        (cbor2.dumps({1: 0, 2: "JOHK", 3: "j290cX1BIg3F3IVCikHsD6", 4: FP, 5: []}), "candidates"),
        # non-canonical: an integer in a longer form than needed
        (bytes.fromhex("a5180100") + _offer().to_cbor()[3:], "canonical"),
    ],
)
def test_cbor_negative(data: bytes, needle: str) -> None:
    with pytest.raises(CompactOfferError, match=needle):
        CompactOffer.from_cbor(data)


def test_from_cbor_rejects_non_bytes() -> None:
    with pytest.raises(CompactOfferError):
        CompactOffer.from_cbor("a5")  # type: ignore[arg-type]


ips = st.one_of(
    st.ip_addresses(v=4),
    st.ip_addresses(v=6).filter(lambda ip: not ip.is_link_local),
)


@st.composite
def candidates(draw: st.DrawFn) -> Candidate:
    kind = draw(st.sampled_from(CandidateKind))
    related = kind is not CandidateKind.HOST and draw(st.booleans())
    return Candidate(
        kind=kind,
        ip=draw(ips),
        port=draw(st.integers(1, 65535)),
        related_ip=draw(ips) if related else None,
        related_port=draw(st.integers(0, 65535)) if related else None,
    )


ice = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/", min_size=1
)


@settings(max_examples=200, deadline=None)
@given(
    setup=st.sampled_from(SetupRole),
    ufrag=ice.filter(lambda s: 4 <= len(s) <= 32),
    pwd=ice.filter(lambda s: 22 <= len(s) <= 64) | st.just("j290cX1BIg3F3IVCikHsD6"),
    fingerprint=st.binary(min_size=32, max_size=32),
    cands=st.lists(candidates(), min_size=1, max_size=8),
)
def test_round_trip_cbor_and_sdp(
    setup: SetupRole, ufrag: str, pwd: str, fingerprint: bytes, cands: list[Candidate]
) -> None:
    offer = CompactOffer(
        setup=setup, ufrag=ufrag, pwd=pwd, fingerprint=fingerprint, candidates=tuple(cands)
    )
    assert CompactOffer.from_cbor(offer.to_cbor()) == offer
    sdp, _ = sdp_from_compact(offer)
    assert compact_from_sdp(sdp) == offer


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data: bytes) -> None:
    with contextlib.suppress(CompactOfferError):
        CompactOffer.from_cbor(data)
