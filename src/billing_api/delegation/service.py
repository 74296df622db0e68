"""Delegation lists (rule 5, managed under rule 7), access transparency, and billing segregation."""

from __future__ import annotations

import dataclasses
import uuid
from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.audit.service import record
from billing_api.auth.confirmation import confirm_password
from billing_api.auth.principal import Principal
from billing_api.authz.actor import Actor
from billing_api.authz.decisions import Decision, authorize
from billing_api.authz.permissions import ROLE_PRESETS, Permission, RolePreset
from billing_api.authz.policies import may_manage_list, may_manage_segregation, may_view_company
from billing_api.authz.scope import BillScope
from billing_api.bills.repository import BillRepository
from billing_api.companies import repository as company_repository
from billing_api.config import Settings
from billing_api.delegation import repository
from billing_api.delegation.schemas import (
    AccessLoss,
    AccessReason,
    DelegationEntryInput,
    DelegationEntryRead,
    DelegationListRead,
    DelegationListSave,
    EmptyListProvider,
    ProviderAccessEntry,
    SegregationEnable,
    SegregationRead,
)
from billing_api.errors import Conflict, Forbidden, NotFound, Unprocessable
from billing_api.events.schemas import DelegationListSaved, SegregationEnabled
from billing_api.events.service import emit
from billing_api.identity import repository as identity_repository
from billing_api.models import Company, DelegationEntry, User, UserStatus

# Custom sets choose among these: inviting is never delegated (rule 7).
DELEGABLE = frozenset(ROLE_PRESETS[RolePreset.ADMINISTRATOR])


async def provider_known(session: AsyncSession, actor: Actor, provider: User | None) -> bool:
    """Is this a provider the actor knows of: themself, one in a company they reach, or one whose list
    names them (how an invited user, who reaches no company, knows the providers they serve)."""
    return provider is not None and provider.is_provider and (
        actor.id == provider.id
        or may_view_company(actor, provider.company_id)
        or await repository.names_user(session, provider.id, actor.id)
    )


async def provider_for_manager(session: AsyncSession, actor: Actor, provider_id: uuid.UUID) -> User:
    """The provider whose list the actor manages. Unseen: 404; seen but not theirs to manage: 403."""
    provider = await identity_repository.get_user(session, provider_id)
    if not await provider_known(session, actor, provider):
        raise NotFound("No such provider.", code="provider_not_found")
    if not may_manage_list(actor, provider):
        raise Forbidden("Only the provider, or someone holding both users:edit_others and "
                        "billing:delegation_settings, manages this list.", code="delegation_manage_forbidden")
    return provider


async def read_list(session: AsyncSession, provider: User) -> DelegationListRead:
    header = await repository.get_list(session, provider.id)
    entries = []
    for entry, user, group, member_count, live in await repository.entries_with_targets(session, provider.id):
        entries.append(DelegationEntryRead(
            id=entry.id, type="user" if user else "group", user_id=entry.user_id, group_id=entry.group_id,
            name=user.display_name if user else group.name,
            active=(user.status == UserStatus.active) if user else None,
            member_count=member_count if group else None,
            role=entry.role, permissions=sorted(entry.permissions), expires_at=entry.expires_at,
            expired=not live, source=entry.source, invitation_id=entry.invitation_id,
        ))
    return DelegationListRead(
        provider_id=provider.id, version=header.version if header else 0,
        updated_at=header.updated_at if header else None, updated_by=header.updated_by if header else None,
        entries=entries,
    )


def _invalid(index: int, reason: str, detail: str) -> Unprocessable:
    return Unprocessable(f"Entry {index}: {detail}", code="delegation_entry_invalid",
                         extra={"entry": index, "reason": reason})


