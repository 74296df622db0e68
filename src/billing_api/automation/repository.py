"""All SQL of billing automation that is not bill SQL (bill SQL is in bills/repository/, with a BillScope).

Automation runs as the system, not as a caller: statements here that read or write billing documents or
statement items take no BillScope. The bills themselves are read and written in bills/repository/ under each
provider's own scope; what reaches this module (bill ids, totals, balances) comes from there.

The set-based writes are plain Core on the models' tables, as the SQL they replaced: nothing in the session is
synchronised with them. Reads use the mapped classes.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Insert,
    Integer,
    Interval,
    Select,
    TableValuedAlias,
    and_,
    case,
    column,
    delete,
    exists,
    func,
    literal,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from billing_api.mail import repository as mail_repository
from billing_api.mail.templates import DOCUMENT_SHARED
from billing_api.models import (
    AutomatedEncounter,
    AutomationRun,
    AutomationStage,
    AutopayCharge,
    BillingContact,
    BillingDocument,
    ChargeStatus,
    Company,
    CompanyBillingAutomation,
    DocumentKind,
    Encounter,
    EncounterLine,
    Patient,
    PatientBillingSettings,
    PaymentCard,
    ProviderBillCount,
    ShareState,
    StatementItem,
    SuperbillItem,
)

_document = BillingDocument.__table__
_item = StatementItem.__table__
_settings = PatientBillingSettings.__table__
# ON CONFLICT names the model's own unique index, so the arbiter's predicate is the index's (kind = '...').
_INDEXES = {index.name: index for index in _document.indexes}
_UUID = UUID(as_uuid=True)
_TIMESTAMPTZ = DateTime(timezone=True)


def _unnested(name: str, **columns: tuple[TypeEngine, list]) -> TableValuedAlias:
    """unnest(array, ...) AS name(column, ...): many rows sent as one array parameter per column."""
    return func.unnest(*(literal(values, ARRAY(type_)) for type_, values in columns.values())).table_valued(
        *(column(c, type_) for c, (type_, _) in columns.items())).render_derived(name=name)


def _insert_documents(values: dict[str, ColumnElement], rows: Select) -> Insert:
    """INSERT INTO billing_document (the keys of `values`) SELECT the values, FROM and WHERE as in `rows`."""
    return insert(_document).from_select(list(values), rows.add_columns(*values.values()), include_defaults=False)


def _share(enabled: ColumnElement[bool], delay_minutes: ColumnElement[int], start: ColumnElement[datetime]
           ) -> dict[str, ColumnElement]:
    """A new document's share state by the patient's setting: scheduled at `start` + the delay, or not shared
    (also when the patient has no settings row: a NULL `enabled` is not true)."""
    state_type = _document.c.share_state.type
    state = case((enabled, literal(ShareState.scheduled, state_type)),
                 else_=literal(ShareState.not_shared, state_type))
    # make_interval(mins => n), positionally: Core has no named-argument calls.
    delay = func.make_interval(0, 0, 0, 0, 0, delay_minutes, type_=Interval)
    return {"share_state": state, "share_at": case((enabled, start + delay))}


def _company(company_id: uuid.UUID) -> ColumnElement[uuid.UUID]:
    return literal(company_id, _UUID)


def _instant(now: datetime) -> ColumnElement[datetime]:
    return literal(now, _TIMESTAMPTZ)


# Settings


async def company_settings(session: AsyncSession, company_id: uuid.UUID) -> CompanyBillingAutomation | None:
    return await session.get(CompanyBillingAutomation, company_id)


async def patient_settings(session: AsyncSession, patient_id: uuid.UUID) -> PatientBillingSettings | None:
    return await session.get(PatientBillingSettings, patient_id)


async def billing_contact(session: AsyncSession, patient_id: uuid.UUID) -> BillingContact | None:
    return (await session.execute(select(BillingContact).where(BillingContact.patient_id == patient_id))
            ).scalar_one_or_none()


async def delete_billing_contact(session: AsyncSession, patient_id: uuid.UUID) -> None:
    contact = BillingContact.__table__
    await session.execute(delete(contact).where(contact.c.patient_id == patient_id))


_DEFAULT_COLUMNS = ("share_bills", "bill_delay_minutes", "share_superbills", "superbill_delay_minutes",
                    "share_statements", "statement_delay_minutes")


def defaults_for_patient(company: CompanyBillingAutomation | None, patient_id: uuid.UUID,
                         company_id: uuid.UUID) -> PatientBillingSettings:
    """A new patient's settings: the company's current sharing defaults (AutoPay and superbills start off)."""
    values = {c: getattr(company, c) for c in _DEFAULT_COLUMNS} if company is not None else {}
    return PatientBillingSettings(patient_id=patient_id, company_id=company_id, superbills_enabled=False,
                                  autopay_enabled=False, **{c: values.get(c, False if c.startswith("share") else 60)
                                                            for c in _DEFAULT_COLUMNS})


async def create_patient_settings(session: AsyncSession, patient_id: uuid.UUID, company_id: uuid.UUID) -> None:
    """A new patient's settings row, from the company's defaults as they are now (same transaction)."""
    session.add(defaults_for_patient(await company_settings(session, company_id), patient_id, company_id))
    await session.flush()


async def apply_defaults(session: AsyncSession, company: CompanyBillingAutomation) -> int:
    """Write the company's sharing defaults to every patient of the company (creating missing settings)."""
    patient = Patient.__table__
    defaults = [literal(getattr(company, c), _settings.c[c].type) for c in _DEFAULT_COLUMNS]
    statement = insert(_settings).from_select(
        ["patient_id", "company_id", "superbills_enabled", "autopay_enabled", *_DEFAULT_COLUMNS, "updated_at"],
        select(patient.c.id, patient.c.company_id, literal(False, Boolean), literal(False, Boolean), *defaults,
               func.now()).where(patient.c.company_id == company.company_id),
        include_defaults=False,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[_settings.c.patient_id],
        set_={**{c: statement.excluded[c] for c in _DEFAULT_COLUMNS}, "updated_at": func.now()},
    )
    return (await session.execute(statement)).rowcount


