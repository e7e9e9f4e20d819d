"""A simulated Flux: source-, kustomize- and helm-controller as their source code behaves.

One simulator for the live demo (`fluxbot serve --demo`) and the tests' fake API servers, so
neither is kinder than Flux. It works on objects as the API server returns them (dicts) through
a small `Store`, and follows the upstream controllers (Flux v2.9; files named per rule):

- Every controller copies `reconcile.fluxcd.io/requestedAt` into `status.lastHandledReconcileAt`
  in its deferred status patch, so also when the object is suspended: a suspended object
  "handles" the token and does nothing (kustomize-controller
  internal/controller/kustomization_controller.go finalizeStatus; helm-controller
  internal/controller/helmrelease_controller.go Reconcile; source-controller
  internal/reconcile/summarize RecordReconcileReq).
- kustomize-controller advances `status.observedGeneration` only when Ready is True
  (finalizeStatus); a failure keeps `Reconciling` with reason ProgressingWithRetry.
  helm-controller advances it only when the reconcile returned no error (its deferred patch
  passes WithStatusObservedGeneration only then; a suspended object returns none).
- Conditions carry their own `observedGeneration`, always the object's generation when set
  (fluxcd/pkg runtime/conditions/setter.go).
- OCI HelmRepositories are static: source-controller migrates them and never reconciles them
  (internal/controller/helmrepository_controller.go), so they never record a token.
- helm-controller's history (api/v2/snapshot_types.go, internal/reconcile/*.go): snapshots
  newest first; a failed upgrade prepends a `failed` snapshot; failed test hooks are recorded on
  a `deployed` snapshot; the automatic rollback (upgrade.remediation.retries > 0, strategy
  rollback) prepends a new snapshot for the rollback release (rollback_remediation.go
  observeRollback) and Ready becomes False with reason RollbackSucceeded; `Previous` skips
  releases whose tests failed unless test failures are ignored.
- A successful Kustomization applies what "Git" declares for the objects it manages (label
  `kustomize.toolkit.fluxcd.io/name`), except objects annotated
  `kustomize.toolkit.fluxcd.io/reconcile: disabled` (fluxcd/pkg ssa: skipped when applying).
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from bot.simulation.apiserver import merge_patch

REQUESTED_AT: Final = "reconcile.fluxcd.io/requestedAt"
FORCE_AT: Final = "reconcile.fluxcd.io/forceAt"
RESET_AT: Final = "reconcile.fluxcd.io/resetAt"
RECONCILE_ANNOTATION: Final = "kustomize.toolkit.fluxcd.io/reconcile"
OWNER_NAME: Final = "kustomize.toolkit.fluxcd.io/name"
OWNER_NAMESPACE: Final = "kustomize.toolkit.fluxcd.io/namespace"
SOURCE_KINDS: Final = frozenset(
    {"GitRepository", "OCIRepository", "HelmRepository", "HelmChart", "Bucket"}
)
# What a chart version does when helm-controller installs it (see `Charts`).
MISSING, UPGRADE_FAILS, TESTS_FAIL = "missing", "upgrade-fails", "tests-fail"

Key = tuple[str, str, str]
# source-controller's Ready messages after storing an artifact, per kind.
_STORED: Final = {
    "GitRepository": "stored artifact for revision '{}'",
    "OCIRepository": "stored artifact for digest '{}'",
    "HelmRepository": "stored artifact: revision '{}'",
    "HelmChart": "pulled '{chart}' chart with version '{}'",
    "Bucket": "stored artifact for revision '{}'",
}


class Store(Protocol):
    """Where the simulated controllers read objects and write their status."""

    def objects(self) -> Iterable[dict[str, Any]]:
        """Every object (copies)."""
        ...

    def find(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One object (a copy), or None."""
        ...

    def write_status(self, obj: dict[str, Any], status: dict[str, Any]) -> None:
        """Replace the object's status, as a controller's status patch does."""
        ...

    def write_spec(self, obj: dict[str, Any], spec: dict[str, Any]) -> None:
        """Replace the object's spec (a Kustomization applying Git); bumps the generation."""
        ...


@dataclass
class Git:
    """What the repository declares: object spec fields by (kind, namespace, name)."""

    specs: dict[Key, dict[str, Any]] = field(default_factory=dict)


