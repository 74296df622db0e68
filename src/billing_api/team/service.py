"""The provider's team: role presets, invitations (with their email), accepting, changing and revoking.

An accepted invitation is an entry of the provider's delegation list naming the invitee (source
`invitation`), so every bill access keeps going through the authorization rules. Inviting, changing and
revoking belong to the provider and to list managers (rule 7), never to a delegate, whatever their preset.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.audit.service import record
from billing_api.auth.passwords import check_new_password, hash_password
from billing_api.auth.principal import Principal
from billing_api.authz.actor import Actor
from billing_api.authz.permissions import ROLE_DESCRIPTIONS, ROLE_PRESETS, Permission, RolePreset
from billing_api.authz.policies import may_manage_list
from billing_api.config import Settings
from billing_api.delegation import repository as delegation_repository
from billing_api.delegation import service as delegation_service
from billing_api.delegation.service import DELEGABLE, provider_known
from billing_api.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthenticated,
    Unprocessable,
)
from billing_api.events.schemas import InvitationAcceptedEvent
from billing_api.events.schemas import TeamMemberRevoked, TeamMemberUpdated
from billing_api.events.service import emit
from billing_api.identity import repository as identity_repository
from billing_api.mail import repository as mail_repository
from billing_api.mail import secrets as mail_secrets
from billing_api.mail.templates import INVITATION
from billing_api.models import (
    AccountType,
    DelegationEntry,
    Invitation,
    InvitationStatus,
    User,
    UserKind,
    UserStatus,
)
from billing_api.models.audit import build_event
from billing_api.models.team import DeliveryStatus
from billing_api.team import repository
from billing_api.team.schemas import (
    DeliveryRead,
    InvitationAccept,
    InvitationAccepted,
    InvitationCreate,
    InvitationRead,
    RoleRead,
    TeamMemberRead,
    TeamMemberUpdate,
    TeamRead,
)

ROLE_NAMES = {
    RolePreset.FINANCIAL_VIEWER: "Financial viewer",
    RolePreset.DATA_ENTRY: "Data entry",
    RolePreset.ADMINISTRATOR: "Administrator",
    RolePreset.CUSTOM: "Custom",
}

ABILITIES = {
    Permission.BILLS_VIEW: "view bills",
    Permission.BILLS_SAVE: "create and edit bills",
    Permission.BILLS_SUBMIT: "submit bills",
    Permission.BILLS_DELETE: "delete draft bills",
    Permission.REPORTS_GENERATE: "generate billing reports (they show patient names and dates of birth)",
    Permission.INVOICES_VIEW: "view invoices",
    Permission.INVOICES_PAY: "pay invoices",
}

_ORDER = list(Permission)


class Gone(DomainError):
    status, code, title = 410, "gone", "Gone"


def roles() -> list[RoleRead]:
    return [
        RoleRead(role=role, name=ROLE_NAMES[role], description=ROLE_DESCRIPTIONS[role],
                 permissions=sorted(ROLE_PRESETS.get(role, DELEGABLE), key=_ORDER.index),
                 customizable=role == RolePreset.CUSTOM)
        for role in RolePreset
    ]


def resolve_permissions(role: RolePreset, permissions: list[Permission] | None) -> list[str]:
    """A preset's permissions, or a custom set: at least one, each delegable (never team:invite)."""
    if role != RolePreset.CUSTOM:
        if permissions is not None:
            raise Unprocessable("Permissions are chosen only with role `custom`.", code="permissions_with_preset",
                                extra={"field": "permissions"})
        return sorted(p.value for p in ROLE_PRESETS[role])
    if not permissions:
        raise Unprocessable("A custom role needs at least one permission.", code="custom_permissions_required",
                            extra={"field": "permissions"})
    undelegable = sorted({p.value for p in permissions if p not in DELEGABLE})
    if undelegable:
        raise Unprocessable(f"These cannot be given to a team member: {', '.join(undelegable)}.",
                            code="permission_not_delegable", extra={"field": "permissions",
                                                                    "permissions": undelegable})
    return sorted({p.value for p in permissions})


# Who manages a team (rule 7)


def _check_manager(actor: Actor, provider: User) -> None:
    if not may_manage_list(actor, provider):
        raise Forbidden("Only the provider, or someone holding both users:edit_others and "
                        "billing:delegation_settings, manages this provider's team.", code="team_manage_forbidden")


