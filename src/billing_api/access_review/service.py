"""Access reviews: for one provider, everyone holding a grant to their bills, how and since when, and whether it is
still used; attestations that the access was reviewed; the company's overview; reminders for overdue reviews; and
the roll-up of the access log that the usage figures come from."""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.access_review import repository
from billing_api.access_review.repository import Grant, GrantKey, ListEntry, Person
from billing_api.access_review.schemas import (
    AccessReviewPage,
    AttestationCreate,
    AttestationRead,
    ProviderReviewSummary,
    RemovableEntry,
    ReviewedGrant,
    ReviewedPerson,
)
from billing_api.audit.service import record
from billing_api.auth.confirmation import confirm_password
from billing_api.auth.principal import Principal
from billing_api.authz.actor import Actor
from billing_api.authz.policies import may_manage_segregation
from billing_api.companies import repository as company_repository
from billing_api.companies.service import visible_company
from billing_api.config import Settings
from billing_api.delegation.service import provider_for_manager
from billing_api.errors import Conflict, Forbidden
from billing_api.events.schemas import AccessReviewAttested
from billing_api.events.service import emit
from billing_api.mail import repository as mail_repository
from billing_api.mail.templates import ACCESS_REVIEW_DUE
from billing_api.models import AccessReviewAttestation, Company, User

# Grants a list save can remove; and those that can fall dormant (company-wide access ends only with segregation).
REMOVABLE_RULES = frozenset({"delegation_user", "delegation_group"})
DORMANT_RULES = REMOVABLE_RULES | {"company_wide"}


@dataclass
class _Provenance:
    granted_at: datetime | None
    granted_by: uuid.UUID | None


@dataclass
class Review:
    """The whole review of one provider at `now` (the page and the CSV are views of it)."""

    provider: User
    company: Company
    now: datetime
    grants: list[Grant]
    last_used: list[datetime | None]  # by index in `grants`: the roll-up's, or a later read not rolled up yet
    provenance: dict[int, _Provenance]  # by index in `grants`
    dormant: list[bool]
    entries: list[ListEntry]
    unrolled: dict[GrantKey, tuple[datetime, int, int]]  # repository.unrolled_use
    version: int
    last_attestation: AccessReviewAttestation | None
    people_shown: dict[uuid.UUID, Person] = field(default_factory=dict)  # a page's holders, and who granted
    group_names: dict[uuid.UUID, str] = field(default_factory=dict)

    @cached_property
    def entry_by_id(self) -> dict[uuid.UUID, ListEntry]:
        return {entry.id: entry for entry in self.entries}

    def name(self, user_id: uuid.UUID | None) -> str | None:
        person = self.people_shown.get(user_id) if user_id else None
        return person.display_name if person else None

    @property
    def due_at(self) -> datetime:
        start = self.last_attestation.created_at if self.last_attestation else self.provider.created_at
        return start + timedelta(days=self.company.access_review_interval_days)

    @property
    def overdue(self) -> bool:
        return self.now >= self.due_at

    @cached_property
    def people(self) -> list[tuple[uuid.UUID, list[int]]]:
        """Holders in the review's order (by name), each with the indexes of their grants."""
        people: dict[uuid.UUID, list[int]] = {}
        for index, grant in enumerate(self.grants):
            people.setdefault(grant.user_id, []).append(index)
        return list(people.items())

    def removable_entries(self) -> list[RemovableEntry]:
        dormant_by_entry: dict[uuid.UUID, list[bool]] = defaultdict(list)
        last_use: dict[uuid.UUID, datetime | None] = {}
        for index, grant in enumerate(self.grants):
            if grant.rule in REMOVABLE_RULES and grant.entry_id is not None:
                dormant_by_entry[grant.entry_id].append(self.dormant[index])
                used = self.last_used[index]
                if used and (last_use.get(grant.entry_id) or used) <= used:
                    last_use[grant.entry_id] = used
        removable = []
        for entry in self.entries:
            dormant = all(dormant_by_entry.get(entry.id, [False]))
            reason = "expired" if not entry.live else "dormant" if dormant else None
            if reason:
                removable.append(RemovableEntry.model_construct(
                    entry_id=entry.id, type="user" if entry.user_id else "group", user_id=entry.user_id,
                    group_id=entry.group_id, name=entry.name, reason=reason, last_used_at=last_use.get(entry.id)))
        return removable


