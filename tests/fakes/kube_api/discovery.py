"""Discovery documents and the URL paths of resources, as kube-apiserver serves them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ApiError
from .resources import Resource

CR_VERBS = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")


@dataclass
class _Request:
    resource: Resource
    version: str
    namespace: str | None
    name: str | None
    subresource: str | None


class Discovery:
    """`/version`, `/api`, `/apis/...` and resource paths (a mixin of FakeKubeApiServer)."""

    def served_api_versions(self) -> list[str]:
        """Every `group/version` this server serves, e.g. for assertions on discovery."""
        return sorted({res.api_version(v) for res in self.resources.values() for v in res.versions})

    def _discovery(self, segments: list[str]) -> dict[str, Any] | None:
        if segments == ["version"]:
            major, minor = self.kube_version.lstrip("v").split(".")[:2]
            return {
                "major": major,
                "minor": minor,
                "gitVersion": self.kube_version,
                "gitCommit": "0" * 40,
                "gitTreeState": "clean",
                "buildDate": "2025-05-15T08:00:00Z",
                "goVersion": "go1.24.2",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        if segments == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self._port}"}
                ],
            }
        if segments == ["api", "v1"]:
            return self._resource_list("", "v1")
        if segments == ["apis"]:
            groups = sorted({res.group for res in self.resources.values() if res.group})
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._group(g) for g in groups],
            }
        if len(segments) == 2 and segments[0] == "apis":
            group = self._group(segments[1])
            if not group["versions"]:
                raise ApiError(404)
            return {"kind": "APIGroup", "apiVersion": "v1", **group}
        if len(segments) == 3 and segments[0] == "apis":
            if (segments[1], segments[2]) not in self._by_gv:
                raise ApiError(404)
            return self._resource_list(segments[1], segments[2])
        return None

    def _group(self, group: str) -> dict[str, Any]:
        versions = self._group_versions.get(group, [])
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "name": group,
            "versions": entries,
            "preferredVersion": entries[0] if entries else {},
        }

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources = []
        for plural, res in sorted(self._by_gv.get((group, version), {}).items()):
            resources.append(
                {
                    "name": plural,
                    "singularName": res.singular,
                    "namespaced": res.namespaced,
                    "kind": res.kind,
                    "verbs": list(CR_VERBS),
                    **({"shortNames": list(res.short_names)} if res.short_names else {}),
                }
            )
            if res.has_status:
                resources.append(
                    {
                        "name": f"{plural}/status",
                        "singularName": "",
                        "namespaced": res.namespaced,
                        "kind": res.kind,
                        "verbs": list(STATUS_VERBS),
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def _route(self, segments: list[str]) -> _Request:
        if segments[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", segments[2:]
        elif len(segments) >= 3 and segments[0] == "apis":
            group, version, rest = segments[1], segments[2], segments[3:]
        else:
            raise ApiError(404)
        served = self._by_gv.get((group, version))
        if not served or not rest:
            raise ApiError(404)
        namespace: str | None = None
        if rest[0] == "namespaces":
            if len(rest) < 3:
                raise ApiError(404)
            namespace, rest = rest[1], rest[2:]
        res = served.get(rest[0])
        if res is None or len(rest) > 3:
            raise ApiError(404)
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if res.namespaced and namespace is None and name is not None:
            raise ApiError(404)
        if sub is not None and not (sub == "status" and res.has_status):
            raise ApiError(404)
        return _Request(res, version, namespace, name, sub)

    @staticmethod
    def _verb(method: str, target: _Request, is_watch: bool) -> str:
        collection = target.name is None
        verbs = {
            ("GET", True): "watch" if is_watch else "list",
            ("GET", False): "get",
            ("POST", True): "create",
            ("PUT", False): "update",
            ("PATCH", False): "patch",
            ("DELETE", False): "delete",
            ("DELETE", True): "deletecollection",
        }
        verb = verbs.get((method, collection))
        if verb is None or (target.subresource and verb not in STATUS_VERBS):
            raise ApiError(405)
        if (
            target.resource.namespaced
            and target.namespace is None
            and verb not in ("list", "watch")
        ):
            # Only reads span namespaces; kube-apiserver has no such path for anything else.
            raise ApiError(404)
        return verb
