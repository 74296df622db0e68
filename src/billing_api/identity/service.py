"""Rules for users, groups, the directory and profiles. Services flush; the request commits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.assignments import repository as assignments_repository
from billing_api.audit.service import record
from billing_api.auth.confirmation import confirm_password
from billing_api.auth.passwords import check_new_password, hash_password
from billing_api.auth.principal import Principal
from billing_api.authz.actor import Actor
from billing_api.authz.permissions import Permission
from billing_api.authz.policies import (
    may_administer_users,
    may_grant_company_access,
    may_manage_list,
    may_view_company,
)
from billing_api.config import Settings
from billing_api.delegation import repository as delegation_repository
from billing_api.errors import Conflict, Forbidden, NotFound, Unprocessable
from billing_api.events.schemas import GroupMembersChanged, UserDeactivated, UserReactivated
from billing_api.events.service import emit
from billing_api.identity import repository
from billing_api.identity.schemas import (
    DirectoryEntry,
    GroupCreate,
    GroupUpdate,
    ProfileUpdate,
    UserCreate,
    UserUpdate,
)
from billing_api.models import AccountType, Group, User, UserStatus

# Users


async def visible_user(session: AsyncSession, actor: Actor, user_id: uuid.UUID) -> User:
    """The user, or 404 if the caller does not see their company. The one check for every package's routes."""
    user = await repository.get_user(session, user_id)
    if user is None or not may_view_company(actor, user.company_id):
        raise NotFound("No such user.", code="user_not_found")
    return user


async def _administered_user(session: AsyncSession, actor: Actor, user_id: uuid.UUID) -> User:
    user = await visible_user(session, actor, user_id)
    if not may_administer_users(actor, user.company_id):
        raise Forbidden("You may not change users of this company.", code="users_edit_forbidden")
    return user


def _check_grants(actor: Actor, account_type: AccountType | None, permissions: list[Permission] | None) -> None:
    """No one hands out more than they hold: only company admins grant what they lack, or make admins."""
    if account_type == AccountType.support:
        raise Forbidden("Support accounts are created by the vendor only.", code="account_type_forbidden")
    if actor.is_company_admin:
        return
    if account_type == AccountType.company_admin:
        raise Forbidden("Only a company administrator may create company administrators.",
                        code="account_type_forbidden")
    lacking = sorted(p.value for p in permissions or () if not actor.holds(p))
    if lacking:
        raise Forbidden(f"You cannot grant permissions you do not hold: {', '.join(lacking)}.",
                        code="permission_grant_forbidden", extra={"permissions": lacking})


_PERMISSION_VALUES = frozenset(permission.value for permission in Permission)


def _added(wanted: list[Permission] | None, held: list[str]) -> list[Permission]:
    """The permissions in `wanted` that `held` lacks: what a change would newly grant."""
    return [permission for permission in wanted or () if permission.value not in held]


async def _check_unique(
    session: AsyncSession, *, email: str | None, username: str | None, except_user: uuid.UUID | None = None
) -> None:
    if email and await repository.email_taken(session, email, except_user=except_user):
        raise Conflict("That email belongs to another account.", code="email_taken", extra={"field": "email"})
    if username and await repository.username_taken(session, username, except_user=except_user):
        raise Conflict("That username belongs to another account.", code="username_taken",
                       extra={"field": "username"})


def _check_provider(is_provider: bool, billing_number: str | None) -> None:
    if is_provider and not billing_number:
        raise Unprocessable("A provider needs a billing number.", code="billing_number_required",
                            extra={"field": "billing_number"})


async def create_user(
    session: AsyncSession, settings: Settings, principal: Principal, actor: Actor, data: UserCreate
) -> User:
    if not may_view_company(actor, data.company_id):
        raise NotFound("No such company.", code="company_not_found")
    if not may_administer_users(actor, data.company_id):
        raise Forbidden("You may not create users in this company.", code="users_edit_forbidden")
    _check_grants(actor, data.account_type, data.permissions)
    _check_provider(data.is_provider, data.billing_number)
    check_new_password(data.password, data.username, data.email)
    await _check_unique(session, email=data.email, username=data.username)
    user = User(
        id=uuid.uuid4(),
        company_id=data.company_id,
        email=data.email,
        username=data.username,
        display_name=data.display_name,
        password_hash=await hash_password(settings, data.password),
        account_type=data.account_type,
        is_provider=data.is_provider,
        billing_number=data.billing_number,
        permissions=sorted({p.value for p in data.permissions}),
    )
    session.add(user)
    await session.flush()
    record(session, principal, "user.created", company_id=user.company_id, target_type="user", target_id=user.id,
           details={"username": user.username, "account_type": user.account_type.value})
    return user


