"""All SQL about invitations. The team's entries and the list's version are delegation's (delegation.repository)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.models import AuditEvent, Invitation, InvitationStatus, User


async def get_invitation(session: AsyncSession, invitation_id: uuid.UUID, *, for_update: bool = False
                         ) -> Invitation | None:
    statement = select(Invitation).where(Invitation.id == invitation_id)
    if for_update:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(statement)).scalar_one_or_none()


async def invitation_by_token_hash(session: AsyncSession, token_hash: str) -> Invitation | None:
    statement = (
        select(Invitation).where(Invitation.token_hash == token_hash)
        .with_for_update().execution_options(populate_existing=True)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def pending_invitation(session: AsyncSession, provider_id: uuid.UUID, email: str) -> Invitation | None:
    statement = select(Invitation).where(
        Invitation.provider_id == provider_id, func.lower(Invitation.email) == email.lower(),
        Invitation.status == InvitationStatus.pending,
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    """The account of an email, whichever company it is in: for accepting only, where the token proves that
    the caller holds the email. Inviting never asks (its answer must not depend on other companies' accounts)."""
    statement = select(User).where(func.lower(User.email) == email.lower())
    return (await session.execute(statement)).scalar_one_or_none()


async def open_invitations(session: AsyncSession, provider_id: uuid.UUID) -> list[tuple[Invitation, bool]]:
    """Pending invitations, oldest first, each with whether it has expired (by the database's clock)."""
    statement = (
        select(Invitation, Invitation.expires_at <= func.now())
        .where(Invitation.provider_id == provider_id, Invitation.status == InvitationStatus.pending)
        .order_by(Invitation.created_at, Invitation.id)
    )
    return [(invitation, bool(expired)) for invitation, expired in (await session.execute(statement)).all()]


# The first key of the two-key advisory locks on a provider's invitations (the second is the provider's).
_INVITATION_LOCKS = 80001


async def lock_provider_invitations(session: AsyncSession, provider_id: uuid.UUID) -> None:
    """Serialize the invitations of one provider until the transaction ends, so the send limit is exact."""
    await session.execute(select(func.pg_advisory_xact_lock(_INVITATION_LOCKS, func.hashtext(str(provider_id)))))


async def recent_invitations(session: AsyncSession, provider_id: uuid.UUID, since: datetime) -> list[datetime]:
    """When the provider's invitations created since `since` were created, oldest first (cancelled ones too)."""
    statement = (
        select(Invitation.created_at)
        .where(Invitation.provider_id == provider_id, Invitation.created_at >= since)
        .order_by(Invitation.created_at)
    )
    return list((await session.execute(statement)).scalars())


async def recent_resends(session: AsyncSession, provider_id: uuid.UUID, invitation_id: uuid.UUID,
                         since: datetime) -> list[datetime]:
    """When this invitation was resent since `since`, oldest first (the audit trail is the record)."""
    statement = (
        select(AuditEvent.created_at)
        .where(AuditEvent.target_id == provider_id, AuditEvent.action == "invitation.resent",
               AuditEvent.details["invitation_id"].astext == str(invitation_id), AuditEvent.created_at >= since)
        .order_by(AuditEvent.created_at)
    )
    return list((await session.execute(statement)).scalars())
