"""Scheduled digests: record history continuously, compose and post on schedule, once."""
