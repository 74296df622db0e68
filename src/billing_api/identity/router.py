"""HTTP for the caller, users, groups, the directory and profiles. No SQL and no rules here."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from billing_api.auth.principal import CurrentPrincipal
from billing_api.authz.dependencies import CompanyReach, CurrentActor
from billing_api.companies import service as company_service
from billing_api.companies.schemas import CompanyRead
from billing_api.db import Session
from billing_api.deps import AppSettings
from billing_api.errors import problem_responses
from billing_api.idempotency.service import Idempotent, IdempotentRoute
from billing_api.identity import repository, service
from billing_api.identity.schemas import (
    DirectoryResult,
    GroupCreate,
    GroupMemberRead,
    GroupMembersSet,
    GroupPage,
    GroupRead,
    GroupUpdate,
    MeRead,
    ProfileRead,
    ProfileUpdate,
    UserCreate,
    UserPage,
    UserRead,
    UserUpdate,
)
from billing_api.models import UserStatus
from billing_api.pagination import Paging, next_cursor
from billing_api.schemas import SEARCH_MAX_LENGTH

AUTH_ERRORS = problem_responses(401, 403, 404, 422)
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 422)

router = APIRouter(prefix="/v1", route_class=IdempotentRoute, responses=problem_responses(401))


@router.get("/me", response_model=MeRead, tags=["me"], summary="Who am I")
async def get_me(session: Session, principal: CurrentPrincipal, actor: CurrentActor) -> MeRead:
    """The caller, their company, their effective permissions and the companies they reach."""
    companies = await company_service.reachable_companies(session, actor)
    home = await company_service.home_company(session, principal)
    return MeRead(
        user=UserRead.model_validate(principal.user),
        company=CompanyRead.model_validate(home),
        permissions=sorted(actor.permissions),
        reachable_companies=[CompanyRead.model_validate(company) for company in companies],
    )


# Users


@router.post("/users",
             dependencies=[Idempotent], response_model=UserRead, status_code=status.HTTP_201_CREATED, tags=["users"],
             responses=WRITE_ERRORS)
async def create_user(
    data: UserCreate, session: Session, settings: AppSettings, principal: CurrentPrincipal, actor: CurrentActor
) -> UserRead:
    """Create a user in a company the caller administers (company admins and `users:edit_others`)."""
    return UserRead.model_validate(await service.create_user(session, settings, principal, actor, data))


@router.get("/users", response_model=UserPage, tags=["users"], responses=AUTH_ERRORS)
async def list_users(
    session: Session,
    actor: CurrentActor,
    reach: CompanyReach,
    paging: Paging,
    company_id: Annotated[uuid.UUID | None, Query(description="Only this company's users.")] = None,
    user_status: Annotated[UserStatus | None, Query(alias="status")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=SEARCH_MAX_LENGTH,
                                   description="Name or username contains.")] = None,
) -> UserPage:
    """Users of the companies the caller reaches, oldest first."""
    if company_id is not None:
        await company_service.visible_company(session, actor, company_id)
        reach = reach.within(company_id)
    rows = await repository.list_users(
        session, reach, status=user_status, query=q, limit=paging.limit, after=paging.after
    )
    return UserPage(items=[UserRead.model_validate(u) for u in rows[: paging.limit]],
                    next_cursor=next_cursor(rows, paging.limit))


@router.get("/users/{user_id}", response_model=UserRead, tags=["users"], responses=AUTH_ERRORS)
async def get_user(user_id: uuid.UUID, session: Session, actor: CurrentActor) -> UserRead:
    """A user of a company the caller reaches; any other user is not found."""
    return UserRead.model_validate(await service.visible_user(session, actor, user_id))


@router.patch("/users/{user_id}", response_model=UserRead, tags=["users"], responses=WRITE_ERRORS)
async def update_user(
    user_id: uuid.UUID, data: UserUpdate, session: Session, principal: CurrentPrincipal, actor: CurrentActor
) -> UserRead:
    """Edit a user (`users:edit_others`, or a company administrator for administrators). Only the fields sent
    change; permissions the caller does not hold cannot be granted."""
    return UserRead.model_validate(await service.update_user(session, principal, actor, user_id, data))


@router.post("/users/{user_id}/deactivate", response_model=UserRead, tags=["users"], responses=WRITE_ERRORS)
async def deactivate_user(
    user_id: uuid.UUID, session: Session, principal: CurrentPrincipal, actor: CurrentActor
) -> UserRead:
    """Deactivate a user: their tokens stop working on the very next request."""
    user = await service.set_user_status(session, principal, actor, user_id, UserStatus.deactivated)
    return UserRead.model_validate(user)


@router.post("/users/{user_id}/reactivate", response_model=UserRead, tags=["users"], responses=WRITE_ERRORS)
async def reactivate_user(
    user_id: uuid.UUID, session: Session, principal: CurrentPrincipal, actor: CurrentActor
) -> UserRead:
    """Reactivate a user; they log in again (old tokens stay dead)."""
    user = await service.set_user_status(session, principal, actor, user_id, UserStatus.active)
    return UserRead.model_validate(user)


# Groups


def _group_read(found: tuple) -> GroupRead:
    group, member_count, active_member_count = found
    return GroupRead(id=group.id, company_id=group.company_id, name=group.name, permissions=group.permissions,
                     member_count=member_count, active_member_count=active_member_count,
                     created_at=group.created_at)


@router.post("/groups",
             dependencies=[Idempotent], response_model=GroupRead, status_code=status.HTTP_201_CREATED, tags=["groups"],
             responses=WRITE_ERRORS)
async def create_group(data: GroupCreate, session: Session, principal: CurrentPrincipal,
                       actor: CurrentActor) -> GroupRead:
    """Create a group in a company the caller reaches (`groups:edit` or a company administrator). Its
    permissions and companies go to every member; the caller cannot grant permissions they do not hold."""
    group = await service.create_group(session, principal, actor, data)
    return _group_read(await service.visible_group_with_counts(session, actor, group.id))


@router.get("/groups", response_model=GroupPage, tags=["groups"], responses=AUTH_ERRORS)
async def list_groups(
    session: Session,
    actor: CurrentActor,
    reach: CompanyReach,
    paging: Paging,
    company_id: Annotated[uuid.UUID | None, Query(description="Only this company's groups.")] = None,
) -> GroupPage:
    """Groups of the companies the caller reaches (support: every company); `company_id` narrows to
    one company."""
    if company_id is not None:
        await company_service.visible_company(session, actor, company_id)
        reach = reach.within(company_id)
    rows = await repository.list_groups(session, reach, limit=paging.limit, after=paging.after)
    return GroupPage(items=[_group_read(row) for row in rows[: paging.limit]],
                     next_cursor=next_cursor([row[0] for row in rows], paging.limit))


@router.get("/groups/{group_id}", response_model=GroupRead, tags=["groups"], responses=AUTH_ERRORS)
async def get_group(group_id: uuid.UUID, session: Session, actor: CurrentActor) -> GroupRead:
    """A group of a company the caller reaches, with its member counts; any other group is not found."""
    return _group_read(await service.visible_group_with_counts(session, actor, group_id))


@router.patch("/groups/{group_id}", response_model=GroupRead, tags=["groups"], responses=WRITE_ERRORS)
async def update_group(group_id: uuid.UUID, data: GroupUpdate, session: Session, principal: CurrentPrincipal,
                       actor: CurrentActor) -> GroupRead:
    """Rename a group or change its role (the permissions its members inherit)."""
    await service.update_group(session, principal, actor, group_id, data)
    return _group_read(await service.visible_group_with_counts(session, actor, group_id))


@router.get("/groups/{group_id}/members", response_model=list[GroupMemberRead], tags=["groups"],
            responses=AUTH_ERRORS)
async def list_group_members(group_id: uuid.UUID, session: Session, actor: CurrentActor) -> list[GroupMemberRead]:
    """The group's members (active and deactivated), by display name."""
    await service.visible_group_with_counts(session, actor, group_id)
    return [GroupMemberRead.model_validate(user) for user in await repository.group_members(session, group_id)]


