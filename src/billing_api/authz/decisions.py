"""authorize(): one decision with its reasons. The verdict is the same SQL the bill queries embed
(rules.may_on_provider); the reasons are read beside it to explain that verdict."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.authz import repository, rules
from billing_api.authz.permissions import BILLING_PERMISSIONS, SUPPORT_PERMISSIONS, Permission
from billing_api.models import AccountType, Company, DelegationEntry, Group, GroupMember, User, UserKind, UserStatus


@dataclass(frozen=True)
class Reason:
    """One rule that applied (grants=True) or one note on why something did not grant."""

    rule: str
    grants: bool
    detail: str
    entry_id: uuid.UUID | None = None
    group_id: uuid.UUID | None = None
    group_name: str | None = None
    company_id: uuid.UUID | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    permission: Permission
    actor_id: uuid.UUID
    provider_id: uuid.UUID
    company_id: uuid.UUID
    reasons: list[Reason] = field(default_factory=list)


async def is_allowed(
    session: AsyncSession, actor_id: uuid.UUID, permission: Permission, provider_id: uuid.UUID,
    company_id: uuid.UUID,
) -> bool:
    statement = select(rules.may_on_provider(actor_id, permission, provider_id, company_id))
    return bool((await session.execute(statement)).scalar_one())


async def authorize(
    session: AsyncSession,
    actor_id: uuid.UUID,
    permission: Permission,
    provider_id: uuid.UUID,
    company_id: uuid.UUID | None = None,
) -> Decision:
    """May `actor_id` use `permission` on `provider_id`'s bills kept in `company_id` (default: the provider's
    home company)? The answer carries every reason: which rule, which list entry, which group."""
    actor = await session.get(User, actor_id)
    provider = await session.get(User, provider_id)
    if company_id is None:
        company_id = provider.company_id if provider else uuid.UUID(int=0)
    allowed = await is_allowed(session, actor_id, permission, provider_id, company_id)
    reasons = await _reasons(session, actor, permission, provider_id, company_id)
    return Decision(allowed, permission, actor_id, provider_id, company_id, reasons)


async def _reasons(
    session: AsyncSession, actor: User | None, permission: Permission, provider_id: uuid.UUID,
    company_id: uuid.UUID,
) -> list[Reason]:
    if actor is None:
        return [Reason("no_such_user", False, "There is no such user.")]
    if actor.status != UserStatus.active:
        return [Reason("deactivated", False, "A deactivated user has no access (rule 1).")]
    if actor.account_type == AccountType.support:
        if permission in SUPPORT_PERMISSIONS:
            return [Reason("support", True, "Support may view every company's bills; each view is audited.")]
        return [Reason("support", False, "Support accounts are read-only.")]
    reasons: list[Reason] = []
    if actor.id == provider_id and actor.is_provider and permission in BILLING_PERMISSIONS:
        reasons.append(Reason("own_bills", True, "Providers have every billing permission on their own bills."))
    reasons += await _delegation_reasons(session, actor.id, permission, provider_id)
    if actor.kind == UserKind.invited:
        reasons.append(Reason("company_wide", False, "Invited users work only through the lists that name them.",
                              company_id=company_id))
    else:
        reasons += await _company_reasons(session, actor.id, permission, company_id)
    return reasons


async def _delegation_reasons(
    session: AsyncSession, actor_id: uuid.UUID, permission: Permission, provider_id: uuid.UUID
) -> list[Reason]:
    direct = select(DelegationEntry, None).where(
        DelegationEntry.provider_id == provider_id, DelegationEntry.user_id == actor_id
    )
    through_group = (
        select(DelegationEntry, Group)
        .join(Group, Group.id == DelegationEntry.group_id)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .where(DelegationEntry.provider_id == provider_id, GroupMember.user_id == actor_id)
    )
    now = (await session.execute(select(func.now()))).scalar_one()
    reasons = []
    for statement in (direct, through_group):
        for entry, group in (await session.execute(statement)).all():
            via = f"group {group.name!r}" if group else "a direct entry"
            expired = entry.expires_at is not None and entry.expires_at <= now
            if permission == Permission.TEAM_INVITE:
                grants, detail = False, f"Delegation never grants team:invite ({via})."
            elif expired:
                grants, detail = False, f"The list entry ({via}) expired at {entry.expires_at.isoformat()}."
            elif permission.value not in entry.permissions:
                grants, detail = False, f"The list entry ({via}, role {entry.role}) does not include {permission}."
            else:
                grants, detail = True, f"The provider's delegation list names the user through {via} ({entry.role})."
            reasons.append(Reason(
                "delegation_group" if group else "delegation_user", grants, detail, entry_id=entry.id,
                group_id=group.id if group else None, group_name=group.name if group else None,
                expires_at=entry.expires_at,
            ))
    return reasons


async def _company_reasons(
    session: AsyncSession, actor_id: uuid.UUID, permission: Permission, company_id: uuid.UUID
) -> list[Reason]:
    company = await session.get(Company, company_id)
    if company is None:
        return []
    reached = set((await session.execute(repository.reached_companies(actor_id))).scalars())
    if company.id not in reached:
        return [Reason("company_wide", False, "The user does not reach the bill's company.", company_id=company.id)]
    if company.billing_segregation_enabled:
        return [Reason("company_wide", False, "Billing segregation is on: only the provider and their list see "
                       "their bills.", company_id=company.id)]
    if permission not in rules.COMPANY_WIDE_PERMISSIONS:
        return [Reason("company_wide", False, f"{permission} is never granted company-wide.", company_id=company.id)]
    if permission == Permission.BILLS_VIEW:
        return [Reason("company_wide", True, "Segregation is off: everyone who reaches the company views its bills.",
                       company_id=company.id)]
    held = set((await session.execute(repository.role_permissions(actor_id))).scalars())
    if permission.value in held:
        return [Reason("company_wide", True, f"Segregation is off and the user's role holds {permission}.",
                       company_id=company.id)]
    return [Reason("company_wide", False, f"Segregation is off, but the user's role lacks {permission}.",
                   company_id=company.id)]
