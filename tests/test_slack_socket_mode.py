"""`/flux` over Socket Mode, end to end: the real `fluxbot serve --demo` process against the
fake Slack, which hands it a WebSocket URL, pushes envelopes down it and records the acks.

Socket Mode is what `fluxbot serve` does without `--http`: no public URL, the bot dials out.
The demo fleet's environments live in channels `CDEMO` + the first six letters of their name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_client import SlackClient

ROOT = Path(__file__).resolve().parent.parent
READY = "fluxbot: serving /flux on Socket Mode"
PROD_CHANNEL = "CDEMOPRODUC"
USAGE = "/flux status [ENV] [--cluster CLUSTER]"
# slack_sdk sends even 127.0.0.1 traffic through a proxy named in these.
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")


class BotProcess:
    """A `fluxbot serve` process whose stderr is collected line by line as it comes."""

    def __init__(self, args: list[str], env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *args],
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: list[str] = []
        self._eof = False
        self._changed = threading.Condition()
        threading.Thread(target=self._read, name="fluxbot-stderr", daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    @property
    def stderr(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_for_line(self, text: str, timeout: float) -> None:
        """Block until a stderr line contains `text`; AssertionError if the process ends first."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: self._eof or any(text in line for line in self._lines), timeout
            )
            seen = any(text in line for line in self._lines)
        if not seen:
            why = "exited" if found else f"did not print it within {timeout}s"
            raise AssertionError(f"fluxbot serve {why}, waiting for {text!r}:\n{self.stderr}")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then its exit code; killed (and AssertionError) past `timeout`."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"fluxbot serve ignored SIGTERM:\n{self.stderr}") from None


def _env(**slack: str) -> dict[str, str]:
    """This environment minus any SLACK_* and proxy variables, plus `slack`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SLACK_") and k not in _PROXY_VARIABLES
    }
    env.update(slack)
    return env


def _serve(slack: FakeSlack, **overrides: str) -> BotProcess:
    """Start `fluxbot serve --demo` in Socket Mode against `slack`, once it is connected."""
    env = _env(
        SLACK_BOT_TOKEN=slack.bot_token,
        SLACK_APP_TOKEN=slack.app_token,
        SLACK_API_URL=slack.api_url,
        **overrides,
    )
    bot = BotProcess(["serve", "--demo"], env)
    try:
        bot.wait_for_line(READY, timeout=30)
        slack.wait_for_socket(timeout=5)
    except BaseException:
        bot.process.kill()
        bot.process.wait()
        raise
    return bot


def _texts(payload: Mapping[str, Any]) -> str:
    """Every piece of text in a message's blocks, joined."""
    out: list[str] = []

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


def _ask(slack: FakeSlack, text: str, channel: str = PROD_CHANNEL) -> dict[str, Any]:
    """Send `/flux text` as an envelope; check the ack came in time; the response_url answer."""
    envelope_id = slack.send_slash_command("/flux", text, user_id="U0ALICE", channel_id=channel)
    ack = slack.wait_for_ack(envelope_id, timeout=3)
    assert ack.in_time, f"acked after {ack.seconds:.2f}s"
    assert ack.payload is None  # the answer goes to the response_url, not into the ack
    envelope = slack.envelope(envelope_id)
    assert envelope is not None
    (record,) = slack.wait_for_response(1, timeout=10, url=envelope.response_url)
    assert record.ok, record.body
    payload: dict[str, Any] = record.payload
    return payload


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture(scope="module")
def bot(slack: FakeSlack) -> Iterator[BotProcess]:
    running = _serve(slack)
    try:
        yield running
    finally:
        # Dropped by Slack first, the bot's client is not stuck in a 3 s socket read on SIGTERM.
        slack.close_sockets()
        running.stop()


def test_status_is_acked_at_once_and_answered_by_response_url(
    bot: BotProcess, slack: FakeSlack
) -> None:
    assert slack.calls("apps.connections.open")[0].token == slack.app_token
    payload = _ask(slack, "status production")
    assert payload["response_type"] == "ephemeral"
    text = _texts(payload)
    assert "prod-eu-1" in text
    assert "authentication required" in text
    assert payload["text"].startswith("[demo] production: 6 failing")


def test_the_channel_names_the_environment(bot: BotProcess, slack: FakeSlack) -> None:
    text = _texts(_ask(slack, "status --failing"))
    assert "prod-us-1" in text
    assert "staging" not in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [("deploy everything", "unknown command"), ("status --bogus", "unknown option")],
)
def test_bad_input_gets_usage_help(
    bot: BotProcess, slack: FakeSlack, text: str, expected: str
) -> None:
    answer = _texts(_ask(slack, text))
    assert USAGE in answer
    assert expected in answer


