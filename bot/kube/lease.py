"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

Several fluxbot replicas answer commands, but only one may post scheduled digests and write
the shared history: the holder of one Lease in fluxbot's namespace. Each replica runs a
`LeaderElector`, which on a background thread

- creates the Lease when it is absent (the creator leads);
- acquires it when it is free (no holder: the last leader released it), expired
  (renewTime + leaseDurationSeconds is in the past) or already ours;
- renews it every `renew_seconds` while leading;
- writes with the resourceVersion it read, so that of two replicas racing for the Lease
  exactly one wins: the other gets 409 Conflict, which means someone else won (a leader
  whose renew gets 409 steps down at once).

Safety does not depend on the API server answering: a leader that cannot renew (API server
down, network partition, requests timing out) stops considering itself leader once
`lease_seconds` have passed, measured on its own monotonic clock from when it *sent* its last
successful renew. That is never later than when the other replicas may take the Lease over, so
`is_leader` is never true on an expired lease.

Clock skew: expiry is judged from the holder's renewTime against the local wall clock, as
the Lease API defines it. A follower also remembers when it last saw the Lease change: a record
that is still being renewed is never taken over, however skewed the holder's clock, except on
the very first look at it (a replica that just started trusts the timestamps). At worst a badly
skewed clock causes one early takeover, after which the old leader's next renew gets 409 and it
steps down.

On `stop(release=True)` (graceful shutdown) the leader first stops leading (its
`on_stopped_leading` callback runs to completion), then clears holderIdentity and sets
leaseDurationSeconds=1, so the next replica takes over at its next retry instead of waiting for
the lease to expire. `stop(release=False)` leaves the Lease as it is, like a crash would.

Callbacks run in order on a thread of their own, never on the renew loop: a slow
`on_started_leading` (reloading state, say) cannot make the leader miss its renewals.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from bot.kube.errors import error_detail

log = logging.getLogger(__name__)

_STOP: Final = object()


class Clock(Protocol):
    """What the elector needs of a clock; the `time` module is one."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch: compared with renewTime of other replicas."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds: how long ago this replica last renewed."""
        ...


@dataclass(frozen=True)
class _Observed:
    """The Lease record as last read, to notice whether its holder is still renewing it."""

    resource_version: str
    holder: str
    renew_time: dt.datetime | None
    at: float  # monotonic time at which this record was first seen
    first: bool  # seen on this replica's very first read of the Lease


