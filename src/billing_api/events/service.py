"""Emitting events (one helper, called where the change is made, in its transaction) and reading the feed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.access_log.service import ReadLog
from billing_api.authz.actor import Actor
from billing_api.authz.scope import BillScope
from billing_api.errors import Forbidden
from billing_api.events import repository
from billing_api.events.schemas import (
    EVENT_MODELS,
    BillEventData,
    BillPaid,
    EventData,
    EventEnvelope,
    EventPage,
    PaymentRecorded,
)
from billing_api.models import Bill, BillStatus, IntegrationEvent, Payment
from billing_api.pagination import encode_cursor


async def emit(session: AsyncSession, company_id: uuid.UUID, *events: EventData) -> None:
    """Write the events now, in the session's transaction: they commit with the change, or not at all, and take
    their positions in the order they happened."""
    await repository.add(session, [
        {"id": uuid.uuid4(), "type": data.TYPE, "company_id": company_id, "occurred_at": datetime.now(UTC),
         "provider_id": data.provider_id if isinstance(data, BillEventData) else None,
         "payload": data.model_dump(mode="json")}
        for data in events
    ])


def payment_events(bill: Bill, payment: Payment) -> list[EventData]:
    """A payment taken off `bill` (already updated): `payment.recorded`, and `bill.paid` when it settled it."""
    ids = {"bill_id": bill.id, "provider_id": bill.provider_id, "patient_id": bill.patient_id}
    events: list[EventData] = [PaymentRecorded(**ids, payment_id=payment.id, amount_cents=payment.amount_cents,
                                               method=payment.method, balance_cents=bill.balance_cents,
                                               bill_status=bill.status)]
    if bill.status == BillStatus.paid:
        events.append(BillPaid(**ids, payment_id=payment.id, total_cents=bill.total_cents))
    return events


def _read(row: IntegrationEvent) -> EventEnvelope:
    return EVENT_MODELS[row.type](id=row.id, type=row.type, occurred_at=row.occurred_at, company_id=row.company_id,
                                  data=row.payload)


async def feed(session: AsyncSession, actor: Actor, scope: BillScope, log: ReadLog, types: list[str] | None,
               after: tuple[int, int] | None, limit: int) -> EventPage:
    """Bill events as the bill scope allows; company-level events for company administrators, in the
    companies they administer (reach). Support oversees through the audited bill surfaces, not the feed."""
    if actor.is_support:
        raise Forbidden("The events feed is for a practice's integrations; support reads bills on the audited "
                        "surfaces.", code="events_not_for_support")
    admin_companies = sorted(actor.reached_company_ids) if actor.is_company_admin else []
    rows = await repository.page(session, scope, admin_companies, types, after, limit)
    shown = rows[:limit]
    # Bill events name a patient and amounts: billing data, recorded as every other read of it.
    await log.record(scope, "events_feed", [
        (row.provider_id, row.company_id, uuid.UUID(row.payload["patient_id"]), uuid.UUID(row.payload["bill_id"]))
        for row in shown if row.provider_id is not None])
    last = (shown[-1].transaction_id, shown[-1].position) if shown else after
    return EventPage(items=[_read(row) for row in shown], next_cursor=encode_cursor(*last) if last else None,
                     has_more=len(rows) > limit)