async def _provenance(session: AsyncSession, provider: User, grants: list[Grant]) -> dict[int, _Provenance]:
    """When and by whom each grant was made, replaying the audit events that changed the list and its groups.
    A list save names who was on the list before and after it; an accepted invitation adds its invitee (granted
    by the inviter); a revocation removes; a group change names the members it added. A grant whose events
    predate the audit trail falls back to its list entry's (or the account's) creation, by no one known."""
    group_ids = sorted({g.group_id for g in grants if g.group_id is not None})
    events = await repository.granting_events(session, provider.id, group_ids)
    invitations = [uuid.UUID(e.details["invitation_id"]) for e in events
                   if e.action == "invitation.accepted" and e.details.get("invitation_id")]
    inviter = await repository.inviters(session, invitations)
    on_list: dict[tuple[str, uuid.UUID], _Provenance] = {}
    in_group: dict[tuple[uuid.UUID, uuid.UUID], _Provenance] = {}
    for event in events:
        made = _Provenance(event.created_at, event.actor_id)
        details = event.details
        if event.action == "delegation.list_saved":
            before, after = (_targets(details.get(key) or []) for key in ("before", "after"))
            for target in after - before:
                on_list[target] = made
        elif event.action == "invitation.accepted" and details.get("user_id"):
            invited_by = inviter.get(uuid.UUID(details["invitation_id"])) if details.get("invitation_id") else None
            on_list[("user", uuid.UUID(details["user_id"]))] = _Provenance(event.created_at,
                                                                           invited_by or event.actor_id)
        elif event.action == "group.members_set":
            for member in details.get("added") or []:
                in_group[(event.target_id, uuid.UUID(member))] = made
    provenance = {}
    for index, grant in enumerate(grants):
        if grant.rule == "delegation_user":
            found = on_list.get(("user", grant.user_id)) or _Provenance(grant.entry_created_at, None)
        elif grant.rule == "delegation_group":
            entry = on_list.get(("group", grant.group_id)) or _Provenance(grant.entry_created_at, None)
            member = in_group.get((grant.group_id, grant.user_id))
            found = member if member and entry.granted_at and member.granted_at > entry.granted_at else entry
        else:
            found = _Provenance(grant.user_created_at, None)
        provenance[index] = found
    return provenance


def _targets(summaries: list[dict]) -> set[tuple[str, uuid.UUID]]:
    return {("user", uuid.UUID(s["user_id"])) if s.get("user_id") else ("group", uuid.UUID(s["group_id"]))
            for s in summaries if s.get("user_id") or s.get("group_id")}


async def _review(session: AsyncSession, provider: User, now: datetime) -> Review:
    company = await company_repository.get_company(session, provider.company_id)
    grants = await repository.grants_of(session, provider, company.billing_segregation_enabled)
    unrolled = await repository.unrolled_use(session, provider.id)
    last_used = []
    for grant in grants:
        logged = unrolled.get(_key(grant))
        rolled = grant.last_read_at
        last_used.append(logged[0] if logged and (rolled is None or logged[0] > rolled) else rolled)
    provenance = await _provenance(session, provider, grants)
    threshold = now - timedelta(days=company.access_review_dormant_days)
    dormant = []
    for index, grant in enumerate(grants):
        since = last_used[index] or provenance[index].granted_at or grant.user_created_at
        dormant.append(grant.rule in DORMANT_RULES and since < threshold)
    last = (await repository.last_attestations(session, [provider.id])).get(provider.id)
    return Review(provider=provider, company=company, now=now, grants=grants, last_used=last_used,
                  provenance=provenance, dormant=dormant, entries=await repository.list_entries(session, provider.id),
                  unrolled=unrolled, version=await repository.list_version(session, provider.id),
                  last_attestation=last)


async def _named(session: AsyncSession, review: Review, indexes: list[int]) -> None:
    """The people shown (the grants' holders, who made the grants, who attested) and the groups, for the grants
    shown."""
    shown = {review.grants[i].user_id for i in indexes} | {review.provenance[i].granted_by for i in indexes}
    if review.last_attestation:
        shown.add(review.last_attestation.attested_by)
    review.people_shown = await repository.people(session, sorted(shown - {None}))
    review.group_names = await repository.group_names(
        session, sorted({review.grants[i].group_id for i in indexes} - {None}))


def _attestation_read(attestation: AccessReviewAttestation, attested_by_name: str | None) -> AttestationRead:
    return AttestationRead(id=attestation.id, provider_id=attestation.provider_id, attested_at=attestation.created_at,
                           attested_by=attestation.attested_by, attested_by_name=attested_by_name,
                           list_version=attestation.list_version, people=attestation.people,
                           dormant_grants=attestation.dormant_grants)


