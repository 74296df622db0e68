"""The bills a statement made by hand lists: a patient's open bills as the caller's scope sees them, and whether
the patient owes on bills that scope does not cover (then the caller may not make the statement: it would list
them)."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import bindparam, exists, not_, select
from sqlalchemy.dialects.postgresql import UUID

from billing_api.bills.repository.scoped import ScopedRepository
from billing_api.models import Bill, BillStatus


def _open_of_patient():
    # Owed, as the nightly statements count it: issued bills with a balance for services up to the period's end.
    return (Bill.company_id == bindparam("company_id", type_=UUID(as_uuid=True)),
            Bill.patient_id == bindparam("patient_id", type_=UUID(as_uuid=True)),
            Bill.status == BillStatus.submitted, Bill.balance_cents > 0,
            Bill.service_date <= bindparam("service_date_to"))


class DocumentBillRepository(ScopedRepository):
    async def open_bills_of_patient(self, company_id: uuid.UUID, patient_id: uuid.UUID,
                                    service_date_to: date) -> tuple[list[tuple], bool]:
        """The patient's open bills this scope covers, (bill id, patient id, provider id, service date, total
        cents, balance cents), oldest service first; and whether any other open bill of the patient exists (a
        yes or no, nothing of it shown)."""
        statement = self._statement("open_bills_of_patient", build=lambda: (
            select(Bill.id, Bill.patient_id, Bill.provider_id, Bill.service_date, Bill.total_cents,
                   Bill.balance_cents)
            .where(*_open_of_patient(), self._visible())
            .order_by(Bill.service_date, Bill.id)
        ))
        others = self._statement("others_open_of_patient", build=lambda: select(
            exists().where(*_open_of_patient(), not_(self._visible()))))
        params = {"company_id": company_id, "patient_id": patient_id, "service_date_to": service_date_to}
        rows = [tuple(r) for r in (await self._run(statement, **params)).all()]
        return rows, bool((await self._run(others, **params)).scalar_one())
