"""HTTP mode under attack: the real `fluxbot serve --http` process, fake Slack and clusters.

Nothing of a request may run before its Slack signature is verified (slack_sdk's
`signature/__init__.py` is what Slack's own libraries check: `v0=` + HMAC-SHA256 of
`v0:{timestamp}:{body}`, timestamps within five minutes). Response URLs are posted to only
on Slack's hooks host or the host of SLACK_API_URL, never following redirects. Bodies are
bounded before they are read, and slow clients cannot hold the listener.
"""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml

from tests.bot_process import SECRET, Bot, start_bot, texts
from tests.fakes.kube_api import FakeFleet
from tests.fakes.slack_api import RESPONSE_URL, FakeSlack
from tests.flux_objects import condition, flux_object

CHANNEL = "C0PROD"


class Victim:
    """An internal HTTP service an attacker would like fluxbot to call: records every hit."""

    def __init__(self) -> None:
        hits: list[str] = []
        self.hits = hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                hits.append(f"{self.command} {self.path}")
                self.send_response(200)
                self.end_headers()

            do_GET = do_POST = _record

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/internal/admin"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def victim() -> Iterator[Victim]:
    server = Victim()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(signing_secret=SECRET) as fake:
        yield fake


def _config(tmp_path: Path, fleet: FakeFleet) -> Path:
    kubeconfig = fleet.write_kubeconfig(tmp_path / "kubeconfig")
    config = tmp_path / "fluxbot.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "kubernetes": {"kubeconfig": str(kubeconfig)},
                "history": {"path": str(tmp_path / "history.db")},
                "environments": {
                    "production": {
                        "channel": CHANNEL,
                        "clusters": [{"context": "prod-eu-1"}],
                        "digest": {"enabled": False},
                    }
                },
            }
        )
    )
    return config


@pytest.fixture
def bot(slack: FakeSlack, tmp_path: Path) -> Iterator[Bot]:
    with FakeFleet(["prod-eu-1"]) as fleet:
        fleet["prod-eu-1"].apply(flux_object("Kustomization", "apps", conditions=[condition()]))
        running = start_bot(
            ["--config", str(_config(tmp_path, fleet))],
            slack,
            tmp_path,
            env={"FLUXBOT_LOG_LEVEL": "info"},
        )
        try:
            yield running
        finally:
            running.stop()


def _raw_post(bot: Bot, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(bot.url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


def _command_body(response_url: str, text: str = "status") -> bytes:
    fields = {
        "command": "/flux",
        "text": text,
        "channel_id": CHANNEL,
        "user_id": "U0USER",
        "team_id": "T0FAKE",
        "api_app_id": "A0FAKE",
        "response_url": response_url,
        "trigger_id": "1.2.3",
    }
    return urlencode(fields).encode()


def _still_answers(bot: Bot) -> None:
    reply = bot.command("status", CHANNEL)
    assert reply.status == 200
    assert "production" in texts(bot.answer(reply))


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [
        ("not-a-number", "v0=" + "0" * 64),
        (None, "v0=\u00ff\u00fe" + "0" * 62),  # non-ASCII: hmac.compare_digest raises on it
        ("\u00b2\u00b3", "v0=" + "0" * 64),  # superscripts: str.isdigit() yes, int() raises
        ("1" * 40, "v0=" + "0" * 64),
        (None, ""),
    ],
)
def test_a_malformed_signature_is_refused_and_its_response_url_never_called(
    bot: Bot, victim: Victim, timestamp: str | None, signature: str
) -> None:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp or str(int(time.time())),
        "X-Slack-Signature": signature,
    }
    assert _raw_post(bot, _command_body(victim.url), headers) == 401
    time.sleep(1.0)  # time enough for an error handler to post
    assert victim.hits == []
    assert bot.slack.responses() == []
    _still_answers(bot)


def test_a_signed_request_cannot_send_fluxbot_anywhere_but_slack(bot: Bot, victim: Victim) -> None:
    reply = bot.client.post(_command_body(victim.url))
    assert reply.status == 200
    time.sleep(1.5)
    assert victim.hits == []
    assert "not posting to a response_url outside Slack's hooks host" in bot.log.read_text()


