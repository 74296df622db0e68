"""Logging in: the password check behind POST /v1/auth/token, under the abuse limits (auth/limits.py)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.auth import limits, repository
from billing_api.auth.passwords import verify_password
from billing_api.auth.tokens import Client, issue_token
from billing_api.config import Settings
from billing_api.errors import Forbidden, TooManyRequests, Unauthenticated
from billing_api.models import UserKind, UserStatus
from billing_api.models.audit import build_event


async def log_in(session: AsyncSession, settings: Settings, login: str, password: str, client: Client,
                 address: str | None) -> tuple[str, int]:
    """A token and its lifetime in seconds. Every refusal answers the same whether or not the account exists."""
    user = await repository.find_user_by_login(session, login)
    key = limits.account_key(user.id if user else None, login)
    about = {"company_id": user.company_id if user else None, "target_type": "user" if user else None,
             "target_id": user.id if user else None, "address": address}
    account_until = await limits.lock_account(session, settings, key)
    address_until = await limits.address_locked(session, address)
    if account_until or address_until:
        raise TooManyRequests(
            "Too many failed sign-ins; try again later.", code="login_locked",
            headers=limits.retry_after(max(t for t in (account_until, address_until) if t)),
            audit_events=[build_event(None, "auth.login_locked", **about, details={
                "client": client.value, "account_locked": account_until is not None,
                "address_locked": address_until is not None})],
        )
    matched = await verify_password(settings, user.password_hash if user else None, password)
    if user is None or not matched or user.status != UserStatus.active:
        account_until = await limits.account_failed(session, settings, key)
        address_until = await limits.address_failed(session, settings, address)
        raise Unauthenticated(
            "Wrong username or password.", code="invalid_credentials",
            # Committed, not rolled back: the counted failure must hold while the counter's row is locked.
            commit=True,
            audit_events=[build_event(None, "auth.login_failed", **about, details={
                "client": client.value, "account_locked": account_until is not None,
                "address_locked": address_until is not None})],
        )
    await limits.account_succeeded(session, key)
    if client == Client.mobile and user.kind == UserKind.invited:
        # Checked only once the password is right, so it tells nothing to someone guessing.
        event = build_event(None, "auth.mobile_refused", **about, details={"client": client.value})
        event.actor_id = user.id
        raise Forbidden("Invited users cannot use the mobile app; sign in on the web.",
                        code="mobile_not_available_for_invited_users", audit_events=[event])
    return issue_token(settings, user.id, user.token_version, client)
