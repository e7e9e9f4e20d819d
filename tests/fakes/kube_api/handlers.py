"""The resource verbs: list, get, create, update, patch, delete, deletecollection."""

from __future__ import annotations

import base64
import copy
import json
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .discovery import _Request
from .encoding import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_PATCH,
    _dumps,
    _media_type,
    _now,
)
from .errors import ApiError
from .patch import json_patch, merge_patch
from .resources import Resource
from .selectors import FieldSelector, LabelSelector
from .store import _in_version, _Stored

if TYPE_CHECKING:
    from .server import RequestRecord


def _record_manager(obj: dict[str, Any], manager: str, operation: str, target: _Request) -> None:
    entries = [
        e
        for e in obj["metadata"].get("managedFields") or []
        if not (
            e.get("manager") == manager
            and e.get("operation") == operation
            and e.get("subresource") == target.subresource
        )
    ]
    entry: dict[str, Any] = {
        "manager": manager,
        "operation": operation,
        "apiVersion": target.resource.api_version(target.version),
        "time": _now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": {},
    }
    if target.subresource:
        entry["subresource"] = target.subresource
    entries.append(entry)
    obj["metadata"]["managedFields"] = entries


def _require_manager(record: RequestRecord) -> str:
    if not record.field_manager:
        raise ApiError(
            422,
            "Invalid",
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required '
            "for apply patch",
        )
    return record.field_manager


def _apply_body(body: Any, target: _Request) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "an apply patch must be an object")
    meta = body.setdefault("metadata", {})
    if target.namespace:
        meta.setdefault("namespace", target.namespace)
    meta.setdefault("name", target.name)
    return body


