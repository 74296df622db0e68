"""What authorization needs to know about a caller, read fresh on every request (no cache)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.authz import repository
from billing_api.authz.permissions import Permission
from billing_api.authz.scope import CompanyScope, company_scope
from billing_api.models import AccountType, User, UserKind, UserStatus


@dataclass(frozen=True)
class Actor:
    id: uuid.UUID
    company_id: uuid.UUID
    account_type: AccountType
    active: bool
    # Direct permissions plus the roles of the groups the actor belongs to.
    permissions: frozenset[str]
    # Rule 3: home company, children for a company admin, assigned child companies.
    reached_company_ids: frozenset[uuid.UUID]

    @property
    def is_support(self) -> bool:
        return self.account_type == AccountType.support

    @property
    def is_company_admin(self) -> bool:
        return self.account_type == AccountType.company_admin

    def holds(self, *permissions: Permission) -> bool:
        return all(permission.value in self.permissions for permission in permissions)

    def reaches(self, company_id: uuid.UUID) -> bool:
        return company_id in self.reached_company_ids

    @cached_property
    def reach(self) -> CompanyScope:
        """The companies whose records the actor sees: every company for support (read-only oversight), the
        companies reached (rule 3) for everyone else."""
        return company_scope(None if self.is_support else self.reached_company_ids)

    @cached_property
    def reached(self) -> CompanyScope:
        """The companies reached by rule 3 alone, support's included (its own): what the context switcher offers."""
        return company_scope(self.reached_company_ids)


async def load_actor(session: AsyncSession, user: User) -> Actor:
    permissions, reached = await repository.actor_facts(session, user.id)
    if user.kind == UserKind.invited:
        # Invited users work a provider's billing through the list entries that name them (the bill
        # scope); they do not browse the practice: no company's users, patients or records by reach.
        reached = []
    return Actor(
        id=user.id,
        company_id=user.company_id,
        account_type=user.account_type,
        active=user.status == UserStatus.active,
        permissions=frozenset(permissions),
        reached_company_ids=frozenset(reached),
    )
