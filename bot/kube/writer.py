"""Write to Flux objects the way the Flux CLI does, and leave an audit Event on each."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import urllib.request
from collections.abc import Sequence
from typing import Any, Final

from kubernetes import client as k8s

from bot.domain.action_lease import (
    ACTION_LEASE,
    ActionLease,
    Claim,
    ClaimState,
    claim_patch,
    judge_claim,
    lease_patch,
)
from bot.domain.fleet import ClusterTarget
from bot.domain.kinds import kind_named
from bot.domain.remediation import FIELD_MANAGER
from bot.domain.status import ObjectRef
from bot.kube.cache import ClusterUnavailable, FleetCache
from bot.kube.errors import describe_error

log = logging.getLogger(__name__)

MERGE_PATCH: Final = "application/merge-patch+json"
# The Flux Operator web UI's convention for user actions. notification-controller does not
# watch Kubernetes Events: to reach Flux Alerts the event is also POSTed to its events
# address, as fluxcd/pkg runtime/events (Recorder.AnnotatedEventf) does for the controllers.
AUDIT_REASON: Final = "WebAction"
ACTION_ANNOTATION: Final = "event.toolkit.fluxcd.io/action"
USERNAME_ANNOTATION: Final = "event.toolkit.fluxcd.io/username"
GROUPS_ANNOTATION: Final = "event.toolkit.fluxcd.io/groups"
# A conditional write that meets 409 Conflict reads again this many times at most.
_CONFLICT_RETRIES: Final = 5


class WriteFailed(Exception):
    """A write was refused or failed; the message says why in words."""


class KubeWriter:
    """Patches Flux objects and records Events, through the watch cache's connections."""

    def __init__(self, cache: FleetCache, events_address: str | None = None) -> None:
        self._cache = cache
        self._events_address = events_address

    def patch(self, target: ClusterTarget, ref: ObjectRef, body: dict[str, Any]) -> None:
        """Merge-patch one Flux object as field manager `flux-client-side-apply`."""
        connection, version = self._connect(target, ref)
        kind = kind_named(ref.kind)
        try:
            k8s.CustomObjectsApi(connection.api_client).patch_namespaced_custom_object(
                kind.group,
                version,
                ref.namespace,
                kind.plural,
                ref.name,
                body,
                field_manager=FIELD_MANAGER,
                _content_type=MERGE_PATCH,
                _request_timeout=connection.timeout,
            )
        except Exception as err:
            raise self._failed(connection, err, ref) from err

    def claim(
        self, target: ClusterTarget, ref: ObjectRef, action_id: str, lease: ActionLease
    ) -> Claim:
        """Claim the object for an action: write its lease (and its button's `action_id`)
        conditionally on the resourceVersion just read, unless the button was used or another
        action's lease is live. The API server answers 409 Conflict when the object changed
        meanwhile, so of two replicas racing for one object exactly one gets it; the other
        reads again and finds the button used or the object busy."""
        coordinates, api, connection = self._object_api(target, ref)
        try:
            for _attempt in range(_CONFLICT_RETRIES):
                metadata = self._metadata(api, coordinates, connection)
                annotations = metadata.get("annotations") or {}
                refused = judge_claim(annotations, action_id, lease, dt.datetime.now(dt.UTC))
                if refused is not None:
                    return refused
                body = claim_patch(str(metadata.get("resourceVersion") or ""), action_id, lease)
                if self._patch_if_unchanged(api, coordinates, connection, body):
                    return Claim(ClaimState.CLAIMED)
        except Exception as err:
            raise self._failed(connection, err, ref) from err
        raise WriteFailed(f"{ref.kind} {ref.namespace}/{ref.name} kept changing; try again")

    def hold(
        self,
        target: ClusterTarget,
        ref: ObjectRef,
        lease: ActionLease,
        renewed: ActionLease | None,
    ) -> bool:
        """Renew `lease` on the object (`renewed`), or remove it (None), if the object still
        carries it; False when it does not (it expired and another action took the object)."""
        coordinates, api, connection = self._object_api(target, ref)
        try:
            for _attempt in range(_CONFLICT_RETRIES):
                metadata = self._metadata(api, coordinates, connection)
                held = ActionLease.parse((metadata.get("annotations") or {}).get(ACTION_LEASE))
                if held is None or held.id != lease.id:
                    return False
                body = lease_patch(str(metadata.get("resourceVersion") or ""), renewed)
                if self._patch_if_unchanged(api, coordinates, connection, body):
                    return True
        except Exception as err:
            raise self._failed(connection, err, ref) from err
        raise WriteFailed(f"{ref.kind} {ref.namespace}/{ref.name} kept changing; try again")

    def _object_api(
        self, target: ClusterTarget, ref: ObjectRef
    ) -> tuple[tuple[str, str, str, str, str], Any, Any]:
        connection, version = self._connect(target, ref)
        kind = kind_named(ref.kind)
        api = k8s.CustomObjectsApi(connection.api_client)
        return (kind.group, version, ref.namespace, kind.plural, ref.name), api, connection

    @staticmethod
    def _metadata(api: Any, coordinates: tuple[str, ...], connection: Any) -> dict[str, Any]:
        current: Any = api.get_namespaced_custom_object(
            *coordinates, _request_timeout=connection.timeout
        )
        metadata: dict[str, Any] = current.get("metadata") or {}
        return metadata

    @staticmethod
    def _patch_if_unchanged(
        api: Any, coordinates: tuple[str, ...], connection: Any, body: dict[str, Any]
    ) -> bool:
        """Apply a merge patch that carries metadata.resourceVersion; False on 409 Conflict."""
        try:
            api.patch_namespaced_custom_object(
                *coordinates,
                body,
                field_manager=FIELD_MANAGER,
                _content_type=MERGE_PATCH,
                _request_timeout=connection.timeout,
            )
        except k8s.ApiException as err:
            if err.status == 409:
                return False
            raise
        return True

    def record_event(
        self,
        target: ClusterTarget,
        ref: ObjectRef,
        action: str,
        username: str,
        groups: Sequence[str],
        message: str,
        *,
        warning: bool = False,
    ) -> None:
        """Create a core/v1 Event on the object saying who did what."""
        connection, version = self._connect(target, ref)
        kind = kind_named(ref.kind)
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # A plain dict: the client serialises it as it is, with our camelCase keys.
        body: Any = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{ref.name}.",
                "namespace": ref.namespace,
                "annotations": {
                    ACTION_ANNOTATION: action,
                    USERNAME_ANNOTATION: username,
                    GROUPS_ANNOTATION: ",".join(groups),
                },
            },
            "involvedObject": {
                "apiVersion": f"{kind.group}/{version}",
                "kind": ref.kind,
                "name": ref.name,
                "namespace": ref.namespace,
            },
            "reason": AUDIT_REASON,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": "fluxbot"},
            "reportingComponent": "fluxbot",
            "reportingInstance": socket.gethostname()[:128],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            k8s.CoreV1Api(connection.api_client).create_namespaced_event(
                ref.namespace, body, _request_timeout=connection.timeout
            )
        except Exception as err:
            raise self._failed(connection, err, ref) from err
        if self._events_address:
            self._forward(body, warning)

    def _forward(self, event: dict[str, Any], warning: bool) -> None:
        """POST the event to notification-controller (fluxcd/pkg apis/event/v1beta1 Event)."""
        assert self._events_address is not None
        payload = {
            "involvedObject": event["involvedObject"],
            "severity": "error" if warning else "info",
            "timestamp": event["lastTimestamp"],
            "message": event["message"],
            "reason": event["reason"],
            "metadata": event["metadata"]["annotations"],
            "reportingController": "fluxbot",
            "reportingInstance": event["reportingInstance"],
        }
        request = urllib.request.Request(  # noqa: S310 - the configured http(s) address
            self._events_address,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                response.read()
        except (OSError, ValueError) as err:
            raise WriteFailed(
                f"the event was not forwarded to notification-controller: {err}"
            ) from err

    def may(
        self,
        target: ClusterTarget,
        ref: ObjectRef,
        verb: str,
        user: str,
        groups: Sequence[str],
    ) -> tuple[bool, str]:
        """Ask the cluster (SubjectAccessReview) whether `user` may `verb` this object."""
        connection, _version = self._connect(target, ref)
        kind = kind_named(ref.kind)
        review: Any = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": list(groups),
                "resourceAttributes": {
                    "group": kind.group,
                    "resource": kind.plural,
                    "verb": verb,
                    "namespace": ref.namespace,
                    "name": ref.name,
                },
            },
        }
        try:
            result = k8s.AuthorizationV1Api(connection.api_client).create_subject_access_review(
                review, _request_timeout=connection.timeout
            )
        except Exception as err:
            raise self._failed(connection, err, ref) from err
        status = result.status
        return bool(status and status.allowed), str((status and status.reason) or "")

    def _connect(self, target: ClusterTarget, ref: ObjectRef) -> tuple[Any, str]:
        try:
            connection = self._cache.connection(target)
        except ClusterUnavailable as err:
            raise WriteFailed(str(err)) from err
        version = connection.served.version_of(kind_named(ref.kind))
        if version is None:
            raise WriteFailed(f"{target.cluster} does not serve the {ref.kind} API")
        return connection, version

    @staticmethod
    def _failed(connection: Any, err: BaseException, ref: ObjectRef) -> WriteFailed:
        problem = describe_error(
            err, connection.api_client.configuration.host, connection.timeout[1], (ref.kind,)
        )
        return WriteFailed(problem.message)
