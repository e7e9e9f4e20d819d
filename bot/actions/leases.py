"""Keeps the leases of this replica's running actions alive on their objects, then gives them up.

A lease lasts LEASE_SECONDS unless renewed: a replica that dies mid-action frees its object
that long after, while a live replica renews every RENEW_SECONDS for as long as its action
runs (a follow may last an hour). Renewing and giving up are conditional on the object still
carrying this lease, so an expired lease another replica has since replaced is left alone.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from bot.domain.action_lease import RENEW_SECONDS, ActionLease
from bot.domain.fleet import ClusterTarget
from bot.domain.status import ObjectRef

log = logging.getLogger(__name__)


class LeaseWriter(Protocol):
    """Writes a lease on an object (the Kubernetes adapter)."""

    def hold(
        self,
        target: ClusterTarget,
        ref: ObjectRef,
        lease: ActionLease,
        renewed: ActionLease | None,
    ) -> bool:
        """Renew `lease` (or remove it: None) if the object still carries it."""
        ...


class LeaseKeeper:
    """Renews this replica's leases on a background thread while their actions run."""

    def __init__(
        self,
        writer: LeaseWriter,
        clock: Callable[[], dt.datetime],
        every: float = RENEW_SECONDS,
    ) -> None:
        self._writer = writer
        self._clock = clock
        self._every = every
        self._lock = threading.Lock()
        self._held: dict[str, tuple[ClusterTarget, ObjectRef, ActionLease]] = {}
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def keep(self, target: ClusterTarget, ref: ObjectRef, lease: ActionLease) -> None:
        """Renew `lease` until `release`."""
        with self._lock:
            self._held[lease.id] = (target, ref, lease)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="action-leases", daemon=True)
                self._thread.start()

    def release(self, lease: ActionLease) -> None:
        """Stop renewing and take the lease off its object (best effort: an action that is
        done never fails because of it; the lease then simply expires)."""
        with self._lock:
            held = self._held.pop(lease.id, None)
        if held is None:
            return
        target, ref, current = held
        try:
            self._writer.hold(target, ref, current, None)
        except Exception as err:  # noqa: BLE001 - it expires on its own
            log.warning("could not give up the action lease on %s: %s", ref, err)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._every)
            with self._lock:
                if not self._held:
                    self._thread = None
                    return
                held = list(self._held.values())
            for target, ref, lease in held:
                self._renew(target, ref, lease)

    def _renew(self, target: ClusterTarget, ref: ObjectRef, lease: ActionLease) -> None:
        renewed = lease.renewed(self._clock())
        try:
            kept = self._writer.hold(target, ref, lease, renewed)
        except Exception as err:  # noqa: BLE001 - retried at the next renewal, before it expires
            log.warning("could not renew the action lease on %s: %s", ref, err)
            return
        with self._lock:
            if lease.id not in self._held:
                return  # released meanwhile
            if kept:
                self._held[lease.id] = (target, ref, renewed)
            else:
                log.warning(
                    "the action lease on %s expired and was taken over; %s keeps running",
                    ref,
                    lease.action,
                )
                del self._held[lease.id]
