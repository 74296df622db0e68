"""One ASGI middleware, outermost, so that every answer (errors, 404s, CORS preflights) gets the request id,
the security headers, an access log line and a place in the metrics."""

from __future__ import annotations

import logging
import time
from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billing_api.config import Settings
from billing_api.observability import context, metrics

access_log = logging.getLogger("billing_api.access")

API_CSP = "default-src 'none'; frame-ancestors 'none'"
# The docs page (swagger-ui served by the service itself): its own scripts and styles, the inline bootstrap
# script, inline styles and data: images that swagger-ui uses, and calls back to the API.
DOCS_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")
DOCS_PATHS = ("/docs",)
# The docs page's own assets (docs_page.py mounts them there): the same for everyone, so browsers may keep them.
STATIC_PREFIX = "/docs/static/"
HSTS = "max-age=31536000; includeSubDomains"


def security_headers(path: str, https: bool) -> list[tuple[bytes, bytes]]:
    return _security_headers(path.startswith(DOCS_PATHS), path.startswith(STATIC_PREFIX), https)


@cache
def _security_headers(docs: bool, static: bool, https: bool) -> list[tuple[bytes, bytes]]:
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": DOCS_CSP if docs else API_CSP,
    }
    if not static:  # data (and pages about it) are never kept by browsers or proxies
        headers["Cache-Control"] = "no-store"
    if https:
        headers["Strict-Transport-Security"] = HSTS
    return [(name.lower().encode(), value.encode()) for name, value in headers.items()]


def route_template(scope: Scope) -> str:
    """The route's path template (`/v1/bills/{bill_id}`), never the raw path: metrics stay bounded."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.production = settings.env == "production"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        state: dict[str, Any] = {"request_id": context.request_id_from(incoming), "user_id": None}
        token = context.current.set(state)
        https = self.production or scope.get("scheme") == "https"
        extra = [(b"x-request-id", state["request_id"].encode()), *security_headers(scope["path"], https)]
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in extra if name not in present]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as error:
            if response_started:
                raise
            # The app's handler for unexpected errors (problem+json, logged, no trace), answered here so that
            # it carries the headers too (Starlette would answer it outside every middleware).
            handler = scope["app"].exception_handlers[Exception]
            response = await handler(Request(scope, receive), error)
            await response(scope, receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            metrics.observe_request(scope["method"], route, status, seconds)
            metrics.observe_pool(scope["app"].state.sessionmaker)
            access_log.info("%s %s %s", scope["method"], route, status, extra={
                "method": scope["method"], "route": route, "status": status,
                "duration_ms": round(seconds * 1000, 2)})
            context.current.reset(token)
