"""Reach by relays: the persistent sessions' store, the mailbox route, the profile's relays."""
