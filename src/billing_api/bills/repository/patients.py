"""A patient's billing data as a scope sees it: whose it is, whether the scope sees any of it, and what the
patient owes (for a statement made by hand)."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import bindparam, exists, not_, or_, select, union
from sqlalchemy.dialects.postgresql import UUID

from billing_api.bills.repository.scoped import ScopedRepository
from billing_api.models import Bill, BillStatus, Encounter


def _open_of_patient() -> tuple:
    # Owed, as the nightly statements count it: issued bills with a balance for services up to the period's end.
    return (Bill.company_id == bindparam("company_id", type_=UUID(as_uuid=True)),
            Bill.patient_id == bindparam("patient_id", type_=UUID(as_uuid=True)),
            Bill.status == BillStatus.submitted, Bill.balance_cents > 0,
            Bill.service_date <= bindparam("service_date_to"))


class PatientBillAccess(ScopedRepository):
    async def providers_of_patient(self, patient_id: uuid.UUID) -> list[uuid.UUID]:
        """The providers whose billing data a patient's documents and settings are: those who bill the patient
        (bills this scope sees) or treat them (encounters). For auditing support's reads."""
        statement = self._statement("providers_of_patient", build=lambda: union(
            select(Bill.provider_id).where(Bill.patient_id == bindparam("patient_id", type_=UUID(as_uuid=True)),
                                           self._visible()),
            select(Encounter.provider_id).where(
                Encounter.patient_id == bindparam("patient_id", type_=UUID(as_uuid=True))),
        ).order_by("provider_id"))
        return list((await self._run(statement, patient_id=patient_id)).scalars())

    async def sources_for_patient(self, patient_id: uuid.UUID) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(provider_id, company_id) of the patient's bills this scope sees (for the access log)."""
        statement = self._statement("sources_for_patient", build=lambda: (
            select(Bill.provider_id, Bill.company_id)
            .where(Bill.patient_id == bindparam("patient_id", type_=UUID(as_uuid=True)), self._visible())
            .distinct()
        ))
        return [(p, c) for p, c in (await self._run(statement, patient_id=patient_id)).all()]

    async def sees_patient(self, patient_id: uuid.UUID, company_id: uuid.UUID) -> bool:
        """May this scope see the bill data of this patient: support (view), company-wide access to the
        patient's company, or a granted provider who bills or treats the patient."""
        statement = self._statement("sees_patient", build=lambda: select(or_(
            self.scope.sees_all(),
            bindparam("company_id", type_=UUID(as_uuid=True)).in_(self.scope.companies()),
            exists().where(Bill.patient_id == bindparam("patient_id", type_=UUID(as_uuid=True)),
                           Bill.provider_id.in_(self.scope.providers())),
            exists().where(Encounter.patient_id == bindparam("patient_id", type_=UUID(as_uuid=True)),
                           Encounter.provider_id.in_(self.scope.providers())),
        )))
        return bool((await self._run(statement, company_id=company_id, patient_id=patient_id)).scalar_one())

    async def open_bills_of_patient(self, company_id: uuid.UUID, patient_id: uuid.UUID,
                                    service_date_to: date) -> tuple[list[tuple], bool]:
        """The patient's open bills this scope covers, (bill id, patient id, provider id, service date, total
        cents, balance cents), oldest service first; and whether the patient owes on any bill the scope does not
        cover (a yes or no, nothing of it shown: a statement made by hand would list it, so the caller may not)."""
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