async def _build_entries(
    session: AsyncSession, provider: User, inputs: list[DelegationEntryInput]
) -> list[DelegationEntry]:
    users = await repository.users_by_id(session, [e.user_id for e in inputs if e.user_id])
    groups = await repository.groups_by_id(session, [e.group_id for e in inputs if e.group_id])
    # Users already named on the list keep where their entry came from (an accepted invitation, say).
    listed = {entry.user_id: entry for entry, *_ in await repository.entries_with_targets(session, provider.id)
              if entry.user_id is not None}
    now = datetime.now(UTC)
    seen: set[uuid.UUID] = set()
    entries = []
    for index, item in enumerate(inputs):
        if (item.user_id is None) == (item.group_id is None):
            raise _invalid(index, "target", "name exactly one of `user_id` and `group_id`.")
        target = item.user_id or item.group_id
        if target in seen:
            raise _invalid(index, "duplicate", "this user or group is already on the list.")
        seen.add(target)
        if item.user_id is not None:
            user = users.get(item.user_id)
            if user is None:
                raise _invalid(index, "unknown_user", "no such user.")
            if user.id == provider.id:
                raise _invalid(index, "self", "the provider always sees their own bills.")
            if user.company_id != provider.company_id and user.id not in listed:
                # People from outside join through invitations; once on the list, a save may keep or drop them.
                raise _invalid(index, "outside_company",
                               "the user is not of the provider's company; invite them instead.")
        else:
            group = groups.get(item.group_id)
            if group is None:
                raise _invalid(index, "unknown_group", "no such group.")
            if group.company_id != provider.company_id:
                raise _invalid(index, "outside_company", "the group is not of the provider's company.")
        role = item.role or RolePreset.ADMINISTRATOR
        if role == RolePreset.CUSTOM:
            if not item.permissions:
                raise _invalid(index, "empty_permissions", "a custom entry needs at least one permission.")
            undelegable = sorted(p.value for p in item.permissions if p not in DELEGABLE)
            if undelegable:
                raise _invalid(index, "permission_not_delegable",
                               f"these cannot be delegated: {', '.join(undelegable)}.")
            permissions = sorted({p.value for p in item.permissions})
        else:
            if item.permissions is not None:
                raise _invalid(index, "permissions_with_preset", "permissions are chosen only with role `custom`.")
            permissions = sorted(p.value for p in ROLE_PRESETS[role])
        if item.expires_at is not None and item.expires_at <= now:
            raise _invalid(index, "expired", "`expires_at` is in the past.")
        previous = listed.get(item.user_id) if item.user_id is not None else None
        entries.append(DelegationEntry(
            id=uuid.uuid4(), provider_id=provider.id, user_id=item.user_id, group_id=item.group_id,
            role=role.value, permissions=permissions, expires_at=item.expires_at,
            source=previous.source if previous else "list", invitation_id=previous.invitation_id if previous else None,
        ))
    return entries


def _summary(entry: DelegationEntry) -> dict:
    return {"user_id": str(entry.user_id) if entry.user_id else None,
            "group_id": str(entry.group_id) if entry.group_id else None,
            "role": entry.role, "permissions": entry.permissions, "source": entry.source,
            "expires_at": entry.expires_at.isoformat() if entry.expires_at else None}


async def save_list(
    session: AsyncSession, settings: Settings, principal: Principal, actor: Actor, provider_id: uuid.UUID,
    data: DelegationListSave,
) -> DelegationListRead:
    """Replace the whole list: validated, confirmed by password, and only over the version read."""
    provider = await provider_for_manager(session, actor, provider_id)
    entries = await _build_entries(session, provider, data.entries)
    await confirm_password(session, settings, principal, data.password, purpose="delegation.save")
    before = [_summary(entry) for entry, *_ in await repository.entries_with_targets(session, provider.id)]
    version = await repository.move_version(session, provider.id, principal.id, expected=data.version)
    if version is None:
        current = await repository.get_list(session, provider.id)
        raise Conflict("The list changed since you read it; reload and save again. Nothing was saved.",
                       code="delegation_list_stale", extra={"current_version": current.version if current else 0})
    await repository.replace_entries(session, provider.id, entries)
    record(session, principal, "delegation.list_saved", company_id=provider.company_id, target_type="provider",
           target_id=provider.id, details={"version": version, "before": before,
                                           "after": [_summary(e) for e in entries]})
    await emit(session, provider.company_id, DelegationListSaved(provider_id=provider.id, version=version,
                                                                 entries=len(entries)))
    return await read_list(session, provider)


