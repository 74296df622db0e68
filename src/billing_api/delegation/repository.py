"""All SQL about delegation lists, who can see a provider's bills, and segregation."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import cast, delete, func, literal, null, or_, select, tuple_, union_all, update
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.authz.permissions import Permission
from billing_api.authz.repository import users_reaching
from billing_api.authz.rules import entry_grants, entry_is_live
from billing_api.models import (
    AccountType,
    Company,
    DelegationEntry,
    DelegationList,
    Group,
    GroupMember,
    User,
    UserStatus,
)


async def get_list(session: AsyncSession, provider_id: uuid.UUID) -> DelegationList | None:
    return await session.get(DelegationList, provider_id)


async def entries_with_targets(session: AsyncSession, provider_id: uuid.UUID) -> list[tuple]:
    """(entry, user or None, group or None, active member count or None, live), groups first, then by name.
    `live` is read by the database's clock, the one the authorization rules use."""
    active_members = (
        select(func.count())
        .select_from(GroupMember)
        .join(User, User.id == GroupMember.user_id)
        .where(GroupMember.group_id == DelegationEntry.group_id, User.status == UserStatus.active)
        .correlate(DelegationEntry)
        .scalar_subquery()
    )
    statement = (
        select(DelegationEntry, User, Group, active_members, entry_is_live())
        .outerjoin(User, User.id == DelegationEntry.user_id)
        .outerjoin(Group, Group.id == DelegationEntry.group_id)
        .where(DelegationEntry.provider_id == provider_id)
        .order_by(DelegationEntry.group_id.is_(None), func.coalesce(Group.name, User.display_name), DelegationEntry.id)
    )
    return [tuple(row) for row in (await session.execute(statement)).all()]


async def users_by_id(session: AsyncSession, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, User]:
    if not user_ids:
        return {}
    return {u.id: u for u in (await session.execute(select(User).where(User.id.in_(user_ids)))).scalars()}


async def groups_by_id(session: AsyncSession, group_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Group]:
    if not group_ids:
        return {}
    return {g.id: g for g in (await session.execute(select(Group).where(Group.id.in_(group_ids)))).scalars()}


async def list_version(session: AsyncSession, provider_id: uuid.UUID) -> int:
    statement = select(DelegationList.version).where(DelegationList.provider_id == provider_id)
    return (await session.execute(statement)).scalar_one_or_none() or 0


async def move_version(
    session: AsyncSession, provider_id: uuid.UUID, actor_id: uuid.UUID, *, expected: int | None
) -> int | None:
    """The one place a list's version moves on; every change to a list moves it. From `expected` (optimistic
    concurrency: a save over the version it read) to the next, or None if the list moved on since; `expected`
    None (a change of one entry, which read no version): on from whatever it is, so a save over the old
    version then gets 409. Concurrent changes queue on the row lock; after the first commits, the others find
    a new version."""
    await session.execute(
        insert(DelegationList).values(provider_id=provider_id, version=0).on_conflict_do_nothing()
    )
    statement = update(DelegationList).where(DelegationList.provider_id == provider_id)
    if expected is not None:
        statement = statement.where(DelegationList.version == expected)
    result = await session.execute(
        statement
        .values(version=DelegationList.version + 1, updated_at=func.now(), updated_by=actor_id)
        .returning(DelegationList.version)
    )
    return result.scalar_one_or_none()


async def replace_entries(session: AsyncSession, provider_id: uuid.UUID, entries: list[DelegationEntry]) -> None:
    """Make the list hold exactly `entries`. An entry naming a user or group the list names already keeps its row
    (its id and creation, which the access log and access reviews refer to) and takes the new role, permissions
    and expiry; the others are added or deleted."""
    kept = {(entry.user_id, entry.group_id): entry for entry in (await session.execute(
        select(DelegationEntry).where(DelegationEntry.provider_id == provider_id)
        .execution_options(populate_existing=True))).scalars()}
    for entry in entries:
        existing = kept.pop((entry.user_id, entry.group_id), None)
        if existing is None:
            session.add(entry)
            continue
        existing.role, existing.permissions, existing.expires_at = entry.role, entry.permissions, entry.expires_at
        existing.source, existing.invitation_id = entry.source, entry.invitation_id
        entry.id, entry.created_at = existing.id, existing.created_at  # the caller's objects name the kept rows
    if kept:
        await session.execute(delete(DelegationEntry).where(
            DelegationEntry.id.in_([entry.id for entry in kept.values()])))
    await session.flush()


