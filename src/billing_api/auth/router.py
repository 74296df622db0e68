from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from billing_api.audit.service import build_event
from billing_api.auth.principal import client_address
from billing_api.auth.schemas import TokenResponse
from billing_api.auth.tokens import Client, issue_token
from billing_api.db import Session
from billing_api.deps import AppSettings
from billing_api.errors import Unauthenticated, problem_responses
from billing_api.identity import repository as identity_repository
from billing_api.identity import service as identity_service

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post(
    "/token",
    response_model=TokenResponse,
    summary="Log in (OAuth2 password flow)",
    responses=problem_responses(400, 401, 422),
)
async def create_token(
    request: Request,
    session: Session,
    settings: AppSettings,
    username: Annotated[str, Form(min_length=1, max_length=320, description="Username or email.")],
    password: Annotated[str, Form(min_length=1, max_length=256)],
    client: Annotated[Client, Form(description="The app asking: `web` or `mobile`.")] = Client.web,
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
) -> TokenResponse:
    """Exchange a username (or email) and password for a bearer token.

    A wrong password, an unknown user and a deactivated user all get the same 401.
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
    token, expires_in = issue_token(settings, user.id, user.token_version, client)
    return TokenResponse(access_token=token, expires_in=expires_in)
