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


# Ours are about 300 characters; anything far bigger is not worth parsing.
MAX_TOKEN_LENGTH = 8192
# Tolerated clock difference between the machines that issue and check tokens (expiry, a token from the future,
# and the lifetime bound): NTP keeps servers within a second; 30 s covers a drifting host without extending a
# stolen token's life noticeably.
CLOCK_SKEW_SECONDS = 30
_REQUIRED = {"require_exp": True, "require_iat": True, "require_sub": True, "leeway": CLOCK_SKEW_SECONDS}


def read_token(settings: Settings, token: str) -> TokenClaims | None:
    """The claims of a valid, unexpired token signed by us; None for anything else (never an exception).

    Only HS256 (checked in the header too, so `none` or a public-key algorithm never reaches a verifier);
    `sub`, `ver`, `iat` and `exp` are required (the numbers as integers), a token issued in the future is refused,
    and so is one whose `exp - iat` is longer than the configured lifetime (plus the clock skew)."""
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        if jwt.get_unverified_header(token).get("alg") != settings.jwt_algorithm:
            return None
        claims = jwt.decode(token, settings.resolved_jwt_secret(), algorithms=[settings.jwt_algorithm],
                            options=_REQUIRED)
        issued_at, expires, version, subject = claims["iat"], claims["exp"], claims["ver"], claims["sub"]
        # python-jose checks times with int(), which takes "9999999999", 1e12 and True; we take integers only.
        numbers = (issued_at, expires, version, claims.get("nbf", 0))
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in numbers):
            return None
        if issued_at > datetime.now(UTC).timestamp() + CLOCK_SKEW_SECONDS or not isinstance(subject, str):
            return None
        # A token signed with our key still lives no longer than we issue them for (no exp of 10**12).
        if not 0 < expires - issued_at <= settings.token_lifetime_minutes * 60 + CLOCK_SKEW_SECONDS:
            return None
        return TokenClaims(user_id=uuid.UUID(subject), token_version=version,
                           client=Client(claims.get("client", "web")))
    except (JWTError, KeyError, ValueError, TypeError, AttributeError, OverflowError):  # Overflow: exp Infinity
        return None
