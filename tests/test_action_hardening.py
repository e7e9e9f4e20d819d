"""Attacks and faults on remediation through the real `fluxbot serve` (issue 11, items 4-8):
fake Slack, fake API servers with a fake Flux controller, and a fake `helm`."""

from __future__ import annotations

import json
import time
from typing import Any

from bot.actions.buttons import ButtonPayload, sign
from bot.domain.remediation import material_state
from bot.domain.status import parse_flux_object
from bot.slack.credentials import SlackCredentials
from tests.bot_process import SECRET, buttons, texts
from tests.fakes.kube_api import FakeKubeApiServer
from tests.flux_objects import condition, flux_object, snapshot

# The `world` fixture is shared with tests/test_remediation.py; test parameters name it.
# ruff: noqa: F811
from tests.test_remediation import DEV, KS, OPS, SRE1, World, world  # noqa: F401

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


def test_reconcile_with_source_is_reviewed_for_each_object_it_patches(world: World) -> None:
    """Issue 11 item 7: with Kubernetes authorization on, the source a with-source reconcile
    patches (here in another namespace) is reviewed too, before anything is written."""
    world.dev.apply(
        flux_object(
            "Kustomization",
            "tenant",
            "team-a",
            spec={"sourceRef": {"kind": "GitRepository", "name": "flux-system",
                                "namespace": "flux-system"}},
            conditions=[condition("Ready", "False", "BuildFailed", "kustomize build failed")],
        )
    )  # fmt: skip
    world.start(sar=True)
    world.dev.grant_review(user="slack:U0OPS", verb="reconcile", resource="kustomizations")
    world.dev.grant_review(
        user="slack:U0OPS", verb="reconcile", resource="gitrepositories", namespace="team-a"
    )
    world.dev.clear_requests()
    denied = texts(world.view(OPS, DEV, "reconcile ks tenant -n team-a --with-source"))
    assert (
        "Not allowed by Kubernetes RBAC: slack:U0OPS may not reconcile GitRepository "
        "flux-system/flux-system, which this reconcile writes." in denied
    )
    assert _writes(world.dev) == []
    world.dev.grant_review(
        user="slack:U0OPS", verb="reconcile", resource="gitrepositories", namespace="flux-system"
    )
    reply = world.bot.command(  # type: ignore[union-attr]
        "reconcile ks tenant -n team-a --with-source", DEV, user=OPS
    )
    assert "Kustomization team-a/tenant" in world.outcome(reply, count=2)
    patched = [w.path for w in _writes(world.dev)]
    assert any(p.endswith("/gitrepositories/flux-system") for p in patched)
    assert any(p.endswith("/kustomizations/tenant") for p in patched)


def test_a_snooze_is_reviewed_by_kubernetes_too(world: World) -> None:
    """Issue 11 item 7: a snooze records an Event on the object and changes what digests show:
    with Kubernetes authorization on, it needs the reconcile verb on that object."""
    world.start(sar=True)
    key = SlackCredentials.from_env(
        http=True, env={"SLACK_BOT_TOKEN": world.slack.bot_token, "SLACK_SIGNING_SECRET": SECRET}
    ).button_key_bytes()
    stored = world.dev.get(*KS, "apps")
    assert stored is not None
    payload = ButtonPayload(
        a="snooze", e="development", c="dev-1", k="Kustomization", ns="flux-system", n="apps",
        s=material_state(parse_flux_object(stored)), x=int(time.time()) + 600, i="z7",
    )  # fmt: skip
    snooze = {"action_id": "flux_snooze:z7", "value": sign(payload, key)}
    denied = world.outcome(world.click(OPS, DEV, snooze))
    assert (
        "Not allowed by Kubernetes RBAC: slack:U0OPS may not reconcile Kustomization "
        "flux-system/apps" in denied
    )
    reviews = [r for r in world.dev.writes() if "subjectaccessreviews" in r.path]
    assert reviews
    world.dev.grant_review(user="slack:U0OPS", verb="reconcile", resource="kustomizations")
    offered = buttons(world.bot.answer(world.click(OPS, DEV, snooze)))  # type: ignore[union-attr]
    assert "1 day" in offered
