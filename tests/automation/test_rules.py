"""Every rule of billing automation (docs/automation.md) over HTTP and through the worker's code."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text

from billing_api.automation import jobs, repository
from tests.automation.conftest import (
    add_card,
    build_clinic,
    by_stage,
    configure,
    encounter,
    new_patient,
    patch_patient,
    run,
)
from tests.helpers import count

NIGHT = date(2026, 11, 10)
YESTERDAY = NIGHT - timedelta(days=1)


async def bills_of(session, patient_id) -> list[tuple]:
    return (await session.execute(text(
        "SELECT id, encounter_id, source, status, total_cents, balance_cents FROM bill WHERE patient_id = :p "
        "ORDER BY created_at, id"), {"p": patient_id})).all()


async def test_manual_creation_creates_nothing(client, session, clinic):
    await configure(client, clinic, bill_creation="manual")
    patient = await new_patient(client, clinic)
    await encounter(client, clinic, patient, YESTERDAY)
    stages = by_stage(await run(client, clinic, NIGHT))
    assert stages["bills"]["outcome"] == "completed"
    assert stages["bills"]["run"]["counts"]["mode"] == "manual"
    assert stages["bills"]["run"]["counts"]["bills_created"] == 0
    assert await bills_of(session, patient) == []


async def test_daily_creation_one_bill_per_encounter_with_billable_services(client, session, clinic):
    await configure(client, clinic)
    patient = await new_patient(client, clinic)
    first = await encounter(client, clinic, patient, YESTERDAY, fee=12000)
    second = await encounter(client, clinic, patient, YESTERDAY, provider=clinic.provider2, fee=9000)
    no_cpt = await encounter(client, clinic, patient, YESTERDAY, cpt=None)
    imported = await encounter(client, clinic, patient, YESTERDAY, imported=True, cpt=None)
    today = await encounter(client, clinic, patient, NIGHT)  # tonight's own sessions wait for tomorrow night
    stages = by_stage(await run(client, clinic, NIGHT))
    counts = stages["bills"]["run"]["counts"]
    assert counts["bills_created"] == 2
    assert counts["skipped_imported"] == 1
    assert counts["skipped_without_cpt"] == 1
    rows = await bills_of(session, patient)
    assert {r[1] for r in rows} == {first, second}
    assert {(r[2], r[3]) for r in rows} == {("automation", "submitted")}
    assert sorted((r[4], r[5]) for r in rows) == [(9000, 9000), (12000, 12000)]
    lines = (await session.execute(text("SELECT code, fee_cents FROM bill_line WHERE bill_id = ANY(:ids)"),
                                   {"ids": [r[0] for r in rows]})).all()
    assert sorted(lines) == [("90837", 9000), ("90837", 12000)]
    assert no_cpt not in {r[1] for r in rows} and imported not in {r[1] for r in rows} and today
    # Each bill is its provider's own (written under the provider's scope) and on the patient chart.
    assert dict((await session.execute(text("SELECT encounter_id, provider_id FROM bill WHERE patient_id = :p"),
                                       {"p": patient})).all()) == {first: clinic.provider.id, second: clinic.provider2.id}
    chart = await client.get(f"/v1/patients/{patient}/bills", headers=clinic.h(clinic.provider))
    assert {b["id"] for b in chart.json()["items"]} == {str(r[0]) for r in rows}
    # Again for the same night: already run, nothing new; the next night bills tonight's session only.
    again = by_stage(await run(client, clinic, NIGHT))
    assert again["bills"]["outcome"] == "already_run"
    nxt = by_stage(await run(client, clinic, NIGHT + timedelta(days=1), ["bills"]))
    assert nxt["bills"]["run"]["counts"]["bills_created"] == 1
    assert len(await bills_of(session, patient)) == 3


async def test_monthly_creation_one_bill_per_patient_for_the_previous_month_on_the_first_night(
        client, session, clinic):
    await configure(client, clinic, bill_creation="monthly")
    patient, other = await new_patient(client, clinic), await new_patient(client, clinic, "Other")
    for day in (1, 15, 31):
        await encounter(client, clinic, patient, date(2026, 10, day), fee=10000)
    await encounter(client, clinic, other, date(2026, 10, 20), fee=5000)
    await encounter(client, clinic, patient, date(2026, 11, 1))  # November: next month's bill
    mid = by_stage(await run(client, clinic, date(2026, 10, 20), ["bills"]))
    assert mid["bills"]["run"]["counts"]["bills_created"] == 0
    first = by_stage(await run(client, clinic, date(2026, 11, 1), ["bills"]))
    assert first["bills"]["run"]["counts"]["bills_created"] == 2
    rows = await bills_of(session, patient)
    assert len(rows) == 1 and rows[0][1] is None and rows[0][4] == 30000
    assert await count(session, "bill_line", "bill_id = :b", b=rows[0][0]) == 3
    assert [r[4] for r in await bills_of(session, other)] == [5000]


async def test_superbills_only_for_enabled_patients_for_the_previous_month_on_the_chosen_day(client, session, clinic):
    await configure(client, clinic, bill_creation="manual", superbill_day=5)
    on, off = await new_patient(client, clinic, "On"), await new_patient(client, clinic, "Off")
    await patch_patient(client, clinic, on, superbills_enabled=True)
    for patient in (on, off):
        await encounter(client, clinic, patient, date(2026, 10, 3), fee=8000)
        await encounter(client, clinic, patient, date(2026, 11, 2), fee=7000)  # this month: not in it
    await encounter(client, clinic, on, date(2026, 10, 4), imported=True, cpt=None)
    assert "superbills" not in by_stage(await run(client, clinic, date(2026, 11, 4)))
    stages = by_stage(await run(client, clinic, date(2026, 11, 5)))
    assert stages["superbills"]["run"]["counts"]["superbills_created"] == 1
    assert stages["superbills"]["run"]["counts"]["skipped_imported"] == 1
    docs = (await session.execute(text(
        "SELECT patient_id, period_start, period_end, total_cents FROM billing_document WHERE kind = 'superbill' "
        "AND company_id = :c"), {"c": clinic.company.id})).all()
    assert docs == [(on, date(2026, 10, 1), date(2026, 10, 31), 8000)]
    # Bill creation frequency does not change the date: monthly bills, same superbill day.
    await configure(client, clinic, bill_creation="monthly", superbill_day=5)
    monthly_night = by_stage(await run(client, clinic, date(2026, 11, 1)))
    assert "superbills" not in monthly_night and monthly_night["bills"]["run"]["counts"]["bills_created"] == 2


async def _documents(client, clinic, patient, **params):
    response = await client.get(f"/v1/patients/{patient}/documents", headers=clinic.h(clinic.admin), params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_sharing_waits_for_the_delay_then_shows_the_document_and_queues_a_notice(client, session, clinic):
    await configure(client, clinic, bills={"enabled": True, "delay_minutes": 90})
    patient = await new_patient(client, clinic)
    await patch_patient(client, clinic, patient, notice_email="pat@example.org")
    await encounter(client, clinic, patient, YESTERDAY)
    await run(client, clinic, NIGHT, ["bills"])
    assert await _documents(client, clinic, patient) == []
    [doc] = await _documents(client, clinic, patient, include_unshared="true")
    assert doc["share_state"] == "scheduled" and doc["kind"] == "bill"
    created, share_at = datetime.fromisoformat(doc["created_at"]), datetime.fromisoformat(doc["share_at"])
    assert share_at - created == timedelta(minutes=90)
    assert await repository.share_due(session, share_at - timedelta(seconds=1)) == (0, 0)
    assert await repository.share_due(session, share_at) == (1, 1)
    assert await repository.share_due(session, share_at + timedelta(hours=1)) == (0, 0)  # once
    [shared] = await _documents(client, clinic, patient)
    assert shared["share_state"] == "shared"
    assert await count(session, "mail_outbox", "to_address = 'pat@example.org' AND template = 'document_shared'") == 1


async def test_a_patient_with_sharing_off_never_gets_the_document(client, session, clinic):
    await configure(client, clinic, bills={"enabled": False, "delay_minutes": 0})
    patient = await new_patient(client, clinic)
    await encounter(client, clinic, patient, YESTERDAY)
    await run(client, clinic, NIGHT, ["bills"])
    [doc] = await _documents(client, clinic, patient, include_unshared="true")
    assert doc["share_state"] == "not_shared" and doc["share_at"] is None
    await repository.share_due(session, datetime.now(UTC) + timedelta(days=30))
    assert await _documents(client, clinic, patient) == []


async def _autopay_patient(client, clinic, *, token="tok_success"):
    patient = await new_patient(client, clinic)
    await patch_patient(client, clinic, patient, autopay_enabled=True)
    await add_card(client, clinic, patient, token)
    await encounter(client, clinic, patient, YESTERDAY, fee=15000)
    return patient


async def test_autopay_charges_after_bill_creation_the_same_night(client, session, clinic):
    await configure(client, clinic)
    patient = await _autopay_patient(client, clinic)
    stages = by_stage(await run(client, clinic, NIGHT, ["autopay"]))  # bills first, by itself
    assert list(stages) == ["bills", "autopay"]
    assert stages["autopay"]["run"]["counts"]["bills_charged"] == 1
    assert stages["autopay"]["run"]["counts"]["amount_charged_cents"] == 15000
    [row] = await bills_of(session, patient)
    assert (row[3], row[5]) == ("paid", 0)
    assert await count(session, "payment", "bill_id = :b AND method = 'card'", b=row[0]) == 1
    runs = (await client.get(f"/v1/companies/{clinic.company.id}/billing-automation/runs",
                             headers=clinic.h(clinic.admin))).json()["items"]
    bills_run = next(r for r in runs if r["stage"] == "bills")
    autopay_run = next(r for r in runs if r["stage"] == "autopay")
    assert bills_run["finished_at"] <= autopay_run["created_at"] or bills_run["created_at"] <= autopay_run["created_at"]


async def test_autopay_four_gates(client, session, clinic):
    await configure(client, clinic, autopay_enabled=True)
    ok = await _autopay_patient(client, clinic)
    patient_off = await _autopay_patient(client, clinic)
    await patch_patient(client, clinic, patient_off, autopay_enabled=False)
    no_card = await new_patient(client, clinic)
    await patch_patient(client, clinic, no_card, autopay_enabled=True)
    await add_card(client, clinic, no_card, exp_year=2024)  # expired
    await encounter(client, clinic, no_card, YESTERDAY)
    contact_off = await _autopay_patient(client, clinic)
    await patch_patient(client, clinic, contact_off, billing_contact={"name": "Parent", "autopay_enabled": False})
    contact_on = await _autopay_patient(client, clinic)
    await patch_patient(client, clinic, contact_on, billing_contact={"name": "Parent", "email": "p@example.org",
                                                                      "autopay_enabled": True})
    counts = by_stage(await run(client, clinic, NIGHT))["autopay"]["run"]["counts"]
    assert counts["bills_charged"] == 2
    assert counts["no_valid_payment_method"] == 1 and counts["billing_contact_autopay_off"] == 1
    paid = {p for p in (ok, patient_off, no_card, contact_off, contact_on)
            if (await bills_of(session, p))[0][3] == "paid"}
    assert paid == {ok, contact_on}
    for patient, reason in ((patient_off, "patient_autopay_off"), (no_card, "no_valid_payment_method"),
                            (contact_off, "billing_contact_autopay_off")):
        effective = (await client.get(f"/v1/patients/{patient}/billing-settings/effective",
                                      headers=clinic.h(clinic.admin))).json()
        autopay = next(a for a in effective["automations"] if a["name"] == "autopay")
        assert autopay["will_run"] is False and autopay["reasons"] == [reason]


async def test_company_toggle_off_stops_autopay(client, session, clinic):
    await configure(client, clinic, autopay_enabled=False)
    patient = await _autopay_patient(client, clinic)
    counts = by_stage(await run(client, clinic, NIGHT))["autopay"]["run"]["counts"]
    assert counts["autopay"] == "off" and counts["bills_charged"] == 0
    assert (await bills_of(session, patient))[0][3] == "submitted"
    effective = (await client.get(f"/v1/patients/{patient}/billing-settings/effective",
                                  headers=clinic.h(clinic.admin))).json()
    assert next(a for a in effective["automations"] if a["name"] == "autopay")["reasons"] == ["company_autopay_off"]


async def test_declines_are_recorded_and_retried_up_to_the_limit(client, session, clinic, settings):
    await configure(client, clinic)
    patient = await _autopay_patient(client, clinic, token="tok_decline")
    for n in range(settings.autopay_max_attempts + 1):
        await run(client, clinic, NIGHT + timedelta(days=n), ["autopay"])
    charges = (await session.execute(text(
        "SELECT c.status, c.decline_reason FROM autopay_charge c JOIN bill b ON b.id = c.bill_id "
        "WHERE b.patient_id = :p"), {"p": patient})).all()
    assert charges == [("declined", "card_declined")] * settings.autopay_max_attempts
    assert (await bills_of(session, patient))[0][3] == "submitted"


async def test_an_expired_token_deactivates_the_card(client, session, clinic):
    await configure(client, clinic)
    patient = await _autopay_patient(client, clinic, token="tok_expired")
    counts = by_stage(await run(client, clinic, NIGHT))["autopay"]["run"]["counts"]
    assert counts["declined"] == 1
    cards = (await client.get(f"/v1/patients/{patient}/payment-methods", headers=clinic.h(clinic.admin))).json()
    assert [(c["active"], c["valid"]) for c in cards] == [(False, False)]


async def test_new_patients_start_from_the_current_defaults_existing_ones_keep_theirs(client, session, clinic):
    await configure(client, clinic, bills={"enabled": True, "delay_minutes": 120})
    before = await new_patient(client, clinic)
    await configure(client, clinic, bills={"enabled": False, "delay_minutes": 15})
    after = await new_patient(client, clinic)
    get = lambda p: client.get(f"/v1/patients/{p}/billing-settings", headers=clinic.h(clinic.admin))  # noqa: E731
    assert (await get(before)).json()["bills"] == {"enabled": True, "delay_minutes": 120}
    assert (await get(after)).json()["bills"] == {"enabled": False, "delay_minutes": 15}
    response = await client.post(f"/v1/companies/{clinic.company.id}/billing-automation/apply-defaults",
                                 headers=clinic.h(clinic.admin))
    assert response.status_code == 200 and response.json()["patients_updated"] == 2
    assert (await get(before)).json()["bills"] == {"enabled": False, "delay_minutes": 15}
    assert await count(session, "audit_event", "action = 'billing_automation.defaults_applied'") >= 1


async def test_effective_settings_reasons(client, session, clinic):
    await configure(client, clinic, bill_creation="manual", autopay_enabled=False)
    patient = await new_patient(client, clinic)
    await encounter(client, clinic, patient, YESTERDAY, imported=True, cpt=None)
    response = await client.get(f"/v1/patients/{patient}/billing-settings/effective", headers=clinic.h(clinic.admin))
    assert response.status_code == 200
    got = {a["name"]: (a["will_run"], a["reasons"]) for a in response.json()["automations"]}
    assert got["bill_creation"] == (False, ["bill_creation_manual", "imported_sessions_without_cpt"])
    assert got["superbills"] == (False, ["patient_superbills_off", "imported_sessions_without_cpt"])
    assert got["share_bills"] == (False, ["bill_creation_manual"])
    assert got["statements"] == (True, [])
    assert got["share_statements"] == (False, ["patient_sharing_off"])
    assert got["autopay"] == (False, ["company_autopay_off", "patient_autopay_off", "no_valid_payment_method"])
    await configure(client, clinic)
    await patch_patient(client, clinic, patient, autopay_enabled=True, superbills_enabled=True)
    await add_card(client, clinic, patient)
    got = {a["name"]: (a["will_run"], a["reasons"]) for a in (await client.get(
        f"/v1/patients/{patient}/billing-settings/effective", headers=clinic.h(clinic.admin))).json()["automations"]}
    assert got["autopay"] == (True, [])
    assert got["share_bills"] == (True, [])
    assert got["bill_creation"] == (True, ["imported_sessions_without_cpt"])
    await patch_patient(client, clinic, patient, statements={"enabled": True, "delay_minutes": 60})
    got = {a["name"]: (a["will_run"], a["reasons"]) for a in (await client.get(
        f"/v1/patients/{patient}/billing-settings/effective", headers=clinic.h(clinic.admin))).json()["automations"]}
    assert got["share_statements"] == (True, [])


async def test_effective_settings_of_a_company_that_never_saved_its_settings(client, clinic):
    """No settings, no nightly run for the company: nothing is generated, whatever the patient's toggles."""
    patient = await new_patient(client, clinic)
    await patch_patient(client, clinic, patient, superbills_enabled=True,
                        superbills={"enabled": True, "delay_minutes": 60},
                        statements={"enabled": True, "delay_minutes": 60})
    got = {a["name"]: (a["will_run"], a["reasons"]) for a in (await client.get(
        f"/v1/patients/{patient}/billing-settings/effective", headers=clinic.h(clinic.admin))).json()["automations"]}
    assert got["superbills"] == (False, ["company_automation_not_configured"])
    assert got["statements"] == (False, ["company_automation_not_configured"])
    assert got["share_superbills"] == (False, ["company_automation_not_configured"])
    assert got["share_statements"] == (False, ["company_automation_not_configured"])
    assert got["bill_creation"] == (False, ["bill_creation_manual"])


