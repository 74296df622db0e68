"""The demo data set: a clinic, the EMS seed's West EMS Transport, and a support account. Idempotent."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.authz.permissions import ROLE_PRESETS, Permission, RolePreset
from billing_api.authz.scope import bill_scope
from billing_api.bills.repository import BillRepository
from billing_api.config import Settings
from billing_api.identity.bootstrap import ensure_company, ensure_group, ensure_user
from billing_api.models import (
    AccountType,
    Bill,
    BillLine,
    Company,
    CompanyBillingIdentity,
    Coverage,
    DelegationEntry,
    DelegationList,
    Encounter,
    EncounterLine,
    Facility,
    Group,
    GroupCompanyAssignment,
    Patient,
    Payer,
    ProviderBillingIdentity,
    ServiceCodeSystem,
    User,
    Visit,
)

DEMO_PASSWORD = "demo-password-1"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str


DEMO_LOGINS = [
    DemoLogin("clinic.admin", "Maple Street Clinic: company administrator"),
    DemoLogin("office.manager", "Maple Street Clinic: may manage anyone's delegation list"),
    DemoLogin("dr.lovelace", "Maple Street Clinic: provider"),
    DemoLogin("dr.carter", "Maple Street Clinic: provider"),
    DemoLogin("dr.wu", "Maple Street Clinic: provider"),
    DemoLogin("clara.clerk", "Maple Street Clinic: billing clerk (group Billing clerks)"),
    DemoLogin("bob.clerk", "Maple Street Clinic: billing clerk (group Billing clerks)"),
    DemoLogin("betty", "West EMS Transport: company administrator (the EMS seed's Betty)"),
    DemoLogin("barney", "West EMS Transport: standard user with the Biller role, which selects West EMS North and "
                        "West EMS South (the EMS seed's Barney)"),
    DemoLogin("dr.north", "West EMS North: provider"),
    DemoLogin("dr.south", "West EMS South: provider"),
    DemoLogin("dr.east", "West EMS East: provider"),
    DemoLogin("dr.mountain", "West EMS Mountain: provider"),
    DemoLogin("support", "Vendor support: views every company's bills, audited"),
]


async def load_demo(session: AsyncSession, settings: Settings) -> list[DemoLogin]:
    def user(company, username, name, **kwargs):
        return ensure_user(session, settings, company, username, display_name=name, password=DEMO_PASSWORD, **kwargs)

    clinic = await ensure_company(session, "Maple Street Clinic", time_zone="America/Toronto")
    await user(clinic, "clinic.admin", "Casey Admin", account_type=AccountType.company_admin)
    await user(clinic, "office.manager", "Olive Manager",
               permissions=[Permission.USERS_EDIT_OTHERS, Permission.BILLING_DELEGATION_SETTINGS])
    wu = await user(clinic, "dr.wu", "Dr. Chen Wu", billing_number="ON-101560")
    lovelace = await user(clinic, "dr.lovelace", "Dr. Ada Lovelace", billing_number="ON-100234")
    carter = await user(clinic, "dr.carter", "Dr. Ben Carter", billing_number="ON-100871")
    clara = await user(clinic, "clara.clerk", "Clara Clerk")
    bob = await user(clinic, "bob.clerk", "Bob Clerk")
    clerks = await ensure_group(session, clinic, "Billing clerks", [clara, bob])
    ohip = await ensure_record(session, Payer, clinic, "OHIP", payer_code="ON")
    await ensure_billing(session, clinic, [lovelace, carter, wu], ohip)
    # Dr. Lovelace delegates to the clerks' group; Dr. Carter to Clara alone, half a year ago (she has not read his
    # bills since: the access review finds the entry dormant); Dr. Wu's list stays empty (so the segregation
    # readiness check has something to show).
    await ensure_delegation(session, lovelace, group=clerks, role=RolePreset.DATA_ENTRY)
    await ensure_delegation(session, carter, user=clara, role=RolePreset.FINANCIAL_VIEWER, days_ago=180)
    # What the clinic's claims and documents name (an Ontario practice: OHIP billing numbers, a CRA business number).
    await ensure_identity(session, CompanyBillingIdentity, company_id=clinic.id, legal_name="Maple Street Clinic",
                          business_number="876543216RP0001", address_lines=["200 Maple Street", "Toronto ON M5V 1A1"],
                          phone="+1 416 555 0142", place_of_service="11")
    for provider, number in ((lovelace, "100234"), (carter, "100871"), (wu, "101560")):
        await ensure_identity(session, ProviderBillingIdentity, provider_id=provider.id, province="ON",
                              provincial_billing_number=number, credentials="MD")

    # The EMS seed: West EMS Transport with four children. The Biller role selects two of them, so Barney (a
    # standard user with that role) reaches those two; Betty, a company administrator, reaches all four and
    # keeps the parent-level payers and facilities, copied down to the children.
    west = await ensure_company(session, "West EMS Transport", time_zone="America/Denver")
    children = {}
    for child in ("West EMS North", "West EMS South", "West EMS East", "West EMS Mountain"):
        children[child] = await ensure_company(session, child, time_zone="America/Denver", parent=west)
    await user(west, "betty", "Betty Supervisor", account_type=AccountType.company_admin)
    barney = await user(west, "barney", "Barney Biller")
    biller = await ensure_group(session, west, "Biller", [barney],
                                permissions=[Permission.BILLS_VIEW, Permission.BILLS_SAVE, Permission.BILLS_SUBMIT])
    await ensure_group_companies(session, biller, [children["West EMS North"], children["West EMS South"]])
    # Medicare Part B is copied down to North and South only (the walk-through copies it to East); every child has
    # its copy of Colorado Medicaid, its patients' payer of record.
    medicare = await ensure_record(session, Payer, west, "Medicare Part B", payer_code="04412")
    medicaid = await ensure_record(session, Payer, west, "Colorado Medicaid", payer_code="COMCD")
    station = await ensure_record(session, Facility, west, "West EMS Station 1", address="1 Station Rd, Denver CO")
    for child in (children["West EMS North"], children["West EMS South"]):
        await ensure_record(session, Payer, child, medicare.name, payer_code=medicare.payer_code, copy_of=medicare)
        await ensure_record(session, Facility, child, station.name, address=station.address, copy_of=station)
    for username, child, number, npi in (("dr.north", "West EMS North", "CO-200101", "1548723018"),
                                         ("dr.south", "West EMS South", "CO-200202", "1548723026"),
                                         ("dr.east", "West EMS East", "CO-200303", "1548723034"),
                                         ("dr.mountain", "West EMS Mountain", "CO-200404", "1548723042")):
        medic = await user(children[child], username, f"{child.removeprefix('West EMS ')} Medic",
                           billing_number=number)
        local_medicaid = await ensure_record(session, Payer, children[child], medicaid.name,
                                             payer_code=medicaid.payer_code, copy_of=medicaid)
        await ensure_billing(session, children[child], [medic], local_medicaid)
        await ensure_identity(session, ProviderBillingIdentity, provider_id=medic.id, npi=npi, credentials="NRP")
        await ensure_identity(session, CompanyBillingIdentity, company_id=children[child].id,
                              legal_name=f"{child} LLC", tax_id="84-1234567",
                              address_lines=["1 Station Rd", "Denver CO 80202"], phone="+1 303 555 0100",
                              place_of_service="41")

    vendor = await ensure_company(session, "billing-api Support")
    await user(vendor, "support", "Sam Support", account_type=AccountType.support)
    return DEMO_LOGINS


async def ensure_identity(session: AsyncSession, model: type[ProviderBillingIdentity | CompanyBillingIdentity],
                          **values: object) -> None:
    """A billing identity, unless one was saved already (the demo never overwrites what someone entered). The
    values pass billing_identity/numbers.py's rules (tests/billing_identity checks the demo's)."""
    await session.execute(insert(model).values(**values).on_conflict_do_nothing())


DEMO_PATIENTS = [("Grace", "Hopper", date(1956, 12, 9)), ("Alan", "Turing", date(1962, 6, 23)),
                 ("Katherine", "Johnson", date(1948, 8, 26))]
DEMO_SERVICES = [("99213", "Office visit, established patient", 1, 9500),
                 ("99214", "Office visit, moderate complexity", 1, 14000),
                 ("90837", "Psychotherapy, 60 minutes", 1, 16000)]


async def ensure_billing(session: AsyncSession, company: Company, providers: list[User], payer: Payer) -> None:
    """Patients (`payer` their payer of record), and for each provider a visit, an encounter and a bill per patient
    (once): every other one insured, to the patient's payer."""
    patients = []
    for first, last, born in DEMO_PATIENTS:
        patient = (await session.execute(select(Patient).where(
            Patient.company_id == company.id, Patient.first_name == first, Patient.last_name == last
        ))).scalar_one_or_none()
        if patient is None:
            patient = Patient(id=uuid.uuid4(), company_id=company.id, first_name=first, last_name=last,
                              date_of_birth=born, payer_id=payer.id)
            session.add(patient)
            await session.flush()
        patients.append(patient)
    for index, provider in enumerate(providers):
        if (await session.execute(select(Encounter.id).where(Encounter.provider_id == provider.id))).first():
            continue
        for day, patient in enumerate(patients):
            when = datetime(2026, 11, 2 + day + index, 14, tzinfo=UTC)
            cpt, description, units, fee = DEMO_SERVICES[(day + index) % len(DEMO_SERVICES)]
            visit = Visit(id=uuid.uuid4(), company_id=company.id, patient_id=patient.id,
                          provider_id=provider.id, scheduled_at=when)
            encounter = Encounter(id=uuid.uuid4(), company_id=company.id, patient_id=patient.id,
                                  provider_id=provider.id, visit_id=visit.id, service_date=when.date())
            insured = day % 2 == 0
            bill = Bill(id=uuid.uuid4(), company_id=company.id, provider_id=provider.id, patient_id=patient.id,
                        encounter_id=encounter.id, visit_id=visit.id,
                        coverage=Coverage.insured if insured else Coverage.private,
                        payer_id=patient.payer_id if insured else None,
                        service_date=when.date(), total_cents=units * fee, balance_cents=units * fee)
            session.add(visit)
            await session.flush()
            session.add(encounter)
            await session.flush()
            session.add(EncounterLine(id=uuid.uuid4(), encounter_id=encounter.id, position=0,
                                      code_system=ServiceCodeSystem.cpt, code=cpt, description=description,
                                      units=units, fee_cents=fee))
            # Written as the provider would: through the bill repository, under their own scope.
            scope = bill_scope(provider.id, Permission.BILLS_SAVE, is_support=False)
            await BillRepository(session, scope).add(bill, [BillLine(
                id=uuid.uuid4(), bill_id=bill.id, position=0, code_system=ServiceCodeSystem.cpt, code=cpt,
                description=description, units=units, fee_cents=fee)])


