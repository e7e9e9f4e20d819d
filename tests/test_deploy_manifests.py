"""deploy/: every manifest parses and validates, kustomizations hold together, the pod runs
under the restricted profile, and RBAC grants exactly what fluxbot's code uses.

Kubernetes objects are validated against the Kubernetes OpenAPI schemas (strict: unknown
fields are errors) with `kubernetes-validate`, Flux objects against the real Flux CRDs in
tests/fixtures/flux-crds. Kustomize is not needed: references are checked file by file and
patches are merged here; when a kustomize binary (or kubectl) is on PATH, every overlay is
also built with it and its output validated.

The reader ClusterRole is compared with what fluxbot actually asks of an API server: its
reading paths (the watch cache, `get` with Events, the one-shot reader) run against fake API
servers, and the (verb, group, resource) of every request they log is what the code uses.
"""

from __future__ import annotations

import copy
import datetime as dt
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as kubernetes_validate

from bot.commands.answers import ObjectAnswer
from bot.commands.executor import CommandRunner
from bot.config import ClusterConfig, FluxbotConfig, KubernetesSettings, parse_config
from bot.domain.kinds import KINDS
from bot.kube.cache import FleetCache
from bot.kube.clients import build_api_client
from bot.kube.reader import KubeFleetReader
from tests.fakes import crds
from tests.fakes.kube_api import (
    DEFAULT_KUBE_VERSION,
    FakeFleet,
    FakeKubeApiServer,
    RequestRecord,
)
from tests.fakes.kubeconfig import write_kubeconfig
from tests.flux_objects import flux_object

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "base"
# The Kubernetes version whose schemas the manifests must satisfy: the fake API servers'.
K8S_VERSION = DEFAULT_KUBE_VERSION.lstrip("v")
KUSTOMIZE_GROUP = "kustomize.config.k8s.io"
FLUX_SUFFIX = ".toolkit.fluxcd.io"
# Files in a kustomization directory that are deliberately not resources.
NOT_RESOURCES = {
    BASE / "secret.example.yaml": "a template: real Slack tokens never go into Git",
    BASE / "fluxbot.yaml": "fluxbot's configuration, the source of configMapGenerator",
}
FLUX_RESOURCES = {(k.group, k.plural) for k in KINDS}
# Kinds Flux offers reconcile, suspend or resume for (not ExternalArtifact, ArtifactGenerator).
ACTIONABLE_RESOURCES = {(k.group, k.plural) for k in KINDS if k.actions}

Triple = tuple[str, str, str]  # (verb, apiGroup, resource)


@dataclass(frozen=True)
class Doc:
    """One YAML document of a file under deploy/."""

    path: Path
    index: int
    body: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}#{self.index}"

    @property
    def group(self) -> str:
        api_version = str(self.body.get("apiVersion", ""))
        return api_version.rsplit("/", 1)[0] if "/" in api_version else ""

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name", ""))


def _yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def _load(path: Path) -> list[Doc]:
    docs = yaml.safe_load_all(path.read_text(encoding="utf-8"))
    return [Doc(path, i, d) for i, d in enumerate(docs) if d is not None]


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    return [doc for path in _yaml_files() for doc in _load(path)]


def _kustomizations() -> list[Doc]:
    return [doc for path in sorted(DEPLOY.rglob("kustomization.yaml")) for doc in _load(path)]


def _patch_files() -> set[Path]:
    return {
        (k.path.parent / p["path"]).resolve()
        for k in _kustomizations()
        for p in k.body.get("patches") or []
        if "path" in p
    }


def _is_kubernetes_object(doc: Doc) -> bool:
    return (
        "apiVersion" in doc.body
        and "kind" in doc.body
        and doc.group != KUSTOMIZE_GROUP
        and not doc.group.endswith(FLUX_SUFFIX)
    )