async def test_short_delay_with_autopay_and_automatic_bills_is_accepted_with_a_warning(client, clinic):
    body = await configure(client, clinic, bills={"enabled": True, "delay_minutes": 30})
    assert body["warnings"] == ["bill_delay_under_60_minutes_with_autopay"]
    assert (await configure(client, clinic, bills={"enabled": True, "delay_minutes": 60}))["warnings"] == []
    assert (await configure(client, clinic, bill_creation="manual",
                            bills={"enabled": True, "delay_minutes": 30}))["warnings"] == []
    assert (await configure(client, clinic, autopay_enabled=False,
                            bills={"enabled": True, "delay_minutes": 30}))["warnings"] == []


async def test_patient_settings_warn_about_a_short_bill_delay_when_autopay_and_automatic_bills_are_on(
        client, session, clinic):
    await configure(client, clinic, bills={"enabled": True, "delay_minutes": 90})
    patient = await new_patient(client, clinic)
    body = await patch_patient(client, clinic, patient, autopay_enabled=True,
                               bills={"enabled": True, "delay_minutes": 30})
    assert body["warnings"] == ["bill_delay_under_60_minutes_with_autopay"]
    assert body["bills"] == {"enabled": True, "delay_minutes": 30}  # accepted
    got = await client.get(f"/v1/patients/{patient}/billing-settings", headers=clinic.h(clinic.admin))
    assert got.json()["warnings"] == ["bill_delay_under_60_minutes_with_autopay"]
    # Any gate off, or a delay of 60 minutes or more, or bills not shared: no warning.
    assert (await patch_patient(client, clinic, patient, bills={"enabled": True, "delay_minutes": 60}))[
        "warnings"] == []
    assert (await patch_patient(client, clinic, patient, bills={"enabled": False, "delay_minutes": 0}))[
        "warnings"] == []
    await patch_patient(client, clinic, patient, bills={"enabled": True, "delay_minutes": 0})
    assert (await patch_patient(client, clinic, patient, autopay_enabled=False))["warnings"] == []
    await patch_patient(client, clinic, patient, autopay_enabled=True)
    contact_off = await patch_patient(client, clinic, patient,
                                      billing_contact={"name": "Parent", "autopay_enabled": False})
    assert contact_off["warnings"] == []
    contact_on = await patch_patient(client, clinic, patient,
                                     billing_contact={"name": "Parent", "autopay_enabled": True})
    assert contact_on["warnings"] == ["bill_delay_under_60_minutes_with_autopay"]
    await configure(client, clinic, bill_creation="manual")
    assert (await patch_patient(client, clinic, patient, notice_email="p@example.org"))["warnings"] == []
    await configure(client, clinic, autopay_enabled=False)
    assert (await patch_patient(client, clinic, patient, notice_email="q@example.org"))["warnings"] == []