async def managed_provider(session: AsyncSession, actor: Actor, provider_id: uuid.UUID) -> User:
    """Unseen provider: 404. Seen, but not theirs to manage: 403."""
    provider = await identity_repository.get_user(session, provider_id)
    if not await provider_known(session, actor, provider):
        raise NotFound("No such provider.", code="provider_not_found")
    _check_manager(actor, provider)
    return provider


async def _managed_invitation(session: AsyncSession, actor: Actor, invitation_id: uuid.UUID) -> tuple[Invitation, User]:
    invitation = await repository.get_invitation(session, invitation_id, for_update=True)
    provider = await identity_repository.get_user(session, invitation.provider_id) if invitation else None
    if invitation is None or not await provider_known(session, actor, provider):
        raise NotFound("No such invitation.", code="invitation_not_found")
    _check_manager(actor, provider)
    return invitation, provider


# Reading


def _state(invitation: Invitation, expired: bool) -> str:
    if invitation.status != InvitationStatus.pending:
        return invitation.status.value
    return "expired" if expired else "pending"


def invitation_read(invitation: Invitation, *, expired: bool) -> InvitationRead:
    """Built from the invitation alone: nothing in it comes from an account the email may have."""
    return InvitationRead(
        id=invitation.id, provider_id=invitation.provider_id, email=invitation.email, username=invitation.username,
        display_name=invitation.display_name, role=RolePreset(invitation.role), permissions=invitation.permissions,
        state=_state(invitation, expired), expires_at=invitation.expires_at,
        created_at=invitation.created_at, invited_by=invitation.invited_by,
        delivery=DeliveryRead(status=invitation.delivery_status, attempts=invitation.delivery_attempts,
                              last_attempt_at=invitation.delivery_last_attempt_at, error=invitation.delivery_error,
                              sent_at=invitation.delivery_sent_at),
    )


def _member_read(entry: DelegationEntry, user: User, live: bool) -> TeamMemberRead:
    return TeamMemberRead(
        user_id=user.id, username=user.username, display_name=user.display_name, email=user.email, kind=user.kind,
        active=user.status == UserStatus.active, role=entry.role, permissions=sorted(entry.permissions),
        source=entry.source, invitation_id=entry.invitation_id, expires_at=entry.expires_at, expired=not live,
        added_at=entry.created_at,
    )


async def read_team(session: AsyncSession, provider: User) -> TeamRead:
    invitations = await repository.open_invitations(session, provider.id)
    return TeamRead(
        provider_id=provider.id,
        list_version=await delegation_repository.list_version(session, provider.id),
        members=[_member_read(*row) for row in await delegation_repository.user_entries(session, provider.id)],
        invitations=[invitation_read(i, expired=expired) for i, expired in invitations],
    )


# Inviting


def _email_context(settings: Settings, invitation: Invitation, provider: User, inviter: User) -> dict:
    """The same mail whether or not the email has an account: its holder knows, and answers on acceptance."""
    chosen = set(invitation.permissions)
    return {
        "invitation_id": str(invitation.id),
        "provider_name": provider.display_name,
        "inviter_name": inviter.display_name,
        "role_label": ROLE_NAMES[RolePreset(invitation.role)],
        "abilities": [ABILITIES[p] for p in _ORDER if p.value in chosen and p in ABILITIES],
        "username": invitation.username,  # the inviter's suggestion for a newcomer, if any
        "expires_at": invitation.expires_at.isoformat(),
    }


def _issue_token(settings: Settings, invitation: Invitation) -> str:
    """A new token for the invitation (the old one dies): its hash is kept, its nonce goes to the outbox."""
    nonce = mail_secrets.new_nonce()
    invitation.token_hash = mail_secrets.fingerprint(mail_secrets.derive(settings, nonce))
    invitation.expires_at = datetime.now(UTC) + timedelta(days=settings.invitation_ttl_days)
    invitation.delivery_status = DeliveryStatus.queued
    invitation.delivery_attempts = 0
    invitation.delivery_last_attempt_at = invitation.delivery_error = invitation.delivery_sent_at = None
    return nonce