@dataclass
class FluxSimulator:
    """The controllers of one cluster. Call `step()` whenever objects may have changed."""

    store: Store
    # (kind, namespace, name) -> message: reconciles of these objects fail (a problem in Git
    # or a registry that a retry does not fix); the Ready reason they had is kept.
    failures: dict[Key, str] = field(default_factory=dict)
    # Chart version -> MISSING | UPGRADE_FAILS | TESTS_FAIL; any other version installs fine.
    charts: dict[str, str] = field(default_factory=dict)
    # (kind, namespace, name) of a HelmRelease -> (chart version, message): upgrading that
    # release to that version fails with that message (another version is fine).
    release_failures: dict[Key, tuple[str, str]] = field(default_factory=dict)
    git: Git = field(default_factory=Git)
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    on_handled: Callable[[dict[str, Any]], None] | None = None
    _seen: dict[Key, tuple[int, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # What is stored now is the controllers' last word: only later changes are work.
        for obj in self.store.objects():
            self._seen[_key(obj)] = _trigger(obj)

    def step(self) -> list[Key]:
        """Reconcile every object with a new request token or a new generation."""
        handled = []
        with self._lock:
            for obj in self.store.objects():
                key = _key(obj)
                if key[0] not in SOURCE_KINDS | {"Kustomization", "HelmRelease"}:
                    continue
                if _is_static(obj) or self._seen.get(key) == _trigger(obj):
                    continue
                self._seen[key] = _trigger(obj)
                self.reconcile(obj)
                handled.append(key)
        return handled

    def pending(self) -> list[dict[str, Any]]:
        """Objects with work the controllers have not done yet."""
        with self._lock:
            return self._pending()

    def _pending(self) -> list[dict[str, Any]]:
        return [
            o
            for o in self.store.objects()
            if o.get("kind") in SOURCE_KINDS | {"Kustomization", "HelmRelease"}
            and not _is_static(o)
            and self._seen.get(_key(o)) != _trigger(o)
        ]

    def reconcile(self, obj: dict[str, Any]) -> None:
        """One reconcile of one object, as its controller does it."""
        status = copy.deepcopy(obj.get("status") or {})
        token = _annotations(obj).get(REQUESTED_AT)
        # Recorded in the deferred patch, before (and whatever) the suspend check returns.
        if token:
            status["lastHandledReconcileAt"] = token
        kind = obj["kind"]
        if kind == "Kustomization":
            self._kustomization(obj, status)
        elif kind == "HelmRelease":
            self._helm_release(obj, status)
        else:
            self._source(obj, status)
        self.store.write_status(obj, status)
        if self.on_handled is not None:
            self.on_handled(obj)

    # -- source-controller --

    def _source(self, obj: dict[str, Any], status: dict[str, Any]) -> None:
        if _suspended(obj):
            return
        failure = self.failures.get(_key(obj))
        if failure:
            reason = _failed_reason(status, "GitOperationFailed")
            _mark(status, obj, "Ready", "False", reason, failure, self._now())
            return
        revision = (status.get("artifact") or {}).get("revision", "")
        chart = (obj.get("spec") or {}).get("chart", "")
        message = _STORED[obj["kind"]].format(revision, chart=chart)
        _mark(status, obj, "Ready", "True", "Succeeded", message, self._now())
        _drop(status, "Reconciling", "Stalled")
        status["observedGeneration"] = _generation(obj)

    # -- kustomize-controller --

    def _kustomization(self, obj: dict[str, Any], status: dict[str, Any]) -> None:
        if not _suspended(obj):
            self._apply_kustomization(obj, status)
        # finalizeStatus: observedGeneration only when Ready is True; a failure keeps
        # Reconciling, now with reason ProgressingWithRetry.
        if _condition(status, "Ready").get("status") == "True":
            _drop(status, "Reconciling")
            status["observedGeneration"] = _generation(obj)
        elif _condition(status, "Reconciling"):
            _mark(
                status, obj, "Reconciling", "True", "ProgressingWithRetry",
                _condition(status, "Reconciling").get("message", ""), self._now(),
            )  # fmt: skip

    def _apply_kustomization(self, obj: dict[str, Any], status: dict[str, Any]) -> None:
        now = self._now()
        ref = (obj.get("spec") or {}).get("sourceRef") or {}
        namespace = ref.get("namespace") or obj["metadata"]["namespace"]
        source = self.store.find(ref.get("kind", ""), namespace, ref.get("name", ""))
        revision = ((source or {}).get("status") or {}).get("artifact", {}).get("revision", "")
        if (
            source is not None
            and _condition(source.get("status") or {}, "Ready").get("status") != "True"
        ):
            message = "Source artifact not found, retrying in 30s"
            _mark(status, obj, "Ready", "False", "ArtifactFailed", message, now)
            return
        _mark(status, obj, "Reconciling", "True", "Progressing", "reconciliation in progress", now)
        if revision:
            status["lastAttemptedRevision"] = revision
        failure = self.failures.get(_key(obj))
        if failure:
            reason = _failed_reason(status, "ReconciliationFailed")
            _mark(status, obj, "Ready", "False", reason, failure, now)
            return
        self._apply_git(obj)
        applied = revision or status.get("lastAppliedRevision", "")
        status["lastAppliedRevision"] = applied
        _mark(status, obj, "Ready", "True", "ReconciliationSucceeded",
              f"Applied revision: {applied}", now)  # fmt: skip

    def _apply_git(self, parent: dict[str, Any]) -> None:
        name, namespace = parent["metadata"]["name"], parent["metadata"]["namespace"]
        for child in self.store.objects():
            labels = child["metadata"].get("labels") or {}
            if labels.get(OWNER_NAME) != name or labels.get(OWNER_NAMESPACE) != namespace:
                continue
            declared = self.git.specs.get(_key(child))
            if declared is None:
                continue
            if _annotations(child).get(RECONCILE_ANNOTATION, "").lower() == "disabled":
                continue  # fluxcd/pkg ssa skips objects that opt out of reconciliation
            # Applying Git sets the declared fields and keeps the rest, as a merge patch does.
            spec = merge_patch(child.get("spec") or {}, declared)
            if spec != child.get("spec"):
                self.store.write_spec(child, spec)

    # -- helm-controller --

    def _helm_release(self, obj: dict[str, Any], status: dict[str, Any]) -> None:
        if _suspended(obj):
            # Reconcile returns early without an error: the deferred patch sets
            # observedGeneration, and nothing else changes.
            status["observedGeneration"] = _generation(obj)
            return
        now = self._now()
        meta = obj["metadata"]
        spec = obj.get("spec") or {}
        annotations = _annotations(obj)
        token = annotations.get(REQUESTED_AT, "")
        chart_name, version = self._desired_chart(obj, status)
        if self.charts.get(version) == MISSING:
            message = (
                f"HelmChart '{meta['namespace']}/{meta['namespace']}-{meta['name']}' is not "
                f"ready: invalid chart reference: no '{chart_name}' chart with version "
                f"matching '{version}' found"
            )
            _mark(status, obj, "Ready", "False", "ArtifactFailed", message, now)
            return
        failure = self.failures.get(_key(obj))
        if failure:
            reason = _failed_reason(status, "UpgradeFailed")
            _mark(status, obj, "Ready", "False", reason, failure, now)
            return
        remediation = (spec.get("upgrade") or {}).get("remediation") or {}
        retries = int(remediation.get("retries") or 0)
        history: list[dict[str, Any]] = status.setdefault("history", [])
        generation = _generation(obj)
        # internal/action/reset.go MustResetFailures: a new generation, another chart version
        # or a reset request zeroes the failure counts, so the retries start again.
        if (
            (annotations.get(RESET_AT) == token and token)
            or status.get("lastAttemptedGeneration", status.get("observedGeneration", generation))
            != generation
            or status.get(
                "lastAttemptedRevision", history[0]["chartVersion"] if history else version
            )
            != version
        ):
            status["failures"] = status["upgradeFailures"] = status["installFailures"] = 0
            _drop(status, "Stalled")
        latest = history[0] if history else None
        in_sync = (
            latest is not None
            and latest.get("chartVersion") == version
            and latest.get("status") == "deployed"
            and not _tests_failed(latest)
        )
        forced = bool(token) and annotations.get(FORCE_AT) == token
        if in_sync and not forced:
            assert latest is not None
            _mark(status, obj, "Ready", "True", "UpgradeSucceeded",
                  f"Helm release {meta['namespace']}/{latest['name']}.v{latest['version']} is "
                  "in-sync with the desired state", now)  # fmt: skip
            _drop(status, "Stalled", "Reconciling")
            status["observedGeneration"] = _generation(obj)
            return
        if _condition(status, "Stalled").get("status") == "True" and not forced:
            # Retries exhausted: it waits for a reset, a force or a new generation, saying so
            # again for this generation.
            for type_ in ("Ready", "Stalled"):
                c = _condition(status, type_)
                _mark(status, obj, type_, c["status"], c["reason"], c["message"], now)
            return
        self._upgrade(obj, status, chart_name, version, retries, remediation, now)

    def _upgrade(
        self,
        obj: dict[str, Any],
        status: dict[str, Any],
        chart_name: str,
        version: str,
        retries: int,
        remediation: Mapping[str, Any],
        now: str,
    ) -> None:
        meta = obj["metadata"]
        history: list[dict[str, Any]] = status["history"]
        release = history[0]["name"] if history else meta["name"]
        namespace = (history[0]["namespace"] if history else "") or (
            (obj.get("spec") or {}).get("targetNamespace") or meta["namespace"]
        )
        number = max((int(s.get("version", 0)) for s in history), default=0) + 1
        full = f"{namespace}/{release}.v{number}"
        mode = self.charts.get(version)
        failing = self.release_failures.get(_key(obj))
        if failing is not None and failing[0] == version:
            mode = UPGRADE_FAILS
        status["lastAttemptedGeneration"] = _generation(obj)
        status["lastAttemptedRevision"] = version
        status["lastAttemptedReleaseAction"] = "upgrade" if history else "install"
        snapshot = _snapshot(release, namespace, number, chart_name, version, now)
        _drop(status, "Stalled")
        if mode == UPGRADE_FAILS:
            snapshot["status"] = "failed"
            history.insert(0, snapshot)
            status["failures"] = int(status.get("failures") or 0) + 1
            status["upgradeFailures"] = int(status.get("upgradeFailures") or 0) + 1
            message = (
                failing[1]
                if failing is not None and failing[0] == version
                else f"Helm upgrade failed for release {full} with chart {chart_name}@{version}: "
                "context deadline exceeded"
            )
            _mark(status, obj, "Released", "False", "UpgradeFailed", message, now)
            _mark(status, obj, "Ready", "False", "UpgradeFailed", message, now)
            ignore_tests = bool(remediation.get("ignoreTestFailures") or False)
            previous = previous_snapshot(history, ignore_tests)
            if retries > 0 and remediation.get("strategy", "rollback") == "rollback":
                if previous is None:
                    _mark(status, obj, "Stalled", "True", "MissingRollbackTarget",
                          "Failed to perform remediation: missing target release for "
                          "rollback: cannot remediate failed release", now)  # fmt: skip
                    return
                self._rollback(obj, status, previous, number + 1, now)
            if int(status["upgradeFailures"]) > retries:
                _mark(status, obj, "Stalled", "True", "RetriesExceeded",
                      f"Failed to upgrade after {status['upgradeFailures']} attempt(s)",
                      now)  # fmt: skip
            return
        for older in history:
            if older.get("status") == "deployed":
                older["status"] = "superseded"
        history.insert(0, snapshot)
        if mode == TESTS_FAIL:
            snapshot["testHooks"] = {
                f"{release}-test": {"lastStarted": now, "lastCompleted": now, "phase": "Failed"}
            }
            message = (
                f"Helm test failed for release {full} with chart {chart_name}@{version}: "
                f"1 test hook(s) failed"
            )
            _mark(status, obj, "TestSuccess", "False", "TestFailed", message, now)
            _mark(status, obj, "Ready", "False", "TestFailed", message, now)
            return
        message = f"Helm upgrade succeeded for release {full} with chart {chart_name}@{version}"
        _mark(status, obj, "Released", "True", "UpgradeSucceeded", message, now)
        _mark(status, obj, "Ready", "True", "UpgradeSucceeded", message, now)
        _drop(status, "Remediated", "TestSuccess", "Reconciling")
        status["failures"] = status["upgradeFailures"] = 0
        status["observedGeneration"] = _generation(obj)
        del history[_keep(history) :]

    def _rollback(
        self,
        obj: dict[str, Any],
        status: dict[str, Any],
        previous: dict[str, Any],
        number: int,
        now: str,
    ) -> None:
        """helm-controller's automatic rollback: Helm writes a new release from `previous`."""
        history: list[dict[str, Any]] = status["history"]
        history[0]["status"] = "superseded"
        restored = copy.deepcopy(previous)
        restored.update(version=number, status="deployed", action="rollback", lastDeployed=now)
        restored.pop("testHooks", None)
        history.insert(0, restored)
        release = f"{previous['namespace']}/{previous['name']}.v{previous['version']}"
        chart = f"{previous['chartName']}@{previous['chartVersion']}"
        message = f"Helm rollback to previous release {release} with chart {chart} succeeded"
        _mark(status, obj, "Remediated", "True", "RollbackSucceeded", message, now)
        _mark(status, obj, "Ready", "False", "RollbackSucceeded", message, now)

    def _desired_chart(self, obj: dict[str, Any], status: dict[str, Any]) -> tuple[str, str]:
        spec = obj.get("spec") or {}
        history = status.get("history") or []
        current = history[0] if history else {}
        chart_ref = spec.get("chartRef") or {}
        if chart_ref.get("kind") == "OCIRepository":
            namespace = chart_ref.get("namespace") or obj["metadata"]["namespace"]
            source = self.store.find("OCIRepository", namespace, chart_ref.get("name", ""))
            tag = (((source or {}).get("spec") or {}).get("ref") or {}).get("tag", "")
            name = current.get("chartName") or chart_ref.get("name", "")
            return name, tag or current.get("chartVersion", "")
        template = (spec.get("chart") or {}).get("spec") or {}
        name = template.get("chart") or current.get("chartName", "")
        version = str(template.get("version") or "")
        if not version or any(c in version for c in "x*^~<>| "):
            version = current.get("chartVersion", "") or version
        return name, version

    def _now(self) -> str:
        return self.clock().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def previous_snapshot(
    history: list[dict[str, Any]], ignore_tests: bool = False
) -> dict[str, Any] | None:
    """helm-controller's `Snapshots.Previous`: the newest deployed/superseded release after
    the latest, skipping those whose tests failed unless `ignore_tests`."""
    ordered = sorted(history, key=lambda s: int(s.get("version", 0)), reverse=True)
    for snap in ordered[1:]:
        if snap.get("status") in ("deployed", "superseded") and (
            ignore_tests or not _tests_failed(snap)
        ):
            return snap
    return None


def _tests_failed(snapshot: Mapping[str, Any]) -> bool:
    hooks = snapshot.get("testHooks") or {}
    return any((h or {}).get("phase") == "Failed" for h in hooks.values())


def _keep(history: list[dict[str, Any]]) -> int:
    """How many snapshots to keep: up to and including the previous successful release."""
    for index, snap in enumerate(history[1:], start=1):
        if snap.get("status") in ("deployed", "superseded"):
            return index + 1
    return len(history)


def _snapshot(
    release: str, namespace: str, number: int, chart: str, version: str, now: str
) -> dict[str, Any]:
    digest = "sha256:" + format(abs(hash((release, number, version))), "x").rjust(64, "0")[:64]
    return {
        "version": number,
        "name": release,
        "namespace": namespace,
        "chartName": chart,
        "chartVersion": version,
        "appVersion": version,
        "configDigest": "sha256:" + "c" * 64,
        "digest": digest,
        "firstDeployed": now,
        "lastDeployed": now,
        "status": "deployed",
        "action": "upgrade",
    }


def _trigger(obj: Mapping[str, Any]) -> tuple[int, str]:
    return (_generation(obj), _annotations(obj).get(REQUESTED_AT, ""))


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind", "")), str(meta.get("namespace", "")), str(meta.get("name", "")))


def _generation(obj: Mapping[str, Any]) -> int:
    return int((obj.get("metadata") or {}).get("generation") or 1)


def _annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def _suspended(obj: Mapping[str, Any]) -> bool:
    return (obj.get("spec") or {}).get("suspend") is True


def _is_static(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "HelmRepository" and (obj.get("spec") or {}).get("type") == "oci"


def _condition(status: Mapping[str, Any], type_: str) -> dict[str, Any]:
    for c in status.get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return {}


def _mark(
    status: dict[str, Any],
    obj: Mapping[str, Any],
    type_: str,
    value: str,
    reason: str,
    message: str,
    now: str,
) -> None:
    """fluxcd/pkg conditions.Set: the condition's observedGeneration is the object's."""
    conditions = status.setdefault("conditions", [])
    old = next((c for c in conditions if c.get("type") == type_), None)
    new = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message[:32768],
        "lastTransitionTime": old["lastTransitionTime"]
        if old is not None and old.get("status") == value
        else now,
        "observedGeneration": _generation(obj),
    }
    if old is None:
        conditions.append(new)
    else:
        conditions[conditions.index(old)] = new


def _failed_reason(status: Mapping[str, Any], default: str) -> str:
    ready = _condition(status, "Ready")
    return str(ready.get("reason")) if ready.get("status") == "False" else default


def _drop(status: dict[str, Any], *types: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") not in types]
