"""SDP <-> CompactOffer (specs/transport.md §4).

`compact_from_sdp` reads an SDP produced by aiortc or a browser after ICE gathering completed
and keeps what matters; `sdp_from_compact` writes the full SDP back for our fixed profile: one
bundled m=application section (mid "0"), SCTP port 5000, max-message-size 262144, with all the
candidates and end-of-candidates (no trickle ICE). What is dropped, and why, is in the spec.
"""

from __future__ import annotations

import ipaddress

from transport.compact_offer import (
    Candidate,
    CandidateKind,
    CompactOffer,
    IPAddress,
    SetupRole,
    format_fingerprint,
    parse_fingerprint,
)
from transport.errors import CompactOfferError

SCTP_PORT = 5000
SDP_MAX_MESSAGE_SIZE = 262144
MID = "0"
MAX_SDP_CHARS = 64 * 1024

_TYPE_PREFERENCE = {  # RFC 8445 §5.1.2.2 recommended values
    CandidateKind.HOST: 126,
    CandidateKind.PRFLX: 110,
    CandidateKind.SRFLX: 100,
    CandidateKind.RELAY: 0,
}
_SETUP_NAMES = {role.name.lower(): role for role in SetupRole}


def candidate_priority(kind: CandidateKind, index: int) -> int:
    """RFC 8445 §5.1.2.1 priority for component 1; list order becomes local preference."""
    return (_TYPE_PREFERENCE[kind] << 24) | ((65535 - index) << 8) | 255


def sdp_from_compact(offer: CompactOffer) -> tuple[str, str]:
    """Rebuild (sdp, type) where type is "offer" for actpass and "answer" otherwise."""
    first = offer.candidates[0]
    session_id = int.from_bytes(offer.fingerprint[:7], "big")
    lines = [
        "v=0",
        f"o=- {session_id} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        f"a=group:BUNDLE {MID}",
        "a=msid-semantic:WMS *",
        f"m=application {first.port} UDP/DTLS/SCTP webrtc-datachannel",
        f"c=IN IP{first.ip.version} {first.ip}",
        f"a=mid:{MID}",
        f"a=sctp-port:{SCTP_PORT}",
        f"a=max-message-size:{SDP_MAX_MESSAGE_SIZE}",
        f"a=ice-ufrag:{offer.ufrag}",
        f"a=ice-pwd:{offer.pwd}",
        f"a=fingerprint:sha-256 {format_fingerprint(offer.fingerprint)}",
        f"a=setup:{offer.setup.name.lower()}",
    ]
    for index, cand in enumerate(offer.candidates):
        line = (
            f"a=candidate:{index + 1} 1 udp {candidate_priority(cand.kind, index)} "
            f"{cand.ip} {cand.port} typ {cand.kind.name.lower()}"
        )
        if cand.related_ip is not None:
            line += f" raddr {cand.related_ip} rport {cand.related_port}"
        lines.append(line)
    lines.append("a=end-of-candidates")
    return "\r\n".join(lines) + "\r\n", ("offer" if offer.is_offer else "answer")


def compact_from_sdp(sdp: str) -> CompactOffer:
    """Extract the compact form; CompactOfferError if the SDP is outside our profile."""
    if len(sdp) > MAX_SDP_CHARS:
        raise CompactOfferError("The SDP is too large.")
    values: dict[str, str] = {}
    candidates: list[Candidate] = []
    m_lines = 0
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            m_lines += 1
            if "webrtc-datachannel" not in line.split():
                raise CompactOfferError("Only a WebRTC data-channel (m=application) is supported.")
        elif line.startswith("a=candidate:"):
            cand = _parse_candidate(line[len("a=candidate:") :])
            if cand is not None and len(candidates) < 8:
                candidates.append(cand)
        elif line.startswith("a=fingerprint:"):
            algorithm, _, value = line[len("a=fingerprint:") :].partition(" ")
            if algorithm.lower() == "sha-256":
                _set_once(values, "fingerprint", value.strip())
        else:
            for attr in ("ice-ufrag", "ice-pwd", "setup", "mid"):
                if line.startswith(f"a={attr}:"):
                    _set_once(values, attr, line[len(attr) + 3 :].strip())
    if m_lines != 1:
        raise CompactOfferError("The SDP must have exactly one m= section.")
    for attr in ("ice-ufrag", "ice-pwd", "setup", "fingerprint"):
        if attr not in values:
            raise CompactOfferError(f"The SDP has no a={attr} line (sha-256 for fingerprints).")
    if values.get("mid", MID) != MID:
        raise CompactOfferError(f'The data-channel section must have mid "{MID}".')
    if values["setup"] not in _SETUP_NAMES:
        raise CompactOfferError(f"Unknown DTLS setup role {values['setup']!r}.")
    if not candidates:
        raise CompactOfferError("The SDP has no usable candidate (UDP, IP address, component 1).")
    try:
        return CompactOffer(
            setup=_SETUP_NAMES[values["setup"]],
            ufrag=values["ice-ufrag"],
            pwd=values["ice-pwd"],
            fingerprint=parse_fingerprint(values["fingerprint"]),
            candidates=tuple(candidates),
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise CompactOfferError(f"The SDP's ICE credentials are invalid ({exc}).") from None


def _set_once(values: dict[str, str], key: str, value: str) -> None:
    if key in values and values[key] != value:
        raise CompactOfferError(f"The SDP has two different a={key} values.")
    values[key] = value


def _parse_candidate(text: str) -> Candidate | None:
    """Parse RFC 8839 §5.1 candidate-attribute; None for candidates we deliberately drop."""
    parts = text.split()
    if len(parts) < 8 or parts[6] != "typ":
        raise CompactOfferError("A candidate line is malformed.")
    component, transport, address, port_text, kind_text = (
        parts[1],
        parts[2].lower(),
        parts[4],
        parts[5],
        parts[7],
    )
    if component != "1" or transport != "udp":
        return None  # RTCP (mux'd anyway) and ICE-TCP (aiortc does not do it) are dropped
    ip = _parse_ip(address)
    if ip is None:
        return None  # mDNS .local names cannot be carried; we never need them (spec §4.2)
    kind = {k.name.lower(): k for k in CandidateKind}.get(kind_text)
    if kind is None:
        raise CompactOfferError(f"Unknown candidate type {kind_text!r}.")
    extras = dict(zip(parts[8::2], parts[9::2], strict=False))
    related_ip = related_port = None
    if kind is not CandidateKind.HOST and "raddr" in extras and "rport" in extras:
        related_ip = _parse_ip(extras["raddr"])
        related_port = _parse_port(extras["rport"], allow_zero=True)
        if related_ip is None:
            related_port = None
    try:
        return Candidate(
            kind=kind,
            ip=ip,
            port=_parse_port(port_text, allow_zero=False),
            related_ip=related_ip,
            related_port=related_port,
        )
    except ValueError as exc:
        raise CompactOfferError(f"A candidate is invalid ({exc}).") from None


def _parse_ip(text: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if ip.version == 6 and ip.is_link_local:
        return None  # a link-local address needs a scope id that the peer cannot know
    return ip


def _parse_port(text: str, *, allow_zero: bool) -> int:
    if not text.isdigit() or len(text) > 5:
        raise CompactOfferError(f"Bad candidate port {text!r}.")
    port = int(text)
    if port > 65535 or (port == 0 and not allow_zero):
        raise CompactOfferError(f"Bad candidate port {text!r}.")
    return port