async def update_user(
    session: AsyncSession, principal: Principal, actor: Actor, user_id: uuid.UUID, data: UserUpdate
) -> User:
    user = await _administered_user(session, actor, user_id)
    changes = data.changes("email", "username", "display_name", "account_type", "is_provider", "permissions")
    # Only what is added counts as a grant: resending or removing what the user already holds is no grant.
    _check_grants(actor, data.account_type, _added(data.permissions, user.permissions))
    if user.account_type == AccountType.support:
        raise Forbidden("Support accounts are managed by the vendor.", code="account_type_forbidden")
    if user.account_type == AccountType.company_admin and not actor.is_company_admin:
        raise Forbidden("Only a company administrator may change a company administrator.",
                        code="users_edit_forbidden")
    await _check_unique(session, email=data.email, username=data.username, except_user=user.id)
    _check_provider(changes.get("is_provider", user.is_provider), changes.get("billing_number", user.billing_number))
    if "permissions" in changes:
        changes["permissions"] = sorted({p.value for p in data.permissions or ()})
    for field, value in changes.items():
        setattr(user, field, value)
    await session.flush()
    record(session, principal, "user.updated", company_id=user.company_id, target_type="user", target_id=user.id,
           details={key: str(value) if not isinstance(value, list) else value for key, value in changes.items()})
    return user


async def set_user_status(
    session: AsyncSession, principal: Principal, actor: Actor, user_id: uuid.UUID, status: UserStatus
) -> User:
    user = await _administered_user(session, actor, user_id)
    if user.id == principal.id:
        raise Conflict("You cannot change your own status.", code="cannot_change_own_status")
    if user.account_type == AccountType.company_admin and not actor.is_company_admin:
        raise Forbidden("Only a company administrator may change a company administrator.",
                        code="users_edit_forbidden")
    locked = await repository.get_user_for_update(session, user.id)
    assert locked is not None
    if locked.status != status:
        locked.status = status
        if status == UserStatus.deactivated:
            locked.deactivated_at = datetime.now(UTC)
            # Every token issued before now stops working on the next request.
            locked.token_version += 1
        else:
            locked.deactivated_at = None
        await session.flush()
        record(session, principal, f"user.{'deactivated' if status == UserStatus.deactivated else 'reactivated'}",
               company_id=locked.company_id, target_type="user", target_id=locked.id)
        changed = UserDeactivated if status == UserStatus.deactivated else UserReactivated
        await emit(session, locked.company_id, changed(user_id=locked.id))
    return locked


# Groups


def _seen_group(actor: Actor, group: Group | None) -> Group:
    if group is None or not may_view_company(actor, group.company_id):
        raise NotFound("No such group.", code="group_not_found")
    return group


async def visible_group(session: AsyncSession, actor: Actor, group_id: uuid.UUID, *, lock: bool = False) -> Group:
    """The group (locked, with `lock`), or 404 if the caller does not see its company."""
    return _seen_group(actor, await repository.get_group(session, group_id, for_update=lock))


async def visible_group_with_counts(session: AsyncSession, actor: Actor, group_id: uuid.UUID
                                    ) -> tuple[Group, int, int]:
    found = await repository.get_group_with_counts(session, group_id)
    _seen_group(actor, found[0] if found else None)
    return found


async def _administered_group(session: AsyncSession, actor: Actor, group_id: uuid.UUID) -> Group:
    group = await visible_group(session, actor, group_id, lock=True)
    if not may_administer_users(actor, group.company_id):
        raise Forbidden("You may not change groups of this company.", code="groups_edit_forbidden")
    return group


async def create_group(session: AsyncSession, principal: Principal, actor: Actor, data: GroupCreate) -> Group:
    if not may_view_company(actor, data.company_id):
        raise NotFound("No such company.", code="company_not_found")
    if not may_administer_users(actor, data.company_id):
        raise Forbidden("You may not create groups in this company.", code="groups_edit_forbidden")
    _check_grants(actor, None, data.permissions)
    if await repository.group_name_taken(session, data.company_id, data.name):
        raise Conflict("A group of that name exists.", code="group_name_taken", extra={"field": "name"})
    group = Group(id=uuid.uuid4(), company_id=data.company_id, name=data.name,
                  permissions=sorted({p.value for p in data.permissions}))
    session.add(group)
    await session.flush()
    record(session, principal, "group.created", company_id=group.company_id, target_type="group",
           target_id=group.id, details={"name": group.name})
    return group