# Cards


async def cards(session: AsyncSession, patient_id: uuid.UUID) -> list[PaymentCard]:
    return list((await session.execute(
        select(PaymentCard).where(PaymentCard.patient_id == patient_id).order_by(PaymentCard.created_at, PaymentCard.id)
    )).scalars())


async def card(session: AsyncSession, patient_id: uuid.UUID, card_id: uuid.UUID) -> PaymentCard | None:
    return (await session.execute(select(PaymentCard).where(
        PaymentCard.id == card_id, PaymentCard.patient_id == patient_id))).scalar_one_or_none()


# Documents


async def documents(session: AsyncSession, patient_id: uuid.UUID, shared_only: bool, limit: int,
                    after: tuple[datetime, uuid.UUID] | None) -> list[BillingDocument]:
    statement = select(BillingDocument).where(BillingDocument.patient_id == patient_id)
    if shared_only:
        statement = statement.where(BillingDocument.share_state == ShareState.shared)
    if after is not None:
        statement = statement.where(func.row(BillingDocument.created_at, BillingDocument.id) < func.row(*after))
    statement = statement.order_by(BillingDocument.created_at.desc(), BillingDocument.id.desc()).limit(limit + 1)
    return list((await session.execute(statement)).scalars())


async def document(session: AsyncSession, patient_id: uuid.UUID, document_id: uuid.UUID) -> BillingDocument | None:
    """One of the patient's documents (another patient's is none)."""
    return (await session.execute(select(BillingDocument).where(
        BillingDocument.id == document_id, BillingDocument.patient_id == patient_id))).scalar_one_or_none()


