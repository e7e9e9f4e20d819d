"""Durable state of one fluxbot replica: the digest history in a local SQLite file."""
