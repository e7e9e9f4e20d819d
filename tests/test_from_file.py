"""`fluxbot status --from-file`: YAML dumps as offline clusters, and clear errors for bad ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from tests.flux_objects import condition, flux_object

BROKEN_GIT = flux_object(
    "GitRepository",
    "platform",
    conditions=[condition("Ready", "False", "GitOperationFailed", "authentication required")],
)
HEALTHY_HR = flux_object("HelmRelease", "podinfo", "flux-apps", conditions=[condition()])


def _as_kubectl_list(*objects: dict[str, object]) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": list(objects)})


def test_list_and_multi_document_dumps_become_one_cluster_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "prod-eu-1.yaml").write_text(_as_kubectl_list(HEALTHY_HR, BROKEN_GIT))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": "y"}}
    (tmp_path / "prod-us-1.yml").write_text(yaml.safe_dump_all([pod, HEALTHY_HR, None]))

    code = main(
        [
            "status",
            "--output",
            "json",
            "--from-file",
            str(tmp_path / "prod-eu-1.yaml"),
            str(tmp_path / "prod-us-1.yml"),
        ]
    )

    assert code == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["cluster"], r["kind"], r["name"], r["ready"]) for r in records] == [
        ("prod-eu-1", "GitRepository", "platform", "False"),
        ("prod-eu-1", "HelmRelease", "podinfo", "True"),
        ("prod-us-1", "HelmRelease", "podinfo", "True"),
    ]
    assert {r["environment"] for r in records} == {"offline"}


def test_environment_argument_names_the_offline_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = tmp_path / "prod-eu-1.yaml"
    dump.write_text(_as_kubectl_list(BROKEN_GIT))
    assert main(["status", "production", "--failing", "--from-file", str(dump)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("== production: 1 failing of 1 Flux objects\n   1 cluster ·")
    assert "authentication required" in out


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("items:\n  - kind: GitRepository\n    metadata: {name: x\n", ":4: not valid YAML"),
        ("- just\n- a list\n", ":1: expected a Kubernetes object"),
        (
            "apiVersion: v1\nkind: List\nitems:\n- kind: Kustomization\n  metadata:\n"
            "    namespace: flux-system\n",
            ":4: Kustomization without metadata.name",
        ),
        ("kind: List\nitems: 5\n", ":2: `items` must be a list"),
    ],
)
def test_malformed_dump_is_reported_with_file_and_line_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, error: str
) -> None:
    dump = tmp_path / "bad.yaml"
    dump.write_text(content)
    assert main(["status", "--from-file", str(dump)]) == 2
    err = capsys.readouterr().err
    assert f"fluxbot: {dump}{error}" in err
    assert "Traceback" not in err


def test_missing_dump_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--from-file", str(tmp_path / "nope.yaml")]) == 2
    assert f"{tmp_path / 'nope.yaml'}: cannot read the file" in capsys.readouterr().err


def test_two_files_with_the_same_stem_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "prod.yaml").write_text(_as_kubectl_list(HEALTHY_HR))
    paths = [str(tmp_path / "a" / "prod.yaml"), str(tmp_path / "b" / "prod.yaml")]
    assert main(["status", "--from-file", *paths]) == 2
    assert "named prod" in capsys.readouterr().err