def _queue_email(session: AsyncSession, settings: Settings, invitation: Invitation, provider: User, inviter: User,
                 nonce: str) -> None:
    mail_repository.add(session, template=INVITATION, to_address=invitation.email, invitation_id=invitation.id,
                        context=_email_context(settings, invitation, provider, inviter),
                        secret_nonce=nonce)


def _conflict(detail: str, code: str, field: str) -> Conflict:
    return Conflict(detail, code=code, extra={"field": field})


def _limited(detail: str, code: str, oldest: datetime, window: timedelta, now: datetime) -> TooManyRequests:
    retry_after = max(1, int((oldest + window - now).total_seconds()) + 1)
    return TooManyRequests(detail, code=code, headers={"Retry-After": str(retry_after)},
                           extra={"retry_after_seconds": retry_after})


async def _check_send_limit(session: AsyncSession, settings: Settings, provider: User) -> None:
    """At most `invitation_send_max` new invitations per provider per window: invitations are emails sent
    in the provider's name, so a stolen login cannot turn the service into a mailer."""
    await repository.lock_provider_invitations(session, provider.id)
    now = datetime.now(UTC)
    window = timedelta(minutes=settings.invitation_send_window_minutes)
    recent = await repository.recent_invitations(session, provider.id, now - window)
    if len(recent) >= settings.invitation_send_max:
        raise _limited(f"{len(recent)} invitations were sent for this provider in the last "
                       f"{settings.invitation_send_window_minutes} minutes; try again later.",
                       "invitation_send_limited", recent[0], window, now)


async def invite(session: AsyncSession, settings: Settings, principal: Principal, actor: Actor,
                 provider_id: uuid.UUID, data: InvitationCreate) -> InvitationRead:
    """Never asks whether the email has an account anywhere: the answer (status, body, headers) is the same for
    an email with an account in any company and for an unknown one. The send limit comes before anything is
    looked up about the email; past it, the only refusals are about what the team listing shows its managers
    anyway (the provider themself, a member of the team, a pending invitation of this provider)."""
    provider = await managed_provider(session, actor, provider_id)
    permissions = resolve_permissions(data.role, data.permissions)
    await _check_send_limit(session, settings, provider)
    email = str(data.email)
    if email.lower() == provider.email.lower():
        raise Unprocessable("A provider cannot invite themself.", code="cannot_invite_self", extra={"field": "email"})
    if await delegation_repository.names_email(session, provider.id, email):
        raise _conflict("That person is already on this provider's team.", "already_on_team", "email")
    if await repository.pending_invitation(session, provider.id, email) is not None:
        raise _conflict("An invitation to that email is already pending: resend it instead.", "invitation_pending",
                        "email")
    invitation = Invitation(
        id=uuid.uuid4(), provider_id=provider.id, company_id=provider.company_id, invited_by=principal.id,
        email=email, username=data.username, display_name=data.display_name, role=data.role.value,
        permissions=permissions, status=InvitationStatus.pending, created_at=datetime.now(UTC),
    )
    nonce = _issue_token(settings, invitation)
    session.add(invitation)
    await session.flush()
    _queue_email(session, settings, invitation, provider, principal.user, nonce)
    record(session, principal, "invitation.created", company_id=provider.company_id, target_type="provider",
           target_id=provider.id, details={"invitation_id": str(invitation.id), "email": email,
                                           "role": invitation.role, "permissions": permissions})
    await session.flush()
    return invitation_read(invitation, expired=False)


async def resend(session: AsyncSession, settings: Settings, principal: Principal, actor: Actor,
                 invitation_id: uuid.UUID) -> InvitationRead:
    """A new token (the old link dies), a new expiry, a new email; at most `invitation_resend_max` per window."""
    invitation, provider = await _managed_invitation(session, actor, invitation_id)
    if invitation.status != InvitationStatus.pending:
        raise Conflict(f"The invitation is {invitation.status.value}.", code="invitation_not_pending",
                       extra={"state": invitation.status.value})
    now = datetime.now(UTC)
    window = timedelta(minutes=settings.invitation_resend_window_minutes)
    recent = await repository.recent_resends(session, provider.id, invitation.id, now - window)
    if len(recent) >= settings.invitation_resend_max:
        raise _limited(f"This invitation was resent {len(recent)} times in the last "
                       f"{settings.invitation_resend_window_minutes} minutes; try again later.",
                       "invitation_resend_limited", recent[0], window, now)
    await mail_repository.cancel_queued(session, invitation.id, "superseded by a resend")
    nonce = _issue_token(settings, invitation)
    await session.flush()
    _queue_email(session, settings, invitation, provider, principal.user, nonce)
    record(session, principal, "invitation.resent", company_id=provider.company_id, target_type="provider",
           target_id=provider.id, details={"invitation_id": str(invitation.id), "email": invitation.email,
                                           "expires_at": invitation.expires_at.isoformat()})
    await session.flush()
    return invitation_read(invitation, expired=False)


