"""Reports, invoices and payments. Access is the bill scope's: the provider's bills are visible (404
otherwise), then the permission at hand is checked (403), and every statement carries the scope."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.access_log.service import ReadLog
from billing_api.audit.service import record
from billing_api.auth.principal import Principal
from billing_api.authz.scope import BillScope
from billing_api.bills.repository import BillRepository, LedgerRepository
from billing_api.bills.service import shown as bills_shown
from billing_api.errors import Conflict, Forbidden, NotFound, Unprocessable
from billing_api.events.service import emit, payment_events
from billing_api.identity import repository as identity_repository
from billing_api.invoices.schemas import (
    BillingSummary,
    CoverageTotals,
    InvoiceRead,
    PatientTotals,
    PayerTotals,
    PaymentCreate,
    PaymentRead,
    PaymentResult,
    StatusTotals,
    SummaryCell,
    Totals,
)
from billing_api.models import Bill, BillStatus, Coverage, Patient, Payer, Payment, User

PAYER_OF = {Coverage.insured: "insurer", Coverage.private: "patient"}


def _denied(scope: BillScope, detail: str) -> Forbidden:
    return Forbidden(detail, code="permission_denied", extra={"permission": scope.permission.value})


async def provider_in_scope(session: AsyncSession, view: BillScope, needed: BillScope,
                            provider_id: uuid.UUID) -> User:
    """The provider, when the caller sees their bills (else 404) and may use `needed` on them (else 403)."""
    provider = await identity_repository.get_user(session, provider_id)
    if provider is None or not provider.is_provider or not await BillRepository(session, view).permits(
        provider.id, provider.company_id
    ):
        raise NotFound("No such provider.", code="provider_not_found")
    if not await BillRepository(session, needed).permits(provider.id, provider.company_id):
        raise _denied(needed, f"You may see this provider's bills, but not use {needed.permission.value} on them.")
    return provider


def _totals(rows) -> dict:
    return {"bill_count": sum(r[2] for r in rows), "total_cents": sum(r[3] for r in rows),
            "paid_cents": sum(r[3] - r[4] for r in rows), "balance_cents": sum(r[4] for r in rows)}


async def billing_summary(session: AsyncSession, log: ReadLog, view: BillScope,
                          reports: BillScope, provider_id: uuid.UUID, date_from: date, date_to: date
                          ) -> BillingSummary:
    if date_from > date_to:
        raise Unprocessable("`from` is after `to`.", code="invalid_date_range", extra={"field": "from"})
    provider = await provider_in_scope(session, view, reports, provider_id)
    repository = LedgerRepository(session, reports)
    rows = await repository.summary_by_status_and_coverage(provider.id, date_from, date_to)
    payers = await repository.summary_by_payer(provider.id, date_from, date_to)
    patients = await repository.summary_by_patient(provider.id, date_from, date_to)

    def grouped(key) -> dict:
        groups: dict = defaultdict(list)
        for row in rows:
            groups[key(row)].append(row)
        return groups

    await log.record(reports, "billing_summary_report", [(provider.id, provider.company_id, patient.id)
                                                         for patient, *_ in patients],
                     record_count=sum(n for _, n, _, _ in patients),
                     support_details={"date_from": date_from.isoformat(), "date_to": date_to.isoformat()},
                     about=(provider.id, provider.company_id))
    return BillingSummary(
        provider_id=provider.id, provider_name=provider.display_name, date_from=date_from, date_to=date_to,
        generated_at=datetime.now(UTC), totals=Totals(**_totals(rows)),
        by_status=[StatusTotals(status=s, **_totals(g)) for s, g in grouped(lambda r: r[0]).items()],
        by_coverage=[CoverageTotals(coverage=c, **_totals(g)) for c, g in grouped(lambda r: r[1]).items()],
        by_payer=[PayerTotals(payer=PAYER_OF[coverage], payer_id=payer_id, payer_name=name, bill_count=n,
                              total_cents=total, paid_cents=total - balance, balance_cents=balance)
                  for coverage, payer_id, name, n, total, balance in payers],
        cells=[SummaryCell(status=s, coverage=c, payer=PAYER_OF[c], **_totals([(s, c, n, t, b)]))
               for s, c, n, t, b in rows],
        patients=[PatientTotals(patient_id=p.id, first_name=p.first_name, last_name=p.last_name,
                                date_of_birth=p.date_of_birth, bill_count=n, total_cents=t,
                                paid_cents=t - b, balance_cents=b)
                  for p, n, t, b in patients],
    )


def _invoice(bill: Bill, patient: Patient, payer_name: str | None, payments: list[Payment]) -> InvoiceRead:
    return InvoiceRead(
        bill_id=bill.id, provider_id=bill.provider_id, company_id=bill.company_id, patient_id=bill.patient_id,
        patient_name=f"{patient.first_name} {patient.last_name}", coverage=bill.coverage,
        payer=PAYER_OF[bill.coverage], payer_id=bill.payer_id, payer_name=payer_name, status=bill.status,
        service_date=bill.service_date,
        submitted_at=bill.submitted_at, total_cents=bill.total_cents,
        paid_cents=bill.total_cents - bill.balance_cents, balance_cents=bill.balance_cents,
        payments=[PaymentRead.model_validate(p) for p in payments], created_at=bill.created_at,
    )


async def invoice_page(session: AsyncSession, log: ReadLog, view: BillScope,
                       invoices: BillScope, provider_id: uuid.UUID, limit: int, after, outstanding_only: bool,
                       payer_id: uuid.UUID | None = None) -> tuple[list[InvoiceRead], list[Bill]]:
    provider = await provider_in_scope(session, view, invoices, provider_id)
    repository = LedgerRepository(session, invoices)
    rows = await repository.invoice_page(provider.id, limit, after, outstanding_only=outstanding_only,
                                         payer_id=payer_id)
    shown = rows[:limit]
    payments = await repository.payments([bill.id for bill, _, _ in shown])
    await log.record(invoices, "invoices", bills_shown([bill for bill, _, _ in shown]))
    return ([_invoice(bill, patient, payer, payments.get(bill.id, [])) for bill, patient, payer in shown],
            [bill for bill, _, _ in rows])


async def record_payment(session: AsyncSession, principal: Principal, view: BillScope, pay: BillScope,
                         bill_id: uuid.UUID, data: PaymentCreate) -> PaymentResult:
    """Not visible: 404. Visible without invoices:pay: 403. Not submitted: 409. More than the balance: 422."""
    if await BillRepository(session, view).get(bill_id) is None:
        raise NotFound("No such bill.", code="bill_not_found")
    bill = await BillRepository(session, pay).get(bill_id, for_update=True)
    if bill is None:
        raise _denied(pay, "You may see this bill but not record payments on it.")
    if bill.status != BillStatus.submitted:
        raise Conflict(f"The bill is {bill.status.value}; payments are recorded on submitted bills only.",
                       code="bill_not_payable", extra={"bill_status": bill.status.value})
    if data.amount_cents > bill.balance_cents:
        raise Unprocessable("The amount is more than the balance.", code="payment_exceeds_balance",
                            extra={"field": "amount_cents", "balance_cents": bill.balance_cents})
    payment = Payment(id=uuid.uuid4(), bill_id=bill.id, amount_cents=data.amount_cents, method=data.method,
                      reference=data.reference, recorded_by=principal.id, created_at=datetime.now(UTC))
    if not await LedgerRepository(session, pay).add_payment(bill, payment):
        raise Conflict("The bill changed while the payment was recorded; nothing was saved.",
                       code="bill_changed")
    record(session, principal, "payment.recorded", company_id=bill.company_id, target_type="bill",
           target_id=bill.id, details={"payment_id": str(payment.id), "amount_cents": payment.amount_cents,
                                       "method": payment.method.value, "balance_cents": bill.balance_cents,
                                       "provider_id": str(bill.provider_id)})
    await emit(session, bill.company_id, *payment_events(bill, payment))
    patient = await session.get(Patient, bill.patient_id)
    payer = await session.get(Payer, bill.payer_id) if bill.payer_id is not None else None
    payments = (await LedgerRepository(session, pay).payments([bill.id])).get(bill.id, [])
    return PaymentResult(payment=PaymentRead.model_validate(payment),
                         invoice=_invoice(bill, patient, payer.name if payer else None, payments))
