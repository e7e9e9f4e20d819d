"""The Slack app manifest in deploy/ matches what fluxbot actually uses."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.commands.grammar import SPECS
from bot.config import SlackSettings

MANIFEST = Path(__file__).resolve().parent.parent / "deploy" / "slack-app-manifest.yaml"


def test_manifest_declares_the_command_scopes_interactivity_and_socket_mode() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == SlackSettings().command
    assert command["url"].endswith("/slack/events")
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "commands",
        "chat:write",
        "chat:write.public",
        "usergroups:read",
        "users:read",
        "app_mentions:read",
        "files:write",
    }
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["interactivity"]["request_url"] == command["url"]
    assert manifest["settings"]["socket_mode_enabled"] is True
    # Role checks cache user group membership; this event refreshes it when a group changes.
    # Mentions carry commands where slash commands cannot go (threads).
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == [
        "subteam_members_changed",
        "app_mention",
    ]


def test_manifest_usage_hint_names_real_commands() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    hint = manifest["features"]["slash_commands"][0]["usage_hint"]
    named = {part.strip().split()[0] for part in hint.split("|")}
    assert named <= {spec.name for spec in SPECS}
