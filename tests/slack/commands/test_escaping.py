"""What others wrote reaches Slack as text, never as markup: the bot in-process behind serve's
verification front (tests/slack/harness.py), fake Slack, a fake cluster and a fake Flux
controller on 127.0.0.1.

Controller messages come from Git authors and chart values, suspend reasons from whoever
typed them. Slack reads `<!channel>`, `<!here>` and `<https://…|label>` as a mention of the
whole channel or a disguised link in any mrkdwn text, the message's fallback `text`
included (Slack's "Formatting text for app surfaces": escape `&`, `<` and `>`). Every
answer, update and audit reply of a session is checked: no such markup survives anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.bot_process import SECRET
from tests.fakes.flux_controller import FakeFluxController
from tests.fakes.kube_api import FakeFleet
from tests.fakes.slack_api import FakeSlack
from tests.flux_objects import condition, flux_object
from tests.slack.harness import InProcessBot as Bot
from tests.slack.harness import start_in_process

DEV, OPS = "C0DEV", "U0OPS"
HOSTILE = "upgrade <!channel> failed: <https://evil.example/login|see the fix> & retry"
REASON = "<!here> freeze, ask <https://evil.example|the release team>"
MARKUP = ("<!channel>", "<!here>", "<https://evil")


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    with FakeSlack(signing_secret=SECRET) as slack, FakeFleet(["dev-1"]) as fleet:
        slack.add_user(OPS, "ops")
        server = fleet["dev-1"]
        server.apply_many(
            [
                flux_object(
                    "Kustomization",
                    "apps",
                    conditions=[condition("Ready", "False", "BuildFailed", HOSTILE)],
                ),
                flux_object("Kustomization", "infra", conditions=[condition()]),
            ]
        )
        config: dict[str, Any] = {
            "kubernetes": {"kubeconfig": str(fleet.write_kubeconfig(tmp_path / "kc"))},
            "roles": {"ops": {"users": [OPS]}},
            "actions": {"follow_timeout_seconds": 10},
            "history": {"path": str(tmp_path / "history.db")},
            "environments": {
                "development": {
                    "channel": DEV,
                    "clusters": [{"context": "dev-1"}],
                    "actions": {
                        "reconcile": ["ops"],
                        "suspend": ["ops"],
                        "confirmation": "none",
                    },
                    "digest": {"enabled": False},
                }
            },
        }
        path = tmp_path / "fluxbot.yaml"
        path.write_text(yaml.safe_dump(config))
        controller = FakeFluxController(server)
        controller.failures["apps"] = HOSTILE
        with controller:
            running = start_in_process(path, slack)
            try:
                yield running
            finally:
                running.stop()


def _strings(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string under a `text` key (and the top-level fallback), with its path."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield f"{where}/text", value
            else:
                yield from _strings(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, f"{where}/{i}")


def _settle(bot: Bot, text: str) -> None:
    reply = bot.command(text, DEV, user=OPS)
    assert reply.status == 200
    bot.slack.wait_for(lambda: bot.slack.responses(reply.response_url), timeout=10)


def test_no_message_of_a_session_carries_markup_others_wrote(bot: Bot) -> None:
    for text in ("status", "status --failing", "get ks apps", "digest"):
        _settle(bot, text)
    _settle(bot, "reconcile ks apps")
    _settle(bot, f'suspend ks infra --reason "{REASON}" --for 2h')
    bot.slack.wait_for(lambda: len(bot.slack.messages(DEV)) >= 2, timeout=20)
    time.sleep(1.0)  # the reconcile's outcome and the audit replies
    for text in ("status", "get ks infra", "get ks apps"):
        _settle(bot, text)

    records = [r.payload for r in bot.slack.responses()] + bot.slack.messages(DEV)
    seen = [(where, s) for record in records for where, s in _strings(record)]
    assert any("see the fix" in s for _, s in seen), "the hostile message was shown"
    assert any("the release team" in s for _, s in seen), "the hostile reason was shown"
    leaks = [(where, s) for where, s in seen if any(m in s for m in MARKUP)]
    assert leaks == [], "\n".join(f"{w}: {s[:160]}" for w, s in leaks)
