"""The nightly run: what is due when (in each company's time zone), the stages, and the worker loop.

Exactly once: each stage of a night claims (company, local date, stage) in `automation_run` with
INSERT ... ON CONFLICT DO NOTHING in the same transaction as its work, so a crash rolls back both and the next
tick redoes it; a second worker's claim waits for the first and then finds the row. Bills are linked one
encounter -> one automated bill (primary key), charges are unique per (bill, night), and sharing moves a
document from `scheduled` to `shared` under `WHERE share_state = 'scheduled'` with SKIP LOCKED.

Statements: on the first night of each month, after AutoPay, one statement per patient who owes: every issued
bill with a balance for services up to the end of the previous month, as it stands after that night's bill
creation and AutoPay (a snapshot of each bill's total and balance), totalled; nothing owed, no statement. At most
one per patient and month (a unique index, beside the run claim). Shared like the other documents, by the
patient's statement sharing and delay.

Daylight saving: a stage is due when the company's local time on a date has passed its hour (00:00 for bills
and superbills, 00:30 for AutoPay and statements), whatever the clock did that night; the claim makes it once
per date even when 00:30 happens twice, and a night whose 00:30 never exists runs at the first instant after it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_api.authz.permissions import Permission
from billing_api.authz.scope import bill_scope
from billing_api.automation import repository
from billing_api.automation.gateway import PaymentGateway, get_gateway
from billing_api.bills.repository import AutomationBillRepository
from billing_api.config import Settings
from billing_api.models import (
    AutomationStage,
    AutopayCharge,
    Bill,
    BillCreation,
    BillSource,
    BillStatus,
    ChargeStatus,
    Payment,
    PaymentMethod,
)
from billing_api.events.schemas import AutopayDeclined, AutopaySucceeded, BillCreated
from billing_api.events.service import emit, payment_events
from billing_api.observability.metrics import stage_timer

logger = logging.getLogger("billing_api.automation")

STAGE_ORDER = (AutomationStage.bills, AutomationStage.autopay, AutomationStage.superbills, AutomationStage.statements)
STAGE_TIMES = {AutomationStage.bills: time(0, 0), AutomationStage.autopay: time(0, 30),
               AutomationStage.superbills: time(0, 0), AutomationStage.statements: time(0, 30)}
# A stage first makes sure the stage it follows has run that night (running it in the same transaction if not).
FOLLOWS = {AutomationStage.autopay: AutomationStage.bills, AutomationStage.statements: AutomationStage.autopay}
STATEMENT_DAY = 1  # statements: the first night of each month, for what is owed at the end of the previous one
DAILY_LOOKBACK_DAYS = 31  # daily bill creation picks up unbilled sessions of the last 31 days (late entries)
CATCH_UP_DAYS = 1         # a worker that was down over midnight still runs yesterday's stages


def local_now(time_zone: str, instant: datetime) -> datetime:
    return instant.astimezone(ZoneInfo(time_zone))


def due_stages(time_zone: str, superbill_day: int, instant: datetime) -> list[tuple[date, AutomationStage]]:
    """Every (local date, stage) whose time has come at `instant` in this zone (today's that have passed their
    hour, and the last CATCH_UP_DAYS days' in full). The caller skips those already claimed."""
    local = local_now(time_zone, instant)
    today = local.date()
    due: list[tuple[date, AutomationStage]] = []
    for back in range(CATCH_UP_DAYS, -1, -1):
        night = today - timedelta(days=back)
        for stage in stages_of_night(night, superbill_day):
            if back == 0 and local.time().replace(tzinfo=None) < STAGE_TIMES[stage]:
                continue
            due.append((night, stage))
    return due


def stages_of_night(night: date, superbill_day: int) -> list[AutomationStage]:
    """The stages a night has, in order: superbills only on the superbill day, statements only on the 1st."""
    return [s for s in STAGE_ORDER if (s != AutomationStage.superbills or night.day == superbill_day)
            and (s != AutomationStage.statements or night.day == STATEMENT_DAY)]


def previous_month(night: date) -> tuple[date, date]:
    end = night.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


@dataclass
class StageOutcome:
    stage: AutomationStage
    outcome: str  # completed | already_run
    run_id: uuid.UUID | None


async def _bills(session: AsyncSession, company_id: uuid.UUID, night: date, now: datetime,
                 counts: dict[str, Any], errors: list[Any]) -> None:
    settings = await repository.company_settings(session, company_id)
    mode = settings.bill_creation if settings is not None else BillCreation.manual
    counts.update(mode=mode.value, bills_created=0, encounters_billed=0, skipped_imported=0, skipped_without_cpt=0)
    if mode == BillCreation.manual:
        return
    if mode == BillCreation.daily:
        date_from, date_to = night - timedelta(days=DAILY_LOOKBACK_DAYS), night - timedelta(days=1)
    else:
        if night.day != 1:
            counts["note"] = "monthly bills are created on the first night of the month"
            return
        date_from, date_to = previous_month(night)
    counts.update(period_start=date_from.isoformat(), period_end=date_to.isoformat())
    counts["skipped_imported"], counts["skipped_without_cpt"] = await repository.skipped_encounters(
        session, company_id, date_from, date_to)
    for provider_id in await repository.providers_with_candidates(session, company_id, date_from, date_to):
        bills = AutomationBillRepository(session, bill_scope(provider_id, Permission.BILLS_SAVE, is_support=False))
        try:
            async with session.begin_nested():
                rows = await bills.create_automated_bills(company_id, date_from, date_to,
                                                          per_patient=mode == BillCreation.monthly, now=now)
        except PermissionError:
            errors.append({"code": "provider_not_permitted", "provider_id": str(provider_id),
                           "detail": "the provider may no longer bill in this company; sessions left unbilled"})
            continue
        counts["bills_created"] += len(rows)
        await emit(session, company_id, *(
            BillCreated(bill_id=bill_id, provider_id=provider_id, patient_id=patient_id, status=BillStatus.submitted,
                        source=BillSource.automation, coverage=coverage, payer_id=payer_id, total_cents=total)
            for bill_id, patient_id, total, _, coverage, payer_id in rows))
        counts["documents_created"] = counts.get("documents_created", 0) + await repository.add_bill_documents(
            session, company_id, rows)
    counts["encounters_billed"] = await repository.encounters_billed_at(session, company_id, now)


async def _superbills(session: AsyncSession, company_id: uuid.UUID, night: date, now: datetime,
                      counts: dict[str, Any], errors: list[Any]) -> None:
    settings = await repository.company_settings(session, company_id)
    if night.day != (settings.superbill_day if settings else 1):
        counts.update(superbills_created=0, note="not the company's superbill day")
        return
    period_start, period_end = previous_month(night)
    counts.update(period_start=period_start.isoformat(), period_end=period_end.isoformat())
    counts["superbills_created"] = await repository.add_superbills(session, company_id, period_start, period_end, now)
    counts["skipped_imported"], counts["skipped_without_cpt"] = await repository.skipped_encounters(
        session, company_id, period_start, period_end)


async def _statements(session: AsyncSession, company_id: uuid.UUID, night: date, now: datetime,
                      counts: dict[str, Any], errors: list[Any]) -> None:
    counts.update(statements_created=0, bills_listed=0, balance_cents=0)
    if night.day != STATEMENT_DAY:
        counts["note"] = "statements are created on the first night of the month"
        return
    period_start, period_end = previous_month(night)
    counts.update(period_start=period_start.isoformat(), period_end=period_end.isoformat())
    open_bills: list[tuple] = []
    for provider_id in await repository.providers_with_bills(session, company_id):
        bills = AutomationBillRepository(session, bill_scope(provider_id, Permission.BILLS_VIEW, is_support=False))
        open_bills += await bills.open_bills_through(company_id, period_end)
    counts["statements_created"], counts["bills_listed"], counts["balance_cents"] = await repository.add_statements(
        session, company_id, period_start, period_end, now, open_bills)


async def _autopay(session: AsyncSession, company_id: uuid.UUID, night: date, now: datetime,
                   counts: dict[str, Any], errors: list[Any], gateway: PaymentGateway, max_attempts: int) -> None:
    settings = await repository.company_settings(session, company_id)
    counts.update(bills_charged=0, amount_charged_cents=0, declined=0, skipped_attempts_exhausted=0,
                  eligible_patients=0)
    if settings is None or not settings.autopay_enabled:
        counts["autopay"] = "off"
        return
    eligible, gates = await repository.autopay_patients(session, company_id, night)
    counts.update(eligible_patients=len(eligible), **gates)
    if not eligible:
        return
    patient_ids = sorted(eligible)
    for provider_id in await repository.providers_with_bills(session, company_id):
        bills = AutomationBillRepository(session, bill_scope(provider_id, Permission.INVOICES_PAY,
                                                             is_support=False))
        outstanding = await bills.outstanding_for_patients(company_id, patient_ids)
        history = await repository.declined_attempts(session, [b.id for b in outstanding])
        charges: list[AutopayCharge] = []
        paid: list[tuple[Bill, Payment, AutopayCharge]] = []
        for bill in outstanding:
            declined, nights = history.get(bill.id, (0, set()))
            if night in nights:
                continue  # charged (or tried) already tonight
            if declined >= max_attempts:
                counts["skipped_attempts_exhausted"] += 1
                continue
            card = eligible[bill.patient_id]
            if not card.active:
                continue  # found expired earlier tonight
            amount = bill.balance_cents
            result = await gateway.charge(card.token, amount, idempotency_key=f"{bill.id}:{night.isoformat()}")
            charge = AutopayCharge(id=uuid.uuid4(), company_id=company_id, bill_id=bill.id, card_id=card.id,
                                   local_date=night, amount_cents=amount, gateway_reference=result.reference,
                                   status=ChargeStatus.succeeded if result.succeeded else ChargeStatus.declined,
                                   decline_reason=result.decline_reason)
            ids = {"bill_id": bill.id, "provider_id": bill.provider_id, "patient_id": bill.patient_id}
            if result.succeeded:
                charge.payment_id = uuid.uuid4()
                paid.append((bill, Payment(id=charge.payment_id, bill_id=bill.id, amount_cents=amount,
                                           method=PaymentMethod.card, reference=result.reference,
                                           recorded_by=None), charge))
                continue
            counts["declined"] += 1
            charges.append(charge)
            if result.card_expired:
                card.active = False
                await repository.deactivate_card(session, card.id)
            await emit(session, company_id, AutopayDeclined(**ids, charge_id=charge.id, amount_cents=amount,
                                                            local_date=night, decline_reason=result.decline_reason,
                                                            card_deactivated=result.card_expired))
        # The provider's payments in two statements (the bills are locked since outstanding_for_patients).
        recorded = await bills.add_payments([(bill, payment) for bill, payment, _ in paid])
        for bill, payment, charge in paid:
            if bill.id not in recorded:
                errors.append({"code": "payment_not_recorded", "bill_id": str(bill.id)})
                continue
            charges.append(charge)
            counts["bills_charged"] += 1
            counts["amount_charged_cents"] += charge.amount_cents
            await emit(session, company_id, *payment_events(bill, payment), AutopaySucceeded(
                bill_id=bill.id, provider_id=bill.provider_id, patient_id=bill.patient_id, charge_id=charge.id,
                payment_id=payment.id, amount_cents=charge.amount_cents, local_date=night))
        session.add_all(charges)
        await session.flush()


async def run_stage(session: AsyncSession, company_id: uuid.UUID, night: date, stage: AutomationStage, *,
                    settings: Settings, now: datetime | None = None, trigger: str = "schedule",
                    gateway: PaymentGateway | None = None) -> StageOutcome:
    """Run one stage of one night in the caller's transaction (the caller commits). AutoPay first makes sure
    the night's bill creation has run, and statements that AutoPay has (in the same transaction), so bills are
    created before AutoPay charges them and statements list what is still owed after it."""
    with stage_timer(stage.value) as timing:
        outcome = await _run_stage(session, company_id, night, stage, settings=settings, now=now, trigger=trigger,
                                   gateway=gateway)
        timing["outcome"] = outcome.outcome
        return outcome


async def _run_stage(session: AsyncSession, company_id: uuid.UUID, night: date, stage: AutomationStage, *,
                     settings: Settings, now: datetime | None, trigger: str,
                     gateway: PaymentGateway | None) -> StageOutcome:
    now = now or datetime.now(UTC)
    follows = FOLLOWS.get(stage)
    if follows is not None and await repository.get_run(session, company_id, night, follows) is None:
        await run_stage(session, company_id, night, follows, settings=settings, now=now, trigger=trigger,
                        gateway=gateway)
    run_id = await repository.claim_run(session, company_id, night, stage, trigger)
    if run_id is None:
        return StageOutcome(stage, "already_run", None)
    counts: dict[str, Any] = {}
    errors: list[Any] = []
    if stage == AutomationStage.bills:
        await _bills(session, company_id, night, now, counts, errors)
    elif stage == AutomationStage.superbills:
        await _superbills(session, company_id, night, now, counts, errors)
    elif stage == AutomationStage.statements:
        await _statements(session, company_id, night, now, counts, errors)
    else:
        await _autopay(session, company_id, night, now, counts, errors, gateway or get_gateway(settings),
                       settings.autopay_max_attempts)
    await repository.finish_run(session, run_id, counts, errors, datetime.now(UTC))
    return StageOutcome(stage, "completed", run_id)


async def run_due(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, instant: datetime,
                  *, gateway: PaymentGateway | None = None) -> dict[str, int]:
    """One scheduler tick: every due, unclaimed stage of every company (each in its own transaction), then the
    documents whose share time has come. Safe with any number of workers at once."""
    stats = {"stages": 0, "already_run": 0, "failed": 0, "shared": 0, "notices": 0}
    async with sessionmaker() as session:
        companies = await repository.scheduled_companies(session)
    for company_id, time_zone, superbill_day in companies:
        due = due_stages(time_zone, superbill_day, instant)
        if not due:
            continue
        async with sessionmaker() as session:
            done = await repository.claimed_keys(session, company_id, sorted({d for d, _ in due}))
        for night, stage in due:
            if (night, stage.value) in done:
                continue
            try:
                async with sessionmaker() as session, session.begin():
                    outcome = await run_stage(session, company_id, night, stage, settings=settings,
                                              gateway=gateway, now=instant)
            except Exception:  # the transaction rolled back: nothing half-done; the next tick retries
                logger.exception("automation stage %s of %s for company %s failed", stage, night, company_id)
                stats["failed"] += 1
                continue
            stats["stages" if outcome.outcome == "completed" else "already_run"] += 1
    async with sessionmaker() as session, session.begin():
        shared, notices = await repository.share_due(session, instant)
    stats["shared"], stats["notices"] = shared, notices
    return stats


async def run(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, stop: asyncio.Event) -> None:
    """The fallback scheduler (BILLING_API_AUTOMATION_SCHEDULER=loop): a tick every `automation_poll_seconds`."""
    if not settings.automation_enabled:
        return
    while not stop.is_set():
        try:
            await run_due(sessionmaker, settings, datetime.now(UTC))
        except Exception:
            logger.exception("automation tick failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.automation_poll_seconds)
        except TimeoutError:
            pass