def test_a_response_url_that_redirects_is_not_followed(
    bot: Bot, slack: FakeSlack, victim: Victim
) -> None:
    slack.fail(RESPONSE_URL, "moved", status=302, headers={"Location": victim.url})
    reply = bot.command("status", CHANNEL)
    assert reply.status == 200
    (record,) = slack.wait_for_response(1, url=reply.response_url)
    assert record.status == 302
    time.sleep(1.0)
    assert victim.hits == []


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _send_big_body(bot: Bot, size: int) -> bytes:
    """POST `size` bytes unsigned; the status line of the answer (the sending may be cut)."""
    host, port = bot.url.split("//", 1)[1].split("/", 1)[0].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: fluxbot\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {size}\r\n\r\n".encode()
        )
        chunk = b"payload=" + b"A" * (1024 * 1024 - 8)
        try:
            for _ in range(size // len(chunk)):
                sock.sendall(chunk)
        except OSError:
            pass  # the server refused the body and closed: what we want
        try:
            return sock.recv(200).split(b"\r\n", 1)[0]
        except OSError:
            return b""


def test_an_oversized_body_is_refused_before_it_is_read(bot: Bot) -> None:
    _still_answers(bot)
    before = _rss_kib(bot.process.pid)
    status = _send_big_body(bot, 64 * 1024 * 1024)
    assert status in (b"HTTP/1.1 413 Request Entity Too Large", b"")
    grown_mib = (_rss_kib(bot.process.pid) - before) / 1024
    assert grown_mib < 16, f"RSS grew by {grown_mib:.0f} MiB"
    _still_answers(bot)


def test_unverified_bodies_never_reach_the_log_at_info(bot: Bot) -> None:
    marker = "attacker-controlled-marker-7f3a"
    reply = bot.client.post(_command_body("https://hooks.slack.com/x", text=marker), stale=True)
    assert reply.status == 401
    reply = bot.client.post(_command_body("https://hooks.slack.com/x", text=marker), signed=False)
    assert reply.status == 401
    time.sleep(0.3)
    log = bot.log.read_text()
    assert "refused an unverified request" in log
    assert marker not in log


def _slow_client(bot: Bot) -> socket.socket:
    host, port = bot.url.split("//", 1)[1].split("/", 1)[0].split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: fluxbot\r\n")  # and never the rest
    return sock


def test_slow_clients_cannot_starve_a_genuine_command(bot: Bot) -> None:
    slow = [_slow_client(bot) for _ in range(150)]
    try:
        reply = bot.command("status", CHANNEL)
        assert reply.status == 200
        assert reply.elapsed < 3, f"the ack took {reply.elapsed:.1f} s"
        assert "production" in texts(bot.answer(reply))
        # Slack sends whole requests at once: a connection idle for 10 s is closed.
        slow[0].settimeout(20)
        started = time.monotonic()
        assert slow[0].recv(100) in (b"", b"HTTP/1.1 408 Request Timeout")
        assert time.monotonic() - started < 16
    finally:
        for sock in slow:
            sock.close()


def test_secrets_from_mounted_files_never_enter_the_process_environment(
    slack: FakeSlack, tmp_path: Path
) -> None:
    # As deploy/base mounts the fluxbot-slack Secret: one file per key, a trailing newline.
    secrets = tmp_path / "slack"
    secrets.mkdir()
    (secrets / "SLACK_BOT_TOKEN").write_text(slack.bot_token + "\n")
    (secrets / "SLACK_SIGNING_SECRET").write_text(SECRET + "\n")
    env = {
        "SLACK_BOT_TOKEN": "",
        "SLACK_SIGNING_SECRET": "",
        "SLACK_BOT_TOKEN_FILE": str(secrets / "SLACK_BOT_TOKEN"),
        "SLACK_SIGNING_SECRET_FILE": str(secrets / "SLACK_SIGNING_SECRET"),
        # Socket Mode's key is not in an HTTP-mode Secret: a missing file counts as unset.
        "SLACK_APP_TOKEN_FILE": str(secrets / "SLACK_APP_TOKEN"),
    }
    with FakeFleet(["prod-eu-1"]) as fleet:
        running = start_bot(["--config", str(_config(tmp_path, fleet))], slack, tmp_path, env=env)
        try:
            _still_answers(running)
            environ = Path(f"/proc/{running.process.pid}/environ").read_bytes()
            assert slack.bot_token.encode() not in environ
            assert SECRET.encode() not in environ
        finally:
            running.stop()


def test_a_secret_given_twice_or_unreadable_is_refused_in_words(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("xoxb-from-file")
    config = tmp_path / "fluxbot.yaml"
    config.write_text(
        yaml.safe_dump(
            {"environments": {"production": {"channel": CHANNEL, "clusters": [{"context": "x"}]}}}
        )
    )
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parent.parent)}
    cases = [
        ({"SLACK_BOT_TOKEN": "xoxb-env", "SLACK_BOT_TOKEN_FILE": str(token)}, "not both"),
        ({"SLACK_BOT_TOKEN_FILE": str(tmp_path)}, "cannot read"),
    ]
    for env, words in cases:
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "serve", "--http", "--config", str(config)],
            env={**base, "SLACK_SIGNING_SECRET": "s", **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert words in done.stderr
        assert "Traceback" not in done.stderr


def test_readiness_probes_the_http_listener_itself(slack: FakeSlack, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        health = int(probe.getsockname()[1])
    with FakeFleet(["prod-eu-1"]) as fleet:
        running = start_bot(
            ["--config", str(_config(tmp_path, fleet)), "--health-port", str(health)],
            slack,
            tmp_path,
        )
        try:
            readyz = f"http://127.0.0.1:{health}/readyz"
            assert _get(readyz) == (200, "ok\n")
            # Every connection the listener accepts taken (1000): it can answer no one.
            held = [_slow_client(running) for _ in range(1010)]
            try:
                status, body = _get(readyz)
                assert status == 503
                assert "Slack: the HTTP listener does not answer" in body
            finally:
                for sock in held:
                    sock.close()
            slack.wait_for(lambda: _get(readyz)[0] == 200, timeout=15, what="readiness")
        finally:
            running.stop()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_commands_are_acked_at_once_while_every_response_url_hangs(bot: Bot) -> None:
    # Slack holds every answer past fluxbot's 10 s timeout; more commands arrive than fluxbot
    # has threads (16): each must still be acknowledged within Slack's 3 s.
    bot.slack.latency(RESPONSE_URL, 30)
    replies = bot.client.slash_commands(
        [{"command": "/flux", "text": "status", "channel_id": CHANNEL} for _ in range(40)],
        workers=40,
    )
    assert [r.status for r in replies] == [200] * 40
    slowest = max(r.elapsed for r in replies)
    assert slowest < 3, f"the slowest ack took {slowest:.1f} s"
