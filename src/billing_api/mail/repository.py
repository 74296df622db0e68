"""All SQL about the mail outbox, and the delivery state it records on invitations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Select, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.models import DeliveryStatus, Invitation, InvitationStatus, OutboxMessage, OutboxStatus


def add(session: AsyncSession, *, template: str, to_address: str, context: dict[str, Any],
        secret_nonce: str | None = None, invitation_id: uuid.UUID | None = None) -> OutboxMessage:
    message = OutboxMessage(id=uuid.uuid4(), template=template, to_address=to_address, context=context,
                            secret_nonce=secret_nonce, invitation_id=invitation_id, status=OutboxStatus.queued,
                            attempts=0)
    session.add(message)
    return message


def enqueue_from(template: str, rows: Select) -> Insert:
    """One statement queueing a `template` message for each row of `rows` (columns `to_address`, `context`),
    due now; rows without an address are skipped. Returns the new ids. Built, not run: a set-based caller runs
    it inside its own statement (a CTE, as the nightly sharing does), so the notices cost no round trip."""
    outbox = OutboxMessage.__table__
    source = rows.subquery("enqueued")
    queued = select(
        func.gen_random_uuid(), literal(template, outbox.c.template.type), source.c.to_address, source.c.context,
        literal(OutboxStatus.queued, outbox.c.status.type), literal(0, outbox.c.attempts.type), func.now(), func.now(),
    ).where(source.c.to_address.is_not(None))
    return (
        insert(outbox)
        .from_select(["id", "template", "to_address", "context", "status", "attempts", "next_attempt_at",
                      "created_at"], queued, include_defaults=False)
        .returning(outbox.c.id)
    )


async def cancel_queued(session: AsyncSession, invitation_id: uuid.UUID, reason: str) -> None:
    """Withdraw the invitation's messages still waiting. A message a sender holds right now (locked) is
    skipped rather than waited for: it is on its way, and the sender will see it no longer counts."""
    waiting = (
        select(OutboxMessage.id)
        .where(OutboxMessage.invitation_id == invitation_id, OutboxMessage.status == OutboxStatus.queued)
        .with_for_update(skip_locked=True)
    )
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(waiting))
        .values(status=OutboxStatus.cancelled, secret_nonce=None, last_error=reason)
        .execution_options(synchronize_session=False)
    )


async def claim_next(session: AsyncSession) -> OutboxMessage | None:
    """The next message due, locked for this transaction; one that another sender holds is skipped."""
    statement = (
        select(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.queued, OutboxMessage.next_attempt_at <= func.clock_timestamp())
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def get_invitation(session: AsyncSession, invitation_id: uuid.UUID) -> Invitation | None:
    statement = select(Invitation).where(Invitation.id == invitation_id).execution_options(populate_existing=True)
    return (await session.execute(statement)).scalar_one_or_none()


async def record_on_invitation(
    session: AsyncSession, invitation_id: uuid.UUID, token_hash: str, *, status: DeliveryStatus, attempts: int,
    attempted_at: datetime, error: str | None, sent_at: datetime | None,
) -> None:
    """The outcome, on the invitation the message is still the current one of (same token, still pending).
    A resend or a cancel committed meanwhile wins: then nothing is written."""
    await session.execute(
        update(Invitation)
        .where(Invitation.id == invitation_id, Invitation.token_hash == token_hash,
               Invitation.status == InvitationStatus.pending)
        .values(delivery_status=status, delivery_attempts=attempts, delivery_last_attempt_at=attempted_at,
                delivery_error=error, delivery_sent_at=sent_at)
        .execution_options(synchronize_session=False)
    )


async def count_queued(session: AsyncSession) -> int:
    """The backlog, for the metrics scrape."""
    return (await session.execute(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == OutboxStatus.queued)
    )).scalar_one()
