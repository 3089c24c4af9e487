"""The one error object of contract §8, `{"id", "code", "status", "detail"}`, for every
refusal: ours, FastAPI's (validation, unknown route, wrong method) and whatever slipped
through (a 500 with a generic line; the traceback only in the log, never in the answer)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import asyncpg
import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from worker.errors import is_transient, one_line, transient_types
from worker.store import admin

log = structlog.get_logger("queue_hooks.api")

_STARLETTE_IDS = {
    404: "api.route.not_found",
    405: "api.method.not_allowed",
    413: "api.body.too_large",
}


class ApiError(Exception):
    def __init__(self, code: int, error_id: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.error_id, self.detail = code, error_id, detail


def unauthenticated(detail: str) -> ApiError:
    return ApiError(401, "api.auth.unauthenticated", detail)


def forbidden(detail: str) -> ApiError:
    return ApiError(403, "api.auth.forbidden", detail)


def not_found(what: str) -> ApiError:
    return ApiError(404, "api.not_found", f"{what} not found")


def bad_request(detail: str, error_id: str = "api.request.invalid") -> ApiError:
    return ApiError(400, error_id, detail)


def body(code: int, error_id: str, detail: str) -> bytes:
    status = HTTPStatus(code).phrase
    return orjson.dumps({"id": error_id, "code": code, "status": status, "detail": detail})


def response(code: int, error_id: str, detail: str, headers: Any = None) -> Response:
    return Response(
        body(code, error_id, detail), code, headers=headers, media_type="application/json"
    )


def _validation_line(exc: RequestValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    message = str(first.get("msg", "invalid"))
    if first.get("type") == "json_invalid":
        return "the body is not valid JSON"
    return f"{where}: {message}"[:300]


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _ours(_request: Request, exc: ApiError) -> Response:
        return response(exc.code, exc.error_id, exc.detail)

    @app.exception_handler(admin.NotFound)
    async def _missing(_request: Request, exc: admin.NotFound) -> Response:
        return response(404, "api.not_found", exc.public)

    @app.exception_handler(admin.Conflict)
    async def _conflict(_request: Request, exc: admin.Conflict) -> Response:
        return response(409, "api.conflict", exc.public)

    @app.exception_handler(admin.Refused)
    async def _refused(_request: Request, exc: admin.Refused) -> Response:
        return response(400, "api.rule.refused", exc.public)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        return response(400, "api.request.invalid", _validation_line(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        error_id = _STARLETTE_IDS.get(exc.status_code, f"api.http.{exc.status_code}")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return response(exc.status_code, error_id, detail, getattr(exc, "headers", None))

    async def _outage(request: Request, exc: Exception) -> Response:
        """The database down, restarting or failing over: a warning, no traceback; the
        client is told to try again. Registered per class (not under `Exception`, whose
        handler Starlette runs and then re-raises to the server, which logs a traceback)."""
        if not is_transient(exc):
            return await _unexpected(request, exc)
        log.warning("database unreachable", path=request.url.path, error=one_line(exc))
        return response(503, "api.unavailable", "the database cannot be reached; try again")

    kinds: tuple[type[BaseException], ...] = (*transient_types(), asyncpg.PostgresError)
    for kind in kinds:
        if issubclass(kind, Exception):
            app.add_exception_handler(kind, _outage)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected error", path=request.url.path, error=one_line(exc), exc_info=True)
        return response(500, "api.internal", "internal error; the server log has the details")
