"""A payer on every bill: an insured bill names a payer of its own company (a parent's payer once copied down), a
private bill none; the patient's payer of record is the default and what the nightly run bills; the billing summary
and invoices go by payer; a payer in use cannot be deleted."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select

from billing_api.models import Bill, BillStatus, Coverage, Payer
from tests.authz.world import World, build_world
from tests.automation.conftest import build_clinic, by_stage, configure, encounter, new_patient, run
from tests.helpers import assert_problem
from tests.support.practice import add_bill

LINE = {"cpt_code": "99213", "description": "Office visit", "units": 1, "fee_cents": 5000}


def bill_body(world: World, **fields) -> dict:
    return {"provider_id": str(world.owner.id), "patient_id": str(world.patient.id), "coverage": "insured",
            "service_date": "2026-11-03", "lines": [LINE], **fields}


async def add_payer(factory, company, name: str) -> Payer:
    payer = Payer(id=uuid.uuid4(), company_id=company.id, name=name)
    factory.session.add(payer)
    await factory.session.flush()
    return payer


async def test_an_insured_bill_names_the_payer_given_or_the_patients_payer_of_record(client, factory):
    world = await build_world(factory, segregated=True)
    other = await add_payer(factory, world.clinic, "Lakeside Health")
    owner = factory.headers(world.owner)
    given = await client.post("/v1/bills", headers=owner, json=bill_body(world, payer_id=str(other.id)))
    assert given.status_code == 201, given.text
    assert given.json()["payer_id"] == str(other.id)
    defaulted = await client.post("/v1/bills", headers=owner, json=bill_body(world))
    assert defaulted.json()["payer_id"] == str(world.payer.id)
    private = await client.post("/v1/bills", headers=owner, json=bill_body(world, coverage="private"))
    assert private.json()["payer_id"] is None
    # The dashboard's page (its own fast path) and the single read show the same payers.
    page = await client.get("/v1/bills", headers=owner, params={"limit": 100})
    payers = {b["id"]: b["payer_id"] for b in page.json()["items"]}
    for response in (given, defaulted, private):
        bill = response.json()
        assert payers[bill["id"]] == bill["payer_id"]
        assert (await client.get(f"/v1/bills/{bill['id']}", headers=owner)).json() == bill


async def test_payer_rules_are_422_with_their_codes(client, factory, session):
    world = await build_world(factory, segregated=True)
    owner = factory.headers(world.owner)
    world.patient.payer_id = None
    await session.flush()
    assert_problem(await client.post("/v1/bills", headers=owner, json=bill_body(world)), 422, "payer_required")
    assert_problem(await client.post("/v1/bills", headers=owner,
                                     json=bill_body(world, coverage="private", payer_id=str(world.payer.id))),
                   422, "payer_not_allowed")
    far = (await session.execute(select(Bill.payer_id).where(Bill.id == world.elsewhere_bill.id))).scalar_one()
    problem = assert_problem(await client.post("/v1/bills", headers=owner, json=bill_body(world, payer_id=str(far))),
                             422, "payer_not_in_company")
    assert problem["field"] == "payer_id"
    assert_problem(await client.post("/v1/bills", headers=owner,
                                     json=bill_body(world, payer_id=str(uuid.uuid4()))), 422, "payer_not_in_company")
    assert (await session.execute(select(Bill).where(Bill.patient_id == world.patient.id,
                                                     Bill.service_date == date(2026, 11, 3)))).first() is None


async def test_a_parent_payer_is_named_through_its_copy_down(client, factory):
    world = await build_world(factory, segregated=True)
    parent_payer = await add_payer(factory, world.network, "Blue Cross Network")
    owner = factory.headers(world.owner)
    body = bill_body(world, payer_id=str(parent_payer.id))
    problem = assert_problem(await client.post("/v1/bills", headers=owner, json=body), 422, "payer_not_copied_down")
    copy_down = problem["copy_down"]
    assert copy_down == {"path": f"/v1/companies/{world.network.id}/payers/{parent_payer.id}/copy",
                         "company_ids": [str(world.clinic.id)]}
    assert "copied down" in problem["detail"]
    copied = await client.post(copy_down["path"], json={"company_ids": copy_down["company_ids"]},
                               headers=factory.headers(world.users["parent_admin"]))
    assert copied.status_code == 200, copied.text
    copy_id = copied.json()["items"][0]["id"]
    problem = assert_problem(await client.post("/v1/bills", headers=owner, json=body), 422, "payer_not_in_company")
    assert problem["copy_id"] == copy_id
    created = await client.post("/v1/bills", headers=owner, json=bill_body(world, payer_id=copy_id))
    assert created.status_code == 201, created.text
    assert created.json()["payer_id"] == copy_id


async def test_changing_coverage_moves_the_payer(client, factory):
    world = await build_world(factory, segregated=True)
    owner = factory.headers(world.owner)
    insured = await client.patch(f"/v1/bills/{world.private_bill.id}", headers=owner, json={"coverage": "insured"})
    assert insured.status_code == 200, insured.text
    assert insured.json()["payer_id"] == str(world.payer.id)
    private = await client.patch(f"/v1/bills/{world.private_bill.id}", headers=owner, json={"coverage": "private"})
    assert private.json()["payer_id"] is None
    assert_problem(await client.patch(f"/v1/bills/{world.private_bill.id}", headers=owner,
                                      json={"payer_id": str(world.payer.id)}), 422, "payer_not_allowed")


async def test_the_patients_payer_of_record_is_one_of_their_companys_payers(client, factory, session):
    world = await build_world(factory, segregated=False)
    admin = factory.headers(world.users["company_admin"])
    far = (await session.execute(select(Bill.payer_id).where(Bill.id == world.elsewhere_bill.id))).scalar_one()
    assert_problem(await client.post("/v1/patients", headers=admin, json={
        "company_id": str(world.clinic.id), "first_name": "New", "last_name": "Patient", "payer_id": str(far)}),
        422, "payer_not_in_company")
    created = await client.post("/v1/patients", headers=admin, json={
        "company_id": str(world.clinic.id), "first_name": "New", "last_name": "Patient",
        "payer_id": str(world.payer.id)})
    assert created.status_code == 201, created.text
    assert created.json()["payer_id"] == str(world.payer.id)
    patient = created.json()["id"]
    assert_problem(await client.patch(f"/v1/patients/{patient}", headers=admin, json={"payer_id": str(far)}),
                   422, "payer_not_in_company")
    cleared = await client.patch(f"/v1/patients/{patient}", headers=admin, json={"payer_id": None})
    assert cleared.status_code == 200 and cleared.json()["payer_id"] is None
    assert (await client.get(f"/v1/patients/{patient}", headers=admin)).json()["payer_id"] is None


async def test_a_payer_that_bills_name_cannot_be_deleted(client, factory):
    world = await build_world(factory, segregated=False)
    admin = factory.headers(world.users["company_admin"])
    path = f"/v1/companies/{world.clinic.id}/payers/{world.payer.id}"
    assert_problem(await client.delete(path, headers=admin), 409, "payer_in_use")
    assert (await client.get(path, headers=admin)).status_code == 200
    unused = await add_payer(factory, world.clinic, "Unused Mutual")
    assert (await client.delete(f"/v1/companies/{world.clinic.id}/payers/{unused.id}", headers=admin)).status_code \
        == 204


async def test_billing_summary_and_invoices_go_by_payer(client, factory, session):
    world = await build_world(factory, segregated=True)
    lakeside = await add_payer(factory, world.clinic, "Lakeside Health")
    owner = factory.headers(world.owner)
    # Besides the world's insured (Clinic Mutual, 12000) and private (12000) drafts of 2026-11-02:
    to_lakeside = await add_bill(factory, world.clinic, world.owner, world.patient, status=BillStatus.submitted,
                                 total=7000, balance=2000)
    to_lakeside.payer_id = lakeside.id
    legacy = await add_bill(factory, world.clinic, world.owner, world.patient, status=BillStatus.submitted,
                            total=3000)  # insured, recorded before bills named a payer
    await add_bill(factory, world.clinic, world.owner, world.patient, coverage=Coverage.private, total=1000,
                   balance=0, status=BillStatus.paid)
    await session.flush()
    summary = await client.get(f"/v1/providers/{world.owner.id}/reports/billing-summary", headers=owner,
                               params={"from": "2026-11-01", "to": "2026-11-30"})
    assert summary.status_code == 200, summary.text
    rows = [(p["payer"], p["payer_id"], p["payer_name"], p["bill_count"], p["total_cents"], p["paid_cents"],
             p["balance_cents"]) for p in summary.json()["by_payer"]]
    assert rows == [
        ("insurer", str(world.payer.id), "Clinic Mutual", 1, 12000, 0, 12000),
        ("insurer", str(lakeside.id), "Lakeside Health", 1, 7000, 5000, 2000),
        ("insurer", None, None, 1, 3000, 0, 3000),
        ("patient", None, None, 2, 13000, 1000, 12000),
    ]
    invoices = await client.get(f"/v1/providers/{world.owner.id}/invoices", headers=owner)
    named = {i["bill_id"]: (i["payer"], i["payer_id"], i["payer_name"]) for i in invoices.json()["items"]}
    assert named[str(to_lakeside.id)] == ("insurer", str(lakeside.id), "Lakeside Health")
    assert named[str(legacy.id)] == ("insurer", None, None)
    only = await client.get(f"/v1/providers/{world.owner.id}/invoices", headers=owner,
                            params={"payer_id": str(lakeside.id)})
    assert [i["bill_id"] for i in only.json()["items"]] == [str(to_lakeside.id)]


async def test_the_nightly_run_bills_the_payer_of_record_or_the_patient(client, session, factory):
    clinic = await build_clinic(factory)
    await configure(client, clinic)
    payer = Payer(id=uuid.uuid4(), company_id=clinic.company.id, name="Therapy Mutual")
    session.add(payer)
    await session.flush()
    insured_patient, private_patient = await new_patient(client, clinic, "Ines"), await new_patient(client, clinic)
    patched = await client.patch(f"/v1/patients/{insured_patient}", headers=clinic.h(clinic.admin),
                                 json={"payer_id": str(payer.id)})
    assert patched.status_code == 200, patched.text
    night = date(2026, 11, 10)
    for patient in (insured_patient, private_patient):
        await encounter(client, clinic, patient, date(2026, 11, 9))
    assert by_stage(await run(client, clinic, night))["bills"]["run"]["counts"]["bills_created"] == 2
    rows = {patient: (coverage, payer_id) for patient, coverage, payer_id in (await session.execute(
        select(Bill.patient_id, Bill.coverage, Bill.payer_id).where(Bill.company_id == clinic.company.id))).all()}
    assert rows == {insured_patient: (Coverage.insured, payer.id), private_patient: (Coverage.private, None)}
    events = await client.get("/v1/events", headers=clinic.h(clinic.provider))
    created = {e["data"]["patient_id"]: e["data"] for e in events.json()["items"] if e["type"] == "bill.created"}
    assert created[str(insured_patient)]["payer_id"] == str(payer.id)
    assert created[str(insured_patient)]["coverage"] == "insured"
    assert created[str(private_patient)]["payer_id"] is None
