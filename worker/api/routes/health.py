"""`/healthz` and `/readyz` for the orchestrator (Kubernetes probes, compose's healthcheck):
no token, outside /api and its OpenAPI document, plain text as the worker's (worker/health.py).

- `/healthz`: 200 while the process serves requests (a liveness probe: restart if not).
- `/readyz`: 200 when the database answers through the API's pool, else 503 with one line
  saying why (a readiness probe: send no requests here meanwhile, but do not restart).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from worker.health import readiness_text
from worker.store.db import unready

router = APIRouter(include_in_schema=False)

READY_TIMEOUT = 2.0  # seconds: a probe must get its answer within its own timeout (3 s)


@router.get("/healthz")
async def healthz() -> PlainTextResponse:
    return PlainTextResponse("ok\n")


@router.get("/readyz")
async def readyz(request: Request) -> PlainTextResponse:
    why = await unready(request.app.state.pool, READY_TIMEOUT)
    ok, text = readiness_text({"postgresql": why is None})
    return PlainTextResponse(f"{text}{f': {why}' if why else ''}\n", 200 if ok else 503)
