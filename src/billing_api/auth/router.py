from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from billing_api.audit.service import build_event
from billing_api.auth.principal import client_address
from billing_api.auth.schemas import TokenResponse
from billing_api.auth.tokens import Client, issue_token
from billing_api.db import Session
from billing_api.deps import AppSettings
from billing_api.errors import Forbidden, Unauthenticated, problem_responses
from billing_api.identity import repository as identity_repository
from billing_api.identity import service as identity_service
from billing_api.models import UserKind

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post(
    "/token",
    response_model=TokenResponse,
    summary="Log in (OAuth2 password flow)",
    responses=problem_responses(400, 401, 403, 422),
    openapi_extra={"requestBody": {"content": {"application/x-www-form-urlencoded": {
        "example": {"username": "dr.lovelace", "password": "demo-password-1", "client": "web"}}}}},
)
async def create_token(
    request: Request,
    session: Session,
    settings: AppSettings,
    username: Annotated[str, Form(min_length=1, max_length=320, description="Username or email.")],
    password: Annotated[str, Form(min_length=1, max_length=256)],
    client: Annotated[Client, Form(description="The app asking: `web` or `mobile`.")] = Client.web,
    # An empty form field counts as left out, so the contract allows "" beside "password".
    grant_type: Annotated[str | None, Form(pattern="^(password)?$")] = None,
) -> TokenResponse:
    """Exchange a username (or email) and password for a bearer token.

    A wrong password, an unknown user and a deactivated user all get the same 401. Invited users
    (accounts created by accepting an invitation) cannot use the mobile app: `client=mobile` gets 403
    `mobile_not_available_for_invited_users`.
    """
    user = await identity_service.authenticate(session, settings, username, password)
    if user is None:
        known = await identity_repository.find_user_by_login(session, username)
        event = build_event(
            None, "auth.login_failed", company_id=known.company_id if known else None,
            target_type="user" if known else None, target_id=known.id if known else None,
            details={"client": client.value}, address=client_address(request),
        )
        raise Unauthenticated("Wrong username or password.", code="invalid_credentials", audit_events=[event])
    if client == Client.mobile and user.kind == UserKind.invited:
        # Checked only once the password is right, so it tells nothing to someone guessing.
        event = build_event(None, "auth.mobile_refused", company_id=user.company_id, target_type="user",
                            target_id=user.id, details={"client": client.value}, address=client_address(request))
        event.actor_id = user.id
        raise Forbidden("Invited users cannot use the mobile app; sign in on the web.",
                        code="mobile_not_available_for_invited_users", audit_events=[event])
    token, expires_in = issue_token(settings, user.id, user.token_version, client)
    return TokenResponse(access_token=token, expires_in=expires_in)
