"""The built-in demo fleet is held to what real clusters print.

Each `bot/demo/<environment>/<cluster>.yaml` is a `kubectl get gitrepositories,ocirepositories,
helmrepositories,helmcharts,buckets,externalartifacts,artifactgenerators,kustomizations,
helmreleases,imagerepositories,imagepolicies,imageupdateautomations,receivers,providers,alerts
-A -o yaml` dump. These tests
check that every object would be accepted by the Flux v2.9 CRDs, that the dumps hang together
(references resolve, generations and timestamps agree, revisions have the controllers' formats)
and that the failure scenarios the demo exists to show are still there.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes import crds

DEMO = Path(__file__).resolve().parent.parent / "bot" / "demo"
CLUSTERS = {
    "development": ("dev-eu-1",),
    "staging": ("staging-eu-1", "staging-us-1"),
    "production": ("prod-eu-1", "prod-us-1"),
}
EARLIEST = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
DUMPED_AT = dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC)

# Objects whose spec changed after their controller last looked at them: status and
# conditions still describe the previous generation.
LAGGING = {("dev-eu-1", "Kustomization", "flux-system", "sandbox")}
# References that may point to an object missing from their cluster's dump.
DANGLING: set[tuple[str, str, str, str]] = set()

# The order in which kubectl prints the kinds of the dump command.
KIND_ORDER = (
    "GitRepository",
    "OCIRepository",
    "HelmRepository",
    "HelmChart",
    "Bucket",
    "ExternalArtifact",
    "ArtifactGenerator",
    "Kustomization",
    "HelmRelease",
    "ImageRepository",
    "ImagePolicy",
    "ImageUpdateAutomation",
    "Receiver",
    "Provider",
    "Alert",
)
SOURCE_KINDS = frozenset(KIND_ORDER[:5])
# source-watcher's statuses have no observedGeneration (only their conditions do).
NO_OBSERVED_GENERATION = frozenset({"ExternalArtifact", "ArtifactGenerator"})
TIMESTAMP_FIELDS = frozenset(
    {
        "creationTimestamp",
        "lastTransitionTime",
        "lastUpdateTime",
        "firstDeployed",
        "lastDeployed",
        "firstReconciled",
        "lastReconciled",
        "lastStarted",
        "lastCompleted",
    }
)
HELM_STATUSES = frozenset(
    {
        "unknown",
        "deployed",
        "uninstalled",
        "superseded",
        "failed",
        "uninstalling",
        "pending-install",
        "pending-upgrade",
        "pending-rollback",
    }
)
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SEMVER = r"v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
REVISION = {
    "GitRepository": re.compile(r"^[\w./-]+@sha1:[0-9a-f]{40}$"),
    "OCIRepository": re.compile(rf"^{SEMVER}@sha256:[0-9a-f]{{64}}$"),
    "HelmRepository": re.compile(r"^sha256:[0-9a-f]{64}$"),
    "HelmChart": re.compile(rf"^{SEMVER}$"),
    "Bucket": re.compile(r"^sha256:[0-9a-f]{64}$"),
}
READY_MESSAGE = {
    "GitRepository": "stored artifact for revision '{}'",
    "OCIRepository": "stored artifact for digest '{}'",
    "HelmRepository": "stored artifact: revision '{}'",
    "Bucket": "stored artifact for revision '{}'",
}

Obj = dict[str, Any]
Key = tuple[str, str, str]  # kind, namespace, name


# --- loading -----------------------------------------------------------------------------


def demo_paths() -> list[Path]:
    return [DEMO / env / f"{name}.yaml" for env, names in CLUSTERS.items() for name in names]


@cache
def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def items(path: Path) -> list[Obj]:
    doc = load(path)
    return list(doc["items"]) if isinstance(doc, dict) else []


def key(obj: Obj) -> Key:
    meta = obj["metadata"]
    return obj["kind"], meta["namespace"], meta["name"]


@cache
def index(path: Path) -> dict[Key, Obj]:
    return {key(o): o for o in items(path)}


def cluster(path: Path) -> str:
    return path.stem


def by_cluster(name: str) -> dict[Key, Obj]:
    path = next(p for p in demo_paths() if p.stem == name)
    return index(path)


def fleet() -> Iterator[tuple[str, Obj]]:
    for path in demo_paths():
        for obj in items(path):
            yield cluster(path), obj


def status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def conditions(obj: Obj) -> dict[str, Obj]:
    return {c["type"]: c for c in status(obj).get("conditions", [])}


def ready(obj: Obj) -> Obj | None:
    return conditions(obj).get("Ready")


def ready_status(obj: Obj) -> str | None:
    rd = ready(obj)
    return rd["status"] if rd else None


def is_true(obj: Obj, ctype: str) -> bool:
    c = conditions(obj).get(ctype)
    return c is not None and c["status"] == "True"


def timestamp(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def label(obj: Obj) -> str:
    kind, ns, name = key(obj)
    return f"{kind}/{ns}/{name}"


def _object_params() -> list[Any]:
    params = []
    for path in demo_paths():
        if not path.is_file():
            continue
        for obj in items(path):
            params.append(pytest.param(path, obj, id=f"{cluster(path)}:{label(obj)}"))
    return params


OBJECTS = _object_params()
FILES = [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in demo_paths()]


# --- the files ---------------------------------------------------------------------------


def test_the_demo_has_exactly_the_expected_clusters() -> None:
    found = {p.relative_to(DEMO) for p in DEMO.glob("*/*.yaml")}
    assert found == {p.relative_to(DEMO) for p in demo_paths()}
    assert (DEMO / "README.md").is_file()


@pytest.mark.parametrize("path", FILES)
def test_each_file_opens_with_a_comment_describing_its_scenario(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line)
    assert len(header) >= 3, "start with a YAML comment block describing the scenario"
    assert cluster(path) in "\n".join(header)
    assert lines[len(header)] == "apiVersion: v1"


@pytest.mark.parametrize("path", FILES)
def test_each_file_is_a_kubectl_list(path: Path) -> None:
    doc = load(path)
    assert isinstance(doc, dict)
    assert list(doc) == ["apiVersion", "items", "kind", "metadata"]
    assert doc["apiVersion"] == "v1"
    assert doc["kind"] == "List"
    assert doc["metadata"] == {"resourceVersion": ""}
    assert 15 <= len(doc["items"]) <= 35


@pytest.mark.parametrize("path", FILES)
def test_items_are_in_kubectl_order(path: Path) -> None:
    keys = [key(o) for o in items(path)]
    assert len(set(keys)) == len(keys), "duplicate objects"
    assert keys == sorted(keys, key=lambda k: (KIND_ORDER.index(k[0]), k[1], k[2]))

    def sorted_maps(node: Any, where: str) -> None:
        if isinstance(node, dict):
            assert list(node) == sorted(node), f"{where}: kubectl prints keys sorted"
            for k, v in node.items():
                sorted_maps(v, f"{where}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                sorted_maps(v, f"{where}[{i}]")

    for obj in items(path):
        sorted_maps(obj, label(obj))


@pytest.mark.parametrize(("path", "obj"), OBJECTS)
def test_every_object_validates_against_the_flux_crds(path: Path, obj: Obj) -> None:
    assert crds.validate(obj) == []


# --- metadata, timestamps, generations ---------------------------------------------------


def test_object_metadata_looks_like_the_api_servers() -> None:
    uids: Counter[str] = Counter()
    for name in (p.stem for p in demo_paths()):
        versions: Counter[str] = Counter()
        for obj in by_cluster(name).values():
            meta = obj["metadata"]
            assert set(meta) <= {
                "annotations",
                "creationTimestamp",
                "finalizers",
                "generation",
                "labels",
                "name",
                "namespace",
                "resourceVersion",
                "uid",
            }, label(obj)
            assert uuid.UUID(meta["uid"]).version == 4
            uids[meta["uid"]] += 1
            assert re.fullmatch(r"[1-9]\d{5,}", meta["resourceVersion"]), label(obj)
            versions[meta["resourceVersion"]] += 1
            assert isinstance(meta["generation"], int)
            assert meta["generation"] >= 1
            assert meta.get("finalizers", ["finalizers.fluxcd.io"]) == ["finalizers.fluxcd.io"]
        assert max(versions.values()) == 1, f"{name}: resourceVersions repeat"
    assert max(uids.values()) == 1, "uids repeat"


@pytest.mark.parametrize(("path", "obj"), OBJECTS)
def test_timestamps_are_rfc3339_and_consistent(path: Path, obj: Obj) -> None:
    created = timestamp(obj["metadata"]["creationTimestamp"])
    found: list[tuple[str, str]] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in TIMESTAMP_FIELDS:
                    found.append((f"{where}.{k}", v))
                walk(v, f"{where}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")

    walk(obj, label(obj))
    for where, value in found:
        assert isinstance(value, str), where
        assert RFC3339.match(value), f"{where}: {value!r} is not RFC3339 in UTC"
        assert EARLIEST <= timestamp(value) <= DUMPED_AT, where
        # Nothing about an object happened before the object existed.
        assert timestamp(value) >= created, f"{where} predates creationTimestamp"

    for snap in status(obj).get("history", []):
        if "firstDeployed" in snap:
            assert snap["firstDeployed"] <= snap["lastDeployed"]
        if "firstReconciled" in snap:
            assert snap["firstReconciled"] <= snap["lastReconciled"]
        for hook in (snap.get("testHooks") or {}).values():
            assert hook["lastStarted"] <= hook["lastCompleted"]

    requested = (obj["metadata"].get("annotations") or {}).get("reconcile.fluxcd.io/requestedAt")
    handled = status(obj).get("lastHandledReconcileAt")
    if handled is not None:
        assert handled == requested, "lastHandledReconcileAt echoes the annotation"


@pytest.mark.parametrize(("path", "obj"), OBJECTS)
def test_observed_generations_agree_with_the_generation(path: Path, obj: Obj) -> None:
    generation = obj["metadata"]["generation"]
    st = status(obj)
    observed = st.get("observedGeneration")
    conds = st.get("conditions", [])
    if not conds:
        assert observed in (None, -1), "an object never reconciled has no observedGeneration"
        return
    for c in conds:
        assert 1 <= c["observedGeneration"] <= generation, c["type"]
    if obj["kind"] in NO_OBSERVED_GENERATION:
        assert observed is None
        observed = max(c["observedGeneration"] for c in conds)
    assert isinstance(observed, int)
    assert 1 <= observed <= generation
    rd = ready(obj)
    assert rd is not None, "a reconciled object has a Ready condition"

    if (cluster(path), *key(obj)) in LAGGING:
        assert observed < generation
        assert rd["observedGeneration"] == observed
        return
    if obj["spec"].get("suspend"):
        return  # conditions from before the suspension
    if rd["status"] == "True":
        assert observed == generation
        assert rd["observedGeneration"] == generation
    else:
        # A failing or progressing object has looked at its current spec.
        assert rd["observedGeneration"] == generation


def test_the_lag_exceptions_are_real() -> None:
    for name, kind, ns, obj_name in LAGGING:
        obj = by_cluster(name)[(kind, ns, obj_name)]
        assert status(obj)["observedGeneration"] < obj["metadata"]["generation"]


# --- references --------------------------------------------------------------------------


def references(obj: Obj) -> Iterator[tuple[str, Key]]:
    """(what, target) for every reference an object makes to another Flux object."""
    kind, ns, _ = key(obj)
    spec = obj["spec"]
    if kind == "Kustomization":
        ref = spec["sourceRef"]
        yield "spec.sourceRef", (ref["kind"], ref.get("namespace", ns), ref["name"])
    if kind == "HelmChart":
        ref = spec["sourceRef"]
        yield "spec.sourceRef", (ref["kind"], ns, ref["name"])
    if kind == "HelmRelease":
        if "chart" in spec:
            ref = spec["chart"]["spec"]["sourceRef"]
            yield "spec.chart.spec.sourceRef", (ref["kind"], ref.get("namespace", ns), ref["name"])
        if "chartRef" in spec:
            ref = spec["chartRef"]
            yield "spec.chartRef", (ref["kind"], ref.get("namespace", ns), ref["name"])
        if chart := status(obj).get("helmChart"):
            chart_ns, chart_name = chart.split("/")
            yield "status.helmChart", ("HelmChart", chart_ns, chart_name)
    if kind == "ImagePolicy":
        yield "spec.imageRepositoryRef", ("ImageRepository", ns, spec["imageRepositoryRef"]["name"])
    if kind in ("ImageUpdateAutomation", "ExternalArtifact"):
        ref = spec["sourceRef"]
        yield "spec.sourceRef", (ref["kind"], ref.get("namespace", ns), ref["name"])
    if kind == "ArtifactGenerator":
        for source in spec["sources"]:
            yield "spec.sources", (source["kind"], source.get("namespace", ns), source["name"])
        for generated in status(obj).get("inventory", []):
            yield (
                "status.inventory",
                ("ExternalArtifact", generated["namespace"], generated["name"]),
            )
    for dep in spec.get("dependsOn", []):
        yield "spec.dependsOn", (kind, dep.get("namespace", ns), dep["name"])
    labels = obj["metadata"].get("labels") or {}
    if owner := labels.get("kustomize.toolkit.fluxcd.io/name"):
        owner_ns = labels["kustomize.toolkit.fluxcd.io/namespace"]
        yield "kustomize owner label", ("Kustomization", owner_ns, owner)
    if owner := labels.get("helm.toolkit.fluxcd.io/name"):
        yield "helm owner label", ("HelmRelease", labels["helm.toolkit.fluxcd.io/namespace"], owner)


@pytest.mark.parametrize("path", FILES)
def test_every_reference_resolves_in_the_same_cluster(path: Path) -> None:
    objects = index(path)
    missing = []
    for obj in objects.values():
        for what, target in references(obj):
            if target not in objects and (cluster(path), *target) not in DANGLING:
                missing.append(f"{label(obj)} {what} -> {'/'.join(target)}")
    assert missing == []


def test_the_dangling_exceptions_are_real() -> None:
    for name, kind, ns, obj_name in DANGLING:
        assert (kind, ns, obj_name) not in by_cluster(name)


@pytest.mark.parametrize("path", FILES)
def test_helm_charts_and_chart_templates_pair_up(path: Path) -> None:
    objects = index(path)
    templated = {}
    for (kind, ns, name), obj in objects.items():
        if kind != "HelmRelease":
            continue
        assert ("chart" in obj["spec"]) != ("chartRef" in obj["spec"]), label(obj)
        if "chart" not in obj["spec"]:
            assert "helmChart" not in status(obj)
            continue
        tpl = obj["spec"]["chart"]["spec"]
        chart_key = ("HelmChart", tpl["sourceRef"].get("namespace", ns), f"{ns}-{name}")
        templated[chart_key] = obj
        assert status(obj)["helmChart"] == f"{chart_key[1]}/{chart_key[2]}"
        chart = objects[chart_key]
        assert chart["spec"]["chart"] == tpl["chart"]
        assert chart["spec"]["version"] == tpl.get("version", "*")
        assert chart["spec"]["sourceRef"]["kind"] == tpl["sourceRef"]["kind"]
        assert chart["spec"]["sourceRef"]["name"] == tpl["sourceRef"]["name"]
    charts = {k for k in objects if k[0] == "HelmChart"}
    assert charts == set(templated), "every HelmChart belongs to a HelmRelease template"


# --- statuses ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES)
def test_source_artifacts_have_the_controllers_formats(path: Path) -> None:
    objects = index(path)
    for (kind, _, name), obj in objects.items():
        if kind not in SOURCE_KINDS:
            continue
        if kind == "HelmRepository" and obj["spec"].get("type") == "oci":
            # source-controller does not reconcile OCI HelmRepositories.
            assert obj.get("status") in (None, {}), label(obj)
            continue
        art = status(obj).get("artifact")
        if art is None:
            continue
        rev = art["revision"]
        assert REVISION[kind].match(rev), f"{label(obj)}: {rev}"
        assert art["url"].endswith("/" + art["path"])
        assert art["path"].startswith(f"{kind.lower()}/{obj['metadata']['namespace']}/{name}/")
        stored = conditions(obj).get("ArtifactInStorage")
        assert stored is not None
        assert stored["status"] == "True"
        expected = (
            f"pulled '{status(obj)['observedChartName']}' chart with version '{rev}'"
            if kind == "HelmChart"
            else READY_MESSAGE[kind].format(rev)
        )
        assert stored["message"] == expected, label(obj)
        rd = ready(obj)
        if rd and rd["status"] == "True":
            assert rd["message"] == expected, label(obj)
            assert art["lastUpdateTime"] <= rd["lastTransitionTime"]


@pytest.mark.parametrize("path", FILES)
def test_kustomization_revisions_follow_their_sources(path: Path) -> None:
    objects = index(path)
    for (kind, ns, _), obj in objects.items():
        if kind != "Kustomization":
            continue
        ref = obj["spec"]["sourceRef"]
        source = objects[(ref["kind"], ref.get("namespace", ns), ref["name"])]
        st = status(obj)
        for field in ("lastAppliedRevision", "lastAttemptedRevision"):
            assert REVISION[ref["kind"]].match(st[field]), f"{label(obj)} {field}"
        rd = ready(obj)
        assert rd is not None
        if rd["status"] == "True":
            assert rd["message"] == f"Applied revision: {st['lastAppliedRevision']}"
            if not obj["spec"].get("suspend"):
                assert st["lastAppliedRevision"] == status(source)["artifact"]["revision"]


@pytest.mark.parametrize("path", FILES)
def test_helm_release_history_is_what_helm_controller_records(path: Path) -> None:
    for (kind, ns, name), obj in index(path).items():
        if kind != "HelmRelease":
            continue
        st = status(obj)
        history = st["history"]
        assert history, label(obj)
        versions = [s["version"] for s in history]
        assert versions == sorted(set(versions), reverse=True), "newest release first"
        for snap in history:
            assert snap["status"] in HELM_STATUSES
            assert (snap["name"], snap["namespace"]) == (name, ns)
            assert re.fullmatch(SEMVER, snap["chartVersion"])
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", snap["configDigest"])
            assert snap["firstDeployed"] == history[-1]["firstDeployed"]
        assert st["storageNamespace"] == ns
        assert st["lastAttemptedReleaseAction"] in ("install", "upgrade")
        assert re.fullmatch(SEMVER, st["lastAttemptedRevision"])
        latest = history[0]
        rd = ready(obj)
        assert rd is not None
        if rd["status"] == "True":
            # What `flux get helmreleases` shows as the revision.
            assert latest["status"] == "deployed"
            assert st["lastAttemptedRevision"] == latest["chartVersion"]
            assert st["lastAttemptedConfigDigest"] == latest["configDigest"]
            release = f"{ns}/{name}.v{latest['version']}"
            assert f"release {release} with chart {latest['chartName']}@" in rd["message"]
            assert (
                rd["message"]
                .split(" with chart ")[1]
                .startswith(f"{latest['chartName']}@{latest['chartVersion']}")
            )
        if "chartRef" in obj["spec"]:
            digest = st["lastAttemptedRevisionDigest"]
            assert st["lastAttemptedRevision"].endswith("+" + digest.split(":")[1][:12])
            assert latest["ociDigest"] == digest


# --- the scenarios -----------------------------------------------------------------------


def test_every_cluster_is_bootstrapped() -> None:
    for name in (p.stem for p in demo_paths()):
        objects = by_cluster(name)
        repo = objects[("GitRepository", "flux-system", "flux-system")]
        assert re.fullmatch(
            r"(main|production)@sha1:[0-9a-f]{40}", status(repo)["artifact"]["revision"]
        )
        ks = {k[2]: o for k, o in objects.items() if k[0] == "Kustomization"}
        assert {"flux-system", "infra-controllers", "infra-configs", "apps"} <= set(ks)
        assert ks["flux-system"]["spec"]["sourceRef"] == {
            "kind": "GitRepository",
            "name": "flux-system",
        }
        assert ks["infra-configs"]["spec"]["dependsOn"] == [{"name": "infra-controllers"}]
        assert ks["apps"]["spec"]["dependsOn"] == [{"name": "infra-configs"}]
        assert any(
            k[0] == "HelmRepository" and o["spec"].get("type") == "oci" for k, o in objects.items()
        )


def test_prod_eu_1_platform_repository_fails_authentication() -> None:
    objects = by_cluster("prod-eu-1")
    repo = objects[("GitRepository", "flux-system", "platform")]
    rd = ready(repo)
    assert rd is not None
    assert rd["status"] == "False"
    assert rd["reason"] == "GitOperationFailed"
    assert rd["message"] == (
        "failed to checkout and determine revision: unable to list remote for "
        "'ssh://git@github.com/acme/platform': authentication required"
    )
    fetch = conditions(repo)["FetchFailed"]
    assert (fetch["status"], fetch["reason"], fetch["message"]) == (
        "True",
        "GitOperationFailed",
        rd["message"],
    )
    assert conditions(repo)["Reconciling"]["reason"] == "ProgressingWithRetry"
    assert is_true(repo, "ArtifactInStorage"), "the old artifact is kept"
    assert status(repo)["artifact"]["lastUpdateTime"] < rd["lastTransitionTime"]

    failing = {
        k[2]: o
        for k, o in objects.items()
        if k[0] == "Kustomization"
        and o["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "platform"}
        and ready_status(o) == "False"
    }
    assert len(failing) >= 3
    controllers = ready(failing["infra-controllers"])
    assert controllers is not None
    assert controllers["reason"] == "ArtifactFailed"
    assert controllers["message"].startswith("kustomization path not found: ")
    for ks in failing.values():
        assert status(ks)["lastAppliedRevision"] == status(repo)["artifact"]["revision"]

    # Objects depending on a failing platform Kustomization wait for it.
    waiting = [
        o
        for k, o in objects.items()
        if k[0] == "Kustomization"
        and any(d["name"] in failing for d in o["spec"].get("dependsOn", []))
    ]
    assert waiting
    for obj in waiting:
        rd = ready(obj)
        assert rd is not None
        assert rd["reason"] == "DependencyNotReady"
        dep = obj["spec"]["dependsOn"][0]["name"]
        assert rd["message"] == f"dependency 'flux-system/{dep}' is not ready"
    apps = ready(objects[("Kustomization", "flux-system", "apps")])
    assert apps is not None
    assert apps["message"] == "dependency 'flux-system/infra-configs' is not ready"


def test_prod_us_1_release_is_stalled_after_failed_upgrades() -> None:
    objects = by_cluster("prod-us-1")
    hr = objects[("HelmRelease", "monitoring", "kube-prometheus-stack")]
    conds = conditions(hr)
    assert (conds["Stalled"]["status"], conds["Stalled"]["reason"]) == ("True", "RetriesExceeded")
    assert conds["Stalled"]["message"] == "Failed to upgrade after 3 attempt(s)"
    assert "Reconciling" not in conds
    for ctype in ("Ready", "Released"):
        assert (conds[ctype]["status"], conds[ctype]["reason"]) == ("False", "UpgradeFailed")
        assert conds[ctype]["message"].startswith(
            "Helm upgrade failed for release monitoring/kube-prometheus-stack "
            "with chart kube-prometheus-stack@66.3.0: "
        )
    st = status(hr)
    assert st["upgradeFailures"] == 3
    assert st["failures"] == 3
    remediation = hr["spec"]["upgrade"]["remediation"]
    assert remediation["retries"] == st["upgradeFailures"] - 1
    assert remediation["remediateLastFailure"] is False
    history = st["history"]
    assert history[0]["status"] == "failed"
    assert history[0]["chartVersion"] == st["lastAttemptedRevision"] == "66.3.0"
    assert history[1]["status"] in ("deployed", "superseded")
    assert history[1]["chartVersion"] != history[0]["chartVersion"]


def test_staging_apps_come_from_an_oci_artifact() -> None:
    for name in CLUSTERS["staging"]:
        objects = by_cluster(name)
        repo = objects[("OCIRepository", "flux-system", "apps")]
        assert repo["spec"]["url"] == "oci://ghcr.io/acme/manifests/apps"
        assert re.fullmatch(r"v2\.4\.0@sha256:[0-9a-f]{64}", status(repo)["artifact"]["revision"])
        apps = objects[("Kustomization", "flux-system", "apps")]
        assert apps["spec"]["sourceRef"] == {"kind": "OCIRepository", "name": "apps"}
        assert status(apps)["lastAttemptedRevision"] == status(repo)["artifact"]["revision"]


def test_staging_eu_1_has_a_suspended_kustomization_with_stale_conditions() -> None:
    objects = by_cluster("staging-eu-1")
    suspended = [
        o for k, o in objects.items() if k[0] == "Kustomization" and o["spec"].get("suspend")
    ]
    assert len(suspended) == 1
    ks = suspended[0]
    rd = ready(ks)
    assert rd is not None
    assert rd["observedGeneration"] < ks["metadata"]["generation"]
    ref = ks["spec"]["sourceRef"]
    source = objects[(ref["kind"], "flux-system", ref["name"])]
    assert status(ks)["lastAppliedRevision"] != status(source)["artifact"]["revision"]
    assert rd["lastTransitionTime"] < status(source)["artifact"]["lastUpdateTime"]


def test_staging_us_1_has_a_progressing_kustomization() -> None:
    ks = by_cluster("staging-us-1")[("Kustomization", "flux-system", "apps")]
    rd = ready(ks)
    assert rd is not None
    assert (rd["status"], rd["reason"]) == ("Unknown", "Progressing")
    assert is_true(ks, "Reconciling")
    st = status(ks)
    assert st["lastAttemptedRevision"] != st["lastAppliedRevision"]


def test_dev_eu_1_scenarios() -> None:
    objects = by_cluster("dev-eu-1")

    in_progress = [
        o for k, o in objects.items() if k[0] == "HelmRelease" and ready_status(o) == "Unknown"
    ]
    assert len(in_progress) == 1
    assert is_true(in_progress[0], "Reconciling")
    assert conditions(in_progress[0])["Ready"]["reason"] == "Progressing"

    never_reconciled = [
        o for o in objects.values() if not conditions(o) and o["spec"].get("type") != "oci"
    ]
    assert len(never_reconciled) == 1
    assert status(never_reconciled[0]) in ({}, {"observedGeneration": -1})

    buckets = [k for k in objects if k[0] == "Bucket"]
    assert len(buckets) == 1
    assert any(
        o["spec"]["sourceRef"] == {"kind": "Bucket", "name": buckets[0][2]}
        for k, o in objects.items()
        if k[0] == "Kustomization"
    )

    failing_charts = [
        o for k, o in objects.items() if k[0] == "HelmChart" and ready_status(o) == "False"
    ]
    assert len(failing_charts) == 1
    rd = ready(failing_charts[0])
    assert rd is not None
    assert rd["reason"] == "InvalidChartReference"
    assert "no 'podinfo' chart with version matching '7.x' found" in rd["message"]

    assert any(name == "dev-eu-1" for name, *_ in LAGGING)


def test_chart_refs_and_chart_templates() -> None:
    releases = [o for _, o in fleet() if o["kind"] == "HelmRelease"]
    refs = [o for o in releases if "chartRef" in o["spec"]]
    assert refs
    assert all(o["spec"]["chartRef"]["kind"] == "OCIRepository" for o in refs)
    assert len(releases) - len(refs) > len(refs)


def test_objects_live_in_flux_system_and_app_namespaces() -> None:
    namespaces = {o["metadata"]["namespace"] for _, o in fleet()}
    assert {"flux-system", "flux-apps", "monitoring", "ingress-nginx", "cert-manager"} <= namespaces
    for _, obj in fleet():
        if obj["kind"] in SOURCE_KINDS - {"OCIRepository"} | {"Kustomization"}:
            assert obj["metadata"]["namespace"] == "flux-system", label(obj)


def test_the_fleet_is_mostly_healthy() -> None:
    with_ready = [ready(o) for _, o in fleet() if ready(o) is not None]
    healthy = sum(1 for c in with_ready if c and c["status"] == "True")
    assert 0.8 <= healthy / len(with_ready) <= 0.95


def test_hex_values_look_random() -> None:
    for path in demo_paths():
        text = path.read_text(encoding="utf-8")
        values = re.findall(r"sha1:([0-9a-f]+)", text) + re.findall(r"sha256:([0-9a-f]+)", text)
        assert values
        for value in values:
            assert len(value) in (40, 64), value
            assert len(set(value)) >= 10, f"{value} does not look random"
            assert not re.search(r"(.)\1{4}", value), f"{value} does not look random"
        # Two different artifacts never have the same content digest.
        digests = Counter(
            status(o)["artifact"]["digest"] for o in items(path) if "artifact" in status(o)
        )
        assert max(digests.values()) == 1


def test_the_demo_loads_through_the_offline_reader() -> None:
    from bot.offline import load_dump

    for env, names in CLUSTERS.items():
        for name in names:
            path = DEMO / env / f"{name}.yaml"
            loaded = load_dump(path, env)
            assert loaded.name == name
            assert len(loaded.objects) == len(items(path))


def test_dev_eu_1_image_automation_cannot_push() -> None:
    objects = by_cluster("dev-eu-1")
    policy = objects[("ImagePolicy", "flux-system", "podinfo")]
    assert status(policy)["latestRef"] == {"name": "ghcr.io/stefanprodan/podinfo", "tag": "6.7.1"}
    assert ready_status(objects[("ImageRepository", "flux-system", "podinfo")]) == "True"
    automation = objects[("ImageUpdateAutomation", "flux-system", "flux-system")]
    rd = ready(automation)
    assert rd is not None
    assert (rd["status"], rd["reason"]) == ("False", "GitOperationFailed")
    assert "protected branch hook declined" in rd["message"]


def test_staging_eu_1_external_artifact_comes_from_its_generator() -> None:
    objects = by_cluster("staging-eu-1")
    artifact = objects[("ExternalArtifact", "flux-system", "frontend")]
    generator = objects[("ArtifactGenerator", "flux-system", "apps")]
    assert artifact["spec"]["sourceRef"]["kind"] == "ArtifactGenerator"
    (generated,) = status(generator)["inventory"]
    assert generated["digest"] == status(artifact)["artifact"]["digest"]
    revision = status(artifact)["artifact"]["revision"]
    assert revision == f"latest@{generated['digest']}"
    # source-watcher writes the ExternalArtifact itself: it carries no kustomize owner labels.
    assert "labels" not in artifact["metadata"]


@pytest.mark.parametrize("path", FILES)
def test_inventories_list_what_each_kustomization_applied(path: Path) -> None:
    """kustomize-controller labels what it applies and records it in status.inventory; so
    does helm-controller (Flux 2.8+) for a HelmRelease's manifests. `tree` reads these."""
    objects = index(path)

    def entry_id(obj: Obj) -> str:
        kind, ns, name = key(obj)
        return f"{ns}_{name}_{obj['apiVersion'].split('/')[0]}_{kind}"

    inventories = {
        k: [e["id"] for e in status(o)["inventory"]["entries"]]
        for k, o in objects.items()
        if "inventory" in status(o) and k[0] in ("Kustomization", "HelmRelease")
    }
    for ids in inventories.values():
        assert ids == sorted(ids), "the controllers keep entries sorted by id"
    for obj in objects.values():
        labels = obj["metadata"].get("labels") or {}
        if owner := labels.get("kustomize.toolkit.fluxcd.io/name"):
            owner_key = ("Kustomization", labels["kustomize.toolkit.fluxcd.io/namespace"], owner)
            assert entry_id(obj) in inventories[owner_key], label(obj)
    flux_ids = {entry_id(o) for o in objects.values()}
    for ids in inventories.values():
        for entry in ids:
            if ".fluxcd.io_" in entry:
                assert entry in flux_ids, entry
    for (kind, _, _), obj in objects.items():
        if kind == "HelmRelease" and any(
            s["status"] in ("deployed", "superseded") for s in status(obj).get("history", [])
        ):
            assert status(obj)["inventory"]["entries"], label(obj)
