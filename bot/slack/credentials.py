"""Slack secrets, read from environment variables only, kept as SecretStr, never logged."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from pydantic import BaseModel, ConfigDict, SecretStr

DEFAULT_API_URL: Final = "https://slack.com/api/"


class MissingCredentials(Exception):
    """Some required environment variables are not set; the message names them."""


class SlackCredentials(BaseModel):
    """What fluxbot needs to talk to Slack, from SLACK_* environment variables."""

    model_config = ConfigDict(frozen=True)

    bot_token: SecretStr
    app_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    # GovSlack uses https://slack-gov.com/api/; tests point this at a local fake.
    api_url: str = DEFAULT_API_URL

    @classmethod
    def from_env(cls, http: bool, env: Mapping[str, str] | None = None) -> SlackCredentials:
        """Read the variables the chosen mode needs; MissingCredentials names any absent."""
        env = os.environ if env is None else env
        needed = ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET" if http else "SLACK_APP_TOKEN"]
        missing = [name for name in needed if not env.get(name)]
        if missing:
            mode = "HTTP mode" if http else "Socket Mode"
            raise MissingCredentials(
                f"{mode} needs the environment variable(s) {', '.join(missing)}"
            )
        api_url = env.get("SLACK_API_URL") or DEFAULT_API_URL
        return cls(
            bot_token=SecretStr(env["SLACK_BOT_TOKEN"]),
            app_token=SecretStr(env["SLACK_APP_TOKEN"]) if env.get("SLACK_APP_TOKEN") else None,
            signing_secret=(
                SecretStr(env["SLACK_SIGNING_SECRET"]) if env.get("SLACK_SIGNING_SECRET") else None
            ),
            api_url=api_url if api_url.endswith("/") else api_url + "/",
        )
