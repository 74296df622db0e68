"""All SQL about invitations and the team (the user entries of a provider's delegation list)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.authz.rules import entry_is_live
from billing_api.models import (
    AuditEvent,
    DelegationEntry,
    DelegationList,
    Invitation,
    InvitationStatus,
    User,
)


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


async def team_member_with_email(session: AsyncSession, provider_id: uuid.UUID, email: str) -> bool:
    """Someone on this provider's list (by name) has this email: what the team listing shows its managers."""
    statement = (
        select(DelegationEntry.id)
        .join(User, User.id == DelegationEntry.user_id)
        .where(DelegationEntry.provider_id == provider_id, func.lower(User.email) == email.lower())
    )
    return (await session.execute(statement.limit(1))).first() is not None


async def open_invitations(session: AsyncSession, provider_id: uuid.UUID) -> list[tuple[Invitation, bool]]:
    """Pending invitations, oldest first, each with whether it has expired (by the database's clock)."""
    statement = (
        select(Invitation, Invitation.expires_at <= func.now())
        .where(Invitation.provider_id == provider_id, Invitation.status == InvitationStatus.pending)
        .order_by(Invitation.created_at, Invitation.id)
    )
    return [(invitation, bool(expired)) for invitation, expired in (await session.execute(statement)).all()]


async def members(session: AsyncSession, provider_id: uuid.UUID) -> list[tuple[DelegationEntry, User, bool]]:
    """The list's user entries (from the list or from invitations), by name, each with whether it is live."""
    statement = (
        select(DelegationEntry, User, entry_is_live())
        .join(User, User.id == DelegationEntry.user_id)
        .where(DelegationEntry.provider_id == provider_id)
        .order_by(User.display_name, User.id)
    )
    return [(entry, user, bool(live)) for entry, user, live in (await session.execute(statement)).all()]


async def entry_for(session: AsyncSession, provider_id: uuid.UUID, user_id: uuid.UUID, *,
                    for_update: bool = False) -> DelegationEntry | None:
    statement = select(DelegationEntry).where(
        DelegationEntry.provider_id == provider_id, DelegationEntry.user_id == user_id
    )
    if for_update:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(statement)).scalar_one_or_none()


async def bump_list_version(session: AsyncSession, provider_id: uuid.UUID, actor_id: uuid.UUID) -> int:
    """Every change to a list moves its version on (a PUT over the old version then gets 409). The row lock
    also queues this change behind a concurrent save of the same list."""
    await session.execute(
        insert(DelegationList).values(provider_id=provider_id, version=0).on_conflict_do_nothing()
    )
    result = await session.execute(
        update(DelegationList)
        .where(DelegationList.provider_id == provider_id)
        .values(version=DelegationList.version + 1, updated_at=func.now(), updated_by=actor_id)
        .returning(DelegationList.version)
        .execution_options(synchronize_session=False)
    )
    return result.scalar_one()


async def list_version(session: AsyncSession, provider_id: uuid.UUID) -> int:
    statement = select(DelegationList.version).where(DelegationList.provider_id == provider_id)
    return (await session.execute(statement)).scalar_one_or_none() or 0


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