# One user's entry, changed outside a list save (an accepted invitation, the team's role changes and revocations).
# None of these read a version, so none is expected; each moves the version on all the same, and takes the list's
# row lock first, then the entry's, as a save does: a save and one of these queue, they never deadlock.


async def add_entry(session: AsyncSession, entry: DelegationEntry, *, changed_by: uuid.UUID,
                    new_user: bool = False) -> bool:
    """Append a user's entry to the provider's list. False, and nothing added, if the list names the user already
    (`new_user`: an account made in this request, which no list can name, so nothing is asked)."""
    await repository.move_version(session, entry.provider_id, changed_by, expected=None)
    if not new_user and await repository.entry_for(session, entry.provider_id, entry.user_id) is not None:
        return False
    repository.add_entry(session, entry)
    return True


async def entry_for_change(session: AsyncSession, provider_id: uuid.UUID, user_id: uuid.UUID, *,
                           changed_by: uuid.UUID) -> DelegationEntry | None:
    """The user's entry, locked, for `set_entry_role` or `remove_entry`; None if the list does not name them."""
    await repository.move_version(session, provider_id, changed_by, expected=None)
    return await repository.entry_for(session, provider_id, user_id, for_update=True)


async def set_entry_role(session: AsyncSession, entry: DelegationEntry, role: str, permissions: list[str]) -> None:
    entry.role, entry.permissions = role, permissions
    await session.flush()


async def remove_entry(session: AsyncSession, entry: DelegationEntry) -> None:
    await repository.remove_entry(session, entry)


# Transparency


def reason_read(reason) -> AccessReason:
    return AccessReason(**dataclasses.asdict(reason))


async def explain(session: AsyncSession, actor: Actor, user_id: uuid.UUID, provider_id: uuid.UUID,
                  permission: Permission) -> Decision:
    """The provider, the list managers, and a user asking about themself may see the reasons.

    A manager of the list may ask about anyone in the companies they reach, and also about anyone outside them
    whom some rule could concern for this provider (support, a parent company's admin, a delegate named on the
    list): everyone `GET /providers/{id}/access` may show them. Other ids stay unknown (404)."""
    subject = await identity_repository.get_user(session, user_id)
    if subject is None:
        raise NotFound("No such user.", code="user_not_found")
    if subject.id == actor.id:
        # About yourself: for providers of companies you reach, or whose list names you; any other id
        # stays unknown, so asking tells an outsider nothing about who is a provider where.
        provider = await identity_repository.get_user(session, provider_id)
        if provider is None or not provider.is_provider or not (
            may_view_company(actor, provider.company_id) or await repository.may_concern(session, subject, provider)
        ):
            raise NotFound("No such provider.", code="provider_not_found")
    elif may_view_company(actor, subject.company_id):
        await provider_for_manager(session, actor, provider_id)
    else:
        provider = await identity_repository.get_user(session, provider_id)
        if (provider is None or not provider.is_provider or not may_manage_list(actor, provider)
                or not await repository.may_concern(session, subject, provider)):
            raise NotFound("No such user.", code="user_not_found")
    return await authorize(session, user_id, permission, provider_id)


_RULE_DETAIL = {
    "own_bills": "The provider themself.",
    "delegation_user": "Named on the provider's delegation list.",
    "delegation_group": "A member of a group on the provider's delegation list.",
    "company_wide": "Billing segregation is off: everyone who reaches the company sees its bills.",
    "support": "Vendor support views every company's bills (audited).",
}


async def provider_access(session: AsyncSession, actor: Actor, provider_id: uuid.UUID, limit: int,
                          after: tuple[str, uuid.UUID] | None) -> tuple[list[ProviderAccessEntry], bool]:
    provider = await provider_for_manager(session, actor, provider_id)
    company = await company_repository.get_company(session, provider.company_id)
    users, reasons = await repository.provider_viewers_page(
        session, provider, company.billing_segregation_enabled, limit, after
    )
    items = [
        ProviderAccessEntry(
            user_id=user.id, display_name=user.display_name, username=user.username,
            reasons=[AccessReason(rule=rule, grants=True, detail=_RULE_DETAIL[rule], entry_id=entry_id,
                                  group_id=group_id, group_name=group_name,
                                  company_id=company.id if rule == "company_wide" else None)
                     for rule, entry_id, group_id, group_name in sorted(reasons[user.id], key=lambda r: r[0])],
        )
        for user in users[:limit]
    ]
    return items, len(users) > limit


