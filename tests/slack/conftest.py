"""Fixtures of the in-process Slack tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.slack.fleet import bot, fleet, slack
from tests.slack.world import World, open_world

__all__ = ["bot", "fleet", "slack", "world"]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The remediation world, its bot in this process once started."""
    with open_world(tmp_path, monkeypatch, process=False) as w:
        yield w
