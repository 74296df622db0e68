"""Who may call each billing automation endpoint, and bad input of every kind: a problem+json with a code,
nothing written."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, text

from tests.automation.conftest import SETTINGS_BODY, add_card, build_clinic, configure, encounter, new_patient
from tests.helpers import assert_problem

TABLES = ("company_billing_automation", "patient_billing_settings", "billing_contact", "payment_card",
          "billing_document", "automation_run", "autopay_charge", "bill", "audit_event", "mail_outbox")


async def state(session) -> dict[str, list[tuple]]:
    return {t: [tuple(r) for r in await session.execute(text(f"SELECT * FROM {t} ORDER BY 1"))] for t in TABLES}


CALLERS = ["admin", "manager", "staff", "provider", "outsider", "support"]


def company_expected(endpoint: str, caller: str) -> int:
    if caller == "outsider":
        return 404
    if caller in ("admin", "manager"):
        return 200
    if caller == "support":
        return 200 if endpoint in ("get_settings", "list_runs") else 403
    return 403


async def call_company(client, clinic, endpoint, headers):
    base = f"/v1/companies/{clinic.company.id}/billing-automation"
    if endpoint == "get_settings":
        return await client.get(base, headers=headers)
    if endpoint == "put_settings":
        return await client.put(base, json=SETTINGS_BODY, headers=headers)
    if endpoint == "apply_defaults":
        return await client.post(f"{base}/apply-defaults", headers=headers)
    if endpoint == "run":
        return await client.post(f"{base}/runs", json={"date": "2026-11-10"}, headers=headers)
    return await client.get(f"{base}/runs", headers=headers)


@pytest.mark.parametrize("endpoint", ["get_settings", "put_settings", "apply_defaults", "run", "list_runs"])
@pytest.mark.parametrize("caller", CALLERS)
async def test_who_may_manage_company_automation(client, session, factory, caller, endpoint):
    clinic = await build_clinic(factory)
    await configure(client, clinic)
    before = await state(session)
    user = clinic.provider if caller == "provider" else getattr(clinic, caller)
    response = await call_company(client, clinic, endpoint, clinic.h(user))
    expected = company_expected(endpoint, caller)
    if expected == 200:
        assert response.status_code == 200, response.text
    else:
        code = {404: "company_not_found"}.get(expected) or (
            "support_read_only" if caller == "support" else "automation_manage_required")
        assert_problem(response, expected, code)
        assert await state(session) == before


PATIENT_ENDPOINTS = ["get_settings", "patch_settings", "effective", "list_cards", "add_card", "documents"]
WRITES = {"patch_settings", "add_card"}


def patient_expected(endpoint: str, caller: str, segregated: bool) -> int:
    if caller == "outsider":
        return 404
    if caller in ("admin", "manager"):
        return 200
    if caller == "support":
        return 403 if endpoint in WRITES else 200
    if caller == "provider":  # treats the patient: their own bill data
        return 200
    # Plain staff: company-wide bills:view while segregation is off, never bills:save.
    return 403 if segregated or endpoint in WRITES else 200


async def call_patient(client, patient, endpoint, headers):
    base = f"/v1/patients/{patient}"
    if endpoint == "get_settings":
        return await client.get(f"{base}/billing-settings", headers=headers)
    if endpoint == "patch_settings":
        return await client.patch(f"{base}/billing-settings", json={"autopay_enabled": True}, headers=headers)
    if endpoint == "effective":
        return await client.get(f"{base}/billing-settings/effective", headers=headers)
    if endpoint == "list_cards":
        return await client.get(f"{base}/payment-methods", headers=headers)
    if endpoint == "add_card":
        return await client.post(f"{base}/payment-methods", headers=headers, json={
            "token": "tok_success", "brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2031})
    return await client.get(f"{base}/documents", headers=headers)


@pytest.mark.parametrize("segregated", [False, True], ids=["open", "segregated"])
@pytest.mark.parametrize("endpoint", PATIENT_ENDPOINTS)
@pytest.mark.parametrize("caller", CALLERS)
async def test_who_may_use_a_patients_billing_data(client, session, factory, caller, endpoint, segregated):
    clinic = await build_clinic(factory)
    await configure(client, clinic)
    patient = await new_patient(client, clinic)
    await encounter(client, clinic, patient, date(2026, 11, 1))  # treated by clinic.provider
    if segregated:
        clinic.company.billing_segregation_enabled_at = datetime.now(UTC)
        await session.flush()
    before = await state(session)
    user = clinic.provider if caller == "provider" else getattr(clinic, caller)
    response = await call_patient(client, patient, endpoint, clinic.h(user))
    expected = patient_expected(endpoint, caller, segregated)
    if expected == 200:
        assert response.status_code in (200, 201), response.text
    else:
        code = {404: "patient_not_found"}.get(expected) or (
            "support_read_only" if caller == "support" else "patient_billing_forbidden")
        assert_problem(response, expected, code)
        assert await state(session) == before


async def test_another_provider_in_a_segregated_company_cannot_see_the_patients_billing_data(client, session, factory):
    clinic = await build_clinic(factory)
    patient = await new_patient(client, clinic)
    await encounter(client, clinic, patient, date(2026, 11, 1))
    clinic.company.billing_segregation_enabled_at = datetime.now(UTC)
    await session.flush()
    response = await client.get(f"/v1/patients/{patient}/documents", headers=clinic.h(clinic.provider2))
    assert_problem(response, 403, "patient_billing_forbidden")


BAD_SETTINGS = [
    {**SETTINGS_BODY, "superbill_day": 0},
    {**SETTINGS_BODY, "superbill_day": 29},
    {**SETTINGS_BODY, "superbill_day": "5"},
    {**SETTINGS_BODY, "superbill_day": True},
    {**SETTINGS_BODY, "bill_creation": "weekly"},
    {**SETTINGS_BODY, "bills": {"enabled": True, "delay_minutes": -1}},
    {**SETTINGS_BODY, "bills": {"enabled": True, "delay_minutes": 10081}},
    {**SETTINGS_BODY, "bills": {"enabled": "yes", "delay_minutes": 10}},
    {**SETTINGS_BODY, "bills": {"enabled": True, "delay_minutes": 1.5}},
    {**SETTINGS_BODY, "autopay_enabled": 1},
    {**SETTINGS_BODY, "per_patient_frequency": "daily"},
    {k: v for k, v in SETTINGS_BODY.items() if k != "autopay_enabled"},
    [],
    None,
]


@pytest.mark.parametrize("body", BAD_SETTINGS)
async def test_bad_company_settings(client, session, clinic, body):
    before = await state(session)
    response = await client.put(f"/v1/companies/{clinic.company.id}/billing-automation", json=body,
                                headers=clinic.h(clinic.admin))
    assert_problem(response, 422)
    assert await state(session) == before


async def test_malformed_json_and_bad_ids(client, session, clinic):
    before = await state(session)
    headers = {**clinic.h(clinic.admin), "content-type": "application/json"}
    assert_problem(await client.put(f"/v1/companies/{clinic.company.id}/billing-automation", content=b"{nope",
                                    headers=headers), 400)
    assert_problem(await client.get("/v1/companies/not-a-uuid/billing-automation", headers=headers), 422)
    assert_problem(await client.get(f"/v1/companies/{uuid.uuid4()}/billing-automation", headers=headers), 404,
                   "company_not_found")
    for path in ("billing-settings", "billing-settings/effective", "documents", "payment-methods"):
        assert_problem(await client.get(f"/v1/patients/{uuid.uuid4()}/{path}", headers=headers), 404,
                       "patient_not_found")
    assert_problem(await client.get(f"/v1/companies/{clinic.company.id}/billing-automation/runs",
                                    params={"limit": 0}, headers=headers), 422)
    assert await state(session) == before


BAD_PATIENT = [
    {"autopay_enabled": "true"},
    {"bills": {"enabled": True}},
    {"bills": {"enabled": True, "delay_minutes": -5}},
    {"notice_email": "not-an-email"},
    {"billing_contact": {"name": "", "autopay_enabled": True}},
    {"billing_contact": {"name": "X", "email": "bad"}},
    {"bill_creation": "daily"},  # company level only: never per patient
]


@pytest.mark.parametrize("body", BAD_PATIENT)
async def test_bad_patient_settings(client, session, clinic, body):
    patient = await new_patient(client, clinic)
    before = await state(session)
    response = await client.patch(f"/v1/patients/{patient}/billing-settings", json=body,
                                  headers=clinic.h(clinic.admin))
    assert_problem(response, 422)
    assert await state(session) == before


@pytest.mark.parametrize("field", ["superbills_enabled", "autopay_enabled", "bills", "superbills", "statements"])
async def test_patient_settings_that_may_not_be_null_answer_field_required_like_every_patch(
        client, session, clinic, field):
    """One code for one mistake across the API: InputModel.changes (422 `field_required`)."""
    patient = await new_patient(client, clinic)
    before = await state(session)
    response = await client.patch(f"/v1/patients/{patient}/billing-settings", json={field: None},
                                  headers=clinic.h(clinic.admin))
    assert assert_problem(response, 422, "field_required")["field"] == field
    assert await state(session) == before


async def test_nullable_patient_settings_may_be_cleared(client, clinic):
    patient = await new_patient(client, clinic)
    await client.patch(f"/v1/patients/{patient}/billing-settings", headers=clinic.h(clinic.admin),
                       json={"notice_email": "p@example.org", "billing_contact": {"name": "Parent"}})
    response = await client.patch(f"/v1/patients/{patient}/billing-settings", headers=clinic.h(clinic.admin),
                                  json={"notice_email": None, "billing_contact": None})
    assert response.status_code == 200, response.text
    assert (response.json()["notice_email"], response.json()["billing_contact"]) == (None, None)


BAD_CARDS = [
    {"token": "tok_success", "brand": "visa", "last4": "42a2", "exp_month": 1, "exp_year": 2031},
    {"token": "tok_success", "brand": "visa", "last4": "4242", "exp_month": 13, "exp_year": 2031},
    {"token": "tok_success", "brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": True},
    {"token": "", "brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2031},
    {"token": "tok_success", "brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2031, "cvc": "123"},
]


@pytest.mark.parametrize("body", BAD_CARDS)
async def test_bad_cards(client, session, clinic, body):
    patient = await new_patient(client, clinic)
    before = await state(session)
    response = await client.post(f"/v1/patients/{patient}/payment-methods", json=body, headers=clinic.h(clinic.admin))
    assert_problem(response, 422)
    assert await state(session) == before


async def test_unknown_card_and_deactivation(client, session, clinic):
    patient = await new_patient(client, clinic)
    card = await add_card(client, clinic, patient)
    assert_problem(await client.delete(f"/v1/patients/{patient}/payment-methods/{uuid.uuid4()}",
                                       headers=clinic.h(clinic.admin)), 404, "payment_method_not_found")
    response = await client.delete(f"/v1/patients/{patient}/payment-methods/{card['id']}",
                                   headers=clinic.h(clinic.admin))
    assert response.status_code == 204
    cards = (await client.get(f"/v1/patients/{patient}/payment-methods", headers=clinic.h(clinic.admin))).json()
    assert [(c["active"], c["valid"]) for c in cards] == [(False, False)]
    assert "token" not in cards[0]


BAD_RUNS = [
    {},
    {"date": "2026-13-01"},
    {"date": "yesterday"},
    {"date": "2026-11-10", "stages": []},
    {"date": "2026-11-10", "stages": ["shares"]},
    {"date": "2026-11-10", "stages": "bills"},
    {"date": "2026-11-10", "extra": 1},
]


@pytest.mark.parametrize("body", BAD_RUNS)
async def test_bad_run_requests(client, session, clinic, body):
    await configure(client, clinic)
    before = await state(session)
    response = await client.post(f"/v1/companies/{clinic.company.id}/billing-automation/runs", json=body,
                                 headers=clinic.h(clinic.admin))
    assert_problem(response, 422)
    assert await state(session) == before


async def test_a_future_night_cannot_run(client, session, clinic):
    await configure(client, clinic)
    before = await state(session)
    future = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    response = await client.post(f"/v1/companies/{clinic.company.id}/billing-automation/runs",
                                 json={"date": future}, headers=clinic.h(clinic.admin))
    assert_problem(response, 422, "run_date_in_future")
    assert await state(session) == before


async def test_settings_changes_are_audited(client, session, clinic):
    await configure(client, clinic)
    patient = await new_patient(client, clinic)
    await client.patch(f"/v1/patients/{patient}/billing-settings", json={"superbills_enabled": True},
                       headers=clinic.h(clinic.admin))
    actions = (await session.execute(text("SELECT action FROM audit_event WHERE company_id = :c"),
                                     {"c": clinic.company.id})).scalars().all()
    assert {"billing_automation.updated", "patient_billing_settings.updated"} <= set(actions)


async def test_apply_defaults_needs_saved_settings(client, session, clinic):
    response = await client.post(f"/v1/companies/{clinic.company.id}/billing-automation/apply-defaults",
                                 headers=clinic.h(clinic.admin))
    assert_problem(response, 422, "automation_not_configured")


SUPPORT_SURFACES = {"get_settings": "patient_billing_settings", "effective": "effective_billing_settings",
                    "list_cards": "payment_methods", "documents": "patient_documents"}


async def support_events(session, clinic) -> list:
    from billing_api.models import AuditEvent

    return list((await session.execute(select(AuditEvent).where(
        AuditEvent.action == "support.patient_billing_viewed", AuditEvent.actor_id == clinic.support.id)
        .order_by(AuditEvent.target_id))).scalars())


@pytest.mark.parametrize("endpoint", list(SUPPORT_SURFACES))
async def test_support_reads_of_a_patients_billing_data_are_audited_per_provider(client, session, clinic, endpoint):
    """Rule 2, as for bills: one event per provider whose data was shown (here: both providers of the patient)."""
    await configure(client, clinic, bill_creation="daily")
    patient = await new_patient(client, clinic)
    await encounter(client, clinic, patient, date(2026, 11, 9))
    await encounter(client, clinic, patient, date(2026, 11, 9), provider=clinic.provider2)
    assert (await client.post(f"/v1/companies/{clinic.company.id}/billing-automation/runs",
                              json={"date": "2026-11-10", "stages": ["bills"]},
                              headers=clinic.h(clinic.admin))).status_code == 200
    await add_card(client, clinic, patient)
    # Nobody else's reads are recorded as support's.
    for user in (clinic.admin, clinic.provider):
        assert (await call_patient(client, patient, endpoint, clinic.h(user))).status_code == 200
    assert await support_events(session, clinic) == []
    path = {"documents": f"/v1/patients/{patient}/documents?include_unshared=true"}.get(endpoint)
    response = await (client.get(path, headers=clinic.h(clinic.support)) if path else
                      call_patient(client, patient, endpoint, clinic.h(clinic.support)))
    assert response.status_code == 200, response.text
    events = await support_events(session, clinic)
    assert sorted((e.target_type, e.target_id) for e in events) == sorted(
        ("provider", p.id) for p in (clinic.provider, clinic.provider2))
    for event in events:
        assert event.company_id == clinic.company.id
        assert (event.details["surface"], event.details["patient_id"]) == (SUPPORT_SURFACES[endpoint], str(patient))
        if endpoint == "documents":
            assert sorted(event.details["document_ids"]) == sorted(d["id"] for d in response.json()["items"])
            assert len(event.details["document_ids"]) == 2
    # Transparency: each provider reads support's view of their data in their own audit trail.
    mine = (await client.get("/v1/audit-events", params={"action": "support.patient_billing_viewed"},
                             headers=clinic.h(clinic.provider2))).json()["items"]
    assert [e["target_id"] for e in mine] == [str(clinic.provider2.id)]


async def test_support_reads_of_a_patient_nobody_bills_yet_are_audited_about_the_patient(client, session, clinic):
    patient = await new_patient(client, clinic)
    response = await client.get(f"/v1/patients/{patient}/billing-settings", headers=clinic.h(clinic.support))
    assert response.status_code == 200, response.text
    [event] = await support_events(session, clinic)
    assert (event.target_type, event.target_id, event.details["surface"]) == (
        "patient", patient, "patient_billing_settings")


async def test_an_empty_page_of_documents_shows_no_ones_data(client, session, clinic):
    patient = await new_patient(client, clinic)
    await encounter(client, clinic, patient, date(2026, 11, 9))
    response = await client.get(f"/v1/patients/{patient}/documents", headers=clinic.h(clinic.support))
    assert response.status_code == 200 and response.json()["items"] == []
    assert await support_events(session, clinic) == []