# One user's entry (the team's: from invitations, or named on the list)


async def user_entries(session: AsyncSession, provider_id: uuid.UUID) -> list[tuple[DelegationEntry, User, bool]]:
    """The list's user entries (from the list or from invitations), by name, each with whether it is live."""
    statement = (
        select(DelegationEntry, User, entry_is_live())
        .join(User, User.id == DelegationEntry.user_id)
        .where(DelegationEntry.provider_id == provider_id)
        .order_by(User.display_name, User.id)
    )
    return [(entry, user, bool(live)) for entry, user, live in (await session.execute(statement)).all()]


async def names_email(session: AsyncSession, provider_id: uuid.UUID, email: str) -> bool:
    """An entry of this provider's list names a user with this email: what the team listing shows its managers."""
    statement = (
        select(DelegationEntry.id)
        .join(User, User.id == DelegationEntry.user_id)
        .where(DelegationEntry.provider_id == provider_id, func.lower(User.email) == email.lower())
    )
    return (await session.execute(statement.limit(1))).first() is not None


async def entry_for(session: AsyncSession, provider_id: uuid.UUID, user_id: uuid.UUID, *,
                    for_update: bool = False) -> DelegationEntry | None:
    statement = select(DelegationEntry).where(
        DelegationEntry.provider_id == provider_id, DelegationEntry.user_id == user_id
    )
    if for_update:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(statement)).scalar_one_or_none()


def add_entry(session: AsyncSession, entry: DelegationEntry) -> None:
    session.add(entry)


async def remove_entry(session: AsyncSession, entry: DelegationEntry) -> None:
    await session.delete(entry)
    await session.flush()


# Who can see a provider's bills


async def may_concern(session: AsyncSession, user: User, provider: User) -> bool:
    """Could some rule give `user` access to `provider`'s bills: support, someone who reaches the provider's
    company (a parent company's admin, say), or someone named on the list directly or through a group."""
    if user.account_type == AccountType.support:
        return True
    reaching = users_reaching(provider.company_id).subquery()
    statement = select(or_(
        select(reaching.c.user_id).where(reaching.c.user_id == user.id).exists(),
        _naming(provider.id, user.id).exists(),
    ))
    return bool((await session.execute(statement)).scalar_one())


def _naming(provider_id: uuid.UUID, user_id: uuid.UUID):
    """Entries of the provider's list that name the user, directly or through a group (expired ones too)."""
    return select(DelegationEntry.id).where(
        DelegationEntry.provider_id == provider_id,
        or_(
            DelegationEntry.user_id == user_id,
            DelegationEntry.group_id.in_(select(GroupMember.group_id).where(GroupMember.user_id == user_id)),
        ),
    )


