"""Attacks and faults on remediation through the real `fluxbot serve` (issue 11, items 4-8):
fake Slack, fake API servers with a fake Flux controller, and a fake `helm`."""

from __future__ import annotations

import json
from typing import Any

from tests.bot_process import texts
from tests.fakes.kube_api import FakeKubeApiServer
from tests.flux_objects import condition, flux_object, snapshot

# The `world` fixture is shared with tests/test_remediation.py; test parameters name it.
# ruff: noqa: F811
from tests.test_remediation import DEV, SRE1, World, world  # noqa: F401

INJECTED = "--kube-apiserver=http://127.0.0.1:9"


def _crafted_release(name: str, suspend: bool) -> dict[str, Any]:
    """A failed HelmRelease whose status claims a release name that is a helm flag (status is
    written by whoever can patch the status subresource, not validated by the CRD)."""
    history = [
        {**snapshot(3, "6.7.1", "failed"), "name": INJECTED},
        {**snapshot(2, "6.6.0", "deployed"), "name": INJECTED},
    ]
    return flux_object(
        "HelmRelease",
        name,
        "flux-apps",
        suspend=suspend,
        status={"history": history, "storageNamespace": "flux-apps", "failures": 3},
        conditions=[
            condition("Ready", "False", "UpgradeFailed", "Helm upgrade failed: timed out"),
            condition("Stalled", "True", "RetriesExceeded", "Failed to upgrade after 3 attempts"),
        ],
    )


def _helm_calls(world: World) -> list[list[str]]:
    log = world.helm_log
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_a_release_name_crafted_as_a_helm_flag_never_reaches_helm(world: World) -> None:
    """Issue 11 item 8: names from a HelmRelease's status are checked with Helm's own rules
    (helm pkg/chartutil ValidateReleaseName) before helm runs, suspended or not, and helm
    gets its flags first, then `--`, then positionals."""
    world.dev.apply_many([_crafted_release("evil", False), _crafted_release("evil-held", True)])
    world.start(rollback="helm")
    for name in ("evil", "evil-held"):
        answer = texts(world.view(SRE1, DEV, f"rollback hr {name} -n flux-apps"))
        assert f"'{INJECTED}' is not a valid Helm release name" in answer
    assert not any(INJECTED in " ".join(call) for call in _helm_calls(world))
    assert _writes(world.dev) == []


def _writes(server: FakeKubeApiServer) -> list[Any]:
    return [
        r
        for r in server.writes()
        if "/events" not in r.path and "subjectaccessreviews" not in r.path
    ]
