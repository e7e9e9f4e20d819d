"""`rollout`: what is deployed where, environments in promotion order, commit links.

Revision formats are source-controller's (`<branch>@sha1:<sha>`, `<tag>@sha256:<digest>`) and
helm-controller's for a chartRef to an OCIRepository (`<version>+<first 12 of the digest>`, see
tests/test_demo_fleet.py); a Kustomization's `status.history[].firstReconciled` says since when a
revision is applied (kustomize-controller api/v1 `History`).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.commands.answers import ErrorAnswer, RolloutAnswer, StatusAnswer
from bot.commands.executor import CommandRunner
from bot.demo import load_demo
from bot.domain.fleet import EnvironmentLayout, FleetLayout
from bot.domain.forges import commit_link
from bot.domain.rollout import matches_revision, parse_revision, revision_query_problem
from bot.domain.status import parse_flux_object
from bot.offline import OfflineCluster, OfflineFleetReader
from bot.render.text import render
from bot.slack.render import MAX_BLOCKS
from bot.slack.render import render as slack_render
from tests.fakes.slack_api import validate_blocks
from tests.flux_objects import condition, flux_object

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)
NEW = "e4f1b7c2a9d05e6f3b8c7d1a2e9f04b6c3d5a871"
OLD = "cb83a77d49d018fb0780143af93cda9dfacc8d54"
OLDER = "601572ff042a1f6c16f4bd079424d0ff5d342a80"


def _git(sha: str, fetched: str, *, failing: str = "", url: str = "") -> dict[str, Any]:
    revision = f"main@sha1:{sha}"
    ready = (
        condition("Ready", "False", "GitOperationFailed", failing, at=fetched)
        if failing
        else condition(
            "Ready", "True", "Succeeded", f"stored artifact for revision '{revision}'", at=fetched
        )
    )
    return flux_object(
        "GitRepository",
        "flux-system",
        spec={"url": url} if url else None,
        status={
            "artifact": {
                "revision": revision,
                "digest": "sha256:" + "0" * 64,
                "lastUpdateTime": fetched,
                "path": f"gitrepository/flux-system/flux-system/{sha}.tar.gz",
                "url": f"http://source-controller/{sha}.tar.gz",
            }
        },
        conditions=[ready],
    )


def _ks(name: str, sha: str, applied_at: str | None, *, failing: str = "") -> dict[str, Any]:
    revision = f"main@sha1:{sha}"
    status: dict[str, Any] = {"lastAppliedRevision": revision, "lastAttemptedRevision": revision}
    if applied_at is not None:
        status["history"] = [
            {
                "digest": "sha256:" + "1" * 64,
                "firstReconciled": applied_at,
                "lastReconciled": applied_at,
                "lastReconciledDuration": "1s",
                "lastReconciledStatus": "ReconciliationSucceeded",
                "metadata": {"revision": revision},
                "totalReconciliations": 1,
            }
        ]
    ready = (
        condition("Ready", "False", "DependencyNotReady", failing)
        if failing
        else condition("Ready", "True", "ReconciliationSucceeded", f"Applied revision: {revision}")
    )
    return flux_object("Kustomization", name, status=status, conditions=[ready])


def _cluster(env: str, name: str, *objects: dict[str, Any]) -> OfflineCluster:
    return OfflineCluster(env, name, tuple(parse_flux_object(o) for o in objects))


def _fleet(*clusters: OfflineCluster) -> CommandRunner:
    # Configuration order is production first: promotion order must come from the tiers.
    envs: dict[str, list[str]] = {}
    for c in clusters:
        envs.setdefault(c.environment, []).append(c.name)
    layout = FleetLayout(
        tuple(
            EnvironmentLayout(env, env, None, tuple(names))
            for env, names in sorted(envs.items(), key=lambda e: e[0] != "production")
        )
    )
    return CommandRunner(layout, OfflineFleetReader(list(clusters)), clock=lambda: NOW)


def _promotion_fleet() -> CommandRunner:
    """Staging on NEW; production on OLD, with prod-eu-1's apps still on OLDER and failing."""
    return _fleet(
        _cluster(
            "production",
            "prod-eu-1",
            _git(OLD, "2026-11-26T08:47:00Z"),
            _ks("flux-system", OLD, "2026-11-26T08:47:30Z"),
            _ks("apps", OLDER, None, failing="dependency 'flux-system/infra' is not ready"),
        ),
        _cluster(
            "production",
            "prod-us-1",
            _git(OLD, "2026-11-26T08:47:10Z"),
            _ks("flux-system", OLD, "2026-11-26T08:47:40Z"),
            _ks("apps", OLD, "2026-11-26T08:48:00Z"),
        ),
        _cluster(
            "staging",
            "staging-eu-1",
            _git(NEW, "2026-11-26T09:36:00Z"),
            _ks("flux-system", NEW, "2026-11-26T09:36:30Z"),
            _ks("apps", NEW, "2026-11-26T09:48:00Z"),
        ),
    )


