"""HTTP for role presets, the provider's team and invitations."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from billing_api.auth.principal import CurrentPrincipal, Principal, bearer, client_address, current_principal
from billing_api.authz.dependencies import CurrentActor
from billing_api.db import Session
from billing_api.deps import AppSettings
from billing_api.errors import problem_responses
from billing_api.idempotency.service import Idempotent, IdempotentRoute
from billing_api.team import service
from billing_api.team.schemas import (
    InvitationAccept,
    InvitationAccepted,
    InvitationCreate,
    InvitationRead,
    RoleRead,
    TeamMemberRead,
    TeamMemberUpdate,
    TeamRead,
)

READ_ERRORS = problem_responses(401, 403, 404, 422)
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 422)

router = APIRouter(prefix="/v1", route_class=IdempotentRoute)


async def optional_principal(request: Request, session: Session, settings: AppSettings,
                             token: Annotated[str | None, Depends(bearer)]) -> Principal | None:
    """The caller when a bearer token is sent (it must then be valid), else None."""
    if token is None:
        return None
    return await current_principal(request, session, settings, token)


@router.get("/roles", response_model=list[RoleRead], tags=["team"], responses=problem_responses(401))
async def list_roles(principal: CurrentPrincipal) -> list[RoleRead]:
    """The role presets a provider gives team members, with their permissions and what each is for."""
    return service.roles()


@router.get("/providers/{provider_id}/team", response_model=TeamRead, tags=["team"], responses=READ_ERRORS)
async def get_team(provider_id: uuid.UUID, session: Session, actor: CurrentActor) -> TeamRead:
    """The people on the provider's delegation list with their role and permissions, and the open invitations
    with their state (`pending`, `expired`) and email delivery (`queued`, `sent`, `failed` with the reason,
    attempts, last try). For the provider and list managers."""
    provider = await service.managed_provider(session, actor, provider_id)
    return await service.read_team(session, provider)


@router.post("/providers/{provider_id}/invitations", dependencies=[Idempotent], response_model=InvitationRead,
             status_code=status.HTTP_201_CREATED, tags=["team"], responses={**WRITE_ERRORS, **problem_responses(429)})
async def create_invitation(provider_id: uuid.UUID, data: InvitationCreate, session: Session, settings: AppSettings,
                            principal: CurrentPrincipal, actor: CurrentActor) -> InvitationRead:
    """Invite someone by email with a role preset or custom permissions; the email (with a single-use link that
    expires) leaves through the outbox. The answer never depends on whether the email has an account in any
    company: nothing is looked up about other accounts, and the body says neither whether one exists nor its
    username (`username` and `display_name` echo the inviter's suggestions for a newcomer). Whoever holds the
    email decides on acceptance: an existing account joins with its own login, a newcomer creates one.
    At most 20 new invitations per provider an hour (settings): beyond, 429 `invitation_send_limited`, checked
    before anything about the email. Past the limit, refusals only concern what the team listing shows:
    422 `cannot_invite_self`, 409 `already_on_team`, 409 `invitation_pending`."""
    return await service.invite(session, settings, principal, actor, provider_id, data)


@router.post("/invitations/{invitation_id}/resend",
             dependencies=[Idempotent], response_model=InvitationRead, tags=["team"],
             responses=problem_responses(401, 403, 404, 409, 422, 429))
async def resend_invitation(invitation_id: uuid.UUID, session: Session, settings: AppSettings,
                            principal: CurrentPrincipal, actor: CurrentActor) -> InvitationRead:
    """Send the invitation again with a new link (the old one stops working) and a new expiry. Rate limited:
    429 `invitation_resend_limited` with Retry-After."""
    return await service.resend(session, settings, principal, actor, invitation_id)


@router.delete("/invitations/{invitation_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["team"],
               responses=problem_responses(401, 403, 404, 409, 422))
async def cancel_invitation(invitation_id: uuid.UUID, session: Session, principal: CurrentPrincipal,
                            actor: CurrentActor) -> Response:
    """Cancel a pending invitation: its link stops working, and an email not yet sent is not sent."""
    await service.cancel(session, principal, actor, invitation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/invitations/accept", response_model=InvitationAccepted, tags=["team"],
             responses=problem_responses(400, 401, 403, 404, 409, 410, 422))
async def accept_invitation(data: InvitationAccept, request: Request, session: Session, settings: AppSettings,
                            principal: Annotated[Principal | None, Depends(optional_principal)]) -> InvitationAccepted:
    """Accept with the link's token, which proves control of the invited email; whether that email has an
    account is decided here. An email that already has an account: `token` alone, with that account's bearer
    token (401 `invitation_login_required` without it; 409 `account_deactivated`, `account_not_invitable`; 422
    `new_account_fields_not_expected`); it joins with its own login, one login serving several providers. A
    newcomer: `token`, `password` and `username` (defaults to the inviter's suggestion; 422
    `username_required`), signed out; 409 `username_taken` asks for another `username`. Refusals write
    nothing: 404 `invitation_not_found` (unknown or replaced link), 409 `invitation_already_accepted`, 410
    `invitation_expired` or `invitation_cancelled`, 403 `invitation_wrong_account`."""
    return await service.accept(session, settings, principal, data, client_address(request))


@router.patch("/providers/{provider_id}/team/{user_id}", response_model=TeamMemberRead, tags=["team"],
              responses=WRITE_ERRORS)
async def update_team_member(provider_id: uuid.UUID, user_id: uuid.UUID, data: TeamMemberUpdate, session: Session,
                             principal: CurrentPrincipal, actor: CurrentActor) -> TeamMemberRead:
    """Change a team member's role or custom permissions; holds from the next request."""
    return await service.update_member(session, principal, actor, provider_id, user_id, data)


@router.delete("/providers/{provider_id}/team/{user_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["team"],
               responses=problem_responses(401, 403, 404, 422))
async def revoke_team_member(provider_id: uuid.UUID, user_id: uuid.UUID, session: Session,
                             principal: CurrentPrincipal, actor: CurrentActor) -> Response:
    """Revoke a member's access to this provider's billing, from the next request. The account stays, with
    whatever other providers gave it."""
    await service.revoke(session, principal, actor, provider_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
