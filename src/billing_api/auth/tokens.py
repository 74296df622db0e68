"""JWT access tokens: HS256 pinned, with the user's token_version so a bump revokes them all."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from jose import jwt

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
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")  # unpadded base64url, as JWS writes it


def _segment(text: str) -> bytes:
    if not _SEGMENT.fullmatch(text):
        raise ValueError("not a base64url segment")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signed_claims(token: str, secret: str) -> dict | None:
    """The claims of a JWS signed with `secret` by HS256, the only algorithm we issue, checked in the header
    first (so `none` or a public-key algorithm never reaches a verifier). Verified here rather than by
    python-jose: its decoding cost a tenth of a bill page's CPU."""
    header, payload, signature = token.split(".")  # ValueError unless exactly three segments
    if json.loads(_segment(header)).get("alg") != "HS256":
        return None
    expected = hmac.new(secret.encode(), f"{header}.{payload}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _segment(signature)):
        return None
    claims = json.loads(_segment(payload))
    return claims if isinstance(claims, dict) else None


def read_token(settings: Settings, token: str) -> TokenClaims | None:
    """The claims of a valid, unexpired token signed by us; None for anything else (never an exception).

    Only HS256; `sub`, `ver`, `iat` and `exp` are required (the numbers as integers, never strings, floats or
    booleans), a token not yet valid (`nbf`), expired or issued in the future is refused (with the clock skew),
    and so is one whose `exp - iat` is longer than the configured lifetime (plus the clock skew)."""
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        claims = _signed_claims(token, settings.resolved_jwt_secret())
        if claims is None:
            return None
        issued_at, expires, version, subject = claims["iat"], claims["exp"], claims["ver"], claims["sub"]
        not_before = claims.get("nbf", 0)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (issued_at, expires, version, not_before)):
            return None
        now = datetime.now(UTC).timestamp()
        if expires < now - CLOCK_SKEW_SECONDS or max(issued_at, not_before) > now + CLOCK_SKEW_SECONDS:
            return None
        # A token signed with our key still lives no longer than we issue them for (no exp of 10**12).
        if not 0 < expires - issued_at <= settings.token_lifetime_minutes * 60 + CLOCK_SKEW_SECONDS:
            return None
        if not isinstance(subject, str):
            return None
        return TokenClaims(user_id=uuid.UUID(subject), token_version=version,
                           client=Client(claims.get("client", "web")))
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError):  # binascii.Error is a ValueError
        return None
