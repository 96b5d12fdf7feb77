"""The API's one error body and the one exception handler that produces it.

Every error answer is ``{"detail": str, "code": str, "request_id": str}`` (plus ``errors`` for a
request that fails validation), so a client reads ``detail`` as before and branches on ``code``.
``handle_error`` maps the project's errors (those carrying an HTTP ``status``: SessionError,
UploadError, AuthError; other SpotOnErrors by class), ``HTTPException`` and request validation
errors to that body; routes declare it with ``responses=error_responses(404, 422, ...)``.
Anything else is a bug: 500 with a generic detail (the traceback goes to the log, not the client).
"""
from __future__ import annotations

import logging
from typing import Literal

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from spoton.errors import MissingWeightsError, SpotOnError
from spoton.redact import redact
from spoton.storage.store import StoreError

from apps.live_api.auth import AuthError

log = logging.getLogger(__name__)

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
         416: "range_not_satisfiable", 422: "invalid", 429: "too_many_requests", 500: "internal",
         502: "upstream_failed", 503: "unavailable"}
ErrorCode = Literal[(*CODES.values(), "error")]  # "error": a status CODES does not name
# SpotOnErrors without a status of their own: a missing store object, missing model weights
# (the server is not set up), anything else a request the server cannot use.
_STATUS_BY_CLASS = ((StoreError, 404), (MissingWeightsError, 503), (SpotOnError, 422))
_HANDLED = (SpotOnError, AuthError, HTTPException, RequestValidationError)


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="where in the request: e.g. ['body', 'tick_rate_hz']")
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every error the API answers (the ``detail`` of earlier versions, plus a stable ``code``)."""

    detail: str = Field(description="what is wrong and how to fix it")
    code: ErrorCode = Field(description="stable, machine-readable: branch on this, not on detail")
    request_id: str | None = Field(None, description="the X-Request-ID of the request, also in the server log")
    errors: list[FieldError] | None = Field(None, description="each invalid field (422 validation errors)")


def code_for(status: int) -> str:
    return CODES.get(status, "error")


def error_responses(*statuses: int) -> dict[int, dict]:
    """``responses=`` for a route: each status answers an ErrorBody."""
    return {status: {"model": ErrorBody, "description": code_for(status)} for status in statuses}


def current_request_id() -> str | None:
    """The id ``observe.RequestObservation`` bound for the request being served."""
    return structlog.contextvars.get_contextvars().get("request_id")


def error_json(status: int, detail: str, headers: dict | None = None,
               errors: list[dict] | None = None) -> JSONResponse:
    body = ErrorBody(detail=detail, code=code_for(status), request_id=current_request_id(), errors=errors)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _validation(exc: RequestValidationError) -> tuple[str, list[dict]]:
    errors = [{"loc": [p if isinstance(p, int) else redact(str(p)) for p in e.get("loc", ())],
               "msg": redact(str(e.get("msg", ""))), "type": str(e.get("type", ""))} for e in exc.errors()]
    detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    return detail or "invalid request", errors


def status_of(exc: Exception) -> int:
    """The HTTP status an exception answers (500 for anything the API does not expect)."""
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, RequestValidationError):
        return 422
    status = getattr(exc, "status", None)
    if isinstance(exc, (SpotOnError, AuthError)) and isinstance(status, int):
        return status
    return next((s for cls, s in _STATUS_BY_CLASS if isinstance(exc, cls)), 500)


async def handle_error(request: Request, exc: Exception) -> JSONResponse:
    """THE exception handler: any exception -> its status and an ErrorBody; counts it by code."""
    status = status_of(exc)
    headers, errors = None, None
    if isinstance(exc, RequestValidationError):
        detail, errors = _validation(exc)
    elif isinstance(exc, HTTPException):
        detail, headers = str(exc.detail), exc.headers
        if status == 405:
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
    elif status == 500:
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, route_template(request.scope),
                  exc_info=exc)
        detail = "internal error: the server log has the details (search it for this request_id)"
    else:
        detail = str(getattr(exc, "detail", None) or exc)
        if status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(code_for(status)).inc()
    return error_json(status, detail, headers, errors)


def route_template(scope: dict) -> str:
    """The matched route's path template (``/api/v1/sessions/{session_id}``), never the raw path."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's 405 names only the first route's).

    Only the most literal templates count: at ``/sites/s/cameras/test`` that is ``.../cameras/test``
    (POST), not ``.../cameras/{camera}`` (DELETE), as the OpenAPI document describes the resource.
    """
    by_params: dict[int, set[str]] = {}
    for route in _flat_routes(request.app.router.routes):
        regex, route_methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and route_methods and regex.match(request.url.path):
            by_params.setdefault(len(getattr(route, "param_convertors", {})), set()).update(route_methods)
    return sorted(by_params[min(by_params)]) if by_params else []


def _flat_routes(routes):
    """The routes with each included router's own in its place (FastAPI keeps those routers whole)."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        yield from contexts() if contexts is not None else (route,)


def _document_error_body(schema: dict) -> dict:
    """Point FastAPI's automatic 422 answers (``HTTPValidationError``) at ErrorBody, which is what
    ``handle_error`` sends for them."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(body.pop("$defs", {}))
    components["ErrorBody"] = body
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                media = response.get("content", {}).get("application/json", {})
                if media.get("schema", {}).get("$ref") == "#/components/schemas/HTTPValidationError":
                    media["schema"] = {"$ref": "#/components/schemas/ErrorBody"}
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    return schema


def install(app: FastAPI) -> None:
    """Register ``handle_error`` for every error the API maps (unexpected ones reach it through
    ``observe.RequestObservation``, which answers them inside the request's log context), and
    document its body for the automatic 422s too."""
    for exc_class in _HANDLED:
        app.add_exception_handler(exc_class, handle_error)
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = _document_error_body(generate())
        return app.openapi_schema

    app.openapi = openapi
