"""Bounds on a request's head (its request line and headers): 431 problem+json `headers_too_large` beyond them.

At the server: `billing-api serve` runs uvicorn's h11 protocol with h11's receive buffer bounded to
`max_request_head_bytes` (httptools, uvicorn's default, buffers a header of any size), so a longer head is refused
while it arrives and never reaches the app. HeadLimitedH11Protocol answers it with 431 problem+json, and any other
malformed request with 400 problem+json `bad_request` (uvicorn answers both with a plain-text 400).

In the app: HeaderLimitMiddleware refuses more than `max_request_headers` header fields, which no byte bound
catches (20,000 empty headers fit in 80 KiB), and header bytes over `max_request_head_bytes` under any server
(h11 checks only a head that is still incomplete, so one that arrived whole can be slightly longer).
"""

from __future__ import annotations

import json
from http import HTTPStatus

import h11
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from billing_api.errors import PROBLEM_JSON, problem_response

HEADERS_TOO_LARGE = "headers_too_large"


def too_many_headers(limit: int) -> str:
    return f"The request has more than {limit} header fields."


def headers_too_long(limit: int) -> str:
    return f"The request line and headers are longer than {limit} bytes."


class HeaderLimitMiddleware:
    def __init__(self, app: ASGIApp, max_headers: int, max_bytes: int) -> None:
        self.app = app
        self.max_headers = max_headers
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            detail = None
            if len(headers) > self.max_headers:
                detail = too_many_headers(self.max_headers)
            elif sum(len(name) + len(value) for name, value in headers) > self.max_bytes:
                detail = headers_too_long(self.max_bytes)
            if detail is not None:
                response = problem_response(Request(scope), 431, HEADERS_TOO_LARGE, detail)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class HeadLimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, whose protocol errors answer problem+json: 431 when the head outgrew h11's bound
    (`h11_max_incomplete_event_size`, which h11 checks against the bytes it holds unparsed), else 400."""

    def send_400_response(self, msg: str) -> None:
        limit = self.config.h11_max_incomplete_event_size
        if limit is not None and len(self.conn.trailing_data[0]) > limit:
            status, code, detail = 431, HEADERS_TOO_LARGE, headers_too_long(limit)
        else:
            status, code, detail = 400, "bad_request", "The request is not valid HTTP/1.1."
        body = json.dumps({"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
                           "detail": detail, "code": code}).encode()
        headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode()),
                   (b"x-content-type-options", b"nosniff"), (b"connection", b"close")]
        for event in (h11.Response(status_code=status, headers=headers, reason=HTTPStatus(status).phrase),
                      h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()