async def cancel(session: AsyncSession, principal: Principal, actor: Actor, invitation_id: uuid.UUID) -> None:
    invitation, provider = await _managed_invitation(session, actor, invitation_id)
    if invitation.status != InvitationStatus.pending:
        raise Conflict(f"The invitation is {invitation.status.value}.", code="invitation_not_pending",
                       extra={"state": invitation.status.value})
    invitation.status = InvitationStatus.cancelled
    invitation.cancelled_at = datetime.now(UTC)
    invitation.cancelled_by = principal.id
    await mail_repository.cancel_queued(session, invitation.id, "the invitation was cancelled")
    await session.flush()
    record(session, principal, "invitation.cancelled", company_id=provider.company_id, target_type="provider",
           target_id=provider.id, details={"invitation_id": str(invitation.id), "email": invitation.email})


# Accepting


async def accept(session: AsyncSession, settings: Settings, principal: Principal | None, data: InvitationAccept,
                 address: str | None) -> InvitationAccepted:
    """Checks everything before writing anything: a refused accept leaves no trace but its answer."""
    invitation = await repository.invitation_by_token_hash(session, mail_secrets.fingerprint(data.token))
    if invitation is None:
        raise NotFound("This invitation link is not valid: mistyped, or replaced by a newer email.",
                       code="invitation_not_found")
    if invitation.status == InvitationStatus.cancelled:
        raise Gone("This invitation was cancelled.", code="invitation_cancelled")
    if invitation.status == InvitationStatus.accepted:
        raise Conflict("This invitation was already accepted.", code="invitation_already_accepted")
    if invitation.expires_at <= datetime.now(UTC):
        raise Gone("This invitation has expired: ask for a new email.", code="invitation_expired")
    # Whether the email has an account is decided here, and told only to the token's holder (who holds the email).
    account = await repository.user_by_email(session, invitation.email)
    if account is not None:
        if account.status != UserStatus.active:
            raise _conflict("This email's account is deactivated; ask its company to reactivate it.",
                            "account_deactivated", "token")
        if principal is None:
            raise Unauthenticated("This email already has an account: sign in with it, then accept again.",
                                  code="invitation_login_required")
        if principal.id != account.id:
            raise Forbidden("This invitation is for another account.", code="invitation_wrong_account")
        if account.account_type == AccountType.support:
            raise _conflict("This account cannot join a provider's team.", "account_not_invitable", "token")
        if account.id == invitation.provider_id:
            raise Unprocessable("A provider cannot join their own team.", code="cannot_invite_self",
                                extra={"field": "token"})
        given = next((f for f in ("username", "password", "display_name") if getattr(data, f) is not None), None)
        if given is not None:
            raise Unprocessable("An existing account accepts with the token alone.",
                                code="new_account_fields_not_expected", extra={"field": given})
        created = False
    else:
        if principal is not None:
            raise Forbidden("This invitation creates a new account: accept it signed out.",
                            code="invitation_wrong_account")
        username = data.username or invitation.username
        if username is None:
            raise Unprocessable("Choose a `username` for the new account.", code="username_required",
                                extra={"field": "username"})
        if data.password is None:
            raise Unprocessable("Choose a `password` for the new account.", code="password_required",
                                extra={"field": "password"})
        check_new_password(data.password, username, invitation.email)
        if await identity_repository.username_taken(session, username):
            raise _conflict("That username belongs to someone else; choose another (`username`).",
                            "username_taken", "username")
        if await identity_repository.email_taken(session, invitation.email):  # someone logs in with it
            raise _conflict("This email is another account's login.", "email_taken", "email")
        account = User(
            id=uuid.uuid4(), company_id=invitation.company_id, email=invitation.email, username=username,
            display_name=data.display_name or invitation.display_name or username,
            password_hash=await hash_password(settings, data.password), account_type=AccountType.standard,
            kind=UserKind.invited, status=UserStatus.active, is_provider=False, permissions=[],
        )
        created = True
    if created:
        session.add(account)
        await session.flush()
    now = datetime.now(UTC)
    entry = DelegationEntry(
        id=uuid.uuid4(), provider_id=invitation.provider_id, user_id=account.id, role=invitation.role,
        permissions=invitation.permissions, source="invitation", invitation_id=invitation.id, created_at=now,
    )
    # The list is delegation's: it moves the version on and adds the entry, unless the list names them already.
    if not await delegation_service.add_entry(session, entry, changed_by=account.id, new_user=created):
        raise _conflict("You are already on this provider's team.", "already_on_team", "token")
    invitation.status = InvitationStatus.accepted
    invitation.accepted_at = now
    invitation.accepted_user_id = account.id
    await mail_repository.cancel_queued(session, invitation.id, "the invitation was accepted")
    await session.flush()
    event = build_event(None, "invitation.accepted", company_id=invitation.company_id, target_type="provider",
                        target_id=invitation.provider_id, address=address,
                        details={"invitation_id": str(invitation.id), "user_id": str(account.id),
                                 "account_created": created, "role": invitation.role,
                                 "permissions": invitation.permissions})
    event.actor_id = account.id
    session.add(event)
    await emit(session, invitation.company_id, InvitationAcceptedEvent(
        invitation_id=invitation.id, provider_id=invitation.provider_id, user_id=account.id, account_created=created,
        role=invitation.role))
    return InvitationAccepted(invitation_id=invitation.id, provider_id=invitation.provider_id, user_id=account.id,
                              username=account.username, account_created=created, role=RolePreset(invitation.role),
                              permissions=invitation.permissions)