def _schema_errors(body: dict[str, Any]) -> str | None:
    try:
        kubernetes_validate.validate(body, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path) or "<root>"
        return f"{path}: {err.message}"
    except kubernetes_validate.SchemaNotFoundError as err:
        return err.message
    return None


# -- parsing and schemas ------------------------------------------------------------------


def test_every_manifest_under_deploy_parses(docs: list[Doc]) -> None:
    files = _yaml_files()
    assert len(files) >= 20
    for path in files:
        loaded = _load(path)
        assert loaded, f"{path.relative_to(ROOT)} has no document"
        for doc in loaded:
            assert isinstance(doc.body, dict), f"{doc.where} is not a mapping"


def test_kubernetes_objects_validate_against_the_openapi_schemas(docs: list[Doc]) -> None:
    patches = _patch_files()
    objects = [d for d in docs if _is_kubernetes_object(d) and d.path not in patches]
    assert len(objects) >= 15
    problems = [f"{d.where} {d.kind}: {e}" for d in objects if (e := _schema_errors(d.body))]
    assert problems == []


def test_patched_objects_validate_too() -> None:
    for patch_path in sorted(_patch_files()):
        (patch,) = _load(patch_path)
        merged = strategic_merge(_base_object(patch), patch.body)
        assert _schema_errors(merged) is None, patch.where
        if patch.kind == "Deployment":
            assert_restricted(merged)


def test_flux_objects_validate_against_the_flux_crds(docs: list[Doc]) -> None:
    flux = [d for d in docs if d.group.endswith(FLUX_SUFFIX)]
    assert {d.kind for d in flux} == {"GitRepository", "Kustomization"}
    for doc in flux:
        assert crds.validate(doc.body) == [], doc.where
    (kustomization,) = [d for d in flux if d.kind == "Kustomization"]
    (source,) = [d for d in flux if d.kind == "GitRepository"]
    spec = kustomization.body["spec"]
    assert spec["sourceRef"] == {"kind": "GitRepository", "name": source.name}
    assert (ROOT / spec["path"] / "kustomization.yaml").is_file()
    assert spec["prune"] is True
    assert spec["wait"] is True


# -- kustomize, without kustomize ---------------------------------------------------------


def test_every_kustomization_reference_exists() -> None:
    kustomizations = _kustomizations()
    assert len(kustomizations) >= 8
    for doc in kustomizations:
        here = doc.path.parent
        assert doc.group == KUSTOMIZE_GROUP, doc.where
        assert doc.kind in ("Kustomization", "Component"), doc.where
        for entry in doc.body.get("resources") or []:
            target = (here / entry).resolve()
            assert target.is_file() or (target / "kustomization.yaml").is_file(), (
                f"{doc.where}: resource {entry} does not exist"
            )
        for entry in doc.body.get("components") or []:
            (component,) = _load((here / entry / "kustomization.yaml").resolve())
            assert component.kind == "Component", f"{doc.where}: {entry} is not a Component"
        for patch in doc.body.get("patches") or []:
            assert (here / patch["path"]).is_file(), f"{doc.where}: patch {patch} is missing"
        for generator in doc.body.get("configMapGenerator") or []:
            for file in generator.get("files") or []:
                assert (here / file.split("=")[-1]).is_file(), f"{doc.where}: {file} missing"


def test_no_file_in_a_kustomization_is_forgotten() -> None:
    for doc in _kustomizations():
        here = doc.path.parent
        used = {
            (here / p).resolve()
            for key in ("resources", "components")
            for p in doc.body.get(key) or []
        }
        used |= {(here / p["path"]).resolve() for p in doc.body.get("patches") or []}
        for path in sorted(here.glob("*.yaml")):
            if path.name == "kustomization.yaml" or path in NOT_RESOURCES:
                continue
            assert path in used, f"{path.relative_to(ROOT)} is in no kustomization"