async def test_the_worker_runs_bills_at_midnight_and_autopay_at_half_past_in_the_company_zone(
        client, session, sessionmaker, factory, settings):
    clinic = await build_clinic(factory, "Australia/Sydney")
    await configure(client, clinic, bills={"enabled": True, "delay_minutes": 60})
    patient = await _autopay_patient(client, clinic)
    await patch_patient(client, clinic, patient, notice_email="sydney@example.org")
    zone = ZoneInfo("Australia/Sydney")
    at = lambda h, m: datetime(2026, 11, 10, h, m, tzinfo=zone).astimezone(UTC)  # noqa: E731
    await jobs.run_due(sessionmaker, settings, at(0, 10))
    [row] = await bills_of(session, patient)
    assert row[3] == "submitted"  # bills made, AutoPay not yet
    await jobs.run_due(sessionmaker, settings, at(0, 31))
    assert (await bills_of(session, patient))[0][3] == "paid"
    stats = await jobs.run_due(sessionmaker, settings, at(1, 11))
    assert stats["shared"] >= 1
    assert await count(session, "mail_outbox", "to_address = 'sydney@example.org'") == 1
    assert await count(session, "automation_run", "company_id = :c AND local_date = :d", c=clinic.company.id,
                       d=date(2026, 11, 10)) == 2


