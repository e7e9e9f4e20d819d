"""A stand-in for Flux's controllers on a fake API server: it handles reconcile requests.

Flux controllers copy `reconcile.fluxcd.io/requestedAt` into `status.lastHandledReconcileAt`
at the end of every reconcile and set Ready. This does the same for every object whose
request is not handled yet (skipping suspended ones unless `handle_suspended`), after an
optional delay, succeeding or failing as told per object.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.fakes.kube_api import FakeKubeApiServer

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
# notification-controller internal/controller/alert_controller.go, provider_controller.go:
# v1beta3 Alerts and Providers are static; nothing reconciles them or writes a status.
STATIC_KINDS = frozenset({"Alert", "Provider"})
NOW = "2026-11-26T11:00:00Z"


class FakeFluxController:
    """Polls a fake API server and acknowledges reconcile requests like Flux's controllers."""

    def __init__(
        self,
        server: FakeKubeApiServer,
        *,
        delay: float = 0.0,
        interval: float = 0.01,
        handle_suspended: bool = False,
    ) -> None:
        self.server = server
        self.delay = delay
        self.interval = interval
        self.handle_suspended = handle_suspended
        # name -> failure message: reconciles of these objects fail.
        self.failures: dict[str, str] = {}
        self.handled: list[tuple[str, str, str, float]] = []
        self.on_handled: Callable[[dict[str, Any]], None] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-flux", daemon=True)

    def __enter__(self) -> FakeFluxController:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for obj in self.server.objects():
                token = (obj["metadata"].get("annotations") or {}).get(REQUESTED_AT)
                status = obj.get("status") or {}
                if not token or status.get("lastHandledReconcileAt") == token:
                    continue
                if obj["kind"] in STATIC_KINDS:
                    continue
                if obj.get("spec", {}).get("suspend") and not self.handle_suspended:
                    continue
                if self.delay:
                    time.sleep(self.delay)
                self._handle(obj, token)

    def _handle(self, obj: dict[str, Any], token: str) -> None:
        name = obj["metadata"]["name"]
        status = copy.deepcopy(obj.get("status") or {})
        failure = self.failures.get(name)
        ready = {
            "type": "Ready",
            "status": "False" if failure else "True",
            "reason": "ReconciliationFailed" if failure else "ReconciliationSucceeded",
            "message": failure or "Applied revision: main@sha1:" + "f" * 40,
            "lastTransitionTime": NOW,
            "observedGeneration": obj["metadata"].get("generation", 1),
        }
        status["conditions"] = [
            c
            for c in status.get("conditions", [])
            if c["type"] not in ("Ready", "Reconciling", "Stalled")
        ] + [ready]
        status["lastHandledReconcileAt"] = token
        status["observedGeneration"] = obj["metadata"].get("generation", 1)
        if obj["kind"] == "Kustomization" and not failure:
            status["lastAppliedRevision"] = "main@sha1:" + "f" * 40
        meta = obj["metadata"]
        self.server.set_status(obj["apiVersion"], obj["kind"], meta["namespace"], name, status)
        self.handled.append((obj["kind"], meta["namespace"], name, time.time()))
        if self.on_handled:
            self.on_handled(obj)