class ResourceHandlers:
    """Answers to resource requests (a mixin of FakeKubeApiServer)."""

    def _dispatch(
        self, verb: str, target: _Request, record: RequestRecord, body: Any, manager: str
    ) -> tuple[int, dict[str, Any] | bytes]:
        """(HTTP status, body) of a non-watch resource request."""
        res = target.resource
        is_apply = _media_type(record.content_type) == APPLY_PATCH
        if verb == "list":
            return 200, self._list(target, record.query)
        if verb == "deletecollection":
            return 200, self._delete_collection(target, record.query)
        if verb == "create":
            return 201, self._create(target, body, manager, record.query)
        assert target.name is not None
        namespace = target.namespace or ""
        stored = self._store[res.key].get((namespace, target.name))
        if verb == "patch" and stored is None and is_apply and not target.subresource:
            applied = _apply_body(body, target)
            manager = _require_manager(record)
            return 201, self._create(target, applied, manager, record.query, "Apply")
        if stored is None:
            raise self._not_found(res, target.name)
        if verb == "get":
            return 200, _in_version(stored.obj, res, target.version)
        if verb == "delete":
            return 200, self._delete(target, stored, body, record.query)
        if verb == "update":
            new = self._updated(target, stored, body)
        else:
            new = self._patched(target, stored, body, record)
        _record_manager(new, manager, "Apply" if is_apply else "Update", target)
        return 200, self._write(target, stored, new, record.query)

    def _not_found(self, res: Resource, name: str) -> ApiError:
        details = {"name": name, **({"group": res.group} if res.group else {}), "kind": res.plural}
        return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found', details)

    def _conflict(self, res: Resource, name: str, message: str | None = None) -> ApiError:
        details = {"name": name, **({"group": res.group} if res.group else {}), "kind": res.plural}
        text = message or (
            "the object has been modified; please apply your changes to the latest version "
            "and try again"
        )
        return ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {res.qualified} "{name}": {text}',
            details,
        )

    def _selectors(self, target: _Request, query: Mapping[str, str]) -> tuple[Any, Any]:
        try:
            labels = LabelSelector.parse(query.get("labelSelector"))
            fields = FieldSelector.parse(query.get("fieldSelector"), target.resource)
        except ValueError as err:
            raise ApiError(400, "BadRequest", str(err)) from None
        return labels, fields

    def _matching(self, target: _Request, query: Mapping[str, str]) -> list[_Stored]:
        labels, fields = self._selectors(target, query)
        out = []
        for (ns, _name), stored in sorted(self._store[target.resource.key].items()):
            if target.namespace is not None and ns != target.namespace:
                continue
            obj = stored.obj
            if labels.matches(obj["metadata"].get("labels")) and fields.matches(obj):
                out.append(stored)
        return out

    def _list(self, target: _Request, query: Mapping[str, str]) -> bytes:
        res = target.resource
        items = self._matching(target, query)
        meta: dict[str, Any] = {"resourceVersion": str(self._rv)}
        start = 0
        if token := query.get("continue"):
            try:
                after = json.loads(base64.urlsafe_b64decode(token.encode()))["start"]
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "BadRequest", "continue key is not valid") from None
            start = next(
                (
                    i
                    for i, s in enumerate(items)
                    if [s.obj["metadata"]["namespace"], s.obj["metadata"]["name"]] > after
                ),
                len(items),
            )
        items = items[start:]
        limit = int(query.get("limit") or 0)
        if limit > 0 and len(items) > limit:
            last = items[limit - 1].obj["metadata"]
            token_body = {"rv": self._rv, "start": [last["namespace"], last["name"]]}
            meta["continue"] = base64.urlsafe_b64encode(_dumps(token_body)).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        api_version = res.api_version(target.version)
        if api_version == res.api_version():
            raws = [s.raw for s in items]
        else:
            raws = [_dumps(_in_version(s.obj, res, target.version)) for s in items]
        head = _dumps({"apiVersion": api_version, "kind": res.list_kind, "metadata": meta})
        return head[:-1] + b',"items":[' + b",".join(raws) + b"]}"

    def _check_identity(self, target: _Request, body: Any) -> dict[str, Any]:
        res = target.resource
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be a JSON object")
        expected = res.api_version(target.version)
        if res.is_core_type:
            # Built-in types decode with the URL's group/version/kind as defaults.
            body.setdefault("apiVersion", expected)
            body.setdefault("kind", res.kind)
        if body.get("kind") != res.kind or body.get("apiVersion") != expected:
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({body.get('apiVersion')}) and kind "
                f"({body.get('kind')}) do not match the expected {expected} {res.kind}",
            )
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        ns = meta.get("namespace")
        if ns and target.namespace and ns != target.namespace:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on "
                "the request",
            )
        if target.namespace:
            meta["namespace"] = target.namespace
        return body

    def _create(
        self,
        target: _Request,
        body: Any,
        manager: str,
        query: Mapping[str, str],
        operation: str = "Update",
    ) -> dict[str, Any]:
        res = target.resource
        obj = self._check_identity(target, body)
        meta = obj["metadata"]
        if meta.get("resourceVersion"):
            raise ApiError(
                400, "BadRequest", "resourceVersion should not be set on objects to be created"
            )
        if not meta.get("name") and meta.get("generateName"):
            alphabet = "bcdfghjklmnpqrstvwxz2456789"
            meta["name"] = meta["generateName"] + "".join(
                secrets.choice(alphabet) for _ in range(5)
            )
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "generation"):
            meta.pop(key, None)
        if res.has_status:
            obj.pop("status", None)
        self._validate(res, target.version, obj)
        if (meta["namespace"], meta["name"]) in self._store[res.key]:
            details = {"name": meta["name"], "group": res.group, "kind": res.plural}
            raise ApiError(
                409,
                "AlreadyExists",
                f'{res.qualified} "{meta["name"]}" already exists',
                details,
            )
        new = self._fill_new(res, target.version, obj)
        _record_manager(new, manager, operation, target)
        if query.get("dryRun") == "All":
            return _in_version(new, res, target.version)
        return _in_version(self._commit(res, None, new).obj, res, target.version)

    def _updated(self, target: _Request, stored: _Stored, body: Any) -> dict[str, Any]:
        res = target.resource
        obj = self._check_identity(target, body)
        name = obj["metadata"].get("name")
        if name != target.name:
            raise ApiError(
                400,
                "BadRequest",
                f"the name of the object ({name}) does not match the name on the URL "
                f"({target.name})",
            )
        rv = obj["metadata"].get("resourceVersion")
        if rv and rv != stored.obj["metadata"]["resourceVersion"]:
            raise self._conflict(res, target.name or "")
        return self._merge_into(target, stored, obj)

    def _patched(
        self, target: _Request, stored: _Stored, body: Any, record: RequestRecord
    ) -> dict[str, Any]:
        res = target.resource
        content_type = _media_type(record.content_type)
        current = _in_version(stored.obj, res, target.version)
        try:
            if content_type == MERGE_PATCH or (
                content_type == STRATEGIC_PATCH and res.is_core_type
            ):
                if not isinstance(body, dict):
                    raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
                patched = merge_patch(current, body)
            elif content_type == JSON_PATCH:
                patched = json_patch(current, body)
            elif content_type == APPLY_PATCH:
                _require_manager(record)
                patched = merge_patch(current, _apply_body(body, target))
            else:
                accepted = f"{JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}"
                if res.is_core_type:
                    accepted += f", {STRATEGIC_PATCH}"
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: {accepted}",
                )
        except ValueError as err:
            raise ApiError(422, "Invalid", f"the server rejected our request: {err}") from None
        if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
            raise ApiError(422, "Invalid", "the patch removed the object's metadata")
        rv = patched["metadata"].get("resourceVersion")
        if rv and rv != stored.obj["metadata"]["resourceVersion"]:
            raise self._conflict(res, target.name or "")
        for key in ("apiVersion", "kind"):
            if patched.get(key) != current.get(key):
                raise ApiError(400, "BadRequest", f"a patch may not change {key}")
        if patched["metadata"].get("name") != target.name or patched["metadata"].get(
            "namespace"
        ) != (target.namespace or ""):
            raise ApiError(400, "BadRequest", "a patch may not change the name or namespace")
        return self._merge_into(target, stored, patched)

    def _merge_into(self, target: _Request, stored: _Stored, obj: dict[str, Any]) -> dict[str, Any]:
        """The object to store after a write of `obj`, keeping what the writer may not change."""
        res = target.resource
        old = stored.obj
        if target.subresource == "status":
            new = copy.deepcopy(old)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
            return new
        new = obj
        if res.has_status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        meta, old_meta = new["metadata"], old["metadata"]
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "name",
        ):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        meta["managedFields"] = copy.deepcopy(old_meta.get("managedFields", []))
        self._set_generation(res, old, new)
        return new

    def _write(
        self,
        target: _Request,
        stored: _Stored,
        new: dict[str, Any],
        query: Mapping[str, str],
    ) -> dict[str, Any]:
        res = target.resource
        new["apiVersion"] = res.api_version(target.version)
        self._validate(res, target.version, new)
        if query.get("dryRun") == "All":
            return new
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._commit(res, stored, None)
            return _in_version(new, res, target.version)
        return _in_version(self._commit(res, stored, new).obj, res, target.version)

    def _delete(
        self, target: _Request, stored: _Stored, body: Any, query: Mapping[str, str]
    ) -> dict[str, Any]:
        res = target.resource
        meta = stored.obj["metadata"]
        pre = (body or {}).get("preconditions") or {} if isinstance(body, dict) else {}
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
            raise self._conflict(
                res,
                meta["name"],
                f"Precondition failed: ResourceVersion in precondition: "
                f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                f"{meta['resourceVersion']}",
            )
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise self._conflict(
                res,
                meta["name"],
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: "
                f"{meta['uid']}",
            )
        if query.get("dryRun") == "All":
            return _in_version(stored.obj, res, target.version)
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return _in_version(stored.obj, res, target.version)
            new = copy.deepcopy(stored.obj)
            new["metadata"]["deletionTimestamp"] = _now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            return _in_version(self._commit(res, stored, new).obj, res, target.version)
        self._commit(res, stored, None)
        details = {
            "name": meta["name"],
            **({"group": res.group} if res.group else {}),
            "kind": res.plural,
            "uid": meta["uid"],
        }
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }

    def _delete_collection(self, target: _Request, query: Mapping[str, str]) -> dict[str, Any]:
        res = target.resource
        deleted = []
        for stored in self._matching(target, query):
            deleted.append(_in_version(stored.obj, res, target.version))
            if query.get("dryRun") != "All":
                self._commit(res, stored, None)
        return {
            "apiVersion": res.api_version(target.version),
            "kind": res.list_kind,
            "metadata": {"resourceVersion": str(self._rv)},
            "items": deleted,
        }
