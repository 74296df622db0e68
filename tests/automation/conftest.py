"""A clinic with every class of caller for the billing automation tests, and helpers driving it over HTTP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from billing_api.authz.permissions import Permission
from billing_api.models import AccountType, Company, User
from tests.factories import Factory

SETTINGS_BODY = {
    "bill_creation": "daily", "superbill_day": 5,
    "bills": {"enabled": True, "delay_minutes": 90},
    "superbills": {"enabled": True, "delay_minutes": 30},
    "statements": {"enabled": False, "delay_minutes": 60},
    "autopay_enabled": True,
}


@dataclass
class Clinic:
    company: Company
    admin: User        # company admin
    manager: User      # billing:automation_manage
    staff: User        # plain user
    provider: User
    provider2: User
    support: User
    outsider: User     # company admin of another company
    factory: Factory

    def h(self, user: User) -> dict[str, str]:
        return self.factory.headers(user)


def zone_in_the_day() -> ZoneInfo:
    """A zone where it is now between 02:00 and 22:00, for tests that run the real worker on the real clock: tonight's
    00:00 and 00:30 stages are due and the local date cannot change while the test runs."""
    for name in ("UTC", "Asia/Tokyo", "America/New_York", "Asia/Kolkata", "America/Los_Angeles"):
        zone = ZoneInfo(name)
        if 2 <= datetime.now(UTC).astimezone(zone).hour < 22:
            return zone
    raise AssertionError("one of the zones is always in its day")


async def build_clinic(factory: Factory, time_zone: str = "America/Toronto") -> Clinic:
    """The `clinic`: one company in `time_zone` with its administrator, an automation manager, plain staff and two
    providers, and support and an outsider from another company. No patients or bills: the automation tests make
    patients and encounters over HTTP (`new_patient`, `encounter`) and let the night make the bills."""
    company = await factory.company(time_zone=time_zone)
    other = await factory.company(time_zone="UTC")
    return Clinic(
        company=company,
        admin=await factory.user(company, account_type=AccountType.company_admin),
        manager=await factory.user(company, permissions=[Permission.BILLING_AUTOMATION_MANAGE.value]),
        staff=await factory.user(company),
        provider=await factory.user(company, provider=True),
        provider2=await factory.user(company, provider=True),
        support=await factory.user(other, account_type=AccountType.support),
        outsider=await factory.user(other, account_type=AccountType.company_admin),
        factory=factory,
    )


@pytest.fixture
async def clinic(factory) -> Clinic:
    """The `clinic` world in America/Toronto, in the test's transaction; tests that need another zone (or `live`)
    call `build_clinic` themselves."""
    return await build_clinic(factory)


async def configure(client: httpx.AsyncClient, clinic: Clinic, **changes) -> dict:
    body = {**SETTINGS_BODY, **changes}
    response = await client.put(f"/v1/companies/{clinic.company.id}/billing-automation", json=body,
                                headers=clinic.h(clinic.admin))
    assert response.status_code == 200, response.text
    return response.json()


async def new_patient(client: httpx.AsyncClient, clinic: Clinic, name: str = "Pat") -> uuid.UUID:
    response = await client.post("/v1/patients", headers=clinic.h(clinic.admin), json={
        "company_id": str(clinic.company.id), "first_name": name, "last_name": "Doe"})
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


async def encounter(client: httpx.AsyncClient, clinic: Clinic, patient_id: uuid.UUID, day: date, *,
                    provider: User | None = None, imported: bool = False, cpt: str | None = "90837",
                    fee: int = 15000) -> uuid.UUID:
    response = await client.post("/v1/encounters", headers=clinic.h(clinic.admin), json={
        "patient_id": str(patient_id), "provider_id": str((provider or clinic.provider).id),
        "service_date": day.isoformat(), "imported": imported,
        # A session with no service lines has no billable services (only imported ones may lack CPT codes).
        "lines": [] if cpt is None and not imported else
        [{"cpt_code": cpt, "description": "Psychotherapy, 60 min", "units": 1, "fee_cents": fee}]})
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


async def patch_patient(client, clinic: Clinic, patient_id: uuid.UUID, **body) -> dict:
    response = await client.patch(f"/v1/patients/{patient_id}/billing-settings", json=body,
                                  headers=clinic.h(clinic.admin))
    assert response.status_code == 200, response.text
    return response.json()


async def add_card(client, clinic: Clinic, patient_id: uuid.UUID, token: str = "tok_success",
                   exp_year: int = 2030) -> dict:
    response = await client.post(f"/v1/patients/{patient_id}/payment-methods", headers=clinic.h(clinic.admin),
                                 json={"token": token, "brand": "visa", "last4": "4242", "exp_month": 12,
                                       "exp_year": exp_year})
    assert response.status_code == 201, response.text
    return response.json()


async def run(client, clinic: Clinic, night: date, stages: list[str] | None = None, user: User | None = None):
    body: dict = {"date": night.isoformat()}
    if stages is not None:
        body["stages"] = stages
    return await client.post(f"/v1/companies/{clinic.company.id}/billing-automation/runs", json=body,
                             headers=clinic.h(user or clinic.admin))


def by_stage(response: httpx.Response) -> dict[str, dict]:
    assert response.status_code == 200, response.text
    return {r["stage"]: r for r in response.json()["results"]}


async def night_totals(engine, company_id: uuid.UUID, night: date) -> dict[str, int]:
    """What a night did for a company, read on a connection of its own: bills and the encounters they bill,
    AutoPay charges and the bills charged, payments, shared documents, the night's run rows, paid bills."""
    async with engine.connect() as conn:
        row = (await conn.execute(text("""
            SELECT (SELECT count(*) FROM bill WHERE company_id = :c),
                   (SELECT count(DISTINCT encounter_id) FROM bill WHERE company_id = :c),
                   (SELECT count(*) FROM autopay_charge WHERE company_id = :c),
                   (SELECT count(DISTINCT bill_id) FROM autopay_charge WHERE company_id = :c),
                   (SELECT count(*) FROM payment p JOIN bill b ON b.id = p.bill_id WHERE b.company_id = :c),
                   (SELECT count(*) FROM billing_document WHERE company_id = :c AND share_state = 'shared'),
                   (SELECT count(*) FROM automation_run WHERE company_id = :c AND local_date = :d),
                   (SELECT count(*) FROM bill WHERE company_id = :c AND status = 'paid')
        """), {"c": company_id, "d": night})).one()
    return dict(zip(["bills", "encounters_billed", "charges", "bills_charged", "payments", "shared", "runs", "paid"],
                    row))