def test_environments_come_in_promotion_order_one_line_when_they_agree() -> None:
    answer = _promotion_fleet().handle("rollout flux-system")
    assert isinstance(answer, RolloutAnswer)
    (source,) = answer.sources
    assert [e.name for e in source.environments] == ["staging", "production"]
    text = render(answer)
    # Agreement: one line, with how long ago the last object applied it.
    assert "  staging 1/1 on main@e4f1b7c2 · 12 min" in text
    # Disagreement: which cluster, which object, on what, and why.
    assert (
        "  production 1/2 on main@cb83a77d: prod-eu-1 apps still on main@601572ff "
        "(failing: dependency 'flux-system/infra' is not ready)"
    ) in text
    assert "promotion: production is behind staging: on main@cb83a77d; staging has had " in text
    assert "main@e4f1b7c2 for 24 min" in text


def test_a_failing_source_keeps_a_cluster_on_its_old_revision_and_says_why() -> None:
    runner = _fleet(
        _cluster(
            "production",
            "prod-eu-1",
            _git(OLD, "2026-11-25T17:00:00Z", failing="authentication required"),
        ),
        _cluster("production", "prod-us-1", _git(NEW, "2026-11-26T08:30:00Z")),
    )
    text = render(runner.handle("rollout"))
    assert (
        "production 1/2 on main@e4f1b7c2: prod-eu-1 still on main@cb83a77d, "
        "source failing: authentication required"
    ) in text


def test_without_kustomization_history_the_rollout_has_no_age_but_still_answers() -> None:
    runner = _fleet(
        _cluster(
            "staging", "staging-eu-1", _git(NEW, "2026-11-26T09:00:00Z"), _ks("apps", NEW, None)
        )
    )
    answer = runner.handle("rollout flux-system")
    assert isinstance(answer, RolloutAnswer)
    line = render(answer).splitlines()[3]
    # The fetch time stands in when no object says since when it applied the revision.
    assert line == "  staging 1/1 on main@e4f1b7c2 · 1 h"


@pytest.mark.parametrize(
    ("query", "found"),
    [
        (NEW[:7], True),  # the shortest SHA prefix
        (NEW, True),  # the full SHA
        (f"main@sha1:{NEW}", True),  # the full revision
        (f"sha1:{NEW[:10]}", True),  # a digest prefix
        (OLD[:7], False),
        ("main", True),  # the branch is a reference too
    ],
)
def test_a_revision_is_found_by_short_or_full_sha_or_reference(query: str, found: bool) -> None:
    assert matches_revision(query, parse_revision(f"main@sha1:{NEW}")) is found


def test_tags_and_oci_digests_name_oci_revisions() -> None:
    revision = parse_revision("v2.4.0@sha256:" + "cd17782c" * 8)
    assert revision.short == "v2.4.0@cd17782c"
    assert matches_revision("v2.4.0", revision)
    assert matches_revision("sha256:cd17782c", revision)
    assert not matches_revision("v2.4", revision)
    # The commit an artifact was built from (org.opencontainers.image.revision) counts too.
    origin = parse_revision(f"main@sha1:{NEW}")
    assert matches_revision(NEW[:8], revision, origin)


