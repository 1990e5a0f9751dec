"""Every failure as Designate's error body: ``{code, type, message, request_id}``.

zoneflow's own errors carry their status and type (:mod:`zoneflow.exceptions`);
a request FastAPI refuses before it reaches a route (a body that is not JSON,
a missing or mistyped field, an unknown URL) gets the same body; anything
else is logged with its traceback and answered 500 with only the request id,
which finds the traceback in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from zoneflow import exceptions

LOG = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-OpenStack-Request-ID"
RETRY_AFTER_SECONDS = 5
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_HTTP_TYPES = {404: "not_found", 405: "method_not_allowed", 415: "unsupported_content_type"}


def body(
    request: Request,
    status: int,
    error_type: str,
    message: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    request_id = getattr(request.state, "request_id", "")
    content: dict[str, Any] = {
        "code": status,
        "type": error_type,
        "message": message,
        "request_id": request_id,
    }
    if errors:
        content["errors"] = {"errors": errors}
    return JSONResponse(
        content, status_code=status, headers={**(headers or {}), REQUEST_ID_HEADER: request_id}
    )


def _zoneflow_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, exceptions.ZoneflowError)
    if exc.http_status >= 500:
        LOG.error("%s %s failed: %s", request.method, request.url.path, exc)
    headers = exc.headers if isinstance(exc, exceptions.NotAuthenticated) else None
    message = exc.message
    if isinstance(exc, exceptions.ZoneNotFound):
        # Storage says only which zone is missing: the CLI reaches it too, and
        # each front end names its own way to list the zones.
        message += ": GET /v2/zones lists the zones you can see"
    if isinstance(exc, exceptions.ServiceUnavailable):
        # What is away (the database, the jobboard, Keystone) is usually back in seconds.
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return body(request, exc.http_status, exc.error_type, message, headers=headers)


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = None
    if exc.status_code == 404:
        message = f"there is nothing at {request.url.path}: see /openapi.json for what is served"
    elif exc.status_code == 405:
        allowed = _allowed_methods(request)
        message = f"{request.method} is not allowed on {request.url.path}: use {allowed}"
        # RFC 9110: a 405 lists the methods the resource has.
        headers = {"Allow": allowed}
    else:
        message = str(exc.detail)
    kind = _HTTP_TYPES.get(exc.status_code, "bad_request")
    return body(request, exc.status_code, kind, message, headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path. Starlette's own Allow names only
    the methods of the path's first route, and GET and POST /v2/zones are two routes."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]
    return ", ".join(allowed)


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = list(exc.errors())
    kinds = {problem.get("type") for problem in problems}
    if "json_invalid" in kinds:
        return body(
            request, 400, "invalid_json", "the request body is not valid JSON: send a JSON object"
        )
    if any(p.get("type") == "missing" and tuple(p.get("loc", ())) == ("body",) for p in problems):
        return body(
            request,
            400,
            "empty_request_body",
            "the request has no body: send a JSON object with the fields to set",
        )
    fields = [_field_error(problem) for problem in problems]
    message = "; ".join(f"{_path_text(f['path'])}: {f['message']}" for f in fields)
    return body(request, 400, "invalid_object", message, fields)


def _field_error(problem: dict[str, Any]) -> dict[str, Any]:
    """One refused field, as Designate's validation errors name it."""
    loc = list(problem.get("loc", ()))
    path = loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc
    kind = str(problem.get("type", "invalid"))
    if kind == "extra_forbidden":
        message = "is not a field that can be set here"
    elif kind in ("model_attributes_type", "dict_type") and not path:
        message = "the body must be a JSON object"
    else:
        message = str(problem.get("msg", "is invalid")).removeprefix("Value error, ")
    limits = {k: v for k, v in (problem.get("ctx") or {}).items() if k != "error"}
    return {
        "path": path,
        "message": message,
        "validator": kind,
        "validator_value": ", ".join(f"{k}={v}" for k, v in limits.items()) or None,
    }


def _path_text(path: Sequence[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Log what nobody planned for; tell the client only where to look."""
    LOG.exception(
        "%s %s failed (request %s)",
        request.method,
        request.url.path,
        getattr(request.state, "request_id", "?"),
    )
    return body(
        request,
        500,
        "unknown",
        "an internal error occurred: the server's log has the details under this request_id",
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(exceptions.ZoneflowError, _zoneflow_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
