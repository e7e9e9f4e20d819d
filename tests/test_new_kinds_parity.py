"""`fluxbot status --from-file` prints every kind `flux get all` shows exactly as `flux get` does.

tests/fixtures/parity/new-kinds.yaml holds ImageRepositories, ImagePolicies,
ImageUpdateAutomations, Receivers, Providers, Alerts, ArtifactGenerators and ExternalArtifacts in
the states their controllers write (healthy, failing, stalled, suspended, no status yet);
new-kinds.expected.yaml says what flux2's cmd/flux/get_*.go print for each, and why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import main
from bot.domain.kinds import KINDS, resolve_kind
from bot.domain.status import InventoryEntry, ObjectRef, parse_flux_object, parse_inventory_id
from tests.fakes import crds
from tests.flux_objects import flux_object

PARITY = Path(__file__).resolve().parent / "fixtures" / "parity"
DUMP = PARITY / "new-kinds.yaml"
EXPECTED: list[dict[str, Any]] = yaml.safe_load((PARITY / "new-kinds.expected.yaml").read_text())


def _key(item: dict[str, Any]) -> tuple[str, str, str]:
    return (item["kind"], item["namespace"], item["name"])


def test_the_fixture_is_what_a_cluster_would_accept() -> None:
    items = yaml.safe_load(DUMP.read_text())["items"]
    for obj in items:
        assert crds.validate(obj) == [], f"{obj['kind']}/{obj['metadata']['name']}"
    assert {_key({**o, **o["metadata"]}) for o in items} == {_key(e) for e in EXPECTED}


def test_json_output_matches_flux_get_for_every_new_kind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["status", "--output", "json", "--from-file", str(DUMP)]) == 0
    records = {_key(r): r for r in json.loads(capsys.readouterr().out)}
    assert records.keys() == {_key(e) for e in EXPECTED}
    for expected in EXPECTED:
        got = records[_key(expected)]
        suspended = (
            expected["suspended"] == "True"
            if expected["suspended"] is not None
            else expected["spec_suspend"]
        )
        assert (got["ready"], got["suspended"], got["revision"], got["message"]) == (
            expected["ready"],
            suspended,
            expected["revision"],
            expected["message"],
        ), _key(expected)
        assert got["health"] == expected["health"], _key(expected)


def test_text_output_prints_suspended_only_for_kinds_whose_flux_get_has_the_column(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["status", "--from-file", str(DUMP)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.strip().startswith("KIND"))
    start = {col: header.index(f" {col} ") + 1 for col in ("KIND", "NAME", "SUSPENDED", "READY")}
    rows = [line for line in lines if len(line) > start["READY"] and line[2:3] in "✗…⏸✓"]
    table = {
        (
            # Objects failing because of the one above are marked `↳`.
            line[start["KIND"] :].removeprefix("↳ ").split()[0],
            line[start["NAME"] :].split()[0],
        ): line[start["SUSPENDED"] : start["READY"]].strip()
        for line in rows
    }
    for expected in EXPECTED:
        shown = table[(expected["kind"], expected["name"])]
        assert shown == (expected["suspended"] or "-"), _key(expected)


def test_failing_lists_the_failing_and_stalled_new_kinds_first(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["status", "--failing", "--output", "json", "--from-file", str(DUMP)]) == 0
    records = json.loads(capsys.readouterr().out)
    assert {_key(r) for r in records} == {_key(e) for e in EXPECTED if e["health"] == "failing"}


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("imagerepo", "ImageRepository"),
        ("imgrepo", "ImageRepository"),
        ("imagepolicy", "ImagePolicy"),
        ("imagepol", "ImagePolicy"),
        ("imageupdate", "ImageUpdateAutomation"),
        ("iua", "ImageUpdateAutomation"),
        ("alert", "Alert"),
        ("alerts", "Alert"),
        ("provider", "Provider"),
        ("alert-provider", "Provider"),
        ("receiver", "Receiver"),
        ("receivers", "Receiver"),
        ("external", "ExternalArtifact"),
        ("ea", "ExternalArtifact"),
        ("artifactgenerator", "ArtifactGenerator"),
        ("ag", "ArtifactGenerator"),
    ],
)
def test_kind_accepts_the_flux_cli_names_and_short_forms(
    name: str, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    resolved = resolve_kind(name)
    assert resolved is not None
    assert resolved.kind == kind
    assert main(["status", "--kind", name, "--output", "json", "--from-file", str(DUMP)]) == 0
    records = json.loads(capsys.readouterr().out)
    assert records
    assert {r["kind"] for r in records} == {kind}


def test_a_kind_scoped_status_names_the_kind_in_plural(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["status", "--kind", "imagepolicy", "--from-file", str(DUMP)]) == 0
    assert "5 ImagePolicies: 2 failing" in capsys.readouterr().out


def test_every_kind_name_selects_one_kind() -> None:
    owners: dict[str, set[str]] = {}
    for kind in KINDS:
        for name in kind.names():
            owners.setdefault(name, set()).add(kind.kind)
    assert {n: k for n, k in owners.items() if len(k) > 1} == {}


def test_an_older_image_policy_shows_its_latest_image() -> None:
    # image-reflector-controller v1beta2 kept `status.latestImage` (`image:tag`) instead.
    obj = parse_flux_object(
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1beta2",
            "kind": "ImagePolicy",
            "metadata": {"name": "podinfo", "namespace": "flux-system"},
            "status": {"latestImage": "ghcr.io/stefanprodan/podinfo:6.5.0"},
        }
    )
    assert obj.revision == "ghcr.io/stefanprodan/podinfo:6.5.0"


@pytest.mark.parametrize(
    ("value", "suspended"), [("disabled", True), ("Disabled", True), ("", False)]
)
def test_artifact_generator_suspension_is_its_reconcile_annotation(
    value: str, suspended: bool
) -> None:
    # source-watcher api/v1beta1 IsDisabled: strings.ToLower(value) == "disabled".
    annotations = {"source.extensions.fluxcd.io/reconcile": value} if value else None
    obj = parse_flux_object(
        flux_object("ArtifactGenerator", "apps", annotations=annotations, conditions=[])
    )
    assert obj.suspended is suspended


def test_references_of_the_new_kinds_are_kept() -> None:
    policy = parse_flux_object(flux_object("ImagePolicy", "podinfo", "apps"))
    automation = parse_flux_object(flux_object("ImageUpdateAutomation", "apps", "apps"))
    alert = parse_flux_object(flux_object("Alert", "on-call"))
    artifact = parse_flux_object(flux_object("ExternalArtifact", "apps", "apps"))
    generator = parse_flux_object(flux_object("ArtifactGenerator", "apps"))
    assert policy.source_ref == ObjectRef("ImageRepository", "apps", "podinfo")
    assert automation.source_ref == ObjectRef("GitRepository", "apps", "flux-system")
    assert alert.source_ref == ObjectRef("Provider", "flux-system", "slack")
    assert artifact.source_ref == ObjectRef("ArtifactGenerator", "apps", "apps")
    assert generator.depends_on == (ObjectRef("GitRepository", "flux-system", "flux-system"),)


def test_inventory_ids_are_read_as_cli_utils_writes_them() -> None:
    assert parse_inventory_id("apps_podinfo_apps_Deployment") == InventoryEntry(
        "apps", "podinfo", "apps", "Deployment"
    )
    assert parse_inventory_id("_flux-apps__Namespace") == InventoryEntry(
        "", "flux-apps", "", "Namespace"
    )
    assert parse_inventory_id(
        "_system__controller__podinfo_rbac.authorization.k8s.io_ClusterRole"
    ) == InventoryEntry("", "system:controller:podinfo", "rbac.authorization.k8s.io", "ClusterRole")
    assert parse_inventory_id("garbage") is None


def test_a_dump_skips_other_providers_and_alerts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Crossplane and others have kinds called Provider too; only Flux's are Flux objects.
    crossplane = {
        "apiVersion": "pkg.crossplane.io/v1",
        "kind": "Provider",
        "metadata": {"name": "provider-aws"},
        "spec": {"package": "xpkg.upbound.io/upbound/provider-aws:v1"},
    }
    dump = tmp_path / "prod-eu-1.yaml"
    dump.write_text(yaml.safe_dump_all([crossplane, flux_object("Provider", "slack")]))
    assert main(["status", "--output", "json", "--from-file", str(dump)]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["kind"], r["name"], r["message"]) for r in records] == [
        ("Provider", "slack", "Provider is Ready")
    ]
