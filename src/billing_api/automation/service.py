"""Rules of billing automation: who may manage it, the two levels of settings, effective settings, runs."""

from __future__ import annotations

import calendar
import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.access_log.service import ReadLog
from billing_api.audit.service import record
from billing_api.auth.principal import Principal
from billing_api.authz.actor import Actor
from billing_api.authz.permissions import Permission
from billing_api.authz.policies import may_view_company
from billing_api.authz.scope import BillScope
from billing_api.automation import jobs, repository
from billing_api.automation.schemas import (
    Automation,
    BillingContactRead,
    CompanyAutomationRead,
    CompanyAutomationUpdate,
    DocumentCreate,
    DocumentRead,
    EffectiveSettingsRead,
    PatientSettingsRead,
    PatientSettingsUpdate,
    PaymentMethodCreate,
    PaymentMethodRead,
    SharingRead,
    StatementItemRead,
    SuperbillItemRead,
)
from billing_api.bills.repository import BillRepository, PatientBillAccess
from billing_api.companies import service as company_service
from billing_api.config import Settings
from billing_api.errors import Conflict, Forbidden, NotFound, Unprocessable
from billing_api.models import (
    AutomationStage,
    BillCreation,
    BillingContact,
    BillingDocument,
    Company,
    CompanyBillingAutomation,
    DocumentKind,
    Patient,
    PatientBillingSettings,
    PaymentCard,
    ShareState,
)
from billing_api.patients import service as patient_service

DELAY_WARNING = "bill_delay_under_60_minutes_with_autopay"
KINDS = (("bills", "share_bills", "bill_delay_minutes"), ("superbills", "share_superbills", "superbill_delay_minutes"),
         ("statements", "share_statements", "statement_delay_minutes"))


# Who may do what


def may_manage_automation(actor: Actor, company_id: uuid.UUID) -> bool:
    """Company admins of the company and holders of billing:automation_manage who reach it."""
    return (actor.active and not actor.is_support and actor.reaches(company_id)
            and (actor.is_company_admin or actor.holds(Permission.BILLING_AUTOMATION_MANAGE)))


async def _company_for(session: AsyncSession, actor: Actor, company_id: uuid.UUID, *, write: bool) -> Company:
    company = await company_service.visible_company(session, actor, company_id)  # 404 when not reached
    if actor.is_support and write:
        raise Forbidden("Support accounts are read-only.", code="support_read_only")
    if not actor.is_support and not may_manage_automation(actor, company_id):
        raise Forbidden("Managing billing automation needs a company admin or billing:automation_manage.",
                        code="automation_manage_required")
    return company


async def _patient_for(session: AsyncSession, actor: Actor, scope: BillScope, patient_id: uuid.UUID, *,
                       write: bool) -> Patient:
    """The patient whose billing data the scope may use: 404 if the patient is not visible, 403 if the caller
    may not see (or, writing, change) that patient's billing data."""
    patient = await patient_service.visible_patient(session, actor, patient_id)
    if write and actor.is_support:
        raise Forbidden("Support accounts are read-only.", code="support_read_only")
    if may_manage_automation(actor, patient.company_id):
        return patient
    if not await PatientBillAccess(session, scope).sees_patient(patient.id, patient.company_id):
        raise Forbidden("You may not use this patient's billing data.", code="patient_billing_forbidden")
    return patient


async def _patient_shown(session: AsyncSession, actor: Actor, scope: BillScope, log: ReadLog,
                        patient_id: uuid.UUID, surface: str, audited_as: str) -> Patient:
    """The patient whose billing data is about to be shown, the read recorded (support's as `audited_as`)."""
    patient = await _patient_for(session, actor, scope, patient_id, write=False)
    await _record_shown(actor, scope, log, patient, surface, audited_as)
    return patient


async def _record_shown(actor: Actor, scope: BillScope, log: ReadLog, patient: Patient, surface: str,
                        audited_as: str | None, **support_details: object) -> None:
    manager = may_manage_automation(actor, patient.company_id)
    await log.record_patient(scope, surface, patient.company_id, patient.id,
                             policy_grant="automation_manager" if manager else None, audited_as=audited_as,
                             support_details=support_details)


# Company settings


