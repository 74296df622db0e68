"""`Idempotency-Key` on POSTs that create things.

A route opts in with `dependencies=[Idempotent]` on a router whose `route_class` is `IdempotentRoute`. The
dependency runs before the work, in the request's transaction: it holds the caller's key (a second request with
the key still running gets 409 `idempotency_key_in_progress` at once, rather than waiting), answers a repeat
with the stored response and `Idempotent-Replayed: true`, and refuses the key with another request (422
`idempotency_key_reused`). The route class stores the response in the same transaction as the work, after
the route has built it and before the session commits: a request that fails leaves no key behind.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.auth.principal import CurrentPrincipal
from billing_api.db import Session
from billing_api.deps import AppSettings
from billing_api.errors import Conflict, Unprocessable
from billing_api.idempotency import repository
from billing_api.models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"


@dataclass
class _Pending:
    """A key this request holds: its response is stored when the route has answered."""

    session: AsyncSession
    user_id: uuid.UUID
    key: str
    request_hash: str
    expires_at: datetime

    async def store(self, response: Response) -> None:
        await repository.add(self.session, IdempotencyKey(
            user_id=self.user_id, key=self.key, request_hash=self.request_hash, status_code=response.status_code,
            media_type=response.media_type, response_body=bytes(response.body).decode(), expires_at=self.expires_at,
        ))


class _Replay(Exception):
    def __init__(self, stored: IdempotencyKey) -> None:
        self.stored = stored

    def response(self) -> Response:
        return Response(self.stored.response_body, status_code=self.stored.status_code,
                        media_type=self.stored.media_type, headers={REPLAYED: "true"})


async def _fingerprint(request: Request) -> str:
    """The method, path, query and body; JSON bodies in canonical form (spacing and key order do not count)."""
    body = await request.body()
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")) if body else ""
    except ValueError:
        canonical = body.hex()  # not JSON: the route refuses it, and nothing is stored
    query = sorted(request.query_params.multi_items())
    text = json.dumps([request.method, request.url.path, query, canonical])
    return hashlib.sha256(text.encode()).hexdigest()


async def idempotency_key(
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    settings: AppSettings,
    key: Annotated[str | None, Header(
        alias=HEADER, min_length=1, max_length=255,
        description="Your unique key for this write (a UUID, say), to retry it safely. The same key with the same "
                    "request, by you, within 24 hours (the setting `idempotency_key_ttl_hours`) answers the first "
                    "result again, without doing the work twice, with header `Idempotent-Replayed: true`. The same "
                    "key with another request: 422 `idempotency_key_reused`. While the first request with the key "
                    "is still running: 409 `idempotency_key_in_progress` (retry after a moment). A request that "
                    "failed keeps no key.",
    )] = None,
) -> None:
    if key is None:
        return
    request_hash = await _fingerprint(request)
    if not await repository.try_lock(session, principal.id, key):
        raise Conflict("A request with this Idempotency-Key is still running; retry in a moment.",
                       code="idempotency_key_in_progress", headers={"Retry-After": "1"})
    now = datetime.now(UTC)
    stored = await repository.get(session, principal.id, key)
    if stored is not None and stored.expires_at <= now:
        await repository.remove(session, principal.id, key)
        stored = None
    if stored is not None:
        if stored.request_hash != request_hash:
            raise Unprocessable("This Idempotency-Key was used with another request; use a new key.",
                                code="idempotency_key_reused")
        raise _Replay(stored)
    request.state.idempotency = _Pending(session, principal.id, key, request_hash,
                                         now + timedelta(hours=settings.idempotency_key_ttl_hours))


Idempotent = Depends(idempotency_key)


class IdempotentRoute(APIRoute):
    """Stores the response of a request that holds a key, and answers a replay. A no-op for requests
    without `Idempotency-Key` and for routes without the `Idempotent` dependency."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handle = super().get_route_handler()

        async def handle_idempotently(request: Request) -> Response:
            try:
                response = await handle(request)
            except _Replay as replay:
                return replay.response()
            pending: _Pending | None = getattr(request.state, "idempotency", None)
            if pending is not None:
                await pending.store(response)  # the request's session commits after this, work and key together
            return response

        return handle_idempotently
