from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from billing_api.errors import DatabaseUnavailable, problem_responses

router = APIRouter(tags=["health"])

READINESS_TIMEOUT_SECONDS = 3.0


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up. Touches nothing else."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness", responses=problem_responses(503))
async def readyz(request: Request) -> JSONResponse:
    """The database answers (within a few seconds: a probe must not hang)."""

    async def ping() -> None:
        async with request.app.state.sessionmaker() as session:
            await session.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(ping(), READINESS_TIMEOUT_SECONDS)
    except Exception as error:
        raise DatabaseUnavailable("The database does not answer.") from error
    return JSONResponse({"status": "ready"})
