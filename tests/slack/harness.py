"""fluxbot's Slack app in the test's own process: signed requests dispatched through the same
verification front and Bolt app `fluxbot serve --http` runs, against the fake Slack Web API
(real HTTP on 127.0.0.1) and fake clusters.

A request goes through `bot.slack.server.wsgi_app` as a WSGI call, so it is signed and
verified as over HTTP, and Bolt dispatches it to the listeners; everything the bot then says
to Slack goes over real HTTP to `FakeSlack`. No process starts: most Slack behaviour is tested
in milliseconds. What only the process can show (signals, the HTTP server, socket mode,
startup and readiness, the environment of child processes) is tested through
`tests/bot_process.py`.

`start_in_process` composes the bot as `fluxbot serve --config` does for a configured fleet
(the watch cache, history, remediation, incidents), without the digest and report
schedulers, which post on a clock and are tested through the process; `start_demo_in_process`
as `fluxbot serve --demo` does.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.commands.executor import CommandRunner
from bot.compose.fleet import SYNC_WAIT_SECONDS
from bot.compose.runtime import start_incidents, start_runtime
from bot.compose.serve import helm_runner, slack_remediation
from bot.config import SlackSettings, load_config
from bot.demo.live import LiveDemo, demo_config
from bot.digests.composer import DigestComposer
from bot.history.sqlite import SqliteHistory
from bot.kube.writer import KubeWriter
from bot.observability import metrics as metrics_module
from bot.slack.app import SlackBot, build_app, make_client
from bot.slack.credentials import SlackCredentials
from bot.slack.incidents import SlackIncidentPublisher
from bot.slack.labels import DEMO_LABEL, label_messages
from bot.slack.server import EVENTS_PATH, WsgiApp, wsgi_app
from tests.bot_process import SECRET
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_client import SlackClient, SlackReply

# Actions running when a test ends get this long to finish, as on SIGTERM (but shorter).
DRAIN_SECONDS = 5.0


class WsgiSlackClient(SlackClient):
    """`SlackClient` whose requests are WSGI calls into the app instead of HTTP requests."""

    def __init__(self, application: WsgiApp, signing_secret: str, fake: FakeSlack) -> None:
        super().__init__(f"http://in-process{EVENTS_PATH}", signing_secret, fake=fake)
        self.application = application

    def post(
        self,
        body: str | bytes,
        content_type: str = "application/x-www-form-urlencoded",
        *,
        bad_signature: bool = False,
        stale: bool = False,
        timestamp: int | None = None,
        signed: bool = True,
        headers: dict[str, str] | None = None,
    ) -> SlackReply:
        """What `SlackClient.post` sends over HTTP, as one WSGI call."""
        raw = body.encode() if isinstance(body, str) else body
        sent = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0"}
        if signed:
            ts = timestamp if timestamp is not None else int(time.time())
            if stale:
                ts -= 6 * 60
            secret = self.signing_secret + ("-wrong" if bad_signature else "")
            sent.update(SlackClient(self.url, secret).sign(raw, ts))
        sent.update(headers or {})
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": EVENTS_PATH,
            "QUERY_STRING": "",
            "SERVER_NAME": "in-process",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "CONTENT_TYPE": content_type,
            "CONTENT_LENGTH": str(len(raw)),
            "wsgi.input": io.BytesIO(raw),
            "wsgi.url_scheme": "http",
            "wsgi.errors": io.StringIO(),
        }
        for name, value in sent.items():
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[f"HTTP_{key}"] = value
        answer: dict[str, Any] = {}

        def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
            answer["status"] = int(status.split(" ", 1)[0])
            answer["headers"] = dict(response_headers)

        started = time.perf_counter()
        chunks = b"".join(self.application(environ, start_response))
        elapsed = time.perf_counter() - started
        return SlackReply(
            answer["status"], chunks.decode(errors="replace"), answer["headers"], elapsed
        )


class InProcessBot:
    """The Slack app of a configured fleet, in this process; the interface of
    `tests.bot_process.Bot` (command, answer, client, slack, stop)."""

    def __init__(self, bot: SlackBot, slack: FakeSlack, close: Callable[[], None]) -> None:
        self.bot = bot
        self.slack = slack
        self.app = build_app(bot, http=True)
        self.client = WsgiSlackClient(wsgi_app(self.app, SECRET), SECRET, slack)
        self._close = close
        # A process records on one Metrics object: this bot on a fresh one, so that what it
        # records never shows in the process's (tests/test_observability.py reads that).
        self.metrics = metrics_module.Metrics()
        self._process_metrics = metrics_module.METRICS
        metrics_module.METRICS = self.metrics  # type: ignore[misc]

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

    def stop(self) -> None:
        """Let running actions finish (briefly), stop the watch cache and history."""
        try:
            self._close()
        finally:
            metrics_module.METRICS = self._process_metrics  # type: ignore[misc]


def credentials_for(slack: FakeSlack) -> SlackCredentials:
    """The credentials `fluxbot serve --http` reads from its environment in the tests."""
    return SlackCredentials.from_env(
        http=True,
        env={
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.api_url,
        },
    )


def start_in_process(config_path: Path, slack: FakeSlack) -> InProcessBot:
    """Compose the bot for the configuration at `config_path` as `serve --config` does."""
    runtime = start_runtime(load_config(config_path), SYNC_WAIT_SECONDS)
    config = runtime.config
    settings = config.slack
    credentials = credentials_for(slack)
    client = make_client(credentials, settings)
    remediation = slack_remediation(  # serve's own composition (bot/compose/serve.py)
        config, runtime.cache, KubeWriter(runtime.cache, config.actions.events_address),
        helm_runner(config),
        runtime.runner, runtime.history, client, credentials, settings,
    )  # fmt: skip
    runtime.on_stop(lambda: remediation.shutdown(DRAIN_SECONDS))
    incidents = start_incidents(runtime, SlackIncidentPublisher(client, remediation.mint))
    remediation.output.incident_thread = lambda request: incidents.thread_of(
        request.target.environment, request.target.cluster, request.ref.kind,
        request.ref.namespace, request.ref.name,
    )  # fmt: skip
    bot = SlackBot(runtime.runner, settings, credentials, client, remediation)
    return InProcessBot(bot, slack, runtime.stop)


def start_demo_in_process(slack: FakeSlack) -> InProcessBot:
    """Compose the live demo as `serve --demo` does, every message labelled as the demo's
    until `stop()`."""
    label_messages(DEMO_LABEL)
    demo = LiveDemo()
    history = SqliteHistory(":memory:")
    layout = demo.layout()
    runner = CommandRunner(layout, demo, DigestComposer(layout, demo, history))
    settings = SlackSettings()
    credentials = credentials_for(slack)
    client = make_client(credentials, settings)
    remediation = slack_remediation(
        demo_config(), demo, demo, None, runner, history, client, credentials, settings
    )

    def close() -> None:
        remediation.shutdown(DRAIN_SECONDS)
        demo.close()
        history.close()
        label_messages(None)

    return InProcessBot(SlackBot(runner, settings, credentials, client, remediation), slack, close)
