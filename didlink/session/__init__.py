"""Live sessions: a WebRTC connection from its token to its close (flows, node, delivery, files)."""