def _delay_warnings(bill_creation: BillCreation, autopay_on: bool, share_bills: bool, delay: int) -> list[str]:
    """The seed's advice: with automatic bills and AutoPay, share bills 60 minutes or more after their creation,
    so that AutoPay (00:30) runs before the patient sees the bill. Accepted, but said."""
    on = autopay_on and bill_creation != BillCreation.manual and share_bills and delay < 60
    return [DELAY_WARNING] if on else []


def _company_read(company: Company, row: CompanyBillingAutomation | None) -> CompanyAutomationRead:
    row = row or CompanyBillingAutomation(company_id=company.id, bill_creation=BillCreation.manual, superbill_day=1,
                                          share_bills=False, bill_delay_minutes=60, share_superbills=False,
                                          superbill_delay_minutes=60, share_statements=False,
                                          statement_delay_minutes=60, autopay_enabled=False)
    warnings = _delay_warnings(row.bill_creation, row.autopay_enabled, row.share_bills, row.bill_delay_minutes)
    return CompanyAutomationRead(
        company_id=company.id, time_zone=company.time_zone, bill_creation=row.bill_creation,
        superbill_day=row.superbill_day, autopay_enabled=row.autopay_enabled, updated_at=row.updated_at,
        warnings=warnings,
        **{name: SharingRead(enabled=getattr(row, on), delay_minutes=getattr(row, delay)) for name, on, delay in KINDS},
    )


async def get_company_settings(session: AsyncSession, actor: Actor, company_id: uuid.UUID) -> CompanyAutomationRead:
    company = await _company_for(session, actor, company_id, write=False)
    return _company_read(company, await repository.company_settings(session, company_id))


async def put_company_settings(session: AsyncSession, principal: Principal, actor: Actor, company_id: uuid.UUID,
                               data: CompanyAutomationUpdate) -> CompanyAutomationRead:
    company = await _company_for(session, actor, company_id, write=True)
    row = await repository.company_settings(session, company_id)
    if row is None:
        row = CompanyBillingAutomation(company_id=company_id)
        session.add(row)
    before = _company_read(company, row).model_dump(mode="json", exclude={"updated_at", "warnings", "time_zone"}) \
        if row.bill_creation is not None else None
    row.bill_creation, row.superbill_day, row.autopay_enabled = data.bill_creation, data.superbill_day, \
        data.autopay_enabled
    for name, on, delay in KINDS:
        rule = getattr(data, name)
        setattr(row, on, rule.enabled)
        setattr(row, delay, rule.delay_minutes)
    row.updated_at = datetime.now(UTC)
    await session.flush()
    result = _company_read(company, row)
    record(session, principal, "billing_automation.updated", company_id=company_id, target_type="company",
           target_id=company_id, details={"before": before, "after": result.model_dump(
               mode="json", exclude={"updated_at", "warnings", "time_zone"})})
    return result


async def apply_defaults(session: AsyncSession, principal: Principal, actor: Actor, company_id: uuid.UUID) -> int:
    await _company_for(session, actor, company_id, write=True)
    row = await repository.company_settings(session, company_id)
    if row is None:
        raise Unprocessable("The company has no billing automation settings yet.", code="automation_not_configured")
    updated = await repository.apply_defaults(session, row)
    record(session, principal, "billing_automation.defaults_applied", company_id=company_id, target_type="company",
           target_id=company_id, details={"patients_updated": updated})
    return updated


# Patient settings


def _patient_read(patient: Patient, row: PatientBillingSettings, contact: BillingContact | None,
                  company: CompanyBillingAutomation | None) -> PatientSettingsRead:
    # AutoPay is effectively on when every toggle allows it (company, patient, billing contact); a card may
    # be added at any time, so its absence does not silence the warning.
    autopay_on = (company is not None and company.autopay_enabled and row.autopay_enabled
                  and (contact is None or contact.autopay_enabled))
    warnings = _delay_warnings(company.bill_creation if company else BillCreation.manual, autopay_on,
                               row.share_bills, row.bill_delay_minutes)
    return PatientSettingsRead(
        patient_id=patient.id, company_id=patient.company_id, superbills_enabled=row.superbills_enabled,
        autopay_enabled=row.autopay_enabled, notice_email=row.notice_email, updated_at=row.updated_at,
        billing_contact=BillingContactRead.model_validate(contact) if contact else None, warnings=warnings,
        **{name: SharingRead(enabled=getattr(row, on), delay_minutes=getattr(row, delay)) for name, on, delay in KINDS},
    )