def test_the_secret_template_is_never_deployed() -> None:
    template = BASE / "secret.example.yaml"
    for doc in _kustomizations():
        for entry in doc.body.get("resources") or []:
            assert (doc.path.parent / entry).resolve() != template, doc.where
    (secret,) = _load(template)
    values = secret.body["stringData"].values()
    assert all(v.startswith("REPLACE-WITH-") for v in values), "placeholders only"


def test_patches_target_objects_that_exist() -> None:
    for patch_path in sorted(_patch_files()):
        (patch,) = _load(patch_path)
        assert _base_object(patch)["kind"] == patch.kind


def _base_object(patch: Doc) -> dict[str, Any]:
    """The base object a patch applies to (same kind, name and namespace)."""
    key = (patch.kind, patch.name, patch.body["metadata"].get("namespace"))
    for path in sorted(BASE.glob("*.yaml")):
        for doc in _load(path):
            if (doc.kind, doc.name, doc.body["metadata"].get("namespace")) == key:
                return copy.deepcopy(doc.body)
    raise AssertionError(f"{patch.where}: no {key} in deploy/base")


def strategic_merge(base: Any, patch: Any) -> Any:
    """A strategic merge patch as kustomize applies ours: maps merge, lists of named items
    merge by name, other values are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = strategic_merge(base[key], value) if key in base else value
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in [*base, *patch])
    ):
        merged = {item["name"]: item for item in base}
        for item in patch:
            merged[item["name"]] = strategic_merge(merged.get(item["name"], {}), item)
        return list(merged.values())
    return patch


def test_kustomize_builds_every_overlay_into_valid_objects(tmp_path: Path) -> None:
    """With a kustomize binary (or kubectl) on PATH: the real build of every overlay, and of
    one that adds every opt-in component."""
    kustomize = shutil.which("kustomize")
    kubectl = shutil.which("kubectl")
    if not (kustomize or kubectl):
        pytest.skip("no kustomize or kubectl on PATH; references were checked file by file")
    tree = tmp_path / "deploy"
    shutil.copytree(DEPLOY, tree)
    everything = tree / "overlays" / "everything"
    everything.mkdir()
    (everything / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": ["../http"],
                "components": [
                    "../../rbac/remediation",
                    "../../rbac/configmap-history",
                    "../../rbac/access-review",
                    "../../remote-clusters/kubeconfig-mount",
                ],
            }
        )
    )
    roots = ["overlays/socket-mode", "overlays/http", "overlays/everything", "remote-clusters"]
    built: dict[str, list[dict[str, Any]]] = {}
    for root in roots:
        command = [kustomize, "build"] if kustomize else [str(kubectl), "kustomize"]
        result = subprocess.run(
            [*command, str(tree / root)], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, f"{root}: {result.stderr}"
        built[root] = [d for d in yaml.safe_load_all(result.stdout) if d]
        for obj in built[root]:
            assert _schema_errors(obj) is None, f"{root}: {obj['kind']}/{obj['metadata']['name']}"
            if obj["kind"] == "Deployment":
                assert_restricted(obj)
    kinds = {root: sorted(o["kind"] for o in objs) for root, objs in built.items()}
    assert "Service" not in kinds["overlays/socket-mode"]
    assert {"Service", "NetworkPolicy"} <= set(kinds["overlays/http"])
    (deployment,) = [o for o in built["overlays/everything"] if o["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["serve", "--http", "--port", "3000"]
    assert container["image"] == "registry.example.com/fluxbot:0.1.0"
    (config_map,) = [o for o in built["overlays/http"] if o["kind"] == "ConfigMap"]
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"name": "config", "configMap": {"name": config_map["metadata"]["name"]}} in volumes
    assert parse_config(config_map["data"]["fluxbot.yaml"])
    roles = {
        o["metadata"]["name"] for o in built["overlays/everything"] if o["kind"] == "ClusterRole"
    }
    assert roles == {
        "fluxbot-reader",
        "fluxbot-remediation",
        "fluxbot-access-review",
    }


# -- the pod ------------------------------------------------------------------------------


def _deployment() -> dict[str, Any]:
    (doc,) = _load(BASE / "deployment.yaml")
    return doc.body


def assert_restricted(deployment: dict[str, Any]) -> None:
    """The restricted Pod Security Standard, and fluxbot's own rules on top of it."""
    pod = deployment["spec"]["template"]["spec"]
    pod_security = pod["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == 10001
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork")
    assert not pod.get("hostPID")
    assert not pod.get("hostIPC")
    for volume in pod["volumes"]:
        assert set(volume) - {"name"} <= {"configMap", "secret", "emptyDir", "projected"}
    for container in pod["containers"] + pod.get("initContainers", []):
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security.get("runAsUser", 10001) == 10001
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security.get("privileged", False) is False
        assert security.get("seccompProfile", pod_security["seccompProfile"]) == {
            "type": "RuntimeDefault"
        }
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"])
        assert "memory" in resources["limits"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]], "/tmp is writable scratch space"
        for path, mount in mounts.items():
            writable = not mount.get("readOnly", False)
            assert not writable or "emptyDir" in volumes[mount["name"]], (
                f"{path}: the only writable mounts are emptyDirs"
            )
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["health"] == 8080


