"""Hostile input gets words, never a traceback: the real `fluxbot` command line, and the real
`fluxbot serve --http` against fake Slack and a fake cluster on 127.0.0.1.

Each file below is one an attacker (or an accident) could hand fluxbot as a `--from-file`
dump or a configuration: deep nesting, YAML aliases (a "billion laughs" expansion), `kind`
as a list, an impossible date, binary, a 5,000-digit integer, a NUL character. kubectl never
writes aliases, so dumps refuse them; sizes are bounded before anything is parsed.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.bot_process import SECRET, Bot, start_bot, texts
from tests.fakes.kube_api import FakeFleet
from tests.fakes.slack_api import FakeSlack
from tests.flux_objects import condition, flux_object

ROOT = Path(__file__).resolve().parent.parent
KS = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
LAUGHS = "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10 if i else ['lol'] * 10)}]\n" for i in range(9)
)
CONFIG = "environments:\n  production:\n    channel: C0PROD\n    clusters: [{context: x}]\n"

HOSTILE_DUMPS = {
    "deep-nesting": ("a: " + "[" * 5000 + "]" * 5000, "nested deeper than 64 levels"),
    "aliases": (LAUGHS, "YAML aliases (*name) are not accepted"),
    "kind-list": ("kind: [Kustomization]\nmetadata: {name: x}\n", "`kind` must be a string"),
    "bad-date": (
        KS + "metadata: {name: x, namespace: n, creationTimestamp: 2024-13-45T99:99:99Z}\n",
        "is not a valid date or time",
    ),
    "huge-integer": (
        KS + "metadata: {name: x, namespace: n, generation: " + "9" * 5000 + "}\n",
        "integer of 5000 digits is too large",
    ),
    "nul": (KS + "metadata: {name: x\x00}\n", "unacceptable character"),
}
HOSTILE_CONFIGS = {
    "deep-nesting": (CONFIG + "roles: " + "[" * 5000 + "]" * 5000, "nested deeper than"),
    "aliases": (LAUGHS + CONFIG, "YAML aliases (*name) are not accepted"),
    "bad-date": (CONFIG + "x: 2024-13-45\n", "is not a valid date or time"),
    "huge-integer": (
        CONFIG + "actions: {group_refresh_seconds: " + "9" * 5000 + "}\n",
        "integer of 5000 digits is too large",
    ),
}


def _fluxbot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def _refused_in_words(done: subprocess.CompletedProcess[str], words: str) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert words in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("name", sorted(HOSTILE_DUMPS))
def test_a_hostile_dump_is_refused_in_words(tmp_path: Path, name: str) -> None:
    text, words = HOSTILE_DUMPS[name]
    dump = tmp_path / f"{name}.yaml"
    dump.write_text(text)
    _refused_in_words(_fluxbot("status", "--from-file", str(dump)), f"{dump}:")
    _refused_in_words(_fluxbot("status", "--from-file", str(dump)), words)


def test_a_binary_dump_or_configuration_is_refused_in_words(tmp_path: Path) -> None:
    blob = tmp_path / "blob.yaml"
    blob.write_bytes(bytes(range(256)) * 16)
    _refused_in_words(_fluxbot("status", "--from-file", str(blob)), "not a text file")
    _refused_in_words(_fluxbot("check-config", str(blob)), "not a text file")


@pytest.mark.parametrize("name", sorted(HOSTILE_CONFIGS))
def test_a_hostile_configuration_is_refused_in_words(tmp_path: Path, name: str) -> None:
    text, words = HOSTILE_CONFIGS[name]
    config = tmp_path / "fluxbot.yaml"
    config.write_text(text)
    _refused_in_words(_fluxbot("check-config", str(config)), words)
    _refused_in_words(_fluxbot("status", "--config", str(config)), words)


def test_an_oversized_configuration_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    config = tmp_path / "fluxbot.yaml"
    config.write_text(CONFIG + "# padding\n" * 500_000)
    _refused_in_words(_fluxbot("check-config", str(config)), "more than a configuration")


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    with FakeSlack(signing_secret=SECRET) as slack, FakeFleet(["prod-1"]) as fleet:
        fleet["prod-1"].apply(flux_object("Kustomization", "apps", conditions=[condition()]))
        config = tmp_path / "fluxbot.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "kubernetes": {"kubeconfig": str(fleet.write_kubeconfig(tmp_path / "kc"))},
                    "history": {"path": str(tmp_path / "history.db")},
                    "environments": {
                        "production": {
                            "channel": "C0PROD",
                            "clusters": [{"context": "prod-1"}],
                            "digest": {"enabled": False},
                        }
                    },
                }
            )
        )
        running = start_bot(["--config", str(config)], slack, tmp_path)
        try:
            yield running
        finally:
            running.stop()


@pytest.mark.parametrize("duration", ["9" * 5000 + "h", "\u00b2h", "0h", "91d"])
def test_a_hostile_suspend_duration_gets_words(bot: Bot, duration: str) -> None:
    reply = bot.command(f'suspend ks apps --reason "freeze" --for {duration}', "C0PROD")
    assert reply.status == 200
    answer = texts(bot.answer(reply))
    assert "Cannot read --for" in answer
    assert "use 30m, 4h, 2d or 1w" in answer
    assert ":boom:" not in answer
    assert "Traceback" not in bot.log.read_text()