def _stored_or_off(patient: Patient, row: PatientBillingSettings | None) -> PatientBillingSettings:
    # A patient from before billing automation has no row: everything off (defaults apply to new patients only).
    return row or repository.defaults_for_patient(None, patient.id, patient.company_id)


async def get_patient_settings(session: AsyncSession, actor: Actor, scope: BillScope,
                               log: ReadLog, patient_id: uuid.UUID) -> PatientSettingsRead:
    patient = await _patient_shown(session, actor, scope, log, patient_id, "patient_billing_settings",
                                   "patient_billing_settings")
    row = _stored_or_off(patient, await repository.patient_settings(session, patient.id))
    return _patient_read(patient, row, await repository.billing_contact(session, patient.id),
                         await repository.company_settings(session, patient.company_id))


async def patch_patient_settings(session: AsyncSession, principal: Principal, actor: Actor, scope: BillScope,
                                 patient_id: uuid.UUID, data: PatientSettingsUpdate) -> PatientSettingsRead:
    patient = await _patient_for(session, actor, scope, patient_id, write=True)
    sent = data.changes("superbills_enabled", "autopay_enabled", *(name for name, _, _ in KINDS))
    row = await repository.patient_settings(session, patient.id)
    if row is None:
        row = _stored_or_off(patient, None)
        session.add(row)
    for field in ("superbills_enabled", "autopay_enabled", "notice_email"):
        if field in sent:
            setattr(row, field, sent[field])
    for name, on, delay in KINDS:
        if name in sent:
            setattr(row, on, sent[name]["enabled"])
            setattr(row, delay, sent[name]["delay_minutes"])
    contact = await repository.billing_contact(session, patient.id)
    if "billing_contact" in sent:
        if data.billing_contact is None:
            if contact is not None:
                await repository.delete_billing_contact(session, patient.id)
                contact = None
        else:
            if contact is None:
                contact = BillingContact(id=uuid.uuid4(), company_id=patient.company_id, patient_id=patient.id)
                session.add(contact)
            contact.name, contact.email = data.billing_contact.name, data.billing_contact.email
            contact.autopay_enabled = data.billing_contact.autopay_enabled
    row.updated_at = datetime.now(UTC)
    await session.flush()
    record(session, principal, "patient_billing_settings.updated", company_id=patient.company_id,
           target_type="patient", target_id=patient.id,
           details={"changed": sorted(sent)})
    return _patient_read(patient, row, contact, await repository.company_settings(session, patient.company_id))


# Cards


def card_valid(card: PaymentCard, today: date) -> bool:
    return card.active and (card.exp_year, card.exp_month) >= (today.year, today.month)


def _card_read(card: PaymentCard, today: date) -> PaymentMethodRead:
    return PaymentMethodRead(id=card.id, patient_id=card.patient_id, brand=card.brand, last4=card.last4,
                             exp_month=card.exp_month, exp_year=card.exp_year, active=card.active,
                             valid=card_valid(card, today), created_at=card.created_at)


async def _today(session: AsyncSession, company_id: uuid.UUID) -> date:
    company = await session.get(Company, company_id)
    return jobs.local_now(company.time_zone, datetime.now(UTC)).date()


async def list_cards(session: AsyncSession, actor: Actor, scope: BillScope, log: ReadLog,
                     patient_id: uuid.UUID) -> list[PaymentMethodRead]:
    patient = await _patient_shown(session, actor, scope, log, patient_id, "patient_payment_methods",
                                   "payment_methods")
    today = await _today(session, patient.company_id)
    return [_card_read(c, today) for c in await repository.cards(session, patient.id)]


async def add_card(session: AsyncSession, principal: Principal, actor: Actor, scope: BillScope, patient_id: uuid.UUID,
                   data: PaymentMethodCreate) -> PaymentMethodRead:
    patient = await _patient_for(session, actor, scope, patient_id, write=True)
    card = PaymentCard(id=uuid.uuid4(), company_id=patient.company_id, patient_id=patient.id, token=data.token,
                       brand=data.brand, last4=data.last4, exp_month=data.exp_month, exp_year=data.exp_year,
                       active=True)
    session.add(card)
    await session.flush()
    record(session, principal, "payment_method.added", company_id=patient.company_id, target_type="patient",
           target_id=patient.id, details={"payment_method_id": str(card.id), "last4": card.last4})
    return _card_read(card, await _today(session, patient.company_id))


