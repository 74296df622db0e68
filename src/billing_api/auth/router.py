from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from billing_api.auth import service
from billing_api.auth.principal import client_address
from billing_api.auth.schemas import TokenResponse
from billing_api.auth.tokens import Client
from billing_api.db import Session
from billing_api.deps import AppSettings
from billing_api.errors import problem_responses

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post(
    "/token",
    response_model=TokenResponse,
    summary="Log in (OAuth2 password flow)",
    responses=problem_responses(400, 401, 403, 422, 429),
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
    grant_type: Annotated[str | None, Form(max_length=8, pattern="^(password)?$")] = None,
) -> TokenResponse:
    """Exchange a username (or email) and password for a bearer token.

    A wrong password, an unknown user and a deactivated user all get the same 401. Invited users
    (accounts created by accepting an invitation) cannot use the mobile app: `client=mobile` gets 403
    `mobile_not_available_for_invited_users`.

    Abuse limits: 5 failures on one account within 15 minutes (counted with the password confirmations of
    saves), or 50 from one client address, answer 429 `login_locked` with `Retry-After` until the window
    ends, even for the right password and whether or not the account exists. The numbers are settings.
    """
    token, expires_in = await service.log_in(session, settings, username, password, client, client_address(request))
    return TokenResponse(access_token=token, expires_in=expires_in)
