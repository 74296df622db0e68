"""Who is calling: the bearer token, checked against the database on every request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from billing_api.auth import repository
from billing_api.auth.tokens import Client, read_token
from billing_api.db import Session
from billing_api.deps import AppSettings
from billing_api.errors import Unauthenticated
from billing_api.models import User, UserStatus
from billing_api.observability.context import bind_user

bearer = OAuth2PasswordBearer(
    tokenUrl="/v1/auth/token",
    auto_error=False,
    description="A bearer JWT from `POST /v1/auth/token` (OAuth2 password flow): send `Authorization: Bearer "
                "<token>`. It expires after `expires_in` seconds and stops working at once when the user is "
                "deactivated.\n\nThe tokens follow RFC8725, the JSON Web Token Best Current Practices: the "
                "algorithm is pinned to HS256 (checked in the header before verifying, so `none` or any other "
                "algorithm is refused); `sub`, `iat` and `exp` are required, `iat`, `exp` and `nbf` as integers; a "
                "token issued in the future, or living longer (`exp - iat`) than the configured lifetime "
                "(`BILLING_API_TOKEN_LIFETIME_MINUTES`, 60 by default) plus 30 s of clock skew, is refused; tokens "
                "over 8 KiB are refused unparsed. Tokens are short-lived and there is no refresh token: log in "
                "again when one expires.",
)


@dataclass
class Principal:
    """The authenticated caller of this request."""

    user: User
    client: Client
    address: str | None

    @property
    def id(self) -> uuid.UUID:
        return self.user.id

    @property
    def company_id(self) -> uuid.UUID:
        return self.user.company_id


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def current_principal(
    request: Request, session: Session, settings: AppSettings, token: Annotated[str | None, Depends(bearer)]
) -> Principal:
    claims = read_token(settings, token) if token else None
    if claims is None:
        raise Unauthenticated()
    # No cache: status and token_version are read fresh, so deactivation holds on the next request.
    user = await repository.caller(session, claims.user_id)
    if user is None or user.status != UserStatus.active or user.token_version != claims.token_version:
        raise Unauthenticated("The token is no longer valid; log in again.", code="token_revoked")
    bind_user(user.id)  # log lines of this request name the caller
    return Principal(user=user, client=claims.client, address=client_address(request))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
