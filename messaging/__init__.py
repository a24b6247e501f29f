"""didlink messaging: the commit + Noise KK handshake, SAS, safety numbers, Double Ratchet
sessions and frames. Sans-IO: bytes and events in, bytes and events out; no asyncio, no aiortc.
"""