@router.put("/groups/{group_id}/members", response_model=list[GroupMemberRead], tags=["groups"],
            responses=WRITE_ERRORS)
async def set_group_members(group_id: uuid.UUID, data: GroupMembersSet, session: Session,
                            principal: CurrentPrincipal, actor: CurrentActor) -> list[GroupMemberRead]:
    """Replace the group's members. Who leaves loses what the group gave them on the next request."""
    await service.set_group_members(session, principal, actor, group_id, data.user_ids)
    return [GroupMemberRead.model_validate(user) for user in await repository.group_members(session, group_id)]


# Directory and profiles


@router.get("/directory", response_model=DirectoryResult, tags=["directory"], responses=AUTH_ERRORS)
async def search_directory(
    session: Session,
    principal: CurrentPrincipal,
    actor: CurrentActor,
    q: Annotated[str, Query(min_length=1, max_length=SEARCH_MAX_LENGTH, description="Part of a name or username.")],
    company_id: Annotated[uuid.UUID | None, Query(description="Defaults to the caller's company.")] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> DirectoryResult:
    """Active users and groups whose name matches; each group with its active member count."""
    entries = await service.search_directory(session, actor, company_id or principal.company_id, q, limit)
    return DirectoryResult(items=entries)


@router.get("/profiles/me", response_model=ProfileRead, tags=["profiles"])
async def get_my_profile(principal: CurrentPrincipal) -> ProfileRead:
    """The caller's own profile."""
    return ProfileRead.model_validate(principal.user)


@router.patch("/profiles/me", response_model=ProfileRead, tags=["profiles"],
              responses=problem_responses(400, 401, 403, 409, 422, 429))
async def update_my_profile(data: ProfileUpdate, session: Session, settings: AppSettings,
                            principal: CurrentPrincipal) -> ProfileRead:
    """Change your name, email or password. Email and password changes need `current_password`;
    a password change logs out every session (log in again)."""
    return ProfileRead.model_validate(await service.update_profile(session, settings, principal, data))


@router.get("/profiles/{user_id}", response_model=ProfileRead, tags=["profiles"], responses=AUTH_ERRORS)
async def get_profile(user_id: uuid.UUID, session: Session, actor: CurrentActor) -> ProfileRead:
    """The profile of a user of a company the caller reaches; any other user is not found."""
    return ProfileRead.model_validate(await service.visible_user(session, actor, user_id))
