"""The chat screen (prompt-toolkit)."""
