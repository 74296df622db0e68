"""All SQL of billing automation that is not bill SQL (bill SQL is in bills/repository.py, with a BillScope)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.models import (
    AutomationRun,
    AutomationStage,
    AutopayCharge,
    BillingContact,
    BillingDocument,
    ChargeStatus,
    Company,
    CompanyBillingAutomation,
    PatientBillingSettings,
    PaymentCard,
    ProviderBillCount,
    ShareState,
    StatementItem,
)

# Settings


async def company_settings(session: AsyncSession, company_id: uuid.UUID) -> CompanyBillingAutomation | None:
    return await session.get(CompanyBillingAutomation, company_id)


async def patient_settings(session: AsyncSession, patient_id: uuid.UUID) -> PatientBillingSettings | None:
    return await session.get(PatientBillingSettings, patient_id)


async def billing_contact(session: AsyncSession, patient_id: uuid.UUID) -> BillingContact | None:
    return (await session.execute(select(BillingContact).where(BillingContact.patient_id == patient_id))
            ).scalar_one_or_none()


async def delete_billing_contact(session: AsyncSession, patient_id: uuid.UUID) -> None:
    await session.execute(text("DELETE FROM billing_contact WHERE patient_id = :p"), {"p": patient_id})


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
    values = {c: getattr(company, c) for c in _DEFAULT_COLUMNS}
    result = await session.execute(text(f"""
        INSERT INTO patient_billing_settings (patient_id, company_id, superbills_enabled, autopay_enabled,
                                              {", ".join(_DEFAULT_COLUMNS)}, updated_at)
        SELECT p.id, p.company_id, false, false, {", ".join(":" + c for c in _DEFAULT_COLUMNS)}, now()
          FROM patient p WHERE p.company_id = :company_id
        ON CONFLICT (patient_id) DO UPDATE SET
            {", ".join(f"{c} = EXCLUDED.{c}" for c in _DEFAULT_COLUMNS)}, updated_at = now()
    """), {"company_id": company.company_id, **values})
    return result.rowcount


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


async def add_bill_documents(session: AsyncSession, company_id: uuid.UUID,
                             rows: list[tuple[uuid.UUID, uuid.UUID, int, datetime]]) -> int:
    """One `bill` document per new bill, scheduled for sharing by the patient's own settings."""
    if not rows:
        return 0
    result = await session.execute(text("""
        INSERT INTO billing_document (id, company_id, patient_id, kind, bill_id, total_cents, share_state, share_at,
                                      created_at)
        SELECT gen_random_uuid(), :company_id, r.patient_id, 'bill', r.bill_id, r.total,
               CASE WHEN s.share_bills THEN 'scheduled' ELSE 'not_shared' END::document_share_state,
               CASE WHEN s.share_bills THEN r.created_at + make_interval(mins => s.bill_delay_minutes) END,
               r.created_at
          FROM unnest(CAST(:bill_ids AS uuid[]), CAST(:patient_ids AS uuid[]), CAST(:totals AS integer[]),
                      CAST(:created AS timestamptz[])) AS r(bill_id, patient_id, total, created_at)
          LEFT JOIN patient_billing_settings s ON s.patient_id = r.patient_id
    """), {"company_id": company_id, "bill_ids": [r[0] for r in rows], "patient_ids": [r[1] for r in rows],
           "totals": [r[2] for r in rows], "created": [r[3] for r in rows]})
    return result.rowcount


async def add_superbills(session: AsyncSession, company_id: uuid.UUID, period_start: date, period_end: date,
                         now: datetime) -> int:
    """A superbill for the period for each patient with superbills on and billable, non-imported sessions in it
    (at most one per patient and period: a unique index)."""
    result = await session.execute(text("""
        INSERT INTO billing_document (id, company_id, patient_id, kind, period_start, period_end, total_cents,
                                      share_state, share_at, created_at)
        SELECT gen_random_uuid(), :company_id, s.patient_id, 'superbill', :period_start, :period_end, t.total,
               CASE WHEN s.share_superbills THEN 'scheduled' ELSE 'not_shared' END::document_share_state,
               CASE WHEN s.share_superbills THEN CAST(:now AS timestamptz)
                                                 + make_interval(mins => s.superbill_delay_minutes) END,
               :now
          FROM patient_billing_settings s
          JOIN LATERAL (
              SELECT sum(l.units * l.fee_cents) AS total
                FROM encounter e JOIN encounter_line l ON l.encounter_id = e.id AND l.cpt_code IS NOT NULL
               WHERE e.patient_id = s.patient_id AND e.company_id = :company_id AND NOT e.imported
                 AND e.service_date BETWEEN :period_start AND :period_end
          ) t ON t.total IS NOT NULL
         WHERE s.company_id = :company_id AND s.superbills_enabled
        ON CONFLICT (patient_id, period_start) WHERE kind = 'superbill' DO NOTHING
    """), {"company_id": company_id, "period_start": period_start, "period_end": period_end, "now": now})
    return result.rowcount


