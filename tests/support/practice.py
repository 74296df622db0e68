"""The `practice` world: two practices of two companies (Maple Clinic and Lakes Practice), each with a provider,
a patient and bills, for the team, invitation, mail and invoice tests; `add_bill` for more bills, and a snapshot of
every table the team, invitation and payment flows write to. The `practice` fixture is the root conftest's; tests
that commit for real (`live`) call `build_practice` themselves."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import text

from billing_api.models import Bill, BillLine, BillStatus, Company, Coverage, Patient, User
from tests.factories import Factory


async def add_bill(factory: Factory, company: Company, provider: User, patient: Patient, *,
                   coverage: Coverage = Coverage.insured, status: BillStatus = BillStatus.draft,
                   total: int = 12000, balance: int | None = None, service_date: date = date(2026, 11, 2)) -> Bill:
    bill = Bill(id=uuid.uuid4(), company_id=company.id, provider_id=provider.id, patient_id=patient.id,
                coverage=coverage, status=status, service_date=service_date, total_cents=total,
                balance_cents=total if balance is None else balance)
    factory.session.add(bill)
    await factory.session.flush()
    factory.session.add(BillLine(id=uuid.uuid4(), bill_id=bill.id, position=0, code_system="cpt", code="99213",
                                 description="Office visit", units=1, fee_cents=total))
    await factory.session.flush()
    return bill


@dataclass
class Practice:
    """Two practices of different companies, each with a provider and bills, for inviting people into."""

    clinic: Company
    dr_a: User
    other_provider: User
    patient_a: Patient
    draft_a: Bill
    spare_draft_a: Bill
    submitted_a: Bill
    other_bill: Bill
    lakes: Company
    dr_b: User
    patient_b: Patient
    draft_b: Bill
    submitted_b: Bill


async def build_practice(factory: Factory) -> Practice:
    """The `practice`: Maple Clinic with Dr Ada (a draft, a private draft and a submitted bill) and Dr Other (a
    draft), for patient Pat Able; Lakes Practice with Dr Bea (a draft and a submitted bill) for Quinn Brook. No
    delegation lists and no administrators: the tests invite the people they need."""
    session = factory.session
    clinic = await factory.company("Maple Clinic")  # segregation off: invited users still get no company-wide
    lakes = await factory.company("Lakes Practice")
    dr_a = await factory.user(clinic, name="Dr Ada", provider=True)
    other = await factory.user(clinic, name="Dr Other", provider=True)
    dr_b = await factory.user(lakes, name="Dr Bea", provider=True)
    patient_a = Patient(id=uuid.uuid4(), company_id=clinic.id, first_name="Pat", last_name="Able",
                        date_of_birth=date(1980, 5, 17))
    patient_b = Patient(id=uuid.uuid4(), company_id=lakes.id, first_name="Quinn", last_name="Brook",
                        date_of_birth=date(1975, 1, 2))
    session.add_all([patient_a, patient_b])
    await session.flush()
    return Practice(
        clinic=clinic, dr_a=dr_a, other_provider=other, patient_a=patient_a,
        draft_a=await add_bill(factory, clinic, dr_a, patient_a),
        spare_draft_a=await add_bill(factory, clinic, dr_a, patient_a, coverage=Coverage.private),
        submitted_a=await add_bill(factory, clinic, dr_a, patient_a, status=BillStatus.submitted),
        other_bill=await add_bill(factory, clinic, other, patient_a),
        lakes=lakes, dr_b=dr_b, patient_b=patient_b,
        draft_b=await add_bill(factory, lakes, dr_b, patient_b),
        submitted_b=await add_bill(factory, lakes, dr_b, patient_b, status=BillStatus.submitted),
    )


# The tables the team and invitation flows write to: a refused request leaves every one of them as it was.
TABLES = ("app_user", "invitation", "mail_outbox", "delegation_entry", "delegation_list", "audit_event", "payment",
          "bill")


async def snapshot(session) -> dict[str, list[tuple]]:
    state = {}
    for table in TABLES:
        rows = await session.execute(text(f"SELECT * FROM {table} ORDER BY id" if table != "delegation_list"
                                          else f"SELECT * FROM {table} ORDER BY provider_id"))
        state[table] = [tuple(row) for row in rows]
    return state