async def deactivate_card(session: AsyncSession, principal: Principal, actor: Actor, scope: BillScope,
                          patient_id: uuid.UUID, card_id: uuid.UUID) -> None:
    patient = await _patient_for(session, actor, scope, patient_id, write=True)
    card = await repository.card(session, patient.id, card_id)
    if card is None:
        raise NotFound("No such payment method.", code="payment_method_not_found")
    card.active = False
    await session.flush()
    record(session, principal, "payment_method.deactivated", company_id=patient.company_id, target_type="patient",
           target_id=patient.id, details={"payment_method_id": str(card.id)})


# Effective settings


async def effective(session: AsyncSession, actor: Actor, scope: BillScope, log: ReadLog,
                    patient_id: uuid.UUID) -> EffectiveSettingsRead:
    patient = await _patient_shown(session, actor, scope, log, patient_id, "patient_effective_settings",
                                   "effective_billing_settings")
    company = await repository.company_settings(session, patient.company_id)
    row = _stored_or_off(patient, await repository.patient_settings(session, patient.id))
    contact = await repository.billing_contact(session, patient.id)
    today = await _today(session, patient.company_id)
    cards = await repository.cards(session, patient.id)
    mode = company.bill_creation if company else BillCreation.manual
    imported, no_cpt = await repository.patient_skipped_encounters(session, patient.id)
    skipped = {"imported_sessions_skipped": int(imported), "sessions_without_cpt_skipped": int(no_cpt)}
    out: list[Automation] = []
    reasons = ["bill_creation_manual"] if mode == BillCreation.manual else []
    notes = [r for r, n in (("imported_sessions_without_cpt", imported), ("sessions_without_cpt", no_cpt)) if n]
    out.append(Automation(name="bill_creation", will_run=not reasons, reasons=reasons + notes,
                          detail={"mode": mode.value, **skipped}))
    # Superbills and statements are made by the nightly run, which runs for companies that saved their settings.
    unscheduled = [] if company is not None else ["company_automation_not_configured"]
    reasons = unscheduled + ([] if row.superbills_enabled else ["patient_superbills_off"])
    out.append(Automation(name="superbills", will_run=not reasons, reasons=reasons + (
        ["imported_sessions_without_cpt"] if imported else []),
        detail={"superbill_day": company.superbill_day if company else 1, **skipped}))
    out.append(Automation(name="statements", will_run=not unscheduled, reasons=unscheduled, detail={
        "day_of_month": jobs.STATEMENT_DAY, "runs_at_local": "00:30",
        "lists": "issued bills with a balance for services up to the end of the previous month, after AutoPay; "
                 "no statement when nothing is owed"}))
    for name, on, delay in KINDS:
        reasons = [] if getattr(row, on) else ["patient_sharing_off"]
        if name == "bills" and mode == BillCreation.manual:
            reasons.append("bill_creation_manual")
        if name == "superbills":
            reasons += unscheduled + ([] if row.superbills_enabled else ["patient_superbills_off"])
        if name == "statements":
            reasons += unscheduled
        out.append(Automation(name=f"share_{name}", will_run=not reasons, reasons=reasons,
                              detail={"delay_minutes": getattr(row, delay)}))
    reasons = []
    if company is None or not company.autopay_enabled:
        reasons.append("company_autopay_off")
    if not row.autopay_enabled:
        reasons.append("patient_autopay_off")
    if not any(card_valid(c, today) for c in cards):
        reasons.append("no_valid_payment_method")
    if contact is not None and not contact.autopay_enabled:
        reasons.append("billing_contact_autopay_off")
    out.append(Automation(name="autopay", will_run=not reasons, reasons=reasons,
                          detail={"runs_at_local": "00:30"}))
    return EffectiveSettingsRead(patient_id=patient.id, automations=out)


# Runs


