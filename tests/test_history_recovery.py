"""A history file that cannot be used never stops `fluxbot serve`: the real process, fake
Slack and a fake cluster on 127.0.0.1.

A corrupt file is moved aside and a fresh history started; a location that cannot be written
falls back to history in memory. Either way the log and /readyz say so, and /flux answers.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.bot_process import SECRET, start_bot, texts
from tests.fakes.kube_api import FakeFleet
from tests.fakes.slack_api import FakeSlack
from tests.flux_objects import condition, flux_object

CHANNEL = "C0PROD"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(signing_secret=SECRET) as fake:
        yield fake


@pytest.fixture
def fleet() -> Iterator[FakeFleet]:
    with FakeFleet(["prod-eu-1"]) as fleet:
        fleet["prod-eu-1"].apply(flux_object("Kustomization", "apps", conditions=[condition()]))
        yield fleet


def _config(tmp_path: Path, fleet: FakeFleet, history: Path) -> Path:
    config = tmp_path / "fluxbot.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "kubernetes": {"kubeconfig": str(fleet.write_kubeconfig(tmp_path / "kc"))},
                "history": {"path": str(history)},
                "environments": {
                    "production": {"channel": CHANNEL, "clusters": [{"context": "prod-eu-1"}]}
                },
            }
        )
    )
    return config


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


def _serve_and_check(slack: FakeSlack, tmp_path: Path, config: Path, expected: str) -> str:
    port = _free_port()
    bot = start_bot(["--config", str(config), "--health-port", str(port)], slack, tmp_path)
    try:
        reply = bot.command("status", CHANNEL)
        assert reply.status == 200
        assert "production" in texts(bot.answer(reply))
        _, body = slack.wait_for(lambda: r if (r := _readyz(port))[0] == 200 else None, timeout=15)
        assert body.startswith("ok\n")
        assert expected in body
        log = bot.log.read_text()
        assert expected in log
        assert "Traceback" not in log
        return body
    finally:
        bot.stop()


def test_a_corrupt_history_file_is_moved_aside_and_a_fresh_one_started(
    slack: FakeSlack, fleet: FakeFleet, tmp_path: Path
) -> None:
    history = tmp_path / "state" / "history.db"
    history.parent.mkdir()
    history.write_bytes(b"SQLite format 3\x00" + b"\xde\xad\xbe\xef" * 4096)
    body = _serve_and_check(slack, tmp_path, _config(tmp_path, fleet, history), "moved aside to")
    (aside,) = history.parent.glob("history.db.corrupt-*")
    assert aside.read_bytes().startswith(b"SQLite format 3\x00\xde\xad")
    assert str(aside) in body
    assert history.exists()
    assert history.read_bytes() != aside.read_bytes()


def test_an_unwritable_history_location_falls_back_to_memory(
    slack: FakeSlack, fleet: FakeFleet, tmp_path: Path
) -> None:
    # A file where the directory should be: no user, root included, can create it.
    (tmp_path / "state").write_text("not a directory")
    history = tmp_path / "state" / "history.db"
    _serve_and_check(
        slack, tmp_path, _config(tmp_path, fleet, history), "history is kept in memory"
    )
