"""Billing customer assignments (the EMS seed): a group (role) selects child companies of its company and every
member reaches them; a user may be given more children directly; a company administrator reaches them all.
Nothing is stored for the last: reach (authz.repository.reached_companies) reads these rows on every request."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.assignments import repository
from billing_api.assignments.schemas import (
    AssignmentSource,
    GroupAssignment,
    GroupAssignmentsRead,
    SourceType,
    SwitcherCompany,
    SwitcherRead,
    UserAssignment,
    UserAssignmentsRead,
)
from billing_api.audit.service import record
from billing_api.auth.principal import Principal
from billing_api.authz.actor import Actor
from billing_api.authz.policies import may_administer_users, may_grant_company_access
from billing_api.companies import repository as company_repository
from billing_api.companies import service as company_service
from billing_api.errors import Forbidden, Unprocessable
from billing_api.events.schemas import GroupAssignmentsChanged, UserAssignmentsChanged
from billing_api.events.service import emit
from billing_api.identity import repository as identity_repository
from billing_api.identity import service as identity_service
from billing_api.models import AccountType, Company, Group, User


def _named_children(children: list[Company], company_ids: list[uuid.UUID], home: uuid.UUID) -> set[uuid.UUID]:
    """The ids, checked: no duplicates, and each a child company of `home` (else a 422 naming the company)."""
    wanted = set(company_ids)
    if len(wanted) != len(company_ids):
        twice = sorted({str(c) for c in company_ids if company_ids.count(c) > 1})
        raise Unprocessable("A company is listed twice.", code="duplicate_company",
                            extra={"company_id": twice[0], "company_ids": twice})
    outside = sorted(str(c) for c in wanted - {child.id for child in children})
    if outside:
        raise Unprocessable(
            f"Company {outside[0]} is not a child company of the home company {home}: only its child companies "
            "can be assigned.", code="company_not_a_child",
            extra={"company_id": outside[0], "company_ids": outside, "parent_id": str(home)})
    return wanted


def _check_grant(actor: Actor, added: set[uuid.UUID]) -> None:
    if added and not may_grant_company_access(actor, added):
        lacking = sorted(str(c) for c in added - actor.reached_company_ids)
        raise Forbidden("You cannot assign companies you do not reach yourself.", code="assignment_grant_forbidden",
                        extra={"company_id": lacking[0], "company_ids": lacking})


# Groups


async def group_assignments(session: AsyncSession, actor: Actor, group_id: uuid.UUID) -> GroupAssignmentsRead:
    group = await identity_service.visible_group(session, actor, group_id)
    return await _group_read(session, group)


async def _group_read(session: AsyncSession, group: Group) -> GroupAssignmentsRead:
    children = await company_repository.children_of(session, group.company_id)
    assigned = await repository.group_company_ids(session, group.id)
    return GroupAssignmentsRead(
        group_id=group.id, group_name=group.name, company_id=group.company_id,
        items=[GroupAssignment(company_id=c.id, company_name=c.name, assigned=c.id in assigned) for c in children],
    )


async def set_group_assignments(
    session: AsyncSession, principal: Principal, actor: Actor, group_id: uuid.UUID, company_ids: list[uuid.UUID]
) -> GroupAssignmentsRead:
    """Replace the child companies the group (role) selects. Members gain or lose them on their next request."""
    group = await identity_service.visible_group(session, actor, group_id, lock=True)
    if not may_administer_users(actor, group.company_id):
        raise Forbidden("You may not change groups of this company.", code="groups_edit_forbidden")
    children = await company_repository.children_of(session, group.company_id)
    wanted = _named_children(children, company_ids, group.company_id)
    before = await repository.group_company_ids(session, group.id)
    _check_grant(actor, wanted - before)
    if wanted != before:
        await repository.set_group_companies(session, group.id, wanted)
        record(session, principal, "group.billing_customer_assignments_set", company_id=group.company_id,
               target_type="group", target_id=group.id,
               details={"added": sorted(map(str, wanted - before)), "removed": sorted(map(str, before - wanted))})
        await emit(session, group.company_id, GroupAssignmentsChanged(group_id=group.id, added=sorted(wanted - before),
                                                                      removed=sorted(before - wanted)))
    return await _group_read(session, group)


# Users


async def user_assignments(session: AsyncSession, actor: Actor, user_id: uuid.UUID) -> UserAssignmentsRead:
    """Readable by the user themselves and by those who may administer the user's company."""
    user = await identity_service.visible_user(session, actor, user_id)
    if user.id != actor.id and not may_administer_users(actor, user.company_id):
        raise Forbidden("You may not read this user's billing customer assignments.", code="users_edit_forbidden")
    return await _user_read(session, user)