def test_a_sha_prefix_under_seven_characters_is_refused_with_a_reason() -> None:
    assert revision_query_problem("e4f1b7") is not None
    assert revision_query_problem("e4f1b7c") is None
    assert revision_query_problem("v1") is None
    answer = _promotion_fleet().handle("rollout --revision e4f1")
    assert isinstance(answer, ErrorAnswer)
    assert "at least 7" in answer.message


def test_revision_query_says_which_clusters_have_it() -> None:
    text = render(_promotion_fleet().handle(f"rollout --revision {OLD[:7]}"))
    assert f"staging 0/1 have {OLD[:7]}: staging-eu-1 still on main@e4f1b7c2" in text
    # A cluster has a revision once its source holds it and an object applied it.
    assert f"production 2/2 have {OLD[:7]}\n" in text


def test_unknown_source_or_revision_is_answered_with_what_exists() -> None:
    runner = _promotion_fleet()
    unknown = runner.handle("rollout flux-sytem")
    assert isinstance(unknown, ErrorAnswer)
    assert unknown.suggestions == ("flux-system",)
    missing = runner.handle("rollout --revision 0123456789")
    assert isinstance(missing, ErrorAnswer)
    assert "flux-system in staging: main@e4f1b7c2" in missing.choices


@pytest.mark.parametrize(
    ("url", "link"),
    [
        ("https://github.com/acme/fleet", f"https://github.com/acme/fleet/commit/{NEW}"),
        ("ssh://git@github.com/acme/fleet", f"https://github.com/acme/fleet/commit/{NEW}"),
        ("https://gitlab.com/acme/fleet.git", f"https://gitlab.com/acme/fleet/-/commit/{NEW}"),
        (
            "ssh://git@bitbucket.org/acme/fleet.git",
            f"https://bitbucket.org/acme/fleet/commits/{NEW}",
        ),
        (
            "ssh://git@ssh.dev.azure.com/v3/acme/Platform/fleet",
            f"https://dev.azure.com/acme/Platform/_git/fleet/commit/{NEW}",
        ),
        ("https://gitea.com/acme/fleet", f"https://gitea.com/acme/fleet/commit/{NEW}"),
    ],
)
def test_each_clusters_commit_links_to_its_forge(url: str, link: str) -> None:
    runner = _fleet(_cluster("staging", "staging-eu-1", _git(NEW, "2026-11-26T09:00:00Z", url=url)))
    answer = runner.handle("rollout flux-system")
    assert f"commit {link}" in render(answer)
    message = slack_render(answer)
    assert f"<{link}|main@e4f1b7c2>" in json.dumps(message.blocks)


def test_an_oci_artifact_links_to_the_commit_its_annotations_name() -> None:
    # flux push artifact --source/--revision write these; source-controller copies manifest
    # annotations into status.artifact.metadata (OCIRepository CRD: "OCI annotations").
    assert commit_link("https://github.com/acme/apps", NEW) == (
        f"https://github.com/acme/apps/commit/{NEW}"
    )
    answer = CommandRunner(*load_demo()).handle("rollout apps")
    assert isinstance(answer, RolloutAnswer)
    text = render(answer)
    assert "on v2.4.0@cd17782c (built from main@1b19c8cb)" in text
    assert (
        "commit https://github.com/acme/apps/commit/1b19c8cb8fe38a37649e7c7dac1a60ebdab6afcf"
        in text
    )


def test_a_helm_release_from_an_oci_chart_is_current_on_its_version_plus_digest() -> None:
    answer = CommandRunner(*load_demo()).handle("rollout podinfo")
    assert isinstance(answer, RolloutAnswer)
    assert render(answer).splitlines()[3].startswith("  production 2/2 on 6.7.1@bf1c8e7b · ")


