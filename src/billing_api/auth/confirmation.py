"""The password-confirmation step for sensitive saves (delegation lists, segregation, ...)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.auth import limits
from billing_api.auth.passwords import verify_password
from billing_api.auth.principal import Principal
from billing_api.config import Settings
from billing_api.errors import Forbidden, TooManyRequests
from billing_api.models.audit import build_event

CONFIRMATION_FAILED = "auth.password_confirmation_failed"


async def confirm_password(
    session: AsyncSession, settings: Settings, principal: Principal, password: str, *, purpose: str
) -> None:
    """Raise unless `password` is the caller's. Failures are audited and count against the account's limit,
    shared with login (auth/limits.py). A failure commits the request's transaction (its count must hold
    under the counter's row lock), so call this before the request writes anything."""
    key = limits.account_key(principal.id)
    locked_until = await limits.lock_account(session, settings, key)
    if locked_until:
        raise TooManyRequests(
            "Too many wrong passwords; try again later.",
            code="password_confirmation_locked",
            headers=limits.retry_after(locked_until),
            audit_events=[build_event(principal, "auth.password_confirmation_locked", target_type="user",
                                      target_id=principal.id, details={"purpose": purpose})],
        )
    if not await verify_password(settings, principal.user.password_hash, password):
        await limits.account_failed(session, settings, key)
        raise Forbidden(
            "The password is not correct; nothing was saved.",
            code="password_confirmation_failed",
            commit=True,
            audit_events=[
                build_event(principal, CONFIRMATION_FAILED, target_type="user", target_id=principal.id,
                            details={"purpose": purpose})
            ],
        )
    await limits.account_succeeded(session, key)