async def add_bill_documents(session: AsyncSession, company_id: uuid.UUID,
                             rows: list[tuple[uuid.UUID, uuid.UUID, int, datetime, Any, Any]]) -> int:
    """One `bill` document per new bill, scheduled for sharing by the patient's own settings.
    No BillScope: automation runs as the system; the bills were made under their provider's scope
    (AutomationBillRepository.create_automated_bills), and this only writes documents for them, as it always has."""
    if not rows:
        return 0
    new = _unnested("r", bill_id=(_UUID, [r[0] for r in rows]), patient_id=(_UUID, [r[1] for r in rows]),
                    total=(Integer, [r[2] for r in rows]), created_at=(_TIMESTAMPTZ, [r[3] for r in rows]))
    statement = _insert_documents({
        "id": func.gen_random_uuid(), "company_id": _company(company_id), "patient_id": new.c.patient_id,
        "kind": literal(DocumentKind.bill, _document.c.kind.type), "bill_id": new.c.bill_id,
        "total_cents": new.c.total,
        **_share(_settings.c.share_bills, _settings.c.bill_delay_minutes, new.c.created_at),
        "created_at": new.c.created_at,
    }, select().select_from(new.outerjoin(_settings, _settings.c.patient_id == new.c.patient_id)))
    return (await session.execute(statement)).rowcount


async def add_superbills(session: AsyncSession, company_id: uuid.UUID, period_start: date, period_end: date,
                         now: datetime) -> int:
    """A superbill for the period for each patient with superbills on and billable, non-imported sessions in it
    (at most one per patient and period: a unique index)."""
    encounter, line = Encounter.__table__, EncounterLine.__table__
    billable = (
        select(func.sum(line.c.units * line.c.fee_cents).label("total"))
        .select_from(encounter.join(line, and_(line.c.encounter_id == encounter.c.id, line.c.code.is_not(None))))
        .where(encounter.c.patient_id == _settings.c.patient_id, encounter.c.company_id == company_id,
               ~encounter.c.imported, encounter.c.service_date.between(period_start, period_end))
        .lateral("t")
    )
    statement = _insert_documents({
        "id": func.gen_random_uuid(), "company_id": _company(company_id), "patient_id": _settings.c.patient_id,
        "kind": literal(DocumentKind.superbill, _document.c.kind.type), "period_start": literal(period_start, Date),
        "period_end": literal(period_end, Date), "total_cents": billable.c.total,
        **_share(_settings.c.share_superbills, _settings.c.superbill_delay_minutes, _instant(now)),
        "created_at": _instant(now),
    }, select().select_from(_settings.join(billable, billable.c.total.is_not(None)))
       .where(_settings.c.company_id == company_id, _settings.c.superbills_enabled)
    ).on_conflict_do_nothing(constraint=_INDEXES["uq_billing_document_superbill_period"])
    return (await session.execute(statement)).rowcount


async def add_statements(session: AsyncSession, company_id: uuid.UUID, period_start: date, period_end: date,
                         now: datetime, open_bills: list[tuple]) -> tuple[int, int, int]:
    """A statement for the period for each patient among `open_bills` (bill id, patient id, provider id, service
    date, total, balance: read under each provider's scope), listing those bills and totalling their balances
    (at most one per patient and period: a unique index). Returns (statements, bills listed, balance).
    No BillScope here: automation runs as the system and writes the snapshot it was given, as it always has."""
    if not open_bills:
        return 0, 0, 0
    columns = list(zip(*open_bills))
    listed = (
        select(_unnested("i", bill_id=(_UUID, list(columns[0])), patient_id=(_UUID, list(columns[1])),
                         provider_id=(_UUID, list(columns[2])), service_date=(Date, list(columns[3])),
                         total_cents=(Integer, list(columns[4])), balance_cents=(Integer, list(columns[5]))))
        .cte("item")
        .prefix_with("MATERIALIZED")  # read twice: unnested once
    )
    owed = (select(listed.c.patient_id, func.sum(listed.c.balance_cents).label("balance"))
            .group_by(listed.c.patient_id).subquery("o"))
    docs = (
        _insert_documents({
            "id": func.gen_random_uuid(), "company_id": _company(company_id), "patient_id": owed.c.patient_id,
            "kind": literal(DocumentKind.statement, _document.c.kind.type),
            "period_start": literal(period_start, Date), "period_end": literal(period_end, Date),
            "total_cents": owed.c.balance,
            **_share(_settings.c.share_statements, _settings.c.statement_delay_minutes, _instant(now)),
            "created_at": _instant(now),
        }, select().select_from(owed.outerjoin(_settings, _settings.c.patient_id == owed.c.patient_id)))
        .on_conflict_do_nothing(constraint=_INDEXES["uq_billing_document_statement_period"])
        .returning(_document.c.id, _document.c.patient_id, _document.c.total_cents)
        .cte("docs")
    )
    items = (
        insert(_item)
        .from_select(["document_id", "bill_id", "provider_id", "service_date", "total_cents", "balance_cents"],
                     select(docs.c.id, listed.c.bill_id, listed.c.provider_id, listed.c.service_date,
                            listed.c.total_cents, listed.c.balance_cents)
                     .select_from(docs.join(listed, listed.c.patient_id == docs.c.patient_id)),
                     include_defaults=False)
        .returning(_item.c.document_id)
        .cte("items")
    )
    row = (await session.execute(select(
        select(func.count()).select_from(docs).scalar_subquery(),
        select(func.count()).select_from(items).scalar_subquery(),
        select(func.coalesce(func.sum(docs.c.total_cents), 0)).scalar_subquery(),
    ))).one()
    return int(row[0]), int(row[1]), int(row[2])