async def update_group(
    session: AsyncSession, principal: Principal, actor: Actor, group_id: uuid.UUID, data: GroupUpdate
) -> Group:
    group = await _administered_group(session, actor, group_id)
    changes = data.changes("name", "permissions")
    _check_grants(actor, None, _added(data.permissions, group.permissions))
    if data.name and await repository.group_name_taken(session, group.company_id, data.name, except_group=group.id):
        raise Conflict("A group of that name exists.", code="group_name_taken", extra={"field": "name"})
    if "permissions" in changes:
        changes["permissions"] = sorted({p.value for p in data.permissions or ()})
    for field, value in changes.items():
        setattr(group, field, value)
    await session.flush()
    record(session, principal, "group.updated", company_id=group.company_id, target_type="group",
           target_id=group.id, details=changes)
    return group


async def set_group_members(
    session: AsyncSession, principal: Principal, actor: Actor, group_id: uuid.UUID, user_ids: list[uuid.UUID]
) -> Group:
    group = await _administered_group(session, actor, group_id)
    wanted = set(user_ids)
    if len(wanted) != len(user_ids):
        raise Unprocessable("A user is listed twice.", code="duplicate_member")
    found = await repository.users_in_company(session, group.company_id, list(wanted))
    unknown = sorted(str(user_id) for user_id in wanted - found)
    if unknown:
        raise Unprocessable("Members must be users of the group's company.", code="member_not_in_company",
                            extra={"user_ids": unknown})
    before = {member.id for member in await repository.group_members(session, group.id)}
    if wanted - before:
        # Joining a group hands over its role: adding members grants the role's permissions, so a
        # non-admin may only add members to a group whose role they hold in full (themselves included).
        _check_grants(actor, None, [Permission(p) for p in group.permissions if p in _PERMISSION_VALUES])
        # ... and the child companies the group selects (billing customer assignments).
        companies = await assignments_repository.companies_of_groups(session, [group.id])
        if not may_grant_company_access(actor, companies):
            lacking = sorted(str(c) for c in companies - actor.reached_company_ids)
            raise Forbidden("The group gives companies you do not reach yourself; you cannot add members to it.",
                            code="assignment_grant_forbidden", extra={"company_id": lacking[0], "company_ids": lacking})
        # ... and the delegation list entries that name it: adding a member changes who sees those providers'
        # bills, which only someone who may manage each of those lists may do (rule 7).
        naming = await delegation_repository.providers_naming_group(session, group.id)
        unmanaged = [provider.id for provider in naming if not may_manage_list(actor, provider)]
        if unmanaged:
            raise Forbidden("The group is named on delegation lists you do not manage; only their providers and "
                            "holders of users:edit_others and billing:delegation_settings add members to it.",
                            code="group_on_delegation_list", extra={"provider_ids": sorted(map(str, unmanaged))})
    await repository.set_group_members(session, group.id, wanted)
    record(session, principal, "group.members_set", company_id=group.company_id, target_type="group",
           target_id=group.id,
           details={"added": sorted(map(str, wanted - before)), "removed": sorted(map(str, before - wanted))})
    if wanted != before:
        await emit(session, group.company_id, GroupMembersChanged(group_id=group.id, added=sorted(wanted - before),
                                                                  removed=sorted(before - wanted)))
    return group


# Directory


async def search_directory(
    session: AsyncSession, actor: Actor, company_id: uuid.UUID, query: str, limit: int
) -> list[DirectoryEntry]:
    if not may_view_company(actor, company_id):
        raise NotFound("No such company.", code="company_not_found")
    users, groups = await repository.search_directory(session, company_id, query, limit)
    entries = [
        DirectoryEntry(type="group", id=group.id, name=group.name, member_count=count) for group, count in groups
    ]
    entries += [
        DirectoryEntry(type="user", id=user.id, name=user.display_name, username=user.username,
                       is_provider=user.is_provider)
        for user in users
    ]
    return entries[: limit]


# Profiles


async def update_profile(
    session: AsyncSession, settings: Settings, principal: Principal, data: ProfileUpdate
) -> User:
    user = await repository.get_user_for_update(session, principal.id)
    assert user is not None
    sensitive = data.email is not None or data.new_password is not None
    if data.new_password is not None:
        check_new_password(data.new_password, user.username, user.email, data.email, field="new_password")
    if sensitive:
        if not data.current_password:
            raise Unprocessable("Changing the email or password needs `current_password`.",
                                code="current_password_required", extra={"field": "current_password"})
        await confirm_password(session, settings, principal, data.current_password, purpose="profile.update")
    if data.email is not None:
        await _check_unique(session, email=data.email, username=None, except_user=user.id)
        user.email = data.email
    if data.display_name is not None:
        user.display_name = data.display_name
    if data.new_password is not None:
        user.password_hash = await hash_password(settings, data.new_password)
        user.token_version += 1  # log out every session, this one included
    await session.flush()
    record(session, principal, "profile.updated", target_type="user", target_id=user.id,
           details={"fields": sorted(data.model_dump(exclude_unset=True, exclude={"current_password", "new_password"}))
                    + (["password"] if data.new_password else [])})
    return user
