"""Reports, invoices and payments. The scope is the repository's: REPORTS_GENERATE, INVOICES_VIEW or
INVOICES_PAY, so a row the caller may not use that way is never read or changed."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime

from sqlalchemy import ColumnElement, Select, bindparam, func, select, update
from sqlalchemy.orm.attributes import set_committed_value

from billing_api.bills.repository.dashboard import conditions, newest_first, page_limit
from billing_api.bills.repository.scoped import ScopedRepository
from billing_api.models import Bill, BillStatus, Coverage, Patient, Payer, Payment


class LedgerRepository(ScopedRepository):
    def _summary_conditions(self) -> list[ColumnElement[bool]]:
        return [Bill.provider_id == bindparam("provider_id"),
                Bill.service_date >= bindparam("date_from"), Bill.service_date <= bindparam("date_to"),
                self._visible()]

    async def summary_by_status_and_coverage(
        self, provider_id: uuid.UUID, date_from: date, date_to: date
    ) -> list[tuple[BillStatus, Coverage, int, int, int]]:
        """(status, coverage, bills, total cents, balance cents) of the provider's bills with a service date
        in [date_from, date_to]."""
        statement = self._statement("summary_by_status_and_coverage", build=lambda: (
            select(Bill.status, Bill.coverage, func.count(), func.coalesce(func.sum(Bill.total_cents), 0),
                   func.coalesce(func.sum(Bill.balance_cents), 0))
            .where(*self._summary_conditions())
            .group_by(Bill.status, Bill.coverage)
            .order_by(Bill.status, Bill.coverage)
        ))
        rows = await self._run(statement, provider_id=provider_id, date_from=date_from, date_to=date_to)
        return [(status, coverage, int(n), int(total), int(balance)) for status, coverage, n, total, balance in rows]

    async def summary_by_payer(
        self, provider_id: uuid.UUID, date_from: date, date_to: date
    ) -> list[tuple[Coverage, uuid.UUID | None, str | None, int, int, int]]:
        """(coverage, payer id, payer name, bills, total cents, balance cents) per payer: insurers by name, then
        insured bills naming none, then private bills."""
        statement = self._statement("summary_by_payer", build=lambda: (
            select(Bill.coverage, Bill.payer_id, Payer.name, func.count(), func.coalesce(func.sum(Bill.total_cents), 0),
                   func.coalesce(func.sum(Bill.balance_cents), 0))
            .outerjoin(Payer, Payer.id == Bill.payer_id)
            .where(*self._summary_conditions())
            .group_by(Bill.coverage, Bill.payer_id, Payer.name)
            .order_by(Bill.coverage, Payer.name.nulls_last(), Bill.payer_id)
        ))
        rows = await self._run(statement, provider_id=provider_id, date_from=date_from, date_to=date_to)
        return [(coverage, payer_id, name, int(n), int(total), int(balance))
                for coverage, payer_id, name, n, total, balance in rows]

    async def summary_by_patient(
        self, provider_id: uuid.UUID, date_from: date, date_to: date
    ) -> list[tuple[Patient, int, int, int]]:
        """(patient, bills, total cents, balance cents) per patient, by name: the report's patient lines."""
        statement = self._statement("summary_by_patient", build=lambda: (
            select(Patient, func.count(Bill.id), func.coalesce(func.sum(Bill.total_cents), 0),
                   func.coalesce(func.sum(Bill.balance_cents), 0))
            .join(Bill, Bill.patient_id == Patient.id)
            .where(*self._summary_conditions())
            .group_by(Patient.id)
            .order_by(Patient.last_name, Patient.first_name, Patient.id)
        ))
        rows = await self._run(statement, provider_id=provider_id, date_from=date_from, date_to=date_to)
        return [(patient, int(n), int(total), int(balance)) for patient, n, total, balance in rows]

    async def invoice_page(
        self, provider_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None, *,
        outstanding_only: bool = False, payer_id: uuid.UUID | None = None,
    ) -> list[tuple[Bill, Patient, str | None]]:
        """The provider's invoiced bills (submitted or paid), newest first, limit + 1, with their patients and
        payers' names; `payer_id`: only those sent to that payer."""
        keyset, by_payer = after is not None, payer_id is not None

        def build() -> Select:
            statement = (
                select(Bill, Patient, Payer.name)
                .join(Patient, Patient.id == Bill.patient_id)
                .outerjoin(Payer, Payer.id == Bill.payer_id)
                .where(Bill.provider_id == bindparam("provider_id"),
                       Bill.status.in_([BillStatus.submitted, BillStatus.paid]),
                       self._visible(), *conditions(Bill, (), keyset))
            )
            if outstanding_only:
                statement = statement.where(Bill.balance_cents > 0)
            if by_payer:
                statement = statement.where(Bill.payer_id == bindparam("payer_id"))
            return statement.order_by(*newest_first(Bill)).limit(page_limit())

        statement = self._statement("invoice_page", keyset, outstanding_only, by_payer, build=build)
        params: dict[str, object] = {"provider_id": provider_id, "page_limit": limit + 1}
        if after is not None:
            params["after_created_at"], params["after_id"] = after
        if by_payer:
            params["payer_id"] = payer_id
        return [(bill, patient, payer) for bill, patient, payer in (await self._run(statement, **params)).all()]

    async def payments(self, bill_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Payment]]:
        """Payments of bills this scope can see, oldest first (the join repeats the scope)."""
        if not bill_ids:
            return {}
        statement = self._statement("payments", build=lambda: (
            select(Payment)
            .join(Bill, Bill.id == Payment.bill_id)
            .where(Payment.bill_id.in_(bindparam("bill_ids", expanding=True)), self._visible())
            .order_by(Payment.bill_id, Payment.created_at, Payment.id)
        ))
        by_bill: dict[uuid.UUID, list[Payment]] = defaultdict(list)
        for payment in (await self._run(statement, bill_ids=bill_ids)).scalars():
            by_bill[payment.bill_id].append(payment)
        return by_bill

    async def add_payment(self, bill: Bill, payment: Payment) -> bool:
        """Take `payment` off the balance of `bill` (locked by the caller, with this scope): the bill becomes
        `paid` at zero. The update re-checks the scope, that the bill is submitted and that the balance is
        still the one read; False (and nothing written) otherwise."""
        balance = bill.balance_cents - payment.amount_cents
        if payment.bill_id != bill.id or payment.amount_cents <= 0 or balance < 0:
            return False
        status = BillStatus.paid if balance == 0 else BillStatus.submitted
        statement = self._statement("add_payment", build=lambda: (
            update(Bill)
            .where(Bill.id == bindparam("bill_id"), Bill.status == BillStatus.submitted,
                   Bill.balance_cents == bindparam("balance_before"), self._visible())
            .values(balance_cents=bindparam("balance_after"), status=bindparam("status_after"))
            .returning(Bill.updated_at)
            .execution_options(synchronize_session=False)
        ))
        row = (await self._run(statement, bill_id=bill.id, balance_before=bill.balance_cents,
                               balance_after=balance, status_after=status)).first()
        if row is None:
            return False
        set_committed_value(bill, "balance_cents", balance)
        set_committed_value(bill, "status", status)
        set_committed_value(bill, "updated_at", row[0])
        self.session.add(payment)
        await self.session.flush()
        return True
