"""Links to a commit on the forge that hosts a Git repository, from the URL Flux clones.

A GitRepository's `spec.url` is an http(s) URL (`https://github.com/org/repo.git`) or an ssh
one (`ssh://git@github.com/org/repo`), as its CRD requires; the scp-like
`git@github.com:org/repo.git` people copy from forges is understood too. Its artifact revision
names the commit (`main@sha1:<sha>`, `sha1:<sha>`,
or the pre-v2 `main/<sha>`); an OCI artifact's `org.opencontainers.image.revision` may also be a
bare SHA. Known forges turn the two into a web link:

- GitHub (github.com, github.* for Enterprise): `https://HOST/OWNER/REPO/commit/SHA`
- GitLab (gitlab.com, gitlab.*): `https://HOST/GROUP/.../REPO/-/commit/SHA`
- Bitbucket Cloud (bitbucket.org): `https://bitbucket.org/WORKSPACE/REPO/commits/SHA`
- Azure DevOps (dev.azure.com, ssh.dev.azure.com, *.visualstudio.com):
  `https://dev.azure.com/ORG/PROJECT/_git/REPO/commit/SHA`
- Gitea and Forgejo (gitea.com, codeberg.org, gitea.*): `https://HOST/OWNER/REPO/commit/SHA`

Anything else gets no link rather than a guessed one. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

# `main@sha1:<hex>`, `sha1:<hex>`, `sha256:<hex>` (SHA-256 Git), or the legacy `main/<hex>`.
# A bare SHA too: what `org.opencontainers.image.revision` usually holds when CI sets it.
_REVISION_SHA: Final = re.compile(
    r"(?:^|@)sha(?:1|256):([0-9a-f]{40,64})$|/([0-9a-f]{40})$|^([0-9a-f]{40}|[0-9a-f]{64})$"
)
_SCP_LIKE: Final = re.compile(r"^(?:[\w.-]+@)?([\w.-]+):(?!//)(.+)$")


@dataclass(frozen=True, slots=True)
class Repository:
    """A repository on a known forge."""

    forge: str
    host: str
    path: str  # without a leading slash or a trailing `.git`

    def commit_url(self, sha: str) -> str:
        """The web page of one commit."""
        if self.forge == "gitlab":
            return f"https://{self.host}/{self.path}/-/commit/{sha}"
        if self.forge == "bitbucket":
            return f"https://{self.host}/{self.path}/commits/{sha}"
        if self.forge == "azure":
            return f"https://dev.azure.com/{self.path}/commit/{sha}"
        return f"https://{self.host}/{self.path}/commit/{sha}"


def commit_sha(revision: str) -> str | None:
    """The commit a Git artifact revision names, if it names one."""
    found = _REVISION_SHA.search(revision)
    if found is None:
        return None
    return found.group(1) or found.group(2) or found.group(3)


def repository(url: str) -> Repository | None:
    """The forge repository a clone URL points at; None for unknown hosts or odd URLs."""
    url = url.strip()
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http", "ssh"):
            return None
        host, path = (parts.hostname or "").lower(), parts.path
    else:
        scp = _SCP_LIKE.match(url)
        if scp is None:
            return None
        host, path = scp.group(1).lower(), scp.group(2)
    path = path.strip("/").removesuffix(".git").strip("/")
    segments = [s for s in path.split("/") if s]
    if not host or len(segments) < 2:
        return None
    forge = _forge(host)
    if forge is None:
        return None
    if forge == "azure":
        return _azure(host, segments)
    if forge in ("github", "bitbucket", "gitea") and len(segments) != 2:
        return None
    return Repository(forge, host, "/".join(segments))


def commit_link(url: str, revision: str) -> str | None:
    """The web page of the commit `revision` names in the repository at `url`, if known."""
    sha = commit_sha(revision)
    repo = repository(url) if sha else None
    return repo.commit_url(sha) if repo is not None and sha is not None else None


def _forge(host: str) -> str | None:
    if host == "github.com" or host.startswith("github."):
        return "github"
    if host == "gitlab.com" or host.startswith("gitlab."):
        return "gitlab"
    if host == "bitbucket.org":
        return "bitbucket"
    if host in ("dev.azure.com", "ssh.dev.azure.com") or host.endswith(".visualstudio.com"):
        return "azure"
    if host in ("gitea.com", "codeberg.org") or host.startswith("gitea."):
        return "gitea"
    return None


def _azure(host: str, segments: list[str]) -> Repository | None:
    """Azure DevOps spells one repository four ways; all become ORG/PROJECT/_git/REPO."""
    if host == "ssh.dev.azure.com":
        # git@ssh.dev.azure.com:v3/ORG/PROJECT/REPO
        if len(segments) != 4 or segments[0] != "v3":
            return None
        org, project, repo = segments[1:]
    elif host.endswith(".visualstudio.com"):
        # https://ORG.visualstudio.com/[DefaultCollection/]PROJECT/_git/REPO
        org = host.removesuffix(".visualstudio.com")
        rest = segments[1:] if segments[0] == "DefaultCollection" else segments
        if len(rest) != 3 or rest[1] != "_git":
            return None
        project, repo = rest[0], rest[2]
    else:
        # https://[USER@]dev.azure.com/ORG/PROJECT/_git/REPO
        if len(segments) != 4 or segments[2] != "_git":
            return None
        org, project, repo = segments[0], segments[1], segments[3]
    return Repository("azure", "dev.azure.com", f"{org}/{project}/_git/{repo}")