async def run_night(session: AsyncSession, principal: Principal, actor: Actor, settings: Settings,
                    company_id: uuid.UUID, night: date, stages: list[AutomationStage] | None):
    """Run the night's stages now, through the scheduler's code, in this request's transaction."""
    company = await _company_for(session, actor, company_id, write=True)
    today = jobs.local_now(company.time_zone, datetime.now(UTC)).date()
    if night > today:
        raise Unprocessable("A night in the future cannot run yet.", code="run_date_in_future",
                            extra={"field": "date"})
    settings_row = await repository.company_settings(session, company_id)
    superbill_day = settings_row.superbill_day if settings_row else 1
    requested = set(stages) if stages is not None else set(jobs.stages_of_night(night, superbill_day))
    for stage in reversed(jobs.STAGE_ORDER):  # bills before AutoPay, AutoPay before statements
        if stage in requested and stage in jobs.FOLLOWS:
            requested.add(jobs.FOLLOWS[stage])
    wanted = [s for s in jobs.STAGE_ORDER if s in requested]
    now = datetime.now(UTC)
    results = []
    for stage in wanted:
        outcome = await jobs.run_stage(session, company_id, night, stage, settings=settings, now=now,
                                       trigger="manual")
        run = await repository.get_run(session, company_id, night, stage)
        results.append((stage, outcome.outcome, run))
    shared, _ = await repository.share_due(session, now, company_id=company_id)
    record(session, principal, "billing_automation.run_triggered", company_id=company_id, target_type="company",
           target_id=company_id, details={"date": night.isoformat(), "stages": [s.value for s in wanted]})
    return results, shared


async def list_runs(session: AsyncSession, actor: Actor, company_id: uuid.UUID, limit: int, after):
    await _company_for(session, actor, company_id, write=False)
    return await repository.runs(session, company_id, limit, after)


async def list_documents(session: AsyncSession, actor: Actor, scope: BillScope, log: ReadLog,
                         patient_id: uuid.UUID, shared_only: bool, limit: int,
                         after) -> tuple[list[DocumentRead], list[BillingDocument]]:
    """A page of documents (limit + 1 rows for the cursor), statements with their bills."""
    patient = await _patient_for(session, actor, scope, patient_id, write=False)
    rows = await repository.documents(session, patient.id, shared_only, limit, after)
    shown = rows[:limit]
    await _record_shown(actor, scope, log, patient, "patient_documents", "patient_documents" if shown else None,
                        document_ids=[str(d.id) for d in shown])
    return await _presented(session, shown), rows


async def _presented(session: AsyncSession, documents: list[BillingDocument]) -> list[DocumentRead]:
    """Documents as the API shows them: statements with their bills, manual superbills with their sessions."""
    items = await repository.statement_items(session, [d.id for d in documents if d.kind == DocumentKind.statement])
    sessions = await repository.superbill_items(session,
                                                [d.id for d in documents if d.kind == DocumentKind.superbill])
    return [DocumentRead.model_validate(d).model_copy(update={
        "items": [StatementItemRead.model_validate(i) for i in items.get(d.id, [])],
        "encounters": [SuperbillItemRead.model_validate(i) for i in sessions.get(d.id, [])]}) for d in documents]


# Documents made by hand


def _month_containing(day: date) -> tuple[date, date]:
    # monthrange, not "the 1st of the next month minus a day": December 9999 has no next month.
    return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _month_of(start: date, end: date) -> tuple[date, date] | None:
    """(first, last) day of the month `start`..`end` is exactly, or None."""
    return (start, end) if (start, end) == _month_containing(start) else None


def _requested_period(data: DocumentCreate) -> tuple[date, date] | None:
    """The period asked for (None: chosen encounters); 422 for a request that is neither or both, or a period
    that is not one calendar month."""
    dated = data.period_start is not None or data.period_end is not None
    if dated == (data.encounter_ids is not None):
        raise Unprocessable("Send either a period (`period_start` and `period_end`) or, for a superbill, "
                            "`encounter_ids`.", code="period_or_encounters_required", extra={"field": "period_start"})
    if data.encounter_ids is not None:
        if data.kind == DocumentKind.statement:
            raise Unprocessable("A statement is made for a period; only a superbill lists chosen sessions.",
                                code="encounters_for_superbill_only", extra={"field": "encounter_ids"})
        for index, encounter_id in enumerate(data.encounter_ids):
            if encounter_id in data.encounter_ids[:index]:
                raise Unprocessable("An encounter is listed twice.", code="encounter_repeated",
                                    extra={"field": f"encounter_ids[{index}]"})
        return None
    for field in ("period_start", "period_end"):
        if getattr(data, field) is None:
            raise Unprocessable(f"`{field}` is required with a period.", code="period_incomplete",
                                extra={"field": field})
    if data.period_end < data.period_start:
        raise Unprocessable("`period_end` is before `period_start`.", code="period_end_before_start",
                            extra={"field": "period_end"})
    period = _month_of(data.period_start, data.period_end)
    if period is None:
        raise Unprocessable("A period is one calendar month: `period_start` its first day, `period_end` its last "
                            "(the unit of the once-per-patient-and-period rule).", code="period_not_a_month",
                            extra={"field": "period_start" if data.period_start.day != 1 else "period_end"})
    return period


