"""Keeping the key: the key agent, device-bound tokens, restoring a backup."""
