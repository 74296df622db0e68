"""Every read of billing data records who read, on whose behalf, which providers and patients, when and from
where, in the read's own transaction; a read that shows nothing records nothing."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from tests.access_log.helpers import AGENT, entries_of, entry_id
from tests.authz.world import build_world
from tests.helpers import assert_problem


def bill_reads(world):
    return [
        ("/v1/bills", {}, "/v1/bills", "billing_dashboard"),
        (f"/v1/bills/{world.insured_bill.id}", {}, "/v1/bills/{bill_id}", "bill"),
        (f"/v1/encounters/{world.encounter.id}/bills", {}, "/v1/encounters/{encounter_id}/bills", "encounter"),
        (f"/v1/patients/{world.patient.id}/bills", {"coverage": "private"}, "/v1/patients/{patient_id}/bills",
         "patient_chart"),
        ("/v1/visits", {}, "/v1/visits", "visits_dashboard"),
    ]


async def expected_grant(session, world, caller: str) -> dict:
    grant = {"provider_id": str(world.owner.id), "company_id": str(world.clinic.id)}
    if caller == "owner":
        return {**grant, "rule": "own_bills"}
    if caller == "delegate_user":
        entry = await entry_id(session, world, user_id=world.users[caller].id)
        return {**grant, "rule": "delegation_user", "entry_id": str(entry)}
    if caller == "group_delegate":
        entry = await entry_id(session, world, group_id=world.group_id)
        return {**grant, "rule": "delegation_group", "entry_id": str(entry), "group_id": str(world.group_id)}
    return {**grant, "rule": caller}  # support


@pytest.mark.parametrize("caller", ["owner", "delegate_user", "group_delegate", "support"])
async def test_every_bill_surface_records_one_entry_with_its_grant(client, factory, session, caller):
    """Segregation on, so each caller's only grant is the one named: own bills, a user entry, a group entry
    (with the group), support (rule 2)."""
    world = await build_world(factory, segregated=True)
    headers = {**factory.headers(world.users[caller]), **AGENT}
    grant = await expected_grant(session, world, caller)
    reads = bill_reads(world)
    for path, params, _, _ in reads:
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, (path, response.text)

    entries = await entries_of(session, world.users[caller].id)
    assert [(e.route, e.surface) for e in entries] == [(route, surface) for _, _, route, surface in reads]
    for entry in entries:
        assert entry.permission == "bills:view"
        assert str(world.owner.id) in {str(p) for p in entry.provider_ids}
        assert grant in entry.grants, (entry.surface, entry.grants)
        assert entry.client_address == "127.0.0.1" and entry.user_agent == "access-log-test/1.0"
        assert entry.record_count >= 1 and entry.created_at is not None
    # Which patient: the world's only patient of the clinic (support also sees the far company's patient).
    assert all(world.patient.id in entry.patient_ids for entry in entries)
    single = entries[1]
    assert single.provider_ids == [world.owner.id] and single.patient_ids == [world.patient.id]
    assert single.record_count == 1 and single.grants == [grant]


@pytest.mark.parametrize("caller, rule", [("staff", "company_wide"), ("company_admin", "company_admin"),
                                          ("parent_admin", "company_admin")])
async def test_company_wide_reads_name_the_company(client, factory, session, caller, rule):
    world = await build_world(factory, segregated=False)
    response = await client.get(f"/v1/bills/{world.other_provider_bill.id}", headers=factory.headers(world.users[caller]))
    assert response.status_code == 200
    (entry,) = await entries_of(session, world.users[caller].id)
    assert entry.provider_ids == [world.users["other_provider"].id]
    assert entry.grants == [{"rule": rule, "provider_id": str(world.users["other_provider"].id),
                             "company_id": str(world.clinic.id)}]


async def test_a_grant_through_two_rules_lists_both(client, factory, session):
    """Segregation off: the user entry and company-wide access both grant the delegate the owner's bill."""
    world = await build_world(factory, segregated=False)
    delegate = world.users["delegate_user"]
    assert (await client.get(f"/v1/bills/{world.insured_bill.id}", headers=factory.headers(delegate))).status_code == 200
    (entry,) = await entries_of(session, delegate.id)
    assert sorted(g["rule"] for g in entry.grants) == ["company_wide", "delegation_user"]