async def _may_save_providers(session: AsyncSession, view: BillScope, save: BillScope, company_id: uuid.UUID,
                              providers: set[uuid.UUID]) -> None:
    """403 unless the caller may see and save the bills of every provider the document is about (as
    POST /v1/bills: seeing is not saving)."""
    for provider_id in sorted(providers):
        if not (await BillRepository(session, view).permits(provider_id, company_id)
                and await BillRepository(session, save).permits(provider_id, company_id)):
            raise Forbidden("You may not save the bills of every provider this document is about.",
                            code="permission_denied", extra={"permission": save.permission.value})


async def _chosen_encounters(session: AsyncSession, actor: Actor, view: BillScope, patient: Patient,
                             ids: list[uuid.UUID]) -> list[tuple]:
    """The chosen encounters: 404 for one the caller may not see (its company, or its provider's bills),
    422 for another patient's or one without a CPT code."""
    rows = {r[0]: r for r in await repository.encounters_for_superbill(session, patient.id, encounter_ids=ids)}
    seen: dict[tuple[uuid.UUID, uuid.UUID], bool] = {}  # (provider, company) -> may the caller see their bills
    for index, encounter_id in enumerate(ids):
        row = rows.get(encounter_id)
        if row is not None and (row[3], row[1]) not in seen:
            seen[row[3], row[1]] = await BillRepository(session, view).permits(row[3], row[1])
        if row is None or not may_view_company(actor, row[1]) or not seen[row[3], row[1]]:
            raise NotFound("No such encounter.", code="encounter_not_found",
                           extra={"field": f"encounter_ids[{index}]"})
    for index, encounter_id in enumerate(ids):
        row = rows[encounter_id]
        if row[2] != patient.id:
            raise Unprocessable("The encounter is another patient's.", code="encounter_mismatch",
                                extra={"field": f"encounter_ids[{index}]"})
        if row[6] is None:
            raise Unprocessable("The encounter has no service line with a CPT code: nothing to put on a superbill.",
                                code="encounter_not_billable", extra={"field": f"encounter_ids[{index}]"})
    return [rows[i] for i in sorted(ids, key=lambda i: (rows[i][4], i))]


async def _no_document_yet(session: AsyncSession, patient_id: uuid.UUID, kind: DocumentKind,
                           period: tuple[date, date]) -> None:
    """409 naming the patient's document of this kind for the period, if there is one."""
    existing = await repository.document_for_period(session, patient_id, kind, period[0])
    if existing is not None:
        raise Conflict(f"The patient already has a {kind.value} for {period[0]:%Y-%m}: one per patient and period.",
                       code="document_exists_for_period",
                       extra={"existing_id": str(existing), "period_start": period[0].isoformat(),
                              "period_end": period[1].isoformat()})


def _share(row: PatientBillingSettings, kind: DocumentKind, now: datetime) -> tuple[ShareState, datetime | None]:
    """As the nightly run's documents: the patient's own sharing of the kind, after its delay."""
    on, delay = ("share_superbills", "superbill_delay_minutes") if kind == DocumentKind.superbill else \
        ("share_statements", "statement_delay_minutes")
    if not getattr(row, on):
        return ShareState.not_shared, None
    return ShareState.scheduled, now + timedelta(minutes=getattr(row, delay))