async def add_statements(session: AsyncSession, company_id: uuid.UUID, period_start: date, period_end: date,
                         now: datetime, open_bills: list[tuple]) -> tuple[int, int, int]:
    """A statement for the period for each patient among `open_bills` (bill id, patient id, provider id, service
    date, total, balance: read under each provider's scope), listing those bills and totalling their balances
    (at most one per patient and period: a unique index). Returns (statements, bills listed, balance)."""
    if not open_bills:
        return 0, 0, 0
    columns = list(zip(*open_bills))
    row = (await session.execute(text("""
        WITH item AS MATERIALIZED (
            SELECT * FROM unnest(CAST(:bill_ids AS uuid[]), CAST(:patient_ids AS uuid[]),
                                 CAST(:provider_ids AS uuid[]), CAST(:service_dates AS date[]),
                                 CAST(:totals AS integer[]), CAST(:balances AS integer[]))
                   AS i(bill_id, patient_id, provider_id, service_date, total_cents, balance_cents)
        ),
        docs AS (
            INSERT INTO billing_document (id, company_id, patient_id, kind, period_start, period_end, total_cents,
                                          share_state, share_at, created_at)
            SELECT gen_random_uuid(), :company_id, o.patient_id, 'statement', :period_start, :period_end, o.balance,
                   CASE WHEN s.share_statements THEN 'scheduled' ELSE 'not_shared' END::document_share_state,
                   CASE WHEN s.share_statements THEN CAST(:now AS timestamptz)
                                                     + make_interval(mins => s.statement_delay_minutes) END,
                   :now
              FROM (SELECT patient_id, sum(balance_cents) AS balance FROM item GROUP BY patient_id) o
              LEFT JOIN patient_billing_settings s ON s.patient_id = o.patient_id
            ON CONFLICT (patient_id, period_start) WHERE kind = 'statement' DO NOTHING
            RETURNING id, patient_id, total_cents
        ),
        items AS (
            INSERT INTO statement_item (document_id, bill_id, provider_id, service_date, total_cents, balance_cents)
            SELECT d.id, i.bill_id, i.provider_id, i.service_date, i.total_cents, i.balance_cents
              FROM docs d JOIN item i ON i.patient_id = d.patient_id
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM docs), (SELECT count(*) FROM items),
               (SELECT coalesce(sum(total_cents), 0) FROM docs)
    """), {"company_id": company_id, "period_start": period_start, "period_end": period_end, "now": now,
           "bill_ids": list(columns[0]), "patient_ids": list(columns[1]), "provider_ids": list(columns[2]),
           "service_dates": list(columns[3]), "totals": list(columns[4]), "balances": list(columns[5])})).one()
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
    company_filter = "AND company_id = :company_id" if company_id is not None else ""
    result = await session.execute(text(f"""
        WITH due AS (
            SELECT id FROM billing_document
             WHERE share_state = 'scheduled' AND share_at <= :now {company_filter}
             ORDER BY share_at LIMIT :limit FOR UPDATE SKIP LOCKED
        ),
        shared AS (
            UPDATE billing_document d SET share_state = 'shared', shared_at = :now
              FROM due WHERE d.id = due.id AND d.share_state = 'scheduled'
            RETURNING d.id, d.company_id, d.patient_id, d.kind, d.total_cents
        ),
        notices AS (
            INSERT INTO mail_outbox (id, template, to_address, context, status, attempts, next_attempt_at, created_at)
            SELECT gen_random_uuid(), 'document_shared', coalesce(bc.email, s.notice_email),
                   jsonb_build_object('document_id', sh.id, 'kind', sh.kind, 'total_cents', sh.total_cents,
                                      'patient_name', p.first_name || ' ' || p.last_name, 'company_name', c.name),
                   'queued', 0, now(), now()
              FROM shared sh
              JOIN patient p ON p.id = sh.patient_id
              JOIN company c ON c.id = sh.company_id
              LEFT JOIN patient_billing_settings s ON s.patient_id = sh.patient_id
              LEFT JOIN billing_contact bc ON bc.patient_id = sh.patient_id
             WHERE coalesce(bc.email, s.notice_email) IS NOT NULL
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM shared), (SELECT count(*) FROM notices)
    """), {"now": now, "limit": limit, **({"company_id": company_id} if company_id is not None else {})})
    shared, notices = result.one()
    return int(shared), int(notices)