async def names_user(session: AsyncSession, provider_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    return bool((await session.execute(select(_naming(provider_id, user_id).exists()))).scalar_one())


async def providers_naming_group(session: AsyncSession, group_id: uuid.UUID) -> list[User]:
    """Providers whose list has a live (unexpired) entry naming the group: what joining the group grants."""
    statement = select(User).where(User.id.in_(
        select(DelegationEntry.provider_id).where(DelegationEntry.group_id == group_id, entry_is_live())))
    return list((await session.execute(statement.order_by(User.id))).scalars())


def _no_id():
    # A typed NULL: PostgreSQL cannot match an untyped NULL (text) with the uuid columns of the other branches.
    return cast(null(), UUID(as_uuid=True))


def _viewers(provider: User, segregated: bool) -> list:
    """(user_id, rule, entry_id, group_id) rows: everyone whose access to `provider`'s bills some rule grants."""
    view = Permission.BILLS_VIEW
    active = User.status == UserStatus.active
    rows = [
        select(User.id.label("user_id"), literal("own_bills").label("rule"),
               _no_id().label("entry_id"), _no_id().label("group_id"))
        .where(User.id == provider.id, active, User.is_provider),
        select(DelegationEntry.user_id, literal("delegation_user"), DelegationEntry.id, _no_id())
        .join(User, User.id == DelegationEntry.user_id)
        .where(DelegationEntry.provider_id == provider.id, entry_grants(view), active,
               User.account_type != AccountType.support),
        select(GroupMember.user_id, literal("delegation_group"), DelegationEntry.id, DelegationEntry.group_id)
        .join(GroupMember, GroupMember.group_id == DelegationEntry.group_id)
        .join(User, User.id == GroupMember.user_id)
        .where(DelegationEntry.provider_id == provider.id, entry_grants(view), active,
               User.account_type != AccountType.support),
        select(User.id, literal("support"), _no_id(), _no_id())
        .where(User.account_type == AccountType.support, active),
    ]
    if not segregated:
        reaching = users_reaching(provider.company_id, members_only=True).subquery()
        rows.append(
            select(User.id, literal("company_wide"), _no_id(), _no_id())
            .where(User.id.in_(select(reaching.c.user_id)), active, User.account_type != AccountType.support)
        )
    return rows


async def provider_viewers_page(
    session: AsyncSession, provider: User, segregated: bool, limit: int, after: tuple[str, uuid.UUID] | None
) -> tuple[list[User], dict[uuid.UUID, list[tuple]]]:
    """A page of users (by name) who can see the provider's bills, and each one's reasons."""
    viewers = union_all(*_viewers(provider, segregated)).subquery("viewers")
    statement = select(User).where(User.id.in_(select(viewers.c.user_id)))
    if after is not None:
        statement = statement.where(tuple_(User.display_name, User.id) > tuple_(*after))
    users = list((await session.execute(
        statement.order_by(User.display_name, User.id).limit(limit + 1)
    )).scalars())
    shown = [user.id for user in users[:limit]]
    reasons: dict[uuid.UUID, list[tuple]] = {user_id: [] for user_id in shown}
    if shown:
        rows = await session.execute(
            select(viewers.c.user_id, viewers.c.rule, viewers.c.entry_id, viewers.c.group_id, Group.name)
            .outerjoin(Group, Group.id == viewers.c.group_id)
            .where(viewers.c.user_id.in_(shown))
        )
        for user_id, rule, entry_id, group_id, group_name in rows.all():
            reasons[user_id].append((rule, entry_id, group_id, group_name))
    return users, reasons


# Segregation


async def providers_of_company(session: AsyncSession, company_id: uuid.UUID) -> list[User]:
    statement = select(User).where(User.company_id == company_id, User.is_provider).order_by(User.display_name, User.id)
    return list((await session.execute(statement)).scalars())


async def providers_with_entries(session: AsyncSession, provider_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if not provider_ids:
        return set()
    statement = select(DelegationEntry.provider_id).where(DelegationEntry.provider_id.in_(provider_ids)).distinct()
    return set((await session.execute(statement)).scalars())


async def segregation_losses(
    session: AsyncSession, company_id: uuid.UUID, provider_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, str, uuid.UUID]]:
    """(user id, name, provider id): who sees the provider's bills only company-wide, and so will lose them."""
    if not provider_ids:
        return []
    reaching = users_reaching(company_id, members_only=True).subquery()
    provider = select(User.id.label("provider_id")).where(User.id.in_(provider_ids)).subquery("provider")
    member = GroupMember.__table__.alias("member")
    delegated = select(DelegationEntry.id).where(
        DelegationEntry.provider_id == provider.c.provider_id,
        entry_grants(Permission.BILLS_VIEW),
        or_(
            DelegationEntry.user_id == User.id,
            # Correlated explicitly: nested two levels down, `app_user` would otherwise become a FROM of its own
            # (a cross join that makes every member of any listed group count as every user).
            DelegationEntry.group_id.in_(
                select(member.c.group_id).where(member.c.user_id == User.id).correlate(User)
            ),
        ),
    )
    statement = (
        select(User.id, User.display_name, provider.c.provider_id)
        .join(provider, User.id != provider.c.provider_id)
        .where(
            User.id.in_(select(reaching.c.user_id)),
            User.status == UserStatus.active,
            User.account_type != AccountType.support,
            ~delegated.exists(),
        )
        .order_by(User.display_name, User.id)
    )
    return [tuple(row) for row in (await session.execute(statement)).all()]


async def lock_company(session: AsyncSession, company_id: uuid.UUID) -> Company | None:
    # FOR NO KEY UPDATE: see identity.repository.get_user_for_update.
    statement = select(Company).where(Company.id == company_id).with_for_update(key_share=True)
    return (await session.execute(statement)).scalar_one_or_none()