async def create_document(session: AsyncSession, principal: Principal, actor: Actor, view: BillScope,
                          save: BillScope, log: ReadLog, patient_id: uuid.UUID,
                          data: DocumentCreate) -> DocumentRead:
    """A superbill or statement made by hand, under the nightly run's once-per-patient-and-period rule."""
    kind = DocumentKind(data.kind)
    period = _requested_period(data)
    encounters: list[tuple] = []
    patient = await _patient_for(session, actor, view, patient_id, write=True)
    if data.encounter_ids is not None:
        encounters = await _chosen_encounters(session, actor, view, patient, data.encounter_ids)
        await _may_save_providers(session, view, save, patient.company_id, {e[3] for e in encounters})
        months = {_month_containing(e[4]) for e in encounters}
        if len(months) > 1:
            raise Unprocessable("The chosen sessions are in more than one month; a superbill covers one month "
                                "(make one per month).", code="encounters_span_months",
                                extra={"field": "encounter_ids"})
        period = months.pop()
    today = await _today(session, patient.company_id)
    if period[1] >= today:
        raise Unprocessable("The period has not ended yet (in the company's time zone): a document is made once "
                            "per period, when it is over.", code="period_not_ended",
                            extra={"field": "encounter_ids" if data.encounter_ids is not None else "period_end"})
    bills: list[tuple] = []
    if kind == DocumentKind.superbill:
        if data.encounter_ids is None:
            encounters = await repository.encounters_for_superbill(session, patient.id, period=period)
            await _may_save_providers(session, view, save, patient.company_id, {e[3] for e in encounters})
    else:
        bills, others = await PatientBillAccess(session, save).open_bills_of_patient(
            patient.company_id, patient.id, period[1])
        if others:
            raise Forbidden("The patient owes on bills you may not save: the statement would list them.",
                            code="permission_denied", extra={"permission": save.permission.value})
        await _may_save_providers(session, view, save, patient.company_id, {b[2] for b in bills})
    # Said first, as it is the answer whatever the month holds now; the insert below is what enforces it.
    await _no_document_yet(session, patient.id, kind, period)
    if kind == DocumentKind.superbill:
        if not encounters:
            raise Unprocessable("The patient has no session with a CPT code in the period.",
                                code="no_billable_sessions", extra={"field": "period_start"})
        total = sum(int(e[6]) for e in encounters)
    else:
        if not bills:
            raise Unprocessable("The patient owes nothing for services up to the end of the period: no statement.",
                                code="nothing_owed", extra={"field": "period_end"})
        total = sum(b[5] for b in bills)
    now = datetime.now(UTC)
    share_state, share_at = _share(_stored_or_off(patient, await repository.patient_settings(session, patient.id)),
                                   kind, now)
    document = BillingDocument(id=uuid.uuid4(), company_id=patient.company_id, patient_id=patient.id, kind=kind,
                               period_start=period[0], period_end=period[1], total_cents=total,
                               share_state=share_state, share_at=share_at, created_at=now, created_by=principal.id)
    if not await repository.add_manual_document(session, document):  # made meanwhile (the index decided)
        await _no_document_yet(session, patient.id, kind, period)
        raise Conflict("A document for the period was being written at the same time; try again.", code="conflict")
    if kind == DocumentKind.superbill:
        await repository.add_superbill_items(session, document.id, encounters)
    else:
        await repository.add_statement_items(session, document.id, bills)
    record(session, principal, "billing_document.created", company_id=patient.company_id, target_type="patient",
           target_id=patient.id, details={
               "document_id": str(document.id), "kind": kind.value, "period_start": period[0].isoformat(),
               "period_end": period[1].isoformat(),
               **({"encounter_ids": [str(e[0]) for e in encounters]} if kind == DocumentKind.superbill else
                  {"bill_ids": [str(b[0]) for b in bills]})})
    await _record_shown(actor, view, log, patient, "patient_document", "patient_document",
                        document_ids=[str(document.id)])
    return (await _presented(session, [document]))[0]


async def visible_document(session: AsyncSession, actor: Actor, scope: BillScope, patient_id: uuid.UUID,
                           document_id: uuid.UUID) -> tuple[Patient, BillingDocument]:
    """One of the patient's documents, under the list's rules (the patient 404, their billing data 403); a
    document that is not this patient's is not found. Nothing recorded yet: `record_document_read` does."""
    patient = await _patient_for(session, actor, scope, patient_id, write=False)
    document = await repository.document(session, patient.id, document_id)
    if document is None:
        raise NotFound("No such document for this patient.", code="document_not_found")
    return patient, document


async def record_document_read(actor: Actor, scope: BillScope, log: ReadLog, patient: Patient,
                               document: BillingDocument, surface: str) -> None:
    await _record_shown(actor, scope, log, patient, surface, surface, document_ids=[str(document.id)])


async def get_document(session: AsyncSession, actor: Actor, scope: BillScope, log: ReadLog, patient_id: uuid.UUID,
                       document_id: uuid.UUID) -> DocumentRead:
    """One document as the list shows it, its read recorded."""
    patient, document = await visible_document(session, actor, scope, patient_id, document_id)
    await record_document_read(actor, scope, log, patient, document, "patient_document")
    return (await _presented(session, [document]))[0]
