"""Bills, superbills and statements as PDF, over HTTP: what the text of each says (codes, names, dates, totals),
who may fetch it (exactly who may read its JSON), the access-log row each read leaves, and the file's headers."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, date, datetime

from pypdf import PdfReader
from sqlalchemy import select, text

from billing_api.models import AccessLogEntry, BillingDocument, DocumentKind, Encounter, EncounterLine
from tests.authz.world import ENCOUNTER_FEE, build_world
from tests.automation.conftest import build_clinic, configure, encounter, patch_patient, run
from tests.helpers import assert_problem


def pdf_text(response) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(response.content))
    return "\n".join(page.extract_text() for page in reader.pages)


async def patient_with_birthday(client, clinic, first: str, last: str) -> uuid.UUID:
    response = await client.post("/v1/patients", headers=clinic.h(clinic.admin), json={
        "company_id": str(clinic.company.id), "first_name": first, "last_name": last, "date_of_birth": "1984-03-09"})
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


async def issued_bill(client, clinic, patient: uuid.UUID, *, paid: int) -> dict:
    response = await client.post("/v1/bills", headers=clinic.h(clinic.provider), json={
        "provider_id": str(clinic.provider.id), "patient_id": str(patient), "coverage": "private",
        "service_date": "2026-10-14",
        "lines": [{"cpt_code": "90837", "description": "Psychotherapy, 60 min", "units": 1, "fee_cents": 15000},
                  {"cpt_code": "90785", "description": "Interactive complexity", "units": 2, "fee_cents": 2250}]})
    assert response.status_code == 201, response.text
    bill = response.json()
    assert (await client.post(f"/v1/bills/{bill['id']}/submit", headers=clinic.h(clinic.provider))).status_code == 200
    payment = await client.post(f"/v1/bills/{bill['id']}/payments", headers=clinic.h(clinic.provider),
                                json={"amount_cents": paid, "method": "cash"})
    assert payment.status_code in (200, 201), payment.text
    return bill


async def documents_of(client, clinic, patient: uuid.UUID, kind: str) -> list[dict]:
    response = await client.get(f"/v1/patients/{patient}/documents", headers=clinic.h(clinic.admin),
                                params={"include_unshared": "true"})
    assert response.status_code == 200, response.text
    return [d for d in response.json()["items"] if d["kind"] == kind]


async def test_a_bills_pdf_names_the_practice_provider_patient_codes_and_totals(client, factory):
    clinic = await build_clinic(factory)
    patient = await patient_with_birthday(client, clinic, "Robin", "Quayle")
    bill = await issued_bill(client, clinic, patient, paid=5000)
    response = await client.get(f"/v1/bills/{bill['id']}/pdf", headers=clinic.h(clinic.provider))
    words = pdf_text(response)
    for expected in (clinic.company.name, clinic.provider.display_name, clinic.provider.billing_number,
                     "Robin Quayle", "Date of birth: 1984-03-09", "Date of service: 2026-10-14", bill["id"],
                     "Payer: the patient (private)", "Status: submitted"):
        assert expected in words, expected
    # Each line: code, description, units, fee and amount, in that order on its row.
    assert "CPT 90837 Psychotherapy, 60 min 1 150.00 150.00" in words
    assert "90785 Interactive complexity 2 22.50 45.00" in words
    assert "Total 195.00" in words and "Paid 50.00" in words and "Balance 145.00" in words
    assert response.headers["content-disposition"] == (
        f'inline; filename="bill-2026-10-14-{bill["id"].split("-")[0]}.pdf"')
    assert response.headers["cache-control"] == "no-store"  # billing data, kept by no browser or proxy
    # Dated by the bill, and the same bytes on every read.
    created = datetime.fromisoformat(bill["created_at"]).astimezone(UTC).replace(microsecond=0)
    assert PdfReader(io.BytesIO(response.content)).metadata.creation_date.astimezone(UTC) == created
    again = await client.get(f"/v1/bills/{bill['id']}/pdf", headers=clinic.h(clinic.admin))
    assert again.content == response.content


async def test_a_superbill_pdf_lists_the_periods_sessions_with_their_dates_codes_and_what_was_paid(
        client, session, factory):
    clinic = await build_clinic(factory)
    await configure(client, clinic, bill_creation="daily", superbill_day=5, autopay_enabled=False)
    patient = await patient_with_birthday(client, clinic, "Sam", "Ortiz")
    await patch_patient(client, clinic, patient, superbills_enabled=True)
    await encounter(client, clinic, patient, date(2026, 10, 6), fee=15000)
    await encounter(client, clinic, patient, date(2026, 10, 20), provider=clinic.provider2, cpt="90834", fee=12000)
    await encounter(client, clinic, patient, date(2026, 10, 27), imported=True, cpt=None)  # not on the superbill
    await encounter(client, clinic, patient, date(2026, 11, 2), fee=9900)  # November's: the next superbill
    await run(client, clinic, date(2026, 10, 7), ["bills"])  # the 6th's session billed, then paid in part
    bill_id = (await session.execute(text("SELECT id FROM bill WHERE patient_id = :p"), {"p": patient})).scalar_one()
    await client.post(f"/v1/bills/{bill_id}/submit", headers=clinic.h(clinic.provider))
    paid = await client.post(f"/v1/bills/{bill_id}/payments", headers=clinic.h(clinic.provider),
                             json={"amount_cents": 4000, "method": "card"})
    assert paid.status_code in (200, 201), paid.text
    assert (await run(client, clinic, date(2026, 11, 5), ["superbills"])).status_code == 200
    (superbill,) = await documents_of(client, clinic, patient, "superbill")

    response = await client.get(f"/v1/patients/{patient}/documents/{superbill['id']}/pdf",
                                headers=clinic.h(clinic.admin))
    words = pdf_text(response)
    for expected in ("Superbill", clinic.company.name, "Sam Ortiz", "Date of birth: 1984-03-09",
                     "Dates of service: 2026-10-01 to 2026-10-31", clinic.provider.display_name,
                     clinic.provider2.display_name):
        assert expected in words, expected
    assert f"2026-10-06 CPT 90837 Psychotherapy, 60 min {clinic.provider.display_name} 1 150.00 150.00" in words
    assert f"2026-10-20 CPT 90834 Psychotherapy, 60 min {clinic.provider2.display_name} 1 120.00 120.00" in words
    assert "2026-10-27" not in words and "2026-11-02" not in words and "99.00" not in words
    assert superbill["total_cents"] == 27000
    assert "Total 270.00" in words and "Paid 40.00" in words and "Balance 230.00" in words
    assert response.headers["content-disposition"] == (
        f'inline; filename="superbill-2026-10-01-{superbill["id"].split("-")[0]}.pdf"')


async def test_a_statement_pdf_lists_the_open_bills_with_their_balances_and_the_amount_due(client, factory):
    clinic = await build_clinic(factory)
    await configure(client, clinic, bill_creation="manual", autopay_enabled=False,
                    statements={"enabled": True, "delay_minutes": 60})
    patient = await patient_with_birthday(client, clinic, "Lee", "Marsh")
    contact = await client.patch(f"/v1/patients/{patient}/billing-settings", headers=clinic.h(clinic.admin),
                                 json={"billing_contact": {"name": "Jordan Marsh", "email": "jordan@example.org"}})
    assert contact.status_code == 200, contact.text
    bill = await issued_bill(client, clinic, patient, paid=2500)
    assert (await run(client, clinic, date(2026, 11, 1), ["statements"])).status_code == 200
    (statement,) = await documents_of(client, clinic, patient, "statement")
    assert statement["total_cents"] == 17000

    single = await client.get(f"/v1/patients/{patient}/documents/{statement['id']}", headers=clinic.h(clinic.admin))
    assert single.status_code == 200 and single.json() == statement
    response = await client.get(f"/v1/patients/{patient}/documents/{statement['id']}/pdf",
                                headers=clinic.h(clinic.admin))
    words = pdf_text(response)
    for expected in ("Statement", clinic.company.name, "Lee Marsh", "Bill to: Jordan Marsh",
                     "Statement period: 2026-10-01 to 2026-10-31"):
        assert expected in words, expected
    assert f"2026-10-14 {bill['id']} {clinic.provider.display_name} 195.00 25.00 170.00" in words
    assert "Amount due 170.00" in words and "Balance 170.00" in words


async def test_a_bill_document_pdf_is_its_bills_pdf(client, session, factory):
    clinic = await build_clinic(factory)
    await configure(client, clinic, bill_creation="daily", autopay_enabled=False)
    patient = await patient_with_birthday(client, clinic, "Ash", "Kim")
    await encounter(client, clinic, patient, date(2026, 10, 6), fee=15000)
    await run(client, clinic, date(2026, 10, 7), ["bills"])
    (document,) = await documents_of(client, clinic, patient, "bill")
    as_document = await client.get(f"/v1/patients/{patient}/documents/{document['id']}/pdf",
                                   headers=clinic.h(clinic.provider))
    as_bill = await client.get(f"/v1/bills/{document['bill_id']}/pdf", headers=clinic.h(clinic.provider))
    assert as_document.status_code == 200 and as_document.content == as_bill.content
    assert "CPT 90837 Psychotherapy, 60 min 1 150.00 150.00" in pdf_text(as_document)


async def test_a_pdf_is_not_found_for_whoever_may_not_read_its_json(client, session, factory):
    world = await build_world(factory, segregated=True)
    bill = world.insured_bill
    for user in (world.users["other_provider"], world.users["company_admin"], world.users["outsider"]):
        json_read = await client.get(f"/v1/bills/{bill.id}", headers=factory.headers(user))
        pdf_read = await client.get(f"/v1/bills/{bill.id}/pdf", headers=factory.headers(user))
        assert_problem(json_read, 404, "bill_not_found")
        assert_problem(pdf_read, 404, "bill_not_found")
    assert (await client.get(f"/v1/bills/{bill.id}/pdf", headers=factory.headers(world.owner))).status_code == 200
    assert_problem(await client.get(f"/v1/bills/{uuid.uuid4()}/pdf", headers=factory.headers(world.owner)), 404,
                   "bill_not_found")

    superbill = BillingDocument(id=uuid.uuid4(), company_id=world.clinic.id, patient_id=world.patient.id,
                                kind=DocumentKind.superbill, period_start=date(2026, 11, 1),
                                period_end=date(2026, 11, 30), total_cents=9000)
    far = BillingDocument(id=uuid.uuid4(), company_id=world.elsewhere.id, patient_id=world.elsewhere_bill.patient_id,
                          kind=DocumentKind.superbill, period_start=date(2026, 11, 1), period_end=date(2026, 11, 30),
                          total_cents=12000)
    session.add_all([superbill, far])
    await session.flush()
    mine = f"/v1/patients/{world.patient.id}/documents/{superbill.id}"
    for path in (mine, mine + "/pdf"):
        assert (await client.get(path, headers=factory.headers(world.owner))).status_code == 200
        assert_problem(await client.get(path, headers=factory.headers(world.users["outsider"])), 404,
                       "patient_not_found")
        # Seen in the clinic, but not the patient's billing data: the list's 403, for the one and its PDF.
        assert_problem(await client.get(path, headers=factory.headers(world.users["staff"])), 403,
                       "patient_billing_forbidden")
    # Another patient's document under this patient's path: not found.
    for path in (f"/v1/patients/{world.patient.id}/documents/{far.id}",
                 f"/v1/patients/{world.patient.id}/documents/{far.id}/pdf"):
        assert_problem(await client.get(path, headers=factory.headers(world.owner)), 404, "document_not_found")


async def test_each_pdf_read_leaves_its_access_log_row(client, session, factory):
    world = await build_world(factory, segregated=True)
    superbill = BillingDocument(id=uuid.uuid4(), company_id=world.clinic.id, patient_id=world.patient.id,
                                kind=DocumentKind.superbill, period_start=date(2026, 11, 1),
                                period_end=date(2026, 11, 30), total_cents=9000)
    session.add(superbill)
    await session.flush()
    entries = select(AccessLogEntry.route, AccessLogEntry.surface, AccessLogEntry.patient_ids).where(
        AccessLogEntry.actor_id == world.owner.id)
    headers = factory.headers(world.owner)
    assert (await session.execute(entries)).all() == []
    assert (await client.get(f"/v1/bills/{world.insured_bill.id}/pdf", headers=headers)).status_code == 200
    assert (await client.get(f"/v1/patients/{world.patient.id}/documents/{superbill.id}/pdf",
                             headers=headers)).status_code == 200
    assert sorted((row.route, row.surface, row.patient_ids) for row in (await session.execute(entries)).all()) == [
        ("/v1/bills/{bill_id}/pdf", "bill_pdf", [world.patient.id]),
        ("/v1/patients/{patient_id}/documents/{document_id}/pdf", "patient_document_pdf", [world.patient.id]),
    ]
    # A read that is refused leaves none.
    other = factory.headers(world.users["other_provider"])
    assert (await client.get(f"/v1/bills/{world.insured_bill.id}/pdf", headers=other)).status_code == 404
    assert (await session.execute(select(AccessLogEntry.id).where(
        AccessLogEntry.actor_id == world.users["other_provider"].id))).all() == []


async def test_a_superbill_pdf_shows_only_the_sessions_whose_fees_the_reader_may_see(client, session, factory):
    """Under segregation a superbill spans providers, while its JSON gives only the total: each reader's PDF shows
    the sessions of providers whose bills they may view (as an encounter shows its fees), and counts the rest."""
    world = await build_world(factory, segregated=True)  # the owner's session of 2026-11-02: 99213
    other = world.users["other_provider"]
    theirs = Encounter(id=uuid.uuid4(), company_id=world.clinic.id, patient_id=world.patient.id,
                       provider_id=other.id, service_date=date(2026, 11, 9))
    session.add(theirs)
    await session.flush()
    session.add(EncounterLine(id=uuid.uuid4(), encounter_id=theirs.id, position=0, code_system="cpt", code="90834",
                              description="Psychotherapy, 45 min", units=1, fee_cents=11100))
    superbill = BillingDocument(id=uuid.uuid4(), company_id=world.clinic.id, patient_id=world.patient.id,
                                kind=DocumentKind.superbill, period_start=date(2026, 11, 1),
                                period_end=date(2026, 11, 30), total_cents=ENCOUNTER_FEE + 11100)
    session.add(superbill)
    await session.flush()
    path = f"/v1/patients/{world.patient.id}/documents/{superbill.id}/pdf"

    owners = pdf_text(await client.get(path, headers=factory.headers(world.owner)))
    assert "2026-11-02 CPT 99213" in owners and "90834" not in owners and "111.00" not in owners
    assert "Not shown: 1 session of this period" in owners
    assert f"Total {ENCOUNTER_FEE // 100}.00" in owners
    others = pdf_text(await client.get(path, headers=factory.headers(other)))
    assert "2026-11-09 CPT 90834" in others and "99213" not in others and "Total 111.00" in others
    # The company's administrator manages its automation but, segregated, views neither provider's bills.
    admins = pdf_text(await client.get(path, headers=factory.headers(world.users["company_admin"])))
    assert "99213" not in admins and "90834" not in admins and "Not shown: 2 sessions" in admins
    assert "Total 0.00" in admins


async def test_an_ohip_claims_pdf_names_the_identities_the_payer_the_fee_code_and_the_diagnosis(client, factory):
    """What an insurer needs on a claim: the practice's and the provider's numbers, the payer, the fee code with
    its diagnosis pointer, and the diagnosis itself."""
    world = await build_world(factory, segregated=True)
    owner = factory.headers(world.owner)
    assert (await client.put(f"/v1/providers/{world.owner.id}/billing-identity", headers=owner, json={
        "province": "ON", "provincial_billing_number": "123456", "credentials": "MD"})).status_code == 200
    assert (await client.put(f"/v1/companies/{world.clinic.id}/billing-identity",
                             headers=factory.headers(world.users["company_admin"]), json={
        "legal_name": "Clinic Medicine Professional Corporation", "business_number": "123456782 RT0001",
        "address_lines": ["100 Main St", "Toronto ON M5V 2T6"], "place_of_service": "11"})).status_code == 200
    created = await client.post("/v1/bills", headers=owner, json={
        "provider_id": str(world.owner.id), "patient_id": str(world.patient.id), "coverage": "insured",
        "service_date": "2026-11-05", "diagnoses": [{"code_system": "ohip_dx", "code": "300"}],
        "lines": [{"code_system": "ohip", "code": "A007A", "description": "Intermediate assessment", "units": 1,
                   "fee_cents": 3785, "diagnosis_pointers": [1]}]})
    assert created.status_code == 201, created.text
    words = pdf_text(await client.get(f"/v1/bills/{created.json()['id']}/pdf", headers=owner))
    for expected in ("Clinic Medicine Professional Corporation", "100 Main St", "Business number: 123456782RT0001",
                     "Place of service: 11 Office", f"{world.owner.display_name}, MD",
                     "Provincial billing number: 123456 (ON)", "Payer: Clinic Mutual", "OHIP 300",
                     "OHIP A007A", "Intermediate assessment", "37.85"):
        assert expected in words, expected
