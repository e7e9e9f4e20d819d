"""The simulated Flux controllers (bot.simulation.flux) running against a fake API server.

A thread polls the server and lets the simulator reconcile every object with a new request
token or a new generation, after an optional delay, as source-, kustomize- and helm-controller
do (see bot/simulation/flux.py for the upstream files each rule follows).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

from bot.simulation.flux import FluxSimulator, Git
from tests.fakes.kube_api import FakeKubeApiServer


class ServerStore:
    """A fake API server as the simulator's store."""

    def __init__(self, server: FakeKubeApiServer) -> None:
        self.server = server

    def objects(self) -> list[dict[str, Any]]:
        return [o for o in self.server.objects() if o.get("kind") != "Event"]

    def find(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        for obj in self.server.objects(kind=kind, namespace=namespace):
            if obj["metadata"]["name"] == name:
                return obj
        return None

    def write_status(self, obj: dict[str, Any], status: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.server.set_status(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"],
                               status)  # fmt: skip

    def write_spec(self, obj: dict[str, Any], spec: dict[str, Any]) -> None:
        meta = obj["metadata"]
        current = self.server.get(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        if current is None:
            return
        updated = copy.deepcopy(current)
        updated["spec"] = spec
        updated["metadata"].pop("generation", None)  # the server bumps it for a new spec
        self.server.apply(updated)


class FakeFluxController:
    """Runs the simulated controllers of one fake cluster on a thread."""

    def __init__(
        self, server: FakeKubeApiServer, *, delay: float = 0.0, interval: float = 0.01
    ) -> None:
        self.server = server
        self.delay = delay
        self.interval = interval
        self.handled: list[tuple[str, str, str, float]] = []
        self.on_handled: Callable[[dict[str, Any]], None] | None = None
        self.simulator = FluxSimulator(ServerStore(server), on_handled=self._handled)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-flux", daemon=True)

    @property
    def failures(self) -> dict[tuple[str, str, str], str]:
        """(kind, namespace, name) -> message: reconciles of these objects fail."""
        return self.simulator.failures

    @property
    def charts(self) -> dict[str, str]:
        """Chart version -> what installing it does (missing, upgrade-fails, tests-fail)."""
        return self.simulator.charts

    @property
    def git(self) -> Git:
        """What Git declares for the objects Kustomizations apply."""
        return self.simulator.git

    def __enter__(self) -> FakeFluxController:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        seen = ""
        while not self._stop.wait(self.interval):
            # Like a controller's watch: only look again when something changed.
            version = self.server.resource_version
            if version == seen:
                continue
            if self.delay and self.simulator.pending() and self._stop.wait(self.delay):
                return
            seen = version
            self.simulator.step()

    def _handled(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.handled.append((obj["kind"], meta["namespace"], meta["name"], time.time()))
        if self.on_handled:
            self.on_handled(obj)
