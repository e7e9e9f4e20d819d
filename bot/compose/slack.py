"""Slack credentials and clients, as every mode that talks to Slack builds them."""

from __future__ import annotations

import os

from bot.compose import SetupError
from bot.config import FluxbotConfig
from bot.slack.app import make_client
from bot.slack.credentials import MissingCredentials, SlackCredentials
from bot.slack.digest_post import SlackDigestPoster


def digest_poster(config: FluxbotConfig) -> SlackDigestPoster:
    """Posts digests with SLACK_BOT_TOKEN (a one-off post needs no app token or button key)."""
    try:
        credentials = SlackCredentials.from_env(
            http=False, env={**os.environ, "SLACK_APP_TOKEN": "unused"}
        )
    except MissingCredentials as err:
        raise SetupError([f"{err}; or use --dry-run to print the digest"]) from err
    return SlackDigestPoster(make_client(credentials, config.slack), config.layout(), None)