# Changing and revoking


async def _member(session: AsyncSession, principal: Principal, provider: User, user_id: uuid.UUID
                  ) -> tuple[DelegationEntry, User]:
    """The member's entry, locked for a change (the list's version moved on first, by delegation)."""
    entry = await delegation_service.entry_for_change(session, provider.id, user_id, changed_by=principal.id)
    user = await identity_repository.get_user(session, user_id) if entry else None
    if entry is None or user is None:
        raise NotFound("That user is not on this provider's team.", code="team_member_not_found")
    return entry, user


def _summary(entry: DelegationEntry) -> dict:
    return {"role": entry.role, "permissions": sorted(entry.permissions)}


async def update_member(session: AsyncSession, principal: Principal, actor: Actor, provider_id: uuid.UUID,
                        user_id: uuid.UUID, data: TeamMemberUpdate) -> TeamMemberRead:
    provider = await managed_provider(session, actor, provider_id)
    permissions = resolve_permissions(data.role, data.permissions)
    entry, user = await _member(session, principal, provider, user_id)
    before = _summary(entry)
    await delegation_service.set_entry_role(session, entry, data.role.value, permissions)
    record(session, principal, "team.member_updated", company_id=provider.company_id, target_type="provider",
           target_id=provider.id, details={"user_id": str(user.id), "before": before, "after": _summary(entry)})
    await emit(session, provider.company_id,
               TeamMemberUpdated(provider_id=provider.id, user_id=user.id, role=entry.role))
    live = entry.expires_at is None or entry.expires_at > datetime.now(UTC)
    return _member_read(entry, user, live)


async def revoke(session: AsyncSession, principal: Principal, actor: Actor, provider_id: uuid.UUID,
                 user_id: uuid.UUID) -> None:
    """The entry goes (access ends on the next request); the account stays for the other providers it serves."""
    provider = await managed_provider(session, actor, provider_id)
    entry, user = await _member(session, principal, provider, user_id)
    before = _summary(entry)
    await delegation_service.remove_entry(session, entry)
    record(session, principal, "team.member_revoked", company_id=provider.company_id, target_type="provider",
           target_id=provider.id, details={"user_id": str(user.id), "source": entry.source, **before})
    await emit(session, provider.company_id, TeamMemberRevoked(provider_id=provider.id, user_id=user.id))
