"""docs/configuration.md is generated from bot/config.py and may not drift from it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from bot import config

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gen_config_docs.py"
DOCS = ROOT / "docs" / "configuration.md"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_config_docs", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up in sys.modules while the class is made.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_configuration_reference_is_up_to_date() -> None:
    expected = _generator().render()
    current = DOCS.read_text(encoding="utf-8")
    assert current == expected, (
        "docs/configuration.md is out of date with bot/config.py: "
        "run `.venv/bin/python scripts/gen_config_docs.py` and commit the result"
    )


def test_every_field_of_every_model_is_documented_with_its_docstring() -> None:
    generator = _generator()
    docs = generator.field_docstrings((ROOT / "bot" / "config.py").read_text(encoding="utf-8"))
    sections = list(generator.sections(config.FluxbotConfig, "", docs))
    paths = {row.path for section in sections for row in section.rows}
    assert {
        "environments",
        "environments.<name>.channel",
        "environments.<name>.clusters[].in_cluster",
        "kubernetes.connect_timeout_seconds",
        "cache.resync_seconds",
        "slack.command",
    } <= paths
    undocumented = [row.path for section in sections for row in section.rows if not row.description]
    assert undocumented == [], "fields without a docstring in bot/config.py"
    text = DOCS.read_text(encoding="utf-8")
    assert "| `kubernetes.connect_timeout_seconds` | number, > 0, ≤ 60 | `3.0` | Seconds" in text
    assert "| `environments.<name>.channel` | string, matching" in text
    assert "**required**" in text


def test_the_script_check_passes_on_the_committed_file() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