async def ensure_group_companies(session: AsyncSession, group: Group, companies: list[Company]) -> None:
    """Add the child companies to the group's billing customer assignments (once)."""
    await session.execute(
        insert(GroupCompanyAssignment)
        .values([{"group_id": group.id, "company_id": company.id} for company in companies])
        .on_conflict_do_nothing()
    )


async def ensure_record(session: AsyncSession, model: type[Payer] | type[Facility], company: Company, name: str,
                        *, copy_of: Payer | Facility | None = None, **fields: str) -> Payer | Facility:
    """A payer or facility of the company by name (once); `copy_of` links a child's copy to its source."""
    found = (await session.execute(select(model).where(
        model.company_id == company.id, func.lower(model.name) == name.lower()))).scalar_one_or_none()
    if found is None:
        found = model(id=uuid.uuid4(), company_id=company.id, name=name,
                      copied_from_id=copy_of.id if copy_of else None, **fields)
        session.add(found)
        await session.flush()
    return found


async def ensure_delegation(session: AsyncSession, provider: User, *, role: RolePreset, user: User | None = None,
                            group: Group | None = None, days_ago: int = 0) -> None:
    """One entry on the provider's list, made `days_ago`, unless the list was ever saved (then it is the
    provider's)."""
    if await session.get(DelegationList, provider.id) is not None:
        return
    session.add(DelegationList(provider_id=provider.id, version=1))
    session.add(DelegationEntry(id=uuid.uuid4(), provider_id=provider.id, user_id=user.id if user else None,
                                group_id=group.id if group else None, role=role.value,
                                permissions=sorted(p.value for p in ROLE_PRESETS[role]),
                                created_at=datetime.now(UTC) - timedelta(days=days_ago)))
    await session.flush()