async def test_autopay_writes_a_payment_only_on_a_bill_still_as_it_was_read(client, session, clinic):
    """The batched payments re-check each bill: one whose balance moved is left alone, without a payment."""
    from billing_api.authz.permissions import Permission
    from billing_api.authz.scope import bill_scope
    from billing_api.bills.repository import AutomationBillRepository
    from billing_api.models import Payment, PaymentMethod

    await configure(client, clinic, autopay_enabled=False)
    patients = [await new_patient(client, clinic, f"P{n}") for n in range(2)]
    for patient in patients:
        await encounter(client, clinic, patient, YESTERDAY, fee=15000)
    await run(client, clinic, NIGHT, ["bills"])
    bills = AutomationBillRepository(session, bill_scope(clinic.provider.id, Permission.INVOICES_PAY,
                                                         is_support=False))
    moved, kept = await bills.outstanding_for_patients(clinic.company.id, patients)
    await session.execute(text("UPDATE bill SET balance_cents = 5000 WHERE id = :b"), {"b": moved.id})
    payments = [Payment(id=uuid.uuid4(), bill_id=b.id, amount_cents=15000, method=PaymentMethod.card,
                        reference="test", recorded_by=None) for b in (moved, kept)]
    assert await bills.add_payments(list(zip((moved, kept), payments))) == {kept.id}
    rows = dict((await session.execute(text("SELECT id, status::text FROM bill WHERE id = ANY(:ids)"),
                                        {"ids": [moved.id, kept.id]})).all())
    assert rows == {moved.id: "submitted", kept.id: "paid"}
    assert await count(session, "payment", "bill_id = :b", b=moved.id) == 0
    assert await count(session, "payment", "bill_id = :b", b=kept.id) == 1
