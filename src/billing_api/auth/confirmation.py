"""The password-confirmation step for sensitive saves (delegation lists, segregation, ...)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.audit import repository as audit_repository
from billing_api.audit.service import build_event
from billing_api.auth.passwords import verify_password
from billing_api.auth.principal import Principal
from billing_api.config import Settings
from billing_api.errors import Forbidden, TooManyRequests

CONFIRMATION_FAILED = "auth.password_confirmation_failed"


async def confirm_password(
    session: AsyncSession, settings: Settings, principal: Principal, password: str, *, purpose: str
) -> None:
    """Raise unless `password` is the caller's. Failures are audited and rate limited per user."""
    window = timedelta(minutes=settings.password_confirmation_window_minutes)
    recent_failures = await audit_repository.count_recent(
        session, principal.id, CONFIRMATION_FAILED, datetime.now(UTC) - window
    )
    if recent_failures >= settings.password_confirmation_max_failures:
        raise TooManyRequests(
            "Too many wrong passwords; try again later.",
            code="password_confirmation_locked",
            headers={"Retry-After": str(int(window.total_seconds()))},
        )
    if not await verify_password(settings, principal.user.password_hash, password):
        raise Forbidden(
            "The password is not correct; nothing was saved.",
            code="password_confirmation_failed",
            # Recorded even though the request's work is rolled back.
            audit_events=[
                build_event(principal, CONFIRMATION_FAILED, target_type="user", target_id=principal.id,
                            details={"purpose": purpose})
            ],
        )