def test_the_demo_shows_staging_ahead_of_production_and_one_production_cluster_behind() -> None:
    text = render(CommandRunner(*load_demo()).handle("rollout"))
    assert "  development 1/1 on main@e4f1b7c2" in text
    assert "  staging 2/2 on main@e4f1b7c2" in text
    assert (
        "  production 1/2 on production@cb83a77d: prod-eu-1 apps still on production@601572ff"
        in text
    )
    assert "promotion: production is behind staging: on production@cb83a77d" in text
    assert (
        "production 1/2 on main@ed08d90d: prod-eu-1 still on main@7581008f, source failing" in text
    )


def test_status_shows_what_each_cluster_has_deployed() -> None:
    answer = CommandRunner(*load_demo()).handle("status production")
    assert isinstance(answer, StatusAnswer)
    lines = render(answer).splitlines()
    eu = lines.index("prod-eu-1: 5 failing · 0 progressing · 0 suspended · 16 ready")
    assert lines[eu + 1].startswith("  deployed: flux-system production@cb83a77d · 1/2 applied · ")
    blocks = json.dumps(slack_render(answer).blocks, ensure_ascii=False)
    assert (
        ":package: deployed: flux-system <https://github.com/acme/fleet/commit/"
        f"{OLD}|production@cb83a77d> · 1/2 applied"
    ) in blocks


@pytest.mark.parametrize("text", ["rollout", "rollout flux-system", "rollout --revision v2.4.0"])
def test_rollout_messages_stay_within_block_kit_limits(text: str) -> None:
    message = slack_render(CommandRunner(*load_demo()).handle(text))
    assert validate_blocks(message.blocks) == []
    assert len(message.blocks) <= MAX_BLOCKS
    assert 0 < len(message.text) <= 4000
    assert message.blocks[0]["type"] == "header"


def test_many_sources_with_hostile_names_are_escaped_and_condensed() -> None:
    objects = []
    for i in range(80):
        repo = flux_object(
            "GitRepository",
            f"repo-{i}",
            status={
                "artifact": {
                    "revision": f"main@sha1:{NEW}",
                    "digest": "sha256:" + "0" * 64,
                    "lastUpdateTime": "2026-11-26T09:00:00Z",
                    "path": "p",
                    "url": "http://x",
                }
            },
            conditions=[condition("Ready", "False", "GitOperationFailed", "<!channel> & <b>" * 50)],
        )
        objects.append(repo)
    runner = _fleet(_cluster("production", "prod-eu-1", *objects))
    message = slack_render(runner.handle("rollout"))
    assert validate_blocks(message.blocks) == []
    assert len(message.blocks) <= MAX_BLOCKS
    assert "<!channel>" not in json.dumps(message.blocks)


def _fluxbot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_cli_rollout_json_names_every_environment_cluster_and_object() -> None:
    result = _fluxbot("rollout", "flux-system", "--demo", "--output", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    (source,) = data["sources"]
    assert [e["environment"] for e in source["environments"]] == [
        "development",
        "staging",
        "production",
    ]
    production = source["environments"][2]
    assert production["revision"] == f"production@sha1:{OLD}"
    eu = next(c for c in production["clusters"] if c["cluster"] == "prod-eu-1")
    assert eu["commit_url"] == f"https://github.com/acme/fleet/commit/{OLD}"
    apps = next(o for o in eu["objects"] if o["name"] == "apps")
    assert apps["current"] is False
    assert apps["revision"] == f"production@sha1:{OLDER}"
    behind = source["promotion"][1]
    assert behind["ahead"] == "staging"
    assert behind["behind"] == "production"
    assert behind["in_step"] is False
    assert behind["waiting_seconds"] > 0


def test_cli_rollout_bad_revision_is_a_usage_error() -> None:
    result = _fluxbot("rollout", "--demo", "--revision", "abc")
    assert result.returncode == 2
    assert "at least 7" in result.stderr


def test_shell_answers_rollout_like_slack() -> None:
    result = _fluxbot("shell", "--demo", "-x", "rollout --revision v2.4.0")
    assert result.returncode == 0, result.stderr
    assert "staging 1/2 have v2.4.0: staging-us-1 apps still on v2.3.1@713155c2" in result.stdout
