"""Errors as kube-apiserver sends them: a `Status` body with the reason for each code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


_DEFAULT_MESSAGES = {
    400: "the server rejected our request for an unknown reason",
    401: "Unauthorized",
    403: "forbidden: the fake API server denied the request",
    404: "the server could not find the requested resource",
    405: "the server does not allow this method on the requested resource",
    409: "the object has been modified; please apply your changes to the latest version and "
    "try again",
    410: "too old resource version",
    422: "the server rejected our request due to an error in our request",
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: injected fault",
    503: "the server is currently unable to handle the request",
    504: "Timeout: request did not complete within requested timeout - context deadline exceeded",
}


def status_body(
    code: int, reason: str | None = None, message: str | None = None, details: Any = None
) -> dict[str, Any]:
    """A `Status` failure object as kube-apiserver sends it with an error response."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message if message is not None else _DEFAULT_MESSAGES.get(code, "error"),
        "reason": reason or _REASONS.get(code, "Unknown"),
    }
    if details:
        body["details"] = details
    body["code"] = code
    return body


class ApiError(Exception):
    """An API failure that the server answers with a `Status` body."""

    def __init__(
        self,
        code: int,
        reason: str | None = None,
        message: str | None = None,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.code = code
        self.body = status_body(code, reason, message, details)
        self.headers = dict(headers or {})
        super().__init__(self.body["message"])