def _grant_read(review: Review, index: int, counts: tuple[int, int]) -> ReviewedGrant:
    grant, made = review.grants[index], review.provenance[index]
    entry = review.entry_by_id.get(grant.entry_id) if grant.entry_id else None
    company_wide = grant.rule == "company_wide"
    as_admin = company_wide and review.people_shown[grant.user_id].account_type == "company_admin"
    return ReviewedGrant(
        rule="company_admin" if as_admin else grant.rule, entry_id=grant.entry_id, group_id=grant.group_id,
        group_name=review.group_names.get(grant.group_id) if grant.group_id else None,
        company_id=grant.via_id if company_wide else None, role=entry.role if entry else None,
        permissions=sorted(entry.permissions) if entry else None, expires_at=entry.expires_at if entry else None,
        granted_at=made.granted_at, granted_by=made.granted_by, granted_by_name=review.name(made.granted_by),
        last_used_at=review.last_used[index], reads_30_days=counts[0], reads_90_days=counts[1],
        dormant=review.dormant[index], removable=grant.rule in REMOVABLE_RULES,
    )


async def _people_read(session: AsyncSession, review: Review, people: list[tuple[uuid.UUID, list[int]]]
                       ) -> list[ReviewedPerson]:
    indexes = [i for _, grant_indexes in people for i in grant_indexes]
    await _named(session, review, indexes)
    counts = await repository.count_reads(session, review.provider.id, [user_id for user_id, _ in people])

    def reads(grant: Grant) -> tuple[int, int]:
        rolled, (_, *logged) = counts.get(_key(grant), (0, 0)), review.unrolled.get(_key(grant), (None, 0, 0))
        return rolled[0] + logged[0], rolled[1] + logged[1]

    items = []
    for user_id, grant_indexes in people:
        grants = [_grant_read(review, i, reads(review.grants[i])) for i in grant_indexes]
        person = review.people_shown[user_id]
        used = [g.last_used_at for g in grants if g.last_used_at]
        items.append(ReviewedPerson(
            user_id=user_id, display_name=person.display_name, username=person.username, active=person.active,
            account_type=person.account_type, dormant=all(g.dormant for g in grants),
            last_used_at=max(used) if used else None, reads_30_days=sum(g.reads_30_days for g in grants),
            reads_90_days=sum(g.reads_90_days for g in grants), grants=grants,
        ))
    return items


def _key(grant: Grant) -> GrantKey:
    return grant.user_id, grant.rule, grant.via_id


async def provider_review(session: AsyncSession, actor: Actor, provider_id: uuid.UUID, limit: int,
                          after: tuple[str, uuid.UUID] | None) -> tuple[AccessReviewPage, bool]:
    """A page of the review (holders by name) with the whole review's figures; and whether more follow."""
    provider = await provider_for_manager(session, actor, provider_id)
    review = await _review(session, provider, datetime.now(UTC))
    people = review.people
    if after is not None:
        people = [(user_id, grants) for user_id, grants in people
                  if (review.grants[grants[0]].display_name, user_id) > after]
    page = people[:limit]
    items = await _people_read(session, review, page)
    removable = review.removable_entries()
    return AccessReviewPage(
        provider_id=provider.id, company_id=review.company.id, generated_at=review.now,
        dormant_after_days=review.company.access_review_dormant_days,
        review_interval_days=review.company.access_review_interval_days, list_version=review.version,
        people=len(review.people), grants=len(review.grants), dormant_grants=sum(review.dormant),
        last_attestation=(_attestation_read(last, review.name(last.attested_by))
                          if (last := review.last_attestation) else None),
        due_at=review.due_at, overdue=review.overdue, removable_entries=removable,
        items=items,
    ), len(people) > limit


CSV_COLUMNS = (
    "user_id", "display_name", "username", "active", "account_type", "person_dormant", "rule", "entry_id",
    "group_id", "group_name", "company_id", "role", "permissions", "expires_at", "granted_at", "granted_by",
    "granted_by_name", "last_used_at", "reads_30_days", "reads_90_days", "dormant", "removable",
)


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return " ".join(value)
    return str(value)


async def provider_review_csv(session: AsyncSession, actor: Actor, provider_id: uuid.UUID) -> str:
    """The whole review, one line per grant, for compliance files (the same content as the JSON pages)."""
    provider = await provider_for_manager(session, actor, provider_id)
    review = await _review(session, provider, datetime.now(UTC))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for person in await _people_read(session, review, review.people):
        for grant in person.grants:
            row = {**person.model_dump(exclude={"grants", "dormant"}), "person_dormant": person.dormant,
                   **grant.model_dump()}
            writer.writerow([_csv_value(row[column]) for column in CSV_COLUMNS])
    return out.getvalue()


