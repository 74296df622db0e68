"""THE authorization rules (numbered as in docs/concepts.md), as SQL. Every bill query and every decision is
built from these.

Rules 1 and 2 are overrides; otherwise access is the union of rules 4 (own bills), 5 (delegation lists,
groups expanded, unexpired) and 6 (company-wide access where segregation is off, in reached companies).
Rule 3 (reach) is `repository.reached_companies`. Everything is read fresh: there is no cache.
"""

from __future__ import annotations

import uuid

from sqlalchemy import (
    ColumnElement, FromClause, Select, and_, any_, case, exists, false, func, literal, null, or_, select, union_all,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.sql import coercions, roles
from sqlalchemy.sql.util import ClauseAdapter

from billing_api.authz.permissions import BILLING_PERMISSIONS, SUPPORT_PERMISSIONS, Permission
from billing_api.authz.repository import reached_companies, role_permissions
from billing_api.models import AccountType, Company, DelegationEntry, GroupMember, User, UserKind, UserStatus

# Rule 6 hands out role permissions company-wide, but inviting belongs to providers and list managers.
COMPANY_WIDE_PERMISSIONS = BILLING_PERMISSIONS - {Permission.TEAM_INVITE}


def _actor_is(actor_id: uuid.UUID, *conditions: ColumnElement[bool], row: FromClause | None = None
              ) -> ColumnElement[bool]:
    """Rule 1: every grant starts from an active actor. The conditions are on `User`; given `row` (the actor's
    user row, read once by a single decision), they are checked on it instead of reading the row again."""
    if row is None:
        return exists().where(User.id == actor_id, User.status == UserStatus.active, *conditions)
    on_row = ClauseAdapter(row).traverse
    return and_(*(on_row(coercions.expect(roles.WhereHavingRole, condition))
                  for condition in (User.status == UserStatus.active, *conditions)))


def _not_support(actor_id: uuid.UUID, row: FromClause | None = None) -> ColumnElement[bool]:
    # Support reads through rule 2 only, and never writes.
    return _actor_is(actor_id, User.account_type != AccountType.support, row=row)


def entry_is_live() -> ColumnElement[bool]:
    return or_(DelegationEntry.expires_at.is_(None), DelegationEntry.expires_at > func.now())


def entry_grants(permission: Permission) -> ColumnElement[bool]:
    return and_(literal(permission.value) == any_(DelegationEntry.permissions), entry_is_live())


def support_sees_all(actor_id: uuid.UUID, permission: Permission, row: FromClause | None = None
                     ) -> ColumnElement[bool]:
    """Rule 2: support may use view-class permissions on every company's bills."""
    if permission not in SUPPORT_PERMISSIONS:
        return false()
    return _actor_is(actor_id, User.account_type == AccountType.support, row=row)


def _own_bills() -> list[ColumnElement[bool]]:
    """Rule 4's conditions on the actor: a provider's own bills (never support's)."""
    return [User.is_provider, User.status == UserStatus.active, User.account_type != AccountType.support]


def _provider_grants(
    actor_id, permission: Permission, provider_id=None, *, explained: bool = False, row: FromClause | None = None
) -> list[Select[tuple[uuid.UUID]]]:
    """Rules 4 and 5 as selects of provider ids, each optionally narrowed to one provider. The scope
    takes their union; a single decision asks whether any of them has a row (each on its own index).
    `explained` adds which rule and list entry (and group) granted each row, for the access log.
    With `row` (a single decision's actor row), rule 4 is not here (`may_on_provider` checks it on the row)
    and rule 5's actor checks are made on the row."""
    if permission not in BILLING_PERMISSIONS:
        return []

    def because(statement: Select, rule: str, entry=None, group=None) -> Select:
        if not explained:
            return statement
        no_id = null().cast(UUID(as_uuid=True))
        return statement.add_columns(literal(rule).label("rule"), (entry if entry is not None else no_id).label(
            "entry_id"), (group if group is not None else no_id).label("group_id"))

    own = select(User.id.label("provider_id")).where(User.id == actor_id, *_own_bills())
    if provider_id is not None:
        own = own.where(User.id == provider_id)
    own = [] if row is not None else [because(own, "own_bills")]
    if permission == Permission.TEAM_INVITE:
        return own  # never delegated
    by_user = select(DelegationEntry.provider_id).where(
        DelegationEntry.user_id == actor_id, entry_grants(permission), _not_support(actor_id, row)
    )
    by_group = (
        select(DelegationEntry.provider_id)
        .join(GroupMember, GroupMember.group_id == DelegationEntry.group_id)
        .where(GroupMember.user_id == actor_id, entry_grants(permission), _not_support(actor_id, row))
    )
    if provider_id is not None:
        by_user = by_user.where(DelegationEntry.provider_id == provider_id)
        by_group = by_group.where(DelegationEntry.provider_id == provider_id)
    return [*own, because(by_user, "delegation_user", DelegationEntry.id),
            because(by_group, "delegation_group", DelegationEntry.id, DelegationEntry.group_id)]


def explained_provider_grants(actor_id, permission: Permission) -> Select:
    """Rules 4 and 5 with their reasons: (provider_id, rule, entry_id, group_id), one row per grant."""
    grants = _provider_grants(actor_id, permission, explained=True)
    if not grants:
        no_id = null().cast(UUID(as_uuid=True))
        return select(no_id.label("provider_id"), literal("").label("rule"), no_id.label("entry_id"),
                      no_id.label("group_id")).where(false())
    return union_all(*grants).subquery("explained").select()


def company_wide_rule(actor_id) -> ColumnElement[str]:
    """How rule 6 reached a company, for the access log: `company_admin` for a company administrator, else
    `company_wide`."""
    return case((_actor_is(actor_id, User.account_type == AccountType.company_admin), "company_admin"),
                else_="company_wide")


def granted_providers(actor_id: uuid.UUID, permission: Permission) -> Select[tuple[uuid.UUID]]:
    """Providers whose bills the actor may use `permission` on, through rules 4 and 5. A provider may
    appear more than once (named directly and through a group): every use is `IN` or a probe per row,
    and skipping the de-duplication saves a hash over up to thousands of rows."""
    grants = _provider_grants(actor_id, permission)
    if not grants:
        return select(User.id.label("provider_id")).where(false())
    return union_all(*grants).subquery("granted").select()


def company_wide_companies(actor_id: uuid.UUID, permission: Permission, row: FromClause | None = None
                           ) -> Select[tuple[uuid.UUID]]:
    """Rule 6: reached companies with segregation off, where the actor may use `permission` on every bill."""
    if permission not in COMPANY_WIDE_PERMISSIONS:
        return select(Company.id.label("company_id")).where(false())
    reached = reached_companies(actor_id).subquery("reached_companies")
    statement = select(Company.id.label("company_id")).where(
        Company.id.in_(select(reached.c.company_id)),
        Company.billing_segregation_enabled_at.is_(None),
        # The practice's own people only: invited users work through their list entries alone.
        _actor_is(actor_id, User.account_type != AccountType.support, User.kind == UserKind.member, row=row),
    )
    if permission != Permission.BILLS_VIEW:
        held = role_permissions(actor_id).subquery("held")
        statement = statement.where(literal(permission.value).in_(select(held.c.permission)))
    return statement


def may_on_provider(
    actor_id: uuid.UUID, permission: Permission, provider_id: uuid.UUID, company_id: uuid.UUID
) -> ColumnElement[bool]:
    """One decision: may the actor use `permission` on `provider_id`'s bills kept in `company_id`.
    The same rules as the scope, each narrowed to this provider or company before it runs, and the actor's
    user row read once for all of them (each rule's branch would otherwise read it again)."""
    actor = User.__table__.alias("actor")
    own = []
    if permission in BILLING_PERMISSIONS:
        own = [_actor_is(actor_id, *_own_bills(), User.id == provider_id, row=actor)]
    companies = company_wide_companies(actor_id, permission, actor).where(Company.id == company_id)
    decision = or_(
        support_sees_all(actor_id, permission, actor),
        *own,
        *(grant.exists() for grant in _provider_grants(actor_id, permission, provider_id, row=actor)),
        companies.exists(),
    )
    return func.coalesce(select(decision).where(actor.c.id == actor_id).scalar_subquery(), false())
