"""Authorization: RBAC denials with kube-apiserver's 403 wording, and SubjectAccessReviews."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .discovery import _Request
from .errors import ApiError


@dataclass(frozen=True)
class _Deny:
    verb: str
    resource: str
    group: str | None
    namespace: str | None


class Rbac:
    """Denied verbs and review grants (a mixin of FakeKubeApiServer)."""

    def deny(
        self,
        verb: str,
        resource: str,
        *,
        group: str | None = None,
        namespace: str | None = None,
    ) -> None:
        """Forbid `verb` (or "*") on `resource` ("gitrepositories", "x/status" or "*").

        `group` and `namespace` narrow the rule; by default it applies everywhere.
        """
        with self._lock:
            self._denies.append(_Deny(verb, resource, group, namespace))

    def grant_review(
        self,
        *,
        user: str | None = None,
        group: str | None = None,
        verb: str = "*",
        resource: str = "*",
        namespace: str | None = None,
    ) -> None:
        """Let SubjectAccessReviews for `user` (or members of `group`) allow `verb` on `resource`.

        Reviews nothing grants are denied, as RBAC denies by default.
        """
        with self._lock:
            self._review_grants.append((user, group, verb, resource, namespace))

    def _review(self, review: Any) -> dict[str, Any]:
        spec = review.get("spec", {}) if isinstance(review, dict) else {}
        attrs = spec.get("resourceAttributes") or {}
        user, groups = spec.get("user"), set(spec.get("groups") or [])
        with self._lock:
            grants = list(self._review_grants)
        allowed = any(
            (g_user is None or g_user == user)
            and (g_group is None or g_group in groups)
            and (g_user is not None or g_group is not None)
            and g_verb in ("*", attrs.get("verb"))
            and g_resource in ("*", attrs.get("resource"))
            and (g_ns is None or g_ns == attrs.get("namespace"))
            for g_user, g_group, g_verb, g_resource, g_ns in grants
        )
        reason = "granted by the fake's review rules" if allowed else ""
        return {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": {"allowed": allowed, **({"reason": reason} if reason else {})},
        }

    def clear_denies(self) -> None:
        """Allow everything again."""
        with self._lock:
            self._denies.clear()

    def _authorize(self, verb: str, target: _Request) -> None:
        res = target.resource
        resource = res.plural + (f"/{target.subresource}" if target.subresource else "")
        with self._lock:
            denied = any(
                d.verb in (verb, "*")
                and d.resource in (resource, "*")
                and d.group in (None, res.group)
                and d.namespace in (None, target.namespace)
                for d in self._denies
            )
        if not denied:
            return
        scope = (
            f'in the namespace "{target.namespace}"'
            if target.namespace is not None
            else "at the cluster scope"
        )
        named = f' "{target.name}"' if target.name else ""
        details: dict[str, str] = {}
        if target.name:
            details["name"] = target.name
        if res.group:
            details["group"] = res.group
        details["kind"] = res.plural
        raise ApiError(
            403,
            "Forbidden",
            f'{res.qualified}{named} is forbidden: User "{self.user}" cannot {verb} resource '
            f'"{resource}" in API group "{res.group}" {scope}',
            details,
        )
