"""HTTP for the events feed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from billing_api.access_log.service import AccessLog
from billing_api.authz.dependencies import BillsView, CurrentActor
from billing_api.db import Session
from billing_api.errors import problem_responses
from billing_api.events import service
from billing_api.events.schemas import EVENT_TYPES, PAYLOADS, EventPage, EventType
from billing_api.pagination import MAX_LIMIT, decode_position_cursor

_TYPES = "\n".join(f"- `{payload.TYPE}`: {payload.DESCRIPTION}" for payload in PAYLOADS)

router = APIRouter(prefix="/v1", tags=["events"])


@router.get("/events", response_model=EventPage, summary="Poll the events you may see",
            responses=problem_responses(401, 403, 422),
            description=f"""The durable feed integrators poll: events oldest first, each written in the same
transaction as the change it reports. Start without `after`, then pass each page's `next_cursor` as `after`
(store it: the next poll goes on from there; nothing committed later appears behind it).

Who sees what, by the same rules as the bills: an event about a provider's bills (bills, payments, AutoPay)
to whoever may view that provider's bills; a company-level event (invitations accepted, access changes) to
the administrators of that company. Support gets 403 `events_not_for_support`.

Event types (`data` holds the payload; ids, states and amounts only):
{_TYPES}""")
async def list_events(
    session: Session,
    actor: CurrentActor,
    scope: BillsView,
    log: AccessLog,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Events per page.")] = 50,
    after: Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page.")] = None,
    event_type: Annotated[list[EventType] | None, Query(alias="type", max_length=len(EVENT_TYPES),
                                                                     description="Only these types.")] = None,
) -> EventPage:
    position = decode_position_cursor(after) if after else None
    return await service.feed(session, actor, scope, log, event_type, position, limit)