def micro_time(seconds: float) -> str:
    """A Kubernetes MicroTime (RFC 3339, microseconds, UTC) for epoch `seconds`.

    The client turns dict bodies into models and writes datetimes with `isoformat()`, which
    drops the fraction when it is zero; kube-apiserver parses MicroTime strictly with six
    digits, so a whole second is nudged by one microsecond to keep the fraction.
    """
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    if moment.microsecond == 0:
        moment += dt.timedelta(microseconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Competes for one Lease; `is_leader` says whether this replica may act as leader now."""

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        name: str,
        identity: str,
        lease_seconds: float = 15,
        renew_seconds: float = 5,
        retry_seconds: float = 2,
        clock: Clock = time,
        *,
        on_started_leading: Callable[[], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
        request_timeout: float | None = None,
    ) -> None:
        if not identity:
            raise ValueError("a leader elector needs a non-empty identity")
        if not 0 < renew_seconds < lease_seconds:
            raise ValueError("renew_seconds must be positive and shorter than lease_seconds")
        if retry_seconds <= 0:
            raise ValueError("retry_seconds must be positive")
        self._api = k8s.CoordinationV1Api(api_client)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_seconds = float(lease_seconds)
        self.renew_seconds = float(renew_seconds)
        self.retry_seconds = float(retry_seconds)
        self._clock = clock
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        # One request may take at most a third of the lease, so that a hung request still
        # leaves time for another attempt before the lease runs out.
        self._timeout = request_timeout or max(0.1, min(10.0, self.lease_seconds / 3))
        self._lock = threading.Lock()
        self._leading = False
        self._valid_until = 0.0  # monotonic time at which our lease runs out locally
        self._observed: _Observed | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._callbacks: queue.Queue[object] = queue.Queue()
        self._callback_thread: threading.Thread | None = None

    # -- public --

    @property
    def is_leader(self) -> bool:
        """True while this replica holds a lease that has not run out by its own clock."""
        with self._lock:
            return self._leading and self._clock.monotonic() < self._valid_until

    @property
    def duration_seconds(self) -> int:
        """leaseDurationSeconds as written: a whole number, rounded up (the safe side)."""
        return max(1, math.ceil(self.lease_seconds))

    def start(self) -> None:
        """Start competing for the Lease on a background thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._callback_thread = threading.Thread(
            target=self._run_callbacks, name=f"lease-callbacks-{self.name}", daemon=True
        )
        self._callback_thread.start()
        self._thread = threading.Thread(target=self._run, name=f"lease-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, release: bool = True, timeout: float = 10.0) -> None:
        """Stop competing; with `release`, hand the Lease over at once if we hold it.

        Leadership ends first (on_stopped_leading has returned when the Lease is released), so
        the next leader never overlaps with this one.
        """
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout)
        self._step_down("stopping")
        self._callbacks.put(_STOP)
        if self._callback_thread is not None:
            self._callback_thread.join(timeout)
            self._callback_thread = None
        if release:
            self._release()

    def try_acquire_or_renew(self) -> bool:
        """One round: read the Lease, then create, acquire or renew it; True when we lead.

        The background thread calls this; tests and tools may call it directly.
        """
        sent = self._clock.monotonic()
        now = self._clock.time()
        try:
            lease = self._api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self._timeout
            )
        except ApiException as err:
            if err.status != 404:
                return self._failed("read", err)
            return self._create(sent, now)
        except Exception as err:  # noqa: BLE001 - any transport error is a failed round
            return self._failed("read", err)
        spec = lease.spec
        resource_version = lease.metadata.resource_version if lease.metadata else None
        holder = (spec.holder_identity if spec else None) or ""
        renew_time = (spec.renew_time or spec.acquire_time) if spec else None
        duration = (spec.lease_duration_seconds if spec else None) or 0
        self._observe(resource_version or "", holder, renew_time, sent)
        if holder and holder != self.identity and not self._expired(renew_time, duration, now):
            self._step_down(f"the lease is held by {holder}")
            return False
        transitions = (spec.lease_transitions if spec else None) or 0
        if holder == self.identity:
            acquire = spec.acquire_time.timestamp() if spec and spec.acquire_time else now
        else:
            acquire, transitions = now, transitions + 1
        body = self._body(
            holder=self.identity,
            duration=self.duration_seconds,
            acquire=acquire,
            renew=now,
            transitions=transitions,
            resource_version=resource_version,
        )
        try:
            self._api.replace_namespaced_lease(
                self.name, self.namespace, body, _request_timeout=self._timeout
            )
        except ApiException as err:
            if err.status == 409:
                # Someone else wrote the Lease since we read it: they won this round.
                self._step_down("another replica updated the lease first (409 Conflict)")
                return False
            return self._failed("update", err)
        except Exception as err:  # noqa: BLE001
            return self._failed("update", err)
        self._renewed(sent, taken_from=holder)
        return True

    # -- internals --

    def _create(self, sent: float, now: float) -> bool:
        body = self._body(
            holder=self.identity,
            duration=self.duration_seconds,
            acquire=now,
            renew=now,
            transitions=0,
            resource_version=None,
        )
        try:
            self._api.create_namespaced_lease(self.namespace, body, _request_timeout=self._timeout)
        except ApiException as err:
            if err.status == 409:  # AlreadyExists: another replica created it first
                self._step_down("another replica created the lease first")
                return False
            return self._failed("create", err)
        except Exception as err:  # noqa: BLE001
            return self._failed("create", err)
        self._renewed(sent, taken_from="")
        return True

    def _body(
        self,
        *,
        holder: str | None,
        duration: int,
        acquire: float,
        renew: float,
        transitions: int,
        resource_version: str | None,
    ) -> Any:
        """A Lease as a plain dict (the client accepts it where it wants a V1Lease)."""
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if resource_version:
            metadata["resourceVersion"] = resource_version
        spec: dict[str, Any] = {
            "leaseDurationSeconds": duration,
            "acquireTime": micro_time(acquire),
            "renewTime": micro_time(renew),
            "leaseTransitions": transitions,
        }
        if holder:
            spec["holderIdentity"] = holder
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    def _observe(
        self, resource_version: str, holder: str, renew_time: dt.datetime | None, at: float
    ) -> None:
        old = self._observed
        if old is None:
            self._observed = _Observed(resource_version, holder, renew_time, at, first=True)
        elif (old.holder, old.renew_time) != (holder, renew_time):
            self._observed = _Observed(resource_version, holder, renew_time, at, first=False)

    def _expired(self, renew_time: dt.datetime | None, duration: int, now: float) -> bool:
        """Whether another replica's lease has run out and may be taken over."""
        if renew_time is None:
            return True
        if renew_time.timestamp() + duration >= now:
            return False
        observed = self._observed
        if observed is None or observed.first:
            return True
        # The holder's timestamps say expired; believe it only if we have not seen the record
        # change for a whole lease duration either (a skewed clock renewing busily is alive).
        return self._clock.monotonic() - observed.at >= duration

    def _renewed(self, sent: float, taken_from: str) -> None:
        with self._lock:
            started = not self._leading
            self._leading = True
            self._valid_until = sent + self.lease_seconds
        if started:
            if taken_from and taken_from != self.identity:
                log.info("%s took over lease %s from %s", self.identity, self.name, taken_from)
            else:
                log.info("%s acquired lease %s/%s", self.identity, self.namespace, self.name)
            self._notify(self.on_started_leading)

    def _failed(self, what: str, err: BaseException) -> bool:
        log.warning(
            "lease %s/%s: %s failed: %s", self.namespace, self.name, what, error_detail(err)
        )
        self._check_expiry()
        return False

    def _check_expiry(self) -> None:
        with self._lock:
            expired = self._leading and self._clock.monotonic() >= self._valid_until
        if expired:
            self._step_down("could not renew the lease before it ran out")

    def _step_down(self, why: str) -> None:
        with self._lock:
            was_leading, self._leading = self._leading, False
            self._valid_until = 0.0
        if was_leading:
            log.warning("%s stopped leading (%s)", self.identity, why)
            self._notify(self.on_stopped_leading)

    def _release(self) -> None:
        """Give the Lease up if we hold it: no holder, and a 1 s duration."""
        try:
            lease = self._api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self._timeout
            )
            spec = lease.spec
            if spec is None or spec.holder_identity != self.identity:
                return
            now = self._clock.time()
            body = self._body(
                holder=None,
                duration=1,
                acquire=now,
                renew=now,
                transitions=spec.lease_transitions or 0,
                resource_version=lease.metadata.resource_version if lease.metadata else None,
            )
            self._api.replace_namespaced_lease(
                self.name, self.namespace, body, _request_timeout=self._timeout
            )
            log.info("%s released lease %s/%s", self.identity, self.namespace, self.name)
        except Exception as err:  # noqa: BLE001 - best effort: the lease will expire anyway
            log.warning(
                "lease %s/%s: release failed (%s); the next leader waits for it to expire",
                self.namespace,
                self.name,
                error_detail(err),
            )

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.try_acquire_or_renew()
            except Exception:  # a bug must not end the loop and leave a stale leader
                log.exception("lease %s/%s: unexpected error", self.namespace, self.name)
                self._check_expiry()
            with self._lock:
                leading = self._leading
                left = self._valid_until - self._clock.monotonic()
            # While leading, wake up in time for the next renewal and no later than the
            # lease's local expiry (to step down on time when renewals keep failing).
            wait = min(self.renew_seconds, max(left, 0.0)) if leading else self.retry_seconds
            if self._stop.wait(wait) or not leading:
                continue
            self._check_expiry()

    def _notify(self, callback: Callable[[], None] | None) -> None:
        if callback is not None:
            self._callbacks.put(callback)

    def _run_callbacks(self) -> None:
        while True:
            item = self._callbacks.get()
            if item is _STOP:
                return
            try:
                item()  # type: ignore[operator]
            except Exception:
                log.exception("lease %s/%s: leadership callback failed", self.namespace, self.name)
