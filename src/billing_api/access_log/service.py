"""Recording reads of billing data, and who may read a patient's access log.

Every route that returns billing data records one entry, after its last read, durable before the response
leaves. The entry's grants are computed by the reading transaction (as the rules stood for what it read); the row
is written by the process's writer in a transaction shared with concurrent reads (writer.py), or, without a
writer, by the reading transaction itself. A read that returns nothing records nothing: the log answers "who saw
this patient's billing data", and an empty page showed none."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.access_log import repository
from billing_api.access_log.schemas import AccessGrantRead, AccessLogEntryRead
from billing_api.access_log.writer import AccessLogWriter
from billing_api.audit import service as audit
from billing_api.auth.principal import CurrentPrincipal, Principal
from billing_api.authz.actor import Actor
from billing_api.authz.scope import BillScope
from billing_api.bills.repository import BillFilters, BillRepository, PatientBillAccess
from billing_api.db import Session
from billing_api.errors import Forbidden
from billing_api.models import AccessLogEntry
from billing_api.patients import service as patients_service

# (provider id or None for a patient-level read, company id, patient id) of one thing shown; a bill shown adds
# its id (for support's audit events).
Shown = tuple[uuid.UUID | None, uuid.UUID, uuid.UUID]
ShownBill = tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]

SUPPORT_BILLS_VIEWED = "support.bills_viewed"
SUPPORT_PATIENT_BILLING_VIEWED = "support.patient_billing_viewed"

USER_AGENT_MAX = 300


@dataclass
class ReadLog:
    """The request's access log: who is reading, through which route, from where. Recording a read also audits
    it when the reader is support (rule 2: every support view is recorded, on the providers whose data it was)."""

    session: AsyncSession
    principal: Principal
    route: str
    user_agent: str | None
    writer: AccessLogWriter | None = None  # None: the reading transaction writes the row itself
    enabled: bool = True

    async def record(self, scope: BillScope, surface: str, shown: Iterable[Shown | ShownBill], *,
                     record_count: int | None = None, policy_grants: Sequence[dict[str, str]] = (),
                     support_details: Mapping[str, object] | None = None,
                     about: tuple[uuid.UUID, uuid.UUID] | None = None) -> None:
        """One entry for what the scope's actor was shown, durable when this returns; nothing when nothing was
        shown. Support's view is audited once per provider shown (with the bill ids, when `shown` names them);
        a read `about` one provider (and company), a report, is audited even when it showed no patient."""
        shown = list(shown)
        if scope.is_support and (shown or about is not None):
            self._audit_support_bills(surface, shown or [(*about, None)], support_details or {})
        if shown:
            await self._write(scope, surface, shown, record_count, policy_grants)

    async def record_patient(self, scope: BillScope, surface: str, company_id: uuid.UUID, patient_id: uuid.UUID,
                             *, policy_grant: str | None = None, audited_as: str | None = None,
                             support_details: Mapping[str, object] | None = None) -> None:
        """A read of one patient's billing data (documents, settings, cards): the patient's company and the
        providers whose bills of the patient the scope sees are what the access rests on. Support's view is
        audited once per provider who bills or treats the patient (or once about the patient, who has none yet),
        as `audited_as` (None: not audited, the read showed nothing)."""
        bills = PatientBillAccess(self.session, scope)
        if scope.is_support and audited_as is not None:
            for provider_id in await bills.providers_of_patient(patient_id) or [None]:
                audit.record(self.session, self.principal, SUPPORT_PATIENT_BILLING_VIEWED, company_id=company_id,
                             target_type="provider" if provider_id else "patient",
                             target_id=provider_id or patient_id,
                             details={"surface": audited_as, "patient_id": str(patient_id), **(support_details or {})})
        sources = await bills.sources_for_patient(patient_id)
        shown = [(None, company_id, patient_id)] + [(p, c, patient_id) for p, c in sources]
        grants = [{"rule": policy_grant, "company_id": str(company_id)}] if policy_grant else []
        await self._write(scope, surface, shown, 1, grants)

    def _audit_support_bills(self, surface: str, shown: list[Shown | ShownBill],
                             details: Mapping[str, object]) -> None:
        by_provider: dict[uuid.UUID, tuple[uuid.UUID, list[str]]] = {}
        for item in shown:
            if item[0] is None:
                continue
            bill_ids = by_provider.setdefault(item[0], (item[1], []))[1]
            if len(item) > 3:
                bill_ids.append(str(item[3]))
        for provider_id, (company_id, bill_ids) in by_provider.items():
            audit.record(self.session, self.principal, SUPPORT_BILLS_VIEWED, company_id=company_id,
                         target_type="provider", target_id=provider_id,
                         details={"surface": surface, **({"bill_ids": bill_ids} if bill_ids else {}), **details})

    async def _write(self, scope: BillScope, surface: str, shown: list[Shown | ShownBill], record_count: int | None,
                     policy_grants: Sequence[dict[str, str]]) -> None:
        if not self.enabled:
            return
        pairs = sorted({(item[0], item[1]) for item in shown}, key=str)
        params = repository.entry_params(
            actor_id=scope.actor_id, permission=scope.permission, route=self.route, surface=surface, pairs=pairs,
            patient_ids=sorted({item[2] for item in shown}),
            record_count=len(shown) if record_count is None else record_count,
            client_address=self.principal.address, user_agent=self.user_agent, policy_grants=policy_grants,
        )
        if self.writer is None:
            await repository.insert_entry(self.session, scope.permission, params)
        else:
            await self.writer.write(await repository.granted_entry(self.session, scope.permission, params))


async def read_log(request: Request, session: Session, principal: CurrentPrincipal) -> ReadLog:
    route = request.scope.get("route")
    agent = request.headers.get("user-agent")
    return ReadLog(session, principal, getattr(route, "path", request.url.path),
                   agent[:USER_AGENT_MAX] if agent else None, getattr(request.app.state, "access_log_writer", None),
                   request.app.state.settings.access_log_enabled)


AccessLog = Annotated[ReadLog, Depends(read_log)]


def _read(entry: AccessLogEntry, actor_name: str, narrowed_to: uuid.UUID | None) -> AccessLogEntryRead:
    grants = [AccessGrantRead(**grant) for grant in entry.grants]
    providers = entry.provider_ids
    if narrowed_to is not None:  # a provider reads about their own data only
        providers = [p for p in providers if p == narrowed_to]
        grants = [g for g in grants if g.provider_id in (None, narrowed_to)]
    return AccessLogEntryRead(
        id=entry.id, created_at=entry.created_at, actor_id=entry.actor_id, actor_name=actor_name, route=entry.route,
        surface=entry.surface, permission=entry.permission, provider_ids=providers, grants=grants,
        record_count=entry.record_count, client_address=entry.client_address, user_agent=entry.user_agent,
        chain_id=entry.chain_id, chain_seq=entry.chain_seq,
    )


async def patient_access_log(
    session: AsyncSession, actor: Actor, scope: BillScope, patient_id: uuid.UUID, limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> tuple[list[AccessLogEntryRead], list[AccessLogEntry]]:
    """Company administrators who reach the patient's company read every entry; a provider of the patient
    (one who bills them) reads the entries that showed their own data, narrowed to it. Support and everyone
    else who sees the patient: 403; whoever does not see the patient: 404. Returns the page (limit) and the
    rows read (limit + 1, for the cursor)."""
    patient = await patients_service.visible_patient(session, actor, patient_id)
    narrowed_to: uuid.UUID | None = None
    if not (actor.is_company_admin and actor.reaches(patient.company_id)):
        own = BillFilters(provider_id=actor.id, patient_id=patient.id)
        if actor.is_support or not await BillRepository(session, scope).page(own, 1, None):
            raise Forbidden("Only the patient's providers and company administrators read the access log.",
                            code="access_log_forbidden")
        narrowed_to = actor.id
    rows = await repository.list_for_patient(session, patient.id, provider_id=narrowed_to, limit=limit, after=after)
    return [_read(entry, name, narrowed_to) for entry, name in rows[:limit]], [entry for entry, _ in rows]