# Segregation


async def _managed_company(session: AsyncSession, actor: Actor, company_id: uuid.UUID, *,
                           lock: bool = False) -> Company:
    company = await (repository.lock_company(session, company_id) if lock
                     else company_repository.get_company(session, company_id))
    if company is None or not may_view_company(actor, company.id):
        raise NotFound("No such company.", code="company_not_found")
    if not may_manage_segregation(actor, company.id):
        raise Forbidden("Only company administrators and delegation managers manage segregation.",
                        code="segregation_manage_forbidden")
    return company


async def _readiness(session: AsyncSession, view: BillScope, company: Company
                     ) -> tuple[list[EmptyListProvider], list[AccessLoss]]:
    counts = await BillRepository(session, view).counts_by_provider(company.id)
    providers = [p for p in await repository.providers_of_company(session, company.id) if counts.get(p.id)]
    with_entries = await repository.providers_with_entries(session, [p.id for p in providers])
    empty = [EmptyListProvider(provider_id=p.id, display_name=p.display_name, bill_count=counts[p.id])
             for p in providers if p.id not in with_entries]
    losses: dict[uuid.UUID, AccessLoss] = {}
    lost: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for user_id, name, provider_id in await repository.segregation_losses(
        session, company.id, [p.id for p in providers]
    ):
        losses.setdefault(user_id, AccessLoss(user_id=user_id, display_name=name, provider_ids=[]))
        lost[user_id].append(provider_id)
    for user_id, loss in losses.items():
        loss.provider_ids = lost[user_id]
    return empty, list(losses.values())


async def segregation_state(session: AsyncSession, actor: Actor, view: BillScope,
                            company_id: uuid.UUID) -> SegregationRead:
    company = await _managed_company(session, actor, company_id)
    empty, preview = ([], []) if company.billing_segregation_enabled else await _readiness(session, view, company)
    return SegregationRead(
        company_id=company.id, enabled=company.billing_segregation_enabled,
        enabled_at=company.billing_segregation_enabled_at, enabled_by=company.billing_segregation_enabled_by,
        ready=not empty, providers_with_empty_list=empty, preview=preview,
    )


async def enable_segregation(session: AsyncSession, settings: Settings, principal: Principal, actor: Actor,
                             view: BillScope, company_id: uuid.UUID, data: SegregationEnable) -> SegregationRead:
    """Permanent: there is no way to turn it off."""
    company = await _managed_company(session, actor, company_id, lock=True)
    if company.billing_segregation_enabled:
        raise Conflict("Billing segregation is already on, and it is permanent.",
                       code="segregation_already_enabled")
    await confirm_password(session, settings, principal, data.password, purpose="segregation.enable")
    empty, preview = await _readiness(session, view, company)
    if empty and not data.acknowledge_empty_lists:
        raise Conflict("Some providers with bills have an empty delegation list: only they would see their bills. "
                       "Set their lists, or acknowledge with `acknowledge_empty_lists`.",
                       code="segregation_not_ready",
                       extra={"providers_with_empty_list": [str(p.provider_id) for p in empty]})
    company.billing_segregation_enabled_at = datetime.now(UTC)
    company.billing_segregation_enabled_by = principal.id
    await session.flush()
    record(session, principal, "segregation.enabled", company_id=company.id, target_type="company",
           target_id=company.id, details={
               "acknowledged_empty_lists": [str(p.provider_id) for p in empty],
               "access_lost": {str(loss.user_id): [str(p) for p in loss.provider_ids] for loss in preview},
           })
    await emit(session, company.id, SegregationEnabled(enabled_by=principal.id))
    return SegregationRead(
        company_id=company.id, enabled=True, enabled_at=company.billing_segregation_enabled_at,
        enabled_by=principal.id, ready=not empty, providers_with_empty_list=empty, preview=[],
    )