async def attest(session: AsyncSession, settings: Settings, principal: Principal, actor: Actor,
                 provider_id: uuid.UUID, data: AttestationCreate) -> AttestationRead:
    """Record that the provider's access was reviewed over `list_version`: password-confirmed, audited, announced."""
    provider = await provider_for_manager(session, actor, provider_id)
    await confirm_password(session, settings, principal, data.password, purpose="access_review.attest")
    await repository.list_version(session, provider.id, lock=True)
    review = await _review(session, provider, datetime.now(UTC))
    if review.version != data.list_version:
        raise Conflict("The delegation list changed since that review; read the review again. Nothing was recorded.",
                       code="access_review_stale", extra={"current_version": review.version})
    attestation = AccessReviewAttestation(
        id=uuid.uuid4(), provider_id=provider.id, company_id=provider.company_id, attested_by=principal.id,
        list_version=review.version, people=len(review.people), dormant_grants=sum(review.dormant),
        created_at=review.now)
    repository.add_attestation(session, attestation)
    record(session, principal, "access_review.attested", company_id=provider.company_id, target_type="provider",
           target_id=provider.id, details={"attestation_id": str(attestation.id), "list_version": review.version,
                                           "people": attestation.people,
                                           "dormant_grants": attestation.dormant_grants})
    await emit(session, provider.company_id, AccessReviewAttested(
        provider_id=provider.id, attestation_id=attestation.id, list_version=review.version,
        dormant_grants=attestation.dormant_grants))
    attested_by = (await repository.people(session, [principal.id]))[principal.id]
    return _attestation_read(attestation, attested_by.display_name)


async def company_review(session: AsyncSession, actor: Actor, company_id: uuid.UUID, *, overdue: bool | None,
                         has_dormant: bool | None, limit: int, after: tuple[str, uuid.UUID] | None
                         ) -> tuple[list[ProviderReviewSummary], bool]:
    """The providers of the company and of its child companies the caller manages, by name, with their review's
    figures; filtered on `overdue` and `has_dormant` (true or false) when given."""
    company = await visible_company(session, actor, company_id)
    if not may_manage_segregation(actor, company.id):
        raise Forbidden("Only company administrators and delegation list managers see the company's access review.",
                        code="access_review_forbidden")
    children = await company_repository.children_of(session, company.id)
    company_ids = [company.id, *(c.id for c in children if may_manage_segregation(actor, c.id))]
    now = datetime.now(UTC)
    items: list[ProviderReviewSummary] = []
    while len(items) <= limit:
        providers = await repository.providers_of_companies(session, company_ids, limit, after)
        for provider in providers:
            review = await _review(session, provider, now)
            summary = ProviderReviewSummary(
                provider_id=provider.id, display_name=provider.display_name, company_id=provider.company_id,
                people=len(review.people), grants=len(review.grants), dormant_grants=sum(review.dormant),
                last_attested_at=review.last_attestation.created_at if review.last_attestation else None,
                due_at=review.due_at, overdue=review.overdue)
            if (overdue is None or summary.overdue == overdue) and (
                    has_dormant is None or (summary.dormant_grants > 0) == has_dormant):
                items.append(summary)
                if len(items) > limit:
                    break
        if len(providers) <= limit:
            break
        after = (providers[-1].display_name, providers[-1].id)
    return items[:limit], len(items) > limit


# The worker's part


async def roll_up_usage(session: AsyncSession, chunk: int = 20_000) -> int:
    """Fold access-log rows not rolled up yet into the usage tables, up to `chunk` per chain; the caller commits
    (and calls again while this returns rows)."""
    return await repository.roll_up(session, chunk)


async def forget_old_days(session: AsyncSession) -> int:
    return await repository.forget_old_days(session)


async def queue_overdue_reminders(session: AsyncSession, now: datetime) -> int:
    """Email each active provider whose review is overdue, once per review interval (the first when it falls due,
    the next an interval later, and so on until an attestation). Safe from any number of workers at once."""
    providers = await repository.active_providers(session)
    last = await repository.last_attestations(session, [provider.id for provider, _ in providers])
    queued = 0
    for provider, company in providers:
        interval = timedelta(days=company.access_review_interval_days)
        due_at = (last[provider.id].created_at if provider.id in last else provider.created_at) + interval
        if now < due_at:
            continue
        period = int((now - due_at) / interval)
        if await repository.claim_reminder(session, provider.id, due_at, period):
            mail_repository.add(session, template=ACCESS_REVIEW_DUE, to_address=provider.email, context={
                "provider_name": provider.display_name, "company_name": company.name,
                "due_at": due_at.isoformat(), "provider_id": str(provider.id),
                "last_attested_at": last[provider.id].created_at.isoformat() if provider.id in last else None})
            queued += 1
    return queued