# Encounters the run leaves alone (for the report)


async def skipped_encounters(session: AsyncSession, company_id: uuid.UUID, date_from: date,
                             date_to: date) -> tuple[int, int]:
    """(imported, without CPT codes) encounters of the period that automation does not pick up."""
    row = (await session.execute(text("""
        SELECT count(*) FILTER (WHERE e.imported),
               count(*) FILTER (WHERE NOT e.imported AND NOT EXISTS (
                   SELECT 1 FROM encounter_line l WHERE l.encounter_id = e.id AND l.cpt_code IS NOT NULL))
          FROM encounter e
         WHERE e.company_id = :company_id AND e.service_date BETWEEN :date_from AND :date_to
           AND NOT EXISTS (SELECT 1 FROM automated_encounter a WHERE a.encounter_id = e.id)
    """), {"company_id": company_id, "date_from": date_from, "date_to": date_to})).one()
    return int(row[0]), int(row[1])


async def providers_with_candidates(session: AsyncSession, company_id: uuid.UUID, date_from: date,
                                    date_to: date) -> list[uuid.UUID]:
    return list((await session.execute(text("""
        SELECT DISTINCT e.provider_id FROM encounter e
         WHERE e.company_id = :company_id AND NOT e.imported AND e.service_date BETWEEN :date_from AND :date_to
           AND NOT EXISTS (SELECT 1 FROM automated_encounter a WHERE a.encounter_id = e.id)
         ORDER BY 1
    """), {"company_id": company_id, "date_from": date_from, "date_to": date_to})).scalars())


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
    rows = (await session.execute(text("""
        SELECT s.patient_id, s.autopay_enabled, card.id AS card_id, bc.id AS contact_id, bc.autopay_enabled
          FROM patient_billing_settings s
          LEFT JOIN LATERAL (
              SELECT c.id FROM payment_card c
               WHERE c.patient_id = s.patient_id AND c.active
                 AND (c.exp_year, c.exp_month) >= (:year, :month)
               ORDER BY c.created_at DESC, c.id DESC LIMIT 1
          ) card ON true
          LEFT JOIN billing_contact bc ON bc.patient_id = s.patient_id
         WHERE s.company_id = :company_id AND s.autopay_enabled
    """), {"company_id": company_id, "year": local_date.year, "month": local_date.month})).all()
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
    row = (await session.execute(text("""
        SELECT count(*) FILTER (WHERE imported),
               count(*) FILTER (WHERE NOT imported AND NOT EXISTS (SELECT 1 FROM encounter_line l
                                WHERE l.encounter_id = encounter.id AND l.cpt_code IS NOT NULL))
          FROM encounter WHERE patient_id = :p AND NOT EXISTS (
               SELECT 1 FROM automated_encounter a WHERE a.encounter_id = encounter.id)
    """), {"p": patient_id})).one()
    return int(row[0]), int(row[1])


async def encounters_billed_at(session: AsyncSession, company_id: uuid.UUID, at: datetime) -> int:
    """Encounters linked to automated bills by the stage that ran at `at` (its links carry that time)."""
    return int((await session.execute(text(
        "SELECT count(*) FROM automated_encounter WHERE company_id = :c AND created_at = :at"),
        {"c": company_id, "at": at})).scalar_one())
