"""Secrets that email carries (invitation tokens) without the database ever holding them.

A message's secret is derived from a random nonce and the server's key: HMAC-SHA256(key, nonce). The
database keeps the nonce on the queued outbox row only until the message is sent or given up, and the
thing the secret unlocks keeps only its SHA-256. Whoever reads the database alone can rebuild no token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from billing_api.config import Settings

_PURPOSE = b"billing-api mail secret v1"


def new_nonce() -> str:
    return secrets.token_urlsafe(32)


def _key(settings: Settings) -> bytes:
    return hmac.new(settings.resolved_jwt_secret().encode(), _PURPOSE, hashlib.sha256).digest()


def derive(settings: Settings, nonce: str) -> str:
    """The URL-safe secret (43 characters, 256 bits) for this nonce."""
    digest = hmac.new(_key(settings), nonce.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def fingerprint(secret: str) -> str:
    """What is stored: the hex SHA-256 (a 256-bit random secret needs no slow hash)."""
    return hashlib.sha256(secret.encode()).hexdigest()