def test_the_deployment_runs_under_the_restricted_profile() -> None:
    assert_restricted(_deployment())
    (namespace,) = _load(BASE / "namespace.yaml")
    assert namespace.body["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "restricted"
    )


def test_configuration_comes_from_the_config_map_and_secrets_from_the_secret() -> None:
    pod = _deployment()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    config_volume = next(v for v in pod["volumes"] if "configMap" in v)
    (kustomization,) = _load(BASE / "kustomization.yaml")
    (generator,) = kustomization.body["configMapGenerator"]
    assert config_volume["configMap"]["name"] == generator["name"]
    assert mounts[config_volume["name"]]["mountPath"] == "/etc/fluxbot/fluxbot.yaml"
    assert mounts[config_volume["name"]]["readOnly"] is True
    assert env["FLUXBOT_CONFIG"]["value"] == "/etc/fluxbot/fluxbot.yaml"
    assert env["FLUXBOT_HEALTH_PORT"]["value"] == "8080"
    (secret,) = _load(BASE / "secret.example.yaml")
    template = (BASE / "secret.example.yaml").read_text()
    secrets = {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "FLUXBOT_BUTTON_KEY"}
    # Never as variables (their values would stay in /proc/PID/environ): as mounted files.
    assert not secrets & set(env)
    assert not [n for n, e in env.items() if "secretKeyRef" in e.get("valueFrom", {})]
    secret_volume = next(v for v in pod["volumes"] if "secret" in v)
    assert secret_volume["secret"]["secretName"] == secret.name
    assert secret_volume["secret"].get("optional") is not True  # the bot token is required
    assert secret_volume["secret"]["defaultMode"] == 0o440
    mount = mounts[secret_volume["name"]]
    assert mount["readOnly"] is True
    for name in secrets:
        assert env[f"{name}_FILE"]["value"] == f"{mount['mountPath']}/{name}"
        assert f"{name}: REPLACE-WITH-" in template, f"the template explains {name}"


def test_the_example_configuration_is_valid_and_reads_its_own_cluster() -> None:
    config = parse_config((BASE / "fluxbot.yaml").read_text(), source="deploy/base/fluxbot.yaml")
    clusters = [c for env in config.environments.values() for c in env.clusters]
    assert any(c.in_cluster for c in clusters)


