"""The application factory: routers, problem+json errors, the database for the app's lifetime."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError

from billing_api import __version__
from billing_api.access_log.router import router as access_log_router
from billing_api.access_review.router import router as access_review_router
from billing_api.access_log.writer import AccessLogWriter
from billing_api.automation.router import router as automation_router
from billing_api.assignments.router import router as assignments_router
from billing_api.audit.router import router as audit_router
from billing_api.auth.router import router as auth_router
from billing_api.billing_identity.router import router as billing_identity_router
from billing_api.bills.router import router as bills_router
from billing_api.body_limit import BodyLimitMiddleware
from billing_api.companies.router import router as companies_router
from billing_api.config import Settings, get_settings
from billing_api.contract import TAGS, document_contract
from billing_api.delegation.router import router as delegation_router
from billing_api.documents.router import router as documents_router
from billing_api.db import engine_for, make_sessionmaker
from billing_api.docs_page import install_docs
from billing_api.errors import install_error_handlers, problem_response
from billing_api.events.router import router as events_router
from billing_api.header_limit import HeaderLimitMiddleware
from billing_api.health import router as health_router
from billing_api.identity.router import router as identity_router
from billing_api.invoices.router import router as invoices_router
from billing_api.mail import repository as mail_repository
from billing_api.mail import sender as mail_sender
from billing_api.observability.context import REQUEST_ID_HEADER
from billing_api.observability.metrics import read_outbox_backlog_with
from billing_api.observability.metrics import router as metrics_router
from billing_api.observability.middleware import ObservabilityMiddleware
from billing_api.patients.router import router as patients_router
from billing_api.payers_facilities.router import router as payers_facilities_router
from billing_api.team.router import router as team_router

ROUTERS = [health_router, auth_router, identity_router, companies_router, patients_router, bills_router,
           delegation_router, audit_router]
ROUTERS += [assignments_router, payers_facilities_router]
ROUTERS += [team_router, invoices_router]  # invited users, reports, invoices, payments
ROUTERS += [automation_router]  # billing automation
ROUTERS += [metrics_router]  # Prometheus metrics
ROUTERS += [events_router]  # the integrators' events feed
ROUTERS += [access_log_router]  # the access log
ROUTERS += [billing_identity_router]  # what claims and superbills name for the provider and the practice
ROUTERS += [documents_router]  # bills, superbills and statements as PDF
ROUTERS += [access_review_router]  # who can see a provider's bills, and whether they still use it


def operation_id(route: APIRoute) -> str:
    """Stable, readable operation ids: they become the method names of generated SDKs."""
    return route.name


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if getattr(app.state, "sessionmaker", None) is not None:  # provided by the caller (tests)
        yield
        return
    settings = app.state.settings
    engine = engine_for(settings)
    app.state.sessionmaker = make_sessionmaker(engine)
    # The access log's writer has a connection of its own: reads hold theirs while they wait for it. (Given a
    # sessionmaker, as the tests' transactions are, there is no writer: each read writes its own row.)
    writer = app.state.access_log_writer = (
        AccessLogWriter(engine_for(settings, connections=1)) if settings.access_log_batching else None)
    if writer is not None:
        writer.start()
    # The outbox sender runs beside the API (each worker process; they share the outbox safely).
    stop, sender_task = asyncio.Event(), None
    if settings.mail_sender_enabled:
        sender_task = asyncio.create_task(mail_sender.run(app.state.sessionmaker, settings, stop))
    # What is loaded by now (modules, the app, its routes and models) lives as long as the process: out of the
    # collector's sight, a full collection no longer walks those 200,000 objects (90 ms pauses under a request
    # that allocates many, such as an access review; decision 0017).
    gc.freeze()
    try:
        yield
    finally:
        if writer is not None:
            await writer.stop()
        stop.set()
        if sender_task is not None:
            try:
                await asyncio.wait_for(sender_task, timeout=settings.smtp_timeout_seconds + 5)
            except TimeoutError:
                pass  # wait_for cancelled it; an unfinished message stays queued for the next sender
        await engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.check_production(serving=True)
    app = FastAPI(
        title="billing-api",
        version=__version__,
        summary="Whose bills a person in a medical or billing practice may see and touch.",
        description=(
            "Every error is `application/problem+json` (RFC 9457) with a stable `code`. "
            "Lists page with `limit` and `cursor` (pass back `next_cursor`). "
            "Something you may not see answers 404, not 403."
        ),
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        docs_url=None,  # served by install_docs from packaged files, not a CDN
        # FastAPI's own OpenTelemetry layer looks the providers up on every request; this service exports its
        # own metrics (observability/) and configures no OpenTelemetry.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        redoc_url=None,
        openapi_tags=TAGS,
    )
    app.state.settings = settings
    app.state.sessionmaker = None
    read_outbox_backlog_with(app, mail_repository.count_queued)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["ETag", REQUEST_ID_HEADER, "Idempotent-Replayed", "Retry-After"],
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    app.add_middleware(HeaderLimitMiddleware, max_headers=settings.max_request_headers,
                       max_bytes=settings.max_request_head_bytes)
    # Added last, so outermost: every answer, CORS preflights and unexpected errors included, gets its headers.
    app.add_middleware(ObservabilityMiddleware, settings=settings)
    install_error_handlers(app)
    document_contract(app)

    @app.exception_handler(IntegrityError)
    async def integrity_error(request: Request, exc: IntegrityError) -> JSONResponse:
        # A race past the service's own checks (two creates of one username at once, say).
        return problem_response(request, 409, "conflict", "The change conflicts with existing data; nothing was saved.")

    for router in ROUTERS:
        app.include_router(router)
    install_docs(app)
    return app
