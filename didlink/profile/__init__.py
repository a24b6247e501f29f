"""What one person's profile keeps on disk: the store, settings, names, history, outbox."""
