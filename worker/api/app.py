"""The application: routes under /api, the page's static files at /, one asyncpg pool."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker import __version__
from worker.api import errors
from worker.api.routes import health, hooks, lookups
from worker.settings import Settings
from worker.store.db import create_pool

STATIC = Path(__file__).parent / "static"


class BodyLimit:
    """Refuses a body over the limit with the §8 error (413) before a route reads it, whether
    announced by Content-Length or streamed in chunks."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.limit:
            await self._refuse(scope, receive, send, length.isdigit())
            return
        if b"content-length" in dict(scope["headers"]):
            await self.app(scope, receive, send)
            return
        # Streamed in chunks: read it here, up to the limit, then hand it on whole.
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            seen, more = seen + len(chunks[-1]), message.get("more_body", False)
            if seen > self.limit:
                await errors.response(413, "api.body.too_large", self._detail())(
                    scope, receive, send
                )
                return
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return whole

        await self.app(scope, replay, send)

    def _detail(self) -> str:
        return f"the body is larger than {self.limit} bytes"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, numeric: bool) -> None:
        code, error_id, detail = (413, "api.body.too_large", self._detail()) if numeric else (
            400, "api.request.invalid", "Content-Length is not a number")  # fmt: skip
        await errors.response(code, error_id, detail)(scope, receive, send)


class JsonBodies:
    """Every body of the API is JSON, whatever its Content-Type says: `curl -d` labels its
    data a form's, and a form is never what the platform's engine reads either."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _api(scope):
            kept = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = {**scope, "headers": [*kept, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


class HeadAsGet:
    """HEAD of an API path is its GET (RFC 9110 §9.3.2): FastAPI routes GET alone, so a HEAD
    fell through to the page's files and a hooks list that exists was answered 404. The
    server sends no body for a HEAD (uvicorn keeps the request's own method)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD" and _api(scope):
            scope = {**scope, "method": "GET"}
        await self.app(scope, receive, send)


def _api(scope: Scope) -> bool:
    path: str = scope["path"]
    return path.startswith("/api/")


def create_app(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await create_pool(settings.database_url, settings.api_pool_size)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(
        title="queue-hooks admin API", version=__version__, lifespan=lifespan,
        openapi_url="/api/openapi.json", docs_url="/api/docs", redoc_url=None,
        description="The platform's QueueHookService, served by queue-hooks (contract §8, §9).",
        responses={code: {"model": errors_model()} for code in (400, 401, 403, 404, 413)},
    )  # fmt: skip
    app.state.settings = settings
    errors.install(app)
    app.include_router(hooks.router, prefix="/api")
    app.include_router(lookups.router, prefix="/api")
    app.include_router(health.router)
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="page")
    app.openapi = lambda: document(app)  # type: ignore[method-assign]
    app.add_middleware(JsonBodies)
    app.add_middleware(HeadAsGet)
    app.add_middleware(BodyLimit, limit=settings.api_max_body)
    return app


def document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document without FastAPI's 422 `HTTPValidationError`, which this API never
    answers (a validation error is the §8 object, 400): a client generated from the document
    would otherwise expect a shape no answer has."""
    if app.openapi_schema is None:
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description,
            routes=app.routes,
        )  # fmt: skip
        for operations in doc["paths"].values():
            for operation in operations.values():
                operation["responses"].pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            doc.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = doc
    return app.openapi_schema


def errors_model() -> type:
    from worker.api.models import Error

    return Error
