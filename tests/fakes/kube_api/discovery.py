"""Discovery documents and the URL paths of resources, as kube-apiserver serves them.

Besides the legacy documents (`/apis` APIGroupList, `/apis/<group>/<version>` APIResourceList),
`/apis` serves aggregated discovery (an APIGroupDiscoveryList: every group, version and
resource in one answer) when the Accept header asks for it, as kube-apiserver >= 1.26 does.
Upstream, read for this fake (kubernetes/kubernetes):

- `staging/src/k8s.io/api/apidiscovery/v2/types.go`: the document's fields;
- `staging/src/k8s.io/apiserver/pkg/endpoints/discovery/aggregated/wrapper.go` and
  `.../aggregated/negotiation.go`: the aggregated document is served only when content
  negotiation of the Accept header picks a clause converting to
  apidiscovery.k8s.io/{v2,v2beta1} APIGroupDiscoveryList; otherwise the legacy APIGroupList;
- `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/negotiation/negotiate.go`: clauses
  are tried in goautoneg order (q, then specificity); a clause whose g/v/as is not allowed,
  or with `sv`, is skipped; no acceptable clause means the default (legacy JSON) answer;
- `.../aggregated/handler.go`, `.../aggregated/etag.go` and
  `.../handlers/responsewriters/writers.go` (`generateMediaTypeWithGVK`): the answer's
  Content-Type is `application/json;g=apidiscovery.k8s.io;v=<v>;as=APIGroupDiscoveryList`,
  with a quoted SHA-512 ETag, `Vary: Accept`, `Cache-Control: public`, and 304 Not Modified
  when If-None-Match carries the ETag; groups are ordered by priority (built-in groups
  before CRD groups), then name;
- `staging/src/k8s.io/apiextensions-apiserver/pkg/apiserver/customresource_discovery_controller.go`:
  a CRD version is listed with freshness `Current`, resources sorted by name, each with
  `responseKind` (the CRD's group, version and kind), `scope`, `singularResource`, verbs,
  `shortNames`, `categories` and the `status` subresource (verbs get, patch, update); its
  versions are ordered by kube-aware version priority, the preferred one first, as in the
  legacy APIGroup.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from .errors import ApiError
from .resources import Resource

CR_VERBS = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")
AGGREGATED_GROUP = "apidiscovery.k8s.io"
AGGREGATED_KIND = "APIGroupDiscoveryList"


@dataclass(frozen=True)
class _AcceptClause:
    type: str
    subtype: str
    q: float
    params: dict[str, str]


def _parse_accept(header: str) -> list[_AcceptClause]:
    """The clauses of an Accept header in the order goautoneg.ParseAccept sorts them."""
    clauses = []
    for part in header.split(","):
        pieces = part.split(";")
        media = pieces[0].strip()
        if not media:
            continue
        main, _, sub = media.partition("/")
        q, params = 1.0, {}
        for param in pieces[1:]:
            key, eq, value = param.partition("=")
            if not eq:
                continue
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
            else:
                params[key.strip()] = value.strip()
        clauses.append(_AcceptClause(main, sub or "*", q, params))
    # Stable: clauses of equal quality and specificity keep the client's order.
    return sorted(clauses, key=lambda c: (-c.q, c.type == "*", c.subtype == "*"))


def negotiate_aggregated(accept: str, served: tuple[str, ...]) -> str | None:
    """The apidiscovery version `accept` asks for (one of `served`), or None for the legacy list.

    Only JSON is served by this fake, so only clauses JSON satisfies are considered.
    """
    if not accept:
        return None
    for clause in _parse_accept(accept):
        if (clause.type, clause.subtype) not in (("application", "json"), ("application", "*"),
                                                 ("*", "*")):  # fmt: skip
            continue
        params = clause.params
        if params.get("sv"):
            continue  # AllowsServerVersion is false for discovery
        if params.get("stream") not in (None, "", "watch"):
            continue
        if not {"g", "v", "as"} & params.keys():
            return None  # plain JSON: the legacy APIGroupList
        if (
            params.get("g") == AGGREGATED_GROUP
            and params.get("v") in served
            and params.get("as") == AGGREGATED_KIND
        ):
            return params["v"]
        # A conversion discovery does not allow: the next clause is tried.
    return None


def aggregated_content_type(version: str) -> str:
    """The Content-Type kube-apiserver answers aggregated discovery with."""
    return f"application/json;g={AGGREGATED_GROUP};v={version};as={AGGREGATED_KIND}"


def discovery_etag(document: dict[str, Any]) -> str:
    """A quoted upper-case hex SHA-512 of the document, as `aggregated/etag.go` computes."""
    raw = json.dumps(document["items"], sort_keys=True, separators=(",", ":")).encode()
    return '"' + hashlib.sha512(raw).hexdigest().upper() + '"'


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

    def aggregated_discovery_versions(self) -> tuple[str, ...]:
        """The apidiscovery versions `/apis` can answer in: none when aggregated discovery is off.

        apidiscovery.k8s.io/v2beta1 is served from 1.26 (on by default from 1.27), v2 from 1.30.
        """
        if not self.aggregated_discovery:
            return ()
        minor = int(self.kube_version.lstrip("v").split(".")[1])
        return ("v2", "v2beta1") if minor >= 30 else ("v2beta1",)

    def _aggregated(self, version: str) -> dict[str, Any]:
        groups = sorted(
            {res.group for res in self.resources.values() if res.group},
            # Built-in groups have higher priorities than CRD groups (1000); ties go by name.
            key=lambda g: (
                not any(r.is_core_type for r in self.resources.values() if r.group == g),
                g,
            ),
        )
        items = []
        for group in groups:
            versions = []
            for name in self._group_versions.get(group, []):
                resources = [
                    self._resource_discovery(res, name)
                    for _, res in sorted(self._by_gv.get((group, name), {}).items())
                ]
                stale = f"{group}/{name}" in self.stale_discovery
                versions.append(
                    {
                        "version": name,
                        "resources": resources,
                        "freshness": "Stale" if stale else "Current",
                    }
                )
            items.append(
                {"metadata": {"name": group, "creationTimestamp": None}, "versions": versions}
            )
        return {
            "kind": AGGREGATED_KIND,
            "apiVersion": f"{AGGREGATED_GROUP}/{version}",
            "metadata": {},
            "items": items,
        }

    @staticmethod
    def _resource_discovery(res: Resource, version: str) -> dict[str, Any]:
        # Built-in types take responseKind from their legacy APIResource, whose group and
        # version are empty (staging/src/k8s.io/apiserver/pkg/endpoints/installer.go,
        # ConvertGroupVersionIntoToDiscovery); a CRD names its own.
        if res.is_core_type:
            kind = {"group": "", "version": "", "kind": res.kind}
        else:
            kind = {"group": res.group, "version": version, "kind": res.kind}
        categories = res.crd.categories if res.crd else ()
        out: dict[str, Any] = {
            "resource": res.plural,
            "responseKind": kind,
            "scope": "Namespaced" if res.namespaced else "Cluster",
            "singularResource": res.singular,
            "verbs": list(CR_VERBS),
            **({"shortNames": list(res.short_names)} if res.short_names else {}),
            **({"categories": list(categories)} if categories else {}),
        }
        if res.has_status:
            out["subresources"] = [
                {"subresource": "status", "responseKind": kind, "verbs": list(STATUS_VERBS)}
            ]
        return out

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
                    **(
                        {"categories": list(res.crd.categories)}
                        if res.crd and res.crd.categories
                        else {}
                    ),
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
