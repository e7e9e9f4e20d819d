"""Tests of the Slack listeners, in-process (see tests/slack/harness.py)."""