def test_the_http_overlay_opens_only_what_it_needs() -> None:
    overlay = DEPLOY / "overlays" / "http"
    (policy,) = _load(overlay / "networkpolicy.yaml")
    spec = policy.body["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    ingress = {p["port"] for rule in spec["ingress"] for p in rule["ports"]}
    egress = {(p["port"], p["protocol"]) for rule in spec["egress"] for p in rule["ports"]}
    assert ingress == {3000, 8080}
    # Slack's port only from the ingress controller: nothing else can reach the listener.
    (slack_rule,) = [r for r in spec["ingress"] if any(p["port"] == 3000 for p in r["ports"])]
    assert [p["port"] for p in slack_rule["ports"]] == [3000]
    (peer,) = slack_rule["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "ingress-nginx"}
    assert {(53, "UDP"), (53, "TCP"), (443, "TCP")} <= egress
    (service,) = _load(overlay / "service.yaml")
    assert [p["port"] for p in service.body["spec"]["ports"]] == [3000]
    assert not (DEPLOY / "overlays" / "socket-mode" / "service.yaml").exists()


# -- RBAC ---------------------------------------------------------------------------------


def _rules(path: Path, kind: str = "ClusterRole") -> set[Triple]:
    (role,) = [d for d in _load(path) if d.kind == kind]
    return {
        (verb, group, resource)
        for rule in role.body["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


_DISCOVERY_PATHS = ("/api", "/apis", "/version")


def request_triple(record: RequestRecord) -> Triple | None:
    """(verb, apiGroup, resource) of a logged request; None for API discovery."""
    segments = [s for s in record.path.split("/") if s]
    if segments[:1] == ["api"]:
        group, rest = "", segments[2:]
    elif segments[:1] == ["apis"]:
        group, rest = (segments[1] if len(segments) > 1 else ""), segments[3:]
    else:
        rest = []
    if not rest:
        assert record.path.startswith(_DISCOVERY_PATHS), f"unexpected request {record.path}"
        return None  # discovery: allowed to every authenticated user (system:discovery)
    if rest[0] == "namespaces" and len(rest) >= 3:
        rest = rest[2:]
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    named = len(rest) > 1
    watch = record.query.get("watch", "").lower() in ("true", "1")
    verbs = {
        ("GET", False): "watch" if watch else "list",
        ("GET", True): "get",
        ("POST", False): "create",
        ("PUT", True): "update",
        ("PATCH", True): "patch",
        ("DELETE", True): "delete",
        ("DELETE", False): "deletecollection",
    }
    return verbs[(record.method, named)], group, resource


@pytest.fixture(scope="module")
def used_by_the_code(tmp_path_factory: pytest.TempPathFactory) -> set[Triple]:
    """What fluxbot's reading paths ask of an API server, from the fakes' request logs."""
    fleet = FakeFleet(["prod-eu-1", "prod-us-1"])
    with fleet:
        for server in fleet:
            server.apply_many(
                [
                    flux_object("GitRepository", "flux-system"),
                    flux_object("OCIRepository", "manifests"),
                    flux_object("HelmRepository", "podinfo"),
                    flux_object("HelmChart", "flux-apps-podinfo"),
                    flux_object("Bucket", "fleet"),
                    flux_object("Kustomization", "apps"),
                    flux_object("HelmRelease", "podinfo"),
                    flux_object("ImageRepository", "podinfo"),
                    flux_object("ImagePolicy", "podinfo"),
                    flux_object("ImageUpdateAutomation", "flux-system"),
                    flux_object("Receiver", "github"),
                    flux_object("Provider", "slack"),
                    flux_object("Alert", "on-call"),
                    flux_object("ExternalArtifact", "apps"),
                    flux_object("ArtifactGenerator", "apps"),
                ]
            )
        kubeconfig = fleet.write_kubeconfig(tmp_path_factory.mktemp("rbac") / "kubeconfig")
        config = FluxbotConfig.model_validate(
            {
                "kubernetes": {"kubeconfig": str(kubeconfig), "request_timeout_seconds": 5},
                "environments": {
                    "production": {
                        "channel": "C0PROD",
                        "clusters": [{"context": name} for name in fleet.servers],
                    }
                },
            }
        )
        layout = config.layout()

        # The watch cache (`fluxbot serve`, `fluxbot shell --config`): list, then watch.
        cache = FleetCache(config).start()
        try:
            assert cache.wait_synced(15)
            for server in fleet:
                server.wait_for_watches(len(KINDS), timeout=10)
            # `get` reads the object's Events from the cluster.
            answer = CommandRunner(layout, cache).handle("get ks apps --env production")
            assert isinstance(answer, ObjectAnswer)
            assert len(answer.matches) == 2
        finally:
            cache.stop()

        # The one-shot reader (`fluxbot status`), and `get` through it.
        reader = KubeFleetReader(config)
        try:
            statuses = reader.read(layout.targets())
            assert all(len(s.objects) == len(KINDS) and not s.problems for s in statuses)
            answer = CommandRunner(layout, reader).handle("get hr podinfo --env production")
            assert isinstance(answer, ObjectAnswer)
        finally:
            reader.close()

        records = [r for server in fleet for r in server.requests()]
    refused = [(r.method, r.path, r.status) for r in records if (r.status or 0) >= 400]
    assert refused == [], "the fakes refused nothing"
    return {t for r in records if (t := request_triple(r)) is not None}


def test_the_reader_role_grants_exactly_what_the_code_uses(used_by_the_code: set[Triple]) -> None:
    granted = _rules(BASE / "clusterrole.yaml")
    # The fake run did exercise every kind, watches and Events.
    assert {(g, r) for _, g, r in used_by_the_code} == FLUX_RESOURCES | {("", "events")}
    assert {v for v, _, _ in used_by_the_code} == {"list", "watch"}
    missing = used_by_the_code - granted
    assert not missing, f"fluxbot uses these, the ClusterRole does not grant them: {missing}"
    # Leases (leader-election.yaml) are a separate, namespaced Role: not used by code yet.
    unused = granted - used_by_the_code
    assert not unused, f"the ClusterRole grants what fluxbot never uses: {unused}"


def test_remote_clusters_get_the_same_read_only_rules() -> None:
    assert _rules(DEPLOY / "remote-clusters" / "clusterrole.yaml") == _rules(
        BASE / "clusterrole.yaml"
    )
    (token,) = _load(DEPLOY / "remote-clusters" / "token.yaml")
    assert token.body["type"] == "kubernetes.io/service-account-token"
    (account,) = _load(DEPLOY / "remote-clusters" / "serviceaccount.yaml")
    annotation = token.body["metadata"]["annotations"]["kubernetes.io/service-account.name"]
    assert annotation == account.name
    (binding,) = _load(DEPLOY / "remote-clusters" / "clusterrolebinding.yaml")
    assert binding.body["subjects"] == [
        {"kind": "ServiceAccount", "name": account.name, "namespace": "fluxbot"}
    ]


def test_the_base_grants_nothing_on_secrets_and_no_wildcards(docs: list[Doc]) -> None:
    roles = [d for d in docs if d.kind in ("Role", "ClusterRole")]
    assert len(roles) >= 6
    for role in roles:
        for rule in role.body["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(key, []), f"{role.where}: wildcard {key}"
            assert "nonResourceURLs" not in rule, role.where
            if role.path.is_relative_to(BASE):
                assert "secrets" not in rule["resources"], f"{role.where}: Secrets"


def test_leader_election_is_granted_exactly_what_the_elector_uses(tmp_path: Path) -> None:
    """The elector creates the Lease, renews it, and releases it on the way out."""
    lease = pytest.importorskip("bot.kube.lease", reason="leader election is not in the code")
    path = BASE / "leader-election.yaml"
    (role,) = [d for d in _load(path) if d.kind == "Role"]
    namespace = role.body["metadata"]["namespace"]
    assert namespace == "fluxbot"
    with FakeKubeApiServer("home") as server:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"home": (server.url, server.token)})
        api_client = build_api_client(
            ClusterConfig(kubeconfig=kubeconfig, context="home"), KubernetesSettings()
        )
        elector = lease.LeaderElector(
            api_client, namespace, "fluxbot-leader", "pod-a", 1, 0.1, 0.05
        )
        try:
            elector.start()
            deadline = time.monotonic() + 10
            while len(server.requests("PUT")) < 2:  # renewed at least twice
                assert time.monotonic() < deadline, "the elector did not renew its Lease"
                time.sleep(0.01)
            assert elector.is_leader
        finally:
            elector.stop(release=True)
            api_client.close()
        records = server.requests()
    assert all(
        r.path.startswith(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/") for r in records
    )
    used = {t for r in records if (t := request_triple(r)) is not None}
    assert used == _rules(path, kind="Role")


def test_the_configmap_history_is_granted_exactly_what_it_uses(tmp_path: Path) -> None:
    """Two replicas' history stores: load, create a shard, re-read and update it."""
    history = pytest.importorskip(
        "bot.history.configmap", reason="the ConfigMap history is not in the code"
    )
    path = DEPLOY / "rbac" / "configmap-history" / "role.yaml"
    (role,) = [d for d in _load(path) if d.kind == "Role"]
    namespace = role.body["metadata"]["namespace"]
    with FakeKubeApiServer("home") as server:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"home": (server.url, server.token)})
        clients = [
            build_api_client(
                ClusterConfig(kubeconfig=kubeconfig, context="home"), KubernetesSettings()
            )
            for _ in range(2)
        ]
        stores = [
            history.ConfigMapHistory(
                client, namespace, flush_seconds=0, retention=dt.timedelta(days=8), follow=True
            )
            for client in clients
        ]
        now = dt.datetime.now(dt.UTC)
        try:
            server.wait_for_watches(count=2, timeout=5)
            assert stores[0].claim_run("production", now, now)
            assert stores[1].claim_run("production", now + dt.timedelta(minutes=1), now)
        finally:
            for store in stores:
                store.close()
            for client in clients:
                client.close()
        records = server.requests()
    prefix = f"/api/v1/namespaces/{namespace}/configmaps"
    assert all(r.path.startswith(prefix) for r in records)
    used = {t for r in records if (t := request_triple(r)) is not None}
    assert used == _rules(path, kind="Role")


def test_every_binding_binds_an_existing_role_to_fluxbot(docs: list[Doc]) -> None:
    roles = {(d.kind, d.name, d.path.parent) for d in docs if d.kind in ("Role", "ClusterRole")}
    bindings = [d for d in docs if d.kind in ("RoleBinding", "ClusterRoleBinding")]
    assert len(bindings) >= 6
    for binding in bindings:
        ref = binding.body["roleRef"]
        assert (ref["kind"], ref["name"], binding.path.parent) in roles, binding.where
        (subject,) = binding.body["subjects"]
        assert subject["kind"] == "ServiceAccount"
        assert subject["namespace"] == "fluxbot"
        assert subject["name"] in ("fluxbot", "fluxbot-reader")


def test_opt_in_components_grant_only_their_purpose() -> None:
    rbac = DEPLOY / "rbac"
    assert _rules(rbac / "remediation" / "clusterrole.yaml") == {
        (verb, group, plural) for group, plural in ACTIONABLE_RESOURCES for verb in ("get", "patch")
    } | {("create", "", "events")}
    # fluxbot checks a Slack user's Kubernetes rights with SubjectAccessReviews and acts with
    # its own identity, so it never needs to impersonate anyone.
    assert not (rbac / "impersonation").exists()
    assert _rules(rbac / "configmap-history" / "role.yaml", kind="Role") == {
        (verb, "", "configmaps") for verb in ("get", "list", "watch", "create", "update")
    }
    assert _rules(rbac / "access-review" / "clusterrole.yaml") == {
        ("create", "authorization.k8s.io", "subjectaccessreviews")
    }
