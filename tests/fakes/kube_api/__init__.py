"""A fake Kubernetes API server for Flux objects, real enough for the official Python client.

`FakeKubeApiServer` (server.py) is assembled from one module per job:

- resources.py: the served resource types and versions; discovery.py: discovery documents
  and URL routing;
- store.py: objects, resourceVersions, generations and seeding; validation.py: what the API
  server refuses to store (CRD schemas, ConfigMap rules);
- handlers.py: list/get/create/update/patch/delete; patch.py: merge patch (the same code as
  the simulated Flux, bot/simulation/apiserver.py) and JSON patch; selectors.py: label and
  field selectors;
- watch.py: watch streams; auth.py: RBAC denials and SubjectAccessReviews; faults.py: injected
  failures, latency and hangs; errors.py and encoding.py: Status bodies and request bodies;
- fleet.py: several servers started together, with a kubeconfig.

The loop thread, the 127.0.0.1 listener, the request log and the fault list are the shared
loopback-server base of every fake (tests/fakes/loopback.py).
"""

from ..loopback import EventLoopThread, bind_loopback, shared_loop
from .encoding import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH
from .errors import ApiError, status_body
from .faults import Fault
from .fleet import FakeFleet
from .patch import json_patch, merge_patch
from .resources import Resource, build_resources
from .selectors import FieldSelector, LabelSelector
from .server import DEFAULT_KUBE_VERSION, DEFAULT_USER, FakeKubeApiServer, RequestRecord
from .validation import MAX_CONFIGMAP_BYTES

__all__ = [
    "APPLY_PATCH",
    "DEFAULT_KUBE_VERSION",
    "DEFAULT_USER",
    "JSON_PATCH",
    "MAX_CONFIGMAP_BYTES",
    "MERGE_PATCH",
    "STRATEGIC_PATCH",
    "ApiError",
    "EventLoopThread",
    "FakeFleet",
    "FakeKubeApiServer",
    "Fault",
    "FieldSelector",
    "LabelSelector",
    "RequestRecord",
    "Resource",
    "bind_loopback",
    "build_resources",
    "json_patch",
    "merge_patch",
    "shared_loop",
    "status_body",
]
