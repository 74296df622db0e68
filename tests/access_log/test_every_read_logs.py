"""Structural: every route that returns billing data leaves its access-log row.

The walk finds every GET route behind the BillAccess guard (the routes that may read bills, as the guard test
finds them). Each is either read here, over HTTP as the bills' owner, and must add exactly one access-log row, or
named below as showing no patient's billing data, with why. A new read route fails the first test until it is
put in one list, and the second if it does not record what it shows."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select

from billing_api.app import create_app
from billing_api.events.schemas import BillCreated
from billing_api.events.service import emit
from billing_api.models import AccessLogEntry, BillingDocument, BillStatus, DocumentKind
from tests.authz.test_guards import _guards, _routes
from tests.authz.world import build_world

SHOWS_NO_BILLING_DATA = {
    "/v1/companies/{company_id}/billing-segregation":
        "the company's segregation setting and which providers are ready for it: no bill, no patient",
    "/v1/patients/{patient_id}/access-log": "who read the patient's billing data, not the data itself",
}


# Route -> (the surface its row names, query), each read as the owner of the world's bills.
READS = {
    "/v1/bills": ("billing_dashboard", {}),
    "/v1/bills/{bill_id}": ("bill", {}),
    "/v1/bills/{bill_id}/pdf": ("bill_pdf", {}),
    "/v1/encounters/{encounter_id}": ("encounter_fees", {}),
    "/v1/encounters/{encounter_id}/bills": ("encounter", {}),
    "/v1/patients/{patient_id}/bills": ("patient_chart", {}),
    "/v1/visits": ("visits_dashboard", {}),
    "/v1/providers/{provider_id}/reports/billing-summary": (
        "billing_summary_report", {"from": "2026-01-01", "to": "2026-12-31"}),
    "/v1/providers/{provider_id}/invoices": ("invoices", {}),
    "/v1/patients/{patient_id}/billing-settings": ("patient_billing_settings", {}),
    "/v1/patients/{patient_id}/billing-settings/effective": ("patient_effective_settings", {}),
    "/v1/patients/{patient_id}/payment-methods": ("patient_payment_methods", {}),
    "/v1/patients/{patient_id}/documents": ("patient_documents", {}),
    "/v1/patients/{patient_id}/documents/{document_id}": ("patient_document", {}),
    "/v1/patients/{patient_id}/documents/{document_id}/pdf": ("patient_document_pdf", {}),
    "/v1/events": ("events_feed", {}),
}


def guarded_reads() -> set[str]:
    return {route.path for route in _routes(create_app()) if "GET" in route.methods and _guards(route.dependant)}


def test_every_guarded_read_is_either_logged_or_said_to_show_no_billing_data():
    walked = guarded_reads()
    assert "/v1/bills" in walked and "/v1/events" in walked  # the walk sees the reads
    listed = set(READS) | set(SHOWS_NO_BILLING_DATA)
    assert walked - listed == set(), "read routes behind the bill guard that this test does not know: add them"
    assert listed - walked == set(), "routes listed here that no longer exist"
    assert not set(READS) & set(SHOWS_NO_BILLING_DATA)


async def test_every_read_of_billing_data_adds_its_access_log_row(client, factory, session):
    world = await build_world(factory, segregated=True)
    world.insured_bill.status = BillStatus.submitted  # an invoice to list
    bill = world.insured_bill
    await emit(session, bill.company_id, BillCreated(bill_id=bill.id, provider_id=bill.provider_id,
                                                     patient_id=bill.patient_id, status=BillStatus.draft,
                                                     source=bill.source, coverage=bill.coverage,
                                                     payer_id=bill.payer_id, total_cents=bill.total_cents))
    superbill = BillingDocument(id=uuid.uuid4(), company_id=bill.company_id, patient_id=bill.patient_id,
                                kind=DocumentKind.superbill, period_start=date(2026, 11, 1),
                                period_end=date(2026, 11, 30), total_cents=12000)
    session.add(superbill)
    await session.flush()
    headers = factory.headers(world.owner)
    ids = {"bill_id": bill.id, "encounter_id": world.encounter.id, "patient_id": world.patient.id,
           "provider_id": world.owner.id, "document_id": superbill.id}
    entries = select(AccessLogEntry.id, AccessLogEntry.route, AccessLogEntry.surface).where(
        AccessLogEntry.actor_id == world.owner.id)
    missing = []
    for route, (surface, query) in READS.items():
        before = {row.id for row in (await session.execute(entries)).all()}
        response = await client.get(route.format(**ids), params=query, headers=headers)
        assert response.status_code == 200, (route, response.text)
        added = [(row.route, row.surface) for row in (await session.execute(entries)).all() if row.id not in before]
        if added != [(route, surface)]:
            missing.append((route, added))
    assert missing == [], f"reads of billing data without exactly their own access-log row: {missing}"
