"""Put what the Kubernetes client raises into words: the one place that words API errors.

`describe_error` makes a ClusterProblem a user can act on (status, get, actions);
`error_detail` is the short technical line (`HTTP 403 Forbidden: <the Status message>`) that
the same problems carry as detail, and that the lease and the ConfigMap history log and report.
"""

from __future__ import annotations

import json
import socket

import urllib3.exceptions as u3
from kubernetes.client.exceptions import ApiException

from bot.domain.fleet import ClusterProblem, ProblemKind
from bot.kube.clients import ClusterConfigError


def describe_error(
    err: BaseException, server: str, timeout: float, kinds: tuple[str, ...] = ()
) -> ClusterProblem:
    """A ClusterProblem for `err`, raised while talking to `server`."""
    if isinstance(err, ClusterConfigError):
        return ClusterProblem(ProblemKind.CONFIG, str(err), detail=repr(err))
    if isinstance(err, ApiException):
        return _api_problem(err, kinds)
    cause = _cause(err)
    detail = error_detail(err)
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2, so test it first.
    is_refused = isinstance(cause, u3.NewConnectionError | u3.NameResolutionError)
    if not is_refused and isinstance(cause, u3.TimeoutError | TimeoutError | socket.timeout):
        return ClusterProblem(
            ProblemKind.TIMEOUT,
            f"the API server at {server} did not answer within {timeout:g} s",
            detail=detail,
        )
    if is_refused or isinstance(cause, u3.ProtocolError | ConnectionError | OSError):
        return ClusterProblem(
            ProblemKind.UNREACHABLE,
            f"cannot reach the API server at {server}: {_connection_reason(cause)}",
            detail=detail,
        )
    return ClusterProblem(ProblemKind.API_ERROR, f"unexpected error: {detail}", detail=detail)


def error_detail(err: BaseException) -> str:
    """One line saying what went wrong: `HTTP <code> <reason>: <message>`, else the exception."""
    if isinstance(err, ApiException):
        return f"HTTP {err.status or 0} {err.reason}: {_status_message(err)}"
    cause = _cause(err)
    return f"{type(cause).__name__}: {cause}"


def _cause(err: BaseException) -> BaseException:
    """urllib3 wraps the connection error it gave up on; that one says what happened."""
    return err.reason if isinstance(err, u3.MaxRetryError) and err.reason else err


def _api_problem(err: ApiException, kinds: tuple[str, ...]) -> ClusterProblem:
    status = err.status or 0
    message = _status_message(err)
    detail = error_detail(err)
    if status == 401:
        return ClusterProblem(
            ProblemKind.UNAUTHORIZED,
            "the cluster rejected fluxbot's credentials (401 Unauthorized): the token or client "
            "certificate has expired or is invalid",
            detail=detail,
        )
    if status == 403:
        return ClusterProblem(
            ProblemKind.FORBIDDEN,
            f"fluxbot lacks permission (403 Forbidden): {message}",
            detail=detail,
            kinds=kinds,
        )
    if status == 404 and kinds:
        return ClusterProblem(
            ProblemKind.FLUX_MISSING,
            f"the {', '.join(kinds)} API disappeared while reading (Flux CRDs removed?)",
            detail=detail,
            kinds=kinds,
        )
    if status == 429:
        retry = (err.headers or {}).get("Retry-After")
        wait = f"; retry after {retry} s" if retry else ""
        return ClusterProblem(
            ProblemKind.API_ERROR,
            f"the API server is throttling requests (429){wait}",
            detail=detail,
            kinds=kinds,
        )
    return ClusterProblem(
        ProblemKind.API_ERROR,
        f"the API server answered {status} {err.reason}: {message}",
        detail=detail,
        kinds=kinds,
    )


def _status_message(err: ApiException) -> str:
    """The `message` of the Status body the API server sent, else the HTTP reason."""
    body = err.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            return body.strip()[:300]
        if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
            return str(parsed["message"])
    return str(err.reason or "no details")


def _connection_reason(cause: BaseException) -> str:
    text = str(cause).lower()
    for needle, words in (
        ("refused", "connection refused"),
        ("name or service not known", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("temporary failure in name resolution", "host name not found"),
        ("no route to host", "no route to host"),
        ("certificate verify failed", "TLS certificate not trusted"),
        ("reset by peer", "connection reset"),
    ):
        if needle in text:
            return words
    return str(cause)