def test_the_share_button_works_over_socket_mode(bot: BotProcess, slack: FakeSlack) -> None:
    payload = _ask(slack, "status production --failing")
    button = payload["blocks"][-1]["elements"][0]
    assert button["text"]["text"] == "Post to channel"
    client = SlackClient.socket_mode(slack, timeout=3)
    reply = client.block_action(
        {"type": "button", "action_id": button["action_id"], "value": button["value"]},
        channel_id=PROD_CHANNEL,
        user_id="U0ALICE",
        is_ephemeral=True,
    )
    assert reply.status == 200
    assert reply.elapsed < 3
    (shared,) = slack.wait_for_response(1, timeout=10, url=reply.response_url)
    assert shared.payload["response_type"] == "in_channel"
    assert "Shared by <@U0ALICE>" in _texts(shared.payload)


def test_a_mention_over_socket_mode_is_acked_and_answered_in_its_thread(
    bot: BotProcess, slack: FakeSlack
) -> None:
    client = SlackClient.socket_mode(slack, timeout=3)
    reply = client.app_mention("status production --failing", channel_id="C0ANY", user_id="U0ALICE")
    assert reply.elapsed < 3
    mention = reply.sent["event"]["ts"]
    answer = slack.wait_for_message(
        "C0ANY", lambda m: m.get("user") == slack.bot_user_id, timeout=10
    )
    assert answer["thread_ts"] == mention
    assert answer["text"].startswith("[demo] production: 6 failing of 42 Flux objects.")


def test_after_a_disconnect_the_bot_reconnects_and_still_answers(
    bot: BotProcess, slack: FakeSlack
) -> None:
    [before] = slack.wait_for_socket()
    opened = len(slack.calls("apps.connections.open"))
    # Slack hangs up the old connection soon after. Until then slack_sdk's built-in client
    # reads only the old socket (up to its 3 s read timeout), so envelopes on the new one
    # would be acked about 3 s late; `close_after` keeps that out of this test.
    assert slack.disconnect_sockets("refresh_requested", close_after=0.3) == 1
    [after] = slack.wait_for_socket(timeout=5)
    assert after.id != before.id
    assert len(slack.calls("apps.connections.open")) == opened + 1
    slack.wait_for(
        lambda: not slack.sockets()[before.id - 1].open, what="the old connection to close"
    )

    payload = _ask(slack, "status production")
    assert "prod-eu-1" in _texts(payload)
    assert slack.acks()[-1].socket == after.id
    assert bot.process.poll() is None


def test_sigterm_stops_the_bot_with_exit_code_0() -> None:
    with FakeSlack() as slack:
        bot = _serve(slack)
        assert "prod-eu-1" in _texts(_ask(slack, "status production"))
        started = time.monotonic()
        assert bot.stop(timeout=10) == 0
        assert time.monotonic() - started < 10
        assert "Traceback" not in bot.stderr
        slack.wait_for(lambda: slack.socket_connections() == 0, what="the bot to hang up")


def test_without_slack_app_token_socket_mode_refuses_to_start() -> None:
    env = _env(SLACK_BOT_TOKEN="xoxb-test", SLACK_API_URL="http://127.0.0.1:9/api/")
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "--demo"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "SLACK_APP_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("variable", "error"),
    [("SLACK_APP_TOKEN", "invalid_auth"), ("SLACK_BOT_TOKEN", "invalid_auth")],
)
def test_a_token_slack_rejects_is_named_without_a_traceback(variable: str, error: str) -> None:
    with FakeSlack() as slack:
        env = _env(
            SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_APP_TOKEN=slack.app_token,
            SLACK_API_URL=slack.api_url,
        )
        env[variable] = "xapp-revoked" if variable == "SLACK_APP_TOKEN" else "xoxb-revoked"
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "serve", "--demo"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            text=True,
            timeout=30,
        )
    assert "Traceback" not in done.stderr
    assert done.returncode == 2
    assert variable in done.stderr
    assert error in done.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _readyz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_readiness_follows_the_slack_connection_not_a_flag_set_once() -> None:
    port = _free_port()
    with FakeSlack() as slack:
        bot = _serve(slack, FLUXBOT_HEALTH_PORT=str(port))
        try:
            assert _readyz(port) == (200, "ok\n")
            # Slack drops the connection and refuses new ones (an app token revoked, an outage).
            slack.fail("apps.connections.open", "invalid_auth", status=200, times=None)
            slack.close_sockets()
            slack.wait_for(lambda: _readyz(port)[0] == 503, timeout=15, what="/readyz to report it")
            _, body = _readyz(port)
            assert "Slack: the Socket Mode connection is down" in body
            slack.clear_faults()
            slack.wait_for(lambda: _readyz(port)[0] == 200, timeout=30, what="the reconnect")
        finally:
            slack.close_sockets()
            bot.stop()