async def test_reports_and_invoices_record_their_own_permission(client, factory, session):
    world = await build_world(factory, segregated=True)
    await session.execute(text("UPDATE bill SET status = 'submitted', submitted_at = now() WHERE id = :b"),
                          {"b": world.insured_bill.id})
    viewer = world.users["group_delegate"]  # financial viewer: reports:generate, invoices:view
    headers = factory.headers(viewer)
    base = f"/v1/providers/{world.owner.id}"
    report = await client.get(f"{base}/reports/billing-summary", params={"from": "2026-11-01", "to": "2026-11-30"},
                              headers=headers)
    invoices = await client.get(f"{base}/invoices", headers=headers)
    assert report.status_code == invoices.status_code == 200, (report.text, invoices.text)

    summary, invoice_page = await entries_of(session, viewer.id)
    entry = await entry_id(session, world, group_id=world.group_id)
    for logged, permission, count in ((summary, "reports:generate", 2), (invoice_page, "invoices:view", 1)):
        assert logged.permission == permission
        assert logged.provider_ids == [world.owner.id] and logged.patient_ids == [world.patient.id]
        assert logged.record_count == count
        assert logged.grants == [{"rule": "delegation_group", "provider_id": str(world.owner.id),
                                  "company_id": str(world.clinic.id), "entry_id": str(entry),
                                  "group_id": str(world.group_id)}]
    assert summary.surface == "billing_summary_report" and invoice_page.surface == "invoices"


async def test_patient_documents_and_settings_reads_are_recorded(client, factory, session):
    world = await build_world(factory, segregated=True)
    patient = world.patient.id
    owner, admin = world.owner, world.users["company_admin"]
    for path in ("billing-settings", "billing-settings/effective", "payment-methods", "documents"):
        for user in (owner, admin):
            response = await client.get(f"/v1/patients/{patient}/{path}", headers=factory.headers(user))
            assert response.status_code == 200, (path, response.text)

    owner_entries = await entries_of(session, owner.id)
    assert [e.surface for e in owner_entries] == ["patient_billing_settings", "patient_effective_settings",
                                                  "patient_payment_methods", "patient_documents"]
    for entry in owner_entries:
        assert entry.patient_ids == [patient] and entry.provider_ids == [owner.id]
        assert entry.grants == [{"rule": "own_bills", "provider_id": str(owner.id), "company_id": str(world.clinic.id)}]
    # The company admin reads by the automation policy (segregation on: no bill grant of their own).
    for entry in await entries_of(session, admin.id):
        assert entry.patient_ids == [patient] and entry.provider_ids == []
        assert entry.grants == [{"rule": "automation_manager", "company_id": str(world.clinic.id)}]


async def test_a_read_that_shows_nothing_records_nothing(client, factory, session):
    world = await build_world(factory, segregated=True)
    staff = world.users["staff"]  # segregation on: no bills
    page = await client.get("/v1/bills", headers=factory.headers(staff))
    assert page.status_code == 200 and page.json()["items"] == []
    hidden = await client.get(f"/v1/bills/{world.insured_bill.id}", headers=factory.headers(staff))
    assert_problem(hidden, 404)
    report = await client.get(f"/v1/providers/{world.owner.id}/reports/billing-summary",
                              params={"from": str(date(2020, 1, 1)), "to": str(date(2020, 1, 31))},
                              headers=factory.headers(world.owner))
    assert report.status_code == 200 and report.json()["patients"] == []
    assert await entries_of(session, staff.id) == []
    assert await entries_of(session, world.owner.id) == []


async def test_when_the_log_cannot_be_written_the_read_fails_and_nothing_stays(client, factory, session):
    """The entry is written in the read's transaction: if it fails, the caller gets an error, not the bill,
    and the transaction (with anything else it wrote, such as support's audit event) is rolled back."""
    world = await build_world(factory, segregated=True)
    await session.execute(text("""
        CREATE FUNCTION pg_temp.refuse_log() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'log storage unavailable'; END $$"""))
    await session.execute(text("CREATE TRIGGER refuse_log AFTER INSERT ON access_log "
                               "FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse_log()"))
    support = world.users["support"]
    response = await client.get(f"/v1/bills/{world.insured_bill.id}", headers=factory.headers(support))
    body = assert_problem(response, 500)
    assert "lines" not in body and "99213" not in response.text
    await session.execute(text("DROP TRIGGER refuse_log ON access_log"))
    assert await entries_of(session, support.id) == []
    events = await session.execute(text("SELECT count(*) FROM audit_event WHERE actor_id = :a"), {"a": support.id})
    assert events.scalar_one() == 0
    # With the log writable again, the same read succeeds and is recorded with support's own audit event.
    assert (await client.get(f"/v1/bills/{world.insured_bill.id}", headers=factory.headers(support))).status_code == 200
    assert len(await entries_of(session, support.id)) == 1
