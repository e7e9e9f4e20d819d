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

from bot.domain.action_rules import FIELD_MANAGER
from bot.domain.fleet import ClusterTarget
from bot.domain.kinds import kind_named
from bot.domain.status import ACTION_ID, ObjectRef
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

    def claim(self, target: ClusterTarget, ref: ObjectRef, action_id: str) -> bool:
        """Annotate the object with `action_id`, conditionally on the resourceVersion just
        read (the API server answers 409 Conflict when it changed): exactly one replica
        claims a button, however the halves of a double click were spread."""
        connection, version = self._connect(target, ref)
        kind = kind_named(ref.kind)
        api = k8s.CustomObjectsApi(connection.api_client)
        coordinates = (kind.group, version, ref.namespace, kind.plural, ref.name)
        try:
            current: Any = api.get_namespaced_custom_object(
                *coordinates, _request_timeout=connection.timeout
            )
            metadata = current.get("metadata") or {}
            if (metadata.get("annotations") or {}).get(ACTION_ID) == action_id:
                return False
            body = {
                "metadata": {
                    "resourceVersion": metadata.get("resourceVersion"),
                    "annotations": {ACTION_ID: action_id},
                }
            }
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
            raise self._failed(connection, err, ref) from err
        except Exception as err:
            raise self._failed(connection, err, ref) from err
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
