"""didlink identity: did:key, DID documents, keys, encrypted keystore, signed invitations.

Sans-IO apart from the keystore's atomic file writes: no asyncio, no sockets, no aiortc.
"""