async def statement_items(session: AsyncSession, document_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[StatementItem]]:
    """The bills listed on these statements, oldest service first."""
    items: dict[uuid.UUID, list[StatementItem]] = {}
    if document_ids:
        for item in (await session.execute(
                select(StatementItem).where(StatementItem.document_id.in_(document_ids))
                .order_by(StatementItem.document_id, StatementItem.service_date, StatementItem.bill_id))).scalars():
            items.setdefault(item.document_id, []).append(item)
    return items


async def share_due(session: AsyncSession, now: datetime, *, company_id: uuid.UUID | None = None,
                    limit: int = 5000) -> tuple[int, int]:
    """Share the documents whose time has come (state scheduled -> shared, once: the WHERE guards it; rows
    another worker holds are skipped) and queue a notice in the outbox for each one that has an address.
    Returns (shared, notices)."""
    due = (
        select(_document.c.id)
        .where(_document.c.share_state == ShareState.scheduled, _document.c.share_at <= now,
               *([_document.c.company_id == company_id] if company_id is not None else []))
        .order_by(_document.c.share_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    shared = (
        update(_document)
        .where(_document.c.id == due.c.id, _document.c.share_state == ShareState.scheduled)
        .values(share_state=ShareState.shared, shared_at=now)
        .returning(_document.c.id, _document.c.company_id, _document.c.patient_id, _document.c.kind,
                   _document.c.total_cents)
        .cte("shared")
    )
    patient, company, contact = Patient.__table__, Company.__table__, BillingContact.__table__
    notice = (
        select(
            func.coalesce(contact.c.email, _settings.c.notice_email).label("to_address"),
            func.jsonb_build_object(
                "document_id", shared.c.id, "kind", shared.c.kind, "total_cents", shared.c.total_cents,
                "patient_name", patient.c.first_name + " " + patient.c.last_name, "company_name", company.c.name,
            ).label("context"),
        )
        .select_from(
            shared.join(patient, patient.c.id == shared.c.patient_id)
            .join(company, company.c.id == shared.c.company_id)
            .outerjoin(_settings, _settings.c.patient_id == shared.c.patient_id)
            .outerjoin(contact, contact.c.patient_id == shared.c.patient_id)
        )
    )
    # The outbox is mail's: its statement, run here as a CTE (one round trip); it skips rows with no address.
    notices = mail_repository.enqueue_from(DOCUMENT_SHARED, notice).cte("notices")
    shared_count, notices_count = (await session.execute(select(
        select(func.count()).select_from(shared).scalar_subquery(),
        select(func.count()).select_from(notices).scalar_subquery(),
    ))).one()
    return int(shared_count), int(notices_count)


# Encounters the run leaves alone (for the report)


async def skipped_encounters(session: AsyncSession, company_id: uuid.UUID, date_from: date,
                             date_to: date) -> tuple[int, int]:
    """(imported, without CPT codes) encounters of the period that automation does not pick up."""
    row = (await session.execute(_skipped_counts().where(
        Encounter.company_id == company_id, Encounter.service_date.between(date_from, date_to)))).one()
    return int(row[0]), int(row[1])


def _has_billable_line() -> ColumnElement[bool]:
    return exists().where(EncounterLine.encounter_id == Encounter.id, EncounterLine.code.is_not(None))


def _not_automated() -> ColumnElement[bool]:
    # automated_encounter links encounters to automated bills: read as the system, no BillScope (as always).
    return ~exists().where(AutomatedEncounter.encounter_id == Encounter.id)


def _skipped_counts():
    """(imported, without CPT codes) among the encounters automation has not picked up; the caller narrows it."""
    return select(
        func.count().filter(Encounter.imported),
        func.count().filter(~Encounter.imported, ~_has_billable_line()),
    ).select_from(Encounter).where(_not_automated())


async def providers_with_candidates(session: AsyncSession, company_id: uuid.UUID, date_from: date,
                                    date_to: date) -> list[uuid.UUID]:
    return list((await session.execute(
        select(Encounter.provider_id).distinct()
        .where(Encounter.company_id == company_id, ~Encounter.imported,
               Encounter.service_date.between(date_from, date_to), _not_automated())
        .order_by(Encounter.provider_id)
    )).scalars())


async def providers_with_bills(session: AsyncSession, company_id: uuid.UUID) -> list[uuid.UUID]:
    return list((await session.execute(
        select(ProviderBillCount.provider_id)
        .where(ProviderBillCount.company_id == company_id, ProviderBillCount.bill_count > 0)
        .order_by(ProviderBillCount.provider_id)
    )).scalars())


# AutoPay


async def autopay_patients(session: AsyncSession, company_id: uuid.UUID, local_date: date
                           ) -> tuple[dict[uuid.UUID, PaymentCard], dict[str, int]]:
    """Patients who pass every gate (patient toggle, a valid card, the billing contact's AutoPay), each with
    the card to charge (the newest valid one); and how many were stopped at each gate."""
    card = (
        select(PaymentCard.id)
        .where(PaymentCard.patient_id == PatientBillingSettings.patient_id, PaymentCard.active,
               tuple_(PaymentCard.exp_year, PaymentCard.exp_month) >= tuple_(local_date.year, local_date.month))
        .order_by(PaymentCard.created_at.desc(), PaymentCard.id.desc())
        .limit(1)
        .lateral("card")
    )
    rows = (await session.execute(
        select(PatientBillingSettings.patient_id, PatientBillingSettings.autopay_enabled, card.c.id.label("card_id"),
               BillingContact.id.label("contact_id"), BillingContact.autopay_enabled)
        .select_from(PatientBillingSettings)
        .outerjoin(card, true())
        .outerjoin(BillingContact, BillingContact.patient_id == PatientBillingSettings.patient_id)
        .where(PatientBillingSettings.company_id == company_id, PatientBillingSettings.autopay_enabled)
    )).all()
    gates = {"no_valid_payment_method": 0, "billing_contact_autopay_off": 0}
    eligible: dict[uuid.UUID, uuid.UUID] = {}
    for patient_id, _on, card_id, contact_id, contact_autopay in rows:
        if card_id is None:
            gates["no_valid_payment_method"] += 1
        elif contact_id is not None and not contact_autopay:
            gates["billing_contact_autopay_off"] += 1
        else:
            eligible[patient_id] = card_id
    cards_by_id = {}
    if eligible:
        cards_by_id = {c.id: c for c in (await session.execute(
            select(PaymentCard).where(PaymentCard.id.in_(list(set(eligible.values())))))).scalars()}
    return {p: cards_by_id[c] for p, c in eligible.items()}, gates


async def declined_attempts(session: AsyncSession, bill_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, set[date]]]:
    """Per bill: declined charges so far, and the nights already tried."""
    if not bill_ids:
        return {}
    rows = (await session.execute(
        select(AutopayCharge.bill_id, AutopayCharge.status, AutopayCharge.local_date)
        .where(AutopayCharge.bill_id.in_(bill_ids))
    )).all()
    out: dict[uuid.UUID, tuple[int, set[date]]] = {}
    for bill_id, status, night in rows:
        declined, nights = out.get(bill_id, (0, set()))
        out[bill_id] = (declined + (status == ChargeStatus.declined), nights | {night})
    return out


async def deactivate_card(session: AsyncSession, card_id: uuid.UUID) -> None:
    await session.execute(update(PaymentCard).where(PaymentCard.id == card_id).values(active=False)
                          .execution_options(synchronize_session=False))


# Runs


async def claim_run(session: AsyncSession, company_id: uuid.UUID, local_date: date, stage: AutomationStage,
                    trigger: str) -> uuid.UUID | None:
    """Claim (company, date, stage) in the caller's transaction: the id, or None if it is (being) done
    elsewhere. A concurrent claimer waits for the first to commit (then gets None) or roll back (then wins)."""
    statement = (
        insert(AutomationRun)
        .values(id=uuid.uuid4(), company_id=company_id, local_date=local_date, stage=stage, status="running",
                trigger=trigger, counts={}, errors=[])
        .on_conflict_do_nothing(index_elements=["company_id", "local_date", "stage"])
        .returning(AutomationRun.id)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def finish_run(session: AsyncSession, run_id: uuid.UUID, counts: dict[str, Any], errors: list[Any],
                     now: datetime) -> None:
    await session.execute(update(AutomationRun).where(AutomationRun.id == run_id).values(
        status="completed" if not errors else "completed_with_errors", counts=counts, errors=errors,
        finished_at=now).execution_options(synchronize_session=False))


async def get_run(session: AsyncSession, company_id: uuid.UUID, local_date: date,
                  stage: AutomationStage) -> AutomationRun | None:
    return (await session.execute(select(AutomationRun).where(
        AutomationRun.company_id == company_id, AutomationRun.local_date == local_date,
        AutomationRun.stage == stage).execution_options(populate_existing=True))).scalar_one_or_none()


async def claimed_keys(session: AsyncSession, company_id: uuid.UUID, dates: list[date]) -> set[tuple[date, str]]:
    rows = (await session.execute(select(AutomationRun.local_date, AutomationRun.stage).where(
        AutomationRun.company_id == company_id, AutomationRun.local_date.in_(dates)))).all()
    return {(d, AutomationStage(s).value) for d, s in rows}


async def runs(session: AsyncSession, company_id: uuid.UUID, limit: int,
               after: tuple[datetime, uuid.UUID] | None) -> list[AutomationRun]:
    statement = select(AutomationRun).where(AutomationRun.company_id == company_id)
    if after is not None:
        statement = statement.where(func.row(AutomationRun.created_at, AutomationRun.id) < func.row(*after))
    statement = statement.order_by(AutomationRun.created_at.desc(), AutomationRun.id.desc()).limit(limit + 1)
    return list((await session.execute(statement)).scalars())


async def scheduled_companies(session: AsyncSession) -> list[tuple[uuid.UUID, str, int]]:
    """Companies with automation settings: (id, time zone, superbill day)."""
    return [(r[0], r[1], r[2]) for r in (await session.execute(
        select(Company.id, Company.time_zone, CompanyBillingAutomation.superbill_day)
        .join(CompanyBillingAutomation, CompanyBillingAutomation.company_id == Company.id)
        .order_by(Company.id)
    )).all()]


async def patient_skipped_encounters(session: AsyncSession, patient_id: uuid.UUID) -> tuple[int, int]:
    """(imported, without CPT codes) encounters of the patient that automation has not picked up."""
    row = (await session.execute(_skipped_counts().where(Encounter.patient_id == patient_id))).one()
    return int(row[0]), int(row[1])


async def encounters_billed_at(session: AsyncSession, company_id: uuid.UUID, at: datetime) -> int:
    """Encounters linked to automated bills by the stage that ran at `at` (its links carry that time).
    Read as the system, without a BillScope, as always: a count of links, no bill read."""
    return int((await session.execute(
        select(func.count()).select_from(AutomatedEncounter)
        .where(AutomatedEncounter.company_id == company_id, AutomatedEncounter.created_at == at)
    )).scalar_one())


# Documents made by hand (POST /v1/patients/{id}/documents)


async def encounters_for_superbill(session: AsyncSession, patient_id: uuid.UUID, *,
                                   encounter_ids: list[uuid.UUID] | None = None,
                                   period: tuple[date, date] | None = None) -> list[tuple]:
    """(id, company id, patient id, provider id, service date, imported, total of the lines with a CPT code or
    None) of the chosen encounters (whoever's patient they are: the caller checks), or of the patient's
    encounters in the period with a billable line, imported ones included; oldest first. Fees are summed as the
    nightly superbills sum them. Read as the system; the caller decides who may see what."""
    encounter, line = Encounter.__table__, EncounterLine.__table__
    total = (select(func.sum(line.c.units * line.c.fee_cents))
             .where(line.c.encounter_id == encounter.c.id, line.c.code.is_not(None))
             .scalar_subquery())
    statement = select(encounter.c.id, encounter.c.company_id, encounter.c.patient_id, encounter.c.provider_id,
                       encounter.c.service_date, encounter.c.imported, total.label("total"))
    if encounter_ids is not None:
        statement = statement.where(encounter.c.id.in_(encounter_ids))
    else:
        assert period is not None
        statement = statement.where(encounter.c.patient_id == patient_id,
                                    encounter.c.service_date.between(*period), total.is_not(None))
    return [tuple(r) for r in (await session.execute(
        statement.order_by(encounter.c.service_date, encounter.c.id))).all()]


async def add_manual_document(session: AsyncSession, document: BillingDocument) -> bool:
    """Insert a document made by hand under the once-per-patient-and-period rule the nightly run relies on
    (the same unique indexes, as arbiters): False, and nothing written, when the patient already has a document
    of that kind for the period, committed or being committed (the insert waits for a concurrent one)."""
    index = _INDEXES[f"uq_billing_document_{document.kind.value}_period"]
    values = {c.name: getattr(document, c.key) for c in _document.columns if getattr(document, c.key) is not None}
    statement = insert(_document).values(values).on_conflict_do_nothing(constraint=index).returning(_document.c.id)
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def document_for_period(session: AsyncSession, patient_id: uuid.UUID, kind: DocumentKind,
                              period_start: date) -> uuid.UUID | None:
    """The patient's document of this kind for the period (the one the unique index allows)."""
    return (await session.execute(select(BillingDocument.id).where(
        BillingDocument.patient_id == patient_id, BillingDocument.kind == kind,
        BillingDocument.period_start == period_start))).scalar_one_or_none()


async def add_superbill_items(session: AsyncSession, document_id: uuid.UUID, encounters: list[tuple]) -> None:
    session.add_all(SuperbillItem(document_id=document_id, encounter_id=e[0], provider_id=e[3], service_date=e[4],
                                  imported=e[5], total_cents=int(e[6])) for e in encounters)
    await session.flush()


async def add_statement_items(session: AsyncSession, document_id: uuid.UUID, bills: list[tuple]) -> None:
    """The open bills a statement made by hand lists (read under the caller's scope), as they stand now."""
    session.add_all(StatementItem(document_id=document_id, bill_id=b[0], provider_id=b[2], service_date=b[3],
                                  total_cents=b[4], balance_cents=b[5]) for b in bills)
    await session.flush()


async def superbill_items(session: AsyncSession, document_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[SuperbillItem]]:
    """The sessions listed on these superbills made by hand, oldest first."""
    items: dict[uuid.UUID, list[SuperbillItem]] = {}
    if document_ids:
        for item in (await session.execute(
                select(SuperbillItem).where(SuperbillItem.document_id.in_(document_ids))
                .order_by(SuperbillItem.document_id, SuperbillItem.service_date,
                          SuperbillItem.encounter_id))).scalars():
            items.setdefault(item.document_id, []).append(item)
    return items
