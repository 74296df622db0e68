"""The nightly run's bills take their encounters' codes, modifiers and diagnoses: one encounter's as they are, a
month's merged (each diagnosis once, in order of first appearance) with the pointers following them."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from tests.automation.conftest import build_clinic, configure, new_patient, run

NIGHT = date(2026, 11, 10)

F41 = {"code_system": "icd10cm", "code": "F41.1"}
Z00 = {"code_system": "icd10cm", "code": "Z00.00"}
F32 = {"code_system": "icd10cm", "code": "F32.A"}


@pytest.fixture
async def clinic(factory):
    return await build_clinic(factory)


async def session_with(client, clinic, patient_id: uuid.UUID, day: date, diagnoses: list[dict],
                       lines: list[dict]) -> None:
    response = await client.post("/v1/encounters", headers=clinic.h(clinic.admin), json={
        "patient_id": str(patient_id), "provider_id": str(clinic.provider.id), "service_date": day.isoformat(),
        "diagnoses": diagnoses,
        "lines": [{"description": "Session", "units": 1, "fee_cents": 10000, **line} for line in lines]})
    assert response.status_code == 201, response.text


async def bills_of(client, clinic, patient_id) -> list[dict]:
    response = await client.get(f"/v1/patients/{patient_id}/bills", headers=clinic.h(clinic.provider))
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_a_daily_bill_takes_its_encounters_codes_and_diagnoses(client, clinic):
    await configure(client, clinic)
    patient = await new_patient(client, clinic)
    await session_with(client, clinic, patient, NIGHT - timedelta(days=1), [F41, Z00], [
        {"code_system": "cpt", "code": "90837", "modifiers": ["95"], "diagnosis_pointers": [2, 1]},
        {"code_system": "hcpcs", "code": "G0283", "diagnosis_pointers": [2]}])
    await run(client, clinic, NIGHT, ["bills"])
    (bill,) = await bills_of(client, clinic, patient)
    assert bill["diagnoses"] == [F41, Z00]
    assert [(x["code_system"], x["code"], x["modifiers"], x["diagnosis_pointers"]) for x in bill["lines"]] == [
        ("cpt", "90837", ["95"], [2, 1]), ("hcpcs", "G0283", [], [2])]


async def test_a_monthly_bill_merges_the_diagnoses_and_follows_the_pointers(client, session, clinic):
    await configure(client, clinic, bill_creation="monthly")
    patient = await new_patient(client, clinic)
    await session_with(client, clinic, patient, date(2026, 10, 20), [Z00, F32],
                       [{"code_system": "cpt", "code": "90834", "diagnosis_pointers": [2]}])
    await session_with(client, clinic, patient, date(2026, 10, 5), [F41, Z00],
                       [{"code_system": "cpt", "code": "90837", "diagnosis_pointers": [1, 2]}])
    await session_with(client, clinic, patient, date(2026, 10, 12), [],
                       [{"code_system": "cpt", "code": "99213"}])
    await run(client, clinic, date(2026, 11, 1), ["bills"])
    (bill,) = await bills_of(client, clinic, patient)
    # By service date: the 5th's F41.1 and Z00.00, then the 20th's F32.A (its Z00.00 is already there).
    assert bill["diagnoses"] == [F41, Z00, F32]
    assert [(x["code"], x["diagnosis_pointers"]) for x in bill["lines"]] == [
        ("90837", [1, 2]), ("99213", []), ("90834", [3])]
    stored = (await session.execute(text("SELECT diagnoses FROM bill WHERE id = :id"), {"id": bill["id"]})).scalar()
    assert stored == [F41, Z00, F32]
