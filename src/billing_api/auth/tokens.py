"""JWT access tokens: HS256 pinned, with the user's token_version so a bump revokes them all."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from jose import JWTError, jwt

from billing_api.config import Settings


class Client(StrEnum):
    web = "web"
    mobile = "mobile"


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    token_version: int
    client: Client


def issue_token(settings: Settings, user_id: uuid.UUID, token_version: int, client: Client) -> tuple[str, int]:
    lifetime = timedelta(minutes=settings.token_lifetime_minutes)
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "ver": token_version,
        "client": client.value,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, settings.resolved_jwt_secret(), algorithm=settings.jwt_algorithm)
    return token, int(lifetime.total_seconds())


def read_token(settings: Settings, token: str) -> TokenClaims | None:
    """The claims of a valid, unexpired token signed by us; None for anything else."""
    try:
        claims = jwt.decode(token, settings.resolved_jwt_secret(), algorithms=[settings.jwt_algorithm])
        return TokenClaims(
            user_id=uuid.UUID(claims["sub"]),
            token_version=int(claims["ver"]),
            client=Client(claims.get("client", "web")),
        )
    except (JWTError, KeyError, ValueError, TypeError):
        return None