async def _sources(session: AsyncSession, user: User) -> tuple[dict[uuid.UUID, list[AssignmentSource]], set]:
    """Per child company, what gives it (roles first, then direct, then company admin); and the direct set."""
    sources: dict[uuid.UUID, list[AssignmentSource]] = {}
    for company_id, group_id, group_name in await repository.role_sources(session, user):
        sources.setdefault(company_id, []).append(
            AssignmentSource(type=SourceType.role, group_id=group_id, group_name=group_name))
    direct = await repository.user_company_ids(session, user.id)
    for company_id in direct:
        sources.setdefault(company_id, []).append(AssignmentSource(type=SourceType.direct))
    return sources, direct


async def _user_read(session: AsyncSession, user: User) -> UserAssignmentsRead:
    children = await company_repository.children_of(session, user.company_id)
    sources, _ = await _sources(session, user)
    admin = user.account_type == AccountType.company_admin
    items = []
    for child in children:
        given = list(sources.get(child.id, []))
        if admin:
            given.append(AssignmentSource(type=SourceType.company_admin))
        locked = any(source.type != SourceType.direct for source in given)
        items.append(UserAssignment(company_id=child.id, company_name=child.name, reached=bool(given),
                                    sources=given, removable=not locked))
    return UserAssignmentsRead(user_id=user.id, company_id=user.company_id, items=items)


async def set_user_assignments(
    session: AsyncSession, principal: Principal, actor: Actor, user_id: uuid.UUID, company_ids: list[uuid.UUID]
) -> UserAssignmentsRead:
    """`company_ids` is the checked list: every child company the user should reach. Any child may be added
    (it becomes a direct assignment); one that a role or company administration gives cannot be left out (422
    naming the company and the role); nothing changes on a refused save. Direct assignments the list keeps
    stay; a company a role or admin already gives never becomes a direct assignment by being listed."""
    found = await identity_service.visible_user(session, actor, user_id)
    if not may_administer_users(actor, found.company_id):
        raise Forbidden("You may not change users of this company.", code="users_edit_forbidden")
    user = await identity_repository.get_user_for_update(session, found.id)  # one save at a time per user
    assert user is not None
    if user.account_type == AccountType.company_admin and not actor.is_company_admin:
        raise Forbidden("Only a company administrator may change a company administrator.",
                        code="users_edit_forbidden")
    children = await company_repository.children_of(session, user.company_id)
    names = {child.id: child.name for child in children}
    wanted = _named_children(children, company_ids, user.company_id)
    sources, before = await _sources(session, user)
    if user.account_type == AccountType.company_admin:
        missing = [child for child in children if child.id not in wanted]
        if missing:
            raise Unprocessable(
                f"{user.display_name} is a company administrator and reaches every child company; "
                f"{missing[0].name} cannot be unchecked.", code="assignment_given_by_company_admin",
                extra={"company_id": str(missing[0].id), "company_name": missing[0].name,
                       "company_ids": [str(child.id) for child in missing]})
    by_role = {company_id: [s for s in given if s.type == SourceType.role] for company_id, given in sources.items()}
    by_role = {company_id: roles for company_id, roles in by_role.items() if roles}
    refused = sorted((company_id for company_id in by_role if company_id not in wanted), key=lambda c: names[c])
    if refused:
        first, role = refused[0], by_role[refused[0]][0]
        raise Unprocessable(
            f"{names[first]} is given by the role {role.group_name!r}; it cannot be removed here (remove it from "
            "the role, or the user from the role).", code="assignment_given_by_role",
            extra={"company_id": str(first), "company_name": names[first], "group_id": str(role.group_id),
                   "group_name": role.group_name,
                   "refused": [{"company_id": str(c), "company_name": names[c],
                                "groups": [{"group_id": str(r.group_id), "group_name": r.group_name}
                                           for r in by_role[c]]} for c in refused]})
    given_otherwise = set(by_role) | (set(names) if user.account_type == AccountType.company_admin else set())
    direct = (wanted & before) | (wanted - given_otherwise)
    _check_grant(actor, direct - before)
    if direct != before:
        await repository.set_user_companies(session, user.id, direct)
        record(session, principal, "user.billing_customer_assignments_set", company_id=user.company_id,
               target_type="user", target_id=user.id,
               details={"added": sorted(map(str, direct - before)), "removed": sorted(map(str, before - direct))})
        await emit(session, user.company_id, UserAssignmentsChanged(user_id=user.id, added=sorted(direct - before),
                                                                    removed=sorted(before - direct)))
    return await _user_read(session, user)


# The context switcher


async def switcher(session: AsyncSession, actor: Actor, active: uuid.UUID | None) -> SwitcherRead:
    companies = await company_service.reachable_companies(session, actor)
    return SwitcherRead(
        active_company_id=active, home_company_id=actor.company_id,
        items=[SwitcherCompany(id=c.id, name=c.name, parent_id=c.parent_id, is_active=c.id == active)
               for c in companies],
    )
