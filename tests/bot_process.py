"""Run the real `fluxbot serve --http` process against fake Slack and fake clusters."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_client import SlackClient, SlackReply

ROOT = Path(__file__).resolve().parent.parent
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


class Bot:
    """A running `fluxbot serve --http` and the Slack it talks to."""

    def __init__(
        self, process: subprocess.Popen[str], url: str, slack: FakeSlack, log: Path
    ) -> None:
        self.process = process
        self.url = url
        self.slack = slack
        self.log = log
        self.client = SlackClient(url, SECRET, fake=slack)

    def command(self, text: str, channel: str, user: str = "U0USER", **options: Any) -> SlackReply:
        """Type `/flux text` in `channel` as `user`."""
        return self.client.slash_command("/flux", text, channel_id=channel, user_id=user, **options)

    def answer(self, reply: SlackReply, count: int = 1, timeout: float = 10.0) -> dict[str, Any]:
        """The `count`-th post to the reply's response_url (the answer)."""
        records = self.slack.wait_for_response(count, timeout=timeout, url=reply.response_url)
        record = records[count - 1]
        assert record.status == 200, record.body
        payload: dict[str, Any] = record.payload
        return payload

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, then wait (Kubernetes' default grace period), then kill."""
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_bot(
    args: list[str], slack: FakeSlack, tmp_path: Path, env: dict[str, str] | None = None
) -> Bot:
    """Start the bot in HTTP mode on a free port; wait until it says it is serving."""
    full_env = {
        **os.environ,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        **(env or {}),
    }
    for name in ("SLACK_APP_TOKEN", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        full_env.pop(name, None)
    log = tmp_path / "bot.log"
    handle = log.open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--http", "--host", "127.0.0.1",
         "--port", "0", *args],
        cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=handle, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        handle.seek(0)
        found = re.search(r"serving /flux on (http://\S+)", handle.read())
        if found:
            return Bot(process, found.group(1), slack, log)
        if process.poll() is not None:
            handle.seek(0)
            raise AssertionError(f"fluxbot serve exited: {handle.read()}")
        time.sleep(0.05)
    process.kill()
    raise AssertionError("fluxbot serve did not start listening")


def texts(payload: dict[str, Any]) -> str:
    """Every piece of text in a message's blocks (and its fallback), joined."""
    out: list[str] = [str(payload.get("text") or "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(payload.get("blocks", []))
    return "\n".join(out)


def buttons(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The message's buttons by label, each with the block_id of its actions block."""
    found: dict[str, dict[str, Any]] = {}
    for block in payload.get("blocks", []):
        elements = list(block.get("elements") or [])
        if block.get("accessory"):
            elements.append(block["accessory"])
        for element in elements:
            if element.get("type") == "button":
                found[element["text"]["text"]] = {**element, "block_id": block.get("block_id")}
    return found
