"""didlink transport: WebRTC data channels on aiortc, compact offers, signaling.

The only package that imports aiortc. It moves opaque bytes and exposes the DTLS certificate
fingerprints; it knows nothing of DIDs.
"""
