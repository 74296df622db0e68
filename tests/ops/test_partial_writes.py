"""A failure in the middle of a multi-row write leaves nothing behind; the retry then completes exactly once.

The fault is a temporary trigger in the database (tests/ops/faults.py) that raises on the Nth row inserted into a
table, while the request runs through the real app with real commits. An unexpected database error answers a
500 problem+json (`internal_error`, no trace), and the whole database is as it was before the request.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from tests.automation.conftest import SETTINGS_BODY
from tests.helpers import assert_problem
from tests.ops.faults import changed_tables, database_state, failing_insert
from tests.ops.scene import build_scene, invite, save_list


async def scalar(engine, sql: str, **params):
    async with engine.connect() as connection:
        return (await connection.execute(text(sql), params)).scalar_one()


async def test_a_delegation_list_save_fails_whole_then_saves_once(live, live_engine):
    http, factory = live
    scene = await build_scene(factory)
    entries = [{"user_id": str(scene.staff.id), "role": "data_entry"},
               {"user_id": str(scene.staff2.id), "role": "financial_viewer"}, {"group_id": str(scene.group.id)}]
    before = await database_state(live_engine)
    async with failing_insert(live_engine, "delegation_entry", on_row=2):
        assert_problem(await save_list(http, scene, entries), 500, "internal_error")
    assert changed_tables(before, await database_state(live_engine)) == set()

    saved = await save_list(http, scene, entries)
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 1 and len(saved.json()["entries"]) == 3
    assert await scalar(live_engine, "SELECT count(*) FROM delegation_entry WHERE provider_id = :p",
                        p=scene.provider.id) == 3


@pytest.mark.parametrize("table", ["invitation", "mail_outbox", "audit_event"])
async def test_an_invitation_is_its_row_its_mail_and_its_audit_event_or_nothing(live, live_engine, table):
    http, factory = live
    scene = await build_scene(factory)
    email, username = f"part-{uuid.uuid4().hex[:8]}@mail.example.org", f"part.{uuid.uuid4().hex[:8]}"
    before = await database_state(live_engine)
    async with failing_insert(live_engine, table):
        assert_problem(await invite(http, scene, email, username), 500, "internal_error")
    assert changed_tables(before, await database_state(live_engine)) == set()

    created = await invite(http, scene, email, username)
    assert created.status_code == 201, created.text
    invitation = created.json()["id"]
    assert await scalar(live_engine, "SELECT count(*) FROM invitation WHERE email = :e", e=email) == 1
    assert await scalar(live_engine, "SELECT count(*) FROM mail_outbox WHERE invitation_id = :i", i=invitation) == 1
    assert await scalar(live_engine, "SELECT count(*) FROM audit_event WHERE action = 'invitation.created' AND "
                        "target_id = :p", p=scene.provider.id) == 1


@pytest.mark.parametrize("kind", ["payers", "facilities"])
async def test_a_copy_down_reaches_every_child_or_none(live, live_engine, kind):
    http, factory = live
    scene = await build_scene(factory)
    base = f"/v1/companies/{scene.home.id}/{kind}"
    record = await http.post(base, headers=scene.h(scene.admin), json={"name": f"Record {uuid.uuid4().hex[:6]}"})
    assert record.status_code == 201, record.text
    copy = {"company_ids": [str(child.id) for child in scene.children]}
    table = kind[:-1] if kind == "payers" else "facility"
    before = await database_state(live_engine)
    async with failing_insert(live_engine, table, on_row=3):
        failed = await http.post(f"{base}/{record.json()['id']}/copy", headers=scene.h(scene.admin), json=copy)
    assert_problem(failed, 500, "internal_error")
    assert changed_tables(before, await database_state(live_engine)) == set()

    copied = await http.post(f"{base}/{record.json()['id']}/copy", headers=scene.h(scene.admin), json=copy)
    assert copied.status_code == 200, copied.text
    assert [item["status"] for item in copied.json()["items"]] == ["copied"] * 3
    for child in scene.children:
        assert await scalar(live_engine, f"SELECT count(*) FROM {table} WHERE company_id = :c", c=child.id) == 1


NIGHT = date(2026, 11, 10)


async def test_an_automation_stage_creates_every_bill_or_none_and_runs_once(live, live_engine):
    http, factory = live
    scene = await build_scene(factory)
    company, admin = scene.home, scene.h(scene.admin)
    assert (await http.put(f"/v1/companies/{company.id}/billing-automation", json=SETTINGS_BODY,
                           headers=admin)).status_code == 200
    patient = await http.post("/v1/patients", headers=admin, json={
        "company_id": str(company.id), "first_name": "Pat", "last_name": "Doe"})
    assert patient.status_code == 201, patient.text
    for fee in (10000, 11000, 12000):
        encounter = await http.post("/v1/encounters", headers=admin, json={
            "patient_id": patient.json()["id"], "provider_id": str(scene.provider.id),
            "service_date": (NIGHT - timedelta(days=1)).isoformat(), "imported": False,
            "lines": [{"cpt_code": "90837", "description": "Psychotherapy", "units": 1, "fee_cents": fee}]})
        assert encounter.status_code == 201, encounter.text
    run = {"date": NIGHT.isoformat(), "stages": ["bills"]}
    runs = f"/v1/companies/{company.id}/billing-automation/runs"

    before = await database_state(live_engine)
    async with failing_insert(live_engine, "bill", on_row=2):
        assert_problem(await http.post(runs, json=run, headers=admin), 500, "internal_error")
    assert changed_tables(before, await database_state(live_engine)) == set()  # no bill, no claimed run

    first = await http.post(runs, json=run, headers=admin)
    assert first.status_code == 200, first.text
    (result,) = first.json()["results"]
    assert (result["outcome"], result["run"]["counts"]["bills_created"]) == ("completed", 3)
    again = await http.post(runs, json=run, headers=admin)
    assert [r["outcome"] for r in again.json()["results"]] == ["already_run"]
    assert await scalar(live_engine, "SELECT count(*) FROM bill WHERE company_id = :c", c=company.id) == 3
