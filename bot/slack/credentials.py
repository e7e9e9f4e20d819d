"""Slack secrets, from environment variables or the files they name, as SecretStr, never logged.

Each secret NAME is read from the file named by `NAME_FILE` (a Kubernetes Secret mounted as
files), else from the variable NAME itself. A value given in a variable stays readable in
/proc/PID/environ for the process's lifetime, whatever fluxbot does with os.environ; one read
from a file is only in fluxbot's memory. A `NAME_FILE` naming a file that does not exist
counts as unset, so one mounted Secret can hold only the keys its mode needs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, SecretStr

DEFAULT_API_URL: Final = "https://slack.com/api/"
# Secrets are short tokens; anything bigger is the wrong file.
MAX_SECRET_FILE_BYTES: Final = 16 * 1024
SECRET_NAMES: Final = (
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "FLUXBOT_BUTTON_KEY",
)


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
    # Signs button payloads. FLUXBOT_BUTTON_KEY, else derived from the Slack secrets so that
    # buttons stay valid across restarts without one more secret to manage.
    button_key: SecretStr = SecretStr("")

    def button_key_bytes(self) -> bytes:
        """The HMAC key for button payloads."""
        explicit = self.button_key.get_secret_value()
        if explicit:
            return explicit.encode()
        seed = (self.signing_secret or self.app_token or self.bot_token).get_secret_value()
        return hmac.new(seed.encode(), b"fluxbot button payloads v1", hashlib.sha256).digest()

    @classmethod
    def from_env(cls, http: bool | None, env: Mapping[str, str] | None = None) -> SlackCredentials:
        """Read the variables the mode needs (None: only the Web API); name any absent."""
        env = resolve_secret_files(os.environ if env is None else env)
        needed = ["SLACK_BOT_TOKEN"]
        if http is not None:
            needed.append("SLACK_SIGNING_SECRET" if http else "SLACK_APP_TOKEN")
        missing = [name for name in needed if not env.get(name)]
        if missing:
            mode = {True: "HTTP mode", False: "Socket Mode", None: "Posting"}[http]
            raise MissingCredentials(
                f"{mode} needs the environment variable(s) {', '.join(missing)} "
                f"(or {', '.join(n + '_FILE' for n in missing)} naming a file that holds it)"
            )
        api_url = env.get("SLACK_API_URL") or DEFAULT_API_URL
        return cls(
            bot_token=SecretStr(env["SLACK_BOT_TOKEN"]),
            app_token=SecretStr(env["SLACK_APP_TOKEN"]) if env.get("SLACK_APP_TOKEN") else None,
            signing_secret=(
                SecretStr(env["SLACK_SIGNING_SECRET"]) if env.get("SLACK_SIGNING_SECRET") else None
            ),
            api_url=api_url if api_url.endswith("/") else api_url + "/",
            button_key=SecretStr(env.get("FLUXBOT_BUTTON_KEY", "")),
        )


def resolve_secret_files(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with each secret NAME whose NAME_FILE exists replaced by that file's content."""
    out = dict(env)
    for name in SECRET_NAMES:
        path = env.get(f"{name}_FILE")
        if not path:
            continue
        if env.get(name):
            raise MissingCredentials(f"set {name} or {name}_FILE, not both")
        file = Path(path)
        if not file.exists():
            continue
        try:
            raw = file.read_bytes()[: MAX_SECRET_FILE_BYTES + 1]
        except OSError as err:
            raise MissingCredentials(f"{name}_FILE: cannot read {path}: {err.strerror}") from err
        if len(raw) > MAX_SECRET_FILE_BYTES:
            raise MissingCredentials(f"{name}_FILE: {path} is too large for a secret")
        try:
            value = raw.decode().strip()
        except UnicodeDecodeError as err:
            raise MissingCredentials(f"{name}_FILE: {path} is not text") from err
        if not value:
            raise MissingCredentials(f"{name}_FILE: {path} is empty")
        out[name] = value
    return out
