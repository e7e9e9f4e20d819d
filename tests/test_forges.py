"""Commit links from a GitRepository's URL and revision, for the forges people use.

A GitRepository's URL is `http://`, `https://` or `ssh://` (the v1 CRD's `spec.url` pattern
`^(http|https|ssh)://.*$`, tests/fixtures/flux-crds); the scp-like `git@host:path` that people
copy from forges is read too.
"""

from __future__ import annotations

import pytest

from bot.domain.forges import commit_link, commit_sha

SHA = "696f056df216eea4f9401adbee0ff744d4df390f"


@pytest.mark.parametrize(
    ("url", "link"),
    [
        ("https://github.com/acme/fleet", f"https://github.com/acme/fleet/commit/{SHA}"),
        ("https://github.com/acme/fleet.git", f"https://github.com/acme/fleet/commit/{SHA}"),
        ("ssh://git@github.com/acme/fleet", f"https://github.com/acme/fleet/commit/{SHA}"),
        ("git@github.com:acme/fleet.git", f"https://github.com/acme/fleet/commit/{SHA}"),
        (
            "https://gitlab.com/acme/platform/fleet.git",
            f"https://gitlab.com/acme/platform/fleet/-/commit/{SHA}",
        ),
        (
            "ssh://git@gitlab.example.com:2222/acme/fleet.git",
            f"https://gitlab.example.com/acme/fleet/-/commit/{SHA}",
        ),
        (
            "ssh://git@gitlab.acme.io/acme/fleet.git",
            f"https://gitlab.acme.io/acme/fleet/-/commit/{SHA}",
        ),
        ("https://bitbucket.org/acme/fleet.git", f"https://bitbucket.org/acme/fleet/commits/{SHA}"),
        ("git@bitbucket.org:acme/fleet.git", f"https://bitbucket.org/acme/fleet/commits/{SHA}"),
        (
            "https://acme@dev.azure.com/acme/Platform/_git/fleet",
            f"https://dev.azure.com/acme/Platform/_git/fleet/commit/{SHA}",
        ),
        (
            "ssh://git@ssh.dev.azure.com/v3/acme/Platform/fleet",
            f"https://dev.azure.com/acme/Platform/_git/fleet/commit/{SHA}",
        ),
        (
            "git@ssh.dev.azure.com:v3/acme/Platform/fleet",
            f"https://dev.azure.com/acme/Platform/_git/fleet/commit/{SHA}",
        ),
        (
            "https://acme.visualstudio.com/DefaultCollection/Platform/_git/fleet",
            f"https://dev.azure.com/acme/Platform/_git/fleet/commit/{SHA}",
        ),
        ("https://gitea.com/acme/fleet.git", f"https://gitea.com/acme/fleet/commit/{SHA}"),
        ("git@gitea.acme.io:acme/fleet.git", f"https://gitea.acme.io/acme/fleet/commit/{SHA}"),
        ("https://codeberg.org/acme/fleet", f"https://codeberg.org/acme/fleet/commit/{SHA}"),
        ("https://git.acme.io/acme/fleet.git", None),
        ("oci://ghcr.io/acme/manifests", None),
        ("https://github.com/acme", None),
    ],
)
def test_a_commit_links_to_its_forge_in_https_and_ssh_forms(url: str, link: str | None) -> None:
    assert commit_link(url, f"main@sha1:{SHA}") == link


@pytest.mark.parametrize(
    ("revision", "sha"),
    [
        (f"main@sha1:{SHA}", SHA),
        (f"sha1:{SHA}", SHA),
        (f"main/{SHA}", SHA),  # before Flux 2.0
        (f"refs/tags/v1.2.0@sha1:{SHA}", SHA),
        ("v1.2.0@sha256:" + "ab" * 32, "ab" * 32),
        ("6.0.3", None),
        ("main@sha1:696f056d", None),  # already shortened: no full commit to link to
    ],
)
def test_the_commit_is_read_from_every_git_revision_form(revision: str, sha: str | None) -> None:
    assert commit_sha(revision) == sha
